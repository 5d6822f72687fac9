//! Human in the loop: a task suspended by its handler waits, immune to
//! timeouts, until an operator resumes it (next stage, with its context) or
//! cancels it; what `resume_task` and `cancel_task` accept and refuse; and
//! cancelling running tasks, waiting parents and children.

#[macro_use]
mod common;

use std::time::Duration;

use fib_flow::{
    BoxError, Child, ChildFailure, ChildResult, Error, Handler, Step, Task, TaskFilter, TaskId,
    TaskOptions, TaskStatus,
};
use serde_json::json;

use common::{
    ids_of, task_row, wait_for_running_count, wait_for_status, DropFlag, Gate, Gates, Recorder,
};

/// What a run saw: stage, attempt, context and how many child results.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    stage: i64,
    attempt: i64,
    context: Option<Vec<u8>>,
    results: usize,
}

impl Seen {
    fn of(task: &Task) -> Self {
        Seen {
            stage: task.stage(),
            attempt: task.attempt(),
            context: task.context().map(<[u8]>::to_vec),
            results: task.child_results().len(),
        }
    }
}

/// What a run should have seen: stage, attempt, context, child results.
fn saw(stage: i64, attempt: i64, context: Option<&[u8]>, results: usize) -> Seen {
    Seen {
        stage,
        attempt,
        context: context.map(<[u8]>::to_vec),
        results,
    }
}

/// Suspends at stage 0 with `reason` and context `draft`, then completes
/// with the context it sees; records every run.
fn approval(seen: &Recorder<Seen>, reason: &'static str) -> impl Handler {
    let seen = seen.clone();
    move |task: Task| {
        let seen = seen.clone();
        async move {
            seen.push(Seen::of(&task));
            if task.stage() == 0 {
                return Ok::<_, BoxError>(Step::suspend(reason).context(b"draft".to_vec()));
            }
            let context = String::from_utf8_lossy(task.context().unwrap_or_default()).into_owned();
            Ok(Step::done(
                json!({ "stage": task.stage(), "context": context }),
            ))
        }
    }
}

/// Records its id and never finishes; `dropped` counts stopped attempts.
fn hangs(started: &Recorder<TaskId>, dropped: &DropFlag) -> impl Handler {
    let (started, dropped) = (started.clone(), dropped.clone());
    move |task: Task| {
        let (started, dropped) = (started.clone(), dropped.clone());
        async move {
            let _guard = dropped.guard();
            started.push(task.id());
            std::future::pending::<()>().await;
            Ok::<_, BoxError>(Step::done("must not happen"))
        }
    }
}

fn expect_invalid_transition<T: std::fmt::Debug>(
    result: fib_flow::Result<T>,
    task: TaskId,
    expected_from: TaskStatus,
    expected_to: TaskStatus,
) {
    match result {
        Err(Error::InvalidTransition { id, from, to }) => {
            assert_eq!((id, from, to), (task, expected_from, expected_to));
        }
        other => {
            panic!("task {task}: expected InvalidTransition from {expected_from}, got {other:?}")
        }
    }
}

