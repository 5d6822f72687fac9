//! One params struct per [`Store`](super::Store) method, shared by every
//! backend. Status changes are built only through the named constructors of
//! [`TaskSetStatusParams`], which carry the allowed source statuses (from
//! [`Transition`]) and the ownership fence, so no backend re-derives a rule.

use std::time::Duration;

use crate::audit::record::status_event_type;
use crate::audit::EventType;
use crate::config::millis;
use crate::error::{Error, Result};
use crate::state::{ChildFailure, FailureKind, FailurePlan, TaskKind, TaskStatus, Transition};
use crate::store::audit::{AuditRows, NewEvent};
use crate::task::TaskFilter;

/// When a row next becomes due, relative to the database clock or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRun {
    /// Leave `next_run_at` as it is.
    Keep,
    /// The database's now plus this many milliseconds.
    AfterMs(i64),
    /// This absolute time (milliseconds since the epoch).
    AtMs(i64),
}

impl NextRun {
    /// The change as three bind values for SQL that computes the time on
    /// the database clock: whether it changes, the absolute time if one is
    /// given, and the delay from now otherwise.
    pub fn as_args(self) -> (bool, Option<i64>, i64) {
        match self {
            NextRun::Keep => (false, None, 0),
            NextRun::AfterMs(ms) => (true, None, ms),
            NextRun::AtMs(ms) => (true, Some(ms), 0),
        }
    }
}

/// Params of [`Store::task_insert`](super::Store::task_insert).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInsertParams {
    /// Handler name.
    pub name: String,
    /// Async or cron.
    pub kind: TaskKind,
    /// Payload as JSON text.
    pub payload: Option<String>,
    /// Priority.
    pub priority: i32,
    /// Tag.
    pub tag: Option<String>,
    /// Total run time of one attempt, ms.
    pub timeout_ms: i64,
    /// Total runs allowed.
    pub max_attempts: i64,
    /// Delay between runs after a failure, ms.
    pub retry_interval_ms: i64,
    /// First due time ([`NextRun::Keep`] means now).
    pub next_run: NextRun,
    /// Cron expression of a cron task.
    pub cron_expr: Option<String>,
    /// The workflow this child belongs to: root, parent, and the parent's
    /// stage. `None` for a top-level task.
    pub parent: Option<ParentLink>,
}

/// Where a child sits in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentLink {
    /// The workflow's top-level task.
    pub root_id: i64,
    /// The direct parent.
    pub parent_id: i64,
    /// The parent's stage when the child was created.
    pub parent_stage: i64,
    /// The parent's cycle when the child was created (cron parents).
    pub parent_cycle: i64,
}

/// Params of [`Store::task_submit_many`](super::Store::task_submit_many):
/// top-level tasks that share every column but their payloads (what
/// [`TaskManager::submit_many`](crate::TaskManager::submit_many) submits:
/// one handler, one set of options), each with the same `task_created`
/// event. The shared columns are written once per batch, not once per
/// task. Built by [`TaskBatchParams::new`], which refuses a child task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskBatchParams {
    task: TaskInsertParams,
    payloads: Vec<Option<String>>,
    created: NewEvent,
}

impl TaskBatchParams {
    /// One task per item of `payloads`, in that order, each with `task`'s
    /// columns (`task.payload` is not used) and the event `created`
    /// (its `task_id` and `root_id` become the new task's id).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] on field `parent` when `task` is a child: a
    /// batch inserts top-level tasks only.
    pub fn new(
        task: TaskInsertParams,
        payloads: Vec<Option<String>>,
        created: NewEvent,
    ) -> Result<Self> {
        if task.parent.is_some() {
            return Err(Error::InvalidInput {
                field: "parent",
                reason: "a batch submit inserts top-level tasks only".to_owned(),
            });
        }
        Ok(TaskBatchParams {
            task: TaskInsertParams {
                payload: None,
                ..task
            },
            payloads,
            created,
        })
    }

    /// The columns every task shares (its `payload` is `None`).
    pub fn task(&self) -> &TaskInsertParams {
        &self.task
    }

    /// Each task's payload, in input order.
    pub fn payloads(&self) -> &[Option<String>] {
        &self.payloads
    }

    /// The `task_created` event every task gets (its `task_id` and
    /// `root_id` are replaced by the task's id).
    pub fn created(&self) -> &NewEvent {
        &self.created
    }

