//! Retention and deletion of history: `run_retention` deletes expired
//! finished workflows whole with their events and attempts, keeps young
//! and unfinished ones, honours its statuses and batch size, refuses
//! invalid policies (and a builder refuses them too); the automatic pass
//! deletes by itself; `delete_task` / `delete_tasks` take the history of
//! what they delete with them.

#[macro_use]
mod common;

use std::time::Duration;

use fib_flow::{
    AttemptQuery, BoxError, Child, Error, EventQuery, EventType, RetentionPolicy, RetentionReport,
    Step, Task, TaskFilter, TaskId, TaskManager, TaskOptions, TaskStatus,
};
use serde_json::json;

use common::{
    attempts_of, audit_manager_with, events_of, invalid_field, ms, task_row, wait_clock_past,
    wait_for_status, wait_until, Gate,
};

use TaskStatus as S;

/// What retention or a delete should remove with a set of tasks: their
/// rows, events and attempts, counted now.
async fn history_of(manager: &TaskManager, ids: &[TaskId]) -> RetentionReport {
    let mut report = RetentionReport::default();
    for id in ids {
        report.tasks_deleted += 1;
        report.events_deleted += events_of(manager, *id).await.len() as u64;
        report.attempts_deleted += attempts_of(manager, *id).await.len() as u64;
    }
    report
}

/// Asserts that nothing of task `id` is left: no row, no events, no
/// attempts, an empty audit.
async fn assert_gone(manager: &TaskManager, id: TaskId) {
    assert_eq!(
        manager.get_task(id).await.expect("get_task"),
        None,
        "task {id}"
    );
    let events = manager
        .task_events(id, EventQuery::new())
        .await
        .expect("task_events");
    assert_eq!((events.total, events.items.len()), (0, 0), "events of {id}");
    let attempts = manager
        .task_attempts(id, AttemptQuery::new())
        .await
        .expect("task_attempts");
    assert_eq!(
        (attempts.total, attempts.items.len()),
        (0, 0),
        "attempts of {id}"
    );
    let audit = manager
        .task_audit(id, EventQuery::new(), AttemptQuery::new())
        .await
        .expect("task_audit");
    assert!(audit.task.is_none() && audit.events.items.is_empty());
}

/// Waits until every task of `ids` was last active more than a few
/// milliseconds ago.
async fn wait_until_idle(manager: &TaskManager, ids: &[TaskId]) {
    for id in ids {
        let at = task_row(manager, *id)
            .await
            .last_active_at
            .expect("a task that changed status");
        wait_clock_past(at, ms(5)).await;
    }
}

/// Registers `ok` (completes), `bad` (fails), `gated` (waits for `gate`),
/// `flow` (stage 0: two `ok` children) and `waiting` (stage 0: an `ok`
/// and a `gated` child).
fn register_all(manager: &TaskManager, gate: &Gate) -> anyhow::Result<()> {
    manager.register("ok", |_task: Task| async move {
        Ok::<_, BoxError>(Step::done(json!(1)))
    })?;
    manager.register("bad", |_task: Task| async move {
        Err::<Step, BoxError>("broken on purpose".into())
    })?;
    manager.register("gated", {
        let gate = gate.clone();
        move |_task: Task| {
            let gate = gate.clone();
            async move {
                gate.wait().await;
                Ok::<_, BoxError>(Step::done(json!("released")))
            }
        }
    })?;
    for (name, second) in [("flow", "ok"), ("waiting", "gated")] {
        manager.register(name, move |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children([Child::new("ok", &()), Child::new(second, &())]),
                _ => Step::done(json!("joined")),
            })
        })?;
    }
    Ok(())
}

