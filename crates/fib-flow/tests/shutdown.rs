//! Graceful shutdown: `stop()` lets running handlers finish within
//! `shutdown_timeout` and records their results, gives the tasks of the rest
//! back to `pending`, and leaves a manager that refuses every call.
//!
//! A stopped manager cannot read its database any more, so rows are checked
//! through a second manager; an in-memory database dies with its manager,
//! so those checks run on shareable databases only.

#[macro_use]
mod common;

use std::time::Duration;

use fib_flow::{
    BoxError, Error, ManagerState, Step, Task, TaskFilter, TaskId, TaskOptions, TaskStatus,
};
use serde_json::json;

use common::{task_row, wait_for_status, DropFlag, Gate, Recorder};

fn assert_lifecycle_error<T: std::fmt::Debug>(what: &str, result: fib_flow::Result<T>) {
    match result {
        Err(Error::Lifecycle { state, .. }) => assert_eq!(state, "stopped", "{what}"),
        other => panic!("{what}: expected Error::Lifecycle, got {other:?}"),
    }
}

backend_test! {
    async fn stop_waits_for_an_in_flight_handler_and_records_its_result(db) {
        let manager = db
            .manager_with(|b| b.shutdown_timeout(Duration::from_secs(15)))
            .await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("finishing", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.id());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done("finished during stop"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("finishing", &()).await?;
        started.wait_len("the handler to start", 1).await;

        let stopping = tokio::spawn({
            let manager = manager.clone();
            async move { manager.stop().await }
        });
        // Bounded negative check: stop() waits for the running handler.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!stopping.is_finished(), "stop() returned with a handler running");
        gate.open();
        stopping.await??;
        assert_eq!(manager.state(), ManagerState::Stopped);
        assert_eq!(manager.running_count(), 0);

        if db.shareable() {
            let reader = db.manager().await;
            let row = task_row(&reader, id).await;
            assert_eq!(row.status, TaskStatus::Completed);
            assert_eq!(row.result, Some(json!("finished during stop")));
            assert_eq!(row.attempt, 1);
            assert!(row.finished_at.is_some());
        }
        Ok(())
    }
}

backend_test! {
    async fn stop_releases_a_task_still_running_after_the_shutdown_timeout(db) {
        let manager = db
            .manager_with(|b| b.shutdown_timeout(Duration::from_millis(300)))
            .await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        manager.register("stuck", {
            let (started, dropped) = (started.clone(), dropped.clone());
            move |task: Task| {
                let (started, dropped) = (started.clone(), dropped.clone());
                async move {
                    started.push(task.attempt());
                    if task.attempt() == 1 {
                        return Err::<Step, BoxError>("first attempt fails".into());
                    }
                    let _guard = dropped.guard();
                    std::future::pending::<()>().await;
                    Ok(Step::done("must not happen"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with("stuck", &(), TaskOptions::new().max_attempts(3))
            .await?;
        started.wait_len("the second attempt to start", 2).await;
        let running = task_row(&manager, id).await;
        assert_eq!(running.status, TaskStatus::Running);
        assert_eq!(running.retry_count, 1);

        manager.stop().await?;
        assert_eq!(dropped.count(), 1, "the stuck handler was not stopped");
        assert_eq!(manager.state(), ManagerState::Stopped);
        assert_eq!(manager.running_count(), 0);

        if db.shareable() {
            let next = db.manager().await;
            let row = task_row(&next, id).await;
            assert_eq!(row.status, TaskStatus::Pending);
            assert_eq!(row.worker_id, None);
            assert_eq!(row.retry_count, 1, "a release must not count as a retry");
            assert_eq!(row.attempt, 2);
            assert_eq!(row.result, None);
            assert_eq!(row.finished_at, None);
            assert_eq!(row.error.as_deref(), Some("first attempt fails"));

            // The released task is due at once for the next worker.
            next.register("stuck", |task: Task| async move {
                Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
            })?;
            next.start().await?;
            let done = wait_for_status(&next, id, TaskStatus::Completed).await;
            assert_eq!(done.result, Some(json!({ "attempt": 3 })));
            assert_eq!(done.retry_count, 1);
            next.stop().await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn stop_records_handlers_that_finish_in_time_and_releases_the_others(db) {
        let manager = db
            .manager_with(|b| b.shutdown_timeout(Duration::from_secs(1)))
            .await;
        let gate = Gate::new();
        let started = Recorder::new();
        let dropped = DropFlag::new();
        manager.register("mixed", {
            let (gate, started, dropped) = (gate.clone(), started.clone(), dropped.clone());
            move |task: Task| {
                let (gate, started, dropped) = (gate.clone(), started.clone(), dropped.clone());
                async move {
                    let stuck: bool = task.payload()?;
                    started.push(task.id());
                    let _guard = dropped.guard();
                    if stuck {
                        std::future::pending::<()>().await;
                    }
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done("in time"))
                }
            }
        })?;
        manager.start().await?;
        let quick = manager.submit("mixed", &false).await?;
        let stuck = manager.submit("mixed", &true).await?;
        started.wait_len("both handlers to start", 2).await;

        let stopping = tokio::spawn({
            let manager = manager.clone();
            async move { manager.stop().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        gate.open();
        stopping.await??;
        // Both futures are gone: one finished, one was stopped.
        assert_eq!(dropped.count(), 2);

        if db.shareable() {
            let reader = db.manager().await;
            let quick = task_row(&reader, quick).await;
            assert_eq!(quick.status, TaskStatus::Completed);
            assert_eq!(quick.result, Some(json!("in time")));
            let stuck = task_row(&reader, stuck).await;
            assert_eq!(stuck.status, TaskStatus::Pending);
            assert_eq!(stuck.worker_id, None);
            assert_eq!(stuck.retry_count, 0);
            assert_eq!(stuck.error, None);
        }
        Ok(())
    }
}

backend_test! {
    async fn a_stopped_manager_refuses_every_call_and_cannot_restart(db) {
        let manager = db.manager().await;
        manager.register("job", |_task: Task| async { Ok::<_, BoxError>(Step::done(())) })?;
        manager.start().await?;
        let id = manager.submit("job", &()).await?;
        wait_for_status(&manager, id, TaskStatus::Completed).await;
        manager.stop().await?;
        assert_eq!(manager.state(), ManagerState::Stopped);

        assert_lifecycle_error("start", manager.start().await);
        assert_lifecycle_error("submit", manager.submit("job", &()).await);
        assert_lifecycle_error(
            "submit_with",
            manager.submit_with("job", &(), TaskOptions::new().priority(1)).await,
        );
        assert_lifecycle_error("get_task", manager.get_task(id).await);
        assert_lifecycle_error("get_tasks", manager.get_tasks(TaskFilter::new()).await);
        assert_lifecycle_error("task_stats", manager.task_stats(None).await);
        assert_lifecycle_error("delete_tasks", manager.delete_tasks(TaskFilter::new()).await);
        assert_lifecycle_error("pause_task", manager.pause_task(id).await);
        assert_lifecycle_error("resume_task", manager.resume_task(TaskId(id.get()), None).await);
        assert_lifecycle_error("setup", manager.setup().await);
        assert_lifecycle_error(
            "register",
            manager.register("other", |_task: Task| async { Ok::<_, BoxError>(Step::done(())) }),
        );
        // stop() is idempotent.
        manager.stop().await?;
        assert_eq!(manager.state(), ManagerState::Stopped);
        Ok(())
    }
}

backend_test! {
    async fn a_manager_stopped_before_it_started_cannot_start(db) {
        let manager = db.manager().await;
        let id = manager.submit("job", &()).await?;
        manager.stop().await?;
        assert_eq!(manager.state(), ManagerState::Stopped);
        assert_lifecycle_error("start", manager.start().await);
        if db.shareable() {
            let reader = db.manager().await;
            assert_eq!(task_row(&reader, id).await.status, TaskStatus::Pending);
        }
        Ok(())
    }
}
