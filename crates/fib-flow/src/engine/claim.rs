//! The claim loop: take as many due tasks as there are free slots, in one
//! store call, and start an execution for each.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{completer, execute, retry_transient, RunningTask, Shared};
use crate::audit::record::{self, AuditRows};
use crate::error::Result;
use crate::store::{ClaimName, Store, TaskClaimManyParams, TaskLease, TaskRow};

/// What one claim round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// No free slot, or no name this worker can run now.
    NoCapacity,
    /// Claimed this many (fewer than asked: the queue is drained for now).
    Some(usize),
    /// Claimed as many as asked; there may be more.
    Full(usize),
}

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut paused = shared.paused.subscribe();
    let mut fenced = shared.fenced.subscribe();
    loop {
        if shared.stop_claiming.is_cancelled() {
            return;
        }
        if *paused.borrow_and_update() {
            tokio::select! {
                _ = paused.changed() => continue,
                () = shared.stop_claiming.cancelled() => return,
            }
        }
        // Another worker of this pod is active: claim nothing until this
        // one is active again.
        if *fenced.borrow_and_update() {
            tokio::select! {
                _ = fenced.changed() => continue,
                () = shared.stop_claiming.cancelled() => return,
            }
        }
        // Register interest before looking, so a wake-up between the look
        // and the wait is not lost.
        let woken = shared.wake.notified();
        let wait = match run_once(&shared).await {
            Ok(Claimed::Full(_)) => continue,
            Ok(Claimed::Some(_)) | Ok(Claimed::NoCapacity) => shared.idle_wait(),
            Err(error) => {
                tracing::warn!(%error, "claiming tasks failed; retrying after the poll interval");
                shared.config.poll_interval
            }
        };
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(wait) => {}
            _ = paused.changed() => {}
            () = shared.stop_claiming.cancelled() => return,
        }
    }
}

/// What one claim round asks the store for, and how many free slots it
/// fills.
pub(crate) struct Plan {
    pub(crate) params: TaskClaimManyParams,
    free: usize,
}

/// Plans a claim round from the free slots now, honouring the per-name
/// limits; `None` when nothing may be claimed (no free slot, no name with
/// room, claiming paused, fenced or stopped). `leaving`: finishing
/// attempts written in the same transaction (see
/// [`RunningSet::free_slots`](super::RunningSet::free_slots)).
pub(crate) fn plan(shared: &Shared, leaving: usize) -> Option<Plan> {
    if shared.stop_claiming.is_cancelled() || *shared.paused.borrow() || *shared.fenced.borrow() {
        return None;
    }
    let running = shared.running();
    let free = running.free_slots(shared.config.max_concurrent_tasks, leaving);
    if free == 0 {
        return None;
    }
    let names: Vec<ClaimName> = shared
        .registry
        .names()
        .into_iter()
        .filter_map(|(name, limit)| {
            let room = match limit {
                Some(limit) => limit.saturating_sub(running.running_of(&name)).min(free),
                None => free,
            };
            (room > 0).then(|| ClaimName {
                name,
                limit: i64::try_from(room).unwrap_or(i64::MAX),
            })
        })
        .collect();
    if names.is_empty() {
        return None;
    }
    let asked = i64::try_from(free).unwrap_or(i64::MAX);
    Some(Plan {
        params: TaskClaimManyParams {
            // A registered worker superseded or reaped meanwhile claims
            // nothing.
            require_active_worker: shared.config.pod_id.is_some(),
            async_commit: !shared.config.synchronous_claims,
            ..TaskClaimManyParams::new(&shared.config.worker_id, names, asked)
        },
        free,
    })
}

/// One claim round: as many tasks as there are free slots, honouring the
/// per-name limits, then one execution each.
pub(crate) async fn run_once(shared: &Arc<Shared>) -> Result<Claimed> {
    if shared.store.caps().single_writer {
        if plan(shared, 0).is_none() {
            return Ok(Claimed::NoCapacity);
        }
        // One writer: the completer plans again and claims in its next
        // transaction (it also refills with every batch of outcomes).
        return completer::claim(shared).await;
    }
    gather_free_slots(shared).await;
    let Some(plan) = plan(shared, 0) else {
        return Ok(Claimed::NoCapacity);
    };
    let rows = claim_with_audit(shared.store.as_ref(), &plan.params).await?;
    Ok(start(shared, &plan, rows))
}

/// Lets executions that are about to free their slot (handlers that just
/// returned, often queued on this very thread) do so before the claim is
/// planned, so one claim fills the slots several handlers free at once:
/// yields to the scheduler, again while each yield frees more, at most
/// [`completer::GATHER_YIELDS`] times. No timer: with nothing about to
/// finish it costs one yield.
async fn gather_free_slots(shared: &Shared) {
    let max = shared.config.max_concurrent_tasks;
    let mut free = shared.running().free_slots(max, 0);
    for _ in 0..completer::GATHER_YIELDS {
        if free == 0 || free >= max {
            return;
        }
        tokio::task::yield_now().await;
        let now = shared.running().free_slots(max, 0);
        if now <= free {
            return;
        }
        free = now;
    }
}

/// Starts one execution for each row claimed by `plan`, each holding a
/// slot until its outcome is written.
pub(crate) fn start(shared: &Arc<Shared>, plan: &Plan, rows: Vec<TaskRow>) -> Claimed {
    let count = rows.len();
    for row in rows {
        let cancel = CancellationToken::new();
        shared.running().insert(
            TaskLease {
                id: row.id,
                attempt: row.attempt,
            },
            RunningTask {
                name: row.name.clone(),
                cancel: cancel.clone(),
                release: false,
                finishing: false,
            },
        );
        // The execution owns the slot from here and frees it when done.
        shared
            .executions
            .spawn(execute::run(shared.clone(), row, cancel));
    }
    tracing::debug!(claimed = count, asked = plan.free, "claim round");
    if count == plan.free {
        Claimed::Full(count)
    } else {
        Claimed::Some(count)
    }
}

/// Claims in one transaction with the attempts it opens and their events
/// (again at once when the database rolled it back to break a deadlock).
pub(crate) async fn claim_with_audit(
    store: &dyn Store,
    params: &TaskClaimManyParams,
) -> Result<Vec<TaskRow>> {
    retry_transient(|| try_claim(store, params)).await
}

async fn try_claim(store: &dyn Store, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
    let mut tx = store.begin().await?;
    let rows = tx.task_claim_many(params).await?;
    if rows.is_empty() {
        return Ok(rows);
    }
    let mut audit = AuditRows::default();
    for row in &rows {
        record::claimed(row, &mut audit);
    }
    tx.audit_write(&audit).await?;
    tx.commit().await?;
    Ok(rows)
}
