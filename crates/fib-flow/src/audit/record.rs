//! What the audit records for each thing the engine does: pure functions
//! from a change (and the row it applied to) to the event rows and attempt
//! rows written in the same transaction. Unit-tested without a database.

use serde_json::{json, Map, Value};

use super::{AttemptOutcome, EventType};
use crate::state::{TaskStatus, Transition};
pub(crate) use crate::store::AuditRows;
use crate::store::{
    AttemptClose, Fence, NewAttempt, NewEvent, TaskInsertParams, TaskRef, TaskRow,
    TaskSetStatusParams, TouchedTask,
};

fn text(value: Value) -> Option<String> {
    match value {
        Value::Object(map) if map.is_empty() => None,
        other => Some(other.to_string()),
    }
}

/// `task_created` for a task just inserted as `id`.
pub(crate) fn created(id: i64, task: &TaskInsertParams) -> NewEvent {
    let parent = task.parent;
    NewEvent {
        task_id: id,
        root_id: parent.map_or(id, |p| p.root_id),
        parent_id: parent.map(|p| p.parent_id),
        event_type: EventType::TaskCreated.as_str(),
        from_status: None,
        to_status: Some(TaskStatus::Pending.as_str().to_owned()),
        stage: Some(0),
        worker_id: None,
        attempt: None,
        message: Some(format!("Task {} created", task.name)),
        metadata: text(json!({
            "name": task.name,
            "kind": task.kind.as_str(),
            "tag": task.tag,
        })),
    }
}

/// The attempt a claim opened on `row` (as the claim returned it), and its
/// events: `task_claimed`, `task_started`, and `task_retry_started` when
/// earlier attempts failed.
pub(crate) fn claimed(row: &TaskRow, rows: &mut AuditRows) {
    let worker = row.worker_id.clone().unwrap_or_default();
    rows.opened.push(NewAttempt {
        task_id: row.id,
        attempt: row.attempt,
        worker_id: worker.clone(),
        started_at: row.started_at.unwrap_or(row.last_active_at.unwrap_or(0)),
    });
    let event = |event_type: EventType, attempt: Option<i64>, metadata: Value| NewEvent {
        task_id: row.id,
        root_id: row.root_id.unwrap_or(row.id),
        parent_id: row.parent_id,
        event_type: event_type.as_str(),
        from_status: row.previous_status.clone(),
        to_status: Some(row.status.clone()),
        stage: Some(row.stage),
        worker_id: Some(worker.clone()),
        attempt,
        message: Some(match event_type {
            EventType::TaskClaimed => format!("Task {} claimed by {worker}", row.name),
            EventType::TaskRetryStarted => format!(
                "Task {} attempt {} started (retry {})",
                row.name, row.attempt, row.retry_count
            ),
            _ => format!("Task {} attempt {} started", row.name, row.attempt),
        }),
        metadata: text(metadata),
    };
    rows.events.push(event(
        EventType::TaskClaimed,
        None,
        json!({ "name": row.name }),
    ));
    let started = json!({ "name": row.name, "retry_count": row.retry_count });
    rows.events.push(event(
        EventType::TaskStarted,
        Some(row.attempt),
        started.clone(),
    ));
    if row.retry_count > 0 {
        rows.events.push(event(
            EventType::TaskRetryStarted,
            Some(row.attempt),
            started,
        ));
    }
}

/// The event type recording `change`.
pub(crate) fn status_event_type(transition: Transition) -> EventType {
    match transition {
        Transition::Complete => EventType::TaskCompleted,
        Transition::FailRetry => EventType::TaskFailed,
        Transition::TimeoutRetry => EventType::TaskTimedOut,
        Transition::Exhaust | Transition::ChildFailed | Transition::Cancel => {
            EventType::TaskPermanentlyFailed
        }
        Transition::ExhaustCron | Transition::ChildFailedCron | Transition::Pause => {
            EventType::TaskPaused
        }
        Transition::Suspend => EventType::TaskSuspended,
        Transition::Recover => EventType::TaskRecovered,
        Transition::ResumeSuspended => EventType::TaskResumed,
        Transition::Claim
        | Transition::Resume
        | Transition::Release
        | Transition::AwaitChildren
        | Transition::AdvanceStage
        | Transition::ChildrenDone
        | Transition::Rearm => EventType::TaskStatusChanged,
    }
}

