//! `workflow_summary` on real small workflows: totals, per-status /
//! outcome / name / stage counts, workers, timing, the root's stage
//! timings, failed tasks (a child failing under `ChildFailure::Resume`, a
//! failure that fails the root), the critical path from the root to its
//! slowest child, and the slowest attempts (running ones last).

#[macro_use]
mod common;

use std::collections::BTreeMap;

use fib_flow::audit::FailedTask;
use fib_flow::{
    AttemptOutcome, BoxError, Child, ChildFailure, Step, Task, TaskAttempt, TaskFilter, TaskId,
    TaskManager, TaskStatus,
};
use serde_json::json;

use common::{
    attempts_of, audit_manager_with, ms, task_row, wait_clock_past, wait_for_running_count,
    wait_for_status, wait_until, Gate,
};

use TaskStatus as S;

fn counts<K: Ord, const N: usize>(pairs: [(K, u64); N]) -> BTreeMap<K, u64> {
    BTreeMap::from(pairs)
}

/// The only child of `parent` named `name`.
async fn child_named(manager: &TaskManager, parent: TaskId, name: &str) -> TaskId {
    let children = manager
        .get_tasks(TaskFilter::new().parent(parent).name(name))
        .await
        .expect("get_tasks");
    assert_eq!(children.len(), 1, "{children:?}");
    children[0].id
}

/// The longest ended attempt of a task, ms.
fn longest(attempts: &[TaskAttempt]) -> i64 {
    attempts
        .iter()
        .filter_map(TaskAttempt::duration_ms)
        .max()
        .expect("an ended attempt")
}

/// Registers a two-stage `flow` whose stage 0 creates `slow` (claimed
/// first) and `fast`; `slow` ends only after `fast` has ended, so it is
/// the slower child. `fast` records a checkpoint.
fn register_flow(manager: &TaskManager) -> anyhow::Result<()> {
    manager.register("fast", |task: Task| async move {
        task.audit("fast_done").await?;
        Ok::<_, BoxError>(Step::done(json!("fast")))
    })?;
    let reader = manager.clone();
    manager.register("slow", move |task: Task| {
        let reader = reader.clone();
        async move {
            let parent = task.record().parent_id.expect("a child");
            let fast = wait_until("the fast child to finish", || async {
                let rows = reader
                    .get_tasks(TaskFilter::new().parent(parent).name("fast"))
                    .await
                    .expect("get_tasks");
                rows.into_iter()
                    .find(|row| row.status == TaskStatus::Completed)
            })
            .await;
            wait_clock_past(fast.finished_at.expect("finished"), ms(5)).await;
            Ok::<_, BoxError>(Step::done(json!("slow")))
        }
    })?;
    manager.register("flow", |task: Task| async move {
        Ok::<_, BoxError>(match task.stage() {
            0 => Step::children([
                Child::new("slow", &()).priority(10),
                Child::new("fast", &()),
            ]),
            _ => Step::done(json!("joined")),
        })
    })?;
    Ok(())
}

