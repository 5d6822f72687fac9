//! `fib-flow bench`: reproducible throughput figures for a database.
//!
//! Workloads (each resets its tables first and leaves nothing behind):
//! - `submit-single`: N tasks submitted one at a time, awaiting each;
//! - `submit-batch`: N tasks through `submit_many` in batches of B;
//! - `drain`: N pre-submitted no-op tasks drained by one manager at each
//!   concurrency C, timed from `start()` to the last completion, with the
//!   rate of every tenth of the run (a rate that sags shows a slowdown as
//!   finished rows accumulate);
//! - `backlog`: one drain of a large backlog (`--backlog-tasks`, 500,000
//!   by default) at the first concurrency, reported as `drain-backlog`: its
//!   tenths show whether the rate sags as the backlog shrinks and finished
//!   rows pile up;
//! - `latency`: an idle worker and a submitter (two managers, each with its
//!   own wake signal, so the worker hears of a task only by polling or by
//!   PostgreSQL `LISTEN/NOTIFY`, as a worker in another process would);
//!   N submits a fixed interval apart; the time from `submit` returning to
//!   the handler starting, p50 / p99 / max. With `--one-process` the worker
//!   submits to itself (the in-process wake-up, SQLite's only push path);
//! - `floor`: the database's ceiling for fib-flow's schema, through
//!   [`fib_flow::floor::FloorProbe`] (see the `floor` submodule):
//!   `floor-insert-single`, `floor-insert-batch` and `floor-drain`, the same
//!   statements issued bare in the same sizes. Each engine figure with a
//!   matching floor figure (same tasks, batch and concurrency) gets
//!   `floor_ratio`, its rate divided by the floor's ("of floor" in the
//!   table). When `floor` is among the workloads, each engine workload it
//!   bounds is followed at once by its floor run (`submit-single` by
//!   `floor-insert-single`, `submit-batch` by `floor-insert-batch`, each
//!   `drain` concurrency by `floor-drain` at that concurrency), so that a
//!   ratio's two sides run back to back, never with other
//!   workloads (the 500,000-task backlog) between them; the `floor` entry
//!   runs the parts whose engine workload was not requested.
//!
//! Isolation: on PostgreSQL and MySQL the runs use their own schema
//! (`fib_flow_bench` unless `--schema` names another), emptied (every
//! fib-flow table truncated, by [`FloorProbe::reset`]) before and after
//! each workload; on SQLite a fresh file beside the named one
//! (`PATH.bench`), removed afterwards; `sqlite::memory:` as it is.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use fib_flow::floor::FloorProbe;
use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};
use serde::Serialize;
use tokio::sync::Notify;

use crate::cli::{database_url, BenchArgs, Workload};

mod floor;

/// The schema a server run uses unless `--schema` names another.
pub const DEFAULT_SCHEMA: &str = "fib_flow_bench";

/// The result of one workload run.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `submit-single`, `submit-batch`, `drain`, `drain-backlog`,
    /// `latency`, `floor-insert-single`, `floor-insert-batch` or
    /// `floor-drain`.
    pub workload: &'static str,
    /// `sqlite`, `postgres` or `mysql`.
    pub backend: &'static str,
    /// Tasks in the run.
    pub tasks: usize,
    /// Batch size (`submit-batch`, `floor-insert-batch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// `max_concurrent_tasks` (`drain`, `drain-backlog`); the claim limit
    /// (`floor-drain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Wall time of the measured part, seconds.
    pub seconds: f64,
    /// Tasks per second.
    pub rate: f64,
    /// Rate in each tenth of the tasks (the drains), tasks per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenths: Vec<f64>,
    /// Submit-to-start latency percentiles (`latency`), milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// Whether the latency run submitted through the worker's own manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_process: Option<bool>,
    /// This rate divided by the matching floor figure's (`submit-single`
    /// by `floor-insert-single`, `submit-batch` by `floor-insert-batch`,
    /// `drain` by `floor-drain`, with the same tasks, batch and
    /// concurrency), when the same invocation measured both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
}

