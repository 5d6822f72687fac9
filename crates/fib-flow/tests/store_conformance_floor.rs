//! The `FloorStore` contract (the benchmark floor's bare insert,
//! completion and reset) and `FloorProbe` on top of it, once per backend.

#[macro_use]
mod common;

use anyhow::{ensure, Context};
use fib_flow::floor::{FloorProbe, FLOOR_TASK_NAME};
use fib_flow::store::{
    AuditRows, AuditScope, ClaimName, FloorCompleteParams, LeaseAcquireParams, NewAttempt, NextRun,
    Store, TaskBatchParams, TaskClaimManyParams, TaskInsertParams, TaskListParams, TaskQueryParams,
    TaskRow, WorkerListParams, WorkerRegisterParams,
};
use fib_flow::{TaskFilter, TaskStatus};

use common::store::{attempts_of, created_event, events_of, get, task, within};

/// `n` rows of `template` (with its payload) as one floor insert.
fn rows_of(template: TaskInsertParams, n: usize) -> anyhow::Result<TaskBatchParams> {
    let payloads = vec![template.payload.clone(); n];
    Ok(TaskBatchParams::new(
        template,
        payloads,
        created_event(None),
    )?)
}

/// Every task row, by creation time then id.
async fn all_tasks(store: &dyn Store) -> anyhow::Result<Vec<TaskRow>> {
    Ok(store
        .task_list(&TaskListParams {
            filter: TaskFilter::new(),
            limit: None,
        })
        .await?)
}

/// Claims up to `limit` rows of `name` for `worker` as the probe does (the
/// store's claim, no registry check, no audit).
async fn claim(
    store: &dyn Store,
    worker: &str,
    name: &str,
    limit: i64,
) -> anyhow::Result<Vec<TaskRow>> {
    let names = vec![ClaimName {
        name: name.to_owned(),
        limit,
    }];
    Ok(store
        .task_claim_many(&TaskClaimManyParams::new(worker, names, limit))
        .await?)
}

backend_test! {
    async fn floor_insert_writes_pending_rows_as_a_submit_does_without_events(db) {
        let store = db.store().await;
        assert_eq!(store.floor_task_insert_many(&rows_of(task("noop"), 0)?).await?, 0);
        let before = store.now_ms().await?;
        assert_eq!(store.floor_task_insert_many(&rows_of(task("noop"), 1)?).await?, 1);
        assert_eq!(store.floor_task_insert_many(&rows_of(task("noop"), 5)?).await?, 5);
        let delayed = TaskInsertParams {
            next_run: NextRun::AfterMs(60_000),
            ..task("later")
        };
        let at = TaskInsertParams {
            next_run: NextRun::AtMs(before + 7),
            tag: Some("t".into()),
            ..task("at")
        };
        assert_eq!(store.floor_task_insert_many(&rows_of(delayed, 1)?).await?, 1);
        assert_eq!(store.floor_task_insert_many(&rows_of(at, 1)?).await?, 1);
        let after = store.now_ms().await?;

        let rows = all_tasks(&*store).await?;
        assert_eq!(rows.len(), 8);
        let template = task("noop");
        for row in &rows {
            assert_eq!(row.status, "pending", "{row:?}");
            assert_eq!(row.kind, "async");
            assert_eq!(row.payload, template.payload);
            assert_eq!(
                (row.priority, row.timeout_ms, row.max_attempts, row.retry_interval_ms),
                (0, template.timeout_ms, template.max_attempts, template.retry_interval_ms)
            );
            assert_eq!((row.attempt, row.worker_id.as_deref(), row.finished_at), (0, None, None));
            assert_eq!(row.parent_id, None);
            within("created_at", row.created_at, before, after)?;
            assert_eq!(row.last_event_at, Some(row.created_at));
            assert_eq!(row.last_event_type.as_deref(), Some("task_created"));
            let events = store.event_count(&events_of(AuditScope::Task(row.id))).await?;
            assert_eq!(events, 0, "no task_created event for {}", row.id);
        }
        let due = |name: &str| rows.iter().find(|r| r.name == name).context("row");
        let noop = due("noop")?;
        assert_eq!(noop.next_run_at, noop.created_at);
        let later = due("later")?;
        assert_eq!(later.next_run_at, later.created_at + 60_000);
        let at = due("at")?;
        assert_eq!((at.next_run_at, at.tag.as_deref()), (before + 7, Some("t")));
        Ok(())
    }
}

