//! Runs one claimed attempt: the handler under its timeout and cancellation
//! signal, then one fenced write of the outcome.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{completer, Shared};
use crate::error::{BoxError, Error, Result};
use crate::state::{plan_failure, FailureKind, TaskKind};
use crate::store::{Fence, TaskLease, TaskRow, TaskSetStatusParams};
use crate::task::{Step, Task, TaskRecord};

/// How an attempt ended, before it is written.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The handler returned a step.
    Step(Step),
    /// The attempt failed (error, panic, bad row) or timed out.
    Failed { kind: FailureKind, error: String },
    /// The task goes back to `pending` (the manager is stopping, or the
    /// handler was unregistered before the attempt began).
    Released,
    /// The attempt lost its task; there is nothing to write.
    Lost,
}

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
        let outcome = match TaskRecord::try_from(row) {
            Ok(record) => attempt(&shared, record, lease, &cancel).await,
            Err(error) => Outcome::Failed {
                kind: FailureKind::Error,
                error: format!("the stored task could not be read: {error}"),
            },
        };
        if let Err(error) = write_outcome(&shared, id, fence, retry, outcome).await {
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

/// What deciding a retry needs, taken from the row before it is consumed.
#[derive(Debug, Clone, Copy)]
struct RetryInfo {
    kind: Option<TaskKind>,
    retry_count: u32,
    max_attempts: u32,
    retry_interval: Duration,
}

impl RetryInfo {
    fn of(row: &TaskRow) -> Self {
        RetryInfo {
            kind: row.kind.parse().ok(),
            retry_count: u32::try_from(row.retry_count).unwrap_or(0),
            max_attempts: u32::try_from(row.max_attempts).unwrap_or(1),
            retry_interval: Duration::from_millis(
                u64::try_from(row.retry_interval_ms).unwrap_or(0),
            ),
        }
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
    let task = Task::new(record, cancel.clone());
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

async fn write_outcome(
    shared: &Shared,
    id: i64,
    fence: Fence,
    retry: RetryInfo,
    outcome: Outcome,
) -> Result<()> {
    let change = match outcome {
        Outcome::Lost => {
            tracing::info!("attempt lost its task; nothing written");
            return Ok(());
        }
        Outcome::Released => TaskSetStatusParams::released(id, fence),
        Outcome::Step(Step::Done(value)) => match retry.kind {
            Some(TaskKind::Async) => {
                let text =
                    serde_json::to_string(&value).map_err(|source| Error::Serialization {
                        field: "result",
                        source,
                    })?;
                TaskSetStatusParams::completed(id, fence, text)
            }
            kind => failure(
                id,
                fence,
                retry,
                FailureKind::Error,
                format!("tasks of kind {kind:?} cannot be completed by this build"),
            ),
        },
        Outcome::Failed { kind, error } => {
            tracing::info!(%error, ?kind, "attempt failed");
            failure(id, fence, retry, kind, error)
        }
    };
    let to = change.to();
    let applied = completer::write(shared, change).await?;
    if applied {
        tracing::debug!(status = %to, "attempt recorded");
    } else {
        tracing::warn!(status = %to, "the attempt no longer owns its task; its write was rejected");
    }
    Ok(())
}

fn failure(
    id: i64,
    fence: Fence,
    retry: RetryInfo,
    kind: FailureKind,
    error: String,
) -> TaskSetStatusParams {
    let plan = plan_failure(
        retry.kind.unwrap_or(TaskKind::Async),
        kind,
        retry.retry_count,
        retry.max_attempts,
        retry.retry_interval,
    );
    TaskSetStatusParams::failed(id, fence, &plan, error)
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
            timeout: Duration::from_secs(1),
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
