//! Chaos acceptance tests of the worker registry and recovery, with real
//! worker processes (this test binary started again as workers) that are
//! killed with SIGKILL while about 2,000 tasks run: plain tasks, slow tasks
//! and three-stage workflows.
//!
//! Three scenarios, each on SQLite (a file), PostgreSQL and MySQL:
//!
//! - `a_killed_worker_is_reaped_and_its_tasks_recovered`: a random worker is
//!   killed every 2-3 s and replaced by a process of a new pod, so the
//!   killed one is reaped as dead by the maintenance node;
//! - `a_restarted_pod_supersedes_its_killed_worker`: the killed worker's pod
//!   is restarted at once, and the new process supersedes the old one and
//!   takes its tasks back at its own startup;
//! - `killing_the_maintenance_node_hands_maintenance_over`: the worker that
//!   holds the maintenance lease is the one killed, every round.
//!
//! At the end every task completed exactly once (one `task_completed`
//! event, one completed attempt), nothing was retried, no attempt is left
//! open, every attempt a killed worker did not finish is closed
//! `interrupted` and matched by a `task_recovered` event, and each recovery
//! happened within 2 × `worker_heartbeat_timeout` of the kill.
//!
//! The kill schedule comes from a seeded generator; set
//! `FIB_FLOW_TEST_CHAOS_SEED` to replay another one.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fib_flow::{
    AttemptOutcome, AttemptQuery, BoxError, Child, ChildResult, EventQuery, EventType, Step, Task,
    TaskAttempt, TaskEvent, TaskFilter, TaskId, TaskManager, TaskRecord, TaskStatus, WorkerFilter,
    WorkerStatus,
};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use common::TestDb;

// The timings of every worker process (and of the reclaim bound).
const WORKER_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);
const WORKER_HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(1500);
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(200);
const TASK_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);
const TASK_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const CONCURRENCY: usize = 8;

/// Worker processes running at any time.
const WORKERS: usize = 3;
/// Kill rounds per scenario, one every 2-3 s.
const KILLS: usize = 5;
/// Tasks are submitted in batches, one a second, while the kills go on.
const BATCHES: u64 = 10;
const BATCH_EVERY: Duration = Duration::from_secs(1);
/// Tasks per batch: 6 `flow` workflows, about a sixth `slow`, the rest
/// `noop`.
const TASKS_PER_BATCH: u64 = 201;
const FLOWS_PER_BATCH: u64 = 6;
/// Children a `flow` creates over its stages (3, then 2).
const LEAVES_PER_FLOW: u64 = 5;
/// How long the tasks may take to drain once the kills stop.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// The one bound on timing the issue asks for: a killed worker's running
/// tasks are back to `pending` within 2 × `worker_heartbeat_timeout`.
fn reclaim_bound_ms() -> i64 {
    2 * WORKER_HEARTBEAT_TIMEOUT.as_millis() as i64
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// SplitMix64: a deterministic mix of one number.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seeded generator for the kill schedule (no dependency needed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0) % n
    }
}

// ---------------------------------------------------------------------------
// The worker process.

/// The entry point of the worker processes the chaos tests start; an
/// ordinary test run passes straight through it.
#[test]
fn worker_process_entry() {
    common::worker_process_entry("FIB_FLOW_TEST_CHAOS_DIR", worker_main);
}

