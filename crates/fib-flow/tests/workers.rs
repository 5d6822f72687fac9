//! The worker registry, supersession, recovery and the maintenance lease,
//! with managers in one test process. A "crash" is a manager whose tokio
//! runtime is shut down under it: no more heartbeats, no `stop()`, no
//! writes. (Real processes killed with SIGKILL are in `worker_recovery.rs`.)

#[macro_use]
mod common;

use fib_flow::{
    AttemptOutcome, BoxError, EventType, Step, Task, TaskId, TaskManager, TaskManagerBuilder,
    TaskStatus, WorkerFilter, WorkerStatus,
};
use serde_json::json;

use common::{attempts_of, wait_for_event, wait_for_status, wait_until, Gate, TestDb};

/// A handler that waits on `gate`, then completes with `by`.
fn hold(manager: &TaskManager, gate: Gate, by: &'static str) {
    manager
        .register("hold", move |_task: Task| {
            let gate = gate.clone();
            async move {
                gate.wait().await;
                Ok::<_, BoxError>(Step::done(json!({ "by": by })))
            }
        })
        .expect("register hold");
}

/// A gate already open: "hold" completes at once.
fn open_gate() -> Gate {
    let gate = Gate::new();
    gate.open();
    gate
}

/// A manager started with `pod_id` and the "hold" handler behind `gate`.
async fn started(db: &TestDb, pod_id: &str, gate: Gate, by: &'static str) -> TaskManager {
    let manager = db.manager_with(|b| b.pod_id(pod_id)).await;
    hold(&manager, gate, by);
    manager.start().await.expect("start");
    manager
}

/// Waits until task `id` runs under `worker_id`.
async fn wait_running_under(manager: &TaskManager, id: TaskId, worker_id: &str) {
    wait_until(&format!("task {id} running under {worker_id}"), || async {
        let task = manager.get_task(id).await.expect("get_task")?;
        (task.status == TaskStatus::Running && task.worker_id.as_deref() == Some(worker_id))
            .then_some(())
    })
    .await;
}

/// Waits until `worker_id` has `status` in the registry.
async fn wait_worker_status(manager: &TaskManager, worker_id: &str, status: WorkerStatus) {
    wait_until(&format!("worker {worker_id} to be {status}"), || async {
        let worker = manager.worker(worker_id).await.expect("worker")?;
        (worker.status == status).then_some(())
    })
    .await;
}

/// A manager running on a runtime of its own, so the test can crash it.
struct Crashable {
    runtime: tokio::runtime::Runtime,
    manager: TaskManager,
}

impl Crashable {
    async fn start(builder: TaskManagerBuilder, gate: Gate) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let manager = runtime
            .spawn(async move {
                let manager = builder.build().await?;
                manager.setup().await?;
                hold(&manager, gate, "crashed");
                manager.start().await?;
                Ok::<_, fib_flow::Error>(manager)
            })
            .await??;
        Ok(Crashable { runtime, manager })
    }

    /// Stops the runtime under the manager: its tasks and connections are
    /// dropped where they stand, as if the process died.
    fn crash(self) -> String {
        let worker_id = self.manager.worker_id().to_owned();
        self.runtime.shutdown_background();
        worker_id
    }
}

backend_test! {
    async fn a_manager_with_a_pod_id_registers_and_stop_marks_it_stopped(db) {
        if !db.shareable() {
            return Ok(()); // the registry is read after stop() by a second manager
        }
        let observer = db.manager().await;
        let manager = started(&db, "pod-a", Gate::new(), "a").await;
        let me = manager.worker_id().to_owned();
        assert_eq!(manager.pod_id(), Some("pod-a"));
        let workers = observer.workers(WorkerFilter::new()).await?;
        assert_eq!(workers.len(), 1, "{workers:?}");
        let worker = &workers[0];
        assert_eq!((worker.worker_id.as_str(), worker.pod_id.as_str()), (me.as_str(), "pod-a"));
        assert_eq!(worker.status, WorkerStatus::Active);
        assert_eq!(worker.meta["pid"], json!(std::process::id()));
        assert!(worker.expires_at > worker.last_seen_at);
        manager.stop().await?;
        let worker = observer.worker(&me).await?.expect("registered");
        assert_eq!(worker.status, WorkerStatus::Stopped);
        assert!(worker.stopped_at.is_some());
        Ok(())
    }
}