backend_test! {
    async fn run_retention_deletes_expired_finished_workflows_whole_and_keeps_the_rest(db) {
        let manager = audit_manager_with(&db, |b| b.no_retention()).await;
        let gate = Gate::new();
        register_all(&manager, &gate)?;

        // Submitted before the start: no submit races the engine's own
        // writes (MySQL's snapshot update can deadlock them).
        // Finished: a workflow, a completed task, a failed one.
        let flow = manager.submit("flow", &()).await?;
        let ok = manager.submit("ok", &()).await?;
        let bad = manager
            .submit_with("bad", &(), TaskOptions::new().max_attempts(1))
            .await?;
        // Unfinished: pending, running, a suspended workflow with a
        // completed and a running child, paused.
        let pending = manager.submit("nobody", &()).await?;
        let running = manager.submit("gated", &()).await?;
        let waiting = manager.submit("waiting", &()).await?;
        let paused = manager.submit("nobody", &()).await?;
        manager.pause_task(paused).await?;
        manager.start().await?;

        wait_for_status(&manager, flow, S::Completed).await;
        wait_for_status(&manager, ok, S::Completed).await;
        wait_for_status(&manager, bad, S::PermanentlyFailed).await;
        wait_for_status(&manager, running, S::Running).await;
        let waiting_children = wait_until("the waiting workflow's children to settle", || async {
            let children = manager.get_children(waiting).await.expect("children");
            let settled = children.len() == 2
                && children.iter().any(|c| c.status == S::Completed)
                && children.iter().any(|c| c.status == S::Running);
            settled.then(|| common::ids_of(&children))
        })
        .await;
        let flow_tasks = common::ids_of(&manager.get_workflow(flow).await?);
        assert_eq!(flow_tasks.len(), 3);
        let mut finished = flow_tasks.clone();
        finished.extend([ok, bad]);
        let mut kept = vec![pending, running, waiting, paused];
        kept.extend(&waiting_children);
        wait_until_idle(&manager, &[flow, ok, bad, paused, waiting_children[0]]).await;
        let kept_history = history_of(&manager, &kept).await;

        // Young: nothing expires within the hour.
        let young = manager
            .run_retention(Some(RetentionPolicy::expire_after(Duration::from_secs(3600))))
            .await?;
        assert_eq!(young, RetentionReport::default());

        let expected = history_of(&manager, &finished).await;
        assert!(expected.attempts_deleted >= 5, "{expected:?}");
        let report = manager
            .run_retention(Some(RetentionPolicy::expire_after(ms(1))))
            .await?;
        assert_eq!(report, expected);
        for id in &finished {
            assert_gone(&manager, *id).await;
        }
        let flow_events = manager.workflow_events(flow, EventQuery::new()).await?;
        assert_eq!(flow_events.total, 0);
        // The rest is untouched, the paused task included (not listed).
        assert_eq!(history_of(&manager, &kept).await, kept_history);
        assert_eq!(task_row(&manager, paused).await.status, S::Paused);

        // Nothing more to delete.
        let again = manager
            .run_retention(Some(RetentionPolicy::expire_after(ms(1))))
            .await?;
        assert_eq!(again, RetentionReport::default());

        // Paused tasks go once the policy lists them.
        let paused_history = history_of(&manager, &[paused]).await;
        let report = manager
            .run_retention(Some(
                RetentionPolicy::expire_after(ms(1)).with_statuses([S::Paused]),
            ))
            .await?;
        assert_eq!(report, paused_history);
        assert_gone(&manager, paused).await;
        for id in [pending, running, waiting] {
            assert!(manager.get_task(id).await?.is_some(), "task {id} kept");
        }
        gate.open();
        wait_for_status(&manager, waiting, S::Completed).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn retention_runs_batch_after_batch_until_nothing_is_left(db) {
        let manager = audit_manager_with(&db, |b| b.no_retention()).await;
        register_all(&manager, &Gate::new())?;
        manager.start().await?;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(manager.submit("ok", &()).await?);
        }
        for id in &ids {
            wait_for_status(&manager, *id, S::Completed).await;
        }
        wait_until_idle(&manager, &ids).await;
        let expected = history_of(&manager, &ids).await;
        let report = manager
            .run_retention(Some(RetentionPolicy::expire_after(ms(1)).with_batch_size(2)))
            .await?;
        assert_eq!(report, expected);
        assert_eq!(report.tasks_deleted, 5);
        for id in &ids {
            assert_gone(&manager, *id).await;
        }
        manager.stop().await?;
        Ok(())
    }
}

/// Every invalid policy, with the field its error names.
fn invalid_policies() -> Vec<(RetentionPolicy, &'static str)> {
    let base = || RetentionPolicy::expire_after(ms(1));
    let mut policies = vec![
        (
            RetentionPolicy::expire_after(Duration::ZERO),
            "retention.expire_after",
        ),
        (
            RetentionPolicy::expire_after(Duration::from_secs(101 * 365 * 24 * 3600)),
            "retention.expire_after",
        ),
        (base().with_statuses([]), "retention.statuses"),
        (
            base().with_statuses([S::Completed, S::Running]),
            "retention.statuses",
        ),
        (base().with_batch_size(0), "retention.batch_size"),
        (base().with_batch_size(10_001), "retention.batch_size"),
        (base().with_interval(Duration::ZERO), "retention.interval"),
    ];
    for status in [S::Pending, S::Running, S::Failed, S::Timeout, S::Suspended] {
        policies.push((base().with_statuses([status]), "retention.statuses"));
    }
    policies
}

