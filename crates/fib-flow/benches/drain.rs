//! Whole-system benchmark: submit N no-op tasks, then start a manager and
//! time how long it takes to complete them all.
//!
//! ```text
//! cargo bench -p fib-flow --bench drain
//! cargo bench -p fib-flow --bench drain -- --tasks 20000 --concurrency 10,50
//! cargo bench -p fib-flow --bench drain -- --backends sqlite_file,postgres
//! ```
//!
//! Options (also as environment variables `FIB_FLOW_BENCH_TASKS`,
//! `FIB_FLOW_BENCH_CONCURRENCY`, `FIB_FLOW_BENCH_BACKENDS`):
//! - `--tasks N`: tasks per run (default 5000);
//! - `--concurrency C[,C...]`: `max_concurrent_tasks` of each run (default
//!   10,50);
//! - `--backends B[,B...]`: `sqlite_file`, `sqlite_memory`, `postgres`,
//!   `mysql` (default: both SQLite ones, plus each server whose
//!   `FIB_FLOW_TEST_POSTGRES_URL` / `FIB_FLOW_TEST_MYSQL_URL` is set; a
//!   server run uses a fresh schema and drops it afterwards);
//! - `--max-wait SECS`: give up on a drain after this long (default 600);
//! - `--pod-id ID`: run the manager with this `pod_id` (worker registry on:
//!   every claim also checks the worker's registry row).
//!
//! Each (backend, concurrency) prints one line: submissions per second (one
//! `submit` at a time, before `start`), drained tasks per second (from
//! `start` until `task_stats` counts all of them completed, polled every
//! 20 ms), the wall time of the drain, and the drain rate of each quarter
//! of the run (a rate that falls from quarter to quarter shows a slowdown
//! as the table fills with finished rows).

use std::time::{Duration, Instant};

use clap::Parser;
use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};

mod common;

use common::{backends_or_available, Database};

const DEFAULT_TASKS: u64 = 5_000;
const DEFAULT_CONCURRENCY: [u64; 2] = [10, 50];
const DEFAULT_MAX_WAIT_SECS: u64 = 600;
const POLL: Duration = Duration::from_millis(20);

/// The options in the types the runs use.
struct Resolved {
    tasks: usize,
    concurrency: Vec<usize>,
    backends: Vec<String>,
    max_wait: Duration,
    pod_id: Option<String>,
}

/// Submit N no-op tasks, then time how long one manager takes to drain
/// them.
#[derive(Debug, Parser)]
#[command(name = "drain")]
struct Options {
    /// Tasks per run.
    #[arg(long, env = "FIB_FLOW_BENCH_TASKS", default_value_t = DEFAULT_TASKS,
          value_parser = clap::value_parser!(u64).range(1..))]
    tasks: u64,
    /// `max_concurrent_tasks` of each run (comma-separated).
    #[arg(long, env = "FIB_FLOW_BENCH_CONCURRENCY", value_delimiter = ',',
          default_values_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: Vec<u64>,
    /// Backends: sqlite_file, sqlite_memory, postgres, mysql (default: the
    /// SQLite ones plus each server whose FIB_FLOW_TEST_*_URL is set).
    #[arg(long, env = "FIB_FLOW_BENCH_BACKENDS", value_delimiter = ',')]
    backends: Vec<String>,
    /// Give up on a drain after this many seconds.
    #[arg(long, default_value_t = DEFAULT_MAX_WAIT_SECS)]
    max_wait: u64,
    /// Run the manager with this pod id (worker registry on).
    #[arg(long)]
    pod_id: Option<String>,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Outcome {
    submit: Duration,
    drain: Duration,
    /// Time at which each quarter of the tasks had completed.
    quarters: [Duration; 4],
    completed: usize,
}

