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

use crate::error::{Error, Result};

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

/// Whose rows a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    /// One task's.
    Task(i64),
    /// A workflow's: the root's and those of every task whose `root_id` is
    /// the root (events carry the root in their own `root_id`).
    Workflow(i64),
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

fn not_built(op: &str) -> Error {
    Error::Lifecycle {
        state: "unsupported",
        reason: format!("this store does not implement {op}"),
    }
}

/// The audit reads and retention. Same rules as [`Store`](super::Store):
/// not semver-stable, do not implement outside this crate.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Events in scope matching the filters, in the slice.
    async fn event_list(&self, params: &EventListParams) -> Result<Vec<EventRow>> {
        let _ = params;
        Err(not_built("event_list"))
    }

    /// How many events in scope match the filters (slice ignored).
    async fn event_count(&self, params: &EventListParams) -> Result<i64> {
        let _ = params;
        Err(not_built("event_count"))
    }

    /// Aggregates over the events whose `root_id` is `root_id`.
    async fn event_stats(&self, root_id: i64) -> Result<EventStatsRow> {
        let _ = root_id;
        Err(not_built("event_stats"))
    }

    /// Distinct non-null worker ids of the events whose `root_id` is
    /// `root_id`, sorted.
    async fn event_workers(&self, root_id: i64) -> Result<Vec<String>> {
        let _ = root_id;
        Err(not_built("event_workers"))
    }

    /// Attempts in scope matching the filters, in the slice.
    async fn attempt_list(&self, params: &AttemptListParams) -> Result<Vec<AttemptRow>> {
        let _ = params;
        Err(not_built("attempt_list"))
    }

    /// How many attempts in scope match the filters (slice ignored).
    async fn attempt_count(&self, params: &AttemptListParams) -> Result<i64> {
        let _ = params;
        Err(not_built("attempt_count"))
    }

    /// Task records matching the filters, in the slice.
    async fn task_query(&self, params: &TaskQueryParams) -> Result<Vec<super::TaskRow>> {
        let _ = params;
        Err(not_built("task_query"))
    }

    /// How many tasks match the filters (slice ignored).
    async fn task_query_count(&self, params: &TaskQueryParams) -> Result<i64> {
        let _ = params;
        Err(not_built("task_query_count"))
    }

    /// One retention batch, in one transaction: selects up to `batch_size`
    /// eligible top-level tasks (`root_id IS NULL`, status in `statuses`,
    /// `last_active_at` older than the clock minus `expire_after_ms`, no
    /// task under them in an `unfinished` status), oldest
    /// `last_active_at` first, skipping rows locked by another batch; then
    /// deletes the events and attempts of those roots and of every task
    /// under them, and the task rows.
    async fn retention_delete_batch(&self, params: &RetentionParams) -> Result<RetentionBatch> {
        let _ = params;
        Err(not_built("retention_delete_batch"))
    }
}
