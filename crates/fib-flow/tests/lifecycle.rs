//! A task's life on one manager: submission options, claim order, delays,
//! queries and statistics, deletion, and operator pause / resume of single
//! tasks and of the whole manager.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use fib_flow::{
    BoxError, Error, HandlerOptions, ManagerState, Step, Task, TaskFilter, TaskId, TaskOptions,
    TaskStats, TaskStatus,
};
use serde_json::json;

use common::{ids_of, task_row, wait_for_running_count, wait_for_status, DropFlag, Gate, Recorder};

backend_test! {
    async fn a_task_goes_from_pending_through_running_to_completed(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("greet", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.attempt());
                    gate.wait().await;
                    let who: String = task.payload()?;
                    Ok::<_, BoxError>(Step::done(json!({ "hello": who })))
                }
            }
        })?;
        let id = manager.submit("greet", "ada").await?;

        let pending = task_row(&manager, id).await;
        assert_eq!(pending.status, TaskStatus::Pending);
        assert_eq!(pending.name, "greet");
        assert_eq!(pending.payload, Some(json!("ada")));
        assert_eq!(pending.attempt, 0);
        assert_eq!(pending.retry_count, 0);
        assert_eq!(pending.worker_id, None);
        assert_eq!(pending.started_at, None);
        assert_eq!(pending.finished_at, None);
        assert_eq!(pending.result, None);

        manager.start().await?;
        assert_eq!(started.wait_len("the handler to start", 1).await, [1]);
        let running = task_row(&manager, id).await;
        assert_eq!(running.status, TaskStatus::Running);
        assert_eq!(running.worker_id.as_deref(), Some(manager.worker_id()));
        assert_eq!(running.attempt, 1);
        assert!(running.started_at.is_some());
        assert!(running.last_active_at.is_some());
        assert_eq!(running.finished_at, None);
        assert_eq!(manager.running_count(), 1);

        gate.open();
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "hello": "ada" })));
        assert_eq!(done.attempt, 1);
        assert_eq!(done.retry_count, 0);
        assert_eq!(done.error, None);
        assert_eq!(done.worker_id.as_deref(), Some(manager.worker_id()));
        let finished = done.finished_at.expect("a completed task has finished_at");
        assert!(finished >= done.started_at.expect("started_at"));
        wait_for_running_count(&manager, 0).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn task_options_override_handler_options_which_override_the_manager(db) {
        let manager = db
            .manager_with(|b| {
                b.timeout(Duration::from_secs(60))
                    .max_attempts(5)
                    .retry_interval(Duration::from_secs(9))
            })
            .await;
        manager.register_with(
            "configured",
            |_task: Task| async { Ok::<_, BoxError>(Step::done(1)) },
            HandlerOptions::new()
                .priority(7)
                .timeout(Duration::from_secs(30))
                .max_attempts(4),
        )?;

        // Nothing set on the task: handler options, then manager options.
        let defaults = manager.submit("configured", &json!({"k": 1})).await?;
        let row = task_row(&manager, defaults).await;
        assert_eq!(row.priority, 7);
        assert_eq!(row.timeout, Duration::from_secs(30));
        assert_eq!(row.max_attempts, 4);
        assert_eq!(row.retry_interval, Duration::from_secs(9));
        assert_eq!(row.tag, None);
        assert_eq!(row.payload, Some(json!({"k": 1})));

        // Everything set on the task wins.
        let explicit = manager
            .submit_with(
                "configured",
                &json!([1, 2]),
                TaskOptions::new()
                    .priority(-2)
                    .tag("batch-1")
                    .timeout(Duration::from_millis(1500))
                    .max_attempts(2)
                    .retry_interval(Duration::from_millis(250)),
            )
            .await?;
        let row = task_row(&manager, explicit).await;
        assert_eq!(row.priority, -2);
        assert_eq!(row.tag.as_deref(), Some("batch-1"));
        assert_eq!(row.timeout, Duration::from_millis(1500));
        assert_eq!(row.max_attempts, 2);
        assert_eq!(row.retry_interval, Duration::from_millis(250));

        // A name nobody registered here gets the manager's defaults.
        let unknown = manager.submit("elsewhere", &()).await?;
        let row = task_row(&manager, unknown).await;
        assert_eq!(row.priority, 0);
        assert_eq!(row.timeout, Duration::from_secs(60));
        assert_eq!(row.max_attempts, 5);
        assert_eq!(row.retry_interval, Duration::from_secs(9));
        assert_eq!(row.payload, None);
        assert_eq!(row.status, TaskStatus::Pending);
        Ok(())
    }
}