backend_test! {
    async fn a_manager_without_a_pod_id_is_not_registered(db) {
        let manager = db.manager().await;
        manager.start().await?;
        assert_eq!(manager.pod_id(), None);
        assert!(manager.workers(WorkerFilter::new()).await?.is_empty());
        assert!(manager.worker(manager.worker_id()).await?.is_none());
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_new_worker_of_the_same_pod_supersedes_the_old_one_and_takes_back_its_tasks(db) {
        if !db.shareable() {
            return Ok(());
        }
        let old_gate = Gate::new();
        let old = started(&db, "pod-a", old_gate.clone(), "old").await;
        let id = old.submit("hold", &()).await?;
        wait_running_under(&old, id, old.worker_id()).await;

        let new = started(&db, "pod-a", open_gate(), "new").await;
        let done = wait_for_status(&new, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "by": "new" })));
        assert_eq!(done.retry_count, 0, "a recovery is not a retry");

        let recovered = wait_for_event(&new, id, EventType::TaskRecovered).await;
        assert_eq!(recovered.from_status, Some(TaskStatus::Running));
        assert_eq!(recovered.to_status, Some(TaskStatus::Pending));
        assert_eq!(recovered.worker_id.as_deref(), Some(new.worker_id()));
        assert_eq!(recovered.metadata["recovery_reason"], "worker_superseded");
        assert_eq!(recovered.metadata["recovered_from_worker_id"], json!(old.worker_id()));
        assert_eq!(recovered.metadata["recovered_by_worker_id"], json!(new.worker_id()));
        assert_eq!(recovered.metadata["recovered_by_pod_id"], "pod-a");

        let attempts = attempts_of(&new, id).await;
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert_eq!(attempts[0].worker_id.as_deref(), Some(old.worker_id()));
        assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Interrupted));
        assert!(attempts[0].error.as_deref().is_some_and(|e| e.contains("recovered")));
        assert_eq!(attempts[1].worker_id.as_deref(), Some(new.worker_id()));
        assert_eq!(attempts[1].outcome, Some(AttemptOutcome::Completed));

        let old_row = new.worker(old.worker_id()).await?.expect("old worker");
        assert_eq!(old_row.status, WorkerStatus::Superseded);
        assert_eq!(old_row.superseded_by.as_deref(), Some(new.worker_id()));
        // The old worker's attempt lost its task and is stopped.
        common::wait_for_running_count(&old, 0).await;
        old_gate.open();
        let still = new.get_task(id).await?.expect("task");
        assert_eq!(still.result, Some(json!({ "by": "new" })));
        old.stop().await?;
        new.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_superseded_worker_claims_nothing_until_its_successor_stops(db) {
        if !db.shareable() {
            return Ok(());
        }
        let old = started(&db, "pod-a", Gate::new(), "old").await;
        let new = db.manager_with(|b| b.pod_id("pod-a")).await;
        new.start().await?; // no handlers: it claims nothing itself
        wait_worker_status(&new, old.worker_id(), WorkerStatus::Superseded).await;
        wait_until("the old worker to see it is fenced", || async { old.is_fenced().then_some(()) }).await;
        let ids = [new.submit("hold", &1).await?, new.submit("hold", &2).await?];
        new.stop().await?;
        let observer = db.manager().await;
        let stopped_at = observer.worker(new.worker_id()).await?.and_then(|w| w.stopped_at).expect("stopped");
        // Alone in its pod again, the old worker registers anew and claims.
        wait_worker_status(&observer, old.worker_id(), WorkerStatus::Active).await;
        for id in ids {
            let task = wait_for_status(&observer, id, TaskStatus::Running).await;
            assert_eq!(task.worker_id.as_deref(), Some(old.worker_id()));
            let attempts = attempts_of(&observer, id).await;
            assert_eq!(attempts.len(), 1);
            assert!(attempts[0].started_at >= stopped_at, "claimed while fenced: {attempts:?}");
        }
        let row = observer.worker(old.worker_id()).await?.expect("worker");
        assert!(row.meta.get("recovered_at").is_some(), "{row:?}");
        old.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn without_recovery_a_superseded_worker_keeps_and_finishes_its_tasks(db) {
        if !db.shareable() {
            return Ok(());
        }
        let gate = Gate::new();
        let old = started(&db, "pod-a", gate.clone(), "old").await;
        let id = old.submit("hold", &()).await?;
        wait_running_under(&old, id, old.worker_id()).await;
        let new = db.manager_with(|b| b.pod_id("pod-a").recover_running_jobs(false)).await;
        new.start().await?;
        wait_worker_status(&new, old.worker_id(), WorkerStatus::Superseded).await;
        let task = new.get_task(id).await?.expect("task");
        assert_eq!(task.status, TaskStatus::Running);
        assert_eq!(task.worker_id.as_deref(), Some(old.worker_id()));
        gate.open();
        let done = wait_for_status(&new, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "by": "old" })));
        let events = common::events_of(&new, id).await;
        assert!(!events.iter().any(|e| e.event_type == EventType::TaskRecovered));
        old.stop().await?;
        new.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_maintenance_node_reaps_a_crashed_worker_and_recovers_its_tasks(db) {
        if !db.shareable() {
            return Ok(());
        }
        let crashed = Crashable::start(db.builder().pod_id("pod-a"), Gate::new()).await?;
        let observer = db.manager().await;
        let id = observer.submit("hold", &()).await?;
        let lost_worker = crashed.manager.worker_id().to_owned();
        wait_running_under(&observer, id, &lost_worker).await;
        let crashed_id = crashed.crash();

        let survivor = started(&db, "pod-b", open_gate(), "survivor").await;
        wait_worker_status(&observer, &crashed_id, WorkerStatus::Dead).await;
        let done = wait_for_status(&observer, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "by": "survivor" })));
        assert_eq!(done.retry_count, 0, "a recovery is not a retry");
        let recovered = wait_for_event(&observer, id, EventType::TaskRecovered).await;
        assert_eq!(recovered.metadata["recovery_reason"], "worker_dead");
        assert_eq!(recovered.metadata["recovered_from_worker_id"], json!(crashed_id));
        assert_eq!(recovered.metadata["recovered_by_pod_id"], "pod-b");
        let attempts = attempts_of(&observer, id).await;
        let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [Some(AttemptOutcome::Interrupted), Some(AttemptOutcome::Completed)]);
        assert!(observer.maintenance_leader().await?.is_some_and(|l| l.worker_id == survivor.worker_id()));
        survivor.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_maintenance_lease_has_one_holder_and_passes_on_when_it_stops(db) {
        if !db.shareable() {
            return Ok(());
        }
        let mut managers = Vec::new();
        for _ in 0..3 {
            let manager = db.manager().await;
            manager.start().await?;
            managers.push(manager);
        }
        let leader = wait_until("a maintenance node", || async {
            managers[0].maintenance_leader().await.expect("maintenance_leader")
        })
        .await;
        let holders: Vec<_> = managers.iter().filter(|m| m.is_maintenance_leader()).map(|m| m.worker_id().to_owned()).collect();
        assert_eq!(holders, std::slice::from_ref(&leader.worker_id));
        let index = managers.iter().position(|m| m.worker_id() == leader.worker_id).expect("a manager leads");
        let stopped = managers.remove(index);
        stopped.stop().await?;
        let next = wait_until("another maintenance node", || async {
            let leader = managers[0].maintenance_leader().await.expect("maintenance_leader")?;
            (leader.worker_id != stopped.worker_id()).then_some(leader)
        })
        .await;
        assert!(managers.iter().any(|m| m.worker_id() == next.worker_id));
        for manager in managers {
            manager.stop().await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn a_process_built_without_maintenance_never_takes_the_lease(db) {
        if !db.shareable() {
            return Ok(());
        }
        let quiet = db.manager_with(|b| b.maintenance(false)).await;
        quiet.start().await?;
        let busy = db.manager().await;
        busy.start().await?;
        let leader = wait_until("a maintenance node", || async {
            busy.maintenance_leader().await.expect("maintenance_leader")
        })
        .await;
        assert_eq!(leader.worker_id, busy.worker_id());
        assert!(!quiet.is_maintenance_leader());
        quiet.stop().await?;
        busy.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_crashed_maintenance_node_is_replaced_once_its_lease_lapses(db) {
        if !db.shareable() {
            return Ok(());
        }
        let crashed = Crashable::start(db.builder(), Gate::new()).await?;
        let observer = db.manager().await;
        wait_until("the first manager to take the lease", || async {
            let leader = observer.maintenance_leader().await.expect("maintenance_leader")?;
            (leader.worker_id == crashed.manager.worker_id()).then_some(())
        })
        .await;
        let other = db.manager().await;
        other.start().await?;
        let crashed_id = crashed.crash();
        let next = wait_until("the survivor to take the lease", || async {
            let leader = observer.maintenance_leader().await.expect("maintenance_leader")?;
            (leader.worker_id != crashed_id).then_some(leader)
        })
        .await;
        assert_eq!(next.worker_id, other.worker_id());
        other.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn worker_queries_filter_by_pod_and_status(db) {
        if !db.shareable() {
            return Ok(());
        }
        let a1 = started(&db, "pod-a", Gate::new(), "a1").await;
        let b1 = started(&db, "pod-b", Gate::new(), "b1").await;
        let a2 = started(&db, "pod-a", Gate::new(), "a2").await;
        let ids = |workers: Vec<fib_flow::WorkerRecord>| workers.into_iter().map(|w| w.worker_id).collect::<Vec<_>>();
        let all = ids(a2.workers(WorkerFilter::new()).await?);
        assert_eq!(all, [a1.worker_id(), b1.worker_id(), a2.worker_id()], "oldest registration first");
        let pod_a = ids(a2.workers(WorkerFilter::new().pod_id("pod-a")).await?);
        assert_eq!(pod_a, [a1.worker_id(), a2.worker_id()]);
        let active = ids(a2.workers(WorkerFilter::new().status(WorkerStatus::Active)).await?);
        assert_eq!(active, [b1.worker_id(), a2.worker_id()]);
        let superseded = ids(a2.workers(WorkerFilter::new().pod_id("pod-a").status(WorkerStatus::Superseded)).await?);
        assert_eq!(superseded, [a1.worker_id()]);
        assert_eq!(common::invalid_field(a2.workers(WorkerFilter::new().pod_id(" ")).await), "pod_id");
        let id = b1.submit("hold", &()).await?;
        wait_until("a running task counted on its worker", || async {
            let workers = a2.workers(WorkerFilter::new().status(WorkerStatus::Active)).await.expect("workers");
            let total: u64 = workers.iter().map(|w| w.running_tasks).sum();
            (total == 1).then_some(())
        })
        .await;
        a2.cancel_task(id, None).await?;
        for manager in [a1, b1, a2] {
            manager.stop().await?;
        }
        Ok(())
    }
}
