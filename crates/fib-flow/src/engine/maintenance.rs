//! The maintenance pass, run only by the node holding the maintenance
//! lease, every `maintenance_interval` and at once when it takes the
//! lease: reap workers whose lease lapsed, take back the running tasks of
//! workers that are gone, then time out running tasks whose own lease
//! lapsed (workers without a registry row) or that ran far past their
//! timeout; beside the passes, vacuum the busy tables where the database
//! does not (see `Config::vacuum`). Recovery comes before the expiry
//! sweep, so the tasks of a worker just reaped are recovered, not
//! counted as failed attempts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{recovery, sweeper, Shared};
use crate::store::WorkerPruneParams;

/// Registry rows of workers that are gone are kept this long after they
/// were last seen (for operators), then deleted: 1 day.
pub(crate) const WORKER_ROW_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often the maintenance node prunes old registry rows: 10 minutes.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Most registry rows pruned per pass.
const PRUNE_BATCH: i64 = 1000;

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut next_prune = Instant::now();
    let vacuuming = Arc::new(AtomicBool::new(false));
    let mut interval = tokio::time::interval(shared.config.maintenance_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.leadership.gained.notified() => {}
            () = shared.stop_services.cancelled() => return,
        }
        if !shared.leadership.is_leader() {
            continue;
        }
        run_once(&shared).await;
        if shared.config.vacuum {
            vacuum(&shared, &vacuuming);
        }
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + PRUNE_EVERY;
            prune(&shared).await;
        }
    }
}

/// One pass; each step's failure is logged and does not stop the next.
pub(crate) async fn run_once(shared: &Shared) {
    match shared.store.worker_reap().await {
        Ok(reaped) if !reaped.is_empty() => {
            tracing::warn!(workers = ?reaped, "reaped workers whose lease lapsed");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "reaping workers failed"),
    }
    if shared.config.recover_running_jobs {
        match recovery::run(shared).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(
                count,
                "recovered the running tasks of workers that are gone"
            ),
            Err(error) => tracing::warn!(%error, "recovering tasks failed"),
        }
    }
    match sweeper::run_once(shared).await {
        Ok(0) => {}
        Ok(count) => {
            tracing::info!(count, "timed out expired running tasks");
            shared.wake.notify_one();
        }
        Err(error) => tracing::warn!(%error, "expiry sweep failed"),
    }
}

/// Vacuums and analyses the busy tables where the database will not
/// (see `Config::vacuum`), beside the passes rather than in them: a
/// vacuum of a large table can take a while, and reaping and recovery
/// must not wait for it. One at a time; a vacuum still running when the
/// next pass comes is left to finish.
fn vacuum(shared: &Arc<Shared>, vacuuming: &Arc<AtomicBool>) {
    if vacuuming.swap(true, Ordering::AcqRel) {
        return;
    }
    let shared = shared.clone();
    let vacuuming = vacuuming.clone();
    tokio::spawn(async move {
        tokio::select! {
            done = shared.store.vacuum_if_needed() => match done {
                Ok(commands) if !commands.is_empty() => {
                    tracing::debug!(?commands, "vacuumed or analysed tables the database leaves alone");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "vacuuming the task tables failed"),
            },
            () = shared.stop_services.cancelled() => {}
        }
        vacuuming.store(false, Ordering::Release);
    });
}

/// Deletes the registry rows of workers gone for longer than
/// [`WORKER_ROW_RETENTION`] that run no task.
async fn prune(shared: &Shared) {
    let params = WorkerPruneParams {
        older_than_ms: crate::config::millis(WORKER_ROW_RETENTION),
        limit: PRUNE_BATCH,
    };
    match shared.store.worker_prune(&params).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "pruned registry rows of workers long gone"),
        Err(error) => tracing::warn!(%error, "pruning the worker registry failed"),
    }
}