/// Submit-return to handler-start latency, milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Where the runs happen and how they are cleaned up.
struct Target {
    url: String,
    schema: Option<String>,
    /// A SQLite file created for the run, removed at the end.
    scratch: Option<PathBuf>,
}

impl Target {
    fn new(database: &str, schema: Option<&str>) -> anyhow::Result<Self> {
        let url = database_url(database);
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => {
                let path = url.trim_start_matches("sqlite:");
                if path == ":memory:" {
                    return Ok(Target {
                        url,
                        schema: None,
                        scratch: None,
                    });
                }
                let scratch = PathBuf::from(format!("{path}.bench"));
                remove_sqlite_files(&scratch);
                Ok(Target {
                    url: format!("sqlite:{}", scratch.display()),
                    schema: None,
                    scratch: Some(scratch),
                })
            }
            _ => Ok(Target {
                url,
                schema: Some(schema.unwrap_or(DEFAULT_SCHEMA).to_owned()),
                scratch: None,
            }),
        }
    }

    /// A manager on the target with its tables created and emptied.
    async fn manager(&self, concurrency: usize) -> anyhow::Result<TaskManager> {
        self.manager_polling(concurrency, Duration::from_millis(50))
            .await
    }

    /// [`Target::manager`] with the given poll interval.
    async fn manager_polling(
        &self,
        concurrency: usize,
        poll: Duration,
    ) -> anyhow::Result<TaskManager> {
        let mut builder = TaskManager::builder()
            .database(self.url.clone())
            .max_concurrent_tasks(concurrency)
            .poll_interval(poll)
            .no_retention();
        if let Some(schema) = &self.schema {
            builder = builder.schema(schema.clone());
        }
        let manager = builder
            .build()
            .await
            .context("connecting to the database")?;
        manager.setup().await.context("creating the tables")?;
        FloorProbe::new(&manager)?.reset().await?;
        Ok(manager)
    }

    fn cleanup(&self) {
        if let Some(scratch) = &self.scratch {
            remove_sqlite_files(scratch);
        }
    }
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Runs the workloads `args` names; returns one figure per run.
pub async fn run(database: &str, args: &BenchArgs) -> anyhow::Result<Vec<Figure>> {
    let target = Target::new(database, args.schema.as_deref())?;
    let result = run_all(&target, args).await;
    target.cleanup();
    let mut figures = result?;
    set_floor_ratios(&mut figures);
    Ok(figures)
}

async fn run_all(target: &Target, args: &BenchArgs) -> anyhow::Result<Vec<Figure>> {
    let max_wait = Duration::from_secs(args.max_wait);
    let paired = args.workloads.contains(&Workload::Floor);
    let mut figures = Vec::new();
    for workload in &args.workloads {
        match workload {
            Workload::SubmitSingle => {
                figures.push(submit_single(target, args.single_tasks).await?);
                if paired {
                    figures.push(floor::insert_single(target, args.single_tasks).await?);
                }
            }
            Workload::SubmitBatch => {
                figures.push(submit_batch(target, args.batch_tasks, args.batch_size).await?);
                if paired {
                    figures.push(
                        floor::insert_batch(target, args.batch_tasks, args.batch_size).await?,
                    );
                }
            }
            Workload::Drain => {
                for &concurrency in &args.concurrency {
                    let run = DrainRun {
                        workload: "drain",
                        tasks: args.drain_tasks,
                        concurrency,
                        max_wait,
                    };
                    figures.push(drain(target, &run).await?);
                    if paired {
                        figures.push(
                            floor::drain(target, args.drain_tasks, concurrency, max_wait).await?,
                        );
                    }
                }
            }
            Workload::Backlog => {
                let run = DrainRun {
                    workload: "drain-backlog",
                    tasks: args.backlog_tasks,
                    concurrency: args.concurrency.first().copied().unwrap_or(10),
                    max_wait,
                };
                figures.push(drain(target, &run).await?);
            }
            Workload::Latency => {
                let interval = Duration::from_millis(args.latency_interval_ms);
                let poll = Duration::from_millis(args.poll_ms);
                let run = LatencyRun {
                    tasks: args.latency_tasks,
                    interval,
                    poll,
                    one_process: args.one_process,
                    max_wait,
                };
                figures.push(latency(target, &run).await?);
            }
            Workload::Floor => figures.extend(floor::run_unpaired(target, args).await?),
        }
    }
    Ok(figures)
}

