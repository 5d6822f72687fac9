//! The execution audit: the persisted history of every task (events and
//! attempts), the queries that page through it, the workflow summary, and
//! retention.
//!
//! - Events ([`TaskEvent`]) are an append-only stream, written in the same
//!   transaction as the change they record: a task's creation, every
//!   claim, every status change, children created, and the handler's own
//!   checkpoints ([`Task::audit`](crate::Task::audit)) and progress
//!   reports ([`Task::progress`](crate::Task::progress)).
//! - Attempts ([`TaskAttempt`]) are one row per claim: opened by the claim,
//!   closed with an [`AttemptOutcome`] by whatever ends the run.
//! - Queries return a [`Page`]; their filters are [`EventQuery`],
//!   [`AttemptQuery`] and [`TaskQuery`], each with a [`PageRequest`].
//! - [`WorkflowSummary`] condenses a workflow: counts, timing, stage
//!   timings, failed tasks and its critical path.
//! - [`RetentionPolicy`] says which finished tasks (and their events and
//!   attempts) are deleted, and when.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{TaskKind, TaskStatus};
use crate::task::{TaskId, TaskRecord};

pub use report::{Checkpoint, Progress, MAX_REPORT_TEXT_LEN};

pub(crate) mod queries;
pub(crate) mod record;
pub(crate) mod report;
#[allow(dead_code)] // wired up by the audit queries
pub(crate) mod summary;

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
        field = $field:literal;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(Error::invalid(
                        $field,
                        format!("unknown value {other:?}"),
                    )),
                }
            }
        }
    };
}

string_enum! {
    /// What an event records (the catalogue of SPEC.md §10.1).
    pub enum EventType {
        /// The task was inserted.
        TaskCreated => "task_created",
        /// A worker claimed the task.
        TaskClaimed => "task_claimed",
        /// An attempt began (every claim).
        TaskStarted => "task_started",
        /// An attempt began after an earlier one failed.
        TaskRetryStarted => "task_retry_started",
        /// The task completed.
        TaskCompleted => "task_completed",
        /// An attempt failed; a retry follows.
        TaskFailed => "task_failed",
        /// An attempt timed out.
        TaskTimedOut => "task_timed_out",
        /// The task was paused (by an operator, or a cron task out of retries).
        TaskPaused => "task_paused",
        /// The task failed for good (out of attempts, cancelled, or a child
        /// failed).
        TaskPermanentlyFailed => "task_permanently_failed",
        /// The handler suspended the task for a person.
        TaskSuspended => "task_suspended",
        /// An operator resumed a suspended task.
        TaskResumed => "task_resumed",
        /// Any other status change (a parent resumed by its children, a
        /// cron task re-armed, a task released by a stopping worker, ...).
        TaskStatusChanged => "task_status_changed",
        /// The task created a stage of children.
        TaskSubtasksCreated => "task_subtasks_created",
        /// The task's running attempt was taken from a dead or superseded
        /// worker and the task made pending again.
        TaskRecovered => "task_recovered",
        /// The handler reported progress.
        TaskProgress => "task_progress",
        /// The handler recorded a checkpoint.
        TaskCheckpoint => "task_checkpoint",
    }
    field = "event_type";
}

string_enum! {
    /// How an attempt ended.
    pub enum AttemptOutcome {
        /// The handler succeeded (a cron cycle ending counts too).
        Completed => "completed",
        /// The handler failed.
        Failed => "failed",
        /// The attempt ran past its timeout or lost its heartbeat.
        Timeout => "timeout",
        /// The handler created children or suspended the task.
        Suspended => "suspended",
        /// An operator paused the task while it ran, or a cron task ran
        /// out of retries.
        Paused => "paused",
        /// The attempt was cut short: its worker stopped, died or was
        /// superseded, and the task went back to `pending` without using a
        /// retry.
        Interrupted => "interrupted",
        /// The task went back to `pending` for another reason (a workflow
        /// stage with no children).
        Pending => "pending",
        /// An operator cancelled the task (or its ancestor failed) while the
        /// attempt ran.
        Cancelled => "cancelled",
    }
    field = "outcome";
}

