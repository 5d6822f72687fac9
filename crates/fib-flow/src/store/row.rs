//! Row types shared by every backend, and their conversion into the public
//! types. Columns are plain types every driver encodes (i64, String, f64,
//! Option); times are milliseconds since the epoch; JSON is text.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::step::ChildResult;
use crate::task::{TaskId, TaskRecord, TaskStats};

/// A task row as read (every column but the context blob).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskRow {
    /// `id`
    pub id: i64,
    /// `name`
    pub name: String,
    /// `kind`
    pub kind: String,
    /// `status`
    pub status: String,
    /// `priority`
    pub priority: i64,
    /// `payload` (JSON text)
    pub payload: Option<String>,
    /// `tag`
    pub tag: Option<String>,
    /// `result` (JSON text)
    pub result: Option<String>,
    /// `error`
    pub error: Option<String>,
    /// `stage`
    pub stage: i64,
    /// `cycle`
    pub cycle: i64,
    /// `timeout_ms`
    pub timeout_ms: i64,
    /// `retry_count`
    pub retry_count: i64,
    /// `max_attempts`
    pub max_attempts: i64,
    /// `retry_interval_ms`
    pub retry_interval_ms: i64,
    /// `cron_expr`
    pub cron_expr: Option<String>,
    /// `root_id`
    pub root_id: Option<i64>,
    /// `parent_id`
    pub parent_id: Option<i64>,
    /// `parent_stage`
    pub parent_stage: Option<i64>,
    /// `total_children`
    pub total_children: i64,
    /// `pending_children`
    pub pending_children: i64,
    /// `worker_id`
    pub worker_id: Option<String>,
    /// `attempt`
    pub attempt: i64,
    /// `suspend_reason`
    pub suspend_reason: Option<String>,
    /// `previous_status`
    pub previous_status: Option<String>,
    /// `current_stage_name`
    pub current_stage_name: Option<String>,
    /// `progress_text`
    pub progress_text: Option<String>,
    /// `progress_percent`
    pub progress_percent: Option<f64>,
    /// `last_event_at`
    pub last_event_at: Option<i64>,
    /// `last_event_type`
    pub last_event_type: Option<String>,
    /// `created_at`
    pub created_at: i64,
    /// `next_run_at`
    pub next_run_at: i64,
    /// `started_at`
    pub started_at: Option<i64>,
    /// `last_active_at`
    pub last_active_at: Option<i64>,
    /// `finished_at`
    pub finished_at: Option<i64>,
}

impl TryFrom<TaskRow> for TaskRecord {
    type Error = Error;

    fn try_from(row: TaskRow) -> Result<Self> {
        Ok(TaskRecord {
            id: TaskId(row.id),
            kind: parse_column("kind", &row.kind)?,
            status: parse_column("status", &row.status)?,
            priority: int_column("priority", row.priority)?,
            payload: json_column("payload", row.payload)?,
            result: json_column("result", row.result)?,
            timeout: Duration::from_millis(uint_column("timeout_ms", row.timeout_ms)?),
            retry_count: int_column("retry_count", row.retry_count)?,
            max_attempts: int_column("max_attempts", row.max_attempts)?,
            retry_interval: Duration::from_millis(uint_column(
                "retry_interval_ms",
                row.retry_interval_ms,
            )?),
            root_id: row.root_id.map(TaskId),
            parent_id: row.parent_id.map(TaskId),
            parent_stage: row.parent_stage,
            total_children: row.total_children,
            pending_children: row.pending_children,
            created_at: time_column("created_at", row.created_at)?,
            next_run_at: time_column("next_run_at", row.next_run_at)?,
            started_at: row
                .started_at
                .map(|t| time_column("started_at", t))
                .transpose()?,
            last_active_at: row
                .last_active_at
                .map(|t| time_column("last_active_at", t))
                .transpose()?,
            finished_at: row
                .finished_at
                .map(|t| time_column("finished_at", t))
                .transpose()?,
            name: row.name,
            tag: row.tag,
            error: row.error,
            stage: row.stage,
            cycle: row.cycle,
            cron_expr: row.cron_expr,
            worker_id: row.worker_id,
            attempt: row.attempt,
            suspend_reason: row.suspend_reason,
            previous_status: row
                .previous_status
                .as_deref()
                .map(|s| parse_column("previous_status", s))
                .transpose()?,
            current_stage_name: row.current_stage_name,
            progress_text: row.progress_text,
            progress_percent: row.progress_percent,
            last_event_at: row
                .last_event_at
                .map(|t| time_column("last_event_at", t))
                .transpose()?,
            last_event_type: row.last_event_type,
        })
    }
}

