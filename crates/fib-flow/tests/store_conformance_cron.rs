//! The cron half of the `Store` contract: `task_cron_upsert`,
//! `task_cron_get`, `task_cron_update`, `task_delete`, the status changes
//! that start a new cycle (`rearmed`, `resumed_cron`), children kept apart
//! per cycle, and the schema's cron constraints. Run once per backend
//! through `backend_test!`, like `store_conformance.rs` (STYLE §2.6, rule
//! 9); extend this file when a cron store method changes.
//!
//! Status changes go through `Store::begin` → `StoreTx` → `commit`, as the
//! engine's do. Times are absolute values chosen by the test, or compared
//! against `store.now_ms()` read before and after the call under test.

#[macro_use]
mod common;

use anyhow::{bail, ensure, Context};
use fib_flow::state::{plan_failure, FailureKind, Transition};
use fib_flow::store::{
    ChildRow, ChildrenUpdate, ClaimName, CronRow, CronUpdateParams, CronUpsertParams, Fence,
    NextRun, ParentLink, Store, TaskChildFinishedParams, TaskClaimManyParams, TaskInsertParams,
    TaskListChildrenParams, TaskListParams, TaskRef, TaskRow, TaskSetStatusParams, WaitingParent,
};
use fib_flow::{ChildFailure, TaskKind, TaskStatus};

use common::store::{fence, get, link_only, raw_execute, task, within};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// The worker that fixtures claim with.
const WORKER: &str = "worker-a";

/// A first occurrence far in the future (never claimed by accident).
const T1: i64 = 1_900_000_000_000;
/// Another one, so a moved `next_run_at` is told apart from a kept one.
const T2: i64 = 1_900_000_360_000;

/// A cron task's insert params, due at once.
fn cron_task(name: &str) -> TaskInsertParams {
    TaskInsertParams {
        kind: TaskKind::Cron,
        cron_expr: Some("0 * * * *".into()),
        ..task(name)
    }
}

/// Upsert params of a cron task `name` on `expr` (UTC, `run_once`), first
/// due at `next_at`, under `key`.
fn upsert(name: &str, expr: &str, next_at: i64, key: Option<&str>) -> CronUpsertParams {
    CronUpsertParams {
        task: TaskInsertParams {
            kind: TaskKind::Cron,
            cron_expr: Some(expr.to_owned()),
            next_run: NextRun::AtMs(next_at),
            ..task(name)
        },
        cron_tz: "UTC".into(),
        cron_misfire: "run_once".into(),
        unique_key: key.map(str::to_owned),
    }
}

/// Update params that change nothing (pending rows re-arm).
fn no_change(id: i64) -> CronUpdateParams {
    CronUpdateParams {
        id,
        cron_expr: None,
        cron_tz: None,
        cron_misfire: None,
        payload: None,
        next_run_at: None,
        rearm_from: vec![TaskStatus::Pending],
    }
}

/// The schedule `task_cron_get` returns.
fn schedule(expr: &str, tz: &str, misfire: &str) -> Option<CronRow> {
    Some(CronRow {
        cron_expr: Some(expr.to_owned()),
        cron_tz: Some(tz.to_owned()),
        cron_misfire: Some(misfire.to_owned()),
    })
}

/// Claims task `id`, which must be the only due row of `name`.
async fn claim_one(store: &dyn Store, name: &str, id: i64) -> anyhow::Result<TaskRow> {
    let names = vec![ClaimName {
        name: name.to_owned(),
        limit: 1,
    }];
    let rows = store
        .task_claim_many(&TaskClaimManyParams::new(WORKER, names, 1))
        .await?;
    let got: Vec<i64> = rows.iter().map(|row| row.id).collect();
    ensure!(got == [id], "claiming {name} took {got:?}, expected [{id}]");
    rows.into_iter().next().context("claimed row")
}

/// Applies one change in its own transaction and commits it.
async fn apply(store: &dyn Store, change: TaskSetStatusParams) -> anyhow::Result<Option<TaskRef>> {
    let mut tx = store.begin().await?;
    let applied = tx.task_set_status(&change).await?;
    tx.commit().await?;
    // Only what propagation reads; the audit's columns are checked elsewhere.
    Ok(applied.map(link_only))
}