    /// How many tasks.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether there is no task.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// The events of the tasks inserted as `ids` (in input order).
    pub fn events(&self, ids: &[i64]) -> Vec<NewEvent> {
        AuditRows::created(ids, &self.created).events
    }
}

/// One name a worker can claim, with how many of it may be claimed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimName {
    /// Handler name.
    pub name: String,
    /// Most rows of this name to claim in this call.
    pub limit: i64,
}

/// Params of [`Store::task_claim_many`](super::Store::task_claim_many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskClaimManyParams {
    /// The claiming worker.
    pub worker_id: String,
    /// Statuses a row may be claimed from ([`Transition::Claim`]).
    pub from: Vec<TaskStatus>,
    /// Names this worker runs, each with its own limit.
    pub names: Vec<ClaimName>,
    /// Most rows in total.
    pub limit: i64,
    /// `last_event_type` of a claimed row on its first attempt.
    pub started_event: &'static str,
    /// `last_event_type` of a claimed row after failed attempts.
    pub retry_started_event: &'static str,
    /// Claim only while `worker_id` is an `active` worker in the registry
    /// (a registered worker; its row is locked in share mode for the
    /// claim's transaction, so a worker superseded or reaped meanwhile
    /// claims nothing). False for a worker without a registry row.
    pub require_active_worker: bool,
    /// Let the claim's transaction commit without waiting for its disk
    /// flush (PostgreSQL `synchronous_commit = off` for that transaction;
    /// other backends ignore it). False: the session's setting stands.
    pub async_commit: bool,
}

impl TaskClaimManyParams {
    /// A claim of up to `limit` rows among `names`.
    pub fn new(worker_id: impl Into<String>, names: Vec<ClaimName>, limit: i64) -> Self {
        TaskClaimManyParams {
            worker_id: worker_id.into(),
            from: Transition::Claim.allowed_from().to_vec(),
            names,
            limit,
            started_event: EventType::TaskStarted.as_str(),
            retry_started_event: EventType::TaskRetryStarted.as_str(),
            require_active_worker: false,
            async_commit: false,
        }
    }
}

/// The owner of a running attempt: a write about it applies only while both
/// still match the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The worker that claimed it.
    pub worker_id: String,
    /// The attempt number it was claimed under.
    pub attempt: i64,
}

/// How a status change treats the `error` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorUpdate {
    /// Leave it.
    Keep,
    /// Replace it.
    Set(String),
}

impl ErrorUpdate {
    /// The change as two bind values: whether `error` changes, and to what.
    pub fn as_args(&self) -> (bool, Option<&str>) {
        match self {
            ErrorUpdate::Keep => (false, None),
            ErrorUpdate::Set(text) => (true, Some(text.as_str())),
        }
    }
}

/// Params of one guarded status change; build them with the constructors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSetStatusParams {
    /// The task.
    pub id: i64,
    /// The transition (its target and allowed source statuses).
    pub transition: Transition,
    /// Owner guard, for transitions of a running attempt.
    pub fence: Option<Fence>,
    /// New result (JSON text) when `Some`.
    pub result: Option<String>,
    /// What happens to `error`.
    pub error: ErrorUpdate,
    /// New due time.
    pub next_run: NextRun,
    /// New `retry_count` when `Some`.
    pub retry_count: Option<i64>,
    /// Whether `worker_id` is cleared (the task is given back).
    pub release_owner: bool,
    /// New context blob when `Some`.
    pub context: Option<Vec<u8>>,
    /// New `suspend_reason` when `Some` (`Some(None)` clears it).
    pub suspend_reason: Option<Option<String>>,
    /// The task starts waiting for this many new children.
    pub children: Option<ChildrenUpdate>,
    /// Apply only while the task waits for no children (an explicit
    /// suspension, not a parent waiting on its stage).
    pub require_no_children: bool,
    /// Whether `stage` goes back to 0 (a cron task starting a new cycle).
    pub reset_stage: bool,
    /// Apply only while the lease is still expired under this heartbeat
    /// timeout (ms): an expiry decided on a read must not undo a heartbeat
    /// that renewed the lease since.
    pub require_expired_ms: Option<i64>,
    /// Whether the running attempt this change ends timed out (its attempt
    /// row records it).
    pub timed_out: bool,
    /// Extra details for the change's event (`resume_reason`,
    /// `timeout_type`, ...), added to its metadata.
    pub event_details: Vec<(&'static str, serde_json::Value)>,
    /// The type of the newest event the change's transaction records for
    /// the task, stamped on the row (`last_event_type`) by the change.
    pub last_event_type: &'static str,
    /// The error its attempt row records when the change closes a running
    /// attempt without setting the task's `error` (a recovery).
    pub attempt_error: Option<String>,
    /// The worker the change's event names, when it is not the row's
    /// owner after the change (a recovery names the recovering worker).
    pub event_worker_id: Option<String>,
}

