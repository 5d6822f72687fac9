//! Runs one claimed attempt: the handler under its timeout and cancellation
//! signal, then one fenced write of the outcome (through the completer).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::outcome::{self, Attempt, Outcome, RetryInfo};
use super::{completer, Shared};
use crate::audit::report::Reporter;
use crate::cron::{CronSchedule, Misfire};
use crate::error::{BoxError, Error, Result};
use crate::state::{FailureKind, TaskKind};
use crate::step::ChildResult;
use crate::store::{Fence, TaskLease, TaskListChildrenParams, TaskRow};
use crate::task::{Task, TaskRecord};

pub(crate) async fn run(shared: Arc<Shared>, row: TaskRow, cancel: CancellationToken) {
    let id = row.id;
    let lease = TaskLease {
        id,
        attempt: row.attempt,
    };
    let span = tracing::info_span!("task", id, name = %row.name, attempt = row.attempt);
    async {
        let fence = Fence {
            worker_id: shared.config.worker_id.clone(),
            attempt: row.attempt,
        };
        let retry = RetryInfo::of(&row);
        let record = TaskRecord::try_from(row);
        // A cron task's schedule: for the misfire check and the re-arm.
        let schedule = match &record {
            Ok(record) if record.kind == TaskKind::Cron => Some(load_schedule(&shared, record).await),
            _ => None,
        };
        let schedule_at_claim = match &schedule {
            Some(Ok((schedule, _))) => Some(schedule.clone()),
            _ => None,
        };
        let outcome = match (&record, &schedule) {
            (Err(error), _) => Outcome::Failed {
                kind: FailureKind::Error,
                error: format!("the stored task could not be read: {error}"),
            },
            (Ok(_), Some(Err(error))) => Outcome::Failed {
                kind: FailureKind::Error,
                error: format!("the cron schedule could not be read: {error}"),
            },
            (Ok(record), Some(Ok((schedule, misfire)))) if misfired(schedule, *misfire, record) => {
                tracing::info!(scheduled = %record.next_run_at, "missed occurrence skipped (misfire policy skip)");
                Outcome::Skipped
            }
            (Ok(record), _) => attempt(&shared, record.clone(), lease, &cancel).await,
        };
        // The re-arm follows the schedule as it is now: update_cron may
        // have changed it while the handler ran.
        let schedule = match (&record, schedule) {
            (Ok(record), Some(_)) => match load_schedule(&shared, record).await {
                Ok((schedule, _)) => Some(schedule),
                Err(error) => {
                    tracing::warn!(%error, "could not re-read the cron schedule; using the one claimed with");
                    None
                }
            },
            _ => None,
        }
        .or_else(|| schedule_at_claim.clone());
        let attempt = Attempt {
            id,
            fence,
            retry,
            record: record.as_ref().ok(),
            schedule,
        };
        shared.running().finishing(lease);
        // The slot is free: let the claim loop refill it now. On a
        // single-writer backend the completer refills it in the
        // transaction that writes this outcome.
        if !shared.store.caps().single_writer {
            shared.wake.notify_one();
        }
        if let Err(error) = record_outcome(&shared, &attempt, outcome).await {
            // The row stays running; its lease lapses and the sweeper
            // schedules the retry.
            tracing::error!(%error, "could not record the outcome of the attempt");
        }
    }
    .instrument(span)
    .await;
    let now_idle = {
        let mut running = shared.running();
        running.remove(lease);
        running.tasks.is_empty()
    };
    shared.wake.notify_one();
    if now_idle {
        shared.idle.notify_waiters();
    }
}

async fn attempt(
    shared: &Shared,
    record: TaskRecord,
    lease: TaskLease,
    cancel: &CancellationToken,
) -> Outcome {
    // The attempt keeps the handler it starts with, even if the name is
    // registered again or unregistered while it runs.
    let Some(registration) = shared.registry.get(&record.name) else {
        return Outcome::Released;
    };
    let timeout = record.timeout;
    let (context, child_results) = match workflow_state(shared, &record).await {
        Ok(state) => state,
        Err(error) => {
            return Outcome::Failed {
                kind: FailureKind::Error,
                error: format!("the task's context and child results could not be read: {error}"),
            }
        }
    };
    let reporter = Reporter {
        store: shared.store.clone(),
        id: record.id,
        fence: Fence {
            worker_id: shared.config.worker_id.clone(),
            attempt: record.attempt,
        },
    };
    let task = Task::new(record, context, child_results, cancel.clone(), reporter);
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| registration.handler.run(task)))
    {
        Ok(future) => AssertUnwindSafe(future).catch_unwind(),
        Err(panic) => return panicked(panic),
    };
    let outcome = tokio::select! {
        result = tokio::time::timeout(timeout, future) => match result {
            Ok(Ok(Ok(step))) => Outcome::Step(step),
            Ok(Ok(Err(error))) => handler_error(error),
            Ok(Err(panic)) => panicked(panic),
            Err(_) => Outcome::Failed {
                kind: FailureKind::Timeout,
                error: format!("task exceeded its timeout of {timeout:?}"),
            },
        },
        () = cancel.cancelled() => Outcome::Lost,
    };
    // The attempt is over: work the handler spawned may watch this signal.
    cancel.cancel();
    match outcome {
        Outcome::Lost if shared.running().get(lease).is_some_and(|t| t.release) => {
            Outcome::Released
        }
        other => other,
    }
}