/// The task a status change applied to, with what propagating it up its
/// workflow needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct TaskRef {
    /// `id`
    pub id: i64,
    /// `name`
    pub name: String,
    /// `kind`
    pub kind: String,
    /// `status` (after the change)
    pub status: String,
    /// `previous_status`: the status before the change
    pub previous_status: Option<String>,
    /// `stage` (after the change)
    pub stage: i64,
    /// `worker_id`
    pub worker_id: Option<String>,
    /// `attempt`
    pub attempt: i64,
    /// `root_id`
    pub root_id: Option<i64>,
    /// `retry_count` (after the change)
    pub retry_count: i64,
    /// `next_run_at` (after the change)
    pub next_run_at: i64,
    /// `parent_id`
    pub parent_id: Option<i64>,
    /// `parent_stage`
    pub parent_stage: Option<i64>,
    /// `parent_cycle`
    pub parent_cycle: Option<i64>,
    /// `error`
    pub error: Option<String>,
}

/// The running task a progress report or checkpoint applied to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TouchedTask {
    /// `id`
    pub id: i64,
    /// `name`
    pub name: String,
    /// `status`
    pub status: String,
    /// `stage`
    pub stage: i64,
    /// `root_id`
    pub root_id: Option<i64>,
    /// `parent_id`
    pub parent_id: Option<i64>,
}

/// A parent that counted one more finished child of its stage.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WaitingParent {
    /// `id`
    pub id: i64,
    /// `kind`
    pub kind: String,
    /// `pending_children` after the count
    pub pending_children: i64,
    /// `on_child_failure`
    pub on_child_failure: Option<String>,
}

/// One child of a stage, as its parent's next stage reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChildRow {
    /// `id`
    pub id: i64,
    /// `name`
    pub name: String,
    /// `status`
    pub status: String,
    /// `result` (JSON text)
    pub result: Option<String>,
    /// `error`
    pub error: Option<String>,
}

impl TryFrom<ChildRow> for ChildResult {
    type Error = Error;

    fn try_from(row: ChildRow) -> Result<Self> {
        let status: TaskStatus = parse_column("status", &row.status)?;
        let completed = status == TaskStatus::Completed;
        Ok(ChildResult {
            task_id: TaskId(row.id),
            name: row.name,
            status,
            // A completed child has a result and no error; a failed one the
            // reverse (an error kept from an earlier failed attempt of a
            // child that completed is not its outcome).
            result: if completed {
                json_column("result", row.result)?
            } else {
                None
            },
            error: if completed { None } else { row.error },
        })
    }
}

/// The schedule of a cron task.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CronRow {
    /// `cron_expr`
    pub cron_expr: Option<String>,
    /// `cron_tz`
    pub cron_tz: Option<String>,
    /// `cron_misfire`
    pub cron_misfire: Option<String>,
}

/// A renewed lease: the task and the attempt that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct TaskLease {
    /// `id`
    pub id: i64,
    /// `attempt`
    pub attempt: i64,
}

/// A running task whose time is up, with what the engine needs to decide
/// its next status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiredTask {
    /// `id`
    pub id: i64,
    /// `name`
    pub name: String,
    /// `kind`
    pub kind: String,
    /// `worker_id`
    pub worker_id: String,
    /// `attempt`
    pub attempt: i64,
    /// `retry_count`
    pub retry_count: i64,
    /// `max_attempts`
    pub max_attempts: i64,
    /// `retry_interval_ms`
    pub retry_interval_ms: i64,
    /// True when the total timeout passed; false when only the heartbeat
    /// lease expired.
    pub total_timeout: bool,
}

