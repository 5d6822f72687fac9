//! The lease heartbeat: one write renews every task this process runs, and
//! any attempt whose task was not renewed has lost it and is stopped.

use std::collections::HashSet;
use std::sync::Arc;

use super::Shared;
use crate::error::Result;
use crate::store::{TaskHeartbeatParams, TaskLease};

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.config.task_heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.check_leases.notified() => {}
            () = shared.stop_services.cancelled() => return,
        }
        if let Err(error) = run_once(&shared).await {
            tracing::warn!(%error, "task heartbeat failed");
        }
    }
}

/// Renews the leases and stops the attempts that lost theirs. Returns how
/// many attempts were stopped.
pub(crate) async fn run_once(shared: &Shared) -> Result<usize> {
    // Snapshot before the write: every attempt in it was claimed (and
    // committed) before the heartbeat ran, so a missing lease means lost.
    let held: Vec<TaskLease> = shared.running().executing();
    if held.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<i64> = held.iter().map(|lease| lease.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let params = TaskHeartbeatParams {
        worker_id: shared.config.worker_id.clone(),
        ids,
    };
    let renewed: HashSet<TaskLease> = shared
        .store
        .task_heartbeat(&params)
        .await?
        .into_iter()
        .collect();
    let lost = lost_leases(&held, &renewed);
    let mut running = shared.running();
    let mut stopped = 0;
    for lease in lost {
        // An attempt that finished meanwhile is finishing or gone.
        let executing = running.get(lease).is_some_and(|task| !task.finishing);
        if executing && running.cancel_attempt(lease, false) {
            tracing::warn!(
                id = lease.id,
                attempt = lease.attempt,
                "attempt lost its task; stopped it"
            );
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// The leases held locally that the database did not renew.
fn lost_leases(held: &[TaskLease], renewed: &HashSet<TaskLease>) -> Vec<TaskLease> {
    held.iter()
        .filter(|lease| !renewed.contains(lease))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_not_renewed_under_the_same_attempt_is_lost() {
        let held = [
            TaskLease { id: 1, attempt: 1 },
            TaskLease { id: 2, attempt: 4 },
        ];
        let renewed: HashSet<_> = [
            TaskLease { id: 1, attempt: 1 },
            TaskLease { id: 2, attempt: 5 },
        ]
        .into_iter()
        .collect();
        assert_eq!(
            lost_leases(&held, &renewed),
            [TaskLease { id: 2, attempt: 4 }]
        );
    }
}
