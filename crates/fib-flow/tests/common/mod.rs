//! Shared test support: one isolated database per test, a manager with fast
//! intervals, waits with deadlines, and `backend_test!`, which turns one test
//! body into one test per backend.
#![allow(dead_code, unreachable_pub)]

pub mod store;

use std::future::Future;
use std::time::{Duration, Instant};

use fib_flow::{TaskId, TaskManager, TaskManagerBuilder, TaskRecord, TaskStatus};

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    /// The PostgreSQL schema or MySQL database that isolates this test.
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The server URL of a backend from its environment variable; `None` (the
/// test is skipped) when unset, a panic when `FIB_FLOW_TEST_REQUIRE_ALL=1`.
fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var("FIB_FLOW_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{var} is not set and FIB_FLOW_TEST_REQUIRE_ALL=1"
            );
            None
        }
    }
}

/// A schema name no other test uses.
fn unique_schema() -> String {
    format!("fft_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory (removed on drop).
    pub fn sqlite_file() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite:{}", dir.path().join("fib-flow-test.db").display());
        TestDb {
            url,
            backend: "sqlite_file",
            schema: None,
            _dir: Some(dir),
        }
    }

    /// A fresh in-memory SQLite database (private to its manager).
    pub fn sqlite_memory() -> Self {
        TestDb {
            url: "sqlite::memory:".into(),
            backend: "sqlite_memory",
            schema: None,
            _dir: None,
        }
    }

    /// A fresh schema on the server of `FIB_FLOW_TEST_POSTGRES_URL`.
    pub fn postgres() -> Option<Self> {
        Some(TestDb {
            url: server_url("FIB_FLOW_TEST_POSTGRES_URL")?,
            backend: "postgres",
            schema: Some(unique_schema()),
            _dir: None,
        })
    }

    /// A fresh database on the server of `FIB_FLOW_TEST_MYSQL_URL`.
    pub fn mysql() -> Option<Self> {
        Some(TestDb {
            url: server_url("FIB_FLOW_TEST_MYSQL_URL")?,
            backend: "mysql",
            schema: Some(unique_schema()),
            _dir: None,
        })
    }

    /// A handle naming the same server and schema (for cleanup after the
    /// original moved into a test body).
    pub fn clone_for_cleanup(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            backend: self.backend,
            schema: self.schema.clone(),
            _dir: None,
        }
    }

    /// Options for connecting a store directly to this database.
    pub fn config(&self) -> fib_flow::Config {
        let mut config = fib_flow::Config::new(self.url.clone());
        config.schema = self.schema.clone();
        config
    }

    /// Drops the test's schema or database (SQLite files go with the
    /// temporary directory).
    pub async fn cleanup(&self) {
        use sqlx::Connection;
        let Some(schema) = &self.schema else { return };
        let result = match self.backend {
            "postgres" => match sqlx::PgConnection::connect(&self.url).await {
                Ok(mut conn) => sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            },
            _ => match sqlx::MySqlConnection::connect(&self.url).await {
                Ok(mut conn) => sqlx::query(&format!("DROP DATABASE IF EXISTS `{schema}`"))
                    .execute(&mut conn)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            },
        };
        if let Err(error) = result {
            eprintln!("could not drop test schema {schema}: {error}");
        }
    }

    /// Whether two managers can share this database (an in-memory one is
    /// private to the manager that opened it).
    pub fn shareable(&self) -> bool {
        self.backend != "sqlite_memory"
    }

    /// Whether this is a SQLite database (file or memory).
    pub fn is_sqlite(&self) -> bool {
        self.backend.starts_with("sqlite")
    }

    /// A builder on this database with short intervals for tests.
    pub fn builder(&self) -> TaskManagerBuilder {
        let builder = match &self.schema {
            Some(schema) => TaskManager::builder().schema(schema.clone()),
            None => TaskManager::builder(),
        };
        builder
            .database(self.url.clone())
            .poll_interval(Duration::from_millis(50))
            .task_heartbeat_interval(Duration::from_millis(100))
            .task_heartbeat_timeout(Duration::from_secs(5))
            .maintenance_interval(Duration::from_millis(100))
            .worker_heartbeat_interval(Duration::from_millis(100))
            .worker_heartbeat_timeout(Duration::from_secs(1))
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

/// The body of a suite's `worker_process_entry` test, the entry point of
/// the worker processes the suite starts from its own binary: when the
/// environment variable `var` is set, runs `main` with its value (a path)
/// on a fresh runtime; an ordinary test run passes straight through.
pub fn worker_process_entry<F, Fut>(var: &str, main: F)
where
    F: FnOnce(std::path::PathBuf) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Ok(path) = std::env::var(var) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(main(std::path::PathBuf::from(path)))
        .expect("worker");
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
/// `NAME::sqlite_file`, `NAME::sqlite_memory`, `NAME::postgres` and
/// `NAME::mysql`. The server backends skip (with a note on stderr) unless
/// `FIB_FLOW_TEST_POSTGRES_URL` / `FIB_FLOW_TEST_MYSQL_URL` are set, and fail
/// instead under `FIB_FLOW_TEST_REQUIRE_ALL=1`. The body sees the database
/// as `db: TestDb` and returns `anyhow::Result<()>`; a server test's schema
/// is dropped after a body that returned.
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::common::TestDb) -> anyhow::Result<()> $body

            async fn on_server(db: Option<$crate::common::TestDb>, backend: &str) -> anyhow::Result<()> {
                let Some(db) = db else {
                    eprintln!("skipped on {backend}: its FIB_FLOW_TEST_*_URL is not set");
                    return Ok(());
                };
                let schema_db = db.clone_for_cleanup();
                let result = body(db).await;
                schema_db.cleanup().await;
                result
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_file() -> anyhow::Result<()> {
                body($crate::common::TestDb::sqlite_file()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() -> anyhow::Result<()> {
                body($crate::common::TestDb::sqlite_memory()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                on_server($crate::common::TestDb::postgres(), "postgres").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() -> anyhow::Result<()> {
                on_server($crate::common::TestDb::mysql(), "mysql").await
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Helpers for the behaviour suites (lifecycle, concurrency, retries,
// timeouts, hot reload, validation, shutdown): signals that let a test
// control and observe handlers without sleeping.

/// A gate handlers wait on until the test opens it (stays open after).
#[derive(Clone)]
pub struct Gate {
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate {
            open: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Completes once the gate is open.
    pub async fn wait(&self) {
        let mut open = self.open.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = open.wait_for(|open| *open).await;
    }

    /// Opens the gate for every current and future waiter.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

/// Values pushed by handlers, in push order; tests wait on their number.
#[derive(Clone)]
pub struct Recorder<T> {
    items: std::sync::Arc<std::sync::Mutex<Vec<T>>>,
}

impl<T> Default for Recorder<T> {
    fn default() -> Self {
        Recorder {
            items: std::sync::Arc::default(),
        }
    }
}

impl<T: Clone> Recorder<T> {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a value.
    pub fn push(&self, value: T) {
        self.lock().push(value);
    }

    /// The values so far.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// How many values so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Waits until at least `n` values were pushed; returns them all.
    pub async fn wait_len(&self, what: &str, n: usize) -> Vec<T> {
        wait_until(what, || async {
            let items = self.snapshot();
            (items.len() >= n).then_some(items)
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts handlers executing at once and remembers the highest count.
#[derive(Clone, Default)]
pub struct HighWater {
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    max: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HighWater {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks one more handler executing until the guard is dropped (also
    /// when the handler's future is dropped by a timeout or cancellation).
    pub fn enter(&self) -> HighWaterGuard {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.current.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        HighWaterGuard(self.clone())
    }

    /// Handlers executing now.
    pub fn current(&self) -> usize {
        self.current.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most handlers ever executing at once.
    pub fn max(&self) -> usize {
        self.max.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until exactly `n` handlers are executing.
    pub async fn wait_current(&self, what: &str, n: usize) {
        wait_until(what, || async { (self.current() == n).then_some(()) }).await
    }
}

/// Leaves the [`HighWater`] count when dropped.
pub struct HighWaterGuard(HighWater);

impl Drop for HighWaterGuard {
    fn drop(&mut self) {
        self.0
            .current
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Counts dropped guards: a handler holds one, so the count shows that its
/// future was dropped (stopped) rather than left running.
#[derive(Clone, Default)]
pub struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl DropFlag {
    /// A flag with no drops yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard that counts one drop.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.clone())
    }

    /// Guards dropped so far.
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `n` guards were dropped.
    pub async fn wait(&self, what: &str, n: usize) {
        wait_until(what, || async { (self.count() >= n).then_some(()) }).await
    }
}

/// Counts one drop on its [`DropFlag`].
pub struct DropGuard(DropFlag);

impl Drop for DropGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The row of task `id`, which must exist.
pub async fn task_row(manager: &TaskManager, id: TaskId) -> TaskRecord {
    manager
        .get_task(id)
        .await
        .expect("get_task")
        .unwrap_or_else(|| panic!("task {id} exists"))
}

/// Waits until `manager` runs exactly `n` attempts.
pub async fn wait_for_running_count(manager: &TaskManager, n: usize) {
    wait_until(&format!("{n} attempts running"), || async {
        (manager.running_count() == n).then_some(())
    })
    .await
}

/// The ids of some rows, in order.
pub fn ids_of(rows: &[TaskRecord]) -> Vec<TaskId> {
    rows.iter().map(|row| row.id).collect()
}

impl TestDb {
    /// A store on this database with its schema migrated, for tests that
    /// exercise the `Store` seam directly. On `sqlite_memory` every call is
    /// a separate database: open one store per test.
    pub async fn store(&self) -> std::sync::Arc<dyn fib_flow::store::Store> {
        let store = fib_flow::store::connect(&self.config())
            .await
            .expect("connect store");
        store.migrate().await.expect("migrate store");
        store
    }
}

// ---------------------------------------------------------------------------
// Helpers for the workflow and suspension suites.

/// Gates by name, created closed on first use: each handler waits on the
/// gate of its own key (say, its payload), so a test releases tasks one by
/// one.
#[derive(Clone, Default)]
pub struct Gates {
    gates: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Gate>>>,
}

impl Gates {
    /// No gates yet (all closed).
    pub fn new() -> Self {
        Self::default()
    }

    /// The gate named `key`.
    pub fn get(&self, key: &str) -> Gate {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// Completes once the gate named `key` is open.
    pub async fn wait(&self, key: &str) {
        self.get(key).wait().await
    }

    /// Opens the gate named `key`.
    pub fn open(&self, key: &str) {
        self.get(key).open()
    }
}

/// Waits until `manager` sees exactly `n` tasks matching `filter`; returns
/// them.
pub async fn wait_for_tasks(
    manager: &TaskManager,
    what: &str,
    filter: fib_flow::TaskFilter,
    n: usize,
) -> Vec<TaskRecord> {
    wait_until(what, || async {
        let rows = manager.get_tasks(filter.clone()).await.expect("get_tasks");
        (rows.len() == n).then_some(rows)
    })
    .await
}

// ---------------------------------------------------------------------------
// Helpers for the audit suites (events, attempts, reports, queries,
// retention).

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A built, set-up manager with the short polls of the audit suites (20 ms)
/// and `f`'s extra settings.
pub async fn audit_manager_with(
    db: &TestDb,
    f: impl FnOnce(TaskManagerBuilder) -> TaskManagerBuilder,
) -> TaskManager {
    db.manager_with(|b| f(b.poll_interval(ms(20)))).await
}

/// Every event of task `id`, oldest first.
pub async fn events_of(manager: &TaskManager, id: TaskId) -> Vec<fib_flow::TaskEvent> {
    manager
        .task_events(id, fib_flow::EventQuery::new())
        .await
        .expect("task_events")
        .items
}

/// Every attempt of task `id`, lowest number first.
pub async fn attempts_of(manager: &TaskManager, id: TaskId) -> Vec<fib_flow::TaskAttempt> {
    manager
        .task_attempts(id, fib_flow::AttemptQuery::new())
        .await
        .expect("task_attempts")
        .items
}

/// A task's attempts as (number, outcome) pairs, in attempt order.
pub async fn outcomes_of(
    manager: &TaskManager,
    id: TaskId,
) -> Vec<(i64, Option<fib_flow::AttemptOutcome>)> {
    attempts_of(manager, id)
        .await
        .iter()
        .map(|a| (a.attempt, a.outcome))
        .collect()
}

/// The event types of some events, in order.
pub fn types_of(events: &[fib_flow::TaskEvent]) -> Vec<fib_flow::EventType> {
    events.iter().map(|event| event.event_type).collect()
}

/// Waits until task `id` has at least one event of `event_type`; returns
/// the first.
pub async fn wait_for_event(
    manager: &TaskManager,
    id: TaskId,
    event_type: fib_flow::EventType,
) -> fib_flow::TaskEvent {
    wait_until(&format!("a {event_type} event of task {id}"), || async {
        let query = fib_flow::EventQuery::new().event_type(event_type);
        let page = manager.task_events(id, query).await.expect("task_events");
        page.items.into_iter().next()
    })
    .await
}

/// Checks what holds for any one task's history read oldest first: ids
/// ascending, times in whole milliseconds and never decreasing, every event
/// about `id`; and that the task row's snapshot (`last_event_type`,
/// `last_event_at`) is the newest event.
pub async fn assert_history_consistent(manager: &TaskManager, id: TaskId) {
    let events = events_of(manager, id).await;
    assert!(!events.is_empty(), "task {id} has no events");
    for event in &events {
        assert_eq!(event.task_id, id, "{event:?}");
        assert_eq!(
            event.event_time.timestamp_subsec_nanos() % 1_000_000,
            0,
            "event time not in whole milliseconds: {event:?}"
        );
    }
    for pair in events.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids out of order: {pair:?}");
        assert!(
            pair[0].event_time <= pair[1].event_time,
            "event times decrease: {pair:?}"
        );
    }
    let newest = events.last().expect("an event");
    let row = task_row(manager, id).await;
    assert_eq!(
        row.last_event_type.as_deref(),
        Some(newest.event_type.as_str()),
        "task {id}: snapshot type vs newest event {newest:?}"
    );
    assert_eq!(
        row.last_event_at,
        Some(newest.event_time),
        "task {id}: snapshot time vs newest event {newest:?}"
    );
}

/// The field named by an `Error::InvalidInput`; panics on anything else.
pub fn invalid_field<T: std::fmt::Debug>(result: fib_flow::Result<T>) -> &'static str {
    match result {
        Err(fib_flow::Error::InvalidInput { field, .. }) => field,
        other => panic!("expected Error::InvalidInput, got {other:?}"),
    }
}

/// Waits until the local clock (the clock every local database server
/// shares) is at least `by` past `at`.
pub async fn wait_clock_past(at: chrono::DateTime<chrono::Utc>, by: Duration) {
    let until = at + chrono::TimeDelta::from_std(by).expect("a small duration");
    wait_until("the clock to move on", || async {
        (chrono::Utc::now() > until).then_some(())
    })
    .await
}
