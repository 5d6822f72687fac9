//! Several worker processes (real OS processes, started from this test
//! binary) share one database: every task runs exactly once, and on
//! PostgreSQL an idle worker in another process is woken at once by
//! LISTEN/NOTIFY instead of waiting for its poll interval.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};

use common::TestDb;

/// How many tasks the drain test submits.
const TASKS: usize = 5_000;
/// How many worker processes share them.
const WORKERS: usize = 3;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The entry point of the worker processes the tests below start; an
/// ordinary test run passes straight through it.
#[test]
fn worker_process_entry() {
    common::worker_process_entry("FIB_FLOW_TEST_WORKER_OUT", worker_main);
}

/// A worker: records every handler run as a line in its own file, until
/// the stop file appears.
async fn worker_main(out: PathBuf) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let mut builder = TaskManager::builder()
        .database(env("FIB_FLOW_TEST_WORKER_URL"))
        .max_concurrent_tasks(8)
        .poll_interval(Duration::from_millis(
            env("FIB_FLOW_TEST_WORKER_POLL_MS").parse()?,
        ));
    if !env("FIB_FLOW_TEST_WORKER_SCHEMA").is_empty() {
        builder = builder.schema(env("FIB_FLOW_TEST_WORKER_SCHEMA"));
    }
    let manager = builder.build().await?;
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out)?,
    ));
    let record = move |line: String| -> Result<(), BoxError> {
        let mut file = log.lock().map_err(|_| "poisoned log")?;
        writeln!(file, "{line}")?;
        Ok(())
    };
    let count = record.clone();
    manager.register("count", move |task: Task| {
        let count = count.clone();
        async move {
            count(task.id().to_string())?;
            Ok::<_, BoxError>(Step::done(()))
        }
    })?;
    manager.register("probe", move |task: Task| {
        let record = record.clone();
        async move {
            record(format!("{} {}", task.id(), now_ms()))?;
            Ok::<_, BoxError>(Step::done(()))
        }
    })?;
    manager.start().await?;
    std::fs::write(out.with_extension("ready"), b"ready")?;
    let stop = out.with_extension("stop");
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    manager.stop().await?;
    Ok(())
}

/// A running worker process and its files.
struct Worker {
    child: Child,
    out: PathBuf,
}

impl Worker {
    fn start(db: &TestDb, dir: &Path, index: usize, poll: Duration) -> anyhow::Result<Worker> {
        let out = dir.join(format!("worker-{index}.log"));
        let stderr = std::fs::File::create(dir.join(format!("worker-{index}.stderr")))?;
        let child = Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "worker_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FIB_FLOW_TEST_WORKER_OUT", &out)
            .env("FIB_FLOW_TEST_WORKER_URL", &db.url)
            .env(
                "FIB_FLOW_TEST_WORKER_SCHEMA",
                db.schema.clone().unwrap_or_default(),
            )
            .env("FIB_FLOW_TEST_WORKER_POLL_MS", poll.as_millis().to_string())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(Worker { child, out })
    }

    fn ready(&self) -> bool {
        self.out.with_extension("ready").exists()
    }

    /// Asks the worker to stop gracefully and waits for it (killing it
    /// after a deadline); returns the lines it recorded.
    fn stop(mut self) -> anyhow::Result<Vec<String>> {
        std::fs::write(self.out.with_extension("stop"), b"stop")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "worker exited with {status}; see {:?}",
                    self.out.with_extension("stderr")
                );
                break;
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                anyhow::bail!("worker did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        Ok(text.lines().map(str::to_owned).collect())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A test that failed early must not leave processes behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(workers: &[Worker]) {
    common::wait_until("worker processes to start", || async {
        workers.iter().all(Worker::ready).then_some(())
    })
    .await;
}

backend_test! {
    async fn three_worker_processes_run_every_task_exactly_once(db) {
        if !db.shareable() {
            return Ok(()); // a memory database cannot be shared between processes
        }
        let manager = db.manager().await;
        let dir = tempfile::tempdir()?;
        let workers: Vec<Worker> = (0..WORKERS)
            .map(|i| Worker::start(&db, dir.path(), i, Duration::from_millis(200)))
            .collect::<anyhow::Result<_>>()?;
        wait_ready(&workers).await;
        let mut ids = Vec::with_capacity(TASKS);
        for i in 0..TASKS {
            ids.push(manager.submit("count", &i).await?);
        }
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let stats = manager.task_stats(None).await?;
            let completed: u64 = stats.iter().filter(|s| s.status == TaskStatus::Completed).map(|s| s.count).sum();
            if completed == TASKS as u64 {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "only {completed} of {TASKS} tasks completed: {stats:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut runs: HashMap<String, usize> = HashMap::new();
        let mut per_worker = Vec::new();
        for worker in workers {
            let lines = worker.stop()?;
            per_worker.push(lines.len());
            for line in lines {
                *runs.entry(line).or_default() += 1;
            }
        }
        let twice: Vec<_> = runs.iter().filter(|(_, &n)| n > 1).collect();
        assert!(twice.is_empty(), "tasks run more than once: {twice:?}");
        for id in &ids {
            assert_eq!(runs.get(&id.to_string()), Some(&1), "task {id} did not run exactly once");
        }
        assert_eq!(runs.len(), TASKS);
        // Every task completed on its first attempt.
        let tasks = manager.get_tasks(fib_flow::TaskFilter::new()).await?;
        assert!(tasks.iter().all(|t| t.attempt == 1 && t.status == TaskStatus::Completed));
        eprintln!("{}: handler runs per worker process: {per_worker:?}", db.backend);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn an_idle_worker_in_another_process_starts_a_new_task_within_a_second(db) {
        if db.backend != "postgres" {
            return Ok(()); // only PostgreSQL pushes wake-ups across processes
        }
        let manager = db.manager().await;
        let dir = tempfile::tempdir()?;
        // A poll interval of 10 s: only a notification can start a task
        // within a second.
        let worker = Worker::start(&db, dir.path(), 0, Duration::from_secs(10))?;
        wait_ready(std::slice::from_ref(&worker)).await;
        // One warm-up task, then let the worker settle into its idle wait.
        let warm_up = manager.submit("probe", &()).await?;
        common::wait_for_status(&manager, warm_up, TaskStatus::Completed).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut submitted = HashMap::new();
        for _ in 0..5 {
            let at = now_ms();
            let id = manager.submit("probe", &()).await?;
            submitted.insert(id.to_string(), at);
            common::wait_for_status(&manager, id, TaskStatus::Completed).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let lines = worker.stop()?;
        for line in lines {
            let (id, started) = line.split_once(' ').ok_or_else(|| anyhow::anyhow!("bad line {line}"))?;
            if let Some(at) = submitted.get(id) {
                let latency = started.parse::<u128>()?.saturating_sub(*at);
                assert!(latency < 1_000, "task {id} started {latency} ms after its submit (poll interval 10 s)");
            }
        }
        manager.stop().await?;
        Ok(())
    }
}
