//! Concurrency limits: the manager's global limit, per-handler limits, and
//! exclusive claims between managers sharing a database.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use fib_flow::{BoxError, HandlerOptions, Step, Task, TaskFilter, TaskId, TaskManager, TaskStatus};
use serde_json::json;

use common::{task_row, wait_for_status, wait_until, Gate, HighWater, Recorder};

/// A handler that counts itself in `hw` while it runs and waits for `gate`.
fn gated(
    hw: &HighWater,
    gate: &Gate,
    result: &'static str,
) -> impl Fn(Task) -> futures::future::BoxFuture<'static, Result<Step, BoxError>> + Send + Sync + 'static
{
    let (hw, gate) = (hw.clone(), gate.clone());
    move |_task: Task| {
        let (hw, gate) = (hw.clone(), gate.clone());
        Box::pin(async move {
            let _inside = hw.enter();
            gate.wait().await;
            // Give other executions a chance to overlap with this one.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            Ok(Step::done(result))
        })
    }
}

async fn count_in(manager: &TaskManager, name: &str, status: TaskStatus) -> usize {
    manager
        .get_tasks(TaskFilter::new().name(name).status(status))
        .await
        .expect("get_tasks")
        .len()
}

async fn wait_all_completed(manager: &TaskManager, name: &str, n: usize) {
    wait_until(&format!("{n} {name} tasks to complete"), || async {
        (count_in(manager, name, TaskStatus::Completed).await == n).then_some(())
    })
    .await
}

