//! The audit side of the storage seam: the reads of events, attempts and
//! paged task queries, and retention ([`AuditStore`]); and the rows the
//! engine writes inside its transactions ([`NewEvent`], [`NewAttempt`],
//! [`AttemptClose`], written through [`StoreTx`](super::StoreTx)).
//!
//! Same rules as the rest of the store: one params struct per method, one
//! SQL file per statement, no decisions. Times are milliseconds since the
//! epoch on the database clock.

use async_trait::async_trait;
use serde::Serialize;

use super::row::{json_column, parse_column, time_column};
use crate::audit::{TaskAttempt, TaskEvent};
use crate::error::{Error, Result};
use crate::task::TaskId;

/// One event to insert (its time is the transaction's clock). Serialised
/// into the JSON array a batch insert binds; absent values are left out
/// (JSON_TABLE reads a missing path as NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewEvent {
    /// `task_id`
    pub task_id: i64,
    /// `root_id`: the workflow root, the task's own id for a top-level task.
    pub root_id: i64,
    /// `parent_id`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
    /// `event_type`
    pub event_type: &'static str,
    /// `from_status`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_status: Option<String>,
    /// `to_status`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_status: Option<String>,
    /// `stage`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<i64>,
    /// `worker_id`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// `attempt`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// `message`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `metadata` (JSON object text)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// One attempt to open, as the claim that opens it wrote the task row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewAttempt {
    /// `task_id`
    pub task_id: i64,
    /// `attempt`
    pub attempt: i64,
    /// `worker_id`
    pub worker_id: String,
    /// `started_at`: the claim time written on the task.
    pub started_at: i64,
}

/// One open attempt to close (its end is the transaction's clock). Only an
/// attempt still open is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptClose {
    /// `task_id`
    pub task_id: i64,
    /// `attempt`
    pub attempt: i64,
    /// `outcome`
    pub outcome: &'static str,
    /// `error`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `timed_out`
    pub timed_out: bool,
}

/// The rows one transaction adds to the audit, written together just
/// before it commits by [`StoreTx::audit_write`](super::StoreTx::audit_write).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditRows {
    /// Events, in the order they happened.
    pub events: Vec<NewEvent>,
    /// Attempts opened.
    pub opened: Vec<NewAttempt>,
    /// Attempts closed.
    pub closed: Vec<AttemptClose>,
}

impl AuditRows {
    /// The `task_created` events of newly inserted top-level tasks:
    /// `created` once per id of `ids`, stamped with it as its task and
    /// root id.
    pub fn created(ids: &[i64], created: &NewEvent) -> Self {
        let events = ids
            .iter()
            .map(|&id| NewEvent {
                task_id: id,
                root_id: id,
                ..created.clone()
            })
            .collect();
        AuditRows {
            events,
            ..AuditRows::default()
        }
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.opened.is_empty() && self.closed.is_empty()
    }
}

/// Whose rows a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    /// One task's.
    Task(i64),
    /// A workflow's: the root's and those of every task whose `root_id` is
    /// the root (events carry the root in their own `root_id`).
    Workflow(i64),
}

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
impl AuditScope {
    /// The scope as two bind values, exactly one of them set: the task id
    /// (`task_id = ?`) and the workflow root (`root_id = ?`, or for
    /// attempts the tasks of that workflow). SQL matches `col = NULL` on
    /// neither, so `task_id = ? OR root_id = ?` keeps both indexes usable.
    pub(crate) fn as_args(self) -> (Option<i64>, Option<i64>) {
        match self {
            AuditScope::Task(id) => (Some(id), None),
            AuditScope::Workflow(root) => (None, Some(root)),
        }
    }
}

/// The slice of a listing: `limit` (none: all), `offset`, direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slice {
    /// Most rows (none: all).
    pub limit: Option<i64>,
    /// Rows skipped first (applies with or without a limit).
    pub offset: i64,
    /// Newest first instead of oldest first.
    pub desc: bool,
}