/// A worker of pod `FIB_FLOW_TEST_CHAOS_POD`: once started it writes its
/// worker id and the time to `<label>.ready`, then runs tasks until
/// `<label>.stop` appears (or it is killed).
async fn worker_main(dir: PathBuf) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let label = env("FIB_FLOW_TEST_CHAOS_LABEL");
    let mut builder = TaskManager::builder()
        .database(env("FIB_FLOW_TEST_CHAOS_URL"))
        .pod_id(env("FIB_FLOW_TEST_CHAOS_POD"))
        .worker_heartbeat_interval(WORKER_HEARTBEAT_INTERVAL)
        .worker_heartbeat_timeout(WORKER_HEARTBEAT_TIMEOUT)
        .maintenance_interval(MAINTENANCE_INTERVAL)
        .task_heartbeat_interval(TASK_HEARTBEAT_INTERVAL)
        .task_heartbeat_timeout(TASK_HEARTBEAT_TIMEOUT)
        .poll_interval(POLL_INTERVAL)
        .max_concurrent_tasks(CONCURRENCY)
        .shutdown_timeout(Duration::from_secs(5))
        .no_retention();
    let schema = env("FIB_FLOW_TEST_CHAOS_SCHEMA");
    if !schema.is_empty() {
        builder = builder.schema(schema);
    }
    let manager = builder.build().await?;
    manager.register("noop", |_task: Task| async {
        Ok::<_, BoxError>(Step::done(()))
    })?;
    manager.register("slow", |task: Task| async move {
        let n: u64 = task.payload()?;
        tokio::time::sleep(Duration::from_millis(200 + mix(n) % 601)).await;
        Ok::<_, BoxError>(Step::done(json!(n)))
    })?;
    manager.register("flow", flow)?;
    manager.register("leaf", |task: Task| async move {
        let n: u64 = task.payload()?;
        tokio::time::sleep(Duration::from_millis(10 + mix(n) % 41)).await;
        Ok::<_, BoxError>(Step::done(json!(n)))
    })?;
    manager.start().await?;
    // Written whole, then renamed: the test never reads half a file.
    let ready = dir.join(format!("{label}.ready"));
    let partial = dir.join(format!("{label}.ready.partial"));
    std::fs::write(&partial, format!("{} {}", manager.worker_id(), now_ms()))?;
    std::fs::rename(&partial, &ready)?;
    let stop = dir.join(format!("{label}.stop"));
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    manager.stop().await?;
    Ok(())
}

/// A three-stage workflow: stage 0 creates 3 `leaf` children, stage 1
/// (after they completed) 2 more, stage 2 completes.
async fn flow(task: Task) -> Result<Step, BoxError> {
    let n: u64 = task.payload()?;
    let leaves = |stage: u64, count: u64| {
        (0..count).map(move |i| Child::new("leaf", &(n * 100 + stage * 10 + i)))
    };
    match task.stage() {
        0 => Ok(Step::children(leaves(0, 3))),
        1 => {
            expect_children(&task, 3)?;
            Ok(Step::children(leaves(1, 2)))
        }
        2 => {
            expect_children(&task, 2)?;
            Ok(Step::done(json!({ "flow": n, "stages": 3 })))
        }
        stage => Err(format!("flow {n} ran at stage {stage}").into()),
    }
}