backend_test! {
    async fn the_global_limit_is_never_exceeded(db) {
        let manager = db.manager_with(|b| b.max_concurrent_tasks(3)).await;
        let (hw, gate) = (HighWater::new(), Gate::new());
        manager.register("work", gated(&hw, &gate, "done"))?;
        for i in 0..10 {
            manager.submit("work", &i).await?;
        }
        manager.start().await?;

        hw.wait_current("three handlers to run", 3).await;
        // Bounded negative check: with every slot busy nothing more starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hw.current(), 3);
        assert_eq!(manager.running_count(), 3);
        assert_eq!(count_in(&manager, "work", TaskStatus::Running).await, 3);
        assert_eq!(count_in(&manager, "work", TaskStatus::Pending).await, 7);

        gate.open();
        wait_all_completed(&manager, "work", 10).await;
        assert_eq!(hw.max(), 3, "more than max_concurrent_tasks ran at once");
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_per_handler_limit_is_never_exceeded_while_other_names_use_free_slots(db) {
        let manager = db.manager_with(|b| b.max_concurrent_tasks(10)).await;
        let gate = Gate::new();
        let (limited, free) = (HighWater::new(), HighWater::new());
        manager.register_with(
            "limited",
            gated(&limited, &gate, "limited"),
            HandlerOptions::new().max_concurrent_tasks(2),
        )?;
        manager.register("free", gated(&free, &gate, "free"))?;
        for i in 0..6 {
            manager.submit("limited", &i).await?;
        }
        for i in 0..3 {
            manager.submit("free", &i).await?;
        }
        manager.start().await?;

        limited.wait_current("two limited handlers to run", 2).await;
        free.wait_current("three free handlers to run", 3).await;
        // Bounded negative check: the limited name stays at its limit although
        // global slots are free.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(limited.current(), 2);
        assert_eq!(count_in(&manager, "limited", TaskStatus::Running).await, 2);
        assert_eq!(count_in(&manager, "limited", TaskStatus::Pending).await, 4);
        assert_eq!(manager.running_count(), 5);

        gate.open();
        wait_all_completed(&manager, "limited", 6).await;
        wait_all_completed(&manager, "free", 3).await;
        assert_eq!(limited.max(), 2, "the per-handler limit was exceeded");
        assert_eq!(free.max(), 3);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_per_handler_limit_still_counts_attempts_started_before_re_registration(db) {
        let manager = db.manager().await;
        let (hw, gate) = (HighWater::new(), Gate::new());
        manager.register_with(
            "solo",
            gated(&hw, &gate, "v1"),
            HandlerOptions::new().max_concurrent_tasks(1),
        )?;
        manager.start().await?;
        let first = manager.submit("solo", &()).await?;
        hw.wait_current("the first attempt to run", 1).await;

        // Replace the handler (same limit) while the first attempt runs.
        manager.register_with(
            "solo",
            gated(&hw, &gate, "v2"),
            HandlerOptions::new().max_concurrent_tasks(1),
        )?;
        let second = manager.submit("solo", &()).await?;
        // Bounded negative check: the running v1 attempt still fills the slot.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hw.current(), 1);
        assert_eq!(task_row(&manager, second).await.status, TaskStatus::Pending);

        gate.open();
        wait_all_completed(&manager, "solo", 2).await;
        assert_eq!(hw.max(), 1, "two `solo` attempts ran at once");
        assert_eq!(task_row(&manager, first).await.result, Some(json!("v1")));
        assert_eq!(task_row(&manager, second).await.result, Some(json!("v2")));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn managers_sharing_a_database_run_each_task_exactly_once(db) {
        if !db.shareable() {
            // An in-memory database is private to one manager.
            return Ok(());
        }
        let runs: Recorder<(TaskId, String)> = Recorder::new();
        let handler = |worker: &'static str| {
            let runs = runs.clone();
            move |task: Task| {
                let runs = runs.clone();
                async move {
                    runs.push((task.id(), worker.to_owned()));
                    tokio::task::yield_now().await;
                    Ok::<_, BoxError>(Step::done(worker))
                }
            }
        };
        let a = db
            .manager_with(|b| b.worker_id("worker-a").max_concurrent_tasks(3))
            .await;
        let b = db
            .manager_with(|b| b.worker_id("worker-b").max_concurrent_tasks(3))
            .await;
        a.register("shared", handler("worker-a"))?;
        b.register("shared", handler("worker-b"))?;
        let mut ids = Vec::new();
        for i in 0..30 {
            ids.push(a.submit("shared", &i).await?);
        }
        a.start().await?;
        b.start().await?;
        wait_all_completed(&a, "shared", 30).await;

        let mut seen: HashMap<TaskId, Vec<String>> = HashMap::new();
        for (id, worker) in runs.snapshot() {
            seen.entry(id).or_default().push(worker);
        }
        assert_eq!(seen.len(), 30);
        for id in ids {
            let workers = &seen[&id];
            assert_eq!(workers.len(), 1, "task {id} ran {} times", workers.len());
            let row = task_row(&a, id).await;
            assert_eq!(row.attempt, 1);
            assert_eq!(row.worker_id.as_deref(), Some(workers[0].as_str()));
            assert_eq!(row.result, Some(json!(workers[0])));
        }
        a.stop().await?;
        b.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_stale_attempt_and_a_newer_attempt_of_one_task_are_tracked_apart(db) {
        if !db.shareable() {
            // The operator below is a second manager on the same database.
            return Ok(());
        }
        // `worker` renews its leases only every 10 s, so it does not notice
        // at once that an operator paused and resumed its task.
        let worker = db
            .manager_with(|b| {
                b.worker_id("worker-a")
                    .max_concurrent_tasks(2)
                    .task_heartbeat_interval(Duration::from_secs(10))
                    .task_heartbeat_timeout(Duration::from_secs(30))
            })
            .await;
        let (stale_gate, fresh_gate) = (Gate::new(), Gate::new());
        let events = Recorder::new();
        worker.register("job", {
            let (stale_gate, fresh_gate, events) =
                (stale_gate.clone(), fresh_gate.clone(), events.clone());
            move |task: Task| {
                let (stale_gate, fresh_gate, events) =
                    (stale_gate.clone(), fresh_gate.clone(), events.clone());
                async move {
                    events.push(format!("start {}", task.attempt()));
                    if task.attempt() == 1 {
                        stale_gate.wait().await;
                    } else {
                        fresh_gate.wait().await;
                    }
                    events.push(format!("end {}", task.attempt()));
                    Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        worker.start().await?;
        let id = worker.submit("job", &()).await?;
        events.wait_len("attempt 1 to start", 1).await;

        // An operator elsewhere pauses and resumes it; the worker claims it
        // again (attempt 2) while its attempt 1 is still running.
        let operator = db.manager().await;
        operator.pause_task(id).await?;
        operator.resume_task(id, Some("operator")).await?;
        events.wait_len("attempt 2 to start", 2).await;
        assert_eq!(events.snapshot(), ["start 1", "start 2"]);
        assert_eq!(
            worker.running_count(),
            2,
            "two attempts of the task execute in this process"
        );

        // The stale attempt ends: its write is rejected and attempt 2 is
        // still running and still counted.
        stale_gate.open();
        events.wait_len("attempt 1 to end", 3).await;
        wait_until("the stale attempt to be done", || async {
            (worker.running_count() < 2).then_some(())
        })
        .await;
        assert_eq!(worker.running_count(), 1, "attempt 2 is no longer tracked");
        let row = task_row(&worker, id).await;
        assert_eq!(row.status, TaskStatus::Running);
        assert_eq!(row.attempt, 2);
        assert_eq!(row.result, None);

        fresh_gate.open();
        let done = wait_for_status(&worker, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "attempt": 2 })));
        wait_until("no attempt to run", || async {
            (worker.running_count() == 0).then_some(())
        })
        .await;
        operator.stop().await?;
        worker.stop().await?;
        Ok(())
    }
}