/// The engine workload a floor workload bounds.
fn engine_of(floor_workload: &str) -> Option<&'static str> {
    match floor_workload {
        "floor-insert-single" => Some("submit-single"),
        "floor-insert-batch" => Some("submit-batch"),
        "floor-drain" => Some("drain"),
        _ => None,
    }
}

/// Gives each engine figure with a matching floor figure (same backend,
/// tasks, batch and concurrency) its `floor_ratio`.
fn set_floor_ratios(figures: &mut [Figure]) {
    let floors: Vec<Figure> = figures
        .iter()
        .filter(|f| engine_of(f.workload).is_some())
        .cloned()
        .collect();
    for figure in figures.iter_mut() {
        let matching = floors.iter().find(|floor| {
            engine_of(floor.workload) == Some(figure.workload)
                && (floor.backend, floor.tasks, floor.batch, floor.concurrency)
                    == (
                        figure.backend,
                        figure.tasks,
                        figure.batch,
                        figure.concurrency,
                    )
        });
        if let Some(floor) = matching.filter(|floor| floor.rate > 0.0) {
            figure.floor_ratio = Some(figure.rate / floor.rate);
        }
    }
}

/// Empties the tables after a run and closes the manager.
async fn finish(manager: TaskManager) -> anyhow::Result<()> {
    FloorProbe::new(&manager)?.reset().await?;
    manager.stop().await?;
    Ok(())
}

fn figure(
    workload: &'static str,
    manager: &TaskManager,
    tasks: usize,
    elapsed: Duration,
) -> Figure {
    Figure {
        workload,
        backend: manager.backend().backend,
        tasks,
        batch: None,
        concurrency: None,
        seconds: elapsed.as_secs_f64(),
        rate: tasks as f64 / elapsed.as_secs_f64().max(1e-9),
        tenths: Vec::new(),
        latency_ms: None,
        one_process: None,
        floor_ratio: None,
    }
}

async fn submit_single(target: &Target, tasks: usize) -> anyhow::Result<Figure> {
    let manager = target.manager(1).await?;
    let started = Instant::now();
    for i in 0..tasks {
        manager.submit("noop", &i).await?;
    }
    let figure = figure("submit-single", &manager, tasks, started.elapsed());
    finish(manager).await?;
    Ok(figure)
}

async fn submit_batch(target: &Target, tasks: usize, batch: usize) -> anyhow::Result<Figure> {
    let manager = target.manager(1).await?;
    let payloads: Vec<usize> = (0..tasks).collect();
    let started = Instant::now();
    for chunk in payloads.chunks(batch.max(1)) {
        manager.submit_many("noop", chunk).await?;
    }
    let figure = Figure {
        batch: Some(batch),
        ..figure("submit-batch", &manager, tasks, started.elapsed())
    };
    finish(manager).await?;
    Ok(figure)
}

/// Counts handler returns and wakes the watcher at every tenth.
struct Progress {
    done: AtomicUsize,
    changed: Notify,
}

/// When each tenth of a run's tasks was done, as offsets from its start.
struct Tenths {
    tasks: usize,
    marks: Vec<Duration>,
}

impl Tenths {
    fn new(tasks: usize) -> Self {
        Tenths {
            tasks,
            marks: Vec::with_capacity(10),
        }
    }

