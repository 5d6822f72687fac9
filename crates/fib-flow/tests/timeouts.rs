//! Both kinds of timeout: an attempt that runs past its `timeout` (its
//! handler is stopped; `check_timeout` reports it too) and a worker that
//! stops renewing its lease (another manager times the task out and the
//! stale attempt's late result is rejected).

#[macro_use]
mod common;

use std::time::Duration;

use chrono::TimeDelta;
use fib_flow::{BoxError, Error, Step, Task, TaskOptions, TaskStatus};
use serde_json::json;

use common::{task_row, wait_for_running_count, wait_for_status, DropFlag, Gate, Recorder};

const SHORT: Duration = Duration::from_millis(200);

/// The error text of an attempt stopped by the engine at `timeout`.
fn engine_timeout_error(timeout: Duration) -> String {
    format!("task exceeded its timeout of {timeout:?}")
}

backend_test! {
    async fn a_handler_past_its_timeout_is_stopped_and_a_retry_is_scheduled(db) {
        let manager = db.manager().await;
        let dropped = DropFlag::new();
        let started = Recorder::new();
        manager.register("hangs", {
            let (dropped, started) = (dropped.clone(), started.clone());
            move |task: Task| {
                let (dropped, started) = (dropped.clone(), started.clone());
                async move {
                    started.push(task.attempt());
                    let _guard = dropped.guard();
                    std::future::pending::<()>().await;
                    Ok::<_, BoxError>(Step::done("must not happen"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with(
                "hangs",
                &(),
                TaskOptions::new()
                    .timeout(SHORT)
                    .max_attempts(2)
                    .retry_interval(Duration::from_secs(60)),
            )
            .await?;
        let timed_out = wait_for_status(&manager, id, TaskStatus::Timeout).await;
        dropped.wait("the handler future to be dropped", 1).await;
        wait_for_running_count(&manager, 0).await;
        assert_eq!(timed_out.retry_count, 1);
        assert_eq!(timed_out.attempt, 1);
        assert_eq!(timed_out.error, Some(engine_timeout_error(SHORT)));
        assert_eq!(timed_out.result, None);
        assert_eq!(timed_out.finished_at, None);
        let at = timed_out.last_active_at.expect("last_active_at");
        assert_eq!(timed_out.next_run_at - at, TimeDelta::seconds(60));
        assert_eq!(started.snapshot(), [1]);

        // timeout -> paused is allowed while the retry waits.
        manager.pause_task(id).await?;
        assert_eq!(task_row(&manager, id).await.status, TaskStatus::Paused);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_timed_out_attempt_is_retried_and_the_retry_can_complete(db) {
        let manager = db.manager().await;
        let dropped = DropFlag::new();
        manager.register("slow-then-fast", {
            let dropped = dropped.clone();
            move |task: Task| {
                let dropped = dropped.clone();
                async move {
                    if task.attempt() == 1 {
                        let _guard = dropped.guard();
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with(
                "slow-then-fast",
                &(),
                TaskOptions::new().timeout(SHORT).max_attempts(2),
            )
            .await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(dropped.count(), 1);
        assert_eq!(done.result, Some(json!({ "attempt": 2 })));
        assert_eq!(done.attempt, 2);
        assert_eq!(done.retry_count, 1);
        assert_eq!(done.error, Some(engine_timeout_error(SHORT)));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_timed_out_last_attempt_is_permanently_failed(db) {
        let manager = db.manager().await;
        let dropped = DropFlag::new();
        manager.register("hangs", {
            let dropped = dropped.clone();
            move |_task: Task| {
                let dropped = dropped.clone();
                async move {
                    let _guard = dropped.guard();
                    std::future::pending::<()>().await;
                    Ok::<_, BoxError>(Step::done("must not happen"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with(
                "hangs",
                &(),
                TaskOptions::new().timeout(SHORT).max_attempts(1),
            )
            .await?;
        let failed = wait_for_status(&manager, id, TaskStatus::PermanentlyFailed).await;
        dropped.wait("the handler future to be dropped", 1).await;
        assert_eq!(failed.error, Some(engine_timeout_error(SHORT)));
        assert_eq!(failed.retry_count, 0);
        assert_eq!(failed.attempt, 1);
        assert!(failed.finished_at.is_some());
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn check_timeout_reports_a_spent_attempt_as_a_timeout(db) {
        let manager = db.manager().await;
        let seen = Recorder::new();
        manager.register("cooperative", {
            let seen = seen.clone();
            move |task: Task| {
                let seen = seen.clone();
                async move {
                    seen.push(format!("before: {:?}", task.check_timeout().is_ok()));
                    // A CPU-bound step that does not yield: the engine cannot
                    // stop it, so the handler checks its budget itself.
                    std::thread::sleep(task.timeout() + Duration::from_millis(100));
                    let checked = task.check_timeout();
                    match &checked {
                        Err(Error::Timeout { id, timeout }) => {
                            seen.push(format!("after: timeout {id} {timeout:?}"));
                        }
                        other => seen.push(format!("after: unexpected {other:?}")),
                    }
                    checked?;
                    Ok::<_, BoxError>(Step::done("must not happen"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with(
                "cooperative",
                &(),
                TaskOptions::new().timeout(SHORT).max_attempts(1),
            )
            .await?;
        let failed = wait_for_status(&manager, id, TaskStatus::PermanentlyFailed).await;
        assert_eq!(
            seen.snapshot(),
            ["before: true".to_owned(), format!("after: timeout {id} {SHORT:?}")]
        );
        // The handler's own Error::Timeout was recorded (not the engine's).
        assert_eq!(
            failed.error,
            Some(format!("task {id} exceeded its timeout of {SHORT:?}"))
        );

        // With attempts left, the same error schedules a timeout retry.
        let retried = manager
            .submit_with(
                "cooperative",
                &(),
                TaskOptions::new()
                    .timeout(SHORT)
                    .max_attempts(2)
                    .retry_interval(Duration::from_secs(60)),
            )
            .await?;
        let row = wait_for_status(&manager, retried, TaskStatus::Timeout).await;
        assert_eq!(row.retry_count, 1);
        assert_eq!(
            row.error,
            Some(format!("task {retried} exceeded its timeout of {SHORT:?}"))
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn live_heartbeats_keep_a_long_task_from_being_timed_out(db) {
        let manager = db
            .manager_with(|b| {
                b.task_heartbeat_interval(Duration::from_millis(100))
                    .task_heartbeat_timeout(Duration::from_secs(1))
                    .maintenance_interval(Duration::from_millis(100))
            })
            .await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("long", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.attempt());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done("finished"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("long", &()).await?;
        started.wait_len("the handler to start", 1).await;
        let first = task_row(&manager, id).await;
        // Bounded negative check: run for twice the lease length.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::Running, "a live task was timed out");
        assert_eq!(row.attempt, 1);
        assert!(
            row.last_active_at > first.last_active_at,
            "the lease was not renewed"
        );

        gate.open();
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.attempt, 1);
        assert_eq!(done.error, None);
        assert_eq!(started.snapshot(), [1]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_task_whose_worker_stops_heartbeating_is_rerun_elsewhere_and_the_late_result_rejected(db) {
        if !db.shareable() {
            // Two managers cannot share an in-memory database.
            return Ok(());
        }
        // A renews its leases only every 10 s: to B it looks dead. A must
        // not be the maintenance node, whose timings the expiry sweep uses.
        let a = db
            .manager_with(|b| {
                b.worker_id("worker-a")
                    .maintenance(false)
                    .max_concurrent_tasks(1)
                    .task_heartbeat_interval(Duration::from_secs(10))
                    .task_heartbeat_timeout(Duration::from_secs(30))
            })
            .await;
        let gate = Gate::new();
        let a_runs = Recorder::new();
        a.register("job", {
            let (gate, a_runs) = (gate.clone(), a_runs.clone());
            move |task: Task| {
                let (gate, a_runs) = (gate.clone(), a_runs.clone());
                async move {
                    a_runs.push(format!("start {}", task.attempt()));
                    gate.wait().await;
                    a_runs.push(format!("end {}", task.attempt()));
                    Ok::<_, BoxError>(Step::done("from A"))
                }
            }
        })?;
        a.start().await?;
        let id = a.submit("job", &()).await?;
        a_runs.wait_len("A to start the task", 1).await;
        let claimed = task_row(&a, id).await;
        assert_eq!(claimed.worker_id.as_deref(), Some("worker-a"));
        assert_eq!(claimed.attempt, 1);

        let b = db
            .manager_with(|b| {
                b.worker_id("worker-b")
                    .task_heartbeat_interval(Duration::from_millis(100))
                    .task_heartbeat_timeout(Duration::from_millis(300))
                    .maintenance_interval(Duration::from_millis(100))
            })
            .await;
        b.register("job", |task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!({ "from": "B", "attempt": task.attempt() })))
        })?;
        b.start().await?;

        let done = wait_for_status(&b, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "from": "B", "attempt": 2 })));
        assert_eq!(done.attempt, 2);
        assert_eq!(done.worker_id.as_deref(), Some("worker-b"));
        assert_eq!(done.retry_count, 1);
        let heartbeat_error = done.error.clone().expect("the timeout left its error");
        assert!(heartbeat_error.contains("heartbeat"), "{heartbeat_error}");

        // A's stale attempt finishes now; its write must be rejected.
        gate.open();
        a_runs.wait_len("A's handler to return", 2).await;
        wait_for_running_count(&a, 0).await;
        let after = task_row(&a, id).await;
        assert_eq!(after.status, TaskStatus::Completed);
        assert_eq!(after.result, Some(json!({ "from": "B", "attempt": 2 })));
        assert_eq!(after.attempt, 2);
        assert_eq!(after.worker_id.as_deref(), Some("worker-b"));
        assert_eq!(after.finished_at, done.finished_at);
        assert_eq!(a_runs.snapshot(), ["start 1", "end 1"]);
        b.stop().await?;
        a.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_lost_heartbeat_on_the_last_attempt_is_permanently_failed_and_the_late_result_rejected(db) {
        if !db.shareable() {
            // Two managers cannot share an in-memory database.
            return Ok(());
        }
        let a = db
            .manager_with(|b| {
                // It must not be the maintenance node, whose timings the
                // expiry sweep uses.
                b.worker_id("worker-a")
                    .maintenance(false)
                    .task_heartbeat_interval(Duration::from_secs(10))
                    .task_heartbeat_timeout(Duration::from_secs(30))
            })
            .await;
        let gate = Gate::new();
        let a_runs = Recorder::new();
        a.register("job", {
            let (gate, a_runs) = (gate.clone(), a_runs.clone());
            move |_task: Task| {
                let (gate, a_runs) = (gate.clone(), a_runs.clone());
                async move {
                    a_runs.push("start");
                    gate.wait().await;
                    a_runs.push("end");
                    Ok::<_, BoxError>(Step::done("from A"))
                }
            }
        })?;
        a.start().await?;
        let id = a
            .submit_with("job", &(), TaskOptions::new().max_attempts(1))
            .await?;
        a_runs.wait_len("A to start the task", 1).await;

        // B runs no handler at all; its sweeper alone expires A's lease.
        let b = db
            .manager_with(|b| {
                b.worker_id("worker-b")
                    .task_heartbeat_interval(Duration::from_millis(100))
                    .task_heartbeat_timeout(Duration::from_millis(300))
                    .maintenance_interval(Duration::from_millis(100))
            })
            .await;
        b.start().await?;
        let failed = wait_for_status(&b, id, TaskStatus::PermanentlyFailed).await;
        assert_eq!(failed.attempt, 1);
        assert_eq!(failed.retry_count, 0);
        assert_eq!(failed.result, None);
        assert!(failed.finished_at.is_some());
        let error = failed.error.clone().expect("the timeout left its error");
        assert!(error.contains("heartbeat"), "{error}");

        gate.open();
        a_runs.wait_len("A's handler to return", 2).await;
        wait_for_running_count(&a, 0).await;
        let after = task_row(&a, id).await;
        assert_eq!(after.status, TaskStatus::PermanentlyFailed);
        assert_eq!(after.result, None);
        assert_eq!(after.error, failed.error);
        assert_eq!(after.finished_at, failed.finished_at);
        b.stop().await?;
        a.stop().await?;
        Ok(())
    }
}

/// A gate for a handler that blocks its thread (it never yields).
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

/// Opens the gate when dropped, so a failing test does not leave a thread
/// blocked forever (the runtime could not shut down).
struct OpenOnDrop(BlockingGate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

backend_test! {
    async fn a_handler_that_never_yields_past_its_timeout_is_timed_out_by_the_sweeper(db) {
        // Leases stay fresh (the heartbeat runs on another thread), so only
        // the total-timeout check can catch this attempt.
        let manager = db
            .manager_with(|b| {
                b.task_heartbeat_interval(Duration::from_millis(100))
                    .task_heartbeat_timeout(Duration::from_secs(1))
                    .maintenance_interval(Duration::from_millis(100))
            })
            .await;
        let gate = BlockingGate::default();
        let _unblock_on_failure = OpenOnDrop(gate.clone());
        let events = Recorder::new();
        manager.register("hog", {
            let (gate, events) = (gate.clone(), events.clone());
            move |_task: Task| {
                let (gate, events) = (gate.clone(), events.clone());
                async move {
                    events.push("start");
                    // Blocks without an await point: the engine's own timer
                    // cannot drop this future.
                    tokio::task::block_in_place(|| gate.wait_blocking());
                    events.push("end");
                    Ok::<_, BoxError>(Step::done("too late"))
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with("hog", &(), TaskOptions::new().timeout(SHORT).max_attempts(1))
            .await?;
        events.wait_len("the handler to start", 1).await;
        let failed = wait_for_status(&manager, id, TaskStatus::PermanentlyFailed).await;
        let error = failed.error.clone().expect("the timeout left its error");
        assert!(error.contains("total timeout"), "{error}");
        assert_eq!(failed.attempt, 1);
        assert_eq!(failed.result, None);

        // The handler finally returns; its result must not be recorded.
        gate.open();
        events.wait_len("the handler to return", 2).await;
        wait_for_running_count(&manager, 0).await;
        let after = task_row(&manager, id).await;
        assert_eq!(after.status, TaskStatus::PermanentlyFailed);
        assert_eq!(after.result, None);
        assert_eq!(after.error, failed.error);
        manager.stop().await?;
        Ok(())
    }
}