/// Params of [`AuditStore::event_list`] and [`AuditStore::event_count`].
/// Unset filters match everything; set ones are AND-combined. Ordered by
/// `event_time`, then `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventListParams {
    /// Whose events.
    pub scope: AuditScope,
    /// `parent_id =`
    pub parent_id: Option<i64>,
    /// `worker_id =`
    pub worker_id: Option<String>,
    /// `event_type IN` (empty: any).
    pub event_types: Vec<String>,
    /// `attempt =`
    pub attempt: Option<i64>,
    /// `stage =`
    pub stage: Option<i64>,
    /// `event_time >=`
    pub after_ms: Option<i64>,
    /// `event_time <=`
    pub before_ms: Option<i64>,
    /// Which rows (ignored by the count).
    pub slice: Slice,
}

/// Params of [`AuditStore::attempt_list`] and [`AuditStore::attempt_count`].
/// Ordered by `attempt`, then `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptListParams {
    /// Whose attempts (a workflow's: joined with its tasks).
    pub scope: AuditScope,
    /// `worker_id =`
    pub worker_id: Option<String>,
    /// `outcome =`
    pub outcome: Option<String>,
    /// `started_at >=`
    pub started_after_ms: Option<i64>,
    /// `started_at <=`
    pub started_before_ms: Option<i64>,
    /// `ended_at >=`
    pub ended_after_ms: Option<i64>,
    /// `ended_at <=`
    pub ended_before_ms: Option<i64>,
    /// `ended_at IS NULL`
    pub open_only: bool,
    /// Which rows (ignored by the count).
    pub slice: Slice,
}

/// Params of [`AuditStore::task_query`] and [`AuditStore::task_query_count`].
/// Ordered by `created_at`, then `id`. Reads the record view (no context).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQueryParams {
    /// `tag =`
    pub tag: Option<String>,
    /// `status =`
    pub status: Option<String>,
    /// `name =`
    pub name: Option<String>,
    /// `worker_id =`
    pub worker_id: Option<String>,
    /// `parent_id =`
    pub parent_id: Option<i64>,
    /// `root_id =`
    pub root_id: Option<i64>,
    /// `kind =`
    pub kind: Option<String>,
    /// `id = R OR root_id = R`
    pub workflow: Option<i64>,
    /// Which rows (ignored by the count).
    pub slice: Slice,
}

/// Params of [`AuditStore::retention_delete_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionParams {
    /// Statuses that make a top-level task eligible.
    pub statuses: Vec<String>,
    /// A task is eligible when `last_active_at` is older than the database
    /// clock minus this, ms.
    pub expire_after_ms: i64,
    /// Statuses that keep a whole workflow: one task under the root in one
    /// of these and the root is not selected.
    pub unfinished: Vec<String>,
    /// Most roots selected by one batch.
    pub batch_size: i64,
}

