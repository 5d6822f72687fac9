//! Task statuses, task kinds and the rules for moving between statuses.
//!
//! Everything here is pure: no I/O, no clock. The engine and the manager ask
//! these functions which transition happens and from which statuses it is
//! allowed; the store only persists the answer (see `docs/state_machine.md`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Where a task is in its life.
///
/// The canonical list is [`TaskStatus::ALL`]; `docs/state_machine.md` draws
/// the transitions between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting to be claimed once `next_run_at` has passed. Entered on
    /// submission, on `resume_task`, when a cron task is re-armed and when a
    /// stopping worker releases a task it could not finish. Left by a claim,
    /// `pause_task` or deletion. Never reaped by retention.
    Pending,
    /// Claimed by a worker that is executing it under one attempt number.
    /// Left when the handler returns (completed, failed, timeout, suspended),
    /// when a timeout is detected, by `pause_task`, or when a stopping worker
    /// releases it. Never reaped by retention.
    Running,
    /// An async task whose handler returned successfully. Terminal; reaped by
    /// retention.
    Completed,
    /// The last attempt returned an error and another attempt is scheduled at
    /// `next_run_at`; claimable again when due. Never reaped by retention.
    Failed,
    /// The last attempt ran out of time (total run time or lost heartbeat)
    /// and another attempt is scheduled at `next_run_at`; claimable again
    /// when due. Never reaped by retention.
    Timeout,
    /// An async task whose attempts are exhausted. Terminal; reaped by
    /// retention.
    PermanentlyFailed,
    /// Stopped by an operator (`pause_task`) or a cron task whose attempts are
    /// exhausted. Only `resume_task` moves it on. Reaped by retention only
    /// when the policy names it.
    Paused,
    /// Waiting for its children or for a person (`resume_task`). Never timed
    /// out and never reaped by retention.
    Suspended,
}

impl TaskStatus {
    /// Every status, in declaration order.
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Timeout,
        TaskStatus::PermanentlyFailed,
        TaskStatus::Paused,
        TaskStatus::Suspended,
    ];

    /// Statuses a worker may claim from (when `next_run_at` is due).
    pub const CLAIMABLE: [TaskStatus; 3] =
        [TaskStatus::Pending, TaskStatus::Failed, TaskStatus::Timeout];

    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Timeout => "timeout",
            TaskStatus::PermanentlyFailed => "permanently_failed",
            TaskStatus::Paused => "paused",
            TaskStatus::Suspended => "suspended",
        }
    }

    /// Whether the task will never run again (`completed`,
    /// `permanently_failed`). The schema enforces that exactly these rows
    /// carry a `finished_at` time.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::PermanentlyFailed)
    }

    /// Whether the task has not reached a terminal status yet.
    pub fn is_unfinished(self) -> bool {
        !self.is_terminal()
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Error::InvalidInput {
                field: "status",
                reason: format!(
                    "unknown status {s:?}; expected one of {}",
                    TaskStatus::ALL.map(TaskStatus::as_str).join(", ")
                ),
            })
    }
}

/// Whether a task runs once or on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Runs once: success is `completed`, exhausted attempts are
    /// `permanently_failed`.
    Async,
    /// Recurs on a cron schedule: success re-arms the same row, exhausted
    /// attempts are `paused`.
    Cron,
}

impl TaskKind {
    /// Every kind.
    pub const ALL: [TaskKind; 2] = [TaskKind::Async, TaskKind::Cron];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Async => "async",
            TaskKind::Cron => "cron",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| Error::InvalidInput {
                field: "kind",
                reason: format!("unknown task kind {s:?}; expected async or cron"),
            })
    }
}