fn expect_children(task: &Task, count: usize) -> Result<(), BoxError> {
    let results = task.child_results();
    if results.len() != count || !results.iter().all(ChildResult::is_ok) {
        return Err(format!(
            "flow {} at stage {} expected {count} completed children, got {results:?}",
            task.id(),
            task.stage()
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The test side: worker processes, kills, submissions.

/// One started worker process.
struct WorkerProcess {
    label: String,
    pod: String,
    dir: PathBuf,
    child: std::process::Child,
    /// Its worker id and when it was ready (ms), once it said so.
    ready: Option<(String, i64)>,
}

impl WorkerProcess {
    fn spawn(db: &TestDb, dir: &Path, label: String, pod: String) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(dir.join(format!("{label}.stderr")))?;
        let child = Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "worker_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FIB_FLOW_TEST_CHAOS_DIR", dir)
            .env("FIB_FLOW_TEST_CHAOS_LABEL", &label)
            .env("FIB_FLOW_TEST_CHAOS_URL", &db.url)
            .env(
                "FIB_FLOW_TEST_CHAOS_SCHEMA",
                db.schema.clone().unwrap_or_default(),
            )
            .env("FIB_FLOW_TEST_CHAOS_POD", &pod)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(WorkerProcess {
            label,
            pod,
            dir: dir.to_owned(),
            child,
            ready: None,
        })
    }

    fn file(&self, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", self.label))
    }

    /// Whether it is started; an error if it exited instead.
    fn poll_ready(&mut self) -> anyhow::Result<bool> {
        if self.ready.is_none() {
            if let Ok(text) = std::fs::read_to_string(self.file("ready")) {
                let (id, at) = text
                    .split_once(' ')
                    .ok_or_else(|| anyhow::anyhow!("bad ready file {text:?}"))?;
                self.ready = Some((id.to_owned(), at.parse()?));
            }
        }
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "worker {} exited with {status}: {}",
                self.label,
                std::fs::read_to_string(self.file("stderr")).unwrap_or_default()
            );
        }
        Ok(self.ready.is_some())
    }

    fn worker_id(&self) -> &str {
        self.ready.as_ref().map_or("", |(id, _)| id)
    }

    /// `kill -9`, and reap it.
    fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Asks it to stop gracefully and waits until it exited successfully.
    async fn stop(&mut self) -> anyhow::Result<()> {
        std::fs::write(self.file("stop"), b"stop")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "worker {} exited with {status}: {}",
                    self.label,
                    std::fs::read_to_string(self.file("stderr")).unwrap_or_default()
                );
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "worker {} did not stop within 30 s",
                self.label
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // A test that failed early must not leave processes behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until every process in `workers` is started.
async fn wait_ready(workers: &mut [WorkerProcess]) -> anyhow::Result<()> {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let mut all = true;
        for worker in workers.iter_mut() {
            all &= worker.poll_ready()?;
        }
        if all {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "worker processes did not start within {:?}",
            common::DEADLINE
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// A random worker is killed; its replacement is a new pod.
    RandomKill,
    /// A random worker is killed and its pod restarted at once.
    Supersede,
    /// The maintenance node is killed; its replacement is a new pod.
    KillLeader,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::RandomKill => "random kill",
            Scenario::Supersede => "supersede",
            Scenario::KillLeader => "kill leader",
        }
    }

    fn seed(self) -> u64 {
        let base = std::env::var("FIB_FLOW_TEST_CHAOS_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or(20_261_130);
        base + self as u64
    }

    /// The `recovery_reason` every recovery must carry.
    fn reason(self) -> &'static str {
        match self {
            Scenario::Supersede => "worker_superseded",
            Scenario::RandomKill | Scenario::KillLeader => "worker_dead",
        }
    }

    /// The registry status a killed worker ends in.
    fn killed_status(self) -> WorkerStatus {
        match self {
            Scenario::Supersede => WorkerStatus::Superseded,
            Scenario::RandomKill | Scenario::KillLeader => WorkerStatus::Dead,
        }
    }
}

/// One kill: who, when (test clock, ms, right before the signal), and the
/// process that replaced it.
#[derive(Debug, Clone)]
struct Kill {
    worker_id: String,
    pod: String,
    at_ms: i64,
    successor: String,
    successor_ready_ms: i64,
}

/// The worker processes of one test, in slots that the kills replace.
struct Cluster<'a> {
    db: &'a TestDb,
    dir: tempfile::TempDir,
    slots: Vec<WorkerProcess>,
    started: usize,
    /// Every worker id that ever ran.
    worker_ids: HashSet<String>,
}

