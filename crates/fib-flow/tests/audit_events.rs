//! The execution audit as the engine writes it: the exact event sequence
//! (types, statuses, stage, attempt, worker, metadata) and the attempt rows
//! of each thing a task goes through — success, retry, timeout, a
//! two-stage workflow, a suspension resumed by a person, cancellation,
//! pause, release by a stopping manager — and the task row's snapshot of
//! its newest event.

#[macro_use]
mod common;

use fib_flow::{
    AttemptOutcome, AttemptQuery, BoxError, Child, EventType, Step, Task, TaskEvent, TaskOptions,
    TaskStatus,
};
use serde_json::{json, Value};

use common::{
    assert_history_consistent, attempts_of, audit_manager_with, events_of, ms, outcomes_of,
    task_row, types_of, wait_for_running_count, wait_for_status, Gate, Recorder,
};

use EventType as E;
use TaskStatus as S;

/// Type, from, to, stage and attempt of an event.
type Shape = (
    EventType,
    Option<TaskStatus>,
    Option<TaskStatus>,
    Option<i64>,
    Option<i64>,
);

fn shapes(events: &[TaskEvent]) -> Vec<Shape> {
    events
        .iter()
        .map(|e| (e.event_type, e.from_status, e.to_status, e.stage, e.attempt))
        .collect()
}

fn workers(events: &[TaskEvent]) -> Vec<Option<&str>> {
    events.iter().map(|e| e.worker_id.as_deref()).collect()
}

fn messages(events: &[TaskEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.message.as_deref().unwrap_or("<none>"))
        .collect()
}

/// A handler that never returns (its attempt ends only from outside).
async fn hang() -> Result<Step, BoxError> {
    std::future::pending::<()>().await;
    Ok(Step::done("unreachable"))
}

backend_test! {
    async fn a_submit_stores_its_task_created_event_and_the_snapshot_points_at_it(db) {
        // The smallest reproduction: one submit writes one event in its
        // transaction, and the task row's snapshot names that event.
        let manager = audit_manager_with(&db, |b| b).await;
        let id = manager.submit("nobody", &()).await?;
        let row = task_row(&manager, id).await;
        assert_eq!(row.last_event_type.as_deref(), Some("task_created"));
        let page = manager.task_events(id, fib_flow::EventQuery::new()).await?;
        assert_eq!(page.total, 1, "{page:?}");
        assert_eq!(page.items[0].event_type, E::TaskCreated);
        assert_eq!(row.last_event_at, Some(page.items[0].event_time));
        Ok(())
    }
}