/// A parent starting to wait for a new stage of children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildrenUpdate {
    /// How many children it waits for.
    pub count: i64,
    /// What a child's permanent failure does to it.
    pub on_failure: ChildFailure,
}

/// The error an attempt taken back from a gone worker records.
pub const RECOVERED_ERROR: &str = "Task ownership recovered after worker became unavailable";

/// The suspend reason of a parent waiting for its children.
pub const AWAITING_CHILDREN: &str = "awaiting_children";

impl TaskSetStatusParams {
    fn base(id: i64, transition: Transition, fence: Option<Fence>) -> Self {
        TaskSetStatusParams {
            id,
            transition,
            fence,
            result: None,
            error: ErrorUpdate::Keep,
            next_run: NextRun::Keep,
            retry_count: None,
            release_owner: false,
            context: None,
            // Leaving `suspended` clears the reason; entering it sets one.
            suspend_reason: (transition.allowed_from() == [TaskStatus::Suspended]).then_some(None),
            children: None,
            require_no_children: false,
            reset_stage: false,
            require_expired_ms: None,
            timed_out: false,
            event_details: Vec::new(),
            last_event_type: status_event_type(transition).as_str(),
            attempt_error: None,
            event_worker_id: None,
        }
    }

    /// The same change with one more detail for its event.
    pub fn with_detail(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.event_details.push((key, value.into()));
        self
    }

    /// Whether the task moves to its next stage.
    pub fn advances_stage(&self) -> bool {
        self.transition.advances_stage()
    }

    /// The status the row gets.
    pub fn to(&self) -> TaskStatus {
        self.transition.target()
    }

