//! Workflows: a parent spawns children, waits suspended, and resumes at its
//! next stage with their outcomes; child options and validation; what a
//! failed child does to its parent (fail it and cancel the rest, or resume
//! it with the error) up to three levels deep; exactly-once fan-in across
//! two workers; retries and hot reload between stages; workflow queries.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fib_flow::{
    BoxError, Child, ChildFailure, ChildResult, Handler, HandlerOptions, Step, Task, TaskFilter,
    TaskId, TaskKind, TaskOptions, TaskStatus,
};
use serde_json::json;

use common::{
    ids_of, task_row, wait_for_running_count, wait_for_status, wait_for_tasks, wait_until,
    DropFlag, Gate, Gates, Recorder,
};

/// A child that returns the square of its integer payload.
fn square() -> impl Handler {
    |task: Task| async move {
        let n: i64 = task.payload()?;
        Ok::<_, BoxError>(Step::done(json!(n * n)))
    }
}

/// A child that waits on the gate named by its string payload, then
/// returns that payload.
fn gated(gates: &Gates) -> impl Handler {
    let gates = gates.clone();
    move |task: Task| {
        let gates = gates.clone();
        async move {
            let key: String = task.payload()?;
            gates.wait(&key).await;
            Ok::<_, BoxError>(Step::done(json!(key)))
        }
    }
}

/// A child that waits on the gate `"fail"`, then fails with `error`.
fn fails_when_told(gates: &Gates, error: &'static str) -> impl Handler {
    let gates = gates.clone();
    move |_task: Task| {
        let gates = gates.clone();
        async move {
            gates.wait("fail").await;
            Err::<Step, BoxError>(error.into())
        }
    }
}

/// A child that records its id and then never finishes; `dropped` counts
/// the attempts that were stopped.
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

/// A middle task: stage 0 spawns one child per name in its payload (each
/// child's payload is its own name), stage 1 returns its children's results
/// (errors as `{"error": ...}`). Children fail it by default.
fn middle(resumed: &Recorder<TaskId>) -> impl Handler {
    let resumed = resumed.clone();
    move |task: Task| {
        let resumed = resumed.clone();
        async move {
            if task.stage() == 0 {
                let names: Vec<String> = task.payload()?;
                return Ok::<_, BoxError>(Step::children(
                    names.iter().map(|name| Child::new(name.as_str(), name)),
                ));
            }
            resumed.push(task.id());
            let outcomes: Vec<_> = task
                .child_results()
                .iter()
                .map(|r| match &r.result {
                    Some(result) => result.clone(),
                    None => json!({ "error": r.error }),
                })
                .collect();
            Ok(Step::done(json!(outcomes)))
        }
    }
}

/// What a parent saw on one run.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    attempt: i64,
    stage: i64,
    context: Option<Vec<u8>>,
    results: Vec<ChildResult>,
}

impl Seen {
    fn of(task: &Task) -> Self {
        Seen {
            attempt: task.attempt(),
            stage: task.stage(),
            context: task.context().map(<[u8]>::to_vec),
            results: task.child_results().to_vec(),
        }
    }
}

/// What a run should have seen: attempt, stage, context, child results.
fn saw(attempt: i64, stage: i64, context: Option<&[u8]>, results: Vec<ChildResult>) -> Seen {
    Seen {
        attempt,
        stage,
        context: context.map(<[u8]>::to_vec),
        results,
    }
}

fn completed(task_id: TaskId, name: &str, result: serde_json::Value) -> ChildResult {
    ChildResult {
        task_id,
        name: name.to_owned(),
        status: TaskStatus::Completed,
        result: Some(result),
        error: None,
    }
}

fn failed(task_id: TaskId, name: &str, error: String) -> ChildResult {
    ChildResult {
        task_id,
        name: name.to_owned(),
        status: TaskStatus::PermanentlyFailed,
        result: None,
        error: Some(error),
    }
}