backend_test! {
    async fn a_successful_task_records_created_claimed_started_and_completed(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("ok", |task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!({ "id": task.id().get() })))
        })?;
        manager.start().await?;
        let id = manager
            .submit_with("ok", &json!({ "n": 1 }), TaskOptions::new().tag("audit"))
            .await?;
        let row = wait_for_status(&manager, id, S::Completed).await;
        let w = manager.worker_id().to_owned();

        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(1)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(0), None),
            ]
        );
        assert_eq!(
            workers(&events),
            [None, Some(w.as_str()), Some(w.as_str()), Some(w.as_str())]
        );
        for event in &events {
            assert_eq!((event.root_id, event.parent_id), (id, None), "{event:?}");
        }
        assert_eq!(
            messages(&events),
            [
                "Task ok created".to_owned(),
                format!("Task ok claimed by {w}"),
                "Task ok attempt 1 started".to_owned(),
                "Task ok status changed from running to completed".to_owned(),
            ]
        );
        let metadata: Vec<&Value> = events.iter().map(|e| &e.metadata).collect();
        assert_eq!(
            metadata,
            [
                &json!({ "name": "ok", "kind": "async", "tag": "audit" }),
                &json!({ "name": "ok" }),
                &json!({ "name": "ok", "retry_count": 0 }),
                &Value::Null,
            ]
        );
        // The claim writes its two events in one transaction.
        assert_eq!(events[1].event_time, events[2].event_time);

        let attempts = attempts_of(&manager, id).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        let attempt = &attempts[0];
        assert_eq!((attempt.task_id, attempt.attempt), (id, 1));
        assert_eq!(attempt.outcome, Some(AttemptOutcome::Completed));
        assert_eq!(attempt.worker_id.as_deref(), Some(w.as_str()));
        assert_eq!(attempt.error, None);
        assert!(!attempt.timed_out);
        // Opened by the claim, closed by the completion, in their
        // transactions.
        assert_eq!(attempt.started_at, events[1].event_time);
        assert_eq!(attempt.ended_at, Some(events[3].event_time));
        assert!(attempt.duration_ms().is_some_and(|d| d >= 0));
        assert_eq!(row.started_at, Some(attempt.started_at));
        assert_eq!(row.finished_at, Some(events[3].event_time));
        assert_eq!(row.previous_status, Some(S::Running));

        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_retry_then_success_records_the_failure_and_a_retry_start(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("flaky", |task: Task| async move {
            if task.attempt() == 1 {
                return Err::<Step, BoxError>("first run breaks".into());
            }
            Ok(Step::done(json!("fine")))
        })?;
        manager.start().await?;
        let id = manager
            .submit_with("flaky", &(), TaskOptions::new().max_attempts(3))
            .await?;
        wait_for_status(&manager, id, S::Completed).await;
        let w = manager.worker_id().to_owned();

        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(1)),
                (E::TaskFailed, Some(S::Running), Some(S::Failed), Some(0), None),
                (E::TaskClaimed, Some(S::Failed), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Failed), Some(S::Running), Some(0), Some(2)),
                (E::TaskRetryStarted, Some(S::Failed), Some(S::Running), Some(0), Some(2)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(0), None),
            ]
        );
        assert!(workers(&events)[1..].iter().all(|x| *x == Some(w.as_str())));
        let failed = &events[3];
        assert_eq!(failed.metadata["error"], json!("first run breaks"));
        assert_eq!(failed.metadata["retry_count"], json!(1));
        assert!(failed.metadata["next_run_at"].is_i64(), "{failed:?}");
        assert_eq!(
            failed.message.as_deref(),
            Some("Task flaky status changed from running to failed")
        );
        assert_eq!(events[5].metadata, json!({ "name": "flaky", "retry_count": 1 }));
        assert_eq!(events[6].metadata, json!({ "name": "flaky", "retry_count": 1 }));
        assert_eq!(
            events[6].message.as_deref(),
            Some("Task flaky attempt 2 started (retry 1)")
        );

        let attempts = attempts_of(&manager, id).await;
        let summary: Vec<_> = attempts
            .iter()
            .map(|a| (a.attempt, a.outcome, a.error.as_deref(), a.timed_out))
            .collect();
        assert_eq!(
            summary,
            [
                (1, Some(AttemptOutcome::Failed), Some("first run breaks"), false),
                (2, Some(AttemptOutcome::Completed), None, false),
            ]
        );
        assert!(attempts[0].ended_at.is_some_and(|end| end <= attempts[1].started_at));
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

/// Registers `doomed`, failing every run with `failure #<attempt>`, starts
/// the manager and runs one task of 3 attempts 100 ms apart to its end.
async fn run_doomed(manager: &fib_flow::TaskManager) -> anyhow::Result<fib_flow::TaskId> {
    manager.register("doomed", |task: Task| async move {
        Err::<Step, BoxError>(format!("failure #{}", task.attempt()).into())
    })?;
    manager.start().await?;
    let id = manager
        .submit_with(
            "doomed",
            &(),
            TaskOptions::new().max_attempts(3).retry_interval(ms(100)),
        )
        .await?;
    wait_for_status(manager, id, S::PermanentlyFailed).await;
    wait_for_running_count(manager, 0).await;
    Ok(id)
}

