//! Failed attempts: retry counting (`max_attempts` counts total runs), the
//! retry interval, exhaustion into `permanently_failed`, and panics.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use fib_flow::{
    BoxError, Error, HandlerOptions, Step, Task, TaskId, TaskManager, TaskOptions, TaskStatus,
};
use serde_json::json;

use common::{task_row, wait_for_running_count, wait_for_status, Recorder};

/// Registers `name` with a handler that records `(task, attempt)` and fails
/// every run with `"failure #<attempt>"`.
fn register_failing(
    manager: &TaskManager,
    name: &str,
    options: HandlerOptions,
) -> anyhow::Result<Recorder<(TaskId, i64)>> {
    let runs = Recorder::new();
    manager.register_with(
        name,
        {
            let runs = runs.clone();
            move |task: Task| {
                let runs = runs.clone();
                async move {
                    runs.push((task.id(), task.attempt()));
                    Err::<Step, BoxError>(format!("failure #{}", task.attempt()).into())
                }
            }
        },
        options,
    )?;
    Ok(runs)
}

fn runs_of(runs: &Recorder<(TaskId, i64)>, id: TaskId) -> Vec<i64> {
    runs.snapshot()
        .into_iter()
        .filter(|(task, _)| *task == id)
        .map(|(_, attempt)| attempt)
        .collect()
}