backend_test! {
    async fn tasks_are_claimed_by_priority_then_due_time_then_id(db) {
        let manager = db.manager_with(|b| b.max_concurrent_tasks(1)).await;
        let order = Recorder::new();
        let handler = {
            let order = order.clone();
            move |task: Task| {
                let order = order.clone();
                async move {
                    let label: String = task.payload()?;
                    order.push(label);
                    Ok::<_, BoxError>(Step::done(()))
                }
            }
        };
        // Two names: the order holds across handlers, not only within one.
        manager.register("ordered", handler.clone())?;
        manager.register("also-ordered", handler)?;
        let base = Utc::now() - TimeDelta::minutes(1);
        let submit = |name: &'static str, label: &'static str, priority: i32, offset_s: i64| {
            let manager = manager.clone();
            async move {
                manager
                    .submit_with(
                        name,
                        label,
                        TaskOptions::new()
                            .priority(priority)
                            .run_at(base + TimeDelta::seconds(offset_s)),
                    )
                    .await
            }
        };
        // All due; submitted before start so one claim round sees them all.
        submit("ordered", "a: p0 early", 0, 0).await?;
        submit("also-ordered", "b: p5 late", 5, 2).await?;
        submit("ordered", "c: p5 mid, lowest id", 5, 1).await?;
        submit("also-ordered", "d: p5 mid, middle id", 5, 1).await?;
        submit("ordered", "e: p5 mid, highest id", 5, 1).await?;
        submit("ordered", "f: p-3 early", -3, 0).await?;
        submit("also-ordered", "g: p10 latest", 10, 3).await?;
        submit("also-ordered", "h: p0 earliest", 0, -5).await?;
        manager.start().await?;

        let ran = order.wait_len("all eight tasks to run", 8).await;
        assert_eq!(
            ran,
            [
                "g: p10 latest",
                "c: p5 mid, lowest id",
                "d: p5 mid, middle id",
                "e: p5 mid, highest id",
                "b: p5 late",
                "h: p0 earliest",
                "a: p0 early",
                "f: p-3 early",
            ]
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_delayed_task_is_not_claimed_before_its_delay(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        manager.register("later", {
            let started = started.clone();
            move |task: Task| {
                let started = started.clone();
                async move {
                    started.push((task.id(), Utc::now()));
                    Ok::<_, BoxError>(Step::done("ran"))
                }
            }
        })?;
        manager.start().await?;
        let delay = Duration::from_secs(2);
        let delayed = manager
            .submit_with("later", &(), TaskOptions::new().delay(delay))
            .await?;
        let row = task_row(&manager, delayed).await;
        assert_eq!(row.next_run_at - row.created_at, TimeDelta::seconds(2));

        // A task submitted after it runs first, while the delayed one waits.
        let now_task = manager.submit("later", &()).await?;
        wait_for_status(&manager, now_task, TaskStatus::Completed).await;
        let row = task_row(&manager, delayed).await;
        let read_at = Utc::now();
        if read_at < row.next_run_at {
            assert_eq!(row.status, TaskStatus::Pending, "claimed before it was due");
            assert_eq!(row.attempt, 0);
        }

        let done = wait_for_status(&manager, delayed, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("ran")));
        let runs = started.snapshot();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0, now_task);
        assert_eq!(runs[1].0, delayed);
        assert!(
            runs[1].1 >= done.next_run_at,
            "started at {} before due at {}",
            runs[1].1,
            done.next_run_at
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_task_with_run_at_waits_for_that_instant(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        manager.register("scheduled", {
            let started = started.clone();
            move |_task: Task| {
                let started = started.clone();
                async move {
                    started.push(Utc::now());
                    Ok::<_, BoxError>(Step::done(()))
                }
            }
        })?;
        manager.start().await?;
        let at = Utc::now() + TimeDelta::milliseconds(1500);
        let id = manager
            .submit_with("scheduled", &(), TaskOptions::new().run_at(at))
            .await?;
        let row = task_row(&manager, id).await;
        assert_eq!(row.next_run_at.timestamp_millis(), at.timestamp_millis());

        wait_for_status(&manager, id, TaskStatus::Completed).await;
        let runs = started.snapshot();
        assert_eq!(runs.len(), 1);
        assert!(
            runs[0].timestamp_millis() >= at.timestamp_millis(),
            "ran at {} before {at}",
            runs[0]
        );

        // A run_at in the past means at once (after the due one above).
        let past = manager
            .submit_with(
                "scheduled",
                &(),
                TaskOptions::new().run_at(Utc::now() - TimeDelta::hours(1)),
            )
            .await?;
        wait_for_status(&manager, past, TaskStatus::Completed).await;
        manager.stop().await?;
        Ok(())
    }
}

/// Five tasks across two names and two tags (plus one untagged), one of
/// them paused; nothing is started.
async fn tagged_fixture(manager: &fib_flow::TaskManager) -> anyhow::Result<[TaskId; 5]> {
    let tagged = |tag: &str| TaskOptions::new().tag(tag);
    let t1 = manager.submit_with("email", &1, tagged("billing")).await?;
    let t2 = manager.submit_with("email", &2, tagged("billing")).await?;
    let t3 = manager.submit_with("resize", &3, tagged("billing")).await?;
    let t4 = manager.submit_with("email", &4, tagged("media")).await?;
    let t5 = manager.submit("resize", &5).await?;
    manager.pause_task(t2).await?;
    Ok([t1, t2, t3, t4, t5])
}

backend_test! {
    async fn get_tasks_combines_tag_status_and_name_filters(db) {
        let manager = db.manager().await;
        let [t1, t2, t3, t4, t5] = tagged_fixture(&manager).await?;
        let list = |filter: TaskFilter| {
            let manager = manager.clone();
            async move { manager.get_tasks(filter).await.map(|rows| ids_of(&rows)) }
        };
        assert_eq!(list(TaskFilter::new()).await?, [t1, t2, t3, t4, t5]);
        assert_eq!(list(TaskFilter::new().tag("billing")).await?, [t1, t2, t3]);
        assert_eq!(list(TaskFilter::new().name("resize")).await?, [t3, t5]);
        assert_eq!(
            list(TaskFilter::new().status(TaskStatus::Pending)).await?,
            [t1, t3, t4, t5]
        );
        assert_eq!(
            list(TaskFilter::new().status_named("paused")?).await?,
            [t2]
        );
        assert_eq!(
            list(TaskFilter::new().tag("billing").name("email")).await?,
            [t1, t2]
        );
        assert_eq!(
            list(
                TaskFilter::new()
                    .tag("billing")
                    .name("email")
                    .status(TaskStatus::Pending)
            )
            .await?,
            [t1]
        );
        assert_eq!(
            list(TaskFilter::new().tag("media").status(TaskStatus::Paused)).await?,
            []
        );
        assert_eq!(list(TaskFilter::new().tag("no-such-tag")).await?, []);
        Ok(())
    }
}

backend_test! {
    async fn task_stats_count_tasks_per_tag_name_and_status(db) {
        let manager = db.manager().await;
        tagged_fixture(&manager).await?;
        let stat = |tag: Option<&str>, name: &str, status, count| TaskStats {
            tag: tag.map(str::to_owned),
            name: name.to_owned(),
            status,
            count,
        };

        // One tag: ordered by name, then status.
        assert_eq!(
            manager.task_stats(Some("billing")).await?,
            [
                stat(Some("billing"), "email", TaskStatus::Paused, 1),
                stat(Some("billing"), "email", TaskStatus::Pending, 1),
                stat(Some("billing"), "resize", TaskStatus::Pending, 1),
            ]
        );
        assert_eq!(
            manager.task_stats(Some("media")).await?,
            [stat(Some("media"), "email", TaskStatus::Pending, 1)]
        );
        assert_eq!(manager.task_stats(Some("no-such-tag")).await?, []);

        // Every tag (where untagged rows sort is the backend's business).
        let mut all = manager.task_stats(None).await?;
        all.sort_by(|a, b| {
            (&a.tag, &a.name, a.status.as_str()).cmp(&(&b.tag, &b.name, b.status.as_str()))
        });
        assert_eq!(
            all,
            [
                stat(None, "resize", TaskStatus::Pending, 1),
                stat(Some("billing"), "email", TaskStatus::Paused, 1),
                stat(Some("billing"), "email", TaskStatus::Pending, 1),
                stat(Some("billing"), "resize", TaskStatus::Pending, 1),
                stat(Some("media"), "email", TaskStatus::Pending, 1),
            ]
        );

        // Counts add up within a group.
        manager
            .submit_with("email", &6, TaskOptions::new().tag("media"))
            .await?;
        assert_eq!(
            manager.task_stats(Some("media")).await?,
            [stat(Some("media"), "email", TaskStatus::Pending, 2)]
        );
        Ok(())
    }
}

backend_test! {
    async fn delete_tasks_removes_only_the_matching_tasks(db) {
        let manager = db.manager().await;
        let [t1, t2, t3, t4, t5] = tagged_fixture(&manager).await?;
        let deleted = manager
            .delete_tasks(TaskFilter::new().tag("billing").status(TaskStatus::Pending))
            .await?;
        assert_eq!(deleted, 2);
        assert_eq!(ids_of(&manager.get_tasks(TaskFilter::new()).await?), [t2, t4, t5]);
        assert_eq!(manager.get_task(t1).await?, None);
        assert_eq!(manager.get_task(t3).await?, None);

        assert_eq!(manager.delete_tasks(TaskFilter::new().tag("no-such-tag")).await?, 0);
        assert_eq!(manager.delete_tasks(TaskFilter::new().name("resize")).await?, 1);
        assert_eq!(ids_of(&manager.get_tasks(TaskFilter::new()).await?), [t2, t4]);

        // An empty filter deletes everything.
        assert_eq!(manager.delete_tasks(TaskFilter::new()).await?, 2);
        assert!(manager.get_tasks(TaskFilter::new()).await?.is_empty());
        Ok(())
    }
}

backend_test! {
    async fn deleting_a_running_task_stops_its_handler(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        manager.register("doomed", {
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
        })?;
        manager.start().await?;
        let id = manager.submit("doomed", &()).await?;
        started.wait_len("the handler to start", 1).await;

        assert_eq!(manager.delete_tasks(TaskFilter::new().name("doomed")).await?, 1);
        dropped.wait("the deleted task's handler to be dropped", 1).await;
        wait_for_running_count(&manager, 0).await;
        assert_eq!(manager.get_task(id).await?, None);
        assert!(manager.get_tasks(TaskFilter::new()).await?.is_empty());
        assert_eq!(started.len(), 1);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_paused_pending_task_does_not_run_until_resumed(db) {
        let manager = db.manager().await;
        let runs = Recorder::new();
        manager.register("job", {
            let runs = runs.clone();
            move |task: Task| {
                let runs = runs.clone();
                async move {
                    runs.push(task.id());
                    Ok::<_, BoxError>(Step::done("resumed and ran"))
                }
            }
        })?;
        let held = manager.submit("job", &()).await?;
        manager.pause_task(held).await?;
        let row = task_row(&manager, held).await;
        assert_eq!(row.status, TaskStatus::Paused);
        assert_eq!(row.finished_at, None);

        // A task submitted after the paused one runs; the paused one stays.
        manager.start().await?;
        let probe = manager.submit("job", &()).await?;
        wait_for_status(&manager, probe, TaskStatus::Completed).await;
        assert_eq!(task_row(&manager, held).await.status, TaskStatus::Paused);
        assert_eq!(runs.snapshot(), [probe]);

        manager.resume_task(held, Some("operator said so")).await?;
        let done = wait_for_status(&manager, held, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("resumed and ran")));
        assert_eq!(done.attempt, 1);
        assert_eq!(done.retry_count, 0);
        assert_eq!(runs.snapshot(), [probe, held]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn pausing_a_running_task_stops_its_attempt_and_resume_runs_it_again(db) {
        let manager = db.manager().await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        manager.register("long", {
            let (started, dropped) = (started.clone(), dropped.clone());
            move |task: Task| {
                let (started, dropped) = (started.clone(), dropped.clone());
                async move {
                    started.push(task.attempt());
                    if task.attempt() == 1 {
                        let _guard = dropped.guard();
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("long", &()).await?;
        started.wait_len("the first attempt to start", 1).await;

        manager.pause_task(id).await?;
        dropped.wait("the paused attempt's handler to be dropped", 1).await;
        wait_for_running_count(&manager, 0).await;
        let paused = task_row(&manager, id).await;
        assert_eq!(paused.status, TaskStatus::Paused);
        assert_eq!(paused.attempt, 1);
        assert_eq!(paused.result, None);
        assert_eq!(paused.finished_at, None);

        manager.resume_task(id, None).await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "attempt": 2 })));
        assert_eq!(done.attempt, 2);
        assert_eq!(done.retry_count, 0);
        assert_eq!(started.snapshot(), [1, 2]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn pause_and_resume_refuse_tasks_in_the_wrong_status(db) {
        let manager = db.manager().await;
        manager.register("quick", |_task: Task| async {
            Ok::<_, BoxError>(Step::done(()))
        })?;
        let pending = manager.submit("quick", &()).await?;
        match manager.resume_task(pending, None).await {
            Err(Error::InvalidTransition { id, from, to }) => {
                assert_eq!((id, from, to), (pending, TaskStatus::Pending, TaskStatus::Pending));
            }
            other => panic!("resume of a pending task: {other:?}"),
        }
        manager.pause_task(pending).await?;
        match manager.pause_task(pending).await {
            Err(Error::InvalidTransition { from, to, .. }) => {
                assert_eq!((from, to), (TaskStatus::Paused, TaskStatus::Paused));
            }
            other => panic!("pause of a paused task: {other:?}"),
        }
        manager.resume_task(pending, None).await?;

        manager.start().await?;
        wait_for_status(&manager, pending, TaskStatus::Completed).await;
        match manager.resume_task(pending, Some("again")).await {
            Err(Error::InvalidTransition { id, from, to }) => {
                assert_eq!((id, from, to), (pending, TaskStatus::Completed, TaskStatus::Pending));
            }
            other => panic!("resume of a completed task: {other:?}"),
        }
        match manager.pause_task(pending).await {
            Err(Error::InvalidTransition { from, to, .. }) => {
                assert_eq!((from, to), (TaskStatus::Completed, TaskStatus::Paused));
            }
            other => panic!("pause of a completed task: {other:?}"),
        }
        assert_eq!(task_row(&manager, pending).await.status, TaskStatus::Completed);

        let missing = TaskId(pending.get() + 1000);
        match manager.resume_task(missing, None).await {
            Err(Error::NotFound { id }) => assert_eq!(id, missing),
            other => panic!("resume of an unknown task: {other:?}"),
        }
        match manager.pause_task(missing).await {
            Err(Error::NotFound { id }) => assert_eq!(id, missing),
            other => panic!("pause of an unknown task: {other:?}"),
        }
        assert_eq!(manager.get_task(missing).await?, None);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_paused_manager_claims_nothing_until_resumed(db) {
        // One slot: while the first task runs no claim round can take the
        // second, so the pause is in force before a claim could happen.
        let manager = db.manager_with(|b| b.max_concurrent_tasks(1)).await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("work", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.id());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done(()))
                }
            }
        })?;
        assert_eq!(manager.state(), ManagerState::Idle);
        manager.start().await?;
        assert_eq!(manager.state(), ManagerState::Running);
        let first = manager.submit("work", &()).await?;
        started.wait_len("the first task to start", 1).await;

        manager.pause();
        assert_eq!(manager.state(), ManagerState::Paused);
        assert!(manager.is_paused());
        let second = manager.submit("work", &()).await?;

        // The running handler goes on and records its result while paused.
        gate.open();
        wait_for_status(&manager, first, TaskStatus::Completed).await;
        // Bounded negative check: nothing new is claimed while paused.
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let row = task_row(&manager, second).await;
        assert_eq!(row.status, TaskStatus::Pending, "claimed while paused");
        assert_eq!(row.attempt, 0);
        assert_eq!(started.snapshot(), [first]);
        assert!(start.elapsed() >= Duration::from_millis(300));

        manager.resume();
        assert_eq!(manager.state(), ManagerState::Running);
        assert!(!manager.is_paused());
        wait_for_status(&manager, second, TaskStatus::Completed).await;
        assert_eq!(started.snapshot(), [first, second]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_manager_paused_before_start_starts_paused(db) {
        let manager = db.manager().await;
        manager.register("work", |_task: Task| async { Ok::<_, BoxError>(Step::done(())) })?;
        manager.pause();
        assert_eq!(manager.state(), ManagerState::Idle);
        manager.start().await?;
        assert_eq!(manager.state(), ManagerState::Paused);
        let id = manager.submit("work", &()).await?;
        // Bounded negative check: the paused manager does not claim.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(task_row(&manager, id).await.status, TaskStatus::Pending);
        assert_eq!(manager.running_count(), 0);

        manager.resume();
        assert_eq!(manager.state(), ManagerState::Running);
        wait_for_status(&manager, id, TaskStatus::Completed).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn an_unknown_task_id_reads_as_none(db) {
        let manager = db.manager().await;
        assert_eq!(manager.get_task(TaskId(424242)).await?, None);
        let id = manager.submit("anything", &()).await?;
        assert!(manager.get_task(id).await?.is_some());
        assert_eq!(manager.get_task(TaskId(id.get() + 1)).await?, None);
        Ok(())
    }
}

backend_test! {
    async fn pausing_a_task_running_on_another_manager_stops_it_there(db) {
        if !db.shareable() {
            // The operator below is a second manager on the same database.
            return Ok(());
        }
        let worker = db.manager_with(|b| b.worker_id("worker-a")).await;
        let started = Recorder::new();
        let dropped = DropFlag::new();
        worker.register("long", {
            let (started, dropped) = (started.clone(), dropped.clone());
            move |task: Task| {
                let (started, dropped) = (started.clone(), dropped.clone());
                async move {
                    started.push(task.attempt());
                    let _guard = dropped.guard();
                    std::future::pending::<()>().await;
                    Ok::<_, BoxError>(Step::done("must not happen"))
                }
            }
        })?;
        worker.start().await?;
        let id = worker.submit("long", &()).await?;
        started.wait_len("the attempt to start", 1).await;

        let operator = db.manager().await;
        operator.pause_task(id).await?;
        // The owner's next heartbeat finds its lease gone and stops it.
        dropped.wait("the paused attempt's handler to be dropped", 1).await;
        wait_for_running_count(&worker, 0).await;
        let row = task_row(&operator, id).await;
        assert_eq!(row.status, TaskStatus::Paused);
        assert_eq!(row.attempt, 1);
        assert_eq!(row.result, None);
        assert_eq!(started.snapshot(), [1]);
        operator.stop().await?;
        worker.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn resuming_a_paused_delayed_task_makes_it_due_at_once(db) {
        let manager = db.manager().await;
        manager.register("someday", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("today"))
        })?;
        let id = manager
            .submit_with("someday", &(), TaskOptions::new().delay(Duration::from_secs(3600)))
            .await?;
        manager.pause_task(id).await?;
        manager.start().await?;
        manager.resume_task(id, None).await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("today")));
        assert!(
            done.next_run_at < done.created_at + TimeDelta::hours(1),
            "still due in an hour: {}",
            done.next_run_at
        );
        manager.stop().await?;
        Ok(())
    }
}