/// Every named transition a task can make. Each has a fixed target status
/// and a fixed set of statuses it may start from ([`Transition::allowed_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// A worker claims a due task.
    Claim,
    /// The handler of an async task returned a value.
    Complete,
    /// The handler failed and another attempt is scheduled.
    FailRetry,
    /// The attempt ran out of time and another attempt is scheduled.
    TimeoutRetry,
    /// The last allowed attempt of an async task failed or timed out.
    Exhaust,
    /// The last allowed attempt of a cron task failed or timed out.
    ExhaustCron,
    /// An operator paused the task.
    Pause,
    /// An operator resumed a paused task.
    Resume,
    /// A stopping worker gave back a task it could not finish (not a retry).
    Release,
    /// The maintenance node took back a task whose worker is gone (dead,
    /// superseded or stopped): `pending` again at its current stage, not
    /// counted as a retry.
    Recover,
    /// The handler returned children: the task waits for them.
    AwaitChildren,
    /// The handler returned an empty set of children: the task goes on to
    /// its next stage at once.
    AdvanceStage,
    /// The handler suspended the task for a person (human in the loop).
    Suspend,
    /// The last child of the stage finished: the parent resumes at its next
    /// stage.
    ChildrenDone,
    /// A child failed and the parent (async) fails with it.
    ChildFailed,
    /// A child failed and the parent (cron) is paused.
    ChildFailedCron,
    /// An operator resumed an explicitly suspended task: next stage.
    ResumeSuspended,
    /// An operator cancelled an unfinished task (or its ancestor failed).
    Cancel,
    /// A cron task finished its cycle: back to `pending` at its next
    /// occurrence, stage 0.
    Rearm,
}

impl Transition {
    /// Every transition.
    pub const ALL: [Transition; 19] = [
        Transition::Claim,
        Transition::Complete,
        Transition::FailRetry,
        Transition::TimeoutRetry,
        Transition::Exhaust,
        Transition::ExhaustCron,
        Transition::Pause,
        Transition::Resume,
        Transition::Release,
        Transition::Recover,
        Transition::AwaitChildren,
        Transition::AdvanceStage,
        Transition::Suspend,
        Transition::ChildrenDone,
        Transition::ChildFailed,
        Transition::ChildFailedCron,
        Transition::ResumeSuspended,
        Transition::Cancel,
        Transition::Rearm,
    ];

    /// The status the task has after the transition.
    pub fn target(self) -> TaskStatus {
        match self {
            Transition::Claim => TaskStatus::Running,
            Transition::Complete => TaskStatus::Completed,
            Transition::FailRetry => TaskStatus::Failed,
            Transition::TimeoutRetry => TaskStatus::Timeout,
            Transition::Exhaust => TaskStatus::PermanentlyFailed,
            Transition::ExhaustCron => TaskStatus::Paused,
            Transition::Pause => TaskStatus::Paused,
            Transition::Resume => TaskStatus::Pending,
            Transition::Release | Transition::Recover => TaskStatus::Pending,
            Transition::AwaitChildren => TaskStatus::Suspended,
            Transition::AdvanceStage => TaskStatus::Pending,
            Transition::Suspend => TaskStatus::Suspended,
            Transition::ChildrenDone => TaskStatus::Pending,
            Transition::ChildFailed => TaskStatus::PermanentlyFailed,
            Transition::ChildFailedCron => TaskStatus::Paused,
            Transition::ResumeSuspended => TaskStatus::Pending,
            Transition::Cancel => TaskStatus::PermanentlyFailed,
            Transition::Rearm => TaskStatus::Pending,
        }
    }

