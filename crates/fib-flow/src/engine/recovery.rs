//! Taking back the running tasks of workers that are gone (dead,
//! superseded or stopped): each goes back to `pending` at its current
//! stage, not counted as a retry; its attempt is closed `interrupted` and a
//! `task_recovered` event names both workers. Each change is fenced by the
//! lost attempt, so a task its worker finished meanwhile is left alone.

use super::workflow::{self, Write};
use super::Shared;
use crate::error::Result;
use crate::store::{Fence, OrphanedTask, TaskLease, TaskListOrphanedParams, TaskSetStatusParams};
use crate::workers::WorkerStatus;

/// Most tasks taken back per batch.
const BATCH: i64 = 100;

/// Recovers every orphaned task, batch by batch; returns how many.
pub(crate) async fn run(shared: &Shared) -> Result<usize> {
    let mut total = 0;
    loop {
        let (listed, recovered) = run_once(shared).await?;
        total += recovered;
        // A short batch was the last; a batch in which nothing applied
        // would only list the same rows again.
        if listed < BATCH as usize || recovered == 0 {
            return Ok(total);
        }
    }
}

/// One batch: returns how many orphans it listed and how many it took
/// back.
async fn run_once(shared: &Shared) -> Result<(usize, usize)> {
    let orphans = shared
        .store
        .task_list_orphaned(&TaskListOrphanedParams { limit: BATCH })
        .await?;
    if orphans.is_empty() {
        return Ok((0, 0));
    }
    let writes: Vec<Write> = orphans
        .iter()
        .map(|orphan| recovery_change(shared, orphan).into())
        .collect();
    let (applied, effects) = workflow::apply_all(shared.store.as_ref(), &writes).await?;
    shared.after_commit(effects);
    let mut recovered = 0;
    let mut running = shared.running();
    for (orphan, applied) in orphans.iter().zip(applied) {
        if !applied {
            continue;
        }
        recovered += 1;
        tracing::info!(
            id = orphan.id,
            from = %orphan.worker_id,
            worker_status = %orphan.worker_status,
            "took back a running task of a worker that is gone"
        );
        // This process's own attempt of a task recovered from it (it was
        // reaped while stalled) must stop.
        if orphan.worker_id == shared.config.worker_id {
            running.cancel_attempt(
                TaskLease {
                    id: orphan.id,
                    attempt: orphan.attempt,
                },
                false,
            );
        }
    }
    drop(running);
    if recovered > 0 {
        shared.wake.notify_one();
    }
    Ok((orphans.len(), recovered))
}

fn recovery_change(shared: &Shared, orphan: &OrphanedTask) -> TaskSetStatusParams {
    let reason = orphan
        .worker_status
        .parse::<WorkerStatus>()
        .ok()
        .and_then(WorkerStatus::recovery_reason)
        .unwrap_or("worker_unavailable");
    TaskSetStatusParams::recovered(
        orphan.id,
        Fence {
            worker_id: orphan.worker_id.clone(),
            attempt: orphan.attempt,
        },
        &shared.config.worker_id,
        shared.config.pod_id.as_deref(),
        reason,
    )
}
