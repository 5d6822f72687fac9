//! Fencing acceptance test: a handler paused past its worker's lease (its
//! process stopped with SIGSTOP) loses its task to another worker, which
//! completes it; when the stale handler resumes, its progress report, its
//! checkpoint and its result are all rejected, and the task's row, events
//! and attempts stay exactly as the other worker left them.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fib_flow::{
    AttemptOutcome, BoxError, Error, EventType, Step, Task, TaskManager, TaskStatus, WorkerStatus,
};
use serde_json::{json, Value};

use common::{attempts_of, events_of, task_row, wait_for_status, TestDb};

const WORKER_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);
const WORKER_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);

/// The entry point of worker process A; an ordinary test run passes
/// straight through it.
#[test]
fn worker_process_entry() {
    common::worker_process_entry("FIB_FLOW_TEST_FENCE_DIR", worker_a);
}

/// Writes `text` to `dir/name` whole (written aside, then renamed).
fn publish(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let partial = dir.join(format!("{name}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(partial, dir.join(name))
}

/// What a fenced write returned, as the test reads it.
fn outcome(result: &fib_flow::Result<()>) -> Value {
    match result {
        Ok(()) => json!({ "ok": true }),
        Err(error) => json!({
            "ok": false,
            "lost": matches!(error, Error::Lost { .. }),
            "lost_attempt": match error { Error::Lost { attempt, .. } => json!(attempt), _ => Value::Null },
            "error": error.to_string(),
        }),
    }
}

/// Worker A, pod "a": a short worker lease, but a task heartbeat so long
/// that nothing in A notices the lost task before the handler writes.
async fn worker_a(dir: PathBuf) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let mut builder = TaskManager::builder()
        .database(env("FIB_FLOW_TEST_FENCE_URL"))
        .pod_id("a")
        .worker_heartbeat_interval(WORKER_HEARTBEAT_INTERVAL)
        .worker_heartbeat_timeout(WORKER_HEARTBEAT_TIMEOUT)
        .maintenance_interval(Duration::from_millis(200))
        .task_heartbeat_interval(Duration::from_secs(60))
        .task_heartbeat_timeout(Duration::from_secs(120))
        .poll_interval(Duration::from_millis(50))
        .max_concurrent_tasks(1)
        .no_retention();
    let schema = env("FIB_FLOW_TEST_FENCE_SCHEMA");
    if !schema.is_empty() {
        builder = builder.schema(schema);
    }
    let manager = builder.build().await?;
    let handler_dir = dir.clone();
    manager.register("stale", move |task: Task| {
        let dir = handler_dir.clone();
        async move {
            publish(
                &dir,
                "started",
                &format!("{} {}", task.id(), task.attempt()),
            )?;
            while !dir.join("go").exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let progress = task.progress().stage("late").percent(50.0).send().await;
            publish(&dir, "progress", &outcome(&progress).to_string())?;
            let audit = task.audit("late-checkpoint").send().await;
            publish(&dir, "audit", &outcome(&audit).to_string())?;
            publish(&dir, "returned", "returned")?;
            Ok::<_, BoxError>(Step::done(json!({ "by": "stale" })))
        }
    })?;
    manager.start().await?;
    publish(&dir, "ready", manager.worker_id())?;
    // Once the handler returned and its result was handled, say so.
    while !dir.join("returned").exists() || manager.running_count() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(&dir, "idle", "idle")?;
    while !dir.join("stop").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    manager.stop().await?;
    Ok(())
}

/// Worker process A as the test drives it.
struct ProcessA {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl ProcessA {
    fn spawn(db: &TestDb) -> anyhow::Result<ProcessA> {
        let dir = tempfile::Builder::new()
            .prefix("fib-flow-fence")
            .tempdir()?;
        let stderr = std::fs::File::create(dir.path().join("stderr"))?;
        let child = Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "worker_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FIB_FLOW_TEST_FENCE_DIR", dir.path())
            .env("FIB_FLOW_TEST_FENCE_URL", &db.url)
            .env(
                "FIB_FLOW_TEST_FENCE_SCHEMA",
                db.schema.clone().unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(ProcessA { dir, child })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits until A wrote the file `name`; returns its text.
    async fn wait_file(&mut self, name: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            if let Ok(text) = std::fs::read_to_string(self.path(name)) {
                return Ok(text);
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("worker A exited with {status}: {}", self.stderr());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "worker A did not write {name} within {:?}: {}",
                common::DEADLINE,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Sends `signal` (`STOP`, `CONT`) with `kill`.
    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed: {status}");
        Ok(())
    }

    /// Asks A to stop gracefully and waits until it exited successfully.
    async fn stop(&mut self) -> anyhow::Result<()> {
        std::fs::write(self.path("stop"), b"stop")?;
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "worker A exited with {status}: {}",
                    self.stderr()
                );
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "worker A did not stop: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ProcessA {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too: A never outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `within` for `check` to hold; returns whether it did.
async fn holds_within<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

backend_test! {
    async fn a_stale_handler_cannot_write_after_its_task_was_taken_over(db) {
        if !db.shareable() {
            return Ok(()); // a memory database cannot be shared between processes
        }
        // The test's queries go through a manager that is never started.
        let queries = db.manager().await;
        // Worker B, in this process: started once A is paused.
        let b = db
            .manager_with(|builder| {
                builder
                    .pod_id("b")
                    .worker_heartbeat_interval(WORKER_HEARTBEAT_INTERVAL)
                    .worker_heartbeat_timeout(WORKER_HEARTBEAT_TIMEOUT)
                    .maintenance_interval(Duration::from_millis(200))
                    .task_heartbeat_interval(Duration::from_millis(200))
                    .task_heartbeat_timeout(Duration::from_secs(5))
            })
            .await;
        b.register("stale", |_task: Task| async {
            Ok::<_, BoxError>(Step::done(json!({ "by": "fresh" })))
        })?;

        let mut a = ProcessA::spawn(&db)?;
        let a_id = a.wait_file("ready").await?;
        let id = queries.submit("stale", &()).await?;
        let started = a.wait_file("started").await?;
        assert_eq!(started, format!("{id} 1"), "A runs the task's first attempt");

        // Pause A past its lease. B reaps it, takes the task back and runs
        // it. (Should A be stopped in the middle of a SQLite write, it holds
        // the database lock and B can do nothing: let it go and pause again.)
        let mut reaped = false;
        for round in 0..3 {
            a.signal("STOP")?;
            if round == 0 {
                b.start().await?;
            }
            reaped = holds_within(Duration::from_secs(10), || async {
                let worker = queries.worker(&a_id).await.ok().flatten();
                worker.is_some_and(|w| w.status == WorkerStatus::Dead)
            })
            .await;
            if reaped {
                break;
            }
            eprintln!("{}: A was not reaped while paused; resuming and pausing it again", db.backend);
            let seen = queries.worker(&a_id).await?.map(|w| w.last_seen_at);
            a.signal("CONT")?;
            common::wait_until("A to renew its lease again", || async {
                let worker = queries.worker(&a_id).await.expect("worker")?;
                (Some(worker.last_seen_at) > seen).then_some(())
            })
            .await;
        }
        assert!(reaped, "A was never reaped while paused");
        let done = wait_for_status(&queries, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "by": "fresh" })), "{done:?}");
        assert_eq!(done.worker_id.as_deref(), Some(b.worker_id()), "{done:?}");

        // What B left: A's attempt interrupted, B's completed.
        let row = task_row(&queries, id).await;
        let events = events_of(&queries, id).await;
        let attempts = attempts_of(&queries, id).await;
        let lost = attempts.iter().find(|at| at.attempt == 1).expect("attempt 1");
        assert_eq!(lost.worker_id.as_deref(), Some(a_id.as_str()), "{attempts:?}");
        assert_eq!(lost.outcome, Some(AttemptOutcome::Interrupted), "{attempts:?}");
        let last = attempts.last().expect("an attempt");
        assert_eq!((last.attempt, last.outcome), (row.attempt, Some(AttemptOutcome::Completed)), "{attempts:?}");
        assert_eq!(last.worker_id.as_deref(), Some(b.worker_id()), "{attempts:?}");
        let recovered = events
            .iter()
            .find(|e| e.event_type == EventType::TaskRecovered)
            .unwrap_or_else(|| panic!("no task_recovered event: {events:?}"));
        assert_eq!(recovered.metadata["recovered_from_worker_id"], json!(a_id), "{recovered:?}");
        assert_eq!(recovered.metadata["recovery_reason"], json!("worker_dead"), "{recovered:?}");

        // Let the stale handler finish: it reports progress, records a
        // checkpoint and returns its result.
        std::fs::write(a.path("go"), b"go")?;
        a.signal("CONT")?;
        a.wait_file("idle").await?;
        let progress: Value = serde_json::from_str(&a.wait_file("progress").await?)?;
        let audit: Value = serde_json::from_str(&a.wait_file("audit").await?)?;
        for (what, result) in [("progress", &progress), ("audit", &audit)] {
            assert_eq!(result["lost"], json!(true), "the stale {what} write was not rejected as Lost: {result}");
            assert_eq!(result["lost_attempt"], json!(1), "{what}: {result}");
        }
        eprintln!(
            "{}: the stale attempt's progress and checkpoint were rejected: {} / {}",
            db.backend, progress["error"], audit["error"]
        );

        a.stop().await?;
        b.stop().await?;
        // Nothing the stale attempt wrote landed: the row, its events and
        // its attempts are exactly what B left.
        let row_after = task_row(&queries, id).await;
        assert_eq!(row_after, row, "the task row changed");
        assert_eq!(row_after.status, TaskStatus::Completed);
        assert_eq!(row_after.result, Some(json!({ "by": "fresh" })));
        assert_eq!(row_after.attempt, row.attempt);
        assert_eq!(
            (&row_after.last_event_at, &row_after.last_event_type),
            (&row.last_event_at, &row.last_event_type)
        );
        assert_eq!(
            (&row_after.current_stage_name, &row_after.progress_text, row_after.progress_percent),
            (&None, &None, None),
            "progress columns"
        );
        assert_eq!(events_of(&queries, id).await, events, "the task's events changed");
        assert_eq!(attempts_of(&queries, id).await, attempts, "the task's attempts changed");
        Ok(())
    }
}