backend_test! {
    async fn a_failed_attempt_is_retried_and_the_error_is_kept_after_success(db) {
        let manager = db.manager().await;
        let runs = Recorder::new();
        manager.register("flaky", {
            let runs = runs.clone();
            move |task: Task| {
                let runs = runs.clone();
                async move {
                    runs.push(task.retry_count());
                    if task.attempt() == 1 {
                        return Err::<Step, BoxError>("first run breaks".into());
                    }
                    Ok(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with("flaky", &(), TaskOptions::new().max_attempts(3))
            .await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "attempt": 2 })));
        assert_eq!(done.attempt, 2);
        assert_eq!(done.retry_count, 1);
        assert_eq!(done.error.as_deref(), Some("first run breaks"));
        assert!(done.finished_at.is_some());
        // The handler saw the retry count of each run.
        assert_eq!(runs.snapshot(), [0, 1]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn max_attempts_counts_total_runs_then_the_task_is_permanently_failed(db) {
        let manager = db.manager().await;
        let runs = register_failing(&manager, "doomed", HandlerOptions::new())?;
        manager.start().await?;
        let id = manager
            .submit_with("doomed", &(), TaskOptions::new().max_attempts(3))
            .await?;
        let failed = wait_for_status(&manager, id, TaskStatus::PermanentlyFailed).await;
        wait_for_running_count(&manager, 0).await;
        assert_eq!(runs_of(&runs, id), [1, 2, 3]);
        assert_eq!(failed.attempt, 3);
        assert_eq!(failed.retry_count, 2);
        assert_eq!(failed.error.as_deref(), Some("failure #3"));
        assert_eq!(failed.result, None);
        assert!(failed.finished_at.is_some());

        // A terminal task cannot be paused or resumed.
        match manager.resume_task(id, None).await {
            Err(Error::InvalidTransition { from, .. }) => {
                assert_eq!(from, TaskStatus::PermanentlyFailed);
            }
            other => panic!("resume of a permanently failed task: {other:?}"),
        }
        match manager.pause_task(id).await {
            Err(Error::InvalidTransition { from, .. }) => {
                assert_eq!(from, TaskStatus::PermanentlyFailed);
            }
            other => panic!("pause of a permanently failed task: {other:?}"),
        }
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_single_attempt_task_is_never_retried(db) {
        let manager = db.manager().await;
        let runs = register_failing(&manager, "once", HandlerOptions::new())?;
        manager.start().await?;
        let id = manager
            .submit_with("once", &(), TaskOptions::new().max_attempts(1))
            .await?;
        let failed = wait_for_status(&manager, id, TaskStatus::PermanentlyFailed).await;
        wait_for_running_count(&manager, 0).await;
        assert_eq!(runs_of(&runs, id), [1]);
        assert_eq!(failed.retry_count, 0);
        assert_eq!(failed.attempt, 1);
        assert_eq!(failed.error.as_deref(), Some("failure #1"));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn max_attempts_comes_from_the_task_then_the_handler_then_the_manager(db) {
        let manager = db.manager_with(|b| b.max_attempts(4)).await;
        let manager_default = register_failing(&manager, "manager-default", HandlerOptions::new())?;
        let handler_default =
            register_failing(&manager, "handler-default", HandlerOptions::new().max_attempts(2))?;
        manager.start().await?;
        let a = manager.submit("manager-default", &()).await?;
        let b = manager.submit("handler-default", &()).await?;
        let c = manager
            .submit_with("handler-default", &(), TaskOptions::new().max_attempts(1))
            .await?;
        for id in [a, b, c] {
            wait_for_status(&manager, id, TaskStatus::PermanentlyFailed).await;
        }
        wait_for_running_count(&manager, 0).await;
        assert_eq!(runs_of(&manager_default, a), [1, 2, 3, 4]);
        assert_eq!(runs_of(&handler_default, b), [1, 2]);
        assert_eq!(runs_of(&handler_default, c), [1]);
        assert_eq!(task_row(&manager, a).await.max_attempts, 4);
        assert_eq!(task_row(&manager, b).await.max_attempts, 2);
        assert_eq!(task_row(&manager, c).await.max_attempts, 1);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_retry_starts_no_sooner_than_the_retry_interval(db) {
        let manager = db.manager().await;
        let events: Recorder<(i64, &'static str, Instant)> = Recorder::new();
        manager.register("slow-retry", {
            let events = events.clone();
            move |task: Task| {
                let events = events.clone();
                async move {
                    events.push((task.attempt(), "start", Instant::now()));
                    if task.attempt() == 1 {
                        events.push((1, "fail", Instant::now()));
                        return Err::<Step, BoxError>("try again later".into());
                    }
                    Ok(Step::done(()))
                }
            }
        })?;
        manager.start().await?;
        let interval = Duration::from_millis(300);
        let id = manager
            .submit_with(
                "slow-retry",
                &(),
                TaskOptions::new().max_attempts(2).retry_interval(interval),
            )
            .await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.attempt, 2);
        let events = events.snapshot();
        let labels: Vec<_> = events.iter().map(|(a, what, _)| (*a, *what)).collect();
        assert_eq!(labels, [(1, "start"), (1, "fail"), (2, "start")]);
        let gap = events[2].2 - events[1].2;
        assert!(gap >= interval, "retried {gap:?} after the failure, interval {interval:?}");
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_failed_task_waits_for_its_retry_and_can_be_paused_and_resumed(db) {
        let manager = db.manager().await;
        let runs = Recorder::new();
        manager.register("later", {
            let runs = runs.clone();
            move |task: Task| {
                let runs = runs.clone();
                async move {
                    runs.push(task.attempt());
                    if task.attempt() == 1 {
                        return Err::<Step, BoxError>("not yet".into());
                    }
                    Ok(Step::done("second time lucky"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with(
                "later",
                &(),
                TaskOptions::new()
                    .max_attempts(3)
                    .retry_interval(Duration::from_secs(60)),
            )
            .await?;
        let failed = wait_for_status(&manager, id, TaskStatus::Failed).await;
        assert_eq!(failed.retry_count, 1);
        assert_eq!(failed.attempt, 1);
        assert_eq!(failed.error.as_deref(), Some("not yet"));
        assert_eq!(failed.finished_at, None);
        let failed_at = failed.last_active_at.expect("last_active_at");
        assert_eq!(failed.next_run_at - failed_at, TimeDelta::seconds(60));

        // failed -> paused -> pending (due at once, fresh budget) -> completed.
        manager.pause_task(id).await?;
        let paused = task_row(&manager, id).await;
        assert_eq!(paused.status, TaskStatus::Paused);
        assert_eq!(paused.retry_count, 1);
        manager.resume_task(id, Some("retry now")).await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("second time lucky")));
        assert_eq!(done.attempt, 2);
        assert_eq!(done.retry_count, 0);
        assert_eq!(runs.snapshot(), [1, 2]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_panicking_handler_fails_its_attempt_and_the_worker_keeps_working(db) {
        let manager = db.manager_with(|b| b.max_concurrent_tasks(1)).await;
        manager.register("explodes", |task: Task| async move {
            if task.attempt() > 0 {
                panic!("kaboom on attempt {}", task.attempt());
            }
            Ok::<_, BoxError>(Step::done(()))
        })?;
        manager.register("healthy", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("still alive"))
        })?;
        manager.start().await?;
        let bad = manager
            .submit_with("explodes", &(), TaskOptions::new().max_attempts(2))
            .await?;
        let failed = wait_for_status(&manager, bad, TaskStatus::PermanentlyFailed).await;
        assert_eq!(failed.error.as_deref(), Some("handler panicked: kaboom on attempt 2"));
        assert_eq!(failed.attempt, 2);
        assert_eq!(failed.retry_count, 1);

        // The only slot was given back: a later task runs and completes.
        let good = manager.submit("healthy", &()).await?;
        let done = wait_for_status(&manager, good, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("still alive")));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_handler_that_panics_before_returning_its_future_fails_the_attempt(db) {
        let manager = db.manager_with(|b| b.max_concurrent_tasks(1)).await;
        manager.register(
            "explodes-early",
            |_task: Task| -> std::future::Ready<Result<Step, BoxError>> {
                panic!("no future for you")
            },
        )?;
        manager.register("healthy", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("still alive"))
        })?;
        manager.start().await?;
        let bad = manager
            .submit_with("explodes-early", &(), TaskOptions::new().max_attempts(1))
            .await?;
        let failed = wait_for_status(&manager, bad, TaskStatus::PermanentlyFailed).await;
        assert_eq!(failed.error.as_deref(), Some("handler panicked: no future for you"));
        assert_eq!(failed.attempt, 1);

        let good = manager.submit("healthy", &()).await?;
        wait_for_status(&manager, good, TaskStatus::Completed).await;
        manager.stop().await?;
        Ok(())
    }
}
