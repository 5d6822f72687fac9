//! The `WorkerStore` contract: the worker registry, orphaned tasks and
//! named leases, plus how the registry narrows `task_list_expired`, run
//! once per backend through `backend_test!`.
//!
//! Times are compared against `store.now_ms()` read before and after the
//! call under test, so the checks hold on any backend clock. Leases end by
//! registering with a 1 ms lease and waiting (with a deadline) until the
//! store clock passes it. Only the scenario that needs two active workers
//! in one pod (which no store method makes) writes rows with raw SQL, and
//! skips `sqlite_memory`, whose database is private to its store.

#[macro_use]
mod common;

use std::sync::Arc;

use anyhow::{ensure, Context};
use fib_flow::store::{
    ClaimName, LeaseAcquireParams, LeaseReleaseParams, LeaseRow, Store, TaskClaimManyParams,
    TaskInsertParams, TaskListExpiredParams, TaskListOrphanedParams, TaskRow, TaskSetStatusParams,
    WorkerHeartbeatParams, WorkerListParams, WorkerPruneParams, WorkerRegisterParams,
    WorkerRegistration, WorkerRow, WORKER_ACTIVE, WORKER_DEAD, WORKER_STOPPED, WORKER_SUPERSEDED,
};

use common::store::{fence, raw_execute, task, within};
use common::{wait_until, TestDb};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A lease long enough never to end during a test, ms.
const LONG: i64 = 3_600_000;

