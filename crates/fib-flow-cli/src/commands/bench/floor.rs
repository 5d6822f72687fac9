//! The `floor` workload: fib-flow's insert, claim and complete statements
//! issued bare through [`FloorProbe`], without the engine, in the sizes of
//! the engine workloads, each on freshly reset tables (each run right
//! after the engine workload it bounds when that one is requested too):
//! - `floor-insert-single`: `--single-tasks` one-row inserts, one after
//!   another (each its own commit);
//! - `floor-insert-batch`: `--batch-tasks` rows in `--batch-size`-row
//!   inserts;
//! - `floor-drain`, at each `--concurrency` C: `--drain-tasks` rows
//!   inserted (1,000 per statement, untimed), then claimed C at a time and
//!   completed in one statement per claim until none is left, with the
//!   rate of every tenth as for `drain`.

use std::time::{Duration, Instant};

use fib_flow::floor::FloorProbe;
use fib_flow::TaskManager;

use super::{figure, finish, Figure, Target, Tenths};
use crate::cli::{BenchArgs, Workload};

/// Rows per insert statement when filling the table for a floor drain.
const FILL_ROWS: usize = 1_000;

/// Runs the floor workloads whose engine workload is not among
/// `args.workloads` (those that are ran right after it); one figure per
/// run.
pub(super) async fn run_unpaired(target: &Target, args: &BenchArgs) -> anyhow::Result<Vec<Figure>> {
    let max_wait = Duration::from_secs(args.max_wait);
    let requested = |workload| args.workloads.contains(&workload);
    let mut figures = Vec::new();
    if !requested(Workload::SubmitSingle) {
        figures.push(insert_single(target, args.single_tasks).await?);
    }
    if !requested(Workload::SubmitBatch) {
        figures.push(insert_batch(target, args.batch_tasks, args.batch_size).await?);
    }
    if !requested(Workload::Drain) {
        for &concurrency in &args.concurrency {
            figures.push(drain(target, args.drain_tasks, concurrency, max_wait).await?);
        }
    }
    Ok(figures)
}

/// A manager on freshly reset tables (never started) and its probe.
async fn probe(target: &Target) -> anyhow::Result<(TaskManager, FloorProbe)> {
    let manager = target.manager(1).await?;
    let probe = FloorProbe::new(&manager)?;
    Ok((manager, probe))
}

/// Inserts `tasks` rows in statements of at most `rows` rows.
async fn insert(probe: &FloorProbe, tasks: usize, rows: usize) -> anyhow::Result<()> {
    let mut left = tasks;
    while left > 0 {
        let n = left.min(rows.max(1));
        probe.insert(n).await?;
        left -= n;
    }
    Ok(())
}

pub(super) async fn insert_single(target: &Target, tasks: usize) -> anyhow::Result<Figure> {
    let (manager, probe) = probe(target).await?;
    let started = Instant::now();
    insert(&probe, tasks, 1).await?;
    let figure = figure("floor-insert-single", &manager, tasks, started.elapsed());
    finish(manager).await?;
    Ok(figure)
}

pub(super) async fn insert_batch(
    target: &Target,
    tasks: usize,
    batch: usize,
) -> anyhow::Result<Figure> {
    let (manager, probe) = probe(target).await?;
    let started = Instant::now();
    insert(&probe, tasks, batch).await?;
    let figure = Figure {
        batch: Some(batch),
        ..figure("floor-insert-batch", &manager, tasks, started.elapsed())
    };
    finish(manager).await?;
    Ok(figure)
}

pub(super) async fn drain(
    target: &Target,
    tasks: usize,
    concurrency: usize,
    max_wait: Duration,
) -> anyhow::Result<Figure> {
    let (manager, probe) = probe(target).await?;
    insert(&probe, tasks, FILL_ROWS).await?;
    let worker = manager.worker_id().to_owned();
    let mut tenths = Tenths::new(tasks);
    let mut done = 0;
    let started = Instant::now();
    loop {
        let ids = probe.claim(&worker, concurrency).await?;
        if ids.is_empty() {
            break;
        }
        done += usize::try_from(probe.complete(&ids).await?)?;
        tenths.record(done, started.elapsed());
        anyhow::ensure!(
            started.elapsed() <= max_wait,
            "floor-drain: only {done} of {tasks} tasks done after {max_wait:?} (--max-wait)"
        );
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(
        done == tasks,
        "floor-drain: completed {done} of {tasks} tasks"
    );
    let figure = Figure {
        concurrency: Some(concurrency),
        tenths: tenths.rates(),
        ..figure("floor-drain", &manager, tasks, elapsed)
    };
    finish(manager).await?;
    Ok(figure)
}
