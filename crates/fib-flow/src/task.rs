//! Tasks: ids, submission options, stored records, and the [`Task`] a handler
//! receives.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::audit::report::{Checkpoint, Progress, Reporter};
use crate::config::{check_identifier, PRIORITY_MAX, PRIORITY_MIN};
use crate::error::{Error, Result};
use crate::state::{TaskKind, TaskStatus};
use crate::step::ChildResult;

/// A task's id (the database's auto-increment key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl TaskId {
    /// The raw integer.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for TaskId {
    fn from(id: i64) -> Self {
        TaskId(id)
    }
}

/// When a submitted task first becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAt {
    /// This long after the database's current time.
    Delay(Duration),
    /// At this instant (a time in the past means at once).
    At(DateTime<Utc>),
}

/// Per-task options for `submit_with`. Each one left unset falls back to the
/// handler's option, then the manager's (task > handler > manager).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskOptions {
    pub(crate) priority: Option<i32>,
    pub(crate) run_at: Option<RunAt>,
    pub(crate) tag: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry_interval: Option<Duration>,
}

impl TaskOptions {
    /// No options set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Higher runs first, from [`PRIORITY_MIN`] to [`PRIORITY_MAX`].
    /// Defaults to the handler's priority, else 0.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Do not run before this delay has passed. Defaults to no delay.
    /// Replaces an earlier [`TaskOptions::run_at`].
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(RunAt::Delay(delay));
        self
    }

    /// Do not run before this instant. Replaces an earlier
    /// [`TaskOptions::delay`].
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(RunAt::At(at));
        self
    }

    /// A free label for filtering and statistics (1 to 255 bytes). Defaults
    /// to none.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Total run time of one attempt (> 0). Defaults to the handler's, else
    /// the manager's `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Total number of runs, the first included (>= 1). Defaults to the
    /// handler's, else the manager's `max_attempts`.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Delay between a failed run and the next. Defaults to the handler's,
    /// else the manager's `retry_interval`.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = Some(interval);
        self
    }
}