/// What one retention batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionBatch {
    /// Roots selected (a batch that selected `batch_size` roots may have
    /// left more behind).
    pub roots: i64,
    /// Task rows deleted (roots and the tasks under them).
    pub tasks_deleted: i64,
    /// Event rows deleted.
    pub events_deleted: i64,
    /// Attempt rows deleted.
    pub attempts_deleted: i64,
}

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
impl RetentionBatch {
    /// A batch from the driver's counts (saturating at `i64::MAX`).
    pub(crate) fn from_counts(roots: usize, tasks: u64, events: u64, attempts: u64) -> Self {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        RetentionBatch {
            roots: i64::try_from(roots).unwrap_or(i64::MAX),
            tasks_deleted: count(tasks),
            events_deleted: count(events),
            attempts_deleted: count(attempts),
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    /// `id`
    pub id: i64,
    /// `task_id`
    pub task_id: i64,
    /// `root_id`
    pub root_id: i64,
    /// `parent_id`
    pub parent_id: Option<i64>,
    /// `event_type`
    pub event_type: String,
    /// `from_status`
    pub from_status: Option<String>,
    /// `to_status`
    pub to_status: Option<String>,
    /// `stage`
    pub stage: Option<i64>,
    /// `worker_id`
    pub worker_id: Option<String>,
    /// `attempt`
    pub attempt: Option<i64>,
    /// `event_time`
    pub event_time: i64,
    /// `message`
    pub message: Option<String>,
    /// `metadata` (JSON text)
    pub metadata: Option<String>,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptRow {
    /// `id`
    pub id: i64,
    /// `task_id`
    pub task_id: i64,
    /// `attempt`
    pub attempt: i64,
    /// `worker_id`
    pub worker_id: Option<String>,
    /// `started_at`
    pub started_at: i64,
    /// `ended_at`
    pub ended_at: Option<i64>,
    /// `outcome`
    pub outcome: Option<String>,
    /// `error`
    pub error: Option<String>,
    /// `timed_out`
    pub timed_out: bool,
}

/// Aggregates over a workflow's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct EventStatsRow {
    /// `COUNT(*)`
    pub events: i64,
    /// How many are `task_checkpoint`.
    pub checkpoints: i64,
    /// `MAX(event_time)`
    pub last_event_at: Option<i64>,
}

impl TryFrom<EventRow> for TaskEvent {
    type Error = Error;

    fn try_from(row: EventRow) -> Result<Self> {
        Ok(TaskEvent {
            id: row.id,
            task_id: TaskId(row.task_id),
            root_id: TaskId(row.root_id),
            parent_id: row.parent_id.map(TaskId),
            event_type: parse_column("event_type", &row.event_type)?,
            from_status: row
                .from_status
                .map(|s| parse_column("from_status", &s))
                .transpose()?,
            to_status: row
                .to_status
                .map(|s| parse_column("to_status", &s))
                .transpose()?,
            stage: row.stage,
            worker_id: row.worker_id,
            attempt: row.attempt,
            event_time: time_column("event_time", row.event_time)?,
            message: row.message,
            metadata: json_column("metadata", row.metadata)?.unwrap_or(serde_json::Value::Null),
        })
    }
}

impl TryFrom<AttemptRow> for TaskAttempt {
    type Error = Error;

    fn try_from(row: AttemptRow) -> Result<Self> {
        Ok(TaskAttempt {
            id: row.id,
            task_id: TaskId(row.task_id),
            attempt: row.attempt,
            worker_id: row.worker_id,
            started_at: time_column("started_at", row.started_at)?,
            ended_at: row
                .ended_at
                .map(|t| time_column("ended_at", t))
                .transpose()?,
            outcome: row
                .outcome
                .map(|s| parse_column("outcome", &s))
                .transpose()?,
            error: row.error,
            timed_out: row.timed_out,
        })
    }
}

/// One listing SQL file in both directions. The file marks each sort key
/// with [`OrderedSql::MARKER`] (SQL cannot bind a direction); the two
/// variants are built once, in a `static`, not per call.
#[derive(Debug)]
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
pub(crate) struct OrderedSql {
    asc: String,
    desc: String,
}

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
impl OrderedSql {
    /// What each sort key is followed by in the file.
    pub(crate) const MARKER: &'static str = "/*ORDER*/";

    /// Both directions of `sql`.
    pub(crate) fn new(sql: &str) -> Self {
        OrderedSql {
            asc: sql.replace(Self::MARKER, "ASC"),
            desc: sql.replace(Self::MARKER, "DESC"),
        }
    }

    /// The variant for [`Slice::desc`].
    pub(crate) fn get(&self, desc: bool) -> &str {
        if desc {
            &self.desc
        } else {
            &self.asc
        }
    }
}

/// The audit reads and retention. Same rules as [`Store`](super::Store):
/// not semver-stable, do not implement outside this crate.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Events in scope matching the filters, in the slice.
    async fn event_list(&self, params: &EventListParams) -> Result<Vec<EventRow>>;

    /// How many events in scope match the filters (slice ignored).
    async fn event_count(&self, params: &EventListParams) -> Result<i64>;

    /// Aggregates over the events whose `root_id` is `root_id`.
    async fn event_stats(&self, root_id: i64) -> Result<EventStatsRow>;

    /// Distinct non-null worker ids of the events whose `root_id` is
    /// `root_id`, sorted.
    async fn event_workers(&self, root_id: i64) -> Result<Vec<String>>;

    /// Attempts in scope matching the filters, in the slice.
    async fn attempt_list(&self, params: &AttemptListParams) -> Result<Vec<AttemptRow>>;

    /// How many attempts in scope match the filters (slice ignored).
    async fn attempt_count(&self, params: &AttemptListParams) -> Result<i64>;

    /// Task records matching the filters, in the slice.
    async fn task_query(&self, params: &TaskQueryParams) -> Result<Vec<super::TaskRow>>;

    /// How many tasks match the filters (slice ignored).
    async fn task_query_count(&self, params: &TaskQueryParams) -> Result<i64>;

    /// One retention batch, in one transaction: selects up to `batch_size`
    /// eligible top-level tasks (`root_id IS NULL`, status in `statuses`,
    /// `last_active_at` older than the clock minus `expire_after_ms`, no
    /// task under them in an `unfinished` status), oldest
    /// `last_active_at` first, skipping rows locked by another batch; then
    /// deletes the events and attempts of those roots and of every task
    /// under them, and the task rows.
    async fn retention_delete_batch(&self, params: &RetentionParams) -> Result<RetentionBatch>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AttemptOutcome, EventType};
    use crate::state::TaskStatus;