/// One persisted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskEvent {
    /// The event's id (ascending in insertion order).
    pub id: i64,
    /// The task it is about.
    pub task_id: TaskId,
    /// The task's workflow root (its own id for a top-level task).
    pub root_id: TaskId,
    /// The task's direct parent.
    pub parent_id: Option<TaskId>,
    /// What happened.
    pub event_type: EventType,
    /// The status before (status changes and claims).
    pub from_status: Option<TaskStatus>,
    /// The status after.
    pub to_status: Option<TaskStatus>,
    /// The task's stage the event belongs to.
    pub stage: Option<i64>,
    /// The worker involved.
    pub worker_id: Option<String>,
    /// The attempt involved (claims, checkpoints, progress).
    pub attempt: Option<i64>,
    /// When it happened (the database clock, millisecond precision).
    pub event_time: DateTime<Utc>,
    /// A human-readable line.
    pub message: Option<String>,
    /// Details, a JSON object (`null` when none).
    pub metadata: serde_json::Value,
}

/// One execution round of a task: opened by a claim, closed when the run
/// ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskAttempt {
    /// The row's id.
    pub id: i64,
    /// The task.
    pub task_id: TaskId,
    /// The attempt number (1 for the first claim; counts every claim).
    pub attempt: i64,
    /// The worker that ran it.
    pub worker_id: Option<String>,
    /// When it was claimed.
    pub started_at: DateTime<Utc>,
    /// When it ended (none while it runs).
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended (none while it runs).
    pub outcome: Option<AttemptOutcome>,
    /// The error it ended with.
    pub error: Option<String>,
    /// Whether it ended by timing out.
    pub timed_out: bool,
}

impl TaskAttempt {
    /// How long it ran, in milliseconds (none while it runs; never
    /// negative).
    pub fn duration_ms(&self) -> Option<i64> {
        self.ended_at
            .map(|end| (end - self.started_at).num_milliseconds().max(0))
    }
}

/// Sort direction of a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Oldest first (the default).
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// Which slice of a result to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Most items to return. Defaults to none: every match. Must be >= 1
    /// when set.
    pub limit: Option<u32>,
    /// Matches to skip first. Defaults to 0.
    pub offset: u64,
    /// Sort direction. Defaults to [`Order::Asc`].
    pub order: Order,
}

impl PageRequest {
    /// Every match, oldest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `limit` items (>= 1).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skip the first `offset` matches.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Sort direction.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Checks the request: a limit of 0 is refused.
    pub fn validate(&self) -> Result<()> {
        if self.limit == Some(0) {
            return Err(Error::invalid("limit", "must be a positive integer"));
        }
        if i64::try_from(self.offset).is_err() {
            return Err(Error::invalid(
                "offset",
                "must fit in a signed 64-bit integer",
            ));
        }
        Ok(())
    }

    /// The page holding `items` out of `total` matches.
    #[allow(dead_code)] // wired up by the audit queries
    pub(crate) fn page<T>(&self, items: Vec<T>, total: u64) -> Page<T> {
        let shown = self.offset.saturating_add(items.len() as u64);
        Page {
            has_more: self.limit.is_some() && shown < total,
            items,
            total,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// One page of a query's matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The matches on this page.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: u64,
    /// The limit asked for.
    pub limit: Option<u32>,
    /// The offset asked for.
    pub offset: u64,
    /// Whether matches follow this page.
    pub has_more: bool,
}

/// Filters of [`TaskManager::task_events`](crate::TaskManager::task_events)
/// and [`TaskManager::workflow_events`](crate::TaskManager::workflow_events);
/// set fields are AND-combined. Ordered by event time, then id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Which page.
    pub page: PageRequest,
    /// Only events of children of this task.
    pub parent_id: Option<TaskId>,
    /// Only events involving this worker.
    pub worker_id: Option<String>,
    /// Only events of these types (empty: all).
    pub event_types: Vec<EventType>,
    /// Only events of this attempt number.
    pub attempt: Option<i64>,
    /// Only events of this stage.
    pub stage: Option<i64>,
    /// Only events at or after this time.
    pub after: Option<DateTime<Utc>>,
    /// Only events at or before this time.
    pub before: Option<DateTime<Utc>>,
}

impl EventQuery {
    /// Every event, oldest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which page.
    pub fn page(mut self, page: PageRequest) -> Self {
        self.page = page;
        self
    }