pub(crate) fn check_priority(priority: i32) -> Result<()> {
    if !(PRIORITY_MIN..=PRIORITY_MAX).contains(&priority) {
        return Err(Error::invalid(
            "priority",
            format!("must be between {PRIORITY_MIN} and {PRIORITY_MAX}, got {priority}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_name(field: &'static str, name: &str) -> Result<()> {
    check_identifier(name).map_err(|reason| Error::invalid(field, reason))
}

/// A task row as stored, every column typed. Returned by the query API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The task's id.
    pub id: TaskId,
    /// The handler name.
    pub name: String,
    /// Async or cron.
    pub kind: TaskKind,
    /// Current status.
    pub status: TaskStatus,
    /// Higher runs first.
    pub priority: i32,
    /// The submitted payload (JSON), if any.
    pub payload: Option<serde_json::Value>,
    /// Free label.
    pub tag: Option<String>,
    /// The handler's result once completed.
    pub result: Option<serde_json::Value>,
    /// The error of the last failed attempt (kept after a later success).
    pub error: Option<String>,
    /// Workflow stage counter (0 for a plain task).
    pub stage: i64,
    /// Cycles a cron task has completed (0 for an async task); a cron
    /// workflow's children belong to the cycle they were created in.
    pub cycle: i64,
    /// Total run time allowed to one attempt.
    pub timeout: Duration,
    /// Retries scheduled so far.
    pub retry_count: u32,
    /// Total runs allowed, the first included.
    pub max_attempts: u32,
    /// Delay between a failed run and the next.
    pub retry_interval: Duration,
    /// Cron expression of a cron task.
    pub cron_expr: Option<String>,
    /// Workflow root (none for a top-level task).
    pub root_id: Option<TaskId>,
    /// Direct parent (none for a top-level task).
    pub parent_id: Option<TaskId>,
    /// The parent's stage when this child was created.
    pub parent_stage: Option<i64>,
    /// Children created so far, over all stages.
    pub total_children: i64,
    /// Children of the current stage not finished yet (while waiting).
    pub pending_children: i64,
    /// Worker that holds or last held the task.
    pub worker_id: Option<String>,
    /// Number of claims so far: the lease number that fences writes.
    pub attempt: i64,
    /// Why the task is suspended, when it is.
    pub suspend_reason: Option<String>,
    /// The status the task had before its last status change.
    pub previous_status: Option<TaskStatus>,
    /// The stage name of the handler's last progress report.
    pub current_stage_name: Option<String>,
    /// The text of the handler's last progress report.
    pub progress_text: Option<String>,
    /// The percentage of the handler's last progress report (0 to 100).
    pub progress_percent: Option<f64>,
    /// When the task's newest event was recorded.
    pub last_event_at: Option<DateTime<Utc>>,
    /// The type of the task's newest event (`task_completed`, ...).
    pub last_event_type: Option<String>,
    /// When the task was submitted.
    pub created_at: DateTime<Utc>,
    /// Earliest time of the next claim.
    pub next_run_at: DateTime<Utc>,
    /// When the current or last attempt was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Last sign of life: claim, heartbeat, status change.
    pub last_active_at: Option<DateTime<Utc>>,
    /// When the task reached a terminal status.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Filters for `get_tasks` and `delete_tasks`; set fields are AND-combined,
/// an empty filter matches every task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only tasks with this tag.
    pub tag: Option<String>,
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks with this handler name.
    pub name: Option<String>,
    /// Only direct children of this task.
    pub parent_id: Option<TaskId>,
    /// Only the tasks of this workflow: the root itself and every
    /// descendant.
    pub workflow: Option<TaskId>,
    /// Only tasks suspended with this reason.
    pub suspend_reason: Option<String>,
}

impl TaskFilter {
    /// Matches every task.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only tasks with this tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only tasks in this status.
    pub fn status(mut self, status: TaskStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only tasks in the status named by `status` (as stored: `pending`,
    /// `permanently_failed`, ...); an unknown name is an error.
    pub fn status_named(self, status: &str) -> Result<Self> {
        Ok(self.status(status.parse()?))
    }

    /// Only tasks with this handler name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only direct children of `parent`.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// Only the tasks of the workflow rooted at `root` (the root included).
    pub fn workflow(mut self, root: TaskId) -> Self {
        self.workflow = Some(root);
        self
    }

    /// Only tasks suspended with this reason.
    pub fn suspend_reason(mut self, reason: impl Into<String>) -> Self {
        self.suspend_reason = Some(reason.into());
        self
    }
}

/// One row of the per-tag statistics: how many tasks of a name are in a
/// status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    /// The tag (none for untagged tasks).
    pub tag: Option<String>,
    /// The handler name.
    pub name: String,
    /// The status.
    pub status: TaskStatus,
    /// How many tasks.
    pub count: u64,
}

/// The task as its handler sees it: the claimed row, the attempt it runs
/// under, and a cancellation signal.
///
/// Cheap to clone; clones share the cancellation signal.
#[derive(Debug, Clone)]
pub struct Task {
    inner: Arc<TaskInner>,
}

#[derive(Debug)]
struct TaskInner {
    record: TaskRecord,
    context: Option<Vec<u8>>,
    child_results: Vec<ChildResult>,
    started: Instant,
    cancel: CancellationToken,
    reporter: Reporter,
}

impl Task {
    pub(crate) fn new(
        record: TaskRecord,
        context: Option<Vec<u8>>,
        child_results: Vec<ChildResult>,
        cancel: CancellationToken,
        reporter: Reporter,
    ) -> Self {
        Task {
            inner: Arc::new(TaskInner {
                record,
                context,
                child_results,
                started: Instant::now(),
                cancel,
                reporter,
            }),
        }
    }

    /// The task's private context: the bytes stored with its last children
    /// or suspension step (`Step::context`), none before that. Never
    /// inherited by children.
    pub fn context(&self) -> Option<&[u8]> {
        self.inner.context.as_deref()
    }

    /// The outcomes of the children of the stage that just finished, one
    /// per child in child-id order; empty at stage 0 and after a resumed
    /// suspension.
    pub fn child_results(&self) -> &[ChildResult] {
        &self.inner.child_results
    }

    /// Starts a checkpoint: a named point this attempt reached, recorded in
    /// the task's history (`task_checkpoint`). Add a message or metadata,
    /// then await it. Fenced: once the attempt lost its task it returns
    /// [`Error::Lost`] and writes nothing.
    ///
    /// ```no_run
    /// # async fn f(task: fib_flow::Task) -> fib_flow::Result<()> {
    /// task.audit("payment_captured")
    ///     .metadata(&serde_json::json!({ "amount": 42 }))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn audit(&self, code: impl Into<String>) -> Checkpoint<'_> {
        Checkpoint::new(&self.inner.reporter, code.into())
    }

    /// Starts a progress report: a stage name, a text and/or a percent,
    /// kept on the task row (the latest one) and in its history
    /// (`task_progress`). It renews the attempt's lease like a heartbeat.
    /// Fenced like [`Task::audit`].
    ///
    /// ```no_run
    /// # async fn f(task: fib_flow::Task) -> fib_flow::Result<()> {
    /// task.progress().stage("upload").percent(40.0).text("2 of 5 files").await?;
    /// # Ok(()) }
    /// ```
    pub fn progress(&self) -> Progress<'_> {
        Progress::new(&self.inner.reporter)
    }

    /// The workflow root (this task's own id for a top-level task).
    pub fn root_id(&self) -> TaskId {
        self.inner.record.root_id.unwrap_or(self.inner.record.id)
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.inner.record.id
    }

    /// The handler name it was submitted under.
    pub fn name(&self) -> &str {
        &self.inner.record.name
    }

    /// Async or cron.
    pub fn kind(&self) -> TaskKind {
        self.inner.record.kind
    }

    /// The payload decoded into `T`; a payload that does not fit is a
    /// [`Error::Serialization`] naming `payload`.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T> {
        let value = self
            .inner
            .record
            .payload
            .clone()
            .unwrap_or(serde_json::Value::Null);
        serde_json::from_value(value).map_err(|source| Error::Serialization {
            field: "payload",
            source,
        })
    }

    /// The payload as raw JSON (`Null` when none was given).
    pub fn payload_json(&self) -> &serde_json::Value {
        static NULL: serde_json::Value = serde_json::Value::Null;
        self.inner.record.payload.as_ref().unwrap_or(&NULL)
    }

    /// The workflow stage this run is at (0 for a plain task).
    pub fn stage(&self) -> i64 {
        self.inner.record.stage
    }

    /// The attempt (lease) number of this run: 1 for the first claim.
    pub fn attempt(&self) -> i64 {
        self.inner.record.attempt
    }

    /// How many retries were scheduled before this run.
    pub fn retry_count(&self) -> u32 {
        self.inner.record.retry_count
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.inner.record.tag.as_deref()
    }

    /// The total run time this attempt is allowed.
    pub fn timeout(&self) -> Duration {
        self.inner.record.timeout
    }

    /// The row as it was when this attempt claimed it.
    pub fn record(&self) -> &TaskRecord {
        &self.inner.record
    }

    /// Time since this attempt started executing.
    pub fn elapsed(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// `Err(Error::Timeout)` once the attempt has used up its timeout, and
    /// `Err(Error::Lost)` once it has been told to stop (paused, deleted,
    /// timed out elsewhere, or the manager is stopping). Long loops call it
    /// between steps and return the error with `?`.
    pub fn check_timeout(&self) -> Result<()> {
        if self.elapsed() >= self.timeout() {
            return Err(Error::Timeout {
                id: self.id(),
                timeout: self.timeout(),
            });
        }
        if self.is_cancelled() {
            return Err(Error::Lost {
                id: self.id(),
                attempt: self.attempt(),
            });
        }
        Ok(())
    }

    /// Whether this attempt has been told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Completes when this attempt is told to stop; work the handler spawns
    /// can wait on it to clean up. (The handler's own future is dropped at
    /// its next await point when that happens.)
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }
}