/// How the running attempt ends when `change` takes its task out of
/// `running`.
pub(crate) fn attempt_outcome(change: &TaskSetStatusParams) -> AttemptOutcome {
    match change.transition {
        Transition::Complete | Transition::Rearm => AttemptOutcome::Completed,
        Transition::FailRetry | Transition::Exhaust | Transition::ExhaustCron => {
            if change.timed_out {
                AttemptOutcome::Timeout
            } else {
                AttemptOutcome::Failed
            }
        }
        Transition::TimeoutRetry => AttemptOutcome::Timeout,
        Transition::AwaitChildren | Transition::Suspend => AttemptOutcome::Suspended,
        Transition::Pause => AttemptOutcome::Paused,
        Transition::Release | Transition::Recover => AttemptOutcome::Interrupted,
        Transition::Cancel => AttemptOutcome::Cancelled,
        Transition::AdvanceStage
        | Transition::Claim
        | Transition::Resume
        | Transition::ChildrenDone
        | Transition::ChildFailed
        | Transition::ChildFailedCron
        | Transition::ResumeSuspended => AttemptOutcome::Pending,
    }
}

/// The event recording `change` on `task` (the row as it applied), and
/// the close of its running attempt when it left `running`.
pub(crate) fn status_changed(change: &TaskSetStatusParams, task: &TaskRef, rows: &mut AuditRows) {
    let from = task.previous_status.as_deref();
    let error = match &change.error {
        crate::store::ErrorUpdate::Set(text) => Some(text.clone()),
        crate::store::ErrorUpdate::Keep => None,
    };
    if from == Some(TaskStatus::Running.as_str()) {
        rows.closed.push(AttemptClose {
            task_id: task.id,
            attempt: task.attempt,
            outcome: attempt_outcome(change).as_str(),
            error: error.clone().or_else(|| change.attempt_error.clone()),
            timed_out: change.timed_out || matches!(change.transition, Transition::TimeoutRetry),
        });
    }
    let mut metadata = Map::new();
    if let Some(error) = &error {
        metadata.insert("error".into(), json!(error));
    }
    if let Some(retry_count) = change.retry_count {
        metadata.insert("retry_count".into(), json!(retry_count));
    }
    if !matches!(change.next_run, crate::store::NextRun::Keep) {
        metadata.insert("next_run_at".into(), json!(task.next_run_at));
    }
    if let Some(Some(reason)) = &change.suspend_reason {
        metadata.insert("suspend_reason".into(), json!(reason));
    }
    if let Some(children) = change.children {
        metadata.insert("child_count".into(), json!(children.count));
    }
    if matches!(
        change.transition,
        Transition::Exhaust | Transition::ExhaustCron
    ) {
        metadata.insert("retry_exhausted".into(), json!(true));
    }
    for (key, value) in &change.event_details {
        metadata.insert((*key).to_owned(), value.clone());
    }
    let to = task.status.as_str();
    rows.events.push(NewEvent {
        task_id: task.id,
        root_id: task.root_id.unwrap_or(task.id),
        parent_id: task.parent_id,
        event_type: status_event_type(change.transition).as_str(),
        from_status: task.previous_status.clone(),
        to_status: Some(to.to_owned()),
        stage: Some(task.stage),
        worker_id: change
            .event_worker_id
            .clone()
            .or_else(|| task.worker_id.clone()),
        attempt: None,
        message: Some(format!(
            "Task {} status changed from {} to {to}",
            task.name,
            from.unwrap_or("unknown")
        )),
        metadata: text(Value::Object(metadata)),
    });
}

/// `task_subtasks_created` for a parent that created children `ids`
/// (named `names`) at its current stage.
pub(crate) fn subtasks_created(
    parent: &TaskRef,
    ids: &[i64],
    names: &[&str],
    rows: &mut AuditRows,
) {
    rows.events.push(NewEvent {
        task_id: parent.id,
        root_id: parent.root_id.unwrap_or(parent.id),
        parent_id: parent.parent_id,
        event_type: EventType::TaskSubtasksCreated.as_str(),
        from_status: parent.previous_status.clone(),
        to_status: Some(parent.status.clone()),
        stage: Some(parent.stage),
        worker_id: parent.worker_id.clone(),
        attempt: Some(parent.attempt),
        message: Some(format!(
            "Task {} created {} child task(s)",
            parent.name,
            ids.len()
        )),
        metadata: text(json!({
            "child_task_ids": ids,
            "child_task_names": names,
            "child_count": ids.len(),
        })),
    });
}

/// A handler's checkpoint or progress report, as one event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HandlerNote {
    /// `task_checkpoint` or `task_progress`.
    pub(crate) event_type: EventType,
    /// The line shown.
    pub(crate) message: String,
    /// Details (a JSON object).
    pub(crate) metadata: Map<String, Value>,
    /// The stage it belongs to (the task's current one when `None`).
    pub(crate) stage: Option<i64>,
}