backend_test! {
    async fn attempts_are_numbered_per_claim_with_their_outcome_error_and_times(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = run_doomed(&manager).await?;

        let attempts = attempts_of(&manager, id).await;
        let summary: Vec<_> = attempts
            .iter()
            .map(|a| (a.task_id, a.attempt, a.outcome, a.error.clone(), a.timed_out))
            .collect();
        let failed = Some(AttemptOutcome::Failed);
        assert_eq!(
            summary,
            [
                (id, 1, failed, Some("failure #1".to_owned()), false),
                (id, 2, failed, Some("failure #2".to_owned()), false),
                (id, 3, failed, Some("failure #3".to_owned()), false),
            ]
        );
        for attempt in &attempts {
            let ended = attempt.ended_at.expect("every attempt ended");
            assert!(attempt.started_at <= ended, "{attempt:?}");
            assert_eq!(attempt.duration_ms(), Some((ended - attempt.started_at).num_milliseconds()));
            assert_eq!(attempt.worker_id.as_deref(), Some(manager.worker_id()));
        }
        for pair in attempts.windows(2) {
            assert!(pair[0].id < pair[1].id, "{pair:?}");
            // The retry interval separates the claims (an attempt's end is
            // read in a later statement on MySQL: see
            // the_rows_one_transaction_writes_carry_one_time).
            let gap = pair[1].started_at - pair[0].started_at;
            assert!(gap.num_milliseconds() >= 100, "{pair:?}");
            assert!(pair[0].ended_at.is_some_and(|end| end < pair[1].ended_at.expect("ended")));
        }
        let row = task_row(&manager, id).await;
        assert_eq!(row.attempt, 3);
        assert_eq!(row.started_at, Some(attempts[2].started_at));
        assert!(row.finished_at.is_some());
        assert_eq!(row.last_event_type.as_deref(), Some("task_permanently_failed"));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn exhausted_retries_record_a_failure_per_attempt_then_a_permanent_failure(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = run_doomed(&manager).await?;
        let events = events_of(&manager, id).await;
        let status_events: Vec<_> = events
            .iter()
            .filter(|e| !matches!(e.event_type, E::TaskCreated | E::TaskClaimed))
            .map(|e| (e.event_type, e.attempt))
            .collect();
        assert_eq!(
            status_events,
            [
                (E::TaskStarted, Some(1)),
                (E::TaskFailed, None),
                (E::TaskStarted, Some(2)),
                (E::TaskRetryStarted, Some(2)),
                (E::TaskFailed, None),
                (E::TaskStarted, Some(3)),
                (E::TaskRetryStarted, Some(3)),
                (E::TaskPermanentlyFailed, None),
            ]
        );
        let last = events.last().expect("events");
        assert_eq!(
            (last.from_status, last.to_status),
            (Some(S::Running), Some(S::PermanentlyFailed))
        );
        assert_eq!(
            last.metadata,
            json!({ "error": "failure #3", "retry_count": 2, "retry_exhausted": true })
        );
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_handler_timeout_is_a_timed_out_attempt_then_a_permanent_failure(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("slow", |_task: Task| hang())?;
        manager.start().await?;
        let id = manager
            .submit_with(
                "slow",
                &(),
                TaskOptions::new().timeout(ms(150)).max_attempts(2),
            )
            .await?;
        wait_for_status(&manager, id, S::PermanentlyFailed).await;
        wait_for_running_count(&manager, 0).await;

        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(1)),
                (E::TaskTimedOut, Some(S::Running), Some(S::Timeout), Some(0), None),
                (E::TaskClaimed, Some(S::Timeout), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Timeout), Some(S::Running), Some(0), Some(2)),
                (E::TaskRetryStarted, Some(S::Timeout), Some(S::Running), Some(0), Some(2)),
                (
                    E::TaskPermanentlyFailed,
                    Some(S::Running),
                    Some(S::PermanentlyFailed),
                    Some(0),
                    None
                ),
            ]
        );
        let error = "task exceeded its timeout of 150ms";
        assert_eq!(events[3].metadata["error"], json!(error));
        assert_eq!(events[3].metadata["retry_count"], json!(1));
        assert_eq!(events[7].metadata["error"], json!(error));
        assert_eq!(events[7].metadata["retry_exhausted"], json!(true));

        let attempts = attempts_of(&manager, id).await;
        let summary: Vec<_> = attempts
            .iter()
            .map(|a| (a.attempt, a.outcome, a.error.as_deref(), a.timed_out))
            .collect();
        let timeout = Some(AttemptOutcome::Timeout);
        assert_eq!(
            summary,
            [(1, timeout, Some(error), true), (2, timeout, Some(error), true)]
        );
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_two_stage_workflow_records_its_children_its_suspension_and_its_resumption(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("leaf", |task: Task| async move {
            Ok::<_, BoxError>(Step::done(task.payload_json().clone()))
        })?;
        manager.register("flow", |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children([Child::new("leaf", &1), Child::new("leaf", &2)]),
                _ => Step::done(json!("joined")),
            })
        })?;
        manager.start().await?;
        let root = manager.submit("flow", &()).await?;
        wait_for_status(&manager, root, S::Completed).await;
        let w = manager.worker_id().to_owned();
        let children = common::ids_of(&manager.get_children(root).await?);
        assert_eq!(children.len(), 2);

        let events = events_of(&manager, root).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(1)),
                (E::TaskStatusChanged, Some(S::Running), Some(S::Suspended), Some(0), None),
                (E::TaskSubtasksCreated, Some(S::Running), Some(S::Suspended), Some(0), Some(1)),
                (E::TaskStatusChanged, Some(S::Suspended), Some(S::Pending), Some(1), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(1), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(1), Some(2)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(1), None),
            ]
        );
        assert!(workers(&events)[1..].iter().all(|x| *x == Some(w.as_str())));
        assert_eq!(
            events[3].metadata,
            json!({ "suspend_reason": "awaiting_children", "child_count": 2 })
        );
        let ids: Vec<i64> = children.iter().map(|id| id.get()).collect();
        assert_eq!(
            events[4].metadata,
            json!({
                "child_task_ids": ids,
                "child_task_names": ["leaf", "leaf"],
                "child_count": 2,
            })
        );
        assert_eq!(events[5].metadata["resume_reason"], json!("children_completed"));
        assert_eq!(events[5].metadata["retry_count"], json!(0));
        // The parent's suspension and the children's creation are one
        // transaction.
        assert_eq!(events[3].event_time, events[4].event_time);

        for child in &children {
            let child_events = events_of(&manager, *child).await;
            assert_eq!(
                types_of(&child_events),
                [E::TaskCreated, E::TaskClaimed, E::TaskStarted, E::TaskCompleted]
            );
            for event in &child_events {
                assert_eq!((event.root_id, event.parent_id), (root, Some(root)), "{event:?}");
            }
            assert_eq!(child_events[0].event_time, events[4].event_time);
            assert!(child_events[0].id > events[4].id);
            assert_history_consistent(&manager, *child).await;
        }

        let summary = outcomes_of(&manager, root).await;
        assert_eq!(
            summary,
            [
                (1, Some(AttemptOutcome::Suspended)),
                (2, Some(AttemptOutcome::Completed)),
            ]
        );
        // The workflow's events are the root's and the children's.
        let all = manager
            .workflow_events(root, fib_flow::EventQuery::new())
            .await?;
        assert_eq!(all.total, 9 + 2 * 4);
        assert!(all.items.iter().all(|e| e.root_id == root));
        assert_history_consistent(&manager, root).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_suspension_resumed_by_an_operator_records_both_reasons(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("approval", |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::suspend("needs_approval"),
                _ => Step::done(json!("approved")),
            })
        })?;
        manager.start().await?;
        let id = manager.submit("approval", &()).await?;
        wait_for_status(&manager, id, S::Suspended).await;
        let suspended = events_of(&manager, id).await;
        let last = suspended.last().expect("events");
        assert_eq!(
            (last.event_type, last.from_status, last.to_status),
            (E::TaskSuspended, Some(S::Running), Some(S::Suspended))
        );
        assert_eq!(last.metadata, json!({ "suspend_reason": "needs_approval" }));
        assert_eq!(
            task_row(&manager, id).await.last_event_type.as_deref(),
            Some("task_suspended")
        );

        manager.resume_task(id, Some("approved by ops")).await?;
        let done = wait_for_status(&manager, id, S::Completed).await;
        assert_eq!(done.suspend_reason, None);
        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(1)),
                (E::TaskSuspended, Some(S::Running), Some(S::Suspended), Some(0), None),
                (E::TaskResumed, Some(S::Suspended), Some(S::Pending), Some(1), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(1), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(1), Some(2)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(1), None),
            ]
        );
        assert_eq!(events[4].metadata["resume_reason"], json!("approved by ops"));
        assert_eq!(events[4].metadata["retry_count"], json!(0));
        assert!(events[4].metadata.get("suspend_reason").is_none());
        let summary = outcomes_of(&manager, id).await;
        assert_eq!(
            summary,
            [
                (1, Some(AttemptOutcome::Suspended)),
                (2, Some(AttemptOutcome::Completed)),
            ]
        );
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_pending_task_records_a_permanent_failure_and_no_attempt(db) {
        // Not started: the task stays pending.
        let manager = audit_manager_with(&db, |b| b).await;
        let id = manager.submit("nobody", &()).await?;
        manager.cancel_task(id, None).await?;

        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (
                    E::TaskPermanentlyFailed,
                    Some(S::Pending),
                    Some(S::PermanentlyFailed),
                    Some(0),
                    None
                ),
            ]
        );
        assert_eq!(workers(&events), [None, None]);
        assert_eq!(
            events[1].metadata,
            json!({ "error": "Task cancelled", "cancelled": true })
        );
        assert!(attempts_of(&manager, id).await.is_empty());
        assert_history_consistent(&manager, id).await;
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_running_task_closes_its_attempt_as_cancelled(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let started = Recorder::new();
        manager.register("stuck", {
            let started = started.clone();
            move |task: Task| {
                started.push(task.id());
                hang()
            }
        })?;
        manager.start().await?;
        let id = manager.submit("stuck", &()).await?;
        started.wait_len("the handler to start", 1).await;
        manager.cancel_task(id, Some("stop it")).await?;
        wait_for_running_count(&manager, 0).await;
        let w = manager.worker_id().to_owned();

        let events = events_of(&manager, id).await;
        assert_eq!(
            types_of(&events),
            [E::TaskCreated, E::TaskClaimed, E::TaskStarted, E::TaskPermanentlyFailed]
        );
        let cancelled = &events[3];
        assert_eq!(
            (cancelled.from_status, cancelled.to_status),
            (Some(S::Running), Some(S::PermanentlyFailed))
        );
        assert_eq!(cancelled.worker_id.as_deref(), Some(w.as_str()));
        assert_eq!(cancelled.metadata, json!({ "error": "stop it", "cancelled": true }));

        let attempts = attempts_of(&manager, id).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Cancelled));
        assert_eq!(attempts[0].error.as_deref(), Some("stop it"));
        assert_eq!(attempts[0].ended_at, Some(cancelled.event_time));
        assert!(!attempts[0].timed_out);
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn pausing_a_running_task_closes_its_attempt_as_paused_and_resume_runs_it_again(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let started = Recorder::new();
        manager.register("pausable", {
            let started = started.clone();
            move |task: Task| {
                started.push(task.attempt());
                async move {
                    if task.attempt() == 1 {
                        return hang().await;
                    }
                    Ok(Step::done(json!("second run")))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("pausable", &()).await?;
        started.wait_len("the first run", 1).await;
        manager.pause_task(id).await?;
        wait_for_running_count(&manager, 0).await;
        let w = manager.worker_id().to_owned();

        let events = events_of(&manager, id).await;
        let paused = events.last().expect("events");
        assert_eq!(
            (paused.event_type, paused.from_status, paused.to_status),
            (E::TaskPaused, Some(S::Running), Some(S::Paused))
        );
        assert_eq!(paused.worker_id.as_deref(), Some(w.as_str()));
        assert_eq!(paused.metadata, Value::Null);
        let attempts = attempts_of(&manager, id).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Paused));
        assert_eq!(attempts[0].error, None);
        assert_history_consistent(&manager, id).await;

        manager.resume_task(id, None).await?;
        wait_for_status(&manager, id, S::Completed).await;
        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events[4..]),
            [
                (E::TaskStatusChanged, Some(S::Paused), Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(2)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(0), None),
            ]
        );
        assert_eq!(events[4].metadata["resume_reason"], json!("manual"));
        let summary = outcomes_of(&manager, id).await;
        assert_eq!(
            summary,
            [
                (1, Some(AttemptOutcome::Paused)),
                (2, Some(AttemptOutcome::Completed)),
            ]
        );
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_running_attempt_is_open_until_its_run_ends(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let gate = Gate::new();
        manager.register("gated", {
            let gate = gate.clone();
            move |_task: Task| {
                let gate = gate.clone();
                async move {
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done(json!(1)))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("gated", &()).await?;
        wait_for_status(&manager, id, S::Running).await;

        let open = manager
            .task_attempts(id, AttemptQuery::new().open_only())
            .await?;
        assert_eq!(open.total, 1);
        let attempt = &open.items[0];
        assert_eq!(attempt.attempt, 1);
        assert_eq!(
            (attempt.ended_at, attempt.outcome, attempt.error.as_deref()),
            (None, None, None)
        );
        assert_eq!(attempt.duration_ms(), None);
        assert!(!attempt.timed_out);
        assert_eq!(attempt.worker_id.as_deref(), Some(manager.worker_id()));
        let in_workflow = manager
            .workflow_attempts(id, AttemptQuery::new().open_only())
            .await?;
        assert_eq!(in_workflow.items, open.items);
        assert_eq!(
            task_row(&manager, id).await.last_event_type.as_deref(),
            Some("task_started")
        );
        gate.open();
        wait_for_status(&manager, id, S::Completed).await;
        let open = manager
            .task_attempts(id, AttemptQuery::new().open_only())
            .await?;
        assert_eq!((open.total, open.items.len()), (0, 0));
        let all = attempts_of(&manager, id).await;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, attempt.id);
        assert_eq!(all[0].started_at, attempt.started_at);
        assert!(all[0].ended_at.is_some());
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_run_released_by_a_stopping_manager_is_an_interrupted_attempt(db) {
        if !db.shareable() {
            // The history is read by a second manager after the first stops.
            return Ok(());
        }
        let manager = audit_manager_with(&db, |b| b.shutdown_timeout(ms(100))).await;
        let started = Recorder::new();
        manager.register("endless", {
            let started = started.clone();
            move |task: Task| {
                started.push(task.id());
                hang()
            }
        })?;
        manager.start().await?;
        let id = manager.submit("endless", &()).await?;
        started.wait_len("the handler to start", 1).await;
        manager.stop().await?;

        let reader = audit_manager_with(&db, |b| b).await;
        let row = task_row(&reader, id).await;
        assert_eq!(row.status, S::Pending);
        assert_eq!(row.retry_count, 0, "a release is not a retry");
        let events = events_of(&reader, id).await;
        let last = events.last().expect("events");
        assert_eq!(
            (last.event_type, last.from_status, last.to_status),
            (E::TaskStatusChanged, Some(S::Running), Some(S::Pending))
        );
        let attempts = attempts_of(&reader, id).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Interrupted));
        assert_eq!(attempts[0].ended_at, Some(last.event_time));
        assert_history_consistent(&reader, id).await;
        reader.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_rows_one_transaction_writes_carry_one_time(db) {
        // Completing a task ends its attempt, finishes the row and records
        // the completion event in one transaction: one moment. Twenty
        // tasks make a millisecond boundary between statements likely
        // wherever the clock is read per statement.
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("quick", |_task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!(1)))
        })?;
        manager.start().await?;
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(manager.submit("quick", &()).await?);
        }
        for id in &ids {
            let row = wait_for_status(&manager, *id, S::Completed).await;
            let attempts = attempts_of(&manager, *id).await;
            assert_eq!(attempts.len(), 1, "{attempts:?}");
            assert_eq!(row.started_at, Some(attempts[0].started_at), "task {id}");
            assert_eq!(row.finished_at, attempts[0].ended_at, "task {id}");
            assert_eq!(row.last_event_at, row.finished_at, "task {id}");
        }
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_cron_task_records_its_creation_like_a_submitted_one(db) {
        // Every inserted task starts its history with `task_created`; a
        // cron task is inserted by `cron()`, not `submit()`.
        let manager = audit_manager_with(&db, |b| b).await;
        let id = manager.cron("yearly", "0 0 1 1 *", &json!({ "n": 1 })).await?;
        let events = events_of(&manager, id).await;
        assert_eq!(types_of(&events), [E::TaskCreated], "{events:?}");
        assert_eq!(events[0].metadata["kind"], json!("cron"));
        assert_eq!(
            task_row(&manager, id).await.last_event_type.as_deref(),
            Some("task_created")
        );
        Ok(())
    }
}