    /// Only events of children of `parent`.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// Only events involving `worker_id`.
    pub fn worker(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = Some(worker_id.into());
        self
    }

    /// Only events of this type (may be given several times).
    pub fn event_type(mut self, event_type: EventType) -> Self {
        self.event_types.push(event_type);
        self
    }

    /// Only events of this attempt number.
    pub fn attempt(mut self, attempt: i64) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Only events of this stage.
    pub fn stage(mut self, stage: i64) -> Self {
        self.stage = Some(stage);
        self
    }

    /// Only events at or after `at`.
    pub fn after(mut self, at: DateTime<Utc>) -> Self {
        self.after = Some(at);
        self
    }

    /// Only events at or before `at`.
    pub fn before(mut self, at: DateTime<Utc>) -> Self {
        self.before = Some(at);
        self
    }
}

/// Filters of [`TaskManager::task_attempts`](crate::TaskManager::task_attempts)
/// and [`TaskManager::workflow_attempts`](crate::TaskManager::workflow_attempts);
/// set fields are AND-combined. Ordered by attempt number, then id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptQuery {
    /// Which page.
    pub page: PageRequest,
    /// Only attempts run by this worker.
    pub worker_id: Option<String>,
    /// Only attempts that ended this way.
    pub outcome: Option<AttemptOutcome>,
    /// Only attempts started at or after this time.
    pub started_after: Option<DateTime<Utc>>,
    /// Only attempts started at or before this time.
    pub started_before: Option<DateTime<Utc>>,
    /// Only attempts ended at or after this time.
    pub ended_after: Option<DateTime<Utc>>,
    /// Only attempts ended at or before this time.
    pub ended_before: Option<DateTime<Utc>>,
    /// Only attempts still running.
    pub open_only: bool,
}

impl AttemptQuery {
    /// Every attempt, lowest number first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which page.
    pub fn page(mut self, page: PageRequest) -> Self {
        self.page = page;
        self
    }

    /// Only attempts run by `worker_id`.
    pub fn worker(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = Some(worker_id.into());
        self
    }

    /// Only attempts that ended with `outcome`.
    pub fn outcome(mut self, outcome: AttemptOutcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only attempts started at or after `at`.
    pub fn started_after(mut self, at: DateTime<Utc>) -> Self {
        self.started_after = Some(at);
        self
    }

    /// Only attempts started at or before `at`.
    pub fn started_before(mut self, at: DateTime<Utc>) -> Self {
        self.started_before = Some(at);
        self
    }

    /// Only attempts ended at or after `at`.
    pub fn ended_after(mut self, at: DateTime<Utc>) -> Self {
        self.ended_after = Some(at);
        self
    }

    /// Only attempts ended at or before `at`.
    pub fn ended_before(mut self, at: DateTime<Utc>) -> Self {
        self.ended_before = Some(at);
        self
    }

    /// Only attempts still running.
    pub fn open_only(mut self) -> Self {
        self.open_only = true;
        self
    }
}

/// Filters of [`TaskManager::query_tasks`](crate::TaskManager::query_tasks);
/// set fields are AND-combined. Ordered by creation time, then id. Listing
/// never reads the tasks' context blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Which page.
    pub page: PageRequest,
    /// Only this tag.
    pub tag: Option<String>,
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Only this handler name.
    pub name: Option<String>,
    /// Only tasks last claimed by this worker.
    pub worker_id: Option<String>,
    /// Only direct children of this task.
    pub parent_id: Option<TaskId>,
    /// Only tasks whose workflow root is this task (the root itself not
    /// included; see `workflow`).
    pub root_id: Option<TaskId>,
    /// Only async or only cron tasks.
    pub kind: Option<TaskKind>,
    /// Only this workflow: the root and every task under it.
    pub workflow: Option<TaskId>,
}