backend_test! {
    async fn floor_claim_and_complete_are_the_bare_claim_and_completion(db) {
        let store = db.store().await;
        for priority in [1, 9, 5, 3] {
            let row = TaskInsertParams {
                priority,
                ..task("noop")
            };
            store.floor_task_insert_many(&rows_of(row, 1)?).await?;
        }
        let ids: Vec<i64> = all_tasks(&*store).await?.iter().map(|r| r.id).collect();

        // The claim: at most `limit`, priority first, now running.
        let claimed = claim(&*store, "floor-w", "noop", 2).await?;
        let claimed_ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
        assert_eq!(claimed_ids, [ids[1], ids[2]]);
        for id in &claimed_ids {
            let row = get(&*store, *id).await?;
            assert_eq!((row.status.as_str(), row.worker_id.as_deref()), ("running", Some("floor-w")));
            assert_eq!(row.attempt, 1);
        }

        // The completion: only running rows among the ids change.
        assert_eq!(store.floor_task_complete_many(&FloorCompleteParams::new(Vec::new())).await?, 0);
        let before = store.now_ms().await?;
        let mut listed = claimed_ids.clone();
        listed.push(ids[0]);
        let done = store.floor_task_complete_many(&FloorCompleteParams::new(listed)).await?;
        let after = store.now_ms().await?;
        assert_eq!(done, 2);
        for id in &claimed_ids {
            let row = get(&*store, *id).await?;
            assert_eq!(row.status, "completed");
            assert_eq!(row.previous_status.as_deref(), Some("running"));
            assert_eq!((row.worker_id.as_deref(), row.result.as_deref()), (None, Some("null")));
            let finished = row.finished_at.context("finished_at")?;
            within("finished_at", finished, before, after)?;
            assert_eq!(row.last_active_at, Some(finished));
            assert_eq!(row.last_event_at, Some(finished));
            assert_eq!(row.last_event_type.as_deref(), Some("task_completed"));
            assert_eq!(store.event_count(&events_of(AuditScope::Task(*id))).await?, 0);
            assert_eq!(store.attempt_count(&attempts_of(AuditScope::Task(*id))).await?, 0);
        }
        let untouched = get(&*store, ids[0]).await?;
        assert_eq!((untouched.status.as_str(), untouched.finished_at), ("pending", None));
        // Completed rows are not claimed again; the rest come by priority.
        let rest: Vec<i64> = claim(&*store, "floor-w", "noop", 10).await?.iter().map(|r| r.id).collect();
        assert_eq!(rest, [ids[3], ids[0]]);
        assert_eq!(store.floor_task_complete_many(&FloorCompleteParams::new(rest)).await?, 2);
        ensure!(claim(&*store, "floor-w", "noop", 10).await?.is_empty(), "nothing left");
        Ok(())
    }
}

backend_test! {
    async fn floor_reset_empties_every_table_but_the_migrations(db) {
        let store = db.store().await;
        let versions = store.migration_versions().await?;
        let submitted = store
            .task_submit(&task("a"), &created_event(None))
            .await?;
        store.floor_task_insert_many(&rows_of(task("b"), 3)?).await?;
        let now = store.now_ms().await?;
        let mut tx = store.begin().await?;
        tx.audit_write(&AuditRows {
            opened: vec![NewAttempt {
                task_id: submitted,
                attempt: 1,
                worker_id: "w1".into(),
                started_at: now,
            }],
            ..AuditRows::default()
        })
        .await?;
        tx.commit().await?;
        store
            .worker_register(&WorkerRegisterParams {
                worker_id: "w1".into(),
                pod_id: "p1".into(),
                ttl_ms: 60_000,
                meta: None,
            })
            .await?;
        store
            .lease_acquire(&LeaseAcquireParams {
                name: "maintenance".into(),
                holder: "w1".into(),
                ttl_ms: 60_000,
            })
            .await?;
        assert_eq!(store.event_count(&events_of(AuditScope::Task(submitted))).await?, 1);
        assert_eq!(store.attempt_count(&attempts_of(AuditScope::Task(submitted))).await?, 1);

        for _ in 0..2 {
            store.floor_reset().await?;
            assert!(all_tasks(&*store).await?.is_empty());
            assert_eq!(store.task_query_count(&TaskQueryParams::default()).await?, 0);
            assert_eq!(store.event_count(&events_of(AuditScope::Task(submitted))).await?, 0);
            assert_eq!(store.attempt_count(&attempts_of(AuditScope::Task(submitted))).await?, 0);
            assert!(store.worker_list(&WorkerListParams::default()).await?.is_empty());
            assert_eq!(store.lease_get("maintenance").await?, None);
            assert_eq!(store.migration_versions().await?, versions);
        }
        // The ids start over.
        store.floor_task_insert_many(&rows_of(task("c"), 1)?).await?;
        let rows = all_tasks(&*store).await?;
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
        Ok(())
    }
}

backend_test! {
    async fn floor_probe_inserts_claims_and_completes_through_a_manager(db) {
        let manager = db.manager().await;
        let probe = FloorProbe::new(&manager)?;
        probe.insert(0).await?;
        probe.insert(1).await?;
        probe.insert(7).await?;
        let count = |status: TaskStatus| {
            let manager = manager.clone();
            async move {
                let stats = manager.task_stats(None).await?;
                Ok::<u64, anyhow::Error>(
                    stats.iter().filter(|s| s.status == status && s.name == FLOOR_TASK_NAME).map(|s| s.count).sum(),
                )
            }
        };
        assert_eq!(count(TaskStatus::Pending).await?, 8);

        let first = probe.claim("floor-w", 3).await?;
        assert_eq!(first.len(), 3);
        // Equal priority: due time, then id (the single insert came first).
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(first, sorted);
        assert_eq!(count(TaskStatus::Running).await?, 3);
        let record = manager.get_task(fib_flow::TaskId(first[0])).await?.context("claimed")?;
        assert_eq!(record.payload, Some(serde_json::json!({ "n": 1 })));
        assert_eq!(probe.complete(&first).await?, 3);

        let mut drained = 3;
        loop {
            let ids = probe.claim("floor-w", 2).await?;
            ensure!(ids.len() <= 2, "claimed {ids:?}");
            if ids.is_empty() {
                break;
            }
            drained += probe.complete(&ids).await?;
        }
        assert_eq!(drained, 8);
        assert_eq!(count(TaskStatus::Completed).await?, 8);

        probe.reset().await?;
        assert!(manager.task_stats(None).await?.is_empty());
        manager.stop().await?;
        ensure!(FloorProbe::new(&manager).is_err(), "a stopped manager makes no probe");
        Ok(())
    }
}
