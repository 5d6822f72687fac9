//! The benchmark floor's statements ([`FloorStore`]): fib-flow's task
//! insert and completion issued bare, and a reset that empties every
//! fib-flow table. Only [`crate::floor::FloorProbe`] uses them.
//!
//! **Not for production.** These statements bypass the engine: no
//! `task_created` / `task_completed` events, no attempts, no ownership
//! fence, no transaction around related writes. They exist to measure what
//! the database can do for this schema.
//!
//! Same rules as the rest of the store: one SQL file per statement, no
//! decisions (the statuses and event type come in the params).

use async_trait::async_trait;
#[cfg(feature = "mysql")]
use serde::Serialize;

use super::params::TaskInsertParams;
use crate::audit::EventType;
use crate::error::Result;
use crate::state::TaskStatus;

/// Params of [`FloorStore::floor_task_complete_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorCompleteParams {
    /// The tasks to complete.
    pub ids: Vec<i64>,
    /// The status a row must have to change (`running`).
    pub from: TaskStatus,
    /// The status it gets (`completed`).
    pub to: TaskStatus,
    /// `result` of every row (JSON text).
    pub result: String,
    /// `last_event_type` stamped on every row (`task_completed`), as a
    /// completion stamps it (no event row is written).
    pub last_event_type: &'static str,
}

impl FloorCompleteParams {
    /// Completes the running rows among `ids` with a JSON `null` result.
    pub fn new(ids: Vec<i64>) -> Self {
        FloorCompleteParams {
            ids,
            from: TaskStatus::Running,
            to: TaskStatus::Completed,
            result: "null".to_owned(),
            last_event_type: EventType::TaskCompleted.as_str(),
        }
    }
}

/// The statements of the benchmark floor. Every backend implements it; see
/// the module docs.
#[async_trait]
pub trait FloorStore: Send + Sync {
    /// Empties every fib-flow table (tasks, task events, task attempts,
    /// workers, leases; not the migrations table) so no dead rows remain:
    /// PostgreSQL one `TRUNCATE … RESTART IDENTITY`, MySQL one `TRUNCATE
    /// TABLE` per table, SQLite one `DELETE FROM` per table (and its
    /// AUTOINCREMENT counters).
    async fn floor_reset(&self) -> Result<()>;

    /// In one autocommitted statement, moves the rows among `ids` whose
    /// status is `from` to `to`, as a completion does (`previous_status`,
    /// `finished_at`, `last_active_at`, `result`, `worker_id` cleared,
    /// `last_event_at` / `last_event_type`), without fence, event or
    /// attempt. Returns how many rows changed; an empty list touches
    /// nothing.
    async fn floor_task_complete_many(&self, params: &FloorCompleteParams) -> Result<u64>;

    /// In one autocommitted statement, inserts one `pending` row per
    /// params item, with the columns a submit writes and no
    /// `task_created` event (SQLite runs the engine's own batch insert;
    /// the server statements write top-level rows, ignoring `parent`). Returns how many rows it
    /// inserted; an empty list touches nothing.
    async fn floor_task_insert_many(&self, params: &[TaskInsertParams]) -> Result<u64>;
}

/// One row of a floor insert as the MySQL statement reads it
/// from a JSON array: fields named as the columns, absent when null; the
/// due time as `run_at` (absolute) or `delay_ms` (from the statement's
/// clock).
#[cfg(feature = "mysql")]
#[derive(Serialize)]
struct FloorRowJson<'a> {
    name: &'a str,
    kind: &'static str,
    priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    timeout_ms: i64,
    max_attempts: i64,
    retry_interval_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron_expr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_at: Option<i64>,
    delay_ms: i64,
}

/// The rows of a floor insert as the JSON array the MySQL statement
/// reads (SQLite's floor runs the engine's own batch insert).
#[cfg(feature = "mysql")]
pub(crate) fn floor_rows_json(params: &[TaskInsertParams]) -> String {
    let rows: Vec<FloorRowJson<'_>> = params
        .iter()
        .map(|p| {
            let (_, run_at, delay_ms) = p.next_run.as_args();
            FloorRowJson {
                name: &p.name,
                kind: p.kind.as_str(),
                priority: p.priority,
                payload: p.payload.as_deref(),
                tag: p.tag.as_deref(),
                timeout_ms: p.timeout_ms,
                max_attempts: p.max_attempts,
                retry_interval_ms: p.retry_interval_ms,
                cron_expr: p.cron_expr.as_deref(),
                run_at,
                delay_ms,
            }
        })
        .collect();
    super::params::json_list(&rows)
}