async fn completed(manager: &TaskManager) -> anyhow::Result<usize> {
    Ok(manager
        .task_stats(None)
        .await?
        .iter()
        .filter(|s| s.status == TaskStatus::Completed)
        .map(|s| usize::try_from(s.count).unwrap_or(usize::MAX))
        .sum())
}

async fn run(
    db: &Database,
    tasks: usize,
    concurrency: usize,
    max_wait: Duration,
    pod_id: Option<&str>,
) -> anyhow::Result<Outcome> {
    let mut builder = db
        .builder(Duration::from_millis(50))
        .max_concurrent_tasks(concurrency);
    if let Some(pod_id) = pod_id {
        builder = builder.pod_id(pod_id);
    }
    let manager = builder.build().await?;
    manager.setup().await?;
    manager.register("noop", |_task: Task| async move {
        Ok::<_, BoxError>(Step::done(serde_json::Value::Null))
    })?;

    let started = Instant::now();
    for i in 0..tasks {
        manager.submit("noop", &i).await?;
    }
    let submit = started.elapsed();

    let started = Instant::now();
    manager.start().await?;
    let mut quarters = [Duration::ZERO; 4];
    let mut next_quarter = 0;
    let mut done = 0;
    loop {
        done = completed(&manager).await.unwrap_or(done);
        let elapsed = started.elapsed();
        while next_quarter < 4 && done * 4 >= tasks * (next_quarter + 1) {
            quarters[next_quarter] = elapsed;
            next_quarter += 1;
        }
        if done >= tasks || elapsed > max_wait {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let drain = started.elapsed();
    if done < tasks {
        let stats = manager.task_stats(None).await?;
        eprintln!("gave up after {drain:?}: {done} of {tasks} completed; {stats:?}");
    }
    manager.stop().await?;
    Ok(Outcome {
        submit,
        drain,
        quarters,
        completed: done,
    })
}

fn rate(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64().max(1e-9)
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let options = Resolved {
        tasks: usize::try_from(options.tasks)?,
        concurrency: options
            .concurrency
            .iter()
            .map(|&c| usize::try_from(c))
            .collect::<Result<_, _>>()?,
        backends: backends_or_available(
            options.backends,
            &["sqlite_file", "sqlite_memory", "postgres", "mysql"],
        ),
        max_wait: Duration::from_secs(options.max_wait),
        pod_id: options.pod_id,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "drain: {} no-op tasks per run; backends {}; concurrency {:?}; pod_id {:?}",
        options.tasks,
        options.backends.join(","),
        options.concurrency,
        options.pod_id
    );
    for backend in &options.backends {
        for &concurrency in &options.concurrency {
            let db = Database::new(backend)?;
            let outcome = runtime.block_on(async {
                let outcome = run(
                    &db,
                    options.tasks,
                    concurrency,
                    options.max_wait,
                    options.pod_id.as_deref(),
                )
                .await;
                if let Err(error) = db.drop_schema().await {
                    eprintln!("could not drop the benchmark schema: {error}");
                }
                outcome
            })?;
            let quarter = options.tasks as f64 / 4.0;
            let mut previous = Duration::ZERO;
            let quarter_rates: Vec<String> = outcome
                .quarters
                .iter()
                .map(|&at| {
                    if at < previous || at.is_zero() {
                        return "-".to_owned(); // not reached
                    }
                    let r = quarter / (at - previous).as_secs_f64().max(1e-9);
                    previous = at;
                    format!("{r:.0}")
                })
                .collect();
            println!(
                "{backend:<13} c={concurrency:<4} submit {:>8.0}/s  drain {:>8.0}/s  wall {:>7.2}s  quarters {}/s{}",
                rate(options.tasks, outcome.submit),
                rate(outcome.completed, outcome.drain),
                outcome.drain.as_secs_f64(),
                quarter_rates.join(" "),
                if outcome.completed < options.tasks {
                    format!("  INCOMPLETE {}/{}", outcome.completed, options.tasks)
                } else {
                    String::new()
                },
            );
        }
    }
    Ok(())
}