impl TaskQuery {
    /// Every task, oldest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which page.
    pub fn page(mut self, page: PageRequest) -> Self {
        self.page = page;
        self
    }

    /// Only this tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only this status.
    pub fn status(mut self, status: TaskStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only this handler name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only tasks last claimed by `worker_id`.
    pub fn worker(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = Some(worker_id.into());
        self
    }

    /// Only direct children of `parent`.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// Only tasks under the workflow root `root` (not the root itself).
    pub fn root(mut self, root: TaskId) -> Self {
        self.root_id = Some(root);
        self
    }

    /// Only tasks of this kind.
    pub fn kind(mut self, kind: TaskKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only the workflow of `root`: the root and every task under it.
    pub fn workflow(mut self, root: TaskId) -> Self {
        self.workflow = Some(root);
        self
    }
}

/// A task with its events and attempts
/// ([`TaskManager::task_audit`](crate::TaskManager::task_audit)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAudit {
    /// The task (none when it does not exist, or no longer does).
    pub task: Option<TaskRecord>,
    /// Its events.
    pub events: Page<TaskEvent>,
    /// Its attempts.
    pub attempts: Page<TaskAttempt>,
}

/// A workflow's tasks and events
/// ([`TaskManager::workflow_audit`](crate::TaskManager::workflow_audit)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowAudit {
    /// The root task (none when it does not exist).
    pub root_task: Option<TaskRecord>,
    /// The root and every task under it.
    pub tasks: Page<TaskRecord>,
    /// Their events.
    pub events: Page<TaskEvent>,
}

/// Counts over a whole workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryTotals {
    /// Tasks in the workflow, the root included.
    pub tasks: u64,
    /// Attempts of those tasks.
    pub attempts: u64,
    /// Events of those tasks.
    pub events: u64,
    /// `task_checkpoint` events among them.
    pub checkpoints: u64,
    /// The highest attempt number of any task (0 when nothing ran).
    pub max_attempt: i64,
}

/// When a workflow started and ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowTiming {
    /// When the root was submitted.
    pub created_at: Option<DateTime<Utc>>,
    /// The earliest attempt start.
    pub first_started_at: Option<DateTime<Utc>>,
    /// The latest attempt end.
    pub last_ended_at: Option<DateTime<Utc>>,
    /// The newest event.
    pub last_event_at: Option<DateTime<Utc>>,
    /// From the root's creation to the latest attempt end, in
    /// milliseconds (never negative; none until an attempt ended).
    pub duration_ms: Option<i64>,
}

/// One attempt of the root: which stage it ran and how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTiming {
    /// The root's stage during the attempt.
    pub stage: i64,
    /// The attempt number.
    pub attempt: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (none while it runs).
    pub ended_at: Option<DateTime<Utc>>,
    /// How long it ran, ms (none while it runs).
    pub duration_ms: Option<i64>,
    /// How it ended.
    pub outcome: Option<AttemptOutcome>,
    /// The worker that ran it.
    pub worker_id: Option<String>,
}

/// A task of the workflow whose current status is a failure (or paused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTask {
    /// The task.
    pub task_id: TaskId,
    /// Its handler name.
    pub name: String,
    /// Its status: failed, timeout, permanently_failed or paused.
    pub status: TaskStatus,
    /// Its error.
    pub error: Option<String>,
}