/// The reference a change applied to the top-level cron `row` returns.
fn cron_ref(row: &TaskRow, status: &str, error: Option<&str>) -> TaskRef {
    TaskRef {
        id: row.id,
        name: row.name.clone(),
        kind: "cron".into(),
        status: status.to_owned(),
        parent_id: None,
        parent_stage: None,
        parent_cycle: None,
        error: error.map(str::to_owned),
        ..TaskRef::default()
    }
}

/// A running cron task `name` at stage 1 on its third attempt, with
/// `retry_count` 1 and error `boom`, so a new cycle visibly resets them.
async fn running_at_stage_1(store: &dyn Store, name: &str) -> anyhow::Result<TaskRow> {
    let id = store.task_insert(&cron_task(name)).await?;
    let first = claim_one(store, name, id).await?;
    let advanced = TaskSetStatusParams::advanced(id, fence(&first)?, None);
    ensure!(apply(store, advanced).await?.is_some(), "advance {name}");
    let second = claim_one(store, name, id).await?;
    let plan = plan_failure(
        TaskKind::Cron,
        FailureKind::Error,
        0,
        3,
        std::time::Duration::ZERO,
    );
    let failed = TaskSetStatusParams::failed(
        id,
        fence(&second)?,
        &plan,
        FailureKind::Error,
        "boom".into(),
    );
    ensure!(apply(store, failed).await?.is_some(), "fail {name}");
    let row = claim_one(store, name, id).await?;
    ensure!(
        (
            row.stage,
            row.retry_count,
            row.attempt,
            row.error.as_deref()
        ) == (1, 1, 3, Some("boom")),
        "fixture: {row:?}"
    );
    Ok(row)
}

