//! The workflow summary (SPEC.md §10.7), computed in memory from rows the
//! manager loaded: pure functions, unit-tested without a database.

use chrono::{DateTime, Utc};

use super::{TaskAttempt, TaskEvent, WorkflowSummary};
use crate::task::{TaskId, TaskRecord};

/// What the summary is computed from. The manager loads only this: the
/// workflow's task rows (no context blobs), its attempts, aggregate counts
/// of its events, and the root's own attempt-start events.
#[derive(Debug, Clone)]
pub(crate) struct SummaryInput {
    /// The root's id.
    pub(crate) root_id: TaskId,
    /// Every task of the workflow, the root included, in id order.
    pub(crate) tasks: Vec<TaskRecord>,
    /// Every attempt of those tasks, ordered by attempt number then id.
    pub(crate) attempts: Vec<TaskAttempt>,
    /// Aggregates over every event of the workflow.
    pub(crate) events: EventStats,
    /// The root's `task_started` and `task_retry_started` events, oldest
    /// first (they carry the stage each attempt ran).
    pub(crate) root_starts: Vec<TaskEvent>,
}

/// Aggregates over a workflow's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EventStats {
    /// How many events.
    pub(crate) count: u64,
    /// How many `task_checkpoint` events.
    pub(crate) checkpoints: u64,
    /// Distinct non-null worker ids on the events.
    pub(crate) workers: Vec<String>,
    /// The newest event time.
    pub(crate) last_event_at: Option<DateTime<Utc>>,
}

/// The summary of the workflow described by `input`.
pub(crate) fn summarize(input: SummaryInput) -> WorkflowSummary {
    let _ = input;
    todo!("implemented by the summary work")
}