/// One task on the critical path, with its representative attempt (the
/// longest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathNode {
    /// The task.
    pub task_id: TaskId,
    /// Its handler name.
    pub name: String,
    /// Its status.
    pub status: TaskStatus,
    /// Its current stage.
    pub stage: i64,
    /// The representative attempt's number (none when it never ran).
    pub attempt: Option<i64>,
    /// How that attempt ended.
    pub outcome: Option<AttemptOutcome>,
    /// How long it ran, ms (none when it never ran or still runs).
    pub duration_ms: Option<i64>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// The chain of tasks from the root down whose representative attempts add
/// up to the longest time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalPath {
    /// The sum of the nodes' durations, ms.
    pub total_duration_ms: i64,
    /// Root first.
    pub nodes: Vec<PathNode>,
}

/// An attempt with its duration, for the slowest-attempts list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowAttempt {
    /// The attempt.
    pub attempt: TaskAttempt,
    /// How long it ran, ms (none while it runs).
    pub duration_ms: Option<i64>,
}

/// A workflow condensed
/// ([`TaskManager::workflow_summary`](crate::TaskManager::workflow_summary)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowSummary {
    /// The root task (none when it does not exist).
    pub root_task: Option<TaskRecord>,
    /// Counts.
    pub totals: SummaryTotals,
    /// Tasks per current status.
    pub statuses: BTreeMap<TaskStatus, u64>,
    /// Ended attempts per outcome.
    pub attempt_outcomes: BTreeMap<AttemptOutcome, u64>,
    /// Tasks per handler name.
    pub task_names: BTreeMap<String, u64>,
    /// Tasks per current stage.
    pub stages: BTreeMap<i64, u64>,
    /// Every worker that appears on a task, attempt or event, sorted.
    pub workers: Vec<String>,
    /// When it started and ended.
    pub timing: WorkflowTiming,
    /// The root's attempts, one per stage run, in attempt order.
    pub stage_timings: Vec<StageTiming>,
    /// Tasks whose current status is failed, timeout, permanently_failed
    /// or paused, in id order.
    pub failed_tasks: Vec<FailedTask>,
    /// The longest chain from the root down.
    pub critical_path: CriticalPath,
    /// The five slowest attempts (running ones last).
    pub slowest_attempts: Vec<SlowAttempt>,
}

/// Which finished tasks are deleted, with their events and attempts, and
/// how often the automatic pass runs.
///
/// A task is eligible when its status is one of `statuses` and its last
/// change is older than `expire_after`. Workflows are deleted whole: only a
/// top-level task is ever selected, and it takes every task under it, and
/// their events and attempts, in the same transaction; a workflow with an
/// unfinished task anywhere in it is never selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// How long a finished task is kept after its last change. Defaults to
    /// [`DEFAULT_RETENTION_EXPIRE_AFTER`] (1 day); must be > 0.
    pub expire_after: Duration,
    /// Statuses that make a task eligible. Defaults to `completed` and
    /// `permanently_failed`; must be non-empty, of `completed`,
    /// `permanently_failed` and `paused`.
    pub statuses: Vec<TaskStatus>,
    /// Most workflows deleted per transaction. Defaults to
    /// [`DEFAULT_RETENTION_BATCH_SIZE`] (100); 1 to 10,000.
    pub batch_size: u32,
    /// How often the automatic pass runs. Defaults to
    /// [`DEFAULT_RETENTION_INTERVAL`] (5 minutes); must be > 0.
    pub interval: Duration,
}