    /// Statuses the row may be in for the change to apply.
    pub fn from(&self) -> &'static [TaskStatus] {
        self.transition.allowed_from()
    }

    /// Whether the row becomes terminal (so `finished_at` is set).
    pub fn finishes(&self) -> bool {
        self.to().is_terminal()
    }

    /// The running attempt's async handler succeeded.
    pub fn completed(id: i64, fence: Fence, result_json: String) -> Self {
        TaskSetStatusParams {
            result: Some(result_json),
            ..Self::base(id, Transition::Complete, Some(fence))
        }
    }

    /// The running attempt failed (error or timeout); `plan` says whether a
    /// retry follows.
    pub fn failed(
        id: i64,
        fence: Fence,
        plan: &FailurePlan,
        kind: FailureKind,
        error: String,
    ) -> Self {
        TaskSetStatusParams {
            timed_out: kind == FailureKind::Timeout,
            error: ErrorUpdate::Set(error),
            retry_count: Some(i64::from(plan.retry_count)),
            next_run: match plan.retry_after {
                Some(delay) => NextRun::AfterMs(millis(delay)),
                None => NextRun::Keep,
            },
            ..Self::base(id, plan.transition, Some(fence))
        }
    }

    /// A stopping worker gives back a task it could not finish: due at
    /// once, not counted as a retry.
    pub fn released(id: i64, fence: Fence) -> Self {
        TaskSetStatusParams {
            next_run: NextRun::AfterMs(0),
            release_owner: true,
            ..Self::base(id, Transition::Release, Some(fence))
        }
    }

    /// The maintenance node (worker `by`, of pod `by_pod`) takes back a
    /// task whose worker is gone (`reason`: `worker_dead`,
    /// `worker_superseded` or `worker_stopped`): due at once, at its
    /// current stage, not counted as a retry; fenced by the lost attempt,
    /// so a task its worker finished meanwhile is left alone.
    pub fn recovered(
        id: i64,
        lost: Fence,
        by: &str,
        by_pod: Option<&str>,
        reason: &'static str,
    ) -> Self {
        let from = lost.worker_id.clone();
        TaskSetStatusParams {
            next_run: NextRun::AfterMs(0),
            release_owner: true,
            attempt_error: Some(RECOVERED_ERROR.to_owned()),
            event_worker_id: Some(by.to_owned()),
            ..Self::base(id, Transition::Recover, Some(lost))
        }
        .with_detail("recovery_reason", reason)
        .with_detail("recovered_from_worker_id", from)
        .with_detail("recovered_by_worker_id", by)
        .with_detail("recovered_by_pod_id", by_pod)
    }

    /// An operator pauses the task (any owner).
    pub fn paused(id: i64) -> Self {
        Self::base(id, Transition::Pause, None)
    }

    /// An operator resumes a paused task: due at once with a fresh retry
    /// budget, at its current stage.
    pub fn resumed(id: i64) -> Self {
        TaskSetStatusParams {
            next_run: NextRun::AfterMs(0),
            retry_count: Some(0),
            ..Self::base(id, Transition::Resume, None)
        }
    }

    /// The running attempt returned `count` children (> 0): the task waits
    /// for them, keeping `context` for its next stage.
    pub fn awaiting_children(
        id: i64,
        fence: Fence,
        update: ChildrenUpdate,
        context: Option<Vec<u8>>,
    ) -> Self {
        TaskSetStatusParams {
            children: Some(update),
            context,
            suspend_reason: Some(Some(AWAITING_CHILDREN.to_owned())),
            // The children's creation is recorded after the suspension.
            last_event_type: EventType::TaskSubtasksCreated.as_str(),
            ..Self::base(id, Transition::AwaitChildren, Some(fence))
        }
    }

    /// The running attempt returned no children: on to the next stage at
    /// once, with a fresh retry budget.
    pub fn advanced(id: i64, fence: Fence, context: Option<Vec<u8>>) -> Self {
        TaskSetStatusParams {
            context,
            next_run: NextRun::AfterMs(0),
            retry_count: Some(0),
            ..Self::base(id, Transition::AdvanceStage, Some(fence))
        }
    }

    /// The running attempt suspended the task for a person.
    pub fn suspended(id: i64, fence: Fence, reason: String, context: Option<Vec<u8>>) -> Self {
        TaskSetStatusParams {
            context,
            suspend_reason: Some(Some(reason)),
            ..Self::base(id, Transition::Suspend, Some(fence))
        }
    }

    /// The parent's last child of the stage finished: next stage, due at
    /// once, with a fresh retry budget.
    pub fn children_done(id: i64) -> Self {
        TaskSetStatusParams {
            next_run: NextRun::AfterMs(0),
            retry_count: Some(0),
            ..Self::base(id, Transition::ChildrenDone, None)
        }
    }

    /// A child failed for good and takes its parent with it
    /// ([`Transition::ChildFailed`] or [`Transition::ChildFailedCron`]).
    pub fn failed_by_child(id: i64, transition: Transition, error: String) -> Self {
        TaskSetStatusParams {
            error: ErrorUpdate::Set(error),
            ..Self::base(id, transition, None)
        }
    }

    /// An operator resumes an explicitly suspended task: next stage, due at
    /// once, with a fresh retry budget. Refused for a parent waiting for
    /// its children.
    pub fn resumed_suspended(id: i64) -> Self {
        TaskSetStatusParams {
            next_run: NextRun::AfterMs(0),
            retry_count: Some(0),
            require_no_children: true,
            ..Self::base(id, Transition::ResumeSuspended, None)
        }
    }

    /// The running attempt of a cron task finished its cycle (or skipped a
    /// missed occurrence): back to `pending` at `next_at`, stage 0, a fresh
    /// retry budget, the result kept when given.
    pub fn rearmed(id: i64, fence: Fence, result_json: Option<String>, next_at: i64) -> Self {
        TaskSetStatusParams {
            result: result_json,
            next_run: NextRun::AtMs(next_at),
            retry_count: Some(0),
            reset_stage: true,
            ..Self::base(id, Transition::Rearm, Some(fence))
        }
    }

    /// An operator resumes a paused cron task: a new cycle at its next
    /// occurrence, stage 0, a fresh retry budget.
    pub fn resumed_cron(id: i64, next_at: i64) -> Self {
        TaskSetStatusParams {
            next_run: NextRun::AtMs(next_at),
            retry_count: Some(0),
            reset_stage: true,
            ..Self::base(id, Transition::Resume, None)
        }
    }

    /// An operator cancels an unfinished task, or its ancestor failed.
    pub fn cancelled(id: i64, reason: String) -> Self {
        TaskSetStatusParams {
            error: ErrorUpdate::Set(reason),
            suspend_reason: Some(None),
            ..Self::base(id, Transition::Cancel, None)
        }
    }
}