/// Registers `worker` in `pod` with a lease of `ttl_ms`.
async fn register(
    store: &dyn Store,
    worker: &str,
    pod: &str,
    ttl_ms: i64,
) -> anyhow::Result<WorkerRegistration> {
    Ok(store
        .worker_register(&WorkerRegisterParams {
            worker_id: worker.to_owned(),
            pod_id: pod.to_owned(),
            ttl_ms,
            meta: Some(format!(r#"{{"worker":"{worker}"}}"#)),
        })
        .await?)
}

/// The row of `worker`, which must exist.
async fn worker(store: &dyn Store, worker: &str) -> anyhow::Result<WorkerRow> {
    store
        .worker_get(worker)
        .await?
        .with_context(|| format!("worker {worker} is missing"))
}

/// Waits until the store clock is past `ms`.
async fn clock_passes(store: &dyn Store, ms: i64) {
    wait_until(&format!("the store clock to pass {ms}"), || async {
        (store.now_ms().await.expect("now_ms") > ms).then_some(())
    })
    .await;
}

/// Registers `worker` with a 1 ms lease, waits until it ended, and reaps
/// it: the worker is `dead`. Other workers must hold long leases.
async fn dead_worker(store: &dyn Store, worker: &str, pod: &str) -> anyhow::Result<WorkerRow> {
    let registered = register(store, worker, pod, 1).await?;
    clock_passes(store, registered.worker.expires_at).await;
    let reaped = store.worker_reap().await?;
    ensure!(reaped == [worker], "reaping {worker} gave {reaped:?}");
    self::worker(store, worker).await
}

/// Inserts a task named `name` (no other due row may have that name) and
/// claims it under `worker`: it is `running` there.
async fn running_task(store: &dyn Store, worker: &str, name: &str) -> anyhow::Result<TaskRow> {
    running_task_with(store, worker, task(name)).await
}

async fn running_task_with(
    store: &dyn Store,
    worker: &str,
    params: TaskInsertParams,
) -> anyhow::Result<TaskRow> {
    let id = store.task_insert(&params).await?;
    let names = vec![ClaimName {
        name: params.name.clone(),
        limit: 1,
    }];
    let rows = store
        .task_claim_many(&TaskClaimManyParams::new(worker, names, 1))
        .await?;
    ensure!(
        rows.len() == 1 && rows[0].id == id,
        "claiming task {id} under {worker} took {rows:?}"
    );
    rows.into_iter().next().context("claimed row")
}

/// Completes a running task (it no longer runs under its worker).
async fn complete(store: &dyn Store, row: &TaskRow) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    let done = tx
        .task_set_status(&TaskSetStatusParams::completed(
            row.id,
            fence(row)?,
            "null".into(),
        ))
        .await?;
    tx.commit().await?;
    ensure!(done.is_some(), "task {} did not complete", row.id);
    Ok(())
}

async fn acquire(
    store: &dyn Store,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> anyhow::Result<Option<LeaseRow>> {
    Ok(store
        .lease_acquire(&LeaseAcquireParams {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl_ms,
        })
        .await?)
}

async fn release(store: &dyn Store, name: &str, holder: &str) -> anyhow::Result<bool> {
    Ok(store
        .lease_release(&LeaseReleaseParams {
            name: name.to_owned(),
            holder: holder.to_owned(),
        })
        .await?)
}

fn ids_of(workers: &[WorkerRow]) -> Vec<&str> {
    workers.iter().map(|w| w.worker_id.as_str()).collect()
}

async fn list(
    store: &dyn Store,
    pod: Option<&str>,
    status: Option<&str>,
) -> anyhow::Result<Vec<WorkerRow>> {
    Ok(store
        .worker_list(&WorkerListParams {
            pod_id: pod.map(str::to_owned),
            status: status.map(str::to_owned),
        })
        .await?)
}

/// Runs one raw statement with `{workers}` naming the workers table
/// (schema-qualified on servers); returns the rows it changed. `None` on
/// `sqlite_memory` (with a note), whose database is private to its store.
async fn raw(db: &TestDb, sql: &str) -> anyhow::Result<Option<u64>> {
    let workers = match (db.backend, db.schema.as_deref()) {
        ("postgres", Some(schema)) => format!("\"{schema}\".fib_flow_workers"),
        ("mysql", Some(schema)) => format!("`{schema}`.fib_flow_workers"),
        _ => "fib_flow_workers".to_owned(),
    };
    let sql = sql.replace("{workers}", &workers);
    let Some(done) = raw_execute(db, &sql).await? else {
        eprintln!("skipped on {}: the fixture is raw SQL", db.backend);
        return Ok(None);
    };
    Ok(Some(
        done.with_context(|| format!("raw SQL failed: {sql}"))?,
    ))
}

// ---------------------------------------------------------------------------
// worker_register / worker_get
// ---------------------------------------------------------------------------

backend_test! {
    async fn register_inserts_an_active_row_with_a_lease(db) {
        let store = db.store().await;
        let before = store.now_ms().await?;
        let registered = register(&*store, "w-1", "pod-a", 30_000).await?;
        let after = store.now_ms().await?;
        let row = &registered.worker;
        assert_eq!(registered.superseded, Vec::<String>::new());
        assert_eq!(
            (row.worker_id.as_str(), row.pod_id.as_str(), row.status.as_str()),
            ("w-1", "pod-a", WORKER_ACTIVE)
        );
        within("registered_at", row.registered_at, before, after)?;
        assert_eq!(row.last_seen_at, row.registered_at);
        assert_eq!(row.expires_at, row.registered_at + 30_000);
        assert_eq!(
            (row.superseded_at, row.superseded_by.as_deref(), row.dead_at, row.stopped_at),
            (None, None, None, None)
        );
        assert_eq!(row.meta.as_deref(), Some(r#"{"worker":"w-1"}"#));
        assert_eq!(row.running_tasks, 0);
        assert_eq!(worker(&*store, "w-1").await?, *row);
        assert_eq!(store.worker_get("nobody").await?, None);
        Ok(())
    }
}

backend_test! {
    async fn register_replaces_a_row_with_the_same_id(db) {
        let store = db.store().await;
        register(&*store, "w-1", "pod-a", LONG).await?;
        assert!(store.worker_stop("w-1").await?);
        let again = store
            .worker_register(&WorkerRegisterParams {
                worker_id: "w-1".into(),
                pod_id: "pod-b".into(),
                ttl_ms: LONG,
                meta: None,
            })
            .await?;
        // Its own old row is replaced, not superseded.
        assert_eq!(again.superseded, Vec::<String>::new());
        let row = worker(&*store, "w-1").await?;
        assert_eq!(row, again.worker);
        assert_eq!((row.pod_id.as_str(), row.status.as_str()), ("pod-b", WORKER_ACTIVE));
        assert_eq!((row.stopped_at, row.meta.as_deref()), (None, None));
        assert_eq!(ids_of(&list(&*store, None, None).await?), ["w-1"]);

        // Re-registering while active supersedes nobody either.
        let third = register(&*store, "w-1", "pod-b", LONG).await?;
        assert_eq!(third.superseded, Vec::<String>::new());
        assert_eq!(third.worker.status, WORKER_ACTIVE);
        Ok(())
    }
}

backend_test! {
    async fn register_supersedes_only_other_active_workers_of_its_pod(db) {
        let store = db.store().await;
        let dead = dead_worker(&*store, "w-dead", "pod-a").await?;
        register(&*store, "w-stopped", "pod-a", LONG).await?;
        assert!(store.worker_stop("w-stopped").await?);
        let old = register(&*store, "w-old", "pod-a", LONG).await?;
        assert_eq!(old.superseded, Vec::<String>::new());
        let other_pod = register(&*store, "w-other", "pod-b", LONG).await?;

        let new = register(&*store, "w-new", "pod-a", LONG).await?;
        assert_eq!(new.superseded, ["w-old"]);
        let old = worker(&*store, "w-old").await?;
        assert_eq!(old.status, WORKER_SUPERSEDED);
        assert_eq!(old.superseded_at, Some(new.worker.registered_at));
        assert_eq!(old.superseded_by.as_deref(), Some("w-new"));
        // The old lease is left as it was.
        assert_eq!(old.expires_at, old.registered_at + LONG);

        // Not other pods, not dead or stopped workers.
        assert_eq!(worker(&*store, "w-other").await?, other_pod.worker);
        assert_eq!(worker(&*store, "w-dead").await?, dead);
        let stopped = worker(&*store, "w-stopped").await?;
        assert_eq!((stopped.status.as_str(), stopped.superseded_at), (WORKER_STOPPED, None));

        // A superseded worker is not superseded again.
        let newest = register(&*store, "w-newest", "pod-a", LONG).await?;
        assert_eq!(newest.superseded, ["w-new"]);
        assert_eq!(worker(&*store, "w-old").await?, old);
        Ok(())
    }
}

backend_test! {
    async fn register_returns_the_superseded_ids_sorted(db) {
        let store = db.store().await;
        // Several active workers in one pod: only raw SQL makes them.
        let now = store.now_ms().await?;
        let rows: Vec<String> = ["w-c", "w-a", "w-b"]
            .iter()
            .map(|id| format!("('{id}', 'pod-a', 'active', {now}, {now}, {})", now + LONG))
            .collect();
        let sql = format!(
            "INSERT INTO {{workers}} (worker_id, pod_id, status, registered_at, last_seen_at, \
             expires_at) VALUES {}",
            rows.join(", ")
        );
        let Some(inserted) = raw(&db, &sql).await? else {
            return Ok(());
        };
        assert_eq!(inserted, 3);
        let new = register(&*store, "w-new", "pod-a", LONG).await?;
        assert_eq!(new.superseded, ["w-a", "w-b", "w-c"]);
        let active = list(&*store, Some("pod-a"), Some(WORKER_ACTIVE)).await?;
        assert_eq!(ids_of(&active), ["w-new"]);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// worker_heartbeat
// ---------------------------------------------------------------------------

backend_test! {
    async fn heartbeat_renews_an_active_worker(db) {
        let store = db.store().await;
        let registered = register(&*store, "w-1", "pod-a", 1).await?;
        clock_passes(&*store, registered.worker.expires_at).await;
        let before = store.now_ms().await?;
        let renewed = store
            .worker_heartbeat(&WorkerHeartbeatParams { worker_id: "w-1".into(), ttl_ms: 40_000 })
            .await?
            .context("a row")?;
        let after = store.now_ms().await?;
        within("last_seen_at", renewed.last_seen_at, before, after)?;
        assert_eq!(renewed.expires_at, renewed.last_seen_at + 40_000);
        assert_eq!(renewed.status, WORKER_ACTIVE);
        assert_eq!(renewed.registered_at, registered.worker.registered_at);
        assert_eq!(renewed, worker(&*store, "w-1").await?);
        // Its lease no longer ended: the reaper leaves it alone.
        assert_eq!(store.worker_reap().await?, Vec::<String>::new());
        Ok(())
    }
}

backend_test! {
    async fn heartbeat_leaves_other_statuses_alone(db) {
        let store = db.store().await;
        let beat = |id: &str| WorkerHeartbeatParams { worker_id: id.to_owned(), ttl_ms: LONG };
        assert_eq!(store.worker_heartbeat(&beat("nobody")).await?, None);

        register(&*store, "w-old", "pod-a", LONG).await?;
        register(&*store, "w-new", "pod-a", LONG).await?;
        let superseded = worker(&*store, "w-old").await?;
        assert_eq!(store.worker_heartbeat(&beat("w-old")).await?, Some(superseded.clone()));
        assert_eq!(worker(&*store, "w-old").await?, superseded);

        let dead = dead_worker(&*store, "w-dead", "pod-b").await?;
        assert_eq!(store.worker_heartbeat(&beat("w-dead")).await?, Some(dead.clone()));
        assert_eq!(worker(&*store, "w-dead").await?.status, WORKER_DEAD);

        assert!(store.worker_stop("w-new").await?);
        let stopped = worker(&*store, "w-new").await?;
        assert_eq!(store.worker_heartbeat(&beat("w-new")).await?, Some(stopped));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// worker_reap
// ---------------------------------------------------------------------------

backend_test! {
    async fn reap_marks_active_workers_whose_lease_ended_dead(db) {
        let store = db.store().await;
        let live = register(&*store, "w-live", "pod-a", LONG).await?;
        let mut ends = 0;
        for (id, pod) in [("w-c", "pod-b"), ("w-a", "pod-c"), ("w-b", "pod-d")] {
            ends = ends.max(register(&*store, id, pod, 1).await?.worker.expires_at);
        }
        // Stopped and superseded workers whose lease ended are not reaped.
        register(&*store, "w-stopped", "pod-e", 1).await?;
        assert!(store.worker_stop("w-stopped").await?);
        register(&*store, "w-old", "pod-f", 1).await?;
        let ends = ends.max(register(&*store, "w-new", "pod-f", LONG).await?.worker.registered_at + 1);
        clock_passes(&*store, ends).await;

        let before = store.now_ms().await?;
        let reaped = store.worker_reap().await?;
        let after = store.now_ms().await?;
        assert_eq!(reaped, ["w-a", "w-b", "w-c"]);
        for id in ["w-a", "w-b", "w-c"] {
            let row = worker(&*store, id).await?;
            assert_eq!(row.status, WORKER_DEAD, "{id}");
            within("dead_at", row.dead_at.context("dead_at")?, before, after)?;
        }
        assert_eq!(worker(&*store, "w-live").await?, live.worker);
        assert_eq!(worker(&*store, "w-stopped").await?.status, WORKER_STOPPED);
        assert_eq!(worker(&*store, "w-old").await?.status, WORKER_SUPERSEDED);
        assert_eq!(worker(&*store, "w-new").await?.status, WORKER_ACTIVE);

        // Dead workers are not reaped again.
        assert_eq!(store.worker_reap().await?, Vec::<String>::new());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// worker_stop
// ---------------------------------------------------------------------------

backend_test! {
    async fn stop_marks_a_worker_stopped_once(db) {
        let store = db.store().await;
        register(&*store, "w-1", "pod-a", LONG).await?;
        let before = store.now_ms().await?;
        assert!(store.worker_stop("w-1").await?);
        let after = store.now_ms().await?;
        let row = worker(&*store, "w-1").await?;
        assert_eq!(row.status, WORKER_STOPPED);
        within("stopped_at", row.stopped_at.context("stopped_at")?, before, after)?;
        assert!(!store.worker_stop("w-1").await?);
        assert_eq!(worker(&*store, "w-1").await?, row);
        assert!(!store.worker_stop("nobody").await?);

        // A superseded worker can still stop.
        register(&*store, "w-2", "pod-b", LONG).await?;
        register(&*store, "w-3", "pod-b", LONG).await?;
        assert!(store.worker_stop("w-2").await?);
        assert_eq!(worker(&*store, "w-2").await?.status, WORKER_STOPPED);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// worker_list
// ---------------------------------------------------------------------------

backend_test! {
    async fn list_filters_by_pod_and_status_in_registration_order(db) {
        let store = db.store().await;
        register(&*store, "w-b", "pod-a", LONG).await?;
        register(&*store, "w-a", "pod-b", LONG).await?;
        register(&*store, "w-c", "pod-a", LONG).await?; // supersedes w-b
        register(&*store, "w-d", "pod-c", LONG).await?;
        assert!(store.worker_stop("w-d").await?);

        let all = list(&*store, None, None).await?;
        let mut expected: Vec<(i64, String)> =
            all.iter().map(|w| (w.registered_at, w.worker_id.clone())).collect();
        expected.sort();
        let got: Vec<(i64, String)> =
            all.iter().map(|w| (w.registered_at, w.worker_id.clone())).collect();
        assert_eq!(got, expected, "ordered by registered_at, then worker_id");
        let mut every: Vec<&str> = ids_of(&all);
        every.sort();
        assert_eq!(every, ["w-a", "w-b", "w-c", "w-d"]);

        let pod_a = list(&*store, Some("pod-a"), None).await?;
        let mut pod_a_ids = ids_of(&pod_a);
        pod_a_ids.sort();
        assert_eq!(pod_a_ids, ["w-b", "w-c"]);
        assert_eq!(ids_of(&list(&*store, Some("pod-a"), Some(WORKER_ACTIVE)).await?), ["w-c"]);
        assert_eq!(ids_of(&list(&*store, Some("pod-a"), Some(WORKER_SUPERSEDED)).await?), ["w-b"]);
        assert_eq!(ids_of(&list(&*store, None, Some(WORKER_STOPPED)).await?), ["w-d"]);
        let active = list(&*store, None, Some(WORKER_ACTIVE)).await?;
        let mut active = ids_of(&active);
        active.sort();
        assert_eq!(active, ["w-a", "w-c"]);
        assert_eq!(list(&*store, Some("pod-z"), None).await?, []);
        assert_eq!(list(&*store, None, Some(WORKER_DEAD)).await?, []);
        Ok(())
    }
}

backend_test! {
    async fn list_breaks_registration_ties_by_worker_id(db) {
        let store = db.store().await;
        register(&*store, "w-b", "pod-b", LONG).await?;
        register(&*store, "w-c", "pod-c", LONG).await?;
        register(&*store, "w-a", "pod-a", LONG).await?;
        let Some(changed) = raw(&db, "UPDATE {workers} SET registered_at = 1000").await? else {
            return Ok(());
        };
        assert_eq!(changed, 3);
        let sql = "UPDATE {workers} SET registered_at = 999 WHERE worker_id = 'w-c'";
        assert_eq!(raw(&db, sql).await?, Some(1));
        assert_eq!(ids_of(&list(&*store, None, None).await?), ["w-c", "w-a", "w-b"]);
        Ok(())
    }
}

backend_test! {
    async fn workers_count_their_running_tasks(db) {
        let store = db.store().await;
        register(&*store, "w-1", "pod-a", LONG).await?;
        register(&*store, "w-2", "pod-b", LONG).await?;
        register(&*store, "w-3", "pod-c", LONG).await?;
        running_task(&*store, "w-1", "a").await?;
        let done = running_task(&*store, "w-1", "b").await?;
        running_task(&*store, "w-1", "c").await?;
        running_task(&*store, "w-2", "d").await?;
        running_task(&*store, "w-unregistered", "e").await?;
        complete(&*store, &done).await?;
        // Pending and finished tasks are not counted.
        store.task_insert(&task("f")).await?;

        let counts: Vec<(String, i64)> = list(&*store, None, None)
            .await?
            .into_iter()
            .map(|w| (w.worker_id, w.running_tasks))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert_eq!(
            counts,
            [("w-1".to_owned(), 2), ("w-2".to_owned(), 1), ("w-3".to_owned(), 0)]
        );
        assert_eq!(worker(&*store, "w-1").await?.running_tasks, 2);
        let beat = WorkerHeartbeatParams { worker_id: "w-2".into(), ttl_ms: LONG };
        assert_eq!(store.worker_heartbeat(&beat).await?.context("w-2")?.running_tasks, 1);
        // Re-registering keeps the count: it belongs to the tasks.
        assert_eq!(register(&*store, "w-1", "pod-a", LONG).await?.worker.running_tasks, 2);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// worker_prune
// ---------------------------------------------------------------------------

backend_test! {
    async fn prune_deletes_idle_workers_not_seen_lately(db) {
        let store = db.store().await;
        let active = register(&*store, "w-active", "pod-a", 1).await?;
        register(&*store, "w-stopped", "pod-b", LONG).await?;
        assert!(store.worker_stop("w-stopped").await?);
        register(&*store, "w-old", "pod-c", LONG).await?;
        let newest = register(&*store, "w-new", "pod-c", LONG).await?;
        let busy = register(&*store, "w-busy", "pod-d", LONG).await?;
        running_task(&*store, "w-busy", "a").await?;
        assert!(store.worker_stop("w-busy").await?);
        clock_passes(&*store, newest.worker.last_seen_at.max(busy.worker.last_seen_at)).await;

        // Seen recently: nothing goes.
        let recent = WorkerPruneParams { older_than_ms: LONG, limit: 100 };
        assert_eq!(store.worker_prune(&recent).await?, 0);

        let all = WorkerPruneParams { older_than_ms: 0, limit: 100 };
        assert_eq!(store.worker_prune(&all).await?, 2);
        let mut left = ids_of(&list(&*store, None, None).await?).into_iter().map(str::to_owned).collect::<Vec<_>>();
        left.sort();
        // Active (even with its lease ended), or running a task: kept.
        assert_eq!(left, ["w-active", "w-busy", "w-new"]);
        assert_eq!(worker(&*store, "w-active").await?, active.worker);
        assert_eq!(store.worker_prune(&all).await?, 0);
        Ok(())
    }
}

backend_test! {
    async fn prune_deletes_at_most_the_limit(db) {
        let store = db.store().await;
        let mut seen = 0;
        for id in ["w-1", "w-2", "w-3"] {
            seen = seen.max(register(&*store, id, id, LONG).await?.worker.last_seen_at);
            assert!(store.worker_stop(id).await?);
        }
        clock_passes(&*store, seen).await;
        let params = WorkerPruneParams { older_than_ms: 0, limit: 2 };
        assert_eq!(store.worker_prune(&params).await?, 2);
        assert_eq!(list(&*store, None, None).await?.len(), 1);
        assert_eq!(store.worker_prune(&params).await?, 1);
        assert_eq!(list(&*store, None, None).await?, []);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_list_orphaned
// ---------------------------------------------------------------------------

backend_test! {
    async fn orphaned_lists_running_tasks_of_registered_workers_gone(db) {
        let store = db.store().await;
        register(&*store, "w-old", "pod-a", LONG).await?;
        register(&*store, "w-live", "pod-b", LONG).await?;
        register(&*store, "w-stopped", "pod-c", LONG).await?;
        let of_old = running_task(&*store, "w-old", "a").await?;
        running_task(&*store, "w-live", "b").await?;
        let of_stopped = running_task(&*store, "w-stopped", "c").await?;
        let finished = running_task(&*store, "w-stopped", "d").await?;
        running_task(&*store, "w-unregistered", "e").await?;
        let of_old_2 = running_task_with(
            &*store,
            "w-old",
            fib_flow::store::TaskInsertParams { max_attempts: 5, ..task("f") },
        )
        .await?;
        complete(&*store, &finished).await?;
        register(&*store, "w-new", "pod-a", LONG).await?; // supersedes w-old
        assert!(store.worker_stop("w-stopped").await?);
        let dead = dead_worker(&*store, "w-dead", "pod-d").await?;
        let of_dead = running_task(&*store, &dead.worker_id, "g").await?;

        let orphaned = store
            .task_list_orphaned(&TaskListOrphanedParams { limit: 100 })
            .await?;
        let got: Vec<_> = orphaned
            .iter()
            .map(|o| (o.id, o.name.as_str(), o.worker_id.as_str(), o.attempt, o.worker_status.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (of_old.id, "a", "w-old", 1, WORKER_SUPERSEDED),
                (of_stopped.id, "c", "w-stopped", 1, WORKER_STOPPED),
                (of_old_2.id, "f", "w-old", 1, WORKER_SUPERSEDED),
                (of_dead.id, "g", "w-dead", 1, WORKER_DEAD),
            ]
        );

        let first = store
            .task_list_orphaned(&TaskListOrphanedParams { limit: 2 })
            .await?;
        let first: Vec<i64> = first.iter().map(|o| o.id).collect();
        assert_eq!(first, [of_old.id, of_stopped.id]);
        Ok(())
    }
}

backend_test! {
    async fn orphaned_is_empty_while_every_worker_is_active(db) {
        let store = db.store().await;
        register(&*store, "w-1", "pod-a", LONG).await?;
        running_task(&*store, "w-1", "a").await?;
        running_task(&*store, "w-unregistered", "b").await?;
        let orphaned = store
            .task_list_orphaned(&TaskListOrphanedParams { limit: 100 })
            .await?;
        assert_eq!(orphaned, []);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_list_expired and the registry
// ---------------------------------------------------------------------------

backend_test! {
    async fn expired_leases_of_active_registered_workers_are_not_listed(db) {
        let store = db.store().await;
        register(&*store, "w-live", "pod-a", LONG).await?;
        register(&*store, "w-old", "pod-b", LONG).await?;
        register(&*store, "w-new", "pod-b", LONG).await?; // supersedes w-old
        let dead = dead_worker(&*store, "w-dead", "pod-c").await?;
        let of_live = running_task(&*store, "w-live", "a").await?;
        let of_dead = running_task(&*store, &dead.worker_id, "b").await?;
        let of_unregistered = running_task(&*store, "w-unregistered", "c").await?;
        let of_old = running_task(&*store, "w-old", "d").await?;
        let past_total = running_task_with(
            &*store,
            "w-live",
            TaskInsertParams { timeout_ms: 1, ..task("e") },
        )
        .await?;
        let newest = [&of_live, &of_dead, &of_unregistered, &of_old, &past_total]
            .iter()
            .filter_map(|r| r.last_active_at.max(r.started_at))
            .max()
            .context("last_active_at")?;
        clock_passes(&*store, newest + 1).await;

        let expired = store
            .task_list_expired(&TaskListExpiredParams { heartbeat_timeout_ms: 0, limit: 100 })
            .await?;
        let got: Vec<(i64, &str, bool)> = expired
            .iter()
            .map(|e| (e.id, e.worker_id.as_str(), e.total_timeout))
            .collect();
        // The active worker's lapsed task is left to the registry; its task
        // past the total timeout is listed all the same.
        assert_eq!(
            got,
            [
                (of_dead.id, "w-dead", false),
                (of_unregistered.id, "w-unregistered", false),
                (of_old.id, "w-old", false),
                (past_total.id, "w-live", true),
            ]
        );
        assert!(!got.iter().any(|&(id, _, _)| id == of_live.id));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------

backend_test! {
    async fn lease_acquire_takes_a_free_lease_and_refuses_a_held_one(db) {
        let store = db.store().await;
        assert_eq!(store.lease_get("maintenance").await?, None);
        let before = store.now_ms().await?;
        let lease = acquire(&*store, "maintenance", "w-1", 30_000)
            .await?
            .context("a free lease is taken")?;
        let after = store.now_ms().await?;
        assert_eq!((lease.name.as_str(), lease.holder.as_str()), ("maintenance", "w-1"));
        within("acquired_at", lease.acquired_at, before, after)?;
        assert_eq!(lease.renewed_at, lease.acquired_at);
        assert_eq!(lease.expires_at, lease.acquired_at + 30_000);
        assert_eq!(store.lease_get("maintenance").await?, Some(lease.clone()));

        // Held: another holder gets nothing, and nothing changes.
        assert_eq!(acquire(&*store, "maintenance", "w-2", 30_000).await?, None);
        assert_eq!(store.lease_get("maintenance").await?, Some(lease.clone()));

        // Another name is a separate lease.
        let other = acquire(&*store, "other", "w-2", 30_000).await?.context("other")?;
        assert_eq!(other.holder, "w-2");
        Ok(())
    }
}

backend_test! {
    async fn lease_acquire_renews_for_its_holder(db) {
        let store = db.store().await;
        let first = acquire(&*store, "maintenance", "w-1", 30_000).await?.context("taken")?;
        clock_passes(&*store, first.renewed_at).await;
        let before = store.now_ms().await?;
        let renewed = acquire(&*store, "maintenance", "w-1", 50_000).await?.context("renewed")?;
        let after = store.now_ms().await?;
        assert_eq!(renewed.holder, "w-1");
        assert_eq!(renewed.acquired_at, first.acquired_at);
        within("renewed_at", renewed.renewed_at, before, after)?;
        assert!(renewed.renewed_at > first.renewed_at);
        assert_eq!(renewed.expires_at, renewed.renewed_at + 50_000);
        assert_eq!(store.lease_get("maintenance").await?, Some(renewed));
        Ok(())
    }
}

backend_test! {
    async fn lease_acquire_takes_over_a_lease_that_ended(db) {
        let store = db.store().await;
        let first = acquire(&*store, "maintenance", "w-1", 1).await?.context("taken")?;
        clock_passes(&*store, first.expires_at).await;
        // Ended but never released: still readable.
        assert_eq!(store.lease_get("maintenance").await?, Some(first.clone()));

        let before = store.now_ms().await?;
        let taken = acquire(&*store, "maintenance", "w-2", 30_000).await?.context("taken over")?;
        let after = store.now_ms().await?;
        assert_eq!(taken.holder, "w-2");
        within("acquired_at", taken.acquired_at, before, after)?;
        assert_eq!(taken.renewed_at, taken.acquired_at);
        assert_eq!(taken.expires_at, taken.acquired_at + 30_000);

        // The former holder is now refused.
        assert_eq!(acquire(&*store, "maintenance", "w-1", 30_000).await?, None);
        assert_eq!(store.lease_get("maintenance").await?, Some(taken));
        Ok(())
    }
}

backend_test! {
    async fn lease_release_only_by_its_holder(db) {
        let store = db.store().await;
        assert!(!release(&*store, "maintenance", "w-1").await?);
        let lease = acquire(&*store, "maintenance", "w-1", 30_000).await?.context("taken")?;
        assert!(!release(&*store, "maintenance", "w-2").await?);
        assert_eq!(store.lease_get("maintenance").await?, Some(lease));
        assert!(release(&*store, "maintenance", "w-1").await?);
        assert_eq!(store.lease_get("maintenance").await?, None);
        assert!(!release(&*store, "maintenance", "w-1").await?);
        // Released: free for anyone.
        let next = acquire(&*store, "maintenance", "w-2", 30_000).await?.context("retaken")?;
        assert_eq!(next.holder, "w-2");
        Ok(())
    }
}

backend_test! {
    async fn lease_acquire_is_atomic_between_concurrent_callers(db) {
        let store: Arc<dyn Store> = db.store().await;
        for round in 0..3 {
            let name = format!("role-{round}");
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..8 {
                let store = Arc::clone(&store);
                let name = name.clone();
                calls.spawn(async move {
                    let holder = format!("w-{i}");
                    let got = acquire(&*store, &name, &holder, 30_000).await;
                    (holder, got)
                });
            }
            let mut winners = Vec::new();
            while let Some(joined) = calls.join_next().await {
                let (holder, got) = joined?;
                if let Some(lease) = got? {
                    ensure!(lease.holder == holder, "{holder} got {lease:?}");
                    winners.push(holder);
                }
            }
            ensure!(winners.len() == 1, "{name}: winners {winners:?}");
            let held = store.lease_get(&name).await?.context("lease row")?;
            assert_eq!(held.holder, winners[0]);
        }
        Ok(())
    }
}

backend_test! {
    async fn a_claim_requiring_an_active_worker_claims_only_for_one(db) {
        let store = db.store().await;
        let id = store.task_insert(&task("job")).await?;
        let claim = |worker: &str| TaskClaimManyParams {
            require_active_worker: true,
            ..TaskClaimManyParams::new(
                worker,
                vec![ClaimName { name: "job".into(), limit: 1 }],
                1,
            )
        };
        // Not registered, or registered but superseded: nothing.
        assert!(store.task_claim_many(&claim("w-unknown")).await?.is_empty());
        register(&*store, "w-old", "pod-a", LONG).await?;
        register(&*store, "w-new", "pod-a", LONG).await?;
        assert!(store.task_claim_many(&claim("w-old")).await?.is_empty());
        let pending = store.task_get(id).await?.context("task")?;
        assert_eq!((pending.status.as_str(), pending.attempt), ("pending", 0));
        // The active worker claims it.
        let rows = store.task_claim_many(&claim("w-new")).await?;
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
        assert_eq!(rows[0].worker_id.as_deref(), Some("w-new"));
        Ok(())
    }
}