/// Default for [`RetentionPolicy::expire_after`]: 1 day.
pub const DEFAULT_RETENTION_EXPIRE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Default for [`RetentionPolicy::batch_size`]: 100 workflows.
pub const DEFAULT_RETENTION_BATCH_SIZE: u32 = 100;
/// Largest accepted [`RetentionPolicy::batch_size`].
pub const MAX_RETENTION_BATCH_SIZE: u32 = 10_000;
/// Default for [`RetentionPolicy::interval`]: 5 minutes.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(300);

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            expire_after: DEFAULT_RETENTION_EXPIRE_AFTER,
            statuses: vec![TaskStatus::Completed, TaskStatus::PermanentlyFailed],
            batch_size: DEFAULT_RETENTION_BATCH_SIZE,
            interval: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

impl RetentionPolicy {
    /// The default policy with another expiry.
    pub fn expire_after(expire_after: Duration) -> Self {
        RetentionPolicy {
            expire_after,
            ..Self::default()
        }
    }

    /// The same policy with other eligible statuses.
    pub fn with_statuses(mut self, statuses: impl IntoIterator<Item = TaskStatus>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// The same policy with another batch size.
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The same policy with another automatic interval.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Checks every field and names the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| Error::invalid(field, reason.to_owned());
        if self.expire_after.is_zero() {
            return Err(bad("retention.expire_after", "must be greater than zero"));
        }
        if self.expire_after > crate::config::MAX_DURATION {
            return Err(bad("retention.expire_after", "must be at most 100 years"));
        }
        if self.statuses.is_empty() {
            return Err(bad("retention.statuses", "must not be empty"));
        }
        for status in &self.statuses {
            if !matches!(
                status,
                TaskStatus::Completed | TaskStatus::PermanentlyFailed | TaskStatus::Paused
            ) {
                return Err(Error::invalid(
                    "retention.statuses",
                    format!(
                        "{status} is not allowed (only completed, permanently_failed and paused)"
                    ),
                ));
            }
        }
        if self.batch_size == 0 || self.batch_size > MAX_RETENTION_BATCH_SIZE {
            return Err(bad("retention.batch_size", "must be between 1 and 10000"));
        }
        if self.interval.is_zero() {
            return Err(bad("retention.interval", "must be greater than zero"));
        }
        Ok(())
    }

    /// The statuses without duplicates, in a stable order.
    #[allow(dead_code)] // wired up by the audit queries
    pub(crate) fn distinct_statuses(&self) -> Vec<TaskStatus> {
        let mut statuses = self.statuses.clone();
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        statuses
    }
}

/// What a retention run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Task rows deleted.
    pub tasks_deleted: u64,
    /// Event rows deleted.
    pub events_deleted: u64,
    /// Attempt rows deleted.
    pub attempts_deleted: u64,
}

impl RetentionReport {
    #[allow(dead_code)] // wired up by the audit queries
    pub(crate) fn add(&mut self, other: RetentionReport) {
        self.tasks_deleted += other.tasks_deleted;
        self.events_deleted += other.events_deleted;
        self.attempts_deleted += other.attempts_deleted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), *t);
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(o.as_str().parse::<AttemptOutcome>().unwrap(), *o);
        }
        assert!("nope".parse::<EventType>().is_err());
    }

    #[test]
    fn page_edges() {
        let request = PageRequest::new().limit(2).offset(2);
        let page = request.page(vec![1, 2], 5);
        assert!(page.has_more);
        let page = request.page(vec![1], 3);
        assert!(!page.has_more);
        let unlimited = PageRequest::new().page(vec![1, 2, 3], 3);
        assert!(!unlimited.has_more);
        assert!(PageRequest::new().limit(0).validate().is_err());
    }

    #[test]
    fn retention_policy_rules() {
        assert!(RetentionPolicy::default().validate().is_ok());
        let zero = RetentionPolicy::expire_after(Duration::ZERO);
        assert!(zero.validate().is_err());
        let running = RetentionPolicy::default().with_statuses([TaskStatus::Running]);
        assert!(running.validate().is_err());
        let empty = RetentionPolicy::default().with_statuses([]);
        assert!(empty.validate().is_err());
        assert!(RetentionPolicy::default()
            .with_batch_size(0)
            .validate()
            .is_err());
    }
}