/// Params of [`StoreTx::task_child_finished`](super::StoreTx::task_child_finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskChildFinishedParams {
    /// The parent.
    pub parent_id: i64,
    /// The stage the child belongs to: only a parent still waiting at that
    /// stage counts it.
    pub parent_stage: i64,
    /// The cycle the child belongs to (a cron parent's stages repeat every
    /// cycle).
    pub parent_cycle: i64,
}

/// Params of [`StoreTx::task_list_unfinished_children`](super::StoreTx::task_list_unfinished_children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCancelChildrenParams {
    /// Whose unfinished children are cancelled.
    pub parent_id: i64,
    /// The error they get.
    pub error: String,
    /// Statuses a child may be cancelled from ([`Transition::Cancel`]).
    pub from: Vec<TaskStatus>,
}

impl TaskCancelChildrenParams {
    /// Cancel the unfinished children of `parent_id` with `error`.
    pub fn new(parent_id: i64, error: String) -> Self {
        TaskCancelChildrenParams {
            parent_id,
            error,
            from: Transition::Cancel.allowed_from().to_vec(),
        }
    }
}

/// Params of [`Store::task_heartbeat`](super::Store::task_heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskHeartbeatParams {
    /// The worker whose running tasks are renewed.
    pub worker_id: String,
    /// The tasks it is executing; only these are renewed, so a row the
    /// worker no longer executes (its outcome could not be written) lapses
    /// and is retried instead of being kept alive forever.
    pub ids: Vec<i64>,
}

/// Params of [`Store::task_list_expired`](super::Store::task_list_expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskListExpiredParams {
    /// A lease older than this has expired, ms.
    pub heartbeat_timeout_ms: i64,
    /// Most rows to return.
    pub limit: i64,
}

impl TaskListExpiredParams {
    /// Expired tasks under the given heartbeat timeout.
    pub fn new(heartbeat_timeout: Duration, limit: i64) -> Self {
        TaskListExpiredParams {
            heartbeat_timeout_ms: millis(heartbeat_timeout),
            limit,
        }
    }
}

/// Params of [`Store::task_list`](super::Store::task_list) and
/// [`Store::task_delete_many`](super::Store::task_delete_many).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskListParams {
    /// Tag, status and name filters.
    pub filter: TaskFilter,
    /// Most rows (none: all).
    pub limit: Option<i64>,
}

/// Params of [`Store::task_list_children`](super::Store::task_list_children).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskListChildrenParams {
    /// The parent.
    pub parent_id: i64,
    /// The stage whose children are listed.
    pub parent_stage: i64,
    /// The cycle of that stage.
    pub parent_cycle: i64,
}

/// Params of [`Store::task_cron_upsert`](super::Store::task_cron_upsert).
#[derive(Debug, Clone, PartialEq)]
pub struct CronUpsertParams {
    /// The row (kind cron, `cron_expr` set, `next_run` the first
    /// occurrence as an absolute time).
    pub task: TaskInsertParams,
    /// IANA time zone of the schedule.
    pub cron_tz: String,
    /// Misfire policy name.
    pub cron_misfire: String,
    /// Caller-chosen key: a second upsert with the same key updates that
    /// schedule instead of creating another.
    pub unique_key: Option<String>,
}

/// Params of [`Store::task_cron_update`](super::Store::task_cron_update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronUpdateParams {
    /// The cron task.
    pub id: i64,
    /// New expression.
    pub cron_expr: Option<String>,
    /// New time zone.
    pub cron_tz: Option<String>,
    /// New misfire policy name.
    pub cron_misfire: Option<String>,
    /// New payload (JSON text; `Some(None)` clears it).
    pub payload: Option<Option<String>>,
    /// The next occurrence under the new schedule, applied only to a row
    /// whose status is in `rearm_from` (ms).
    pub next_run_at: Option<i64>,
    /// Statuses whose `next_run_at` follows the new schedule at once.
    pub rearm_from: Vec<TaskStatus>,
}