backend_test! {
    async fn the_summary_of_a_two_stage_workflow(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        register_flow(&manager)?;
        manager.start().await?;
        let root = manager.submit("flow", &()).await?;
        let root_row = wait_for_status(&manager, root, S::Completed).await;
        let (slow, fast) = (
            child_named(&manager, root, "slow").await,
            child_named(&manager, root, "fast").await,
        );
        let w = manager.worker_id().to_owned();
        let summary = manager.workflow_summary(root).await?;

        assert_eq!(summary.root_task.as_ref(), Some(&root_row));
        let totals = &summary.totals;
        // Root: 9 events; each child 4, and fast's checkpoint.
        assert_eq!(
            (totals.tasks, totals.attempts, totals.events, totals.checkpoints, totals.max_attempt),
            (3, 4, 9 + 4 + 5, 1, 2)
        );
        assert_eq!(summary.statuses, counts([(S::Completed, 3)]));
        assert_eq!(
            summary.attempt_outcomes,
            counts([(AttemptOutcome::Completed, 3), (AttemptOutcome::Suspended, 1)])
        );
        assert_eq!(
            summary.task_names,
            counts([("fast".to_owned(), 1), ("flow".to_owned(), 1), ("slow".to_owned(), 1)])
        );
        assert_eq!(summary.stages, counts([(0, 2), (1, 1)]));
        assert_eq!(summary.workers, std::slice::from_ref(&w));

        let root_attempts = attempts_of(&manager, root).await;
        let timing = &summary.timing;
        assert_eq!(timing.created_at, Some(root_row.created_at));
        assert_eq!(timing.first_started_at, Some(root_attempts[0].started_at));
        assert_eq!(timing.last_ended_at, root_attempts[1].ended_at);
        assert_eq!(timing.last_event_at, root_row.last_event_at);
        let ended = root_attempts[1].ended_at.expect("ended");
        assert_eq!(
            timing.duration_ms,
            Some((ended - root_row.created_at).num_milliseconds())
        );

        let stages: Vec<_> = summary
            .stage_timings
            .iter()
            .map(|s| (s.stage, s.attempt, s.outcome, s.worker_id.as_deref()))
            .collect();
        assert_eq!(
            stages,
            [
                (0, 1, Some(AttemptOutcome::Suspended), Some(w.as_str())),
                (1, 2, Some(AttemptOutcome::Completed), Some(w.as_str())),
            ]
        );
        for (timing, attempt) in summary.stage_timings.iter().zip(&root_attempts) {
            assert_eq!(timing.started_at, attempt.started_at);
            assert_eq!(timing.ended_at, attempt.ended_at);
            assert_eq!(timing.duration_ms, attempt.duration_ms());
        }
        assert!(summary.failed_tasks.is_empty());

        // The critical path runs from the root to its slower child.
        let (slow_attempts, fast_attempts) =
            (attempts_of(&manager, slow).await, attempts_of(&manager, fast).await);
        assert!(longest(&slow_attempts) > longest(&fast_attempts));
        let path = &summary.critical_path;
        let nodes: Vec<_> = path.nodes.iter().map(|n| (n.task_id, n.name.as_str())).collect();
        assert_eq!(nodes, [(root, "flow"), (slow, "slow")]);
        assert_eq!(
            path.total_duration_ms,
            longest(&root_attempts) + longest(&slow_attempts)
        );
        let node = &path.nodes[1];
        assert_eq!(
            (node.status, node.stage, node.attempt, node.outcome),
            (S::Completed, 0, Some(1), Some(AttemptOutcome::Completed))
        );
        assert_eq!(node.duration_ms, Some(longest(&slow_attempts)));
        assert_eq!(node.started_at, Some(slow_attempts[0].started_at));
        assert_eq!(path.nodes[0].status, S::Completed);
        assert_eq!(path.nodes[0].stage, 1);

        // Every attempt, slowest first.
        let slowest: Vec<i64> = summary
            .slowest_attempts
            .iter()
            .map(|s| s.duration_ms.expect("ended"))
            .collect();
        assert_eq!(slowest.len(), 4);
        assert!(slowest.windows(2).all(|pair| pair[0] >= pair[1]), "{slowest:?}");
        for slow in &summary.slowest_attempts {
            assert_eq!(slow.duration_ms, slow.attempt.duration_ms());
        }
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_child_failing_under_the_resume_policy_is_a_failed_task_of_a_completed_workflow(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.register("good", |_task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!("good")))
        })?;
        manager.register("bad", |_task: Task| async move {
            Err::<Step, BoxError>("broken on purpose".into())
        })?;
        manager.register("tolerant", |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children([
                    Child::new("good", &()),
                    Child::new("bad", &()).max_attempts(1),
                ])
                .on_child_failure(ChildFailure::Resume),
                _ => Step::done(json!(task.child_results().iter().filter(|c| c.is_ok()).count())),
            })
        })?;
        manager.start().await?;
        let root = manager.submit("tolerant", &()).await?;
        let done = wait_for_status(&manager, root, S::Completed).await;
        assert_eq!(done.result, Some(json!(1)));
        let (good, bad) = (
            child_named(&manager, root, "good").await,
            child_named(&manager, root, "bad").await,
        );
        let summary = manager.workflow_summary(root).await?;

        assert_eq!(
            summary.statuses,
            counts([(S::Completed, 2), (S::PermanentlyFailed, 1)])
        );
        assert_eq!(
            summary.failed_tasks,
            [FailedTask {
                task_id: bad,
                name: "bad".to_owned(),
                status: S::PermanentlyFailed,
                error: Some("broken on purpose".to_owned()),
            }]
        );
        assert_eq!(
            summary.attempt_outcomes,
            counts([
                (AttemptOutcome::Completed, 2),
                (AttemptOutcome::Failed, 1),
                (AttemptOutcome::Suspended, 1),
            ])
        );
        assert_eq!((summary.totals.tasks, summary.totals.attempts), (3, 4));
        assert_eq!(summary.totals.max_attempt, 2);
        assert_eq!(summary.stage_timings.len(), 2);
        let stages: Vec<_> = summary.stage_timings.iter().map(|s| s.stage).collect();
        assert_eq!(stages, [0, 1]);

        // The path continues with whichever child ran longer (the lower id
        // on a tie).
        let path = &summary.critical_path;
        assert_eq!(path.nodes.len(), 2);
        assert_eq!(path.nodes[0].task_id, root);
        let (good_ms, bad_ms) = (
            longest(&attempts_of(&manager, good).await),
            longest(&attempts_of(&manager, bad).await),
        );
        let expected = match good_ms.cmp(&bad_ms) {
            std::cmp::Ordering::Greater => good,
            std::cmp::Ordering::Less => bad,
            std::cmp::Ordering::Equal => good.min(bad),
        };
        assert_eq!(path.nodes[1].task_id, expected);
        let root_ms = longest(&attempts_of(&manager, root).await);
        assert_eq!(path.total_duration_ms, root_ms + good_ms.max(bad_ms));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_child_failing_the_root_lists_the_root_the_child_and_the_cancelled_sibling(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let gate = Gate::new();
        manager.register("bad", {
            let gate = gate.clone();
            move |_task: Task| {
                let gate = gate.clone();
                async move {
                    gate.wait().await;
                    Err::<Step, BoxError>("broken on purpose".into())
                }
            }
        })?;
        manager.register("waits", |_task: Task| async move {
            std::future::pending::<()>().await;
            Ok::<_, BoxError>(Step::done(json!("never")))
        })?;
        manager.register("strict", |_task: Task| async move {
            Ok::<_, BoxError>(Step::children([
                Child::new("bad", &()).max_attempts(1),
                Child::new("waits", &()),
            ]))
        })?;
        manager.start().await?;
        let root = manager.submit("strict", &()).await?;
        wait_until("both children to run", || async {
            let children = manager.get_children(root).await.expect("children");
            (children.len() == 2 && children.iter().all(|c| c.status == S::Running)).then_some(())
        })
        .await;
        gate.open();
        wait_for_status(&manager, root, S::PermanentlyFailed).await;
        wait_for_running_count(&manager, 0).await;
        let (bad, sibling) = (
            child_named(&manager, root, "bad").await,
            child_named(&manager, root, "waits").await,
        );
        let summary = manager.workflow_summary(root).await?;

        assert_eq!(summary.statuses, counts([(S::PermanentlyFailed, 3)]));
        let failed: Vec<_> = summary
            .failed_tasks
            .iter()
            .map(|f| (f.task_id, f.name.as_str(), f.status, f.error.clone()))
            .collect();
        let pf = S::PermanentlyFailed;
        assert_eq!(
            failed,
            [
                (
                    root,
                    "strict",
                    pf,
                    Some(format!("child task {bad} (bad) failed: broken on purpose")),
                ),
                (bad, "bad", pf, Some("broken on purpose".to_owned())),
                (
                    sibling,
                    "waits",
                    pf,
                    Some(format!("cancelled: sibling task {bad} failed")),
                ),
            ]
        );
        assert_eq!(
            summary.attempt_outcomes,
            counts([
                (AttemptOutcome::Failed, 1),
                (AttemptOutcome::Suspended, 1),
                (AttemptOutcome::Cancelled, 1),
            ])
        );
        assert_eq!(summary.stage_timings.len(), 1);
        assert_eq!(summary.root_task.map(|r| r.status), Some(pf));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_running_workflow_summary_shows_its_open_attempt_last(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let gate = Gate::new();
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
        manager.register("waiting", |task: Task| async move {
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children([Child::new("gated", &())]),
                _ => Step::done(json!("done")),
            })
        })?;
        manager.start().await?;
        let root = manager.submit("waiting", &()).await?;
        let child = wait_until("the child to run", || async {
            let children = manager.get_children(root).await.expect("children");
            children
                .into_iter()
                .find(|c| c.status == S::Running)
                .map(|c| c.id)
        })
        .await;
        let summary = manager.workflow_summary(root).await?;

        assert_eq!(summary.statuses, counts([(S::Running, 1), (S::Suspended, 1)]));
        assert_eq!(summary.attempt_outcomes, counts([(AttemptOutcome::Suspended, 1)]));
        assert!(summary.failed_tasks.is_empty());
        let root_attempts = attempts_of(&manager, root).await;
        assert_eq!(summary.timing.last_ended_at, root_attempts[0].ended_at);
        assert_eq!(summary.stage_timings.len(), 1);
        let path: Vec<_> = summary.critical_path.nodes.iter().map(|n| n.task_id).collect();
        assert_eq!(path, [root, child]);
        let open = &summary.critical_path.nodes[1];
        assert_eq!((open.attempt, open.outcome, open.duration_ms), (Some(1), None, None));
        assert!(open.started_at.is_some() && open.ended_at.is_none());
        assert_eq!(
            summary.critical_path.total_duration_ms,
            longest(&root_attempts)
        );
        let slowest: Vec<_> = summary
            .slowest_attempts
            .iter()
            .map(|s| (s.attempt.task_id, s.duration_ms.is_some()))
            .collect();
        assert_eq!(slowest, [(root, true), (child, false)]);

        gate.open();
        wait_for_status(&manager, root, S::Completed).await;
        let after = manager.workflow_summary(root).await?;
        assert_eq!(after.statuses, counts([(S::Completed, 2)]));
        assert_eq!(after.stage_timings.len(), 2);
        assert_eq!(after.root_task, Some(task_row(&manager, root).await));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_summary_of_an_unknown_root_is_empty(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.submit("idle", &()).await?;
        let summary = manager.workflow_summary(TaskId(987_654)).await?;
        assert_eq!(summary.root_task, None);
        assert_eq!(summary.totals, Default::default());
        assert!(summary.statuses.is_empty() && summary.attempt_outcomes.is_empty());
        assert!(summary.task_names.is_empty() && summary.stages.is_empty());
        assert!(summary.workers.is_empty());
        assert_eq!(summary.timing, Default::default());
        assert!(summary.stage_timings.is_empty() && summary.failed_tasks.is_empty());
        assert_eq!(summary.critical_path, Default::default());
        assert!(summary.slowest_attempts.is_empty());
        Ok(())
    }
}