backend_test! {
    async fn a_suspended_task_waits_for_a_person_and_resume_runs_its_next_stage_with_its_context(db) {
        let manager = db.manager().await;
        let seen = Recorder::new();
        manager.register("approval", approval(&seen, "awaiting_approval"))?;
        manager.start().await?;
        let id = manager.submit("approval", &()).await?;

        let suspended = wait_for_status(&manager, id, TaskStatus::Suspended).await;
        assert_eq!(
            suspended.suspend_reason.as_deref(),
            Some("awaiting_approval")
        );
        assert_eq!(suspended.stage, 0);
        assert_eq!(suspended.attempt, 1);
        assert_eq!(suspended.result, None);
        assert_eq!(suspended.error, None);
        assert_eq!(suspended.finished_at, None);
        assert_eq!(
            (suspended.total_children, suspended.pending_children),
            (0, 0)
        );
        wait_for_running_count(&manager, 0).await;
        let waiting = |reason: &str| {
            let manager = manager.clone();
            let filter = TaskFilter::new()
                .status(TaskStatus::Suspended)
                .suspend_reason(reason);
            async move { manager.get_tasks(filter).await.map(|rows| ids_of(&rows)) }
        };
        assert_eq!(waiting("awaiting_approval").await?, [id]);
        assert_eq!(waiting("awaiting_children").await?, []);

        // Paused manager: the resumed row can be seen before it runs.
        manager.pause();
        manager.resume_task(id, Some("approved")).await?;
        let pending = task_row(&manager, id).await;
        assert_eq!(pending.status, TaskStatus::Pending);
        assert_eq!(pending.stage, 1);
        assert_eq!(pending.suspend_reason, None);
        assert_eq!(pending.retry_count, 0);
        assert_eq!(pending.attempt, 1);
        assert!(pending.next_run_at <= chrono::Utc::now() + chrono::TimeDelta::seconds(1));
        assert_eq!(waiting("awaiting_approval").await?, []);

        manager.resume();
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 1, "context": "draft" })));
        assert_eq!(done.stage, 1);
        assert_eq!(done.attempt, 2);
        assert_eq!(
            seen.snapshot(),
            [saw(0, 1, None, 0), saw(1, 2, Some(&b"draft"[..]), 0),]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_suspended_task_is_never_timed_out_nor_resumed_automatically(db) {
        let manager = db
            .manager_with(|b| {
                b.task_heartbeat_interval(Duration::from_millis(50))
                    .task_heartbeat_timeout(Duration::from_millis(200))
                    .maintenance_interval(Duration::from_millis(50))
            })
            .await;
        let seen = Recorder::new();
        manager.register("approval", approval(&seen, "awaiting_review"))?;
        manager.start().await?;
        let options = TaskOptions::new()
            .timeout(Duration::from_millis(200))
            .max_attempts(1);
        let id = manager.submit_with("approval", &(), options).await?;
        let suspended = wait_for_status(&manager, id, TaskStatus::Suspended).await;

        // Bounded negative check: five timeouts and heartbeat timeouts pass.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let row = task_row(&manager, id).await;
        assert_eq!(row, suspended, "a suspended task changed on its own");
        assert_eq!(row.status, TaskStatus::Suspended);
        assert_eq!(row.suspend_reason.as_deref(), Some("awaiting_review"));
        assert_eq!(row.error, None);
        assert_eq!(seen.len(), 1);

        manager.resume_task(id, None).await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 1, "context": "draft" })));
        assert_eq!(done.error, None);
        assert_eq!(seen.len(), 2);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_suspended_task_fails_it_with_the_given_or_default_reason(db) {
        let manager = db.manager().await;
        let seen = Recorder::new();
        manager.register("approval", approval(&seen, "awaiting_approval"))?;
        manager.start().await?;
        let rejected = manager.submit("approval", &()).await?;
        let dropped = manager.submit("approval", &()).await?;
        wait_for_status(&manager, rejected, TaskStatus::Suspended).await;
        wait_for_status(&manager, dropped, TaskStatus::Suspended).await;

        manager.cancel_task(rejected, Some("rejected")).await?;
        manager.cancel_task(dropped, None).await?;
        for (id, error) in [(rejected, "rejected"), (dropped, "Task cancelled")] {
            let row = task_row(&manager, id).await;
            assert_eq!(row.status, TaskStatus::PermanentlyFailed, "task {id}");
            assert_eq!(row.error.as_deref(), Some(error), "task {id}");
            assert!(row.finished_at.is_some(), "task {id}");
            assert_eq!(row.suspend_reason, None, "task {id}");
            assert_eq!(row.stage, 0, "task {id}");
            assert_eq!(row.attempt, 1, "task {id}");
            assert_eq!(row.result, None, "task {id}");
        }
        let filter = TaskFilter::new().suspend_reason("awaiting_approval");
        assert!(manager.get_tasks(filter).await?.is_empty());
        // Neither ran again.
        assert_eq!(seen.snapshot().iter().filter(|s| s.stage > 0).count(), 0);
        assert_eq!(seen.len(), 2);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn resuming_a_paused_task_reruns_the_same_stage(db) {
        let manager = db.manager().await;
        let seen = Recorder::new();
        let dropped = DropFlag::new();
        manager.register("review", {
            let (seen, dropped) = (seen.clone(), dropped.clone());
            move |task: Task| {
                let (seen, dropped) = (seen.clone(), dropped.clone());
                async move {
                    seen.push(Seen::of(&task));
                    match (task.stage(), task.attempt()) {
                        (0, _) => {
                            return Ok::<_, BoxError>(
                                Step::suspend("needs_input").context(b"kept".to_vec()),
                            )
                        }
                        // The first run of stage 1 is paused by the operator.
                        (_, 2) => {
                            let _guard = dropped.guard();
                            std::future::pending::<()>().await;
                        }
                        _ => {}
                    }
                    Ok(Step::done(json!({ "stage": task.stage() })))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("review", &()).await?;
        wait_for_status(&manager, id, TaskStatus::Suspended).await;
        manager.resume_task(id, Some("input given")).await?;
        seen.wait_len("stage 1 to start", 2).await;

        manager.pause_task(id).await?;
        dropped.wait("the paused attempt to be dropped", 1).await;
        let paused = task_row(&manager, id).await;
        assert_eq!(
            (paused.status, paused.stage, paused.attempt),
            (TaskStatus::Paused, 1, 2)
        );

        manager.pause();
        manager.resume_task(id, None).await?;
        let pending = task_row(&manager, id).await;
        assert_eq!(pending.status, TaskStatus::Pending);
        assert_eq!(
            pending.stage, 1,
            "resuming a paused task must not advance its stage"
        );
        assert_eq!(pending.retry_count, 0);

        manager.resume();
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 1 })));
        assert_eq!(done.stage, 1);
        assert_eq!(done.attempt, 3);
        let kept = Some(&b"kept"[..]);
        assert_eq!(
            seen.snapshot(),
            [saw(0, 1, None, 0), saw(1, 2, kept, 0), saw(1, 3, kept, 0)]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_workflow_parent_can_wait_for_a_person_after_its_children(db) {
        let manager = db.manager().await;
        manager.register("child", |task: Task| async move {
            let n: i64 = task.payload()?;
            Ok::<_, BoxError>(Step::done(json!(n + 1)))
        })?;
        let seen = Recorder::new();
        manager.register("parent", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    seen.push(Seen::of(&task));
                    Ok::<_, BoxError>(match task.stage() {
                        0 => Step::children([Child::new("child", &1), Child::new("child", &2)])
                            .context(b"from stage 0".to_vec()),
                        // No new context: the stage-0 context is kept.
                        1 => Step::suspend("awaiting_sign_off"),
                        _ => Step::done(json!({ "stage": task.stage() })),
                    })
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let suspended = wait_for_status(&manager, parent, TaskStatus::Suspended).await;
        let suspended = if suspended.stage == 0 {
            // Still waiting for the children; wait for the person-step.
            common::wait_until("the parent to wait for a person", || async {
                let row = task_row(&manager, parent).await;
                (row.stage == 1 && row.status == TaskStatus::Suspended).then_some(row)
            })
            .await
        } else {
            suspended
        };
        assert_eq!(
            suspended.suspend_reason.as_deref(),
            Some("awaiting_sign_off")
        );
        assert_eq!(suspended.pending_children, 0);
        assert_eq!(suspended.total_children, 2);

        manager.resume_task(parent, Some("signed")).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 2 })));
        assert_eq!(done.attempt, 3);
        let context = Some(&b"from stage 0"[..]);
        assert_eq!(
            seen.snapshot(),
            [
                saw(0, 1, None, 0),
                saw(1, 2, context, 2),
                // After a resumed suspension there are no child results.
                saw(2, 3, context, 0),
            ]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn resume_task_refuses_pending_running_completed_and_failed_tasks_and_changes_nothing(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("holds", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.id());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done("released"))
                }
            }
        })?;
        manager.register("quick", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("quick"))
        })?;
        manager.register("broken", |_task: Task| async {
            Err::<Step, BoxError>("broken".into())
        })?;
        manager.start().await?;
        // No handler anywhere: it stays pending.
        let pending = manager.submit("nobody_runs_this", &()).await?;
        let running = manager.submit("holds", &()).await?;
        let completed = manager.submit("quick", &()).await?;
        let failed = manager
            .submit_with("broken", &(), TaskOptions::new().max_attempts(1))
            .await?;
        started.wait_len("the held task to start", 1).await;
        wait_for_status(&manager, completed, TaskStatus::Completed).await;
        wait_for_status(&manager, failed, TaskStatus::PermanentlyFailed).await;

        for (id, status) in [
            (pending, TaskStatus::Pending),
            (completed, TaskStatus::Completed),
            (failed, TaskStatus::PermanentlyFailed),
        ] {
            let before = task_row(&manager, id).await;
            assert_eq!(before.status, status);
            expect_invalid_transition(
                manager.resume_task(id, Some("please")).await,
                id,
                status,
                TaskStatus::Pending,
            );
            assert_eq!(task_row(&manager, id).await, before, "task {id} changed");
        }

        let before = task_row(&manager, running).await;
        assert_eq!(before.status, TaskStatus::Running);
        expect_invalid_transition(
            manager.resume_task(running, None).await,
            running,
            TaskStatus::Running,
            TaskStatus::Pending,
        );
        let after = task_row(&manager, running).await;
        assert_eq!(
            (
                after.status,
                after.stage,
                after.attempt,
                after.retry_count,
                &after.worker_id
            ),
            (TaskStatus::Running, 0, 1, 0, &before.worker_id)
        );
        gate.open();
        let done = wait_for_status(&manager, running, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("released")));
        assert_eq!((done.stage, done.attempt), (0, 1));
        assert_eq!(started.snapshot(), [running]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn resume_task_refuses_a_parent_waiting_for_its_children(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("step", {
            let gates = gates.clone();
            move |_task: Task| {
                let gates = gates.clone();
                async move {
                    gates.wait("children").await;
                    Ok::<_, BoxError>(Step::done("child done"))
                }
            }
        })?;
        let stages = Recorder::new();
        manager.register("parent", {
            let stages = stages.clone();
            move |task: Task| {
                let stages = stages.clone();
                async move {
                    stages.push(task.stage());
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(Step::children([
                            Child::new("step", &1),
                            Child::new("step", &2),
                        ]));
                    }
                    Ok(Step::done(
                        json!({ "stage": task.stage(), "results": task.child_results().len() }),
                    ))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let waiting = wait_for_status(&manager, parent, TaskStatus::Suspended).await;
        assert_eq!(waiting.suspend_reason.as_deref(), Some("awaiting_children"));

        expect_invalid_transition(
            manager.resume_task(parent, Some("impatient")).await,
            parent,
            TaskStatus::Suspended,
            TaskStatus::Pending,
        );
        assert_eq!(
            task_row(&manager, parent).await,
            waiting,
            "the waiting parent changed"
        );

        gates.open("children");
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        // The refused resume did not advance the stage: one step, not two.
        assert_eq!(done.result, Some(json!({ "stage": 1, "results": 2 })));
        assert_eq!(done.stage, 1);
        assert_eq!(stages.snapshot(), [0, 1]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn cancel_task_refuses_finished_tasks_and_changes_nothing(db) {
        let manager = db.manager().await;
        manager.register("quick", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("quick"))
        })?;
        manager.register("broken", |_task: Task| async {
            Err::<Step, BoxError>("broken".into())
        })?;
        manager.start().await?;
        let completed = manager.submit("quick", &()).await?;
        let failed = manager
            .submit_with("broken", &(), TaskOptions::new().max_attempts(1))
            .await?;
        for (id, status) in [
            (completed, TaskStatus::Completed),
            (failed, TaskStatus::PermanentlyFailed),
        ] {
            let before = wait_for_status(&manager, id, status).await;
            expect_invalid_transition(
                manager.cancel_task(id, Some("too late")).await,
                id,
                status,
                TaskStatus::PermanentlyFailed,
            );
            let after = task_row(&manager, id).await;
            assert_eq!(after, before, "task {id} changed");
        }
        assert_eq!(
            task_row(&manager, failed).await.error.as_deref(),
            Some("broken")
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn resume_and_cancel_of_an_unknown_task_are_not_found(db) {
        let manager = db.manager().await;
        let known = manager.submit("anything", &()).await?;
        let missing = TaskId(known.get() + 1000);
        match manager.resume_task(missing, Some("hello")).await {
            Err(Error::NotFound { id }) => assert_eq!(id, missing),
            other => panic!("resume of an unknown task: {other:?}"),
        }
        match manager.cancel_task(missing, None).await {
            Err(Error::NotFound { id }) => assert_eq!(id, missing),
            other => panic!("cancel of an unknown task: {other:?}"),
        }
        assert_eq!(manager.get_task(missing).await?, None);
        assert_eq!(task_row(&manager, known).await.status, TaskStatus::Pending);
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_running_task_stops_its_handler(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        manager.register("long", hangs(&started, &dropped))?;
        manager.start().await?;
        let id = manager.submit("long", &()).await?;
        started.wait_len("the handler to start", 1).await;

        manager.cancel_task(id, Some("stop it")).await?;
        dropped.wait("the cancelled handler to be dropped", 1).await;
        wait_for_running_count(&manager, 0).await;
        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::PermanentlyFailed);
        assert_eq!(row.error.as_deref(), Some("stop it"));
        assert_eq!(row.result, None);
        assert_eq!(row.attempt, 1);
        assert!(row.finished_at.is_some());
        assert_eq!(started.snapshot(), [id]);
        manager.stop().await?;
        Ok(())
    }
}

/// A gate for a handler that blocks its thread (it never yields, so the
/// engine cannot drop its future).
#[derive(Clone, Default)]
struct BlockingGate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl BlockingGate {
    fn wait_blocking(&self) {
        let (open, changed) = &*self.0;
        let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = changed.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }
}

/// Opens the gate when dropped, so a failing test leaves no thread blocked.
struct OpenOnDrop(BlockingGate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

backend_test! {
    async fn a_cancelled_attempt_that_returns_late_cannot_record_its_result(db) {
        let manager = db.manager().await;
        let gate = BlockingGate::default();
        let _unblock_on_failure = OpenOnDrop(gate.clone());
        let events = Recorder::new();
        manager.register("stubborn", {
            let (gate, events) = (gate.clone(), events.clone());
            move |_task: Task| {
                let (gate, events) = (gate.clone(), events.clone());
                async move {
                    events.push("start");
                    tokio::task::block_in_place(|| gate.wait_blocking());
                    events.push("end");
                    Ok::<_, BoxError>(Step::done("too late"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("stubborn", &()).await?;
        events.wait_len("the handler to start", 1).await;

        manager.cancel_task(id, Some("operator gave up")).await?;
        let cancelled = task_row(&manager, id).await;
        assert_eq!(cancelled.status, TaskStatus::PermanentlyFailed);
        assert_eq!(cancelled.error.as_deref(), Some("operator gave up"));

        gate.open();
        events.wait_len("the handler to return", 2).await;
        wait_for_running_count(&manager, 0).await;
        let after = task_row(&manager, id).await;
        assert_eq!(after.status, TaskStatus::PermanentlyFailed);
        assert_eq!(after.result, None);
        assert_eq!(after.error.as_deref(), Some("operator gave up"));
        assert_eq!(after.finished_at, cancelled.finished_at);
        assert_eq!(after.attempt, 1);
        manager.stop().await?;
        Ok(())
    }
}

/// Stage 0 spawns one child per `(name, payload)` pair in its payload,
/// with `policy`; a later stage records its child results and completes.
fn spawner(resumed: &Recorder<(TaskId, Vec<ChildResult>)>, policy: ChildFailure) -> impl Handler {
    let resumed = resumed.clone();
    move |task: Task| {
        let resumed = resumed.clone();
        async move {
            if task.stage() == 0 {
                let children: Vec<(String, serde_json::Value)> = task.payload()?;
                return Ok::<_, BoxError>(
                    Step::children(
                        children
                            .iter()
                            .map(|(name, payload)| Child::new(name.as_str(), payload)),
                    )
                    .on_child_failure(policy),
                );
            }
            resumed.push((task.id(), task.child_results().to_vec()));
            Ok(Step::done(json!({ "stage": task.stage() })))
        }
    }
}

backend_test! {
    async fn cancelling_a_parent_waiting_for_children_cancels_its_whole_subtree(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let resumed = Recorder::new();
        manager.register("hangs", hangs(&started, &dropped))?;
        manager.register("spawner", spawner(&resumed, ChildFailure::FailParent))?;
        manager.start().await?;
        let nested = json!([["hangs", "grandchild"]]);
        let parent = manager
            .submit("spawner", &json!([["hangs", "child"], ["spawner", nested]]))
            .await?;
        started
            .wait_len("the child and the grandchild to start", 2)
            .await;
        let children = ids_of(&manager.get_children(parent).await?);
        let [child, middle] = [children[0], children[1]];
        let grandchild = manager.get_children(middle).await?[0].id;
        assert_eq!(
            task_row(&manager, middle).await.status,
            TaskStatus::Suspended
        );

        manager
            .cancel_task(parent, Some("workflow abandoned"))
            .await?;
        let row = task_row(&manager, parent).await;
        assert_eq!(row.status, TaskStatus::PermanentlyFailed);
        assert_eq!(row.error.as_deref(), Some("workflow abandoned"));
        assert_eq!(row.suspend_reason, None);
        assert!(row.finished_at.is_some());
        let cancelled = format!("cancelled: ancestor task {parent} ended permanently_failed");
        for id in [child, middle, grandchild] {
            let row = task_row(&manager, id).await;
            assert_eq!(row.status, TaskStatus::PermanentlyFailed, "task {id}");
            assert_eq!(row.error.as_deref(), Some(cancelled.as_str()), "task {id}");
            assert!(row.finished_at.is_some(), "task {id}");
        }
        dropped
            .wait("the running child and grandchild to be dropped", 2)
            .await;
        wait_for_running_count(&manager, 0).await;
        assert!(resumed.is_empty(), "a cancelled parent resumed");
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_child_fails_its_parent_under_the_default_policy(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let resumed = Recorder::new();
        manager.register("hangs", hangs(&started, &dropped))?;
        manager.register("spawner", spawner(&resumed, ChildFailure::FailParent))?;
        manager.start().await?;
        let parent = manager
            .submit(
                "spawner",
                &json!([["hangs", "victim"], ["hangs", "bystander"]]),
            )
            .await?;
        started.wait_len("both children to start", 2).await;
        let children = ids_of(&manager.get_children(parent).await?);
        let [victim, bystander] = [children[0], children[1]];

        manager.cancel_task(victim, Some("not needed")).await?;
        let row = task_row(&manager, parent).await;
        assert_eq!(row.status, TaskStatus::PermanentlyFailed);
        assert_eq!(
            row.error,
            Some(format!("child task {victim} (hangs) failed: not needed"))
        );
        let victim_row = task_row(&manager, victim).await;
        assert_eq!(victim_row.status, TaskStatus::PermanentlyFailed);
        assert_eq!(victim_row.error.as_deref(), Some("not needed"));
        let bystander_row = task_row(&manager, bystander).await;
        assert_eq!(bystander_row.status, TaskStatus::PermanentlyFailed);
        assert_eq!(
            bystander_row.error,
            Some(format!("cancelled: sibling task {victim} failed"))
        );
        dropped.wait("both children to be dropped", 2).await;
        wait_for_running_count(&manager, 0).await;
        assert!(resumed.is_empty(), "the failed parent resumed");
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_child_under_the_resume_policy_resumes_the_parent_with_the_cancellation(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let resumed = Recorder::new();
        manager.register("hangs", hangs(&started, &dropped))?;
        manager.register("quick", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("quick"))
        })?;
        manager.register("spawner", spawner(&resumed, ChildFailure::Resume))?;
        manager.start().await?;
        let parent = manager
            .submit("spawner", &json!([["hangs", "victim"], ["quick", null]]))
            .await?;
        started.wait_len("the hanging child to start", 1).await;
        let children = ids_of(&manager.get_children(parent).await?);
        let [victim, quick] = [children[0], children[1]];
        wait_for_status(&manager, quick, TaskStatus::Completed).await;

        manager.cancel_task(victim, None).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 1 })));
        assert_eq!(done.error, None);
        assert_eq!(
            resumed.snapshot(),
            [(
                parent,
                vec![
                    ChildResult {
                        task_id: victim,
                        name: "hangs".into(),
                        status: TaskStatus::PermanentlyFailed,
                        result: None,
                        error: Some("Task cancelled".into()),
                    },
                    ChildResult {
                        task_id: quick,
                        name: "quick".into(),
                        status: TaskStatus::Completed,
                        result: Some(json!("quick")),
                        error: None,
                    },
                ]
            )]
        );
        dropped.wait("the cancelled child to be dropped", 1).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_child_waiting_for_a_person_holds_its_parent_until_resumed(db) {
        let manager = db.manager().await;
        let seen = Recorder::new();
        let resumed = Recorder::new();
        manager.register("approval", approval(&seen, "awaiting_approval"))?;
        manager.register("spawner", spawner(&resumed, ChildFailure::FailParent))?;
        manager.start().await?;
        let parent = manager
            .submit("spawner", &json!([["approval", null]]))
            .await?;
        wait_for_status(&manager, parent, TaskStatus::Suspended).await;
        let child = manager.get_children(parent).await?[0].id;
        wait_for_status(&manager, child, TaskStatus::Suspended).await;
        let filter = TaskFilter::new().suspend_reason("awaiting_approval");
        assert_eq!(ids_of(&manager.get_tasks(filter).await?), [child]);
        let waiting = task_row(&manager, parent).await;
        assert_eq!(waiting.suspend_reason.as_deref(), Some("awaiting_children"));
        assert_eq!(waiting.pending_children, 1);

        manager.resume_task(child, Some("approved")).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 1 })));
        let child_result = json!({ "stage": 1, "context": "draft" });
        assert_eq!(
            task_row(&manager, child).await.result,
            Some(child_result.clone())
        );
        assert_eq!(
            resumed.snapshot(),
            [(
                parent,
                vec![ChildResult {
                    task_id: child,
                    name: "approval".into(),
                    status: TaskStatus::Completed,
                    result: Some(child_result),
                    error: None,
                }]
            )]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn cancelling_a_parent_from_another_manager_stops_its_children_where_they_run(db) {
        if !db.shareable() {
            // The operator is a second manager on the same database.
            return Ok(());
        }
        let worker = db.manager_with(|b| b.worker_id("worker-a")).await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let resumed = Recorder::new();
        worker.register("hangs", hangs(&started, &dropped))?;
        worker.register("spawner", spawner(&resumed, ChildFailure::FailParent))?;
        worker.start().await?;
        let parent = worker
            .submit("spawner", &json!([["hangs", 1], ["hangs", 2]]))
            .await?;
        started.wait_len("both children to start", 2).await;

        let operator = db.manager().await;
        operator
            .cancel_task(parent, Some("stop everything"))
            .await?;
        // The worker's next heartbeat finds the children's leases gone.
        dropped
            .wait("both children to be dropped on the worker", 2)
            .await;
        wait_for_running_count(&worker, 0).await;
        let cancelled = format!("cancelled: ancestor task {parent} ended permanently_failed");
        for child in operator.get_children(parent).await? {
            assert_eq!(
                child.status,
                TaskStatus::PermanentlyFailed,
                "task {}",
                child.id
            );
            assert_eq!(
                child.error.as_deref(),
                Some(cancelled.as_str()),
                "task {}",
                child.id
            );
            assert_eq!(child.attempt, 1, "task {}", child.id);
        }
        let row = task_row(&operator, parent).await;
        assert_eq!(row.status, TaskStatus::PermanentlyFailed);
        assert_eq!(row.error.as_deref(), Some("stop everything"));
        assert!(resumed.is_empty());
        operator.stop().await?;
        worker.stop().await?;
        Ok(())
    }
}