/// Params of [`Store::task_stats`](super::Store::task_stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStatsParams {
    /// Only this tag.
    pub tag: Option<String>,
}

/// Values as a JSON array, the list parameter of the SQLite and MySQL SQL
/// files (`json_each` / `JSON_TABLE`).
pub(crate) fn json_list<T: serde::Serialize>(values: &[T]) -> String {
    // Serialising strings and integers cannot fail.
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

/// Statuses as a JSON array of their names.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) fn status_list(statuses: &[TaskStatus]) -> String {
    json_list(&statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>())
}

/// Params of [`StoreTx::task_touch`](super::StoreTx::task_touch): a
/// handler's progress report or checkpoint, fenced by its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTouchParams {
    /// The task.
    pub id: i64,
    /// The attempt that reports: nothing changes unless it still owns the
    /// task.
    pub fence: Fence,
    /// Whether the lease is renewed (`last_active_at` = now).
    pub heartbeat: bool,
    /// New `current_stage_name` when `Some`.
    pub stage_name: Option<String>,
    /// New `progress_text` when `Some`.
    pub progress_text: Option<String>,
    /// New `progress_percent` when `Some`.
    pub progress_percent: Option<f64>,
    /// The event the report records (`last_event_type`).
    pub event_type: &'static str,
}

/// The rows a batch of status changes returned, put back in the order of
/// `changes` (`None` where a change did not apply). The ids must be
/// distinct.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn applied_in_order(
    changes: &[TaskSetStatusParams],
    rows: Vec<super::row::TaskRef>,
) -> crate::error::Result<Vec<Option<super::row::TaskRef>>> {
    let mut by_id = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.id;
        if by_id.insert(id, row).is_some() {
            return Err(crate::error::Error::Corrupt {
                column: "id",
                reason: format!("a batch of status changes returned task {id} twice"),
            });
        }
    }
    Ok(changes.iter().map(|c| by_id.remove(&c.id)).collect())
}

#[cfg(test)]
mod tests {
    use super::{NextRun, ParentLink, TaskBatchParams, TaskInsertParams};
    use crate::error::Error;
    use crate::store::audit::NewEvent;
    use crate::TaskKind;

    fn task() -> TaskInsertParams {
        TaskInsertParams {
            name: "batch".to_owned(),
            kind: TaskKind::Async,
            payload: Some("shared".to_owned()),
            priority: 2,
            tag: Some("tag".to_owned()),
            timeout_ms: 1_000,
            max_attempts: 3,
            retry_interval_ms: 0,
            next_run: NextRun::Keep,
            cron_expr: None,
            parent: None,
        }
    }

    fn created() -> NewEvent {
        NewEvent {
            task_id: 0,
            root_id: 0,
            parent_id: None,
            event_type: "task_created",
            from_status: None,
            to_status: Some("pending".to_owned()),
            stage: Some(0),
            worker_id: None,
            attempt: None,
            message: Some("Task batch created".to_owned()),
            metadata: None,
        }
    }

    #[test]
    fn a_batch_is_one_row_per_payload_with_the_shared_columns() {
        let payloads = vec![Some("1".to_owned()), None];
        let batch = TaskBatchParams::new(task(), payloads, created()).expect("top-level");
        assert_eq!((batch.len(), batch.task().payload.as_deref()), (2, None));
        assert_eq!(batch.payloads(), [Some("1".to_owned()), None]);
        assert_eq!(
            (batch.task().priority, batch.task().name.as_str()),
            (2, "batch")
        );
        let events = batch.events(&[7, 9]);
        let ids: Vec<_> = events.iter().map(|e| (e.task_id, e.root_id)).collect();
        assert_eq!(ids, [(7, 7), (9, 9)]);
        assert!(events.iter().all(|e| e.message == created().message));
    }

    #[test]
    fn a_batch_of_child_tasks_is_refused() {
        let child = TaskInsertParams {
            parent: Some(ParentLink {
                root_id: 1,
                parent_id: 1,
                parent_stage: 0,
                parent_cycle: 0,
            }),
            ..task()
        };
        match TaskBatchParams::new(child, vec![None], created()) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "parent"),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}