backend_test! {
    async fn an_empty_stage_of_children_moves_on_at_once_with_a_pending_outcome(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("hollow", |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children(Vec::<Child>::new()),
                _ => Step::done(json!(task.stage())),
            })
        })?;
        manager.start().await?;
        let id = manager.submit("hollow", &()).await?;
        let done = wait_for_status(&manager, id, S::Completed).await;
        assert_eq!(done.result, Some(json!(1)));
        let events = events_of(&manager, id).await;
        assert_eq!(
            shapes(&events[3..]),
            [
                (E::TaskStatusChanged, Some(S::Running), Some(S::Pending), Some(1), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(1), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(1), Some(2)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(1), None),
            ]
        );
        let summary = outcomes_of(&manager, id).await;
        assert_eq!(
            summary,
            [
                (1, Some(AttemptOutcome::Pending)),
                (2, Some(AttemptOutcome::Completed)),
            ]
        );
        assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_lapsed_lease_is_a_heartbeat_timeout_and_another_worker_runs_the_retry(db) {
        if !db.shareable() {
            // Two managers share the database.
            return Ok(());
        }
        let short = |b: fib_flow::TaskManagerBuilder| {
            b.task_heartbeat_interval(ms(50))
                .task_heartbeat_timeout(ms(400))
                .maintenance_interval(ms(50))
        };
        // The first worker claims the task and vanishes without stopping:
        // its heartbeat ends, its handler never returns.
        let first = audit_manager_with(&db, |b| short(b).worker_id("worker-first")).await;
        let started = Recorder::new();
        first.register("job", {
            let started = started.clone();
            move |task: Task| {
                started.push(task.id());
                hang()
            }
        })?;
        first.start().await?;
        let id = first.submit("job", &()).await?;
        started.wait_len("the first worker to run the task", 1).await;
        drop(first);

        let second = audit_manager_with(&db, |b| short(b).worker_id("worker-second")).await;
        second.register("job", |_task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!("recovered")))
        })?;
        second.start().await?;
        wait_for_status(&second, id, S::Completed).await;

        let events = events_of(&second, id).await;
        assert_eq!(
            shapes(&events),
            [
                (E::TaskCreated, None, Some(S::Pending), Some(0), None),
                (E::TaskClaimed, Some(S::Pending), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Pending), Some(S::Running), Some(0), Some(1)),
                (E::TaskTimedOut, Some(S::Running), Some(S::Timeout), Some(0), None),
                (E::TaskClaimed, Some(S::Timeout), Some(S::Running), Some(0), None),
                (E::TaskStarted, Some(S::Timeout), Some(S::Running), Some(0), Some(2)),
                (E::TaskRetryStarted, Some(S::Timeout), Some(S::Running), Some(0), Some(2)),
                (E::TaskCompleted, Some(S::Running), Some(S::Completed), Some(0), None),
            ]
        );
        assert_eq!(
            workers(&events),
            [
                None,
                Some("worker-first"),
                Some("worker-first"),
                Some("worker-first"),
                Some("worker-second"),
                Some("worker-second"),
                Some("worker-second"),
                Some("worker-second"),
            ]
        );
        let error = "task heartbeat timed out (its worker stopped renewing the lease)";
        assert_eq!(events[3].metadata["timeout_type"], json!("heartbeat"));
        assert_eq!(events[3].metadata["error"], json!(error));
        let attempts = attempts_of(&second, id).await;
        let summary: Vec<_> = attempts
            .iter()
            .map(|a| (a.attempt, a.worker_id.as_deref(), a.outcome, a.error.as_deref(), a.timed_out))
            .collect();
        assert_eq!(
            summary,
            [
                (1, Some("worker-first"), Some(AttemptOutcome::Timeout), Some(error), true),
                (2, Some("worker-second"), Some(AttemptOutcome::Completed), None, false),
            ]
        );
        let workflow = second.workflow_summary(id).await?;
        assert_eq!(workflow.workers, ["worker-first", "worker-second"]);
        assert_history_consistent(&second, id).await;
        second.stop().await?;
        Ok(())
    }
}