/// The event of a checkpoint or progress report of `fence`'s attempt on
/// `task`.
pub(crate) fn handler_note(task: &TouchedTask, fence: &Fence, note: HandlerNote) -> NewEvent {
    NewEvent {
        task_id: task.id,
        root_id: task.root_id.unwrap_or(task.id),
        parent_id: task.parent_id,
        event_type: note.event_type.as_str(),
        from_status: Some(task.status.clone()),
        to_status: Some(task.status.clone()),
        stage: Some(note.stage.unwrap_or(task.stage)),
        worker_id: Some(fence.worker_id.clone()),
        attempt: Some(fence.attempt),
        message: Some(note.message),
        metadata: text(Value::Object(note.metadata)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{FailureKind, FailurePlan, TaskKind};
    use crate::store::{ChildrenUpdate, ParentLink};

    fn fence() -> Fence {
        Fence {
            worker_id: "w1".into(),
            attempt: 2,
        }
    }

    fn task_ref(from: &str, to: &str) -> TaskRef {
        TaskRef {
            id: 5,
            name: "job".into(),
            kind: "async".into(),
            status: to.into(),
            previous_status: Some(from.into()),
            stage: 1,
            worker_id: Some("w1".into()),
            attempt: 2,
            root_id: Some(1),
            retry_count: 1,
            next_run_at: 1_000,
            parent_id: Some(3),
            parent_stage: Some(0),
            parent_cycle: Some(0),
            error: None,
        }
    }

    fn metadata(event: &NewEvent) -> Value {
        serde_json::from_str(event.metadata.as_deref().unwrap_or("null")).unwrap()
    }

    #[test]
    fn a_completion_closes_the_attempt_completed() {
        let change = TaskSetStatusParams::completed(5, fence(), "1".into());
        let mut rows = AuditRows::default();
        status_changed(&change, &task_ref("running", "completed"), &mut rows);
        assert_eq!(rows.closed.len(), 1);
        assert_eq!(rows.closed[0].outcome, "completed");
        assert_eq!((rows.closed[0].task_id, rows.closed[0].attempt), (5, 2));
        assert!(!rows.closed[0].timed_out);
        let event = &rows.events[0];
        assert_eq!(event.event_type, "task_completed");
        assert_eq!(event.from_status.as_deref(), Some("running"));
        assert_eq!(event.to_status.as_deref(), Some("completed"));
        assert_eq!((event.root_id, event.parent_id), (1, Some(3)));
        assert_eq!(event.metadata, None);
    }

    #[test]
    fn a_recovery_interrupts_the_attempt_and_names_both_workers() {
        let change = TaskSetStatusParams::recovered(5, fence(), "w9", Some("pod-9"), "worker_dead");
        assert_eq!(change.transition, Transition::Recover);
        assert!(change.release_owner);
        assert_eq!(change.retry_count, None, "not a retry");
        assert_eq!(change.fence, Some(fence()), "fenced by the lost attempt");
        let mut task = task_ref("running", "pending");
        task.worker_id = None; // released by the change
        let mut rows = AuditRows::default();
        status_changed(&change, &task, &mut rows);
        assert_eq!(rows.closed.len(), 1);
        assert_eq!(rows.closed[0].outcome, "interrupted");
        assert_eq!(
            rows.closed[0].error.as_deref(),
            Some(crate::store::RECOVERED_ERROR)
        );
        let event = &rows.events[0];
        assert_eq!(event.event_type, "task_recovered");
        assert_eq!(event.worker_id.as_deref(), Some("w9"));
        let metadata = metadata(event);
        assert_eq!(metadata["recovery_reason"], "worker_dead");
        assert_eq!(metadata["recovered_from_worker_id"], "w1");
        assert_eq!(metadata["recovered_by_worker_id"], "w9");
        assert_eq!(metadata["recovered_by_pod_id"], "pod-9");
        assert_eq!(change.last_event_type, "task_recovered");
    }

    #[test]
    fn a_timed_out_last_attempt_is_recorded_as_a_timeout() {
        let plan = FailurePlan {
            transition: Transition::Exhaust,
            retry_count: 2,
            retry_after: None,
        };
        let change =
            TaskSetStatusParams::failed(5, fence(), &plan, FailureKind::Timeout, "slow".into())
                .with_detail("timeout_type", "total");
        let mut rows = AuditRows::default();
        status_changed(
            &change,
            &task_ref("running", "permanently_failed"),
            &mut rows,
        );
        assert_eq!(rows.closed[0].outcome, "timeout");
        assert!(rows.closed[0].timed_out);
        assert_eq!(rows.closed[0].error.as_deref(), Some("slow"));
        assert_eq!(rows.events[0].event_type, "task_permanently_failed");
        assert_eq!(
            metadata(&rows.events[0]),
            json!({"error": "slow", "retry_count": 2, "retry_exhausted": true, "timeout_type": "total"})
        );
    }

    #[test]
    fn a_change_of_a_task_not_running_closes_no_attempt() {
        let change = TaskSetStatusParams::resumed(5);
        let mut rows = AuditRows::default();
        status_changed(&change, &task_ref("paused", "pending"), &mut rows);
        assert!(rows.closed.is_empty());
        assert_eq!(rows.events[0].event_type, "task_status_changed");
        assert_eq!(
            metadata(&rows.events[0]),
            json!({"retry_count": 0, "next_run_at": 1_000})
        );
    }

    #[test]
    fn every_transition_has_an_event_and_an_outcome() {
        for transition in Transition::ALL {
            let change = TaskSetStatusParams {
                transition,
                ..TaskSetStatusParams::paused(1)
            };
            // Neither panics, and leaving `running` never reads as pending
            // for a handler's own ending.
            let _ = status_event_type(change.transition);
            let outcome = attempt_outcome(&change);
            if matches!(
                transition,
                Transition::Complete | Transition::FailRetry | Transition::Suspend
            ) {
                assert_ne!(outcome, AttemptOutcome::Pending);
            }
        }
    }

    #[test]
    fn awaiting_children_records_the_suspension_and_the_children() {
        let update = ChildrenUpdate {
            count: 2,
            on_failure: Default::default(),
        };
        let change = TaskSetStatusParams::awaiting_children(5, fence(), update, None);
        let parent = task_ref("running", "suspended");
        let mut rows = AuditRows::default();
        status_changed(&change, &parent, &mut rows);
        subtasks_created(&parent, &[8, 9], &["a", "b"], &mut rows);
        assert_eq!(rows.closed[0].outcome, "suspended");
        assert_eq!(
            metadata(&rows.events[0]),
            json!({"suspend_reason": "awaiting_children", "child_count": 2})
        );
        assert_eq!(rows.events[1].event_type, "task_subtasks_created");
        assert_eq!(
            metadata(&rows.events[1]),
            json!({"child_task_ids": [8, 9], "child_task_names": ["a", "b"], "child_count": 2})
        );
    }

    fn claimed_row(retry_count: i64) -> TaskRow {
        TaskRow {
            id: 4,
            name: "job".into(),
            kind: "async".into(),
            status: "running".into(),
            priority: 0,
            payload: None,
            tag: None,
            result: None,
            error: None,
            stage: 1,
            cycle: 0,
            timeout_ms: 1_000,
            retry_count,
            max_attempts: 3,
            retry_interval_ms: 0,
            cron_expr: None,
            root_id: None,
            parent_id: None,
            parent_stage: None,
            total_children: 0,
            pending_children: 0,
            worker_id: Some("w1".into()),
            attempt: 3,
            suspend_reason: None,
            previous_status: Some("failed".into()),
            current_stage_name: None,
            progress_text: None,
            progress_percent: None,
            last_event_at: None,
            last_event_type: None,
            created_at: 1,
            next_run_at: 1,
            started_at: Some(77),
            last_active_at: Some(77),
            finished_at: None,
        }
    }

    #[test]
    fn a_claim_opens_an_attempt_and_records_three_events_on_a_retry() {
        let mut rows = AuditRows::default();
        claimed(&claimed_row(1), &mut rows);
        assert_eq!(
            rows.opened,
            [NewAttempt {
                task_id: 4,
                attempt: 3,
                worker_id: "w1".into(),
                started_at: 77
            }]
        );
        let types: Vec<_> = rows.events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            ["task_claimed", "task_started", "task_retry_started"]
        );
        assert_eq!(rows.events[0].attempt, None);
        assert_eq!(rows.events[1].attempt, Some(3));
        assert_eq!(rows.events[1].from_status.as_deref(), Some("failed"));
        assert_eq!(rows.events[1].root_id, 4);
        assert_eq!(rows.events[1].stage, Some(1));
    }

    #[test]
    fn a_first_claim_records_two_events() {
        let mut rows = AuditRows::default();
        claimed(&claimed_row(0), &mut rows);
        assert_eq!(rows.events.len(), 2);
    }

    #[test]
    fn a_created_child_carries_its_workflow() {
        let insert = TaskInsertParams {
            name: "child".into(),
            kind: TaskKind::Async,
            payload: None,
            priority: 0,
            tag: Some("t".into()),
            timeout_ms: 1,
            max_attempts: 1,
            retry_interval_ms: 0,
            next_run: crate::store::NextRun::Keep,
            cron_expr: None,
            parent: Some(ParentLink {
                root_id: 1,
                parent_id: 3,
                parent_stage: 0,
                parent_cycle: 0,
            }),
        };
        let event = created(10, &insert);
        assert_eq!(
            (event.task_id, event.root_id, event.parent_id),
            (10, 1, Some(3))
        );
        assert_eq!(
            metadata(&event),
            json!({"name": "child", "kind": "async", "tag": "t"})
        );
        let top = created(
            11,
            &TaskInsertParams {
                parent: None,
                ..insert
            },
        );
        assert_eq!((top.root_id, top.parent_id), (11, None));
    }
}
