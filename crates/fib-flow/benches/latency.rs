//! Whole-system benchmark: pickup latency, from the moment `submit` returns
//! in one manager to the moment the handler starts in another, idle one.
//!
//! ```text
//! cargo bench -p fib-flow --bench latency
//! cargo bench -p fib-flow --bench latency -- --tasks 100 --interval-ms 20
//! cargo bench -p fib-flow --bench latency -- --backends postgres --poll-ms 1000,200
//! ```
//!
//! Options (also as environment variables `FIB_FLOW_BENCH_LATENCY_TASKS`,
//! `FIB_FLOW_BENCH_LATENCY_INTERVAL_MS`, `FIB_FLOW_BENCH_LATENCY_POLL_MS`
//! and, shared with `drain`, `FIB_FLOW_BENCH_BACKENDS`):
//! - `--tasks N`: tasks per run (default 200);
//! - `--interval-ms MS`: time between two submissions (default 50);
//! - `--poll-ms P[,P...]`: the worker's `poll_interval` in milliseconds
//!   (default 1000, the library default);
//! - `--backends B[,B...]`: `sqlite_file`, `postgres`, `mysql` (default:
//!   `sqlite_file`, plus each server whose `FIB_FLOW_TEST_POSTGRES_URL` /
//!   `FIB_FLOW_TEST_MYSQL_URL` is set; a server run uses a fresh schema and
//!   drops it afterwards). `sqlite_memory` is refused: an in-memory
//!   database cannot be shared by two managers;
//! - `--max-wait SECS`: after the last submission, how long to wait for the
//!   remaining handlers to start (default 60).
//!
//! Each run uses two `TaskManager`s on the same database in this process: a
//! *worker* (started, with the handler) and a *submitter* (never started, no
//! handler). Each manager has its own in-process wake signal, so the worker
//! learns of a task only by polling or by PostgreSQL `LISTEN/NOTIFY`, as a
//! worker in another process would. PostgreSQL runs twice, with
//! `notifications(true)` and `notifications(false)`.
//!
//! Each (backend, notifications, poll interval) prints one line: the 50th,
//! 90th and 99th percentile (nearest rank), the maximum and the mean of the
//! latencies, in milliseconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use fib_flow::{BoxError, Step, Task};
use tokio::time::MissedTickBehavior;

mod common;

use common::{backends_or_available, Database};

const DEFAULT_TASKS: u64 = 200;
const DEFAULT_INTERVAL_MS: u64 = 50;
const DEFAULT_POLL_MS: [u64; 1] = [1_000];
const DEFAULT_MAX_WAIT_SECS: u64 = 60;
/// How long the started worker is left idle before the first submission.
const IDLE_BEFORE: Duration = Duration::from_millis(300);
const HANDLER: &str = "latency";

/// The options in the types the runs use.
struct Resolved {
    tasks: usize,
    interval: Duration,
    poll_ms: Vec<u64>,
    backends: Vec<String>,
    max_wait: Duration,
}