    fn event() -> EventRow {
        EventRow {
            id: 3,
            task_id: 12,
            root_id: 10,
            parent_id: Some(11),
            event_type: "task_claimed".into(),
            from_status: Some("pending".into()),
            to_status: Some("running".into()),
            stage: Some(1),
            worker_id: Some("w".into()),
            attempt: Some(2),
            event_time: 1_700_000_000_123,
            message: Some("claimed".into()),
            metadata: Some(r#"{"k":1}"#.into()),
        }
    }

    fn attempt() -> AttemptRow {
        AttemptRow {
            id: 4,
            task_id: 12,
            attempt: 2,
            worker_id: Some("w".into()),
            started_at: 1_700_000_000_000,
            ended_at: Some(1_700_000_000_500),
            outcome: Some("timeout".into()),
            error: Some("slow".into()),
            timed_out: true,
        }
    }

    #[test]
    fn an_event_row_becomes_a_typed_event() {
        let e = TaskEvent::try_from(event()).unwrap();
        assert_eq!(e.task_id, TaskId(12));
        assert_eq!(e.root_id, TaskId(10));
        assert_eq!(e.parent_id, Some(TaskId(11)));
        assert_eq!(e.event_type, EventType::TaskClaimed);
        assert_eq!(e.from_status, Some(TaskStatus::Pending));
        assert_eq!(e.to_status, Some(TaskStatus::Running));
        assert_eq!(e.event_time.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(e.metadata, serde_json::json!({"k": 1}));
        let bare = TaskEvent::try_from(EventRow {
            metadata: None,
            from_status: None,
            ..event()
        })
        .unwrap();
        assert_eq!(bare.metadata, serde_json::Value::Null);
        assert_eq!(bare.from_status, None);
    }

    #[test]
    fn corrupt_event_columns_are_named() {
        for (row, column) in [
            (
                EventRow {
                    event_type: "nope".into(),
                    ..event()
                },
                "event_type",
            ),
            (
                EventRow {
                    from_status: Some("nope".into()),
                    ..event()
                },
                "from_status",
            ),
            (
                EventRow {
                    to_status: Some("nope".into()),
                    ..event()
                },
                "to_status",
            ),
            (
                EventRow {
                    metadata: Some("{".into()),
                    ..event()
                },
                "metadata",
            ),
            (
                EventRow {
                    event_time: i64::MAX,
                    ..event()
                },
                "event_time",
            ),
        ] {
            match TaskEvent::try_from(row) {
                Err(Error::Corrupt { column: c, .. }) => assert_eq!(c, column),
                other => panic!("{column}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_attempt_row_becomes_a_typed_attempt() {
        let a = TaskAttempt::try_from(attempt()).unwrap();
        assert_eq!(a.task_id, TaskId(12));
        assert_eq!(a.outcome, Some(AttemptOutcome::Timeout));
        assert_eq!(a.duration_ms(), Some(500));
        assert!(a.timed_out);
        let open = TaskAttempt::try_from(AttemptRow {
            ended_at: None,
            outcome: None,
            ..attempt()
        })
        .unwrap();
        assert_eq!(open.ended_at, None);
        assert_eq!(open.outcome, None);
        let bad = AttemptRow {
            outcome: Some("nope".into()),
            ..attempt()
        };
        assert!(matches!(
            TaskAttempt::try_from(bad),
            Err(Error::Corrupt {
                column: "outcome",
                ..
            })
        ));
    }

    #[test]
    fn ordered_sql_has_both_directions() {
        let sql = OrderedSql::new("SELECT 1 ORDER BY a /*ORDER*/, id /*ORDER*/");
        assert_eq!(sql.get(false), "SELECT 1 ORDER BY a ASC, id ASC");
        assert_eq!(sql.get(true), "SELECT 1 ORDER BY a DESC, id DESC");
    }
}