backend_test! {
    async fn a_parent_waits_suspended_until_its_last_child_finishes(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("step", gated(&gates))?;
        let stages = Recorder::new();
        manager.register("parent", {
            let stages = stages.clone();
            move |task: Task| {
                let stages = stages.clone();
                async move {
                    stages.push(task.stage());
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(Step::children(
                            ["a", "b", "c"].map(|key| Child::new("step", key)),
                        ));
                    }
                    Ok(Step::done(json!(task.child_results().len())))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;

        let waiting = wait_for_status(&manager, parent, TaskStatus::Suspended).await;
        assert_eq!(waiting.suspend_reason.as_deref(), Some("awaiting_children"));
        assert_eq!(waiting.pending_children, 3);
        assert_eq!(waiting.total_children, 3);
        assert_eq!(waiting.stage, 0);
        assert_eq!(waiting.attempt, 1);
        assert_eq!(waiting.result, None);
        assert_eq!(waiting.finished_at, None);
        let children = manager.get_children(parent).await?;
        assert_eq!(children.len(), 3);
        for (child, key) in children.iter().zip(["a", "b", "c"]) {
            assert_eq!(child.name, "step");
            assert_eq!(child.kind, TaskKind::Async);
            assert_eq!(child.payload, Some(json!(key)));
            assert_eq!(child.parent_id, Some(parent));
            assert_eq!(child.root_id, Some(parent));
            assert_eq!(child.parent_stage, Some(0));
            assert_eq!(child.stage, 0);
            assert_eq!(child.total_children, 0);
            assert!(child.status.is_unfinished(), "{}", child.status);
        }

        // Each finished child is counted; the parent waits for the last.
        for (done, key) in [(1, "a"), (2, "b")] {
            gates.open(key);
            wait_for_status(&manager, children[done - 1].id, TaskStatus::Completed).await;
            let row = task_row(&manager, parent).await;
            assert_eq!(row.status, TaskStatus::Suspended);
            assert_eq!(row.pending_children, 3 - done as i64);
            assert_eq!(row.total_children, 3);
            assert_eq!(row.stage, 0);
        }
        assert_eq!(stages.snapshot(), [0]);

        gates.open("c");
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!(3)));
        assert_eq!(done.stage, 1);
        assert_eq!(done.attempt, 2);
        assert_eq!(done.pending_children, 0);
        assert_eq!(done.total_children, 3);
        assert_eq!(done.suspend_reason, None);
        assert!(done.finished_at.is_some());
        assert_eq!(stages.snapshot(), [0, 1]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn each_stage_sees_the_results_of_the_stage_before_in_child_id_order_and_its_context(db) {
        let manager = db.manager().await;
        let child_views = Recorder::new();
        let child = |factor: i64| {
            let child_views = child_views.clone();
            move |task: Task| {
                let child_views = child_views.clone();
                async move {
                    child_views.push((
                        task.context().map(<[u8]>::to_vec),
                        task.child_results().len(),
                    ));
                    let n: i64 = task.payload()?;
                    Ok::<_, BoxError>(Step::done(json!(n * factor)))
                }
            }
        };
        manager.register("double", child(2))?;
        manager.register("triple", child(3))?;
        let seen = Recorder::new();
        manager.register("parent", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    seen.push(Seen::of(&task));
                    Ok::<_, BoxError>(match task.stage() {
                        0 => Step::children([
                            Child::new("triple", &3),
                            Child::new("double", &1),
                            Child::new("triple", &5),
                        ])
                        .context(b"first".to_vec()),
                        1 => {
                            Step::children([Child::new("double", &10)]).context(b"second".to_vec())
                        }
                        _ => {
                            let sum: i64 = task
                                .child_results()
                                .iter()
                                .filter_map(|r| r.result.as_ref().and_then(|v| v.as_i64()))
                                .sum();
                            Step::done(json!({ "stage": task.stage(), "sum": sum }))
                        }
                    })
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "stage": 2, "sum": 20 })));
        assert_eq!(done.stage, 2);
        assert_eq!(done.total_children, 4);
        assert_eq!(done.attempt, 3);

        let children = manager.get_children(parent).await?;
        let ids = ids_of(&children);
        assert_eq!(
            children.iter().map(|c| c.parent_stage).collect::<Vec<_>>(),
            [Some(0), Some(0), Some(0), Some(1)]
        );
        assert_eq!(
            seen.snapshot(),
            [
                saw(1, 0, None, vec![]),
                saw(
                    2,
                    1,
                    Some(&b"first"[..]),
                    vec![
                        completed(ids[0], "triple", json!(9)),
                        completed(ids[1], "double", json!(2)),
                        completed(ids[2], "triple", json!(15)),
                    ]
                ),
                saw(
                    3,
                    2,
                    Some(&b"second"[..]),
                    vec![completed(ids[3], "double", json!(20))]
                ),
            ]
        );
        // Children never inherit their parent's context.
        assert_eq!(child_views.snapshot(), vec![(None, 0); 4]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn an_empty_set_of_children_moves_the_parent_to_its_next_stage_at_once(db) {
        let manager = db.manager().await;
        let seen = Recorder::new();
        manager.register("parent", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    seen.push(Seen::of(&task));
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(
                            Step::children(Vec::<Child>::new()).context(b"kept".to_vec()),
                        );
                    }
                    Ok(Step::done("next stage"))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("next stage")));
        assert_eq!(done.stage, 1);
        assert_eq!(done.attempt, 2);
        assert_eq!(done.total_children, 0);
        assert_eq!(done.pending_children, 0);
        assert_eq!(done.retry_count, 0);
        assert!(manager.get_children(parent).await?.is_empty());
        assert_eq!(
            seen.snapshot(),
            [
                saw(1, 0, None, vec![]),
                saw(2, 1, Some(&b"kept"[..]), vec![]),
            ]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn children_take_their_options_from_their_definition_then_their_handler_then_the_manager(db) {
        let manager = db
            .manager_with(|b| {
                b.timeout(Duration::from_secs(60))
                    .max_attempts(5)
                    .retry_interval(Duration::from_secs(9))
            })
            .await;
        let done = |_task: Task| async { Ok::<_, BoxError>(Step::done(())) };
        manager.register_with(
            "configured",
            done,
            HandlerOptions::new()
                .priority(7)
                .timeout(Duration::from_secs(30))
                .max_attempts(4),
        )?;
        manager.register("plain", done)?;
        manager.register("parent", |task: Task| async move {
            if task.stage() == 0 {
                return Ok::<_, BoxError>(Step::children([
                    Child::new("configured", &0),
                    Child::new("plain", &1),
                    Child::new("configured", &2)
                        .priority(-2)
                        .tag("explicit")
                        .timeout(Duration::from_millis(1500))
                        .max_attempts(2)
                        .retry_interval(Duration::from_millis(250)),
                    Child::new("plain", &3).priority(0),
                ]));
            }
            Ok(Step::done(()))
        })?;
        manager.start().await?;
        let parent = manager
            .submit_with(
                "parent",
                &(),
                TaskOptions::new()
                    .priority(3)
                    .tag("parent-tag")
                    .timeout(Duration::from_secs(5))
                    .max_attempts(1)
                    .retry_interval(Duration::from_secs(1)),
            )
            .await?;
        wait_for_status(&manager, parent, TaskStatus::Completed).await;
        let options: Vec<_> = manager
            .get_children(parent)
            .await?
            .into_iter()
            .map(|c| {
                (
                    c.priority,
                    c.tag,
                    c.timeout,
                    c.max_attempts,
                    c.retry_interval,
                )
            })
            .collect();
        let secs = Duration::from_secs;
        assert_eq!(
            options,
            [
                // The handler's options, then the manager's (not the parent's).
                (7, None, secs(30), 4, secs(9)),
                // No handler options: the manager's; priority is the parent's.
                (3, None, secs(60), 5, secs(9)),
                // The definition's own options win.
                (
                    -2,
                    Some("explicit".to_owned()),
                    Duration::from_millis(1500),
                    2,
                    Duration::from_millis(250)
                ),
                // An explicit priority of 0 beats the parent's.
                (0, None, secs(60), 5, secs(9)),
            ]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn an_invalid_child_fails_the_parents_attempt_and_no_child_is_created(db) {
        let manager = db.manager().await;
        let ran = Recorder::new();
        manager.register("ok", {
            let ran = ran.clone();
            move |task: Task| {
                let ran = ran.clone();
                async move {
                    ran.push(task.id());
                    Ok::<_, BoxError>(Step::done(()))
                }
            }
        })?;
        let bad_child = |case: u32| match case {
            0 => Child::new("", &1),
            1 => Child::new(" padded", &1),
            2 => Child::new("nobody", &1),
            3 => Child::new("ok", &HashMap::from([((1, 2), 3)])),
            4 => Child::new("ok", &1).max_attempts(0),
            5 => Child::new("ok", &1).timeout(Duration::ZERO),
            6 => Child::new("ok", &1).priority(1001),
            _ => Child::new("ok", &1).tag(""),
        };
        let expected = [
            r#"invalid children: child 1 (""): name must not be empty"#,
            r#"invalid children: child 1 (" padded"): name must not start or end with whitespace, got " padded""#,
            r#"invalid children: child 1 ("nobody"): no handler is registered for this name"#,
            r#"invalid children: child 1 ("ok"): payload could not be serialised: key must be a string"#,
            r#"invalid children: child 1 ("ok"): max_attempts must be at least 1"#,
            r#"invalid children: child 1 ("ok"): invalid timeout: must be greater than zero"#,
            r#"invalid children: child 1 ("ok"): invalid priority: must be between -1000 and 1000, got 1001"#,
            r#"invalid children: child 1 ("ok"): tag must not be empty"#,
        ];
        manager.register("parent", move |task: Task| async move {
            let case: u32 = task.payload()?;
            // A valid child first: nothing of the step may be written.
            Ok::<_, BoxError>(Step::children([Child::new("ok", &0), bad_child(case)]))
        })?;
        manager.start().await?;
        let mut parents = Vec::new();
        for case in 0..expected.len() as u32 {
            let options = TaskOptions::new().max_attempts(1);
            parents.push(manager.submit_with("parent", &case, options).await?);
        }
        for (parent, error) in parents.iter().zip(expected) {
            let row = wait_for_status(&manager, *parent, TaskStatus::PermanentlyFailed).await;
            assert_eq!(row.error.as_deref(), Some(error), "parent {parent}");
            assert_eq!(row.stage, 0);
            assert_eq!(row.attempt, 1);
            assert_eq!(row.total_children, 0);
            assert_eq!(row.pending_children, 0);
            assert_eq!(row.suspend_reason, None);
            assert!(row.finished_at.is_some());
            assert!(manager.get_children(*parent).await?.is_empty());
        }
        assert!(manager
            .get_tasks(TaskFilter::new().name("ok"))
            .await?
            .is_empty());
        assert!(ran.is_empty());
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_parent_whose_children_were_invalid_is_retried_like_any_failed_attempt(db) {
        let manager = db.manager().await;
        manager.register("square", square())?;
        let seen = Recorder::new();
        manager.register_with(
            "parent",
            {
                let seen = seen.clone();
                move |task: Task| {
                    let seen = seen.clone();
                    async move {
                        seen.push((task.attempt(), task.stage(), task.retry_count()));
                        Ok::<_, BoxError>(match (task.stage(), task.retry_count()) {
                            (0, 0) => Step::children([Child::new("nobody", &2)]),
                            (0, _) => Step::children([Child::new("square", &2)]),
                            _ => Step::done(
                                task.child_results()[0].result.clone().unwrap_or_default(),
                            ),
                        })
                    }
                }
            },
            HandlerOptions::new().max_attempts(2),
        )?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!(4)));
        assert_eq!(done.stage, 1);
        assert_eq!(done.attempt, 3);
        assert_eq!(done.total_children, 1);
        // The resumed stage starts with a fresh retry budget; the error of
        // the failed attempt is kept.
        assert_eq!(done.retry_count, 0);
        assert_eq!(
            done.error.as_deref(),
            Some(r#"invalid children: child 0 ("nobody"): no handler is registered for this name"#)
        );
        assert_eq!(seen.snapshot(), [(1, 0, 0), (2, 0, 1), (3, 1, 0)]);
        assert_eq!(manager.get_children(parent).await?.len(), 1);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_permanently_failed_child_fails_its_parent_at_once_and_cancels_the_other_descendants(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let resumed = Recorder::new();
        manager.register("fails", fails_when_told(&gates, "boom"))?;
        manager.register("hangs", hangs(&started, &dropped))?;
        manager.register("spawner", middle(&resumed))?;
        manager.register("parent", {
            let resumed = resumed.clone();
            move |task: Task| {
                let resumed = resumed.clone();
                async move {
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(Step::children([
                            Child::new("fails", &()).max_attempts(1),
                            Child::new("hangs", &()),
                            Child::new("spawner", &["hangs"]),
                        ]));
                    }
                    resumed.push(task.id());
                    Ok(Step::done("must not happen"))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        // The sibling and the grandchild run before the failure.
        started
            .wait_len("the sibling and the grandchild to start", 2)
            .await;
        let children = manager.get_children(parent).await?;
        let [failing, sibling, spawner] = [children[0].id, children[1].id, children[2].id];
        let grandchild = manager.get_children(spawner).await?[0].id;

        gates.open("fail");
        let failed = wait_for_status(&manager, parent, TaskStatus::PermanentlyFailed).await;
        assert_eq!(
            failed.error,
            Some(format!("child task {failing} (fails) failed: boom"))
        );
        assert_eq!(failed.stage, 0);
        assert_eq!(failed.attempt, 1);
        assert_eq!(failed.suspend_reason, None);
        assert!(failed.finished_at.is_some());

        let child = task_row(&manager, failing).await;
        assert_eq!(
            (child.status, child.error.as_deref()),
            (TaskStatus::PermanentlyFailed, Some("boom"))
        );
        let cancelled = format!("cancelled: sibling task {failing} failed");
        for id in [sibling, spawner, grandchild] {
            let row = task_row(&manager, id).await;
            assert_eq!(row.status, TaskStatus::PermanentlyFailed, "task {id}");
            assert_eq!(row.error.as_deref(), Some(cancelled.as_str()), "task {id}");
            assert!(row.finished_at.is_some(), "task {id}");
        }
        // The running sibling and grandchild were stopped.
        dropped.wait("both hanging attempts to be dropped", 2).await;
        wait_for_running_count(&manager, 0).await;
        assert_eq!(started.len(), 2);
        assert!(
            resumed.is_empty(),
            "a failed parent or cancelled spawner resumed"
        );
        let workflow = manager.get_workflow(parent).await?;
        assert_eq!(workflow.len(), 5);
        assert!(workflow
            .iter()
            .all(|t| t.status == TaskStatus::PermanentlyFailed));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_child_that_fails_with_attempts_left_does_not_fail_its_parent(db) {
        let manager = db.manager().await;
        manager.register("flaky", |task: Task| async move {
            if task.attempt() == 1 {
                return Err::<Step, BoxError>("first try fails".into());
            }
            Ok(Step::done(json!({ "attempt": task.attempt() })))
        })?;
        let seen = Recorder::new();
        manager.register("parent", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(Step::children([
                            Child::new("flaky", &()).max_attempts(2)
                        ]));
                    }
                    seen.push(task.child_results().to_vec());
                    Ok(Step::done("all good"))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("all good")));
        assert_eq!(done.error, None);
        let child = manager.get_children(parent).await?.remove(0);
        assert_eq!(child.status, TaskStatus::Completed);
        assert_eq!((child.attempt, child.retry_count), (2, 1));
        assert_eq!(child.error.as_deref(), Some("first try fails"));
        // The completed child's outcome is its result; the earlier error is
        // not part of it.
        assert_eq!(
            seen.snapshot(),
            [vec![completed(child.id, "flaky", json!({ "attempt": 2 }))]]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn under_the_resume_policy_a_parent_waits_for_all_children_and_sees_every_outcome(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("ok", gated(&gates))?;
        manager.register("flaky", |task: Task| async move {
            Err::<Step, BoxError>(format!("boom on attempt {}", task.attempt()).into())
        })?;
        let seen = Recorder::new();
        manager.register("parent", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(
                            Step::children([
                                Child::new("ok", "first"),
                                Child::new("flaky", &()).max_attempts(2),
                                Child::new("ok", "last"),
                            ])
                            .on_child_failure(ChildFailure::Resume),
                        );
                    }
                    seen.push(task.child_results().to_vec());
                    let ok = task.child_results().iter().filter(|r| r.is_ok()).count();
                    Ok(Step::done(json!({ "ok": ok })))
                }
            }
        })?;
        gates.open("first");
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        wait_for_status(&manager, parent, TaskStatus::Suspended).await;
        let children = ids_of(&manager.get_children(parent).await?);
        let flaky = wait_for_status(&manager, children[1], TaskStatus::PermanentlyFailed).await;
        assert_eq!(flaky.attempt, 2);
        wait_for_status(&manager, children[0], TaskStatus::Completed).await;

        // The failure neither fails the parent nor cancels the sibling.
        let waiting = task_row(&manager, parent).await;
        assert_eq!(waiting.status, TaskStatus::Suspended);
        assert_eq!(waiting.pending_children, 1);
        assert_eq!(waiting.error, None);
        wait_for_status(&manager, children[2], TaskStatus::Running).await;

        gates.open("last");
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "ok": 2 })));
        assert_eq!(done.stage, 1);
        assert_eq!(done.error, None);
        assert_eq!(
            seen.snapshot(),
            [vec![
                completed(children[0], "ok", json!("first")),
                failed(children[1], "flaky", "boom on attempt 2".to_owned()),
                completed(children[2], "ok", json!("last")),
            ]]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn completion_travels_up_a_three_level_workflow(db) {
        let manager = db.manager().await;
        manager.register("leaf", square())?;
        let middle_seen = Recorder::new();
        manager.register("sum", {
            let middle_seen = middle_seen.clone();
            move |task: Task| {
                let middle_seen = middle_seen.clone();
                async move {
                    let ns: Vec<i64> = task.payload()?;
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(
                            Step::children(ns.iter().map(|n| Child::new("leaf", n)))
                                .context(format!("middle {}", ns[0]).into_bytes()),
                        );
                    }
                    middle_seen.push(Seen::of(&task));
                    let sum: i64 = task
                        .child_results()
                        .iter()
                        .filter_map(|r| r.result.as_ref().and_then(|v| v.as_i64()))
                        .sum();
                    Ok(Step::done(json!(sum)))
                }
            }
        })?;
        let root_seen = Recorder::new();
        manager.register("root", {
            let root_seen = root_seen.clone();
            move |task: Task| {
                let root_seen = root_seen.clone();
                async move {
                    if task.stage() == 0 {
                        let groups: Vec<Vec<i64>> = task.payload()?;
                        return Ok::<_, BoxError>(
                            Step::children(groups.iter().map(|g| Child::new("sum", g)))
                                .context(b"root".to_vec()),
                        );
                    }
                    root_seen.push(Seen::of(&task));
                    let parts: Vec<_> = task
                        .child_results()
                        .iter()
                        .map(|r| r.result.clone())
                        .collect();
                    let total: i64 = parts.iter().flatten().filter_map(|v| v.as_i64()).sum();
                    Ok(Step::done(json!({ "parts": parts, "total": total })))
                }
            }
        })?;
        manager.start().await?;
        let root = manager.submit("root", &[[1, 2], [3, 4]]).await?;
        let done = wait_for_status(&manager, root, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "parts": [5, 25], "total": 30 })));
        assert_eq!(done.stage, 1);
        assert_eq!(done.total_children, 2);

        let middles = manager.get_children(root).await?;
        let middle_ids = ids_of(&middles);
        assert_eq!(middles.len(), 2);
        let mut leaves = Vec::new();
        for (middle, sum) in middles.iter().zip([5, 25]) {
            assert_eq!(middle.status, TaskStatus::Completed);
            assert_eq!(middle.result, Some(json!(sum)));
            assert_eq!(middle.stage, 1);
            assert_eq!((middle.parent_id, middle.root_id), (Some(root), Some(root)));
            let children = manager.get_children(middle.id).await?;
            assert_eq!(children.len(), 2);
            for leaf in &children {
                assert_eq!(leaf.status, TaskStatus::Completed);
                // Grandchildren belong to the top-level task's workflow.
                assert_eq!(leaf.root_id, Some(root));
                assert_eq!(leaf.parent_id, Some(middle.id));
                assert_eq!(leaf.parent_stage, Some(0));
            }
            leaves.push(ids_of(&children));
        }
        assert_eq!(
            root_seen.snapshot(),
            [saw(
                2,
                1,
                Some(&b"root"[..]),
                vec![
                    completed(middle_ids[0], "sum", json!(5)),
                    completed(middle_ids[1], "sum", json!(25)),
                ]
            )]
        );
        // Each middle sees its own context, not the root's.
        let mut seen = middle_seen.snapshot();
        seen.sort_by(|x, y| x.context.cmp(&y.context));
        assert_eq!(
            seen,
            [
                saw(
                    2,
                    1,
                    Some(&b"middle 1"[..]),
                    vec![
                        completed(leaves[0][0], "leaf", json!(1)),
                        completed(leaves[0][1], "leaf", json!(4))
                    ]
                ),
                saw(
                    2,
                    1,
                    Some(&b"middle 3"[..]),
                    vec![
                        completed(leaves[1][0], "leaf", json!(9)),
                        completed(leaves[1][1], "leaf", json!(16))
                    ]
                ),
            ]
        );
        assert_eq!(manager.get_workflow(root).await?.len(), 7);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_leaf_failure_fails_every_ancestor_and_cancels_every_other_task_under_the_default_policy(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let resumed = Recorder::new();
        manager.register("fails", fails_when_told(&gates, "leaf broke"))?;
        manager.register("hangs", hangs(&started, &dropped))?;
        manager.register("middle", middle(&resumed))?;
        manager.register("root", {
            let resumed = resumed.clone();
            move |task: Task| {
                let resumed = resumed.clone();
                async move {
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(Step::children([
                            Child::new("middle", &["fails", "hangs"]),
                            Child::new("middle", &["hangs"]),
                        ]));
                    }
                    resumed.push(task.id());
                    Ok(Step::done("must not happen"))
                }
            }
        })?;
        manager.start().await?;
        let root = manager.submit("root", &()).await?;
        started.wait_len("both hanging leaves to start", 2).await;
        let middles = ids_of(&manager.get_children(root).await?);
        let [failing_middle, other_middle] = [middles[0], middles[1]];
        let leaves = ids_of(&manager.get_children(failing_middle).await?);
        let [failing_leaf, sibling_leaf] = [leaves[0], leaves[1]];
        let cousin_leaf = manager.get_children(other_middle).await?[0].id;
        assert!(task_row(&manager, failing_leaf)
            .await
            .status
            .is_unfinished());

        gates.open("fail");
        let root_row = wait_for_status(&manager, root, TaskStatus::PermanentlyFailed).await;
        let middle_error = format!("child task {failing_leaf} (fails) failed: leaf broke");
        assert_eq!(
            root_row.error,
            Some(format!(
                "child task {failing_middle} (middle) failed: {middle_error}"
            ))
        );
        let expect = |id: TaskId, error: String| {
            let manager = manager.clone();
            async move {
                let row = task_row(&manager, id).await;
                assert_eq!(row.status, TaskStatus::PermanentlyFailed, "task {id}");
                assert_eq!(row.error, Some(error), "task {id}");
                assert!(row.finished_at.is_some(), "task {id}");
            }
        };
        expect(failing_leaf, "leaf broke".to_owned()).await;
        expect(failing_middle, middle_error).await;
        expect(
            sibling_leaf,
            format!("cancelled: sibling task {failing_leaf} failed"),
        )
        .await;
        let root_siblings = format!("cancelled: sibling task {failing_middle} failed");
        expect(other_middle, root_siblings.clone()).await;
        expect(cousin_leaf, root_siblings).await;

        dropped.wait("both hanging leaves to be dropped", 2).await;
        wait_for_running_count(&manager, 0).await;
        assert!(resumed.is_empty(), "a failed task resumed");
        let workflow = manager.get_workflow(root).await?;
        assert_eq!(workflow.len(), 6);
        assert!(workflow
            .iter()
            .all(|t| t.status == TaskStatus::PermanentlyFailed));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn under_the_resume_policy_at_the_root_the_root_resumes_with_the_failed_middles_error(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        let started = Recorder::new();
        let dropped = DropFlag::new();
        let middles_resumed = Recorder::new();
        manager.register("fails", fails_when_told(&gates, "leaf broke"))?;
        manager.register("hangs", hangs(&started, &dropped))?;
        manager.register("ok", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("fine"))
        })?;
        manager.register("middle", middle(&middles_resumed))?;
        let seen = Recorder::new();
        manager.register("root", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(
                            Step::children([
                                Child::new("middle", &["fails", "hangs"]),
                                Child::new("middle", &["ok"]),
                            ])
                            .on_child_failure(ChildFailure::Resume),
                        );
                    }
                    seen.push(task.child_results().to_vec());
                    Ok(Step::done("handled"))
                }
            }
        })?;
        manager.start().await?;
        let root = manager.submit("root", &()).await?;
        started.wait_len("the hanging leaf to start", 1).await;
        let middles = ids_of(&manager.get_children(root).await?);
        let leaves = ids_of(&manager.get_children(middles[0]).await?);

        gates.open("fail");
        let done = wait_for_status(&manager, root, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("handled")));
        assert_eq!(done.stage, 1);
        let middle_error = format!("child task {} (fails) failed: leaf broke", leaves[0]);
        assert_eq!(
            seen.snapshot(),
            [vec![
                failed(middles[0], "middle", middle_error.clone()),
                completed(middles[1], "middle", json!(["fine"])),
            ]]
        );
        let failed_middle = task_row(&manager, middles[0]).await;
        assert_eq!(failed_middle.status, TaskStatus::PermanentlyFailed);
        assert_eq!(failed_middle.error, Some(middle_error));
        let hanging = task_row(&manager, leaves[1]).await;
        assert_eq!(hanging.status, TaskStatus::PermanentlyFailed);
        assert_eq!(
            hanging.error,
            Some(format!("cancelled: sibling task {} failed", leaves[0]))
        );
        dropped.wait("the hanging leaf to be dropped", 1).await;
        // Only the healthy middle resumed.
        assert_eq!(middles_resumed.snapshot(), [middles[1]]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn children_finishing_at_once_on_two_workers_resume_their_parent_exactly_once(db) {
        if !db.shareable() {
            // Two managers cannot share an in-memory database.
            return Ok(());
        }
        const PARENTS: usize = 20;
        let gate = Gate::new();
        let barrier = Arc::new(tokio::sync::Barrier::new(2 * PARENTS));
        let spawned = Recorder::new();
        let resumed = Recorder::new();
        let children_ran = Recorder::new();
        let parent = |worker: &'static str| {
            let (gate, spawned, resumed) = (gate.clone(), spawned.clone(), resumed.clone());
            move |task: Task| {
                let (gate, spawned, resumed) = (gate.clone(), spawned.clone(), resumed.clone());
                async move {
                    if task.stage() == 0 {
                        spawned.push(task.id());
                        gate.wait().await;
                        return Ok::<_, BoxError>(Step::children([
                            Child::new("left", &task.id()),
                            Child::new("right", &task.id()),
                        ]));
                    }
                    let statuses: Vec<_> = task.child_results().iter().map(|r| r.status).collect();
                    resumed.push((task.id(), task.stage(), worker, statuses));
                    Ok(Step::done(json!(task.stage())))
                }
            }
        };
        let child = |side: &'static str,
                     worker: &'static str,
                     barrier: Option<Arc<tokio::sync::Barrier>>| {
            let children_ran = children_ran.clone();
            move |task: Task| {
                let (children_ran, barrier) = (children_ran.clone(), barrier.clone());
                async move {
                    if let (Some(barrier), 1) = (barrier, task.attempt()) {
                        // Every child of every parent finishes together (a
                        // second attempt, which must not happen, runs
                        // through so that the assertions below report it).
                        barrier.wait().await;
                    }
                    children_ran.push((side, worker, task.payload::<TaskId>()?));
                    Ok::<_, BoxError>(Step::done(side))
                }
            }
        };

        // The spawner runs every parent's first stage, then pauses so that
        // it runs nothing else.
        let spawner = db
            .manager_with(|b| b.worker_id("spawner").max_concurrent_tasks(PARENTS))
            .await;
        spawner.register("parent", parent("spawner"))?;
        spawner.register("left", child("left", "spawner", None))?;
        spawner.register("right", child("right", "spawner", None))?;
        spawner.start().await?;
        let mut parents = Vec::new();
        for _ in 0..PARENTS {
            parents.push(spawner.submit("parent", &()).await?);
        }
        spawned
            .wait_len("every parent's first stage to run", PARENTS)
            .await;
        spawner.pause();
        gate.open();
        let suspended = TaskFilter::new()
            .name("parent")
            .status(TaskStatus::Suspended);
        wait_for_tasks(
            &spawner,
            "every parent to wait for its children",
            suspended,
            PARENTS,
        )
        .await;

        // Worker A runs only left children, worker B only right ones: the
        // two children of each parent finish on two workers at once. Their
        // leases are short (10 heartbeats each), so a live worker that
        // stalls while recording outcomes shows up as a second execution.
        let lease = Duration::from_secs(1);
        let a = db
            .manager_with(|b| {
                b.worker_id("worker-a")
                    .max_concurrent_tasks(2 * PARENTS)
                    .task_heartbeat_timeout(lease)
            })
            .await;
        a.register("parent", parent("worker-a"))?;
        a.register("left", child("left", "worker-a", Some(barrier.clone())))?;
        let b = db
            .manager_with(|b| {
                b.worker_id("worker-b")
                    .max_concurrent_tasks(2 * PARENTS)
                    .task_heartbeat_timeout(lease)
            })
            .await;
        b.register("parent", parent("worker-b"))?;
        b.register("right", child("right", "worker-b", Some(barrier.clone())))?;
        a.start().await?;
        b.start().await?;

        let done = TaskFilter::new()
            .name("parent")
            .status(TaskStatus::Completed);
        wait_for_tasks(&a, "every parent to complete", done, PARENTS).await;
        let mut runs = resumed.snapshot();
        runs.sort_by_key(|run| run.0);
        assert_eq!(runs.len(), PARENTS, "{runs:?}");
        for (run, parent) in runs.iter().zip(&parents) {
            assert_eq!(run.0, *parent);
            assert_eq!(run.1, 1);
            assert_ne!(run.2, "spawner");
            assert_eq!(run.3, [TaskStatus::Completed, TaskStatus::Completed]);
        }
        let mut ran = children_ran.snapshot();
        ran.sort_by_key(|&(side, _, parent)| (parent, side));
        let expected: Vec<_> = parents
            .iter()
            .flat_map(|&p| [("left", "worker-a", p), ("right", "worker-b", p)])
            .collect();
        assert_eq!(ran, expected);
        let mut attempts = 0;
        for parent in &parents {
            let row = task_row(&a, *parent).await;
            assert_eq!(row.stage, 1, "parent {parent}");
            assert_eq!(row.attempt, 2, "parent {parent}");
            assert_eq!(row.total_children, 2, "parent {parent}");
            assert_eq!(row.pending_children, 0, "parent {parent}");
            assert_eq!(row.result, Some(json!(1)), "parent {parent}");
            attempts += row.attempt;
            let children = a.get_children(*parent).await?;
            let workers: Vec<_> = children
                .iter()
                .map(|c| (c.status, c.attempt, c.worker_id.clone()))
                .collect();
            assert_eq!(
                workers,
                [
                    (TaskStatus::Completed, 1, Some("worker-a".to_owned())),
                    (TaskStatus::Completed, 1, Some("worker-b".to_owned())),
                ]
            );
        }
        assert_eq!(attempts, 2 * PARENTS as i64);
        a.stop().await?;
        b.stop().await?;
        spawner.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_retried_parent_reruns_its_current_stage_without_spawning_its_children_again(db) {
        let manager = db.manager().await;
        let squares = Recorder::new();
        manager.register("square", {
            let squares = squares.clone();
            move |task: Task| {
                let squares = squares.clone();
                async move {
                    let n: i64 = task.payload()?;
                    squares.push(n);
                    Ok::<_, BoxError>(Step::done(json!(n * n)))
                }
            }
        })?;
        let seen = Recorder::new();
        manager.register_with(
            "parent",
            {
                let seen = seen.clone();
                move |task: Task| {
                    let seen = seen.clone();
                    async move {
                        seen.push(Seen::of(&task));
                        if task.stage() == 0 {
                            return Ok::<_, BoxError>(
                                Step::children([
                                    Child::new("square", &2),
                                    Child::new("square", &3),
                                ])
                                .context(b"ctx".to_vec()),
                            );
                        }
                        if task.retry_count() == 0 {
                            return Err("flaky".into());
                        }
                        let sum: i64 = task
                            .child_results()
                            .iter()
                            .filter_map(|r| r.result.as_ref().and_then(|v| v.as_i64()))
                            .sum();
                        Ok(Step::done(json!(sum)))
                    }
                }
            },
            HandlerOptions::new().max_attempts(2),
        )?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!(13)));
        assert_eq!(done.stage, 1);
        assert_eq!(done.attempt, 3);
        assert_eq!(done.retry_count, 1);
        assert_eq!(done.error.as_deref(), Some("flaky"));
        assert_eq!(done.total_children, 2);

        let children = manager.get_children(parent).await?;
        let ids = ids_of(&children);
        assert_eq!(ids.len(), 2);
        let mut ran = squares.snapshot();
        ran.sort();
        assert_eq!(ran, [2, 3]);
        let results = vec![
            completed(ids[0], "square", json!(4)),
            completed(ids[1], "square", json!(9)),
        ];
        assert_eq!(
            seen.snapshot(),
            [
                saw(1, 0, None, vec![]),
                saw(2, 1, Some(&b"ctx"[..]), results.clone()),
                saw(3, 1, Some(&b"ctx"[..]), results),
            ]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_parent_resumes_with_the_handler_registered_while_it_waited(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("step", gated(&gates))?;
        let v1_stages = Recorder::new();
        manager.register("parent", {
            let v1_stages = v1_stages.clone();
            move |task: Task| {
                let v1_stages = v1_stages.clone();
                async move {
                    v1_stages.push(task.stage());
                    if task.stage() == 0 {
                        return Ok::<_, BoxError>(Step::children([Child::new("step", "only")]));
                    }
                    Ok(Step::done("v1"))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        wait_for_status(&manager, parent, TaskStatus::Suspended).await;

        manager.register("parent", |task: Task| async move {
            let results: Vec<_> = task
                .child_results()
                .iter()
                .map(|r| r.result.clone())
                .collect();
            Ok::<_, BoxError>(Step::done(
                json!({ "version": 2, "stage": task.stage(), "results": results }),
            ))
        })?;
        gates.open("only");
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        assert_eq!(
            done.result,
            Some(json!({ "version": 2, "stage": 1, "results": ["only"] }))
        );
        assert_eq!(v1_stages.snapshot(), [0]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn workflow_queries_find_children_of_every_stage_and_every_descendant(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("step", gated(&gates))?;
        manager.register("middle", |task: Task| async move {
            if task.stage() == 0 {
                return Ok::<_, BoxError>(Step::children([Child::new("step", "c")]));
            }
            Ok(Step::done("middle done"))
        })?;
        manager.register("root", |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children([Child::new("step", "a"), Child::new("middle", &())]),
                1 => Step::children([Child::new("step", "b")]),
                _ => Step::done("root done"),
            })
        })?;
        gates.open("a");
        gates.open("c");
        manager.start().await?;
        let root = manager.submit("root", &()).await?;
        let other = manager.submit("step", "other").await?;

        // The root waits at stage 1 for its second-stage child.
        let root_row = wait_until("the root to wait at stage 1", || async {
            let row = task_row(&manager, root).await;
            (row.status == TaskStatus::Suspended && row.stage == 1).then_some(row)
        })
        .await;
        assert_eq!(
            root_row.suspend_reason.as_deref(),
            Some("awaiting_children")
        );
        assert_eq!(root_row.total_children, 3);
        assert_eq!(root_row.pending_children, 1);
        let children = manager.get_children(root).await?;
        assert_eq!(
            children
                .iter()
                .map(|c| (c.name.as_str(), c.parent_stage))
                .collect::<Vec<_>>(),
            [("step", Some(0)), ("middle", Some(0)), ("step", Some(1))]
        );
        let [a, middle, b] = [children[0].id, children[1].id, children[2].id];
        wait_for_status(&manager, b, TaskStatus::Running).await;
        wait_for_status(&manager, other, TaskStatus::Running).await;
        let grandchildren = manager.get_children(middle).await?;
        assert_eq!(grandchildren.len(), 1);
        let c = grandchildren[0].id;
        assert_eq!(grandchildren[0].root_id, Some(root));
        assert_eq!(grandchildren[0].parent_id, Some(middle));

        let list = |filter: TaskFilter| {
            let manager = manager.clone();
            async move { manager.get_tasks(filter).await.map(|rows| ids_of(&rows)) }
        };
        assert_eq!(
            ids_of(&manager.get_workflow(root).await?),
            [root, a, middle, c, b]
        );
        assert_eq!(
            list(TaskFilter::new().workflow(root)).await?,
            [root, a, middle, c, b]
        );
        assert_eq!(ids_of(&manager.get_workflow(other).await?), [other]);
        assert_eq!(list(TaskFilter::new().parent(root)).await?, [a, middle, b]);
        assert_eq!(list(TaskFilter::new().parent(middle)).await?, [c]);
        assert_eq!(list(TaskFilter::new().parent(other)).await?, []);
        assert_eq!(
            list(
                TaskFilter::new()
                    .workflow(root)
                    .status(TaskStatus::Completed)
            )
            .await?,
            [a, middle, c]
        );
        assert_eq!(
            list(TaskFilter::new().parent(root).name("step")).await?,
            [a, b]
        );
        assert_eq!(
            list(TaskFilter::new().suspend_reason("awaiting_children")).await?,
            [root]
        );
        assert_eq!(
            list(TaskFilter::new().workflow(root).status(TaskStatus::Running)).await?,
            [b]
        );
        let mut running = list(TaskFilter::new().status(TaskStatus::Running)).await?;
        running.sort();
        assert_eq!(running, [other.min(b), other.max(b)]);

        gates.open("b");
        gates.open("other");
        let done = wait_for_status(&manager, root, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("root done")));
        assert_eq!(done.stage, 2);
        assert_eq!(
            list(TaskFilter::new().suspend_reason("awaiting_children")).await?,
            []
        );
        assert_eq!(
            list(
                TaskFilter::new()
                    .workflow(root)
                    .status(TaskStatus::Completed)
            )
            .await?,
            [root, a, middle, c, b]
        );
        manager.stop().await?;
        Ok(())
    }
}