    /// Tasks done at the end of tenth `k` (0 to 10).
    fn boundary(&self, k: usize) -> usize {
        (self.tasks * k).div_ceil(10)
    }

    /// Records `done` tasks at `at`: marks every tenth it completes.
    fn record(&mut self, done: usize, at: Duration) {
        while !self.is_full() && done >= self.boundary(self.marks.len() + 1) {
            self.marks.push(at);
        }
    }

    /// Whether all ten tenths are marked.
    fn is_full(&self) -> bool {
        self.marks.len() == 10
    }

    /// The rate of each marked tenth, tasks per second.
    fn rates(&self) -> Vec<f64> {
        let mut previous = Duration::ZERO;
        self.marks
            .iter()
            .enumerate()
            .map(|(k, &at)| {
                let count = self.boundary(k + 1) - self.boundary(k);
                let rate = count as f64 / (at - previous).as_secs_f64().max(1e-9);
                previous = at;
                rate
            })
            .collect()
    }
}

/// One drain: `tasks` pre-submitted no-op tasks drained by one manager at
/// `concurrency`, reported as `workload` (`drain` or `drain-backlog`).
struct DrainRun {
    workload: &'static str,
    tasks: usize,
    concurrency: usize,
    max_wait: Duration,
}

async fn drain(target: &Target, run: &DrainRun) -> anyhow::Result<Figure> {
    let DrainRun {
        workload,
        tasks,
        concurrency,
        max_wait,
    } = *run;
    let manager = target.manager(concurrency).await?;
    let payloads: Vec<usize> = (0..tasks).collect();
    for chunk in payloads.chunks(1_000) {
        manager.submit_many("noop", chunk).await?;
    }
    let progress = Arc::new(Progress {
        done: AtomicUsize::new(0),
        changed: Notify::new(),
    });
    let counter = progress.clone();
    manager.register("noop", move |_task: Task| {
        let counter = counter.clone();
        async move {
            counter.done.fetch_add(1, Ordering::Relaxed);
            counter.changed.notify_one();
            Ok::<_, BoxError>(Step::done(serde_json::Value::Null))
        }
    })?;
    let started = Instant::now();
    manager.start().await?;
    // Each tenth is timed when its last handler returned; the end when the
    // database counts every task completed (outcomes are written in
    // batches after the handlers return).
    let mut tenths = Tenths::new(tasks);
    let gave_up = |done: u64| {
        anyhow::anyhow!(
            "{workload}: only {done} of {tasks} tasks done after {max_wait:?} (--max-wait)"
        )
    };
    while !tenths.is_full() {
        if started.elapsed() > max_wait {
            return Err(gave_up(progress.done.load(Ordering::Relaxed) as u64));
        }
        let notified = progress.changed.notified();
        tenths.record(progress.done.load(Ordering::Relaxed), started.elapsed());
        if !tenths.is_full() {
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
    loop {
        let completed: u64 = manager
            .task_stats(None)
            .await?
            .iter()
            .filter(|s| s.status == TaskStatus::Completed)
            .map(|s| s.count)
            .sum();
        if completed >= tasks as u64 {
            break;
        }
        if started.elapsed() > max_wait {
            return Err(gave_up(completed));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let figure = Figure {
        concurrency: Some(concurrency),
        tenths: tenths.rates(),
        ..figure(workload, &manager, tasks, started.elapsed())
    };
    finish(manager).await?;
    Ok(figure)
}

/// The parameters of one latency run.
struct LatencyRun {
    tasks: usize,
    interval: Duration,
    poll: Duration,
    /// Submit through the worker's own manager (the in-process wake-up)
    /// instead of a second one.
    one_process: bool,
    max_wait: Duration,
}

async fn latency(target: &Target, run: &LatencyRun) -> anyhow::Result<Figure> {
    let LatencyRun {
        tasks,
        interval,
        poll,
        one_process,
        max_wait,
    } = *run;
    let worker = target.manager_polling(10, poll).await?;
    let started: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; tasks]));
    let recorder = started.clone();
    worker.register("noop", move |task: Task| {
        let now = Instant::now();
        let recorder = recorder.clone();
        async move {
            let index: usize = task.payload()?;
            let mut started = recorder.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = started.get_mut(index) {
                slot.get_or_insert(now);
            }
            Ok::<_, BoxError>(Step::done(serde_json::Value::Null))
        }
    })?;
    // Never started and without the handler: it only inserts rows.
    let submitter = match one_process {
        true => worker.clone(),
        false => target.manager_polling(1, poll).await?,
    };
    worker.start().await?;
    // Let the worker settle into its idle wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut submitted = Vec::with_capacity(tasks);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let began = Instant::now();
    for index in 0..tasks {
        ticks.tick().await;
        submitter.submit("noop", &index).await?;
        submitted.push(Instant::now());
    }
    let deadline = Instant::now() + max_wait;
    loop {
        let waiting = started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.is_none())
            .count();
        if waiting == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "latency: {waiting} of {tasks} handlers had not started after {max_wait:?} (--max-wait)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = began.elapsed();
    let mut latencies: Vec<Duration> = {
        let started = started.lock().unwrap_or_else(|e| e.into_inner());
        submitted
            .iter()
            .zip(started.iter())
            .filter_map(|(&at, start)| Some(start.as_ref()?.saturating_duration_since(at)))
            .collect()
    };
    latencies.sort_unstable();
    let figure = Figure {
        latency_ms: Some(Latency {
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            max: percentile(&latencies, 100.0),
        }),
        one_process: Some(one_process),
        ..figure("latency", &worker, tasks, elapsed)
    };
    if !one_process {
        submitter.stop().await?;
    }
    finish(worker).await?;
    Ok(figure)
}

/// Nearest-rank percentile of sorted durations, in milliseconds (0 for
/// none).
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// The highest drain rate among the figures, if any.
pub fn best_drain(figures: &[Figure]) -> Option<&Figure> {
    figures
        .iter()
        .filter(|f| f.workload == "drain")
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&values[..1], 99.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    fn run(workload: &'static str, batch: Option<usize>, c: Option<usize>, rate: f64) -> Figure {
        Figure {
            workload,
            backend: "sqlite",
            tasks: 100,
            batch,
            concurrency: c,
            seconds: 1.0,
            rate,
            tenths: Vec::new(),
            latency_ms: None,
            one_process: None,
            floor_ratio: None,
        }
    }

    #[test]
    fn floor_ratios_pair_runs_of_the_same_sizes() {
        let mut figures = vec![
            run("submit-single", None, None, 50.0),
            run("submit-batch", Some(10), None, 300.0),
            run("drain", None, Some(2), 40.0),
            run("drain", None, Some(8), 90.0),
            run("drain-backlog", None, Some(2), 40.0),
            run("floor-insert-single", None, None, 100.0),
            run("floor-insert-batch", Some(20), None, 900.0),
            run("floor-drain", None, Some(2), 80.0),
        ];
        set_floor_ratios(&mut figures);
        let ratios: Vec<Option<f64>> = figures.iter().map(|f| f.floor_ratio).collect();
        assert_eq!(
            ratios,
            [Some(0.5), None, Some(0.5), None, None, None, None, None]
        );
    }

    #[test]
    fn tenths_are_marked_when_crossed() {
        // Tenths of 25 tasks end at 3, 5, 8, 10, 13, ...
        let mut tenths = Tenths::new(25);
        tenths.record(4, Duration::from_secs(1));
        assert_eq!(tenths.marks.len(), 1);
        tenths.record(5, Duration::from_secs(2));
        assert_eq!(tenths.marks.len(), 2);
        tenths.record(25, Duration::from_secs(4));
        assert!(tenths.is_full());
        let rates = tenths.rates();
        assert_eq!(rates.len(), 10);
        assert_eq!(rates[..3], [3.0, 2.0, 1.5]);
    }
}