/// One group of [`Store::task_stats`](super::Store::task_stats).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TaskStatsRow {
    /// `tag`
    pub tag: Option<String>,
    /// `name`
    pub name: String,
    /// `status`
    pub status: String,
    /// `COUNT(*)`
    pub count: i64,
}

impl TryFrom<TaskStatsRow> for TaskStats {
    type Error = Error;

    fn try_from(row: TaskStatsRow) -> Result<Self> {
        Ok(TaskStats {
            status: parse_column("status", &row.status)?,
            count: uint_column("count", row.count)?,
            tag: row.tag,
            name: row.name,
        })
    }
}

pub(crate) fn parse_column<T: std::str::FromStr>(column: &'static str, value: &str) -> Result<T> {
    value.parse().map_err(|_| Error::Corrupt {
        column,
        reason: format!("unknown value {value:?}"),
    })
}

pub(crate) fn json_column(
    column: &'static str,
    value: Option<String>,
) -> Result<Option<serde_json::Value>> {
    value
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                column,
                reason: format!("not JSON: {e}"),
            })
        })
        .transpose()
}

fn int_column<T: TryFrom<i64>>(column: &'static str, value: i64) -> Result<T> {
    T::try_from(value).map_err(|_| Error::Corrupt {
        column,
        reason: format!("{value} is out of range"),
    })
}

fn uint_column(column: &'static str, value: i64) -> Result<u64> {
    int_column(column, value)
}

pub(crate) fn time_column(column: &'static str, ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::Corrupt {
        column,
        reason: format!("{ms} is not a valid time"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TaskKind;

    fn row() -> TaskRow {
        TaskRow {
            id: 7,
            name: "n".into(),
            kind: "async".into(),
            status: "pending".into(),
            priority: 3,
            payload: Some("{\"a\":1}".into()),
            tag: None,
            result: None,
            error: None,
            stage: 0,
            cycle: 0,
            timeout_ms: 1500,
            retry_count: 0,
            max_attempts: 3,
            retry_interval_ms: 0,
            cron_expr: None,
            root_id: None,
            parent_id: None,
            parent_stage: None,
            total_children: 0,
            pending_children: 0,
            worker_id: None,
            attempt: 0,
            suspend_reason: None,
            previous_status: None,
            current_stage_name: None,
            progress_text: None,
            progress_percent: None,
            last_event_at: None,
            last_event_type: None,
            created_at: 1_700_000_000_123,
            next_run_at: 1_700_000_000_123,
            started_at: None,
            last_active_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_row_becomes_a_typed_record() {
        let record = TaskRecord::try_from(row()).unwrap();
        assert_eq!(record.id, TaskId(7));
        assert_eq!(record.status, TaskStatus::Pending);
        assert_eq!(record.kind, TaskKind::Async);
        assert_eq!(record.timeout, Duration::from_millis(1500));
        assert_eq!(record.payload, Some(serde_json::json!({"a": 1})));
        assert_eq!(record.created_at.timestamp_millis(), 1_700_000_000_123);
    }

    #[test]
    fn corrupt_columns_are_named() {
        let bad = TaskRow {
            status: "weird".into(),
            ..row()
        };
        assert!(matches!(
            TaskRecord::try_from(bad),
            Err(Error::Corrupt {
                column: "status",
                ..
            })
        ));
        let bad = TaskRow {
            payload: Some("{".into()),
            ..row()
        };
        assert!(matches!(
            TaskRecord::try_from(bad),
            Err(Error::Corrupt {
                column: "payload",
                ..
            })
        ));
        let bad = TaskRow {
            retry_count: -1,
            ..row()
        };
        assert!(matches!(
            TaskRecord::try_from(bad),
            Err(Error::Corrupt {
                column: "retry_count",
                ..
            })
        ));
    }
}
