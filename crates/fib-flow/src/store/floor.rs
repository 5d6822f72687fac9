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

use super::params::TaskBatchParams;
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

    /// Inserts one `pending` row per payload of `batch`, with the columns
    /// [`Store::task_submit_many`](super::Store::task_submit_many) writes,
    /// by the engine's own insert statement run bare: autocommitted,
    /// without the `task_created` events (`batch.created()` is not used).
    /// Returns how many rows it inserted; an empty batch touches nothing.
    /// A batch of one is the single-row commit rate: one statement the
    /// connection keeps prepared, every value bound.
    async fn floor_task_insert_many(&self, batch: &TaskBatchParams) -> Result<u64>;
}