impl<'a> Cluster<'a> {
    async fn start(db: &'a TestDb) -> anyhow::Result<Cluster<'a>> {
        let mut cluster = Cluster {
            db,
            dir: tempfile::Builder::new()
                .prefix("fib-flow-chaos")
                .tempdir()?,
            slots: Vec::new(),
            started: 0,
            worker_ids: HashSet::new(),
        };
        for _ in 0..WORKERS {
            let pod = cluster.new_pod();
            let process = cluster.spawn(pod)?;
            cluster.slots.push(process);
        }
        wait_ready(&mut cluster.slots).await?;
        for worker in &cluster.slots {
            cluster.worker_ids.insert(worker.worker_id().to_owned());
        }
        Ok(cluster)
    }

    fn new_pod(&self) -> String {
        format!("pod-{}", self.started)
    }

    fn spawn(&mut self, pod: String) -> anyhow::Result<WorkerProcess> {
        let label = format!("worker-{}", self.started);
        self.started += 1;
        WorkerProcess::spawn(self.db, self.dir.path(), label, pod)
    }

    /// Kills the worker in `slot` and starts its replacement (same pod or
    /// a new one); returns the kill once the replacement is ready.
    async fn kill_and_replace(&mut self, slot: usize, same_pod: bool) -> anyhow::Result<Kill> {
        let pod = if same_pod {
            self.slots[slot].pod.clone()
        } else {
            self.new_pod()
        };
        let at_ms = now_ms();
        self.slots[slot].kill()?;
        let replacement = self.spawn(pod)?;
        let killed = std::mem::replace(&mut self.slots[slot], replacement);
        wait_ready(std::slice::from_mut(&mut self.slots[slot])).await?;
        let (successor, successor_ready_ms) = self.slots[slot].ready.clone().unwrap_or_default();
        self.worker_ids.insert(successor.clone());
        Ok(Kill {
            worker_id: killed.worker_id().to_owned(),
            pod: killed.pod.clone(),
            at_ms,
            successor,
            successor_ready_ms,
        })
    }

    /// Stops every live worker gracefully.
    async fn stop(&mut self) -> anyhow::Result<()> {
        for worker in &mut self.slots {
            worker.stop().await?;
        }
        Ok(())
    }

    fn live_ids(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|w| w.worker_id().to_owned())
            .collect()
    }
}

/// Which handler a top-level task runs, by its id.
type Submitted = HashMap<TaskId, &'static str>;

/// Submits every batch, one a second; returns what it submitted.
async fn submit_batches(manager: &TaskManager) -> anyhow::Result<Submitted> {
    let mut submitted = Submitted::new();
    let mut flows = 0;
    for batch in 0..BATCHES {
        if batch > 0 {
            tokio::time::sleep(BATCH_EVERY).await; // the pace of the load
        }
        for i in 0..TASKS_PER_BATCH {
            let n = batch * 1_000 + i;
            let (name, payload) = if i % 33 == 0 && flows < (batch + 1) * FLOWS_PER_BATCH {
                flows += 1;
                ("flow", flows)
            } else if i % 6 == 1 {
                ("slow", n)
            } else {
                ("noop", n)
            };
            submitted.insert(manager.submit(name, &payload).await?, name);
        }
    }
    Ok(submitted)
}

/// The kill rounds: every 2-3 s one worker is killed and replaced.
async fn chaos(
    cluster: &mut Cluster<'_>,
    manager: &TaskManager,
    scenario: Scenario,
    rng: &mut Rng,
) -> anyhow::Result<Vec<Kill>> {
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        // The pace of the chaos.
        tokio::time::sleep(Duration::from_millis(2_000 + rng.below(1_000))).await;
        let slot = match scenario {
            Scenario::KillLeader => {
                leader_slot(
                    cluster,
                    manager,
                    "a live worker to hold the maintenance lease",
                )
                .await
            }
            Scenario::RandomKill | Scenario::Supersede => {
                rng.below(cluster.slots.len() as u64) as usize
            }
        };
        let kill = cluster
            .kill_and_replace(slot, scenario == Scenario::Supersede)
            .await?;
        if scenario == Scenario::KillLeader {
            // A live node takes the lease over once the killed one's lapsed.
            leader_slot(
                cluster,
                manager,
                "a live node to take the maintenance lease over",
            )
            .await;
        }
        kills.push(kill);
    }
    Ok(kills)
}

/// Waits until a live worker holds the maintenance lease; returns its slot.
async fn leader_slot(cluster: &Cluster<'_>, manager: &TaskManager, what: &str) -> usize {
    let live = cluster.live_ids();
    common::wait_until(what, || async {
        let leader = manager
            .maintenance_leader()
            .await
            .expect("maintenance_leader")?;
        live.iter().position(|id| *id == leader.worker_id)
    })
    .await
}