backend_test! {
    async fn invalid_retention_policies_are_refused_naming_the_field_and_delete_nothing(db) {
        let manager = audit_manager_with(&db, |b| b.no_retention()).await;
        register_all(&manager, &Gate::new())?;
        manager.start().await?;
        let id = manager.submit("ok", &()).await?;
        wait_for_status(&manager, id, S::Completed).await;
        wait_until_idle(&manager, &[id]).await;

        for (policy, field) in invalid_policies() {
            let result = manager.run_retention(Some(policy.clone())).await;
            assert_eq!(invalid_field(result), field, "{policy:?}");
        }
        assert!(manager.get_task(id).await?.is_some(), "nothing was deleted");

        // The edges that are allowed: the largest batch, repeated statuses.
        let edge = RetentionPolicy::expire_after(ms(1))
            .with_batch_size(10_000)
            .with_statuses([S::Completed, S::Completed, S::PermanentlyFailed]);
        let report = manager.run_retention(Some(edge)).await?;
        assert_eq!(report.tasks_deleted, 1);
        assert_gone(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_builder_with_an_invalid_retention_policy_fails_to_build_naming_the_field() {
    let db = common::TestDb::sqlite_memory();
    for (policy, field) in invalid_policies() {
        match db.builder().retention(policy.clone()).build().await {
            Err(Error::Config { field: named, .. }) => assert_eq!(named, field, "{policy:?}"),
            other => panic!("{policy:?}: expected Error::Config, got {other:?}"),
        }
    }
    // A valid one builds, and so does no retention at all.
    let policy = RetentionPolicy::expire_after(ms(1)).with_interval(ms(200));
    let manager = db.builder().retention(policy.clone()).build().await;
    assert_eq!(
        manager.expect("a valid policy").config().retention,
        Some(policy)
    );
    let manager = db.builder().no_retention().build().await;
    assert_eq!(manager.expect("no retention").config().retention, None);
}

backend_test! {
    async fn run_retention_without_a_policy_uses_the_configured_one_or_the_default(db) {
        if !db.shareable() {
            // Two managers share the database.
            return Ok(());
        }
        // Configured: expire after 1 ms (its automatic pass an hour away).
        let configured = RetentionPolicy::expire_after(ms(1)).with_interval(Duration::from_secs(3600));
        let manager = audit_manager_with(&db, |b| b.retention(configured)).await;
        register_all(&manager, &Gate::new())?;
        manager.start().await?;
        let first = manager.submit("ok", &()).await?;
        let second = manager.submit("ok", &()).await?;
        wait_for_status(&manager, first, S::Completed).await;
        wait_for_status(&manager, second, S::Completed).await;
        wait_until_idle(&manager, &[first, second]).await;

        // Retention off: the default policy (a day) deletes nothing young.
        let off = audit_manager_with(&db, |b| b.no_retention()).await;
        assert_eq!(off.run_retention(None).await?, RetentionReport::default());
        assert!(off.get_task(first).await?.is_some());

        let report = manager.run_retention(None).await?;
        assert_eq!(report.tasks_deleted, 2);
        assert_gone(&manager, first).await;
        assert_gone(&manager, second).await;
        off.stop().await?;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn automatic_retention_deletes_an_expired_completed_task_by_itself(db) {
        let policy = RetentionPolicy::expire_after(ms(1)).with_interval(ms(200));
        let manager = audit_manager_with(&db, |b| b.retention(policy)).await;
        register_all(&manager, &Gate::new())?;
        manager.start().await?;
        let pending = manager.submit("nobody", &()).await?;
        let id = manager.submit("ok", &()).await?;
        wait_for_status(&manager, id, S::Completed).await;
        assert!(!attempts_of(&manager, id).await.is_empty());

        wait_until("the automatic pass to delete the completed task", || async {
            manager.get_task(id).await.expect("get_task").is_none().then_some(())
        })
        .await;
        assert_gone(&manager, id).await;
        assert!(manager.get_task(pending).await?.is_some(), "an unfinished task stays");
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn delete_task_takes_the_tasks_events_and_attempts_with_it(db) {
        let manager = audit_manager_with(&db, |b| b.no_retention()).await;
        register_all(&manager, &Gate::new())?;
        manager.start().await?;
        let gone = manager.submit("ok", &()).await?;
        let kept = manager.submit("ok", &()).await?;
        wait_for_status(&manager, gone, S::Completed).await;
        wait_for_status(&manager, kept, S::Completed).await;
        assert_eq!(attempts_of(&manager, gone).await.len(), 1);
        let kept_history = history_of(&manager, &[kept]).await;

        assert!(manager.delete_task(gone).await?);
        assert_gone(&manager, gone).await;
        assert_eq!(history_of(&manager, &[kept]).await, kept_history);
        assert!(!manager.delete_task(gone).await?, "already deleted");
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn delete_tasks_takes_the_history_of_every_task_it_deletes(db) {
        let manager = audit_manager_with(&db, |b| b.no_retention()).await;
        register_all(&manager, &Gate::new())?;
        let tagged = |tag: &str| TaskOptions::new().tag(tag);
        let gone1 = manager.submit_with("ok", &(), tagged("gone")).await?;
        let gone2 = manager.submit_with("bad", &(), tagged("gone").max_attempts(2)).await?;
        let kept = manager.submit_with("ok", &(), tagged("kept")).await?;
        let flow = manager.submit("flow", &()).await?;
        manager.start().await?;
        wait_for_status(&manager, gone1, S::Completed).await;
        wait_for_status(&manager, gone2, S::PermanentlyFailed).await;
        wait_for_status(&manager, kept, S::Completed).await;
        wait_for_status(&manager, flow, S::Completed).await;
        assert_eq!(attempts_of(&manager, gone2).await.len(), 2);
        let kept_history = history_of(&manager, &[kept]).await;

        assert_eq!(manager.delete_tasks(TaskFilter::new().tag("gone")).await?, 2);
        assert_gone(&manager, gone1).await;
        assert_gone(&manager, gone2).await;
        assert_eq!(history_of(&manager, &[kept]).await, kept_history);

        // A whole workflow, its children's history included.
        let flow_tasks = common::ids_of(&manager.get_workflow(flow).await?);
        assert_eq!(manager.delete_tasks(TaskFilter::new().workflow(flow)).await?, 3);
        for id in flow_tasks {
            assert_gone(&manager, id).await;
        }
        let events = manager.workflow_events(flow, EventQuery::new()).await?;
        assert_eq!(events.total, 0);
        let attempts = manager.workflow_attempts(flow, AttemptQuery::new()).await?;
        assert_eq!(attempts.total, 0);
        assert_eq!(history_of(&manager, &[kept]).await, kept_history);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn deleting_a_running_child_leaves_its_parent_with_the_failure_and_no_trace_of_the_child(db) {
        let manager = audit_manager_with(&db, |b| b.no_retention()).await;
        register_all(&manager, &Gate::new())?;
        manager.start().await?;
        let root = manager.submit("waiting", &()).await?;
        let child = wait_until("the gated child to run", || async {
            let children = manager.get_children(root).await.expect("children");
            children
                .into_iter()
                .find(|c| c.name == "gated" && c.status == S::Running)
                .map(|c| c.id)
        })
        .await;
        assert!(manager.delete_task(child).await?);
        let failed = wait_for_status(&manager, root, S::PermanentlyFailed).await;
        assert!(failed.error.is_some_and(|e| e.contains(&child.to_string())));
        assert_gone(&manager, child).await;

        // The parent's history tells of the failure; nothing of the child
        // is left in the workflow's.
        let events = events_of(&manager, root).await;
        let last = events.last().expect("events");
        assert_eq!(last.event_type, EventType::TaskPermanentlyFailed);
        assert_eq!(last.metadata["failed_child_id"], json!(child.get()));
        let all = manager.workflow_events(root, EventQuery::new()).await?;
        assert!(all.items.iter().all(|e| e.task_id != child));
        let attempts = manager.workflow_attempts(root, AttemptQuery::new()).await?;
        assert!(attempts.items.iter().all(|a| a.task_id != child));
        manager.stop().await?;
        Ok(())
    }
}