/// The running `parent` starts waiting for one child, inserted in the same
/// transaction with the parent's current stage and cycle. Returns its id.
async fn await_one_child(store: &dyn Store, parent: &TaskRow, child: &str) -> anyhow::Result<i64> {
    let update = ChildrenUpdate {
        count: 1,
        on_failure: ChildFailure::FailParent,
    };
    let change = TaskSetStatusParams::awaiting_children(parent.id, fence(parent)?, update, None);
    let mut tx = store.begin().await?;
    ensure!(
        tx.task_set_status(&change).await?.is_some(),
        "task {} did not start waiting",
        parent.id
    );
    let link = ParentLink {
        root_id: parent.id,
        parent_id: parent.id,
        parent_stage: parent.stage,
        parent_cycle: parent.cycle,
    };
    let id = tx
        .task_insert(&TaskInsertParams {
            parent: Some(link),
            ..task(child)
        })
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Counts one finished child of (`stage`, `cycle`) on `parent_id` and
/// commits.
async fn child_finished(
    store: &dyn Store,
    parent_id: i64,
    parent_stage: i64,
    parent_cycle: i64,
) -> anyhow::Result<Option<WaitingParent>> {
    let mut tx = store.begin().await?;
    let waiting = tx
        .task_child_finished(&TaskChildFinishedParams {
            parent_id,
            parent_stage,
            parent_cycle,
        })
        .await?;
    tx.commit().await?;
    Ok(waiting)
}

/// The ids of the children of (`stage`, `cycle`) of `parent_id`.
async fn children(
    store: &dyn Store,
    parent_id: i64,
    parent_stage: i64,
    parent_cycle: i64,
) -> anyhow::Result<Vec<ChildRow>> {
    Ok(store
        .task_list_children(&TaskListChildrenParams {
            parent_id,
            parent_stage,
            parent_cycle,
        })
        .await?)
}

// ---------------------------------------------------------------------------
// task_cron_upsert
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_cron_upsert_without_a_key_inserts_a_new_row_each_time(db) {
        let store = db.store().await;
        let params = CronUpsertParams {
            task: TaskInsertParams {
                payload: Some(r#"{"report":"daily"}"#.into()),
                priority: 4,
                tag: Some("ops".into()),
                timeout_ms: 1_500,
                max_attempts: 5,
                retry_interval_ms: 2_500,
                ..upsert("nightly", "0 2 * * *", T1, None).task
            },
            cron_tz: "Europe/Berlin".into(),
            cron_misfire: "skip".into(),
            unique_key: None,
        };
        let before = store.now_ms().await?;
        let first = store.task_cron_upsert(&params).await?;
        let second = store.task_cron_upsert(&params).await?;
        let after = store.now_ms().await?;
        assert!(first < second, "ids {first}, {second}: NULL keys never collide");

        for id in [first, second] {
            let row = get(&*store, id).await?;
            within("created_at", row.created_at, before, after)?;
            let expected = TaskRow {
                id,
                name: "nightly".into(),
                kind: "cron".into(),
                status: "pending".into(),
                priority: 4,
                payload: Some(r#"{"report":"daily"}"#.into()),
                tag: Some("ops".into()),
                result: None,
                error: None,
                stage: 0,
                cycle: 0,
                timeout_ms: 1_500,
                retry_count: 0,
                max_attempts: 5,
                retry_interval_ms: 2_500,
                cron_expr: Some("0 2 * * *".into()),
                root_id: None,
                parent_id: None,
                parent_stage: None,
                total_children: 0,
                pending_children: 0,
                worker_id: None,
                attempt: 0,
                suspend_reason: None,
                previous_status: None,
                current_stage_name: None,
                progress_text: None,
                progress_percent: None,
                last_event_at: None,
                last_event_type: None,
                created_at: row.created_at,
                next_run_at: T1,
                started_at: None,
                last_active_at: None,
                finished_at: None,
            };
            assert_eq!(row, expected);
            assert_eq!(
                store.task_cron_get(id).await?,
                schedule("0 2 * * *", "Europe/Berlin", "skip")
            );
        }
        assert_eq!(store.task_list(&TaskListParams::default()).await?.len(), 2);
        Ok(())
    }
}

backend_test! {
    /// A key is matched exactly, byte for byte: keys that differ only in
    /// case or in trailing spaces name different schedules.
    async fn task_cron_upsert_matches_keys_exactly(db) {
        let store = db.store().await;
        let keys = ["nightly", "Nightly", "nightly ", "nightly  "];
        let mut ids = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let name = format!("job-{i}");
            ids.push(store.task_cron_upsert(&upsert(&name, "0 2 * * *", T1, Some(key))).await?);
        }
        let rows = store.task_list(&TaskListParams::default()).await?;
        let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
        assert_eq!(names, ["job-0", "job-1", "job-2", "job-3"], "ids {ids:?}: one row per key");
        // Each key still finds its own row.
        for (i, key) in keys.iter().enumerate() {
            let again = store.task_cron_upsert(&upsert(&format!("job-{i}"), "0 2 * * *", T1, Some(key))).await?;
            assert_eq!(again, ids[i], "key {key:?}");
        }
        Ok(())
    }
}

backend_test! {
    async fn task_cron_upsert_with_a_key_updates_that_row_and_returns_its_id(db) {
        let store = db.store().await;
        let id = store.task_cron_upsert(&upsert("tick", "0 * * * *", T1, Some("k"))).await?;
        let other = store.task_cron_upsert(&upsert("tick", "0 * * * *", T1, Some("other"))).await?;
        assert_ne!(id, other, "another key is another row");
        let original = get(&*store, id).await?;
        let untouched = get(&*store, other).await?;

        let changed = CronUpsertParams {
            task: TaskInsertParams {
                payload: Some(r#"{"v":2}"#.into()),
                priority: -3,
                tag: Some("new-tag".into()),
                timeout_ms: 9_000,
                max_attempts: 7,
                retry_interval_ms: 4_000,
                ..upsert("tock", "*/5 * * * *", T2, Some("k")).task
            },
            cron_tz: "Asia/Tokyo".into(),
            cron_misfire: "skip".into(),
            unique_key: Some("k".into()),
        };
        assert_eq!(store.task_cron_upsert(&changed).await?, id, "same key, same id");
        let stored = get(&*store, id).await?;
        assert_eq!(
            stored,
            TaskRow {
                name: "tock".into(),
                priority: -3,
                payload: Some(r#"{"v":2}"#.into()),
                tag: Some("new-tag".into()),
                timeout_ms: 9_000,
                max_attempts: 7,
                retry_interval_ms: 4_000,
                cron_expr: Some("*/5 * * * *".into()),
                // Pending, and the schedule changed: the new first occurrence.
                next_run_at: T2,
                ..original
            }
        );
        assert_eq!(store.task_cron_get(id).await?, schedule("*/5 * * * *", "Asia/Tokyo", "skip"));
        assert_eq!(get(&*store, other).await?, untouched);
        assert_eq!(store.task_list(&TaskListParams::default()).await?.len(), 2);
        Ok(())
    }
}

backend_test! {
    async fn task_cron_upsert_moves_a_pending_row_only_when_its_expression_or_zone_changed(db) {
        let store = db.store().await;
        let id = store.task_cron_upsert(&upsert("tick", "0 * * * *", T1, Some("k"))).await?;
        let original = get(&*store, id).await?;

        // The same upsert again (with a later first occurrence) changes nothing.
        assert_eq!(store.task_cron_upsert(&upsert("tick", "0 * * * *", T2, Some("k"))).await?, id);
        assert_eq!(get(&*store, id).await?, original, "an identical upsert");

        // A new payload or misfire policy is stored, the due time kept.
        let payload_only = CronUpsertParams {
            task: TaskInsertParams {
                payload: Some(r#"{"n":2}"#.into()),
                ..upsert("tick", "0 * * * *", T2, Some("k")).task
            },
            cron_misfire: "skip".into(),
            ..upsert("tick", "0 * * * *", T2, Some("k"))
        };
        assert_eq!(store.task_cron_upsert(&payload_only).await?, id);
        let stored = get(&*store, id).await?;
        assert_eq!(
            stored,
            TaskRow { payload: Some(r#"{"n":2}"#.into()), ..original.clone() },
            "a payload change keeps next_run_at"
        );
        assert_eq!(store.task_cron_get(id).await?, schedule("0 * * * *", "UTC", "skip"));

        // A new zone alone moves it.
        let zone_only = CronUpsertParams {
            cron_tz: "America/New_York".into(),
            ..upsert("tick", "0 * * * *", T2, Some("k"))
        };
        assert_eq!(store.task_cron_upsert(&zone_only).await?, id);
        assert_eq!(get(&*store, id).await?.next_run_at, T2, "a zone change moves next_run_at");
        assert_eq!(
            store.task_cron_get(id).await?,
            schedule("0 * * * *", "America/New_York", "run_once")
        );

        // A new expression alone moves it.
        let expr_only = CronUpsertParams {
            cron_tz: "America/New_York".into(),
            ..upsert("tick", "30 * * * *", T1, Some("k"))
        };
        assert_eq!(store.task_cron_upsert(&expr_only).await?, id);
        let stored = get(&*store, id).await?;
        assert_eq!(
            (stored.cron_expr.as_deref(), stored.next_run_at),
            (Some("30 * * * *"), T1),
            "an expression change moves next_run_at"
        );
        assert_eq!(store.task_list(&TaskListParams::default()).await?.len(), 1);
        Ok(())
    }
}

backend_test! {
    async fn task_cron_upsert_keeps_the_due_time_and_status_of_a_row_that_is_not_pending(db) {
        let store = db.store().await;
        // Paused.
        let paused = store.task_cron_upsert(&upsert("p", "0 * * * *", T1, Some("paused"))).await?;
        assert!(apply(&*store, TaskSetStatusParams::paused(paused)).await?.is_some());
        let before = get(&*store, paused).await?;
        let changed = CronUpsertParams {
            cron_tz: "Asia/Tokyo".into(),
            ..upsert("p", "*/10 * * * *", T2, Some("paused"))
        };
        assert_eq!(store.task_cron_upsert(&changed).await?, paused);
        assert_eq!(
            get(&*store, paused).await?,
            TaskRow { cron_expr: Some("*/10 * * * *".into()), ..before },
            "a paused row keeps its status and next_run_at"
        );
        assert_eq!(store.task_cron_get(paused).await?, schedule("*/10 * * * *", "Asia/Tokyo", "run_once"));

        // Running (due now, then claimed).
        let now = store.now_ms().await?;
        let running = store.task_cron_upsert(&upsert("r", "0 * * * *", now, Some("running"))).await?;
        let claimed = claim_one(&*store, "r", running).await?;
        assert_eq!(store.task_cron_upsert(&upsert("r", "*/10 * * * *", T2, Some("running"))).await?, running);
        assert_eq!(
            get(&*store, running).await?,
            TaskRow { cron_expr: Some("*/10 * * * *".into()), ..claimed },
            "a running row keeps its status, owner and next_run_at"
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_cron_get / task_cron_update / task_delete
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_cron_get_returns_the_schedule_of_cron_tasks_only(db) {
        let store = db.store().await;
        let upserted = store.task_cron_upsert(&upsert("u", "15 3 * * 1", T1, None)).await?;
        let inserted = store.task_insert(&cron_task("i")).await?;
        let plain = store.task_insert(&task("async")).await?;
        assert_eq!(store.task_cron_get(upserted).await?, schedule("15 3 * * 1", "UTC", "run_once"));
        // Inserted without a zone or policy: only the expression.
        assert_eq!(
            store.task_cron_get(inserted).await?,
            Some(CronRow { cron_expr: Some("0 * * * *".into()), cron_tz: None, cron_misfire: None })
        );
        assert_eq!(store.task_cron_get(plain).await?, None, "an async task");
        assert_eq!(store.task_cron_get(plain + 1_000).await?, None, "a missing task");
        Ok(())
    }
}

backend_test! {
    async fn task_cron_update_changes_only_the_given_fields(db) {
        let store = db.store().await;
        let id = store.task_cron_upsert(&upsert("tick", "0 * * * *", T1, None)).await?;
        let original = get(&*store, id).await?;

        // Nothing given: the task exists, so true, and nothing changes.
        assert!(store.task_cron_update(&no_change(id)).await?);
        assert_eq!(get(&*store, id).await?, original);
        assert_eq!(store.task_cron_get(id).await?, schedule("0 * * * *", "UTC", "run_once"));

        let steps: [(CronUpdateParams, Option<CronRow>); 3] = [
            (
                CronUpdateParams { cron_expr: Some("5 * * * *".into()), ..no_change(id) },
                schedule("5 * * * *", "UTC", "run_once"),
            ),
            (
                CronUpdateParams { cron_tz: Some("Europe/Paris".into()), ..no_change(id) },
                schedule("5 * * * *", "Europe/Paris", "run_once"),
            ),
            (
                CronUpdateParams { cron_misfire: Some("skip".into()), ..no_change(id) },
                schedule("5 * * * *", "Europe/Paris", "skip"),
            ),
        ];
        for (update, expected) in steps {
            assert!(store.task_cron_update(&update).await?, "{update:?}");
            assert_eq!(store.task_cron_get(id).await?, expected, "{update:?}");
            let stored = get(&*store, id).await?;
            assert_eq!(
                stored,
                TaskRow { cron_expr: Some("5 * * * *".into()), ..original.clone() },
                "{update:?} changes nothing else"
            );
        }

        // A new payload, then Some(None) clears it; None keeps it.
        let set = CronUpdateParams { payload: Some(Some(r#"{"v":3}"#.into())), ..no_change(id) };
        assert!(store.task_cron_update(&set).await?);
        assert_eq!(get(&*store, id).await?.payload.as_deref(), Some(r#"{"v":3}"#));
        assert!(store.task_cron_update(&no_change(id)).await?);
        assert_eq!(get(&*store, id).await?.payload.as_deref(), Some(r#"{"v":3}"#));
        let clear = CronUpdateParams { payload: Some(None), ..no_change(id) };
        assert!(store.task_cron_update(&clear).await?);
        let stored = get(&*store, id).await?;
        assert_eq!(
            stored,
            TaskRow { payload: None, cron_expr: Some("5 * * * *".into()), ..original }
        );
        assert_eq!(store.task_cron_get(id).await?, schedule("5 * * * *", "Europe/Paris", "skip"));
        Ok(())
    }
}

backend_test! {
    async fn task_cron_update_moves_next_run_at_only_for_a_status_in_rearm_from(db) {
        let store = db.store().await;
        let pending = store.task_cron_upsert(&upsert("p", "0 * * * *", T1, None)).await?;
        let paused = store.task_cron_upsert(&upsert("q", "0 * * * *", T1, None)).await?;
        assert!(apply(&*store, TaskSetStatusParams::paused(paused)).await?.is_some());

        // No new time: kept, even from a listed status.
        let no_time = CronUpdateParams { cron_expr: Some("1 * * * *".into()), ..no_change(pending) };
        assert!(store.task_cron_update(&no_time).await?);
        assert_eq!(get(&*store, pending).await?.next_run_at, T1);

        // A pending row with pending listed moves.
        let rearm = CronUpdateParams { next_run_at: Some(T2), ..no_change(pending) };
        assert!(store.task_cron_update(&rearm).await?);
        assert_eq!(get(&*store, pending).await?.next_run_at, T2);

        // A paused row with only pending listed keeps its time; the
        // expression still changes.
        let before = get(&*store, paused).await?;
        let update = CronUpdateParams {
            cron_expr: Some("2 * * * *".into()),
            next_run_at: Some(T2),
            ..no_change(paused)
        };
        assert!(store.task_cron_update(&update).await?);
        assert_eq!(
            get(&*store, paused).await?,
            TaskRow { cron_expr: Some("2 * * * *".into()), ..before.clone() }
        );
        // Nothing listed: kept.
        let none_listed = CronUpdateParams { rearm_from: vec![], ..update.clone() };
        assert!(store.task_cron_update(&none_listed).await?);
        assert_eq!(get(&*store, paused).await?.next_run_at, T1);
        // Paused listed: moves, and the status stays.
        let listed = CronUpdateParams {
            rearm_from: vec![TaskStatus::Pending, TaskStatus::Paused],
            ..update
        };
        assert!(store.task_cron_update(&listed).await?);
        let stored = get(&*store, paused).await?;
        assert_eq!((stored.status.as_str(), stored.next_run_at), ("paused", T2));
        Ok(())
    }
}

backend_test! {
    async fn task_cron_update_refuses_async_and_missing_tasks_and_changes_nothing(db) {
        let store = db.store().await;
        let plain = store.task_insert(&task("async")).await?;
        let cron = store.task_cron_upsert(&upsert("tick", "0 * * * *", T1, None)).await?;
        let plain_before = get(&*store, plain).await?;
        let cron_before = get(&*store, cron).await?;
        for id in [plain, cron + 1_000] {
            let update = CronUpdateParams {
                id,
                cron_expr: Some("5 * * * *".into()),
                cron_tz: Some("Europe/Paris".into()),
                cron_misfire: Some("skip".into()),
                payload: Some(None),
                next_run_at: Some(T2),
                rearm_from: vec![TaskStatus::Pending],
            };
            assert!(!store.task_cron_update(&update).await?, "task {id}");
        }
        assert_eq!(get(&*store, plain).await?, plain_before, "the async task is unchanged");
        assert_eq!(store.task_get(cron + 1_000).await?, None, "no row was created");
        assert_eq!(get(&*store, cron).await?, cron_before, "the cron task is unchanged");
        assert_eq!(store.task_cron_get(cron).await?, schedule("0 * * * *", "UTC", "run_once"));
        Ok(())
    }
}

backend_test! {
    async fn task_delete_deletes_one_row_once(db) {
        let store = db.store().await;
        let a = store.task_insert(&task("a")).await?;
        let b = store.task_insert(&task("b")).await?;
        let cron = store.task_cron_upsert(&upsert("c", "0 * * * *", T1, Some("k"))).await?;
        let a_row = get(&*store, a).await?;
        let cron_row = get(&*store, cron).await?;

        assert!(store.task_delete(b).await?);
        assert_eq!(store.task_get(b).await?, None);
        assert!(!store.task_delete(b).await?, "already deleted");
        assert!(!store.task_delete(cron + 1_000).await?, "never existed");
        assert_eq!(get(&*store, a).await?, a_row);
        assert_eq!(get(&*store, cron).await?, cron_row);

        // A deleted cron task frees its key: the next upsert inserts anew.
        assert!(store.task_delete(cron).await?);
        assert_eq!(store.task_cron_get(cron).await?, None);
        let again = store.task_cron_upsert(&upsert("c", "0 * * * *", T1, Some("k"))).await?;
        assert_ne!(again, cron);
        let ids: Vec<i64> = store.task_list(&TaskListParams::default()).await?.iter().map(|r| r.id).collect();
        assert_eq!(ids, [a, again]);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// A new cycle: rearmed / resumed_cron
// ---------------------------------------------------------------------------

backend_test! {
    async fn rearmed_starts_a_new_cycle_of_the_running_attempt_only(db) {
        let store = db.store().await;
        let row = running_at_stage_1(&*store, "tick").await?;

        // Another worker's or another attempt's fence: refused, nothing changes.
        for stale in [
            Fence { worker_id: "worker-b".into(), attempt: row.attempt },
            Fence { worker_id: WORKER.into(), attempt: row.attempt - 1 },
        ] {
            let change = TaskSetStatusParams::rearmed(row.id, stale.clone(), Some("1".into()), T1);
            assert_eq!(apply(&*store, change).await?, None, "{stale:?}");
            assert_eq!(get(&*store, row.id).await?, row, "{stale:?}");
        }

        // The right fence: pending at next_at, stage 0, cycle + 1, fresh budget, result set.
        let next_at = store.now_ms().await?;
        let before = store.now_ms().await?;
        let change = TaskSetStatusParams::rearmed(row.id, fence(&row)?, Some(r#"{"ok":1}"#.into()), next_at);
        assert_eq!(apply(&*store, change.clone()).await?, Some(cron_ref(&row, "pending", Some("boom"))));
        let after = store.now_ms().await?;
        let stored = get(&*store, row.id).await?;
        within("last_active_at", stored.last_active_at.context("last_active_at")?, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                status: "pending".into(),
                stage: 0,
                cycle: row.cycle + 1,
                retry_count: 0,
                result: Some(r#"{"ok":1}"#.into()),
                next_run_at: next_at,
                pending_children: 0,
                last_active_at: stored.last_active_at,
                previous_status: Some("running".into()),
                ..row.clone()
            }
        );
        assert_eq!(apply(&*store, change).await?, None, "no longer running");

        // Without a result the previous one is kept.
        let row = claim_one(&*store, "tick", row.id).await?;
        let change = TaskSetStatusParams::rearmed(row.id, fence(&row)?, None, T2);
        assert!(apply(&*store, change).await?.is_some());
        let stored = get(&*store, row.id).await?;
        assert_eq!(
            (stored.status.as_str(), stored.cycle, stored.stage, stored.result.as_deref(), stored.next_run_at),
            ("pending", 2, 0, Some(r#"{"ok":1}"#), T2)
        );
        Ok(())
    }
}

backend_test! {
    async fn resumed_cron_starts_a_new_cycle_of_a_paused_task_only(db) {
        let store = db.store().await;
        let row = running_at_stage_1(&*store, "tick").await?;
        // Not paused: refused, nothing changes.
        assert_eq!(apply(&*store, TaskSetStatusParams::resumed_cron(row.id, T1)).await?, None);
        assert_eq!(get(&*store, row.id).await?, row);

        assert!(apply(&*store, TaskSetStatusParams::paused(row.id)).await?.is_some());
        let paused = get(&*store, row.id).await?;
        let change = TaskSetStatusParams::resumed_cron(row.id, T1);
        assert_eq!(apply(&*store, change.clone()).await?, Some(cron_ref(&row, "pending", Some("boom"))));
        let stored = get(&*store, row.id).await?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                status: "pending".into(),
                stage: 0,
                cycle: paused.cycle + 1,
                retry_count: 0,
                next_run_at: T1,
                pending_children: 0,
                last_active_at: stored.last_active_at,
                previous_status: Some("paused".into()),
                ..paused
            }
        );
        assert_eq!(apply(&*store, change).await?, None, "no longer paused");
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Children per cycle
// ---------------------------------------------------------------------------

backend_test! {
    async fn children_are_listed_and_counted_only_in_their_own_cycle(db) {
        let store = db.store().await;
        let id = store.task_insert(&cron_task("parent")).await?;
        // Cycle 0, stage 0: one child.
        let cycle0 = claim_one(&*store, "parent", id).await?;
        assert_eq!((cycle0.cycle, cycle0.stage), (0, 0));
        let old = await_one_child(&*store, &cycle0, "old").await?;
        assert_eq!(get(&*store, old).await?.parent_stage, Some(0));
        // A count for cycle 1 does not reach the parent waiting in cycle 0.
        let waiting0 = get(&*store, id).await?;
        assert_eq!(child_finished(&*store, id, 0, 1).await?, None);
        assert_eq!(get(&*store, id).await?, waiting0);

        // The cycle ends (a failed child pauses the cron parent) and a new
        // one starts at stage 0 of cycle 1, with one new child.
        let failed = TaskSetStatusParams::failed_by_child(id, Transition::ChildFailedCron, "old failed".into());
        assert!(apply(&*store, failed).await?.is_some());
        let now = store.now_ms().await?;
        assert!(apply(&*store, TaskSetStatusParams::resumed_cron(id, now)).await?.is_some());
        let cycle1 = claim_one(&*store, "parent", id).await?;
        assert_eq!((cycle1.cycle, cycle1.stage), (1, 0));
        let new = await_one_child(&*store, &cycle1, "new").await?;

        let child = |id: i64, name: &str| ChildRow {
            id,
            name: name.into(),
            status: "pending".into(),
            result: None,
            error: None,
        };
        assert_eq!(children(&*store, id, 0, 0).await?, [child(old, "old")]);
        assert_eq!(children(&*store, id, 0, 1).await?, [child(new, "new")]);
        assert_eq!(children(&*store, id, 0, 2).await?, Vec::<ChildRow>::new());
        assert_eq!(children(&*store, id, 1, 1).await?, Vec::<ChildRow>::new());

        // The parent waits at stage 0 of cycle 1: the old cycle's child is
        // not counted, the new one is.
        let waiting1 = get(&*store, id).await?;
        assert_eq!((waiting1.status.as_str(), waiting1.pending_children), ("suspended", 1));
        assert_eq!(child_finished(&*store, id, 0, 0).await?, None);
        assert_eq!(get(&*store, id).await?, waiting1, "nothing changed");
        assert_eq!(
            child_finished(&*store, id, 0, 1).await?,
            Some(WaitingParent {
                id,
                kind: "cron".into(),
                pending_children: 0,
                on_child_failure: Some("fail_parent".into()),
            })
        );
        assert_eq!(get(&*store, id).await?, TaskRow { pending_children: 0, ..waiting1 });
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Schema invariants of cron rows (raw SQL on shareable backends)
// ---------------------------------------------------------------------------

backend_test! {
    /// `cron_has_expr` and `misfire_valid` reject rows the store would
    /// never write, whoever writes them.
    async fn cron_check_constraints_reject_invalid_rows(db) {
        let store = db.store().await;
        if !db.shareable() {
            eprintln!("skipped on {}: raw SQL needs a second connection", db.backend);
            return Ok(());
        }
        let insert = |columns: &str, values: &str| {
            format!(
                "INSERT INTO {{tasks}} (name, status, timeout_ms, max_attempts, created_at, next_run_at, kind{columns}) \
                 VALUES ('t', 'pending', 1000, 1, 1, 1{values})"
            )
        };
        // Valid rows go in, so the failures below are the constraints'.
        for sql in [
            insert("", ", 'async'"),
            insert(", cron_expr", ", 'cron', '* * * * *'"),
            insert(", cron_expr, cron_misfire", ", 'cron', '* * * * *', 'run_once'"),
            insert(", cron_expr, cron_misfire", ", 'cron', '* * * * *', 'skip'"),
            insert(", cron_expr, cron_misfire", ", 'cron', '* * * * *', NULL"),
        ] {
            assert_eq!(raw_execute(&db, &sql).await?.context("raw SQL")??, 1, "{sql}");
        }

        let invalid = [
            ("cron_has_expr", insert("", ", 'cron'")),
            ("cron_has_expr", insert(", cron_expr, cron_misfire", ", 'cron', NULL, 'skip'")),
            ("misfire_valid", insert(", cron_expr, cron_misfire", ", 'cron', '* * * * *', 'sometimes'")),
            ("misfire_valid", insert(", cron_expr, cron_misfire", ", 'cron', '* * * * *', ''")),
            ("misfire_valid", insert(", cron_expr, cron_misfire", ", 'cron', '* * * * *', 'RUN_ONCE'")),
            // Updates into an invalid state are refused too.
            ("cron_has_expr", "UPDATE {tasks} SET cron_expr = NULL WHERE kind = 'cron'".to_owned()),
            ("cron_has_expr", "UPDATE {tasks} SET kind = 'cron' WHERE kind = 'async'".to_owned()),
            ("misfire_valid", "UPDATE {tasks} SET cron_misfire = 'later' WHERE cron_misfire = 'skip'".to_owned()),
        ];
        for (constraint, sql) in invalid {
            let error = match raw_execute(&db, &sql).await?.context("raw SQL")? {
                Ok(rows) => bail!("{constraint}: accepted ({rows} rows) {sql}"),
                Err(error) => error,
            };
            let db_error = error
                .as_database_error()
                .with_context(|| format!("{constraint}: not a database error: {error}"))?;
            assert!(
                db_error.message().contains(constraint),
                "{constraint}: {}",
                db_error.message()
            );
            // sqlx maps MySQL's check error (3819) but not MariaDB's (4025).
            if db.backend != "mysql" {
                assert_eq!(
                    db_error.kind(),
                    sqlx::error::ErrorKind::CheckViolation,
                    "{constraint}: {db_error}"
                );
            }
        }
        let stored = store.task_list(&TaskListParams::default()).await?;
        assert_eq!(stored.len(), 5, "only the valid rows were stored");
        assert_eq!(stored.iter().filter(|row| row.kind == "cron").count(), 4);
        Ok(())
    }
}