/// The schedule and misfire policy of a cron task.
async fn load_schedule(shared: &Shared, record: &TaskRecord) -> Result<(CronSchedule, Misfire)> {
    let row = shared
        .store
        .task_cron_get(record.id.get())
        .await?
        .ok_or(Error::NotFound { id: record.id })?;
    let expr = row.cron_expr.ok_or_else(|| Error::Corrupt {
        column: "cron_expr",
        reason: "a cron task without an expression".into(),
    })?;
    let schedule = CronSchedule::parse(&expr, row.cron_tz.as_deref())?;
    let misfire = match row.cron_misfire.as_deref() {
        Some(policy) => policy.parse()?,
        None => Misfire::default(),
    };
    Ok((schedule, misfire))
}

/// Whether this run of a cron task is a missed occurrence its policy skips.
fn misfired(schedule: &CronSchedule, misfire: Misfire, record: &TaskRecord) -> bool {
    // A later stage of a cron workflow is not an occurrence.
    record.stage == 0
        && schedule
            .skips(misfire, record.next_run_at, chrono::Utc::now())
            .unwrap_or(false)
}

/// What a later stage sees: its context and the outcomes of the children of
/// the stage before (nothing at stage 0).
async fn workflow_state(
    shared: &Shared,
    record: &TaskRecord,
) -> Result<(Option<Vec<u8>>, Vec<ChildResult>)> {
    if record.stage == 0 {
        return Ok((None, Vec::new()));
    }
    let id = record.id.get();
    let context = shared.store.task_context(id).await?;
    let params = TaskListChildrenParams {
        parent_id: id,
        parent_stage: record.stage - 1,
        parent_cycle: record.cycle,
    };
    let children = shared
        .store
        .task_list_children(&params)
        .await?
        .into_iter()
        .map(ChildResult::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok((context, children))
}

fn handler_error(error: BoxError) -> Outcome {
    let kind = match error.downcast_ref::<Error>() {
        Some(Error::Timeout { .. }) => FailureKind::Timeout,
        _ => FailureKind::Error,
    };
    Outcome::Failed {
        kind,
        error: error_chain(error.as_ref()),
    }
}

fn panicked(panic: Box<dyn Any + Send>) -> Outcome {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    Outcome::Failed {
        kind: FailureKind::Error,
        error: format!("handler panicked: {message}"),
    }
}

/// The error and its sources, joined with ": ".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn record_outcome(shared: &Shared, attempt: &Attempt<'_>, outcome: Outcome) -> Result<()> {
    let Some(write) = outcome::to_write(shared, attempt, outcome) else {
        tracing::info!("attempt lost its task; nothing written");
        return Ok(());
    };
    let to = write.change.to();
    if completer::write(shared, write).await? {
        tracing::debug!(status = %to, "attempt recorded");
    } else {
        tracing::warn!(status = %to, "the attempt no longer owns its task; its write was rejected");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_text_keeps_the_source_chain() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }

    #[test]
    fn a_timeout_error_from_check_timeout_counts_as_a_timeout() {
        let error: BoxError = Box::new(Error::Timeout {
            id: crate::task::TaskId(1),
            timeout: std::time::Duration::from_secs(1),
        });
        assert!(matches!(
            handler_error(error),
            Outcome::Failed {
                kind: FailureKind::Timeout,
                ..
            }
        ));
        let error: BoxError = "plain".into();
        assert!(matches!(
            handler_error(error),
            Outcome::Failed {
                kind: FailureKind::Error,
                ..
            }
        ));
    }

    #[test]
    fn panic_messages_are_kept() {
        let panic = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        match panicked(panic) {
            Outcome::Failed { error, .. } => assert_eq!(error, "handler panicked: boom 1"),
            other => panic!("{other:?}"),
        }
    }
}
