//! Hot reload: registering a name again replaces its handler for later
//! claims only; unregistering stops future claims only; neither touches a
//! manager-level pause.

#[macro_use]
mod common;

use std::time::Duration;

use fib_flow::{BoxError, ManagerState, Step, Task, TaskOptions, TaskStatus};
use serde_json::json;

use common::{task_row, wait_for_running_count, wait_for_status, Gate, Recorder};

backend_test! {
    async fn a_running_attempt_keeps_its_handler_while_new_claims_use_the_replacement(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("versioned", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.id());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done("v1"))
                }
            }
        })?;
        manager.start().await?;
        let old = manager.submit("versioned", &()).await?;
        started.wait_len("the v1 attempt to start", 1).await;

        manager.register("versioned", |_task: Task| async {
            Ok::<_, BoxError>(Step::done("v2"))
        })?;
        let new = manager.submit("versioned", &()).await?;
        let done = wait_for_status(&manager, new, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("v2")));
        assert_eq!(task_row(&manager, old).await.status, TaskStatus::Running);

        gate.open();
        let done = wait_for_status(&manager, old, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("v1")));
        assert_eq!(done.attempt, 1);
        assert_eq!(started.snapshot(), [old]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_retry_of_a_task_runs_the_handler_registered_since(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("evolving", {
            let (gate, started) = (gate.clone(), started.clone());
            move |_task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push("v1");
                    gate.wait().await;
                    Err::<Step, BoxError>("v1 is broken".into())
                }
            }
        })?;
        manager.start().await?;
        let id = manager
            .submit_with("evolving", &(), TaskOptions::new().max_attempts(2))
            .await?;
        started.wait_len("the v1 attempt to start", 1).await;

        manager.register("evolving", {
            let started = started.clone();
            move |task: Task| {
                let started = started.clone();
                async move {
                    started.push("v2");
                    Ok::<_, BoxError>(Step::done(json!({ "fixed_in": "v2", "attempt": task.attempt() })))
                }
            }
        })?;
        // The v1 attempt fails after the replacement: it still ran v1.
        gate.open();
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "fixed_in": "v2", "attempt": 2 })));
        assert_eq!(done.error.as_deref(), Some("v1 is broken"));
        assert_eq!(done.retry_count, 1);
        assert_eq!(started.snapshot(), ["v1", "v2"]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn an_unregistered_name_stays_pending_until_registered_again(db) {
        let manager = db.manager().await;
        let handler = |task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!({ "ran": task.name() })))
        };
        manager.register("orphan", handler)?;
        manager.register("probe", handler)?;
        assert!(manager.unregister("orphan"));
        assert!(!manager.unregister("orphan"), "a second unregister found a handler");
        assert!(!manager.unregister("never-registered"));
        let names: Vec<String> = manager.handlers().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["probe"]);

        manager.start().await?;
        let orphan = manager.submit("orphan", &()).await?;
        // A claim round that took a later task did not take the orphan.
        let probe = manager.submit("probe", &()).await?;
        wait_for_status(&manager, probe, TaskStatus::Completed).await;
        let row = task_row(&manager, orphan).await;
        assert_eq!(row.status, TaskStatus::Pending);
        assert_eq!(row.attempt, 0);

        manager.register("orphan", handler)?;
        let done = wait_for_status(&manager, orphan, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "ran": "orphan" })));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn unregistering_lets_the_running_attempt_finish(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let started = Recorder::new();
        manager.register("leaving", {
            let (gate, started) = (gate.clone(), started.clone());
            move |task: Task| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.push(task.id());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done("finished anyway"))
                }
            }
        })?;
        manager.start().await?;
        let running = manager.submit("leaving", &()).await?;
        started.wait_len("the attempt to start", 1).await;
        assert!(manager.unregister("leaving"));
        let waiting = manager.submit("leaving", &()).await?;

        gate.open();
        let done = wait_for_status(&manager, running, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("finished anyway")));
        wait_for_running_count(&manager, 0).await;
        // The completion woke the claim loop; the name is still unregistered.
        // (A claim round already under way when `unregister` returned may
        // have taken the waiting task: its execution finds no handler and
        // releases it, so it is pending again, never run, its attempt 0 or
        // 1.)
        let row = task_row(&manager, waiting).await;
        assert_eq!(row.status, TaskStatus::Pending);
        assert!(row.attempt <= 1, "{row:?}");
        assert_eq!(started.snapshot(), [running]);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn registering_and_unregistering_never_undo_a_manager_pause(db) {
        let manager = db.manager().await;
        manager.register("first", |_task: Task| async { Ok::<_, BoxError>(Step::done(1)) })?;
        manager.start().await?;
        manager.pause();
        let id = manager.submit("late", &()).await?;

        manager.register("late", |_task: Task| async { Ok::<_, BoxError>(Step::done("late")) })?;
        assert!(manager.unregister("first"));
        manager.register("first", |_task: Task| async { Ok::<_, BoxError>(Step::done(1)) })?;
        assert!(manager.is_paused());
        assert_eq!(manager.state(), ManagerState::Paused);
        // Bounded negative check: still no claims.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::Pending, "a registration undid pause()");
        assert_eq!(manager.running_count(), 0);

        manager.resume();
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("late")));
        manager.stop().await?;
        Ok(())
    }
}
