//! Turning how an attempt ended into the write that records it: a result,
//! a retry or a permanent failure, a stage of children (validated before
//! anything is written), a suspension, or a release.

use std::time::Duration;

use super::workflow::Write;
use super::Shared;
use crate::config::{check_identifier, millis};
use crate::cron::CronSchedule;
use crate::error::{Error, Result};
use crate::handler::check_duration;
use crate::state::{plan_failure, FailureKind, TaskKind};
use crate::step::{Child, Children, Step, Suspension};
use crate::store::{
    ChildrenUpdate, Fence, NextRun, ParentLink, TaskInsertParams, TaskRow, TaskSetStatusParams,
};
use crate::task::{check_priority, TaskRecord};

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
    /// A cron task's missed occurrence was skipped (misfire policy).
    Skipped,
}

/// What deciding a retry needs, taken from the row before it is consumed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryInfo {
    kind: Option<TaskKind>,
    retry_count: u32,
    max_attempts: u32,
    retry_interval: Duration,
}

impl RetryInfo {
    pub(crate) fn of(row: &TaskRow) -> Self {
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

/// The attempt being recorded.
pub(crate) struct Attempt<'a> {
    pub(crate) id: i64,
    pub(crate) fence: Fence,
    pub(crate) retry: RetryInfo,
    /// The claimed row, when it could be read.
    pub(crate) record: Option<&'a TaskRecord>,
    /// A cron task's schedule.
    pub(crate) schedule: Option<CronSchedule>,
}

/// The write recording `outcome`, or `None` when there is nothing to write
/// (the attempt lost its task).
pub(crate) fn to_write(shared: &Shared, attempt: &Attempt<'_>, outcome: Outcome) -> Option<Write> {
    let fence = attempt.fence.clone();
    let id = attempt.id;
    let write = match outcome {
        Outcome::Lost => return None,
        Outcome::Released => TaskSetStatusParams::released(id, fence).into(),
        Outcome::Skipped => match rearm(attempt, None) {
            Ok(change) => change.into(),
            Err(error) => failure(attempt, FailureKind::Error, error.to_string()).into(),
        },
        Outcome::Failed { kind, error } => {
            tracing::info!(%error, ?kind, "attempt failed");
            failure(attempt, kind, error).into()
        }
        Outcome::Step(step) => match step_write(shared, attempt, step) {
            Ok(write) => write,
            Err(error) => {
                // A step that cannot be carried out (bad children, a bad
                // suspension reason, an unserialisable result) fails the
                // attempt; nothing else is written.
                tracing::info!(%error, "the handler's step is invalid");
                failure(attempt, FailureKind::Error, error.to_string()).into()
            }
        },
    };
    // A task with no parent and no children touches no other row.
    let isolated = write.children.is_empty()
        && attempt
            .record
            .is_some_and(|r| r.parent_id.is_none() && r.total_children == 0);
    Some(Write { isolated, ..write })
}

fn step_write(shared: &Shared, attempt: &Attempt<'_>, step: Step) -> Result<Write> {
    let (id, fence) = (attempt.id, attempt.fence.clone());
    match step {
        Step::Done(value) => match attempt.retry.kind {
            Some(TaskKind::Async) => {
                let text =
                    serde_json::to_string(&value).map_err(|source| Error::Serialization {
                        field: "result",
                        source,
                    })?;
                Ok(TaskSetStatusParams::completed(id, fence, text).into())
            }
            Some(TaskKind::Cron) => {
                let text =
                    serde_json::to_string(&value).map_err(|source| Error::Serialization {
                        field: "result",
                        source,
                    })?;
                Ok(rearm(attempt, Some(text))?.into())
            }
            None => Err(Error::Corrupt {
                column: "kind",
                reason: "unknown task kind".into(),
            }),
        },
        Step::Children(children) => children_write(shared, attempt, children),
        Step::Suspend(Suspension { reason, context }) => {
            check_identifier(&reason).map_err(|why| Error::invalid("reason", why))?;
            Ok(TaskSetStatusParams::suspended(id, fence, reason, context).into())
        }
    }
}

fn children_write(shared: &Shared, attempt: &Attempt<'_>, children: Children) -> Result<Write> {
    let record = attempt
        .record
        .ok_or_else(|| Error::invalid("children", "the parent row could not be read"))?;
    let (id, fence) = (attempt.id, attempt.fence.clone());
    let Children {
        children,
        context,
        on_failure,
    } = children;
    if children.is_empty() {
        return Ok(TaskSetStatusParams::advanced(id, fence, context).into());
    }
    let link = ParentLink {
        root_id: record.root_id.unwrap_or(record.id).get(),
        parent_id: id,
        parent_stage: record.stage,
        parent_cycle: record.cycle,
    };
    let inserts = children
        .into_iter()
        .enumerate()
        .map(|(index, child)| child_insert(shared, record, link, index, child))
        .collect::<Result<Vec<_>>>()?;
    let update = ChildrenUpdate {
        count: i64::try_from(inserts.len()).unwrap_or(i64::MAX),
        on_failure,
    };
    Ok(Write {
        change: TaskSetStatusParams::awaiting_children(id, fence, update, context),
        children: inserts,
        isolated: false,
    })
}

/// One child's row, its options resolved: the definition's, then its
/// handler's, then the manager's (`priority`: the handler's, then the
/// parent's).
fn child_insert(
    shared: &Shared,
    parent: &TaskRecord,
    link: ParentLink,
    index: usize,
    child: Child,
) -> Result<TaskInsertParams> {
    let bad = |reason: String| {
        Error::invalid(
            "children",
            format!("child {index} ({:?}): {reason}", child.name),
        )
    };
    check_identifier(&child.name).map_err(|why| bad(format!("name {why}")))?;
    let handler = shared
        .registry
        .get(&child.name)
        .ok_or_else(|| bad("no handler is registered for this name".into()))?
        .options;
    let payload = child
        .payload
        .clone()
        .map_err(|why| bad(format!("payload could not be serialised: {why}")))?;
    let config = &shared.config;
    let priority = child
        .priority
        .or(handler.priority)
        .unwrap_or(parent.priority);
    check_priority(priority).map_err(|e| bad(e.to_string()))?;
    if let Some(tag) = &child.tag {
        check_identifier(tag).map_err(|why| bad(format!("tag {why}")))?;
    }
    let timeout = child.timeout.or(handler.timeout).unwrap_or(config.timeout);
    check_duration("timeout", timeout, false).map_err(|e| bad(e.to_string()))?;
    let retry_interval = child
        .retry_interval
        .or(handler.retry_interval)
        .unwrap_or(config.retry_interval);
    check_duration("retry_interval", retry_interval, true).map_err(|e| bad(e.to_string()))?;
    let max_attempts = child
        .max_attempts
        .or(handler.max_attempts)
        .unwrap_or(config.max_attempts);
    if max_attempts == 0 {
        return Err(bad("max_attempts must be at least 1".into()));
    }
    Ok(TaskInsertParams {
        name: child.name,
        kind: TaskKind::Async,
        payload: (!payload.is_null()).then(|| payload.to_string()),
        priority,
        tag: child.tag,
        timeout_ms: millis(timeout),
        max_attempts: i64::from(max_attempts),
        retry_interval_ms: millis(retry_interval),
        next_run: NextRun::Keep,
        cron_expr: None,
        parent: Some(link),
    })
}

/// A cron task's cycle ends: back to `pending` at its next occurrence
/// strictly after now.
fn rearm(attempt: &Attempt<'_>, result: Option<String>) -> Result<TaskSetStatusParams> {
    let schedule = attempt
        .schedule
        .as_ref()
        .ok_or_else(|| Error::invalid("cron_expr", "the cron task's schedule is missing"))?;
    let next = schedule.next_after(chrono::Utc::now())?;
    Ok(TaskSetStatusParams::rearmed(
        attempt.id,
        attempt.fence.clone(),
        result,
        next.timestamp_millis(),
    ))
}

fn failure(attempt: &Attempt<'_>, kind: FailureKind, error: String) -> TaskSetStatusParams {
    let retry = attempt.retry;
    let plan = plan_failure(
        retry.kind.unwrap_or(TaskKind::Async),
        kind,
        retry.retry_count,
        retry.max_attempts,
        retry.retry_interval,
    );
    TaskSetStatusParams::failed(attempt.id, attempt.fence.clone(), &plan, kind, error)
}