/// Pickup latency: from `submit` returning in one manager to the handler
/// starting in another, idle one.
#[derive(Debug, Parser)]
#[command(name = "latency")]
struct Options {
    /// Tasks per configuration.
    #[arg(long, default_value_t = DEFAULT_TASKS, value_parser = clap::value_parser!(u64).range(1..))]
    tasks: u64,
    /// Pause between two submissions, ms.
    #[arg(long, default_value_t = DEFAULT_INTERVAL_MS)]
    interval_ms: u64,
    /// The worker's poll interval(s), ms (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_POLL_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    poll_ms: Vec<u64>,
    /// Backends: sqlite_file, postgres, mysql (default: sqlite_file plus
    /// each server whose FIB_FLOW_TEST_*_URL is set).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Give up on a configuration after this many seconds.
    #[arg(long, default_value_t = DEFAULT_MAX_WAIT_SECS)]
    max_wait: u64,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The instants of one run, indexed by the task's payload (its submission
/// number).
struct Instants {
    submitted: Vec<Option<Instant>>,
    started: Vec<Option<Instant>>,
}

struct Outcome {
    /// Pickup latency of every task whose handler started, sorted.
    latencies: Vec<Duration>,
    /// Handlers that started before `submit` had returned to the caller
    /// (counted as zero latency).
    early: usize,
    /// Whether the worker's backend can be woken by the database.
    pushes: bool,
}

async fn run(
    db: &Database,
    tasks: usize,
    interval: Duration,
    poll: Duration,
    notifications: bool,
    max_wait: Duration,
) -> anyhow::Result<Outcome> {
    let instants = Arc::new(Mutex::new(Instants {
        submitted: vec![None; tasks],
        started: vec![None; tasks],
    }));

    let worker = db
        .builder(poll)
        .notifications(notifications)
        .build()
        .await?;
    worker.setup().await?;
    let pushes = worker.backend().listen_notify && notifications;
    let recorder = Arc::clone(&instants);
    worker.register(HANDLER, move |task: Task| {
        let now = Instant::now();
        let recorder = Arc::clone(&recorder);
        async move {
            let index: usize = task.payload()?;
            let mut instants = recorder.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = instants.started.get_mut(index) {
                slot.get_or_insert(now);
            }
            Ok::<_, BoxError>(Step::done(serde_json::Value::Null))
        }
    })?;
    // Never started and without the handler: it only inserts rows.
    let submitter = db
        .builder(poll)
        .notifications(notifications)
        .build()
        .await?;

    worker.start().await?;
    tokio::time::sleep(IDLE_BEFORE).await;

    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for index in 0..tasks {
        ticks.tick().await;
        submitter.submit(HANDLER, &index).await?;
        let now = Instant::now();
        instants.lock().unwrap_or_else(|e| e.into_inner()).submitted[index] = Some(now);
    }

    let deadline = Instant::now() + max_wait;
    loop {
        let pending = {
            let instants = instants.lock().unwrap_or_else(|e| e.into_inner());
            instants.started.iter().filter(|s| s.is_none()).count()
        };
        if pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("gave up: {pending} of {tasks} handlers had not started");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.stop().await?;
    submitter.stop().await?;

    let instants = instants.lock().unwrap_or_else(|e| e.into_inner());
    let mut early = 0;
    let mut latencies: Vec<Duration> = instants
        .submitted
        .iter()
        .zip(&instants.started)
        .filter_map(|(submitted, started)| {
            let (submitted, started) = ((*submitted)?, (*started)?);
            if started < submitted {
                early += 1;
            }
            Some(started.saturating_duration_since(submitted))
        })
        .collect();
    latencies.sort_unstable();
    Ok(Outcome {
        latencies,
        early,
        pushes,
    })
}

/// Nearest-rank percentile of sorted values, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    ms(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let options = Resolved {
        tasks: usize::try_from(options.tasks)?,
        interval: Duration::from_millis(options.interval_ms),
        poll_ms: options.poll_ms,
        backends: backends_or_available(options.backends, &["sqlite_file", "postgres", "mysql"]),
        max_wait: Duration::from_secs(options.max_wait),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "latency: {} tasks per run, one every {} ms; backends {}; worker poll_interval {:?} ms",
        options.tasks,
        options.interval.as_millis(),
        options.backends.join(","),
        options.poll_ms
    );
    println!(
        "{:<12} {:<7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "backend", "notify", "poll", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"
    );
    for backend in &options.backends {
        let notify_settings: &[bool] = if backend == "postgres" {
            &[true, false]
        } else {
            &[true]
        };
        for &notifications in notify_settings {
            for &poll_ms in &options.poll_ms {
                if backend == "sqlite_memory" {
                    bail!("sqlite_memory: an in-memory database cannot be shared by two managers; use sqlite_file");
                }
                let db = Database::new(backend)?;
                let poll = Duration::from_millis(poll_ms);
                let outcome = runtime.block_on(async {
                    let outcome = run(
                        &db,
                        options.tasks,
                        options.interval,
                        poll,
                        notifications,
                        options.max_wait,
                    )
                    .await;
                    if let Err(error) = db.drop_schema().await {
                        eprintln!("could not drop the benchmark schema: {error}");
                    }
                    outcome
                })?;
                let lat = &outcome.latencies;
                let mean = if lat.is_empty() {
                    f64::NAN
                } else {
                    lat.iter().map(|d| ms(*d)).sum::<f64>() / lat.len() as f64
                };
                let notify = match (notifications, outcome.pushes) {
                    (false, _) => "off",
                    (true, true) => "on",
                    // The option is on, but the backend cannot push.
                    (true, false) => "n/a",
                };
                let mut notes = String::new();
                if lat.len() < options.tasks {
                    notes.push_str(&format!("  INCOMPLETE {}/{}", lat.len(), options.tasks));
                }
                if outcome.early > 0 {
                    notes.push_str(&format!(
                        "  ({} started before submit returned)",
                        outcome.early
                    ));
                }
                println!(
                    "{backend:<12} {notify:<7} {:>6}ms {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}{notes}",
                    poll_ms,
                    percentile(lat, 50.0),
                    percentile(lat, 90.0),
                    percentile(lat, 99.0),
                    lat.last().map_or(f64::NAN, |d| ms(*d)),
                    mean,
                );
            }
        }
    }
    Ok(())
}
