//! The expiry sweep (a step of the maintenance pass): running tasks whose
//! lease lapsed (their worker, not in the registry, is gone or stuck) or
//! that ran far past their total timeout become `timeout` with a retry
//! scheduled, or exhaust their attempts. One batch per round, each change
//! fenced by the attempt it expires.

use std::time::Duration;

use super::workflow::{self, Write};
use super::Shared;
use crate::error::Result;
use crate::state::{plan_failure, FailureKind, TaskKind};
use crate::store::{ExpiredTask, Fence, TaskLease, TaskListExpiredParams, TaskSetStatusParams};

/// Most expired tasks handled per round.
const BATCH: i64 = 100;

/// One sweep round; returns how many tasks it timed out.
pub(crate) async fn run_once(shared: &Shared) -> Result<usize> {
    let params = TaskListExpiredParams::new(shared.config.task_heartbeat_timeout, BATCH);
    let expired = shared.store.task_list_expired(&params).await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let writes: Vec<Write> = expired
        .iter()
        .map(|task| expiry_change(task, params.heartbeat_timeout_ms).into())
        .collect();
    let (applied, effects) = workflow::apply_all(shared.store.as_ref(), &writes).await?;
    shared.after_commit(effects);
    let mut running = shared.running();
    let mut count = 0;
    for (task, applied) in expired.iter().zip(applied) {
        if !applied {
            continue;
        }
        count += 1;
        if task.worker_id == shared.config.worker_id {
            running.cancel_attempt(
                TaskLease {
                    id: task.id,
                    attempt: task.attempt,
                },
                false,
            );
        }
    }
    Ok(count)
}

fn expiry_change(task: &ExpiredTask, heartbeat_timeout_ms: i64) -> TaskSetStatusParams {
    let plan = plan_failure(
        task.kind.parse().unwrap_or(TaskKind::Async),
        FailureKind::Timeout,
        u32::try_from(task.retry_count).unwrap_or(0),
        u32::try_from(task.max_attempts).unwrap_or(1),
        Duration::from_millis(u64::try_from(task.retry_interval_ms).unwrap_or(0)),
    );
    let error = if task.total_timeout {
        "task exceeded its total timeout and its worker did not record it"
    } else {
        "task heartbeat timed out (its worker stopped renewing the lease)"
    };
    let fence = Fence {
        worker_id: task.worker_id.clone(),
        attempt: task.attempt,
    };
    let timeout_type = if task.total_timeout {
        "total"
    } else {
        "heartbeat"
    };
    TaskSetStatusParams {
        require_expired_ms: Some(heartbeat_timeout_ms),
        ..TaskSetStatusParams::failed(
            task.id,
            fence,
            &plan,
            FailureKind::Timeout,
            error.to_owned(),
        )
        .with_detail("timeout_type", timeout_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Transition;

    fn expired(retry_count: i64, max_attempts: i64) -> ExpiredTask {
        ExpiredTask {
            id: 9,
            name: "n".into(),
            kind: "async".into(),
            worker_id: "w".into(),
            attempt: 3,
            retry_count,
            max_attempts,
            retry_interval_ms: 250,
            total_timeout: false,
        }
    }

    #[test]
    fn an_expired_task_with_attempts_left_gets_a_timeout_retry_fenced_by_its_attempt() {
        let change = expiry_change(&expired(0, 3), 5_000);
        assert_eq!(change.transition, Transition::TimeoutRetry);
        assert_eq!(change.retry_count, Some(1));
        assert_eq!(
            change.fence,
            Some(Fence {
                worker_id: "w".into(),
                attempt: 3
            })
        );
        assert_eq!(change.next_run, crate::store::NextRun::AfterMs(250));
        assert_eq!(
            change.require_expired_ms,
            Some(5_000),
            "the lease is re-checked"
        );
    }

    #[test]
    fn an_expired_task_on_its_last_attempt_is_exhausted() {
        assert_eq!(
            expiry_change(&expired(2, 3), 5_000).transition,
            Transition::Exhaust
        );
    }
}