/// Waits until all `total` tasks completed (failing on a deadline).
async fn wait_all_completed(manager: &TaskManager, total: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        let stats = manager.task_stats(None).await?;
        let completed: u64 = stats
            .iter()
            .filter(|s| s.status == TaskStatus::Completed)
            .map(|s| s.count)
            .sum();
        let all: u64 = stats.iter().map(|s| s.count).sum();
        if completed == total && all == total {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "after {DRAIN_DEADLINE:?} only {completed} of {total} tasks completed: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every event and attempt of every task, by task.
struct History {
    events: HashMap<TaskId, Vec<TaskEvent>>,
    attempts: HashMap<TaskId, Vec<TaskAttempt>>,
}

async fn history(manager: &TaskManager, roots: &[TaskId]) -> anyhow::Result<History> {
    let pages: Vec<(Vec<TaskEvent>, Vec<TaskAttempt>)> =
        futures::stream::iter(roots.iter().copied())
            .map(|root| async move {
                let events = manager.workflow_events(root, EventQuery::new()).await?;
                let attempts = manager.workflow_attempts(root, AttemptQuery::new()).await?;
                Ok::<_, fib_flow::Error>((events.items, attempts.items))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
    let mut history = History {
        events: HashMap::new(),
        attempts: HashMap::new(),
    };
    for (events, attempts) in pages {
        for event in events {
            history.events.entry(event.task_id).or_default().push(event);
        }
        for attempt in attempts {
            history
                .attempts
                .entry(attempt.task_id)
                .or_default()
                .push(attempt);
        }
    }
    Ok(history)
}

fn meta<'e>(event: &'e TaskEvent, key: &str) -> &'e str {
    event
        .metadata
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// What the checks found, for the summary line.
#[derive(Default)]
struct Findings {
    recoveries: usize,
    interrupted: usize,
    max_latency_ms: i64,
    by_successor: usize,
    problems: Vec<String>,
}

/// Checks every task's rows, events and attempts against the kills.
fn check_tasks(
    scenario: Scenario,
    rows: &[TaskRecord],
    history: &History,
    kills: &[Kill],
    workers: &HashSet<String>,
) -> Findings {
    let killed: HashMap<&str, &Kill> = kills.iter().map(|k| (k.worker_id.as_str(), k)).collect();
    let mut found = Findings::default();
    let mut problems = Vec::new();
    for row in rows {
        let id = row.id;
        let no_events = Vec::new();
        let no_attempts = Vec::new();
        let events = history.events.get(&id).unwrap_or(&no_events);
        let attempts = history.attempts.get(&id).unwrap_or(&no_attempts);
        if row.status != TaskStatus::Completed {
            problems.push(format!("task {id} ({}) is {}", row.name, row.status));
        }
        if row.retry_count != 0 {
            problems.push(format!("task {id} was retried {} times", row.retry_count));
        }
        let completions = events
            .iter()
            .filter(|e| e.event_type == EventType::TaskCompleted)
            .count();
        if completions != 1 {
            problems.push(format!("task {id} has {completions} task_completed events"));
        }
        let completed = attempts
            .iter()
            .filter(|a| a.outcome == Some(AttemptOutcome::Completed))
            .count();
        if completed != 1 {
            problems.push(format!(
                "task {id} has {completed} completed attempts: {attempts:?}"
            ));
        }
        // Every attempt is closed; the only way one ends other than by
        // completing or handing over to children is the kill of its worker.
        let mut interrupted: HashMap<&str, usize> = HashMap::new();
        for attempt in attempts {
            let worker = attempt.worker_id.as_deref().unwrap_or("");
            match attempt.outcome {
                None => problems.push(format!("task {id}: attempt left open {attempt:?}")),
                Some(AttemptOutcome::Completed | AttemptOutcome::Suspended) => {}
                Some(AttemptOutcome::Interrupted) if killed.contains_key(worker) => {
                    *interrupted.entry(worker).or_default() += 1;
                    found.interrupted += 1;
                }
                Some(_) => problems.push(format!("task {id}: unexpected attempt {attempt:?}")),
            }
        }
        // Each interrupted attempt has its task_recovered event, naming the
        // killed worker, within the reclaim bound of the kill.
        let mut recovered: HashMap<&str, usize> = HashMap::new();
        for event in events
            .iter()
            .filter(|e| e.event_type == EventType::TaskRecovered)
        {
            found.recoveries += 1;
            let from = meta(event, "recovered_from_worker_id");
            *recovered.entry(from).or_default() += 1;
            if meta(event, "recovery_reason") != scenario.reason() {
                problems.push(format!(
                    "task {id}: recovery reason is not {}: {event:?}",
                    scenario.reason()
                ));
            }
            // Recovered by one of the worker processes (the test's own
            // manager never starts), named on the event and in its metadata.
            let by = meta(event, "recovered_by_worker_id");
            if !workers.contains(by)
                || event.worker_id.as_deref() != Some(by)
                || meta(event, "recovered_by_pod_id").is_empty()
            {
                problems.push(format!(
                    "task {id}: recovery names no known recovering worker: {event:?}"
                ));
            }
            let Some(kill) = killed.get(from) else {
                problems.push(format!(
                    "task {id}: recovered from a worker that was not killed: {event:?}"
                ));
                continue;
            };
            let latency = event.event_time.timestamp_millis() - kill.at_ms;
            found.max_latency_ms = found.max_latency_ms.max(latency);
            if latency < 0 {
                problems.push(format!(
                    "task {id}: recovered {} ms before its worker {from} was killed: {event:?}",
                    -latency
                ));
            }
            if latency > reclaim_bound_ms() {
                problems.push(format!(
                    "task {id}: recovered {latency} ms after its worker {from} was killed (bound {} ms): {event:?}",
                    reclaim_bound_ms()
                ));
            }
            if scenario == Scenario::Supersede {
                // Taken back while its successor started, not later.
                if event.event_time.timestamp_millis() > kill.successor_ready_ms {
                    problems.push(format!(
                        "task {id}: recovered after the superseding worker {} was started (ready at {} ms): {event:?}",
                        kill.successor, kill.successor_ready_ms
                    ));
                }
                if meta(event, "recovered_by_worker_id") == kill.successor {
                    found.by_successor += 1;
                }
            }
        }
        if recovered != interrupted {
            problems.push(format!(
                "task {id}: task_recovered events by worker {recovered:?} do not match interrupted attempts {interrupted:?}"
            ));
        }
    }
    found.problems = problems;
    found
}

/// The whole scenario on one database.
async fn run_chaos(db: TestDb, scenario: Scenario) -> anyhow::Result<()> {
    if !db.shareable() {
        return Ok(()); // a memory database cannot be shared between processes
    }
    // One chaos test at a time: they measure recovery latency, and two at
    // once would share two cores among eight worker processes.
    let _turn = CHAOS.lock().await;
    let began = Instant::now();
    let seed = scenario.seed();
    let mut rng = Rng(seed);
    // The test's own manager only submits and queries: never started, so it
    // neither runs tasks nor competes for the maintenance lease.
    let manager = db.manager().await;
    let mut cluster = Cluster::start(&db).await?;

    let (submitted, kills) = tokio::join!(
        submit_batches(&manager),
        chaos(&mut cluster, &manager, scenario, &mut rng)
    );
    let (submitted, kills) = (submitted?, kills?);
    let flows = submitted.values().filter(|name| **name == "flow").count() as u64;
    let total = submitted.len() as u64 + flows * LEAVES_PER_FLOW;
    wait_all_completed(&manager, total).await?;
    cluster.stop().await?;

    // Every task, top-level and child, completed once and nothing else.
    let rows = manager.get_tasks(TaskFilter::new()).await?;
    assert_eq!(rows.len() as u64, total, "tasks in the database");
    for row in &rows {
        match (row.parent_id, submitted.get(&row.id)) {
            (None, Some(&"flow")) => {
                assert_eq!(row.total_children, LEAVES_PER_FLOW as i64, "{row:?}");
                assert_eq!(
                    row.result.as_ref().and_then(|r| r.get("stages")),
                    Some(&json!(3)),
                    "{row:?}"
                );
            }
            (None, Some(name)) => assert_eq!(row.name, *name, "{row:?}"),
            (Some(parent), None) => {
                assert_eq!(row.name, "leaf", "{row:?}");
                assert_eq!(submitted.get(&parent), Some(&"flow"), "{row:?}");
            }
            _ => panic!("a task nobody submitted: {row:?}"),
        }
    }
    let mut roots: Vec<TaskId> = submitted.keys().copied().collect();
    roots.sort();
    let history = history(&manager, &roots).await?;
    let found = check_tasks(scenario, &rows, &history, &kills, &cluster.worker_ids);
    assert!(
        found.problems.is_empty(),
        "{} problems (seed {seed}), the first: {:#?}",
        found.problems.len(),
        &found.problems[..found.problems.len().min(20)]
    );
    // The kills hit running tasks (else nothing about recovery was tested).
    assert!(
        found.recoveries > 0,
        "{} kills interrupted no task",
        kills.len()
    );

    // The registry: each killed worker ends dead (or superseded by its
    // successor); the rest stopped gracefully. A worker killed while it
    // held no task may still await its reap when the last task completes
    // (its lease lapses, then the next maintenance pass marks it).
    let workers = manager.workers(WorkerFilter::new()).await?;
    for kill in &kills {
        let what = format!(
            "killed worker {} to be marked {:?}",
            kill.worker_id,
            scenario.killed_status()
        );
        let worker = common::wait_until(&what, || async {
            match manager.worker(&kill.worker_id).await {
                Ok(Some(worker)) if worker.status == scenario.killed_status() => Some(worker),
                _ => None,
            }
        })
        .await;
        assert_eq!(worker.status, scenario.killed_status(), "{worker:?}");
        assert_eq!(worker.pod_id, kill.pod, "{worker:?}");
        assert_eq!(worker.running_tasks, 0, "{worker:?}");
        if scenario == Scenario::Supersede {
            assert_eq!(
                worker.superseded_by.as_deref(),
                Some(kill.successor.as_str()),
                "{worker:?}"
            );
        }
    }
    for id in cluster.live_ids() {
        let worker = workers.iter().find(|w| w.worker_id == id);
        assert_eq!(
            worker.map(|w| w.status),
            Some(WorkerStatus::Stopped),
            "{worker:?}"
        );
    }
    assert_eq!(
        workers.len(),
        cluster.worker_ids.len(),
        "registered workers: {workers:?}"
    );

    eprintln!(
        "{} / {}: seed {seed}, {} top-level tasks ({flows} workflows), {total} tasks in all, {} kills, {} recoveries ({} interrupted attempts{}), max reclaim latency {} ms (bound {} ms), {:.1} s",
        db.backend,
        scenario.name(),
        submitted.len(),
        kills.len(),
        found.recoveries,
        found.interrupted,
        if scenario == Scenario::Supersede {
            format!(", {} by the superseding worker", found.by_successor)
        } else {
            String::new()
        },
        found.max_latency_ms,
        reclaim_bound_ms(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Held by the chaos test that runs now.
static CHAOS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

backend_test! {
    async fn a_killed_worker_is_reaped_and_its_tasks_recovered(db) {
        run_chaos(db, Scenario::RandomKill).await
    }
}

backend_test! {
    async fn a_restarted_pod_supersedes_its_killed_worker(db) {
        run_chaos(db, Scenario::Supersede).await
    }
}

backend_test! {
    async fn killing_the_maintenance_node_hands_maintenance_over(db) {
        run_chaos(db, Scenario::KillLeader).await
    }
}
