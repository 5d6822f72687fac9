//! Shared test support: one isolated database per test, a manager with fast
//! intervals, waits with deadlines, and `backend_test!`, which turns one test
//! body into one test per backend.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::{Duration, Instant};

use fib_flow::{TaskId, TaskManager, TaskManagerBuilder, TaskRecord, TaskStatus};

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory (removed on drop).
    pub fn sqlite_file() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite:{}", dir.path().join("fib-flow-test.db").display());
        TestDb {
            url,
            backend: "sqlite_file",
            _dir: Some(dir),
        }
    }

    /// A fresh in-memory SQLite database (private to its manager).
    pub fn sqlite_memory() -> Self {
        TestDb {
            url: "sqlite::memory:".into(),
            backend: "sqlite_memory",
            _dir: None,
        }
    }

    /// Whether two managers can share this database (an in-memory one is
    /// private to the manager that opened it).
    pub fn shareable(&self) -> bool {
        self.backend != "sqlite_memory"
    }

    /// A builder on this database with short intervals for tests.
    pub fn builder(&self) -> TaskManagerBuilder {
        TaskManager::builder()
            .database(self.url.clone())
            .poll_interval(Duration::from_millis(50))
            .task_heartbeat_interval(Duration::from_millis(100))
            .task_heartbeat_timeout(Duration::from_secs(5))
            .maintenance_interval(Duration::from_millis(100))
            .shutdown_timeout(Duration::from_secs(5))
    }

    /// A built manager with its schema set up (not started).
    pub async fn manager(&self) -> TaskManager {
        self.manager_with(|b| b).await
    }

    /// Like [`TestDb::manager`], with extra builder settings.
    pub async fn manager_with(
        &self,
        f: impl FnOnce(TaskManagerBuilder) -> TaskManagerBuilder,
    ) -> TaskManager {
        let manager = f(self.builder()).build().await.expect("build manager");
        manager.setup().await.expect("setup");
        manager
    }
}

/// Polls `check` until it returns `Some`, failing the test after
/// [`DEADLINE`] with `what` in the message.
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until task `id` has `status` and returns its row.
pub async fn wait_for_status(manager: &TaskManager, id: TaskId, status: TaskStatus) -> TaskRecord {
    wait_until(&format!("task {id} to be {status}"), || async {
        let task = manager
            .get_task(id)
            .await
            .expect("get_task")
            .expect("task exists");
        (task.status == status).then_some(task)
    })
    .await
}

/// Expands one async test body into one `#[tokio::test]` per backend:
/// `NAME::sqlite_file` and `NAME::sqlite_memory` (PostgreSQL and MySQL join
/// when their backends land). The body sees the database as `db: TestDb`
/// and returns `anyhow::Result<()>`.
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::common::TestDb) -> anyhow::Result<()> $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_file() -> anyhow::Result<()> {
                body($crate::common::TestDb::sqlite_file()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() -> anyhow::Result<()> {
                body($crate::common::TestDb::sqlite_memory()).await
            }
        }
    };
}