    /// The statuses the transition may start from. Every state-changing
    /// update is guarded by this set.
    pub fn allowed_from(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Transition::Claim => &TaskStatus::CLAIMABLE,
            Transition::Complete
            | Transition::FailRetry
            | Transition::TimeoutRetry
            | Transition::Exhaust
            | Transition::ExhaustCron
            | Transition::Release
            | Transition::Recover
            | Transition::AwaitChildren
            | Transition::AdvanceStage
            | Transition::Suspend
            | Transition::Rearm => &[Running],
            Transition::Pause => &[Pending, Running, Failed, Timeout],
            Transition::Resume => &[Paused],
            Transition::ChildrenDone
            | Transition::ChildFailed
            | Transition::ChildFailedCron
            | Transition::ResumeSuspended => &[Suspended],
            Transition::Cancel => &[Pending, Running, Failed, Timeout, Paused, Suspended],
        }
    }

    /// Whether the task moves on to its next stage (`stage + 1`).
    pub fn advances_stage(self) -> bool {
        matches!(
            self,
            Transition::AdvanceStage | Transition::ChildrenDone | Transition::ResumeSuspended
        )
    }

    /// Whether the transition concerns the running attempt, so that its
    /// update must be fenced by worker id and attempt number.
    pub fn is_fenced(self) -> bool {
        self.allowed_from() == [TaskStatus::Running]
    }
}

/// What a parent does when one of its children fails for good
/// (`permanently_failed`, cancelled included). Chosen with the children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildFailure {
    /// The parent fails at once (an async parent becomes
    /// `permanently_failed`, a cron parent `paused`) and its other
    /// unfinished descendants are cancelled. The default.
    #[default]
    FailParent,
    /// The parent waits for all its children and resumes with every
    /// child's outcome, errors included, to handle failures itself.
    Resume,
}

impl ChildFailure {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildFailure::FailParent => "fail_parent",
            ChildFailure::Resume => "resume",
        }
    }
}

impl FromStr for ChildFailure {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail_parent" => Ok(ChildFailure::FailParent),
            "resume" => Ok(ChildFailure::Resume),
            _ => Err(Error::InvalidInput {
                field: "on_child_failure",
                reason: format!("unknown policy {s:?}; expected fail_parent or resume"),
            }),
        }
    }
}

/// What happens to a waiting parent when one of its children finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentPlan {
    /// Other children of the stage are still unfinished.
    Wait,
    /// Every child of the stage finished: resume at the next stage.
    Resume,
    /// Fail the parent with this transition and cancel its other
    /// unfinished descendants.
    Fail(Transition),
}

/// Decides what a finished child means for its parent. `child` is the
/// child's new (terminal) status; `remaining` the parent's unfinished
/// children of the stage after this one is counted.
pub fn plan_child_finished(
    child: TaskStatus,
    policy: ChildFailure,
    remaining: i64,
    parent_kind: TaskKind,
) -> ParentPlan {
    if child == TaskStatus::PermanentlyFailed && policy == ChildFailure::FailParent {
        return ParentPlan::Fail(match parent_kind {
            TaskKind::Async => Transition::ChildFailed,
            TaskKind::Cron => Transition::ChildFailedCron,
        });
    }
    if remaining <= 0 {
        ParentPlan::Resume
    } else {
        ParentPlan::Wait
    }
}

/// How the attempt that just ended went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The handler returned an error or panicked.
    Error,
    /// The attempt exceeded its total run time or lost its heartbeat.
    Timeout,
}

/// What happens to a task after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePlan {
    /// The transition to apply.
    pub transition: Transition,
    /// The new `retry_count` (incremented when a retry is scheduled).
    pub retry_count: u32,
    /// Delay from now until the retry may be claimed; `None` when no retry.
    pub retry_after: Option<Duration>,
}

/// Decides what follows a failed attempt: `max_attempts` counts total runs,
/// so a retry is scheduled while `retry_count + 1 < max_attempts`, at
/// `retry_interval` after the failure (applied once, at failure time).
/// Exhausted async tasks become `permanently_failed`, cron tasks `paused`.
pub fn plan_failure(
    kind: TaskKind,
    failure: FailureKind,
    retry_count: u32,
    max_attempts: u32,
    retry_interval: Duration,
) -> FailurePlan {
    if retry_count.saturating_add(1) < max_attempts {
        FailurePlan {
            transition: match failure {
                FailureKind::Error => Transition::FailRetry,
                FailureKind::Timeout => Transition::TimeoutRetry,
            },
            retry_count: retry_count + 1,
            retry_after: Some(retry_interval),
        }
    } else {
        FailurePlan {
            transition: match kind {
                TaskKind::Async => Transition::Exhaust,
                TaskKind::Cron => Transition::ExhaustCron,
            },
            retry_count,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().ok(), Some(status));
        }
        for kind in TaskKind::ALL {
            assert_eq!(kind.as_str().parse::<TaskKind>().ok(), Some(kind));
        }
    }

    #[test]
    fn unknown_status_is_a_typed_error_naming_the_field() {
        match "done".parse::<TaskStatus>() {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "status");
                assert!(reason.contains("\"done\""), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn only_completed_and_permanently_failed_are_terminal() {
        let terminal: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [TaskStatus::Completed, TaskStatus::PermanentlyFailed]
        );
    }

    /// The whole (from, to) table: every transition, every source status.
    #[test]
    fn transition_table() {
        use TaskStatus::*;
        let expected: &[(Transition, TaskStatus, &[TaskStatus])] = &[
            (Transition::Claim, Running, &[Pending, Failed, Timeout]),
            (Transition::Complete, Completed, &[Running]),
            (Transition::FailRetry, Failed, &[Running]),
            (Transition::TimeoutRetry, Timeout, &[Running]),
            (Transition::Exhaust, PermanentlyFailed, &[Running]),
            (Transition::ExhaustCron, Paused, &[Running]),
            (
                Transition::Pause,
                Paused,
                &[Pending, Running, Failed, Timeout],
            ),
            (Transition::Resume, Pending, &[Paused]),
            (Transition::Release, Pending, &[Running]),
            (Transition::Recover, Pending, &[Running]),
            (Transition::AwaitChildren, Suspended, &[Running]),
            (Transition::AdvanceStage, Pending, &[Running]),
            (Transition::Suspend, Suspended, &[Running]),
            (Transition::ChildrenDone, Pending, &[Suspended]),
            (Transition::ChildFailed, PermanentlyFailed, &[Suspended]),
            (Transition::ChildFailedCron, Paused, &[Suspended]),
            (Transition::ResumeSuspended, Pending, &[Suspended]),
            (
                Transition::Cancel,
                PermanentlyFailed,
                &[Pending, Running, Failed, Timeout, Paused, Suspended],
            ),
            (Transition::Rearm, Pending, &[Running]),
        ];
        assert_eq!(expected.len(), Transition::ALL.len());
        for (transition, target, from) in expected {
            assert_eq!(transition.target(), *target, "{transition:?}");
            for status in TaskStatus::ALL {
                assert_eq!(
                    transition.allowed_from().contains(&status),
                    from.contains(&status),
                    "{transition:?} from {status}"
                );
            }
        }
    }

    #[test]
    fn terminal_statuses_are_never_left() {
        for transition in Transition::ALL {
            for from in transition.allowed_from() {
                assert!(!from.is_terminal(), "{transition:?} leaves {from}");
            }
        }
    }

    #[test]
    fn only_transitions_of_a_running_attempt_are_fenced() {
        for transition in Transition::ALL {
            assert_eq!(
                transition.is_fenced(),
                transition.allowed_from() == [TaskStatus::Running],
                "{transition:?}"
            );
        }
        assert!(Transition::Complete.is_fenced());
        assert!(Transition::AwaitChildren.is_fenced());
        assert!(Transition::Suspend.is_fenced());
        assert!(!Transition::Pause.is_fenced());
        assert!(!Transition::Cancel.is_fenced());
        assert!(!Transition::ChildrenDone.is_fenced());
    }

    #[test]
    fn cancel_accepts_every_unfinished_status() {
        let unfinished: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_unfinished())
            .collect();
        assert_eq!(Transition::Cancel.allowed_from(), unfinished.as_slice());
    }

    #[test]
    fn only_resumptions_advance_the_stage() {
        let advancing: Vec<_> = Transition::ALL
            .into_iter()
            .filter(|t| t.advances_stage())
            .collect();
        assert_eq!(
            advancing,
            [
                Transition::AdvanceStage,
                Transition::ChildrenDone,
                Transition::ResumeSuspended
            ]
        );
        assert!(
            !Transition::Resume.advances_stage(),
            "resuming a paused task re-runs its stage"
        );
    }

    #[test]
    fn a_failed_child_fails_the_parent_at_once_by_default() {
        let plan = plan_child_finished(
            TaskStatus::PermanentlyFailed,
            ChildFailure::FailParent,
            3,
            TaskKind::Async,
        );
        assert_eq!(plan, ParentPlan::Fail(Transition::ChildFailed));
        let cron = plan_child_finished(
            TaskStatus::PermanentlyFailed,
            ChildFailure::FailParent,
            0,
            TaskKind::Cron,
        );
        assert_eq!(cron, ParentPlan::Fail(Transition::ChildFailedCron));
        assert_eq!(Transition::ChildFailedCron.target(), TaskStatus::Paused);
    }

    #[test]
    fn the_last_child_resumes_the_parent_whatever_the_outcomes_under_resume() {
        for child in [TaskStatus::Completed, TaskStatus::PermanentlyFailed] {
            assert_eq!(
                plan_child_finished(child, ChildFailure::Resume, 1, TaskKind::Async),
                ParentPlan::Wait
            );
            assert_eq!(
                plan_child_finished(child, ChildFailure::Resume, 0, TaskKind::Async),
                ParentPlan::Resume
            );
        }
        assert_eq!(
            plan_child_finished(
                TaskStatus::Completed,
                ChildFailure::FailParent,
                0,
                TaskKind::Async
            ),
            ParentPlan::Resume
        );
    }

    #[test]
    fn child_failure_policies_round_trip() {
        for policy in [ChildFailure::FailParent, ChildFailure::Resume] {
            assert_eq!(policy.as_str().parse::<ChildFailure>().ok(), Some(policy));
        }
        assert!("sometimes".parse::<ChildFailure>().is_err());
    }

    #[test]
    fn max_attempts_counts_total_runs() {
        let interval = Duration::from_secs(7);
        // Three attempts: runs 1 and 2 fail with a retry, run 3 exhausts.
        let first = plan_failure(TaskKind::Async, FailureKind::Error, 0, 3, interval);
        assert_eq!(first.transition, Transition::FailRetry);
        assert_eq!(first.retry_count, 1);
        assert_eq!(first.retry_after, Some(interval));
        let second = plan_failure(TaskKind::Async, FailureKind::Error, 1, 3, interval);
        assert_eq!(second.transition, Transition::FailRetry);
        assert_eq!(second.retry_count, 2);
        let third = plan_failure(TaskKind::Async, FailureKind::Error, 2, 3, interval);
        assert_eq!(third.transition, Transition::Exhaust);
        assert_eq!(third.retry_count, 2);
        assert_eq!(third.retry_after, None);
    }

    #[test]
    fn one_attempt_never_retries_and_cron_pauses() {
        let once = plan_failure(TaskKind::Async, FailureKind::Timeout, 0, 1, Duration::ZERO);
        assert_eq!(once.transition, Transition::Exhaust);
        let cron = plan_failure(TaskKind::Cron, FailureKind::Error, 0, 1, Duration::ZERO);
        assert_eq!(cron.transition, Transition::ExhaustCron);
        assert_eq!(cron.transition.target(), TaskStatus::Paused);
    }

    #[test]
    fn a_timeout_with_attempts_left_is_a_timeout_retry() {
        let plan = plan_failure(TaskKind::Async, FailureKind::Timeout, 0, 2, Duration::ZERO);
        assert_eq!(plan.transition, Transition::TimeoutRetry);
        assert_eq!(plan.transition.target(), TaskStatus::Timeout);
    }
}
