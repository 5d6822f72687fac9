//! The workflow half of the `Store` contract: the `StoreTx` methods and the
//! status changes of parents and children (stages, suspension, child
//! counting, cancellation), the workflow filters of `task_list` /
//! `task_delete_many`, the context blob, and the schema's workflow
//! constraints. Run once per backend through `backend_test!`, like
//! `store_conformance.rs` (STYLE §2.6, rule 9); extend this file when a
//! workflow store method changes.
//!
//! Every write goes through `Store::begin` → `StoreTx` → `commit`, as the
//! engine's writes do; dropping a transaction without committing rolls it
//! back. Times are compared against `store.now_ms()` read before and after
//! the call under test, so the checks hold on any backend clock.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use fib_flow::state::{plan_failure, FailureKind, Transition};
use fib_flow::store::{
    self, ChildRow, ChildrenUpdate, ClaimName, Fence, ParentLink, Store, StoreTx,
    TaskCancelChildrenParams, TaskChildFinishedParams, TaskClaimManyParams, TaskInsertParams,
    TaskListChildrenParams, TaskListParams, TaskRef, TaskRow, TaskSetStatusParams, WaitingParent,
    AWAITING_CHILDREN,
};
use fib_flow::{ChildFailure, TaskFilter, TaskId, TaskKind, TaskStatus};

use common::store::{fence, get, link_only, raw_execute, task, within};
use common::{wait_until, TestDb};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// The worker that fixtures claim with.
const WORKER: &str = "worker-a";

/// A cron task's insert params.
fn cron_task(name: &str) -> TaskInsertParams {
    TaskInsertParams {
        kind: TaskKind::Cron,
        cron_expr: Some("0 * * * *".into()),
        ..task(name)
    }
}

/// Where a child of `parent` (at the parent's current stage) sits, as the
/// engine links it.
fn link(parent: &TaskRow) -> ParentLink {
    ParentLink {
        root_id: parent.root_id.unwrap_or(parent.id),
        parent_id: parent.id,
        parent_stage: parent.stage,
        parent_cycle: parent.cycle,
    }
}

/// Insert params of a child of `parent` at the parent's current stage.
fn child_of(name: &str, parent: &TaskRow) -> TaskInsertParams {
    TaskInsertParams {
        parent: Some(link(parent)),
        ..task(name)
    }
}

/// The rows of `name` that `worker` claims (at most `limit`).
async fn claim(store: &dyn Store, name: &str, limit: i64) -> anyhow::Result<Vec<TaskRow>> {
    let names = vec![ClaimName {
        name: name.to_owned(),
        limit,
    }];
    Ok(store
        .task_claim_many(&TaskClaimManyParams::new(WORKER, names, limit))
        .await?)
}

/// Claims task `id`, which must be the only due row of its name.
async fn claim_one(store: &dyn Store, name: &str, id: i64) -> anyhow::Result<TaskRow> {
    let rows = claim(store, name, 1).await?;
    let got: Vec<i64> = rows.iter().map(|row| row.id).collect();
    ensure!(got == [id], "claiming {name} took {got:?}, expected [{id}]");
    rows.into_iter().next().context("claimed row")
}

/// Inserts `params` and claims exactly that row (its name must have no
/// other due row).
async fn claimed(store: &dyn Store, params: TaskInsertParams) -> anyhow::Result<TaskRow> {
    let id = store.task_insert(&params).await?;
    claim_one(store, &params.name, id).await
}

/// Applies one change in its own transaction and commits it.
async fn apply(store: &dyn Store, change: TaskSetStatusParams) -> anyhow::Result<Option<TaskRef>> {
    Ok(apply_full(store, change).await?.map(link_only))
}

/// Like `apply`, with every column the change returns.
async fn apply_full(
    store: &dyn Store,
    change: TaskSetStatusParams,
) -> anyhow::Result<Option<TaskRef>> {
    let mut tx = store.begin().await?;
    let applied = tx.task_set_status(&change).await?;
    tx.commit().await?;
    Ok(applied)
}

/// The reference a change applied to `row` returns, in `status` with
/// `error`.
fn task_ref(row: &TaskRow, status: &str, error: Option<&str>) -> TaskRef {
    TaskRef {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.clone(),
        status: status.to_owned(),
        parent_id: row.parent_id,
        parent_stage: row.parent_stage,
        parent_cycle: row.parent_stage.map(|_| 0),
        error: error.map(str::to_owned),
        ..TaskRef::default()
    }
}

/// The claimed (running) `parent` starts waiting for one child per name,
/// in one transaction with the inserts, as the engine does. Returns the
/// children's ids.
async fn await_children(
    store: &dyn Store,
    parent: &TaskRow,
    names: &[&str],
    on_failure: ChildFailure,
    context: Option<Vec<u8>>,
) -> anyhow::Result<Vec<i64>> {
    let update = ChildrenUpdate {
        count: i64::try_from(names.len())?,
        on_failure,
    };
    let change = TaskSetStatusParams::awaiting_children(parent.id, fence(parent)?, update, context);
    let mut tx = store.begin().await?;
    ensure!(
        tx.task_set_status(&change).await?.is_some(),
        "task {} did not start waiting for children",
        parent.id
    );
    let mut ids = Vec::new();
    for name in names {
        ids.push(tx.task_insert(&child_of(name, parent)).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Counts one finished child of `parent_stage` on `parent_id` and commits.
async fn child_finished(
    store: &dyn Store,
    parent_id: i64,
    parent_stage: i64,
) -> anyhow::Result<Option<WaitingParent>> {
    let mut tx = store.begin().await?;
    let waiting = tx
        .task_child_finished(&TaskChildFinishedParams {
            parent_id,
            parent_stage,
            parent_cycle: 0,
        })
        .await?;
    tx.commit().await?;
    Ok(waiting)
}

/// What `task_child_finished` would return, rolled back (so nothing
/// changes): reads a waiting parent's `on_child_failure` through the store.
async fn peek_waiting(
    store: &dyn Store,
    parent_id: i64,
    parent_stage: i64,
) -> anyhow::Result<Option<WaitingParent>> {
    let mut tx = store.begin().await?;
    let waiting = tx
        .task_child_finished(&TaskChildFinishedParams {
            parent_id,
            parent_stage,
            parent_cycle: 0,
        })
        .await?;
    drop(tx);
    Ok(waiting)
}

fn waiting(row: &TaskRow, pending_children: i64, policy: ChildFailure) -> WaitingParent {
    WaitingParent {
        id: row.id,
        kind: row.kind.clone(),
        pending_children,
        on_child_failure: Some(policy.as_str().to_owned()),
    }
}

/// A retry plan (attempts left, due at once).
fn retry_plan(kind: TaskKind, failure: FailureKind) -> fib_flow::state::FailurePlan {
    plan_failure(kind, failure, 0, 3, Duration::ZERO)
}

/// Inserts `params` and moves the row to `status` through store methods:
/// `suspended` is an explicit suspension ("approval"), `completed` has the
/// result `true`, `failed` / `timeout` / `permanently_failed` the errors
/// `boom` / `too slow` / `fatal`.
async fn task_in(
    store: &dyn Store,
    params: TaskInsertParams,
    status: TaskStatus,
) -> anyhow::Result<TaskRow> {
    let kind = params.kind;
    let id = match status {
        TaskStatus::Pending => store.task_insert(&params).await?,
        TaskStatus::Paused => {
            let id = store.task_insert(&params).await?;
            ensure!(apply(store, TaskSetStatusParams::paused(id))
                .await?
                .is_some());
            id
        }
        _ => {
            let row = claimed(store, params).await?;
            let change = match status {
                TaskStatus::Running => None,
                TaskStatus::Completed => Some(TaskSetStatusParams::completed(
                    row.id,
                    fence(&row)?,
                    "true".into(),
                )),
                TaskStatus::Failed => Some(TaskSetStatusParams::failed(
                    row.id,
                    fence(&row)?,
                    &retry_plan(kind, FailureKind::Error),
                    FailureKind::Error,
                    "boom".into(),
                )),
                TaskStatus::Timeout => Some(TaskSetStatusParams::failed(
                    row.id,
                    fence(&row)?,
                    &retry_plan(kind, FailureKind::Timeout),
                    FailureKind::Timeout,
                    "too slow".into(),
                )),
                TaskStatus::PermanentlyFailed => Some(TaskSetStatusParams::failed(
                    row.id,
                    fence(&row)?,
                    &plan_failure(kind, FailureKind::Error, 0, 1, Duration::ZERO),
                    FailureKind::Error,
                    "fatal".into(),
                )),
                _ => Some(TaskSetStatusParams::suspended(
                    row.id,
                    fence(&row)?,
                    "approval".into(),
                    None,
                )),
            };
            if let Some(change) = change {
                ensure!(
                    apply(store, change).await?.is_some(),
                    "fixture change to {status}"
                );
            }
            row.id
        }
    };
    let row = get(store, id).await?;
    ensure!(
        row.status == status.as_str(),
        "fixture wanted {status}, got {}",
        row.status
    );
    Ok(row)
}

/// The ids of the rows `filter` lists, in listing order.
async fn list(store: &dyn Store, filter: TaskFilter) -> anyhow::Result<Vec<i64>> {
    let rows = store
        .task_list(&TaskListParams {
            filter,
            limit: None,
        })
        .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// How many transactions on this test's tasks table wait for a row lock
/// now (PostgreSQL and MySQL only), read from the server's own lock tables,
/// so a test knows its second writer is blocked without sleeping.
async fn lock_waits(db: &TestDb) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let schema = db.schema.clone().context("server tests have a schema")?;
    match db.backend {
        "postgres" => {
            // The waiting session holds its (granted) relation lock on this
            // schema's table and waits for the other's transaction id.
            let sql = "SELECT count(*) FROM pg_locks AS w \
                       WHERE NOT w.granted AND w.pid IN \
                       (SELECT l.pid FROM pg_locks AS l WHERE l.relation = to_regclass($1))";
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            let waiting = sqlx::query_scalar(sql)
                .bind(format!("\"{schema}\".fib_flow_tasks"))
                .fetch_one(&mut conn)
                .await?;
            conn.close().await?;
            Ok(waiting)
        }
        "mysql" => {
            // The store's connections use the test's database as their
            // default, which PROCESSLIST shows.
            let sql = "SELECT COUNT(*) FROM information_schema.INNODB_TRX AS t \
                       JOIN information_schema.PROCESSLIST AS p ON p.ID = t.trx_mysql_thread_id \
                       WHERE t.trx_state = 'LOCK WAIT' AND p.DB = ?";
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await?;
            let waiting = sqlx::query_scalar(sql)
                .bind(&schema)
                .fetch_one(&mut conn)
                .await?;
            conn.close().await?;
            Ok(waiting)
        }
        other => bail!("{other} has no row locks to observe"),
    }
}

// ---------------------------------------------------------------------------
// task_set_status: the reference it returns
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_set_status_returns_the_task_ref_exactly_when_it_applied(db) {
        let store = db.store().await;
        // A parent at stage 1 with one child, so the child's link is not a default.
        let first = claimed(&*store, task("parent")).await?;
        assert!(apply(&*store, TaskSetStatusParams::advanced(first.id, fence(&first)?, None)).await?.is_some());
        let parent = claim_one(&*store, "parent", first.id).await?;
        let children = await_children(&*store, &parent, &["child"], ChildFailure::FailParent, None).await?;
        let child = claim_one(&*store, "child", children[0]).await?;
        assert_eq!((child.root_id, child.parent_id, child.parent_stage), (Some(parent.id), Some(parent.id), Some(1)));

        // A change fenced for another attempt does not apply and changes nothing.
        let stale = Fence { worker_id: WORKER.into(), attempt: child.attempt + 1 };
        assert_eq!(apply(&*store, TaskSetStatusParams::completed(child.id, stale, "1".into())).await?, None);
        assert_eq!(get(&*store, child.id).await?, child);

        // A failure applies and returns the child with its link and new error.
        let failed = TaskSetStatusParams::failed(
            child.id,
            fence(&child)?,
            &retry_plan(TaskKind::Async, FailureKind::Error),
            FailureKind::Error, "boom".into(),
        );
        let applied = apply_full(&*store, failed.clone()).await?.expect("applied");
        // What the audit records of the change comes back with it.
        assert_eq!(applied.previous_status.as_deref(), Some("running"));
        assert_eq!((applied.stage, applied.attempt, applied.retry_count), (child.stage, child.attempt, 1));
        assert_eq!((applied.worker_id.as_deref(), applied.root_id), (Some(WORKER), Some(parent.id)));
        assert_eq!(link_only(applied), task_ref(&child, "failed", Some("boom")));
        // The same change again finds no running row.
        assert_eq!(apply(&*store, failed).await?, None);
        // A change that keeps the error returns the stored one.
        assert_eq!(
            apply(&*store, TaskSetStatusParams::paused(child.id)).await?,
            Some(task_ref(&child, "paused", Some("boom")))
        );
        assert_eq!(apply(&*store, TaskSetStatusParams::paused(child.id)).await?, None);

        // A top-level task has no link; the error is the new one.
        assert_eq!(
            apply(&*store, TaskSetStatusParams::cancelled(parent.id, "stop".into())).await?,
            Some(TaskRef {
                id: parent.id,
                name: "parent".into(),
                kind: "async".into(),
                status: "permanently_failed".into(),
                parent_id: None,
                parent_stage: None,
                parent_cycle: None,
                error: Some("stop".into()),
                ..TaskRef::default()
            })
        );
        let cron = store.task_insert(&cron_task("tick")).await?;
        let cron_ref = |status: &str| TaskRef {
            id: cron,
            name: "tick".into(),
            kind: "cron".into(),
            status: status.into(),
            parent_id: None,
            parent_stage: None,
            parent_cycle: None,
            error: None,
            ..TaskRef::default()
        };
        assert_eq!(apply(&*store, TaskSetStatusParams::paused(cron)).await?, Some(cron_ref("paused")));
        assert_eq!(apply(&*store, TaskSetStatusParams::paused(cron + 1_000)).await?, None, "missing row");

        // In one transaction each change reports on itself and sees the earlier ones.
        let mut tx = store.begin().await?;
        assert_eq!(tx.task_set_status(&TaskSetStatusParams::paused(cron)).await?, None);
        assert_eq!(tx.task_set_status(&TaskSetStatusParams::resumed(cron)).await?.map(link_only), Some(cron_ref("pending")));
        assert_eq!(tx.task_set_status(&TaskSetStatusParams::resumed(cron)).await?, None);
        assert_eq!(tx.task_set_status(&TaskSetStatusParams::paused(cron)).await?.map(link_only), Some(cron_ref("paused")));
        tx.commit().await?;
        assert_eq!(get(&*store, cron).await?.status, "paused");

        // A change in a transaction dropped uncommitted is undone.
        let mut tx = store.begin().await?;
        assert_eq!(tx.task_set_status(&TaskSetStatusParams::resumed(cron)).await?.map(link_only), Some(cron_ref("pending")));
        drop(tx);
        assert_eq!(get(&*store, cron).await?.status, "paused");
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_set_status: the workflow transitions
// ---------------------------------------------------------------------------

backend_test! {
    async fn awaiting_children_suspends_the_task_and_counts_children_over_stages(db) {
        let store = db.store().await;
        let parent = claimed(&*store, task("parent")).await?;
        let update = ChildrenUpdate { count: 2, on_failure: ChildFailure::FailParent };

        // Only the running attempt may start waiting.
        let stale = Fence { worker_id: "worker-other".into(), attempt: parent.attempt };
        assert_eq!(
            apply(&*store, TaskSetStatusParams::awaiting_children(parent.id, stale, update, Some(b"x".to_vec()))).await?,
            None
        );
        assert_eq!(get(&*store, parent.id).await?, parent);
        assert_eq!(store.task_context(parent.id).await?, None);

        let change = TaskSetStatusParams::awaiting_children(parent.id, fence(&parent)?, update, Some(b"stage-0".to_vec()));
        let before = store.now_ms().await?;
        let mut tx = store.begin().await?;
        let applied = tx.task_set_status(&change).await?;
        let first = tx.task_insert(&child_of("c1", &parent)).await?;
        let second = tx.task_insert(&child_of("c2", &parent)).await?;
        tx.commit().await?;
        let after = store.now_ms().await?;
        assert_eq!(applied.map(link_only), Some(task_ref(&parent, "suspended", None)));
        let stored = get(&*store, parent.id).await?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "suspended".into(),
                suspend_reason: Some(AWAITING_CHILDREN.into()),
                pending_children: 2,
                total_children: 2,
                last_active_at: Some(last_active_at),
                ..parent.clone()
            }
        );
        assert_eq!(store.task_context(parent.id).await?, Some(b"stage-0".to_vec()));
        // The policy is stored: a counted child (rolled back) reports it.
        assert_eq!(peek_waiting(&*store, parent.id, 0).await?, Some(waiting(&parent, 1, ChildFailure::FailParent)));
        assert_eq!(get(&*store, parent.id).await?, stored, "the peek was rolled back");
        // Suspended: a second wait does not apply.
        assert_eq!(apply(&*store, change).await?, None);

        // Both children finish; the parent resumes at stage 1 and waits
        // for three more under the other policy, without a new context.
        for (id, left) in [(first, 1), (second, 0)] {
            let counted = child_finished(&*store, parent.id, 0).await?;
            assert_eq!(counted, Some(waiting(&parent, left, ChildFailure::FailParent)), "child {id}");
        }
        assert!(apply(&*store, TaskSetStatusParams::children_done(parent.id)).await?.is_some());
        let resumed = claim_one(&*store, "parent", parent.id).await?;
        assert_eq!((resumed.stage, resumed.pending_children, resumed.total_children), (1, 0, 2));
        let update = ChildrenUpdate { count: 3, on_failure: ChildFailure::Resume };
        let change = TaskSetStatusParams::awaiting_children(resumed.id, fence(&resumed)?, update, None);
        assert_eq!(apply(&*store, change).await?, Some(task_ref(&resumed, "suspended", None)));
        let stored = get(&*store, parent.id).await?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "suspended".into(),
                suspend_reason: Some(AWAITING_CHILDREN.into()),
                pending_children: 3,
                total_children: 5,
                last_active_at: stored.last_active_at,
                ..resumed.clone()
            }
        );
        assert_eq!(store.task_context(parent.id).await?, Some(b"stage-0".to_vec()), "context kept");
        assert_eq!(peek_waiting(&*store, parent.id, 1).await?, Some(waiting(&parent, 2, ChildFailure::Resume)));
        Ok(())
    }
}

backend_test! {
    async fn advanced_moves_a_running_task_to_its_next_stage_due_now(db) {
        let store = db.store().await;
        // A retry behind it, so the fresh budget shows.
        let first = claimed(&*store, task("a")).await?;
        let plan = retry_plan(TaskKind::Async, FailureKind::Error);
        assert!(apply(&*store, TaskSetStatusParams::failed(first.id, fence(&first)?, &plan, FailureKind::Error, "boom".into())).await?.is_some());
        let row = claim_one(&*store, "a", first.id).await?;
        assert_eq!((row.retry_count, row.attempt, row.stage), (1, 2, 0));

        // Only the running attempt may advance.
        let stale = Fence { worker_id: WORKER.into(), attempt: 1 };
        assert_eq!(apply(&*store, TaskSetStatusParams::advanced(row.id, stale, Some(b"x".to_vec()))).await?, None);
        assert_eq!(get(&*store, row.id).await?, row);
        assert_eq!(store.task_context(row.id).await?, None);

        let before = store.now_ms().await?;
        let applied = apply(&*store, TaskSetStatusParams::advanced(row.id, fence(&row)?, Some(b"stage-1".to_vec()))).await?;
        let after = store.now_ms().await?;
        assert_eq!(applied, Some(task_ref(&row, "pending", Some("boom"))));
        let stored = get(&*store, row.id).await?;
        within("next_run_at", stored.next_run_at, before, after)?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "pending".into(),
                stage: 1,
                retry_count: 0,
                next_run_at: stored.next_run_at,
                last_active_at: Some(last_active_at),
                ..row.clone()
            }
        );
        assert_eq!(store.task_context(row.id).await?, Some(b"stage-1".to_vec()));
        // Pending now: advancing again does not apply.
        assert_eq!(apply(&*store, TaskSetStatusParams::advanced(row.id, fence(&row)?, None)).await?, None);
        // Due at once: the next stage is claimed as a new attempt.
        let next = claim_one(&*store, "a", row.id).await?;
        assert_eq!((next.stage, next.attempt, next.retry_count), (1, 3, 0));
        Ok(())
    }
}

backend_test! {
    async fn suspended_sets_the_reason_and_the_context_and_keeps_the_stage(db) {
        let store = db.store().await;
        let row = claimed(&*store, task("s")).await?;
        let stale = Fence { worker_id: "worker-other".into(), attempt: row.attempt };
        assert_eq!(apply(&*store, TaskSetStatusParams::suspended(row.id, stale, "approval".into(), None)).await?, None);
        assert_eq!(get(&*store, row.id).await?, row);

        let before = store.now_ms().await?;
        let change = TaskSetStatusParams::suspended(row.id, fence(&row)?, "approval".into(), Some(b"draft".to_vec()));
        let applied = apply(&*store, change.clone()).await?;
        let after = store.now_ms().await?;
        assert_eq!(applied, Some(task_ref(&row, "suspended", None)));
        let stored = get(&*store, row.id).await?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "suspended".into(),
                suspend_reason: Some("approval".into()),
                last_active_at: Some(last_active_at),
                ..row.clone()
            }
        );
        assert_eq!((stored.stage, stored.pending_children, stored.total_children, stored.finished_at), (0, 0, 0, None));
        assert_eq!(store.task_context(row.id).await?, Some(b"draft".to_vec()));
        assert_eq!(apply(&*store, change).await?, None, "already suspended");

        // Resumed at stage 1, then suspended again without a context: the
        // reason is replaced, the context kept.
        assert!(apply(&*store, TaskSetStatusParams::resumed_suspended(row.id)).await?.is_some());
        let next = claim_one(&*store, "s", row.id).await?;
        assert_eq!(
            apply(&*store, TaskSetStatusParams::suspended(next.id, fence(&next)?, "review".into(), None)).await?,
            Some(task_ref(&next, "suspended", None))
        );
        let stored = get(&*store, row.id).await?;
        assert_eq!((stored.status.as_str(), stored.suspend_reason.as_deref(), stored.stage), ("suspended", Some("review"), 1));
        assert_eq!(store.task_context(row.id).await?, Some(b"draft".to_vec()));
        Ok(())
    }
}

backend_test! {
    async fn children_done_moves_a_waiting_parent_to_its_next_stage_due_now(db) {
        let store = db.store().await;
        // A retry behind the parent, so the fresh budget shows.
        let first = claimed(&*store, task("parent")).await?;
        let plan = retry_plan(TaskKind::Async, FailureKind::Error);
        assert!(apply(&*store, TaskSetStatusParams::failed(first.id, fence(&first)?, &plan, FailureKind::Error, "boom".into())).await?.is_some());
        let parent = claim_one(&*store, "parent", first.id).await?;
        let kids = await_children(&*store, &parent, &["c1"], ChildFailure::FailParent, None).await?;
        assert_eq!(child_finished(&*store, parent.id, 0).await?, Some(waiting(&parent, 0, ChildFailure::FailParent)));
        let waiting_row = get(&*store, parent.id).await?;
        let w = &waiting_row;
        assert_eq!(
            (w.status.as_str(), w.suspend_reason.as_deref(), w.pending_children, w.total_children, w.retry_count),
            ("suspended", Some(AWAITING_CHILDREN), 0, 1, 1)
        );

        // Only a suspended task: not a running or a pending one.
        let running = claimed(&*store, task("running")).await?;
        assert_eq!(apply(&*store, TaskSetStatusParams::children_done(running.id)).await?, None);
        assert_eq!(get(&*store, running.id).await?, running);
        let pending = get(&*store, kids[0]).await?;
        assert_eq!(apply(&*store, TaskSetStatusParams::children_done(pending.id)).await?, None);
        assert_eq!(get(&*store, pending.id).await?, pending);

        let before = store.now_ms().await?;
        let applied = apply(&*store, TaskSetStatusParams::children_done(parent.id)).await?;
        let after = store.now_ms().await?;
        assert_eq!(applied, Some(task_ref(&waiting_row, "pending", Some("boom"))));
        let stored = get(&*store, parent.id).await?;
        within("next_run_at", stored.next_run_at, before, after)?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "pending".into(),
                stage: 1,
                suspend_reason: None,
                retry_count: 0,
                next_run_at: stored.next_run_at,
                last_active_at: Some(last_active_at),
                ..waiting_row.clone()
            }
        );
        assert_eq!(apply(&*store, TaskSetStatusParams::children_done(parent.id)).await?, None, "already resumed");
        Ok(())
    }
}

backend_test! {
    async fn failed_by_child_fails_an_async_parent_and_pauses_a_cron_parent(db) {
        let store = db.store().await;
        let parent = claimed(&*store, task("parent")).await?;
        await_children(&*store, &parent, &["c1", "c2"], ChildFailure::FailParent, None).await?;
        let waiting_row = get(&*store, parent.id).await?;

        // Only a suspended task.
        let running = claimed(&*store, task("running")).await?;
        let change = TaskSetStatusParams::failed_by_child(running.id, Transition::ChildFailed, "x".into());
        assert_eq!(apply(&*store, change).await?, None);
        assert_eq!(get(&*store, running.id).await?, running);

        let change = TaskSetStatusParams::failed_by_child(parent.id, Transition::ChildFailed, "child c1 failed".into());
        let before = store.now_ms().await?;
        let applied = apply(&*store, change.clone()).await?;
        let after = store.now_ms().await?;
        assert_eq!(applied, Some(task_ref(&waiting_row, "permanently_failed", Some("child c1 failed"))));
        let stored = get(&*store, parent.id).await?;
        let finished_at = stored.finished_at.context("finished_at")?;
        within("finished_at", finished_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "permanently_failed".into(),
                error: Some("child c1 failed".into()),
                suspend_reason: None,
                // Finished: it waits for no children any more.
                pending_children: 0,
                finished_at: Some(finished_at),
                last_active_at: Some(finished_at),
                ..waiting_row.clone()
            }
        );
        assert_eq!(apply(&*store, change).await?, None, "already failed");

        // A cron parent is paused instead: not finished.
        let cron = claimed(&*store, cron_task("cron-parent")).await?;
        await_children(&*store, &cron, &["c3"], ChildFailure::FailParent, None).await?;
        let waiting_cron = get(&*store, cron.id).await?;
        let change = TaskSetStatusParams::failed_by_child(cron.id, Transition::ChildFailedCron, "child c3 failed".into());
        let before = store.now_ms().await?;
        let applied = apply(&*store, change).await?;
        let after = store.now_ms().await?;
        assert_eq!(applied, Some(task_ref(&waiting_cron, "paused", Some("child c3 failed"))));
        let stored = get(&*store, cron.id).await?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "paused".into(),
                error: Some("child c3 failed".into()),
                // Paused, not finished: the count stays.
                pending_children: 1,
                suspend_reason: None,
                finished_at: None,
                last_active_at: Some(last_active_at),
                ..waiting_cron.clone()
            }
        );
        Ok(())
    }
}

backend_test! {
    async fn resumed_suspended_applies_only_to_a_suspended_task_waiting_for_no_children(db) {
        let store = db.store().await;
        // An explicit suspension with a retry behind it.
        let first = claimed(&*store, task("s")).await?;
        let plan = retry_plan(TaskKind::Async, FailureKind::Error);
        assert!(apply(&*store, TaskSetStatusParams::failed(first.id, fence(&first)?, &plan, FailureKind::Error, "boom".into())).await?.is_some());
        let row = claim_one(&*store, "s", first.id).await?;
        let change = TaskSetStatusParams::suspended(row.id, fence(&row)?, "approval".into(), None);
        assert!(apply(&*store, change).await?.is_some());
        let suspended = get(&*store, row.id).await?;

        let before = store.now_ms().await?;
        let applied = apply(&*store, TaskSetStatusParams::resumed_suspended(row.id)).await?;
        let after = store.now_ms().await?;
        assert_eq!(applied, Some(task_ref(&suspended, "pending", Some("boom"))));
        let stored = get(&*store, row.id).await?;
        within("next_run_at", stored.next_run_at, before, after)?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "pending".into(),
                stage: 1,
                suspend_reason: None,
                retry_count: 0,
                next_run_at: stored.next_run_at,
                last_active_at: Some(last_active_at),
                ..suspended.clone()
            }
        );
        assert_eq!(apply(&*store, TaskSetStatusParams::resumed_suspended(row.id)).await?, None, "pending now");

        // A parent waiting for children is refused while any is pending.
        let parent = claimed(&*store, task("parent")).await?;
        await_children(&*store, &parent, &["c1", "c2"], ChildFailure::Resume, None).await?;
        let waiting_row = get(&*store, parent.id).await?;
        assert_eq!(apply(&*store, TaskSetStatusParams::resumed_suspended(parent.id)).await?, None);
        assert_eq!(get(&*store, parent.id).await?, waiting_row);
        assert!(child_finished(&*store, parent.id, 0).await?.is_some());
        assert_eq!(apply(&*store, TaskSetStatusParams::resumed_suspended(parent.id)).await?, None);
        // The guard is the count: with none pending it applies.
        assert!(child_finished(&*store, parent.id, 0).await?.is_some());
        assert_eq!(
            apply(&*store, TaskSetStatusParams::resumed_suspended(parent.id)).await?,
            Some(task_ref(&waiting_row, "pending", None))
        );
        let stored = get(&*store, parent.id).await?;
        assert_eq!((stored.stage, stored.pending_children, stored.suspend_reason), (1, 0, None));
        Ok(())
    }
}

backend_test! {
    async fn cancelled_applies_from_every_unfinished_status_and_never_from_a_terminal_one(db) {
        let store = db.store().await;
        for status in TaskStatus::ALL {
            let row = task_in(&*store, task(&format!("x_{status}")), status).await?;
            let before = store.now_ms().await?;
            let applied = apply(&*store, TaskSetStatusParams::cancelled(row.id, "cancelled by operator".into())).await?;
            let after = store.now_ms().await?;
            let stored = get(&*store, row.id).await?;
            if status.is_terminal() {
                assert_eq!(applied, None, "cancel from {status}");
                assert_eq!(stored, row, "cancel from {status}");
                continue;
            }
            assert_eq!(
                applied,
                Some(task_ref(&row, "permanently_failed", Some("cancelled by operator"))),
                "cancel from {status}"
            );
            let finished_at = stored.finished_at.context("finished_at")?;
            within("finished_at", finished_at, before, after)?;
            assert_eq!(
                stored,
                TaskRow {
                    last_event_at: stored.last_event_at,
                    last_event_type: stored.last_event_type.clone(),
                    previous_status: stored.previous_status.clone(),
                    status: "permanently_failed".into(),
                    error: Some("cancelled by operator".into()),
                    suspend_reason: None,
                    finished_at: Some(finished_at),
                    last_active_at: Some(finished_at),
                    ..row.clone()
                },
                "cancel from {status}"
            );
        }

        // A parent waiting for children: finished, it waits for none any
        // more; its total and its context stay.
        let parent = claimed(&*store, task("parent")).await?;
        let kids = await_children(&*store, &parent, &["c"], ChildFailure::FailParent, Some(b"ctx".to_vec())).await?;
        let waiting_row = get(&*store, parent.id).await?;
        let applied = apply(&*store, TaskSetStatusParams::cancelled(parent.id, "ancestor failed".into())).await?;
        assert_eq!(applied, Some(task_ref(&waiting_row, "permanently_failed", Some("ancestor failed"))));
        let stored = get(&*store, parent.id).await?;
        assert_eq!(
            (stored.status.as_str(), stored.suspend_reason.as_deref(), stored.pending_children, stored.total_children),
            ("permanently_failed", None, 0, 1)
        );
        assert_eq!(store.task_context(parent.id).await?, Some(b"ctx".to_vec()));
        // A child's reference carries its link.
        let child = get(&*store, kids[0]).await?;
        assert_eq!(
            apply(&*store, TaskSetStatusParams::cancelled(child.id, "ancestor failed".into())).await?,
            Some(task_ref(&child, "permanently_failed", Some("ancestor failed")))
        );
        assert_eq!(child.parent_id, Some(parent.id));
        Ok(())
    }
}

/// A cron parent at stage 1 that a failed child paused while its other
/// child was still outstanding (`pending_children` 1).
async fn cron_paused_by_a_child(store: &dyn Store, name: &str) -> anyhow::Result<TaskRow> {
    let first = claimed(store, cron_task(name)).await?;
    ensure!(apply(
        store,
        TaskSetStatusParams::advanced(first.id, fence(&first)?, None)
    )
    .await?
    .is_some());
    let row = claim_one(store, name, first.id).await?;
    let c1 = format!("{name}-c1");
    let c2 = format!("{name}-c2");
    await_children(store, &row, &[&c1, &c2], ChildFailure::FailParent, None).await?;
    ensure!(child_finished(store, row.id, 1).await?.is_some());
    let change = TaskSetStatusParams::failed_by_child(
        row.id,
        Transition::ChildFailedCron,
        "c1 failed".into(),
    );
    ensure!(apply(store, change).await?.is_some());
    let paused = get(store, row.id).await?;
    ensure!(
        (
            paused.status.as_str(),
            paused.stage,
            paused.pending_children
        ) == ("paused", 1, 1),
        "{paused:?}"
    );
    Ok(paused)
}

backend_test! {
    async fn a_new_cron_cycle_starts_at_stage_0_waiting_for_no_children(db) {
        let store = db.store().await;
        // resumed_cron: pending at the given time, stage 0, no children.
        let paused = cron_paused_by_a_child(&*store, "resumed").await?;
        let next_at = store.now_ms().await?;
        let applied = apply(&*store, TaskSetStatusParams::resumed_cron(paused.id, next_at)).await?;
        assert_eq!(applied, Some(task_ref(&paused, "pending", Some("c1 failed"))));
        let stored = get(&*store, paused.id).await?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "pending".into(),
                stage: 0,
                cycle: paused.cycle + 1,
                pending_children: 0,
                retry_count: 0,
                next_run_at: next_at,
                last_active_at: stored.last_active_at,
                ..paused.clone()
            }
        );
        // So a later explicit suspension of the new cycle can be resumed.
        let row = claim_one(&*store, "resumed", paused.id).await?;
        let change = TaskSetStatusParams::suspended(row.id, fence(&row)?, "approval".into(), None);
        assert!(apply(&*store, change).await?.is_some());
        assert!(apply(&*store, TaskSetStatusParams::resumed_suspended(row.id)).await?.is_some());
        assert_eq!(get(&*store, row.id).await?.stage, 1);

        // rearmed: a running cycle that still counted a child starts anew.
        let paused = cron_paused_by_a_child(&*store, "rearmed").await?;
        assert!(apply(&*store, TaskSetStatusParams::resumed(paused.id)).await?.is_some());
        let row = claim_one(&*store, "rearmed", paused.id).await?;
        assert_eq!((row.stage, row.pending_children), (1, 1), "a plain resume keeps both");
        let next_at = 1_900_000_000_000;
        let change = TaskSetStatusParams::rearmed(row.id, fence(&row)?, Some(r#"{"ok":1}"#.into()), next_at);
        assert_eq!(apply(&*store, change).await?, Some(task_ref(&row, "pending", Some("c1 failed"))));
        let stored = get(&*store, row.id).await?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: stored.last_event_type.clone(),
                previous_status: stored.previous_status.clone(),
                status: "pending".into(),
                stage: 0,
                cycle: row.cycle + 1,
                pending_children: 0,
                retry_count: 0,
                result: Some(r#"{"ok":1}"#.into()),
                next_run_at: next_at,
                finished_at: None,
                last_active_at: stored.last_active_at,
                ..row.clone()
            }
        );
        Ok(())
    }
}

backend_test! {
    async fn context_is_kept_by_every_change_that_does_not_set_it(db) {
        let store = db.store().await;
        let keep = b"keep me".to_vec();
        let context = |id: i64| {
            let store = store.clone();
            async move { store.task_context(id).await }
        };
        let row = claimed(&*store, task("t")).await?;
        let id = row.id;
        assert!(apply(&*store, TaskSetStatusParams::advanced(id, fence(&row)?, Some(keep.clone()))).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "advanced");

        let row = claim_one(&*store, "t", id).await?;
        assert_eq!(context(id).await?, Some(keep.clone()), "claimed");
        let plan = retry_plan(TaskKind::Async, FailureKind::Error);
        assert!(apply(&*store, TaskSetStatusParams::failed(id, fence(&row)?, &plan, FailureKind::Error, "boom".into())).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "failed");

        claim_one(&*store, "t", id).await?;
        assert!(apply(&*store, TaskSetStatusParams::paused(id)).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "paused");
        assert!(apply(&*store, TaskSetStatusParams::resumed(id)).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "resumed");

        let row = claim_one(&*store, "t", id).await?;
        assert!(apply(&*store, TaskSetStatusParams::suspended(id, fence(&row)?, "approval".into(), None)).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "suspended");
        assert!(apply(&*store, TaskSetStatusParams::resumed_suspended(id)).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "resumed_suspended");

        let row = claim_one(&*store, "t", id).await?;
        await_children(&*store, &row, &["c"], ChildFailure::FailParent, None).await?;
        assert_eq!(context(id).await?, Some(keep.clone()), "awaiting_children");
        assert!(child_finished(&*store, id, row.stage).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "task_child_finished");
        assert!(apply(&*store, TaskSetStatusParams::children_done(id)).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "children_done");

        let row = claim_one(&*store, "t", id).await?;
        assert!(apply(&*store, TaskSetStatusParams::released(id, fence(&row)?)).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "released");
        let row = claim_one(&*store, "t", id).await?;
        assert!(apply(&*store, TaskSetStatusParams::completed(id, fence(&row)?, "1".into())).await?.is_some());
        assert_eq!(context(id).await?, Some(keep.clone()), "completed");
        assert_eq!(get(&*store, id).await?.stage, 3);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// StoreTx::task_insert
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_insert_in_a_transaction_stores_the_parent_link_and_rolls_back_with_it(db) {
        let store = db.store().await;
        let root = store.task_insert(&task("root")).await?;
        let mid = store.task_insert(&task("mid")).await?;
        let root_row = get(&*store, root).await?;
        assert_eq!((root_row.root_id, root_row.parent_id, root_row.parent_stage), (None, None, None));

        let link = ParentLink { root_id: root, parent_id: mid, parent_stage: 3, parent_cycle: 0 };
        let params = TaskInsertParams { parent: Some(link), tag: Some("t".into()), priority: 4, ..task("child") };
        let before = store.now_ms().await?;
        let mut tx = store.begin().await?;
        let id = tx.task_insert(&params).await?;
        tx.commit().await?;
        let after = store.now_ms().await?;
        assert!(id > mid, "ids {mid}, {id}");
        let stored = get(&*store, id).await?;
        within("created_at", stored.created_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                id,
                name: "child".into(),
                kind: "async".into(),
                status: "pending".into(),
                priority: 4,
                payload: Some(r#"{"n":1}"#.into()),
                tag: Some("t".into()),
                result: None,
                error: None,
                stage: 0,
                cycle: 0,
                timeout_ms: 60_000,
                retry_count: 0,
                max_attempts: 3,
                retry_interval_ms: 0,
                cron_expr: None,
                root_id: Some(root),
                parent_id: Some(mid),
                parent_stage: Some(3),
                total_children: 0,
                pending_children: 0,
                worker_id: None,
                attempt: 0,
                suspend_reason: None,
                previous_status: None,
                current_stage_name: None,
                progress_text: None,
                progress_percent: None,
                last_event_at: Some(stored.created_at),
                last_event_type: Some("task_created".into()),
                created_at: stored.created_at,
                next_run_at: stored.created_at,
                started_at: None,
                last_active_at: None,
                finished_at: None,
            }
        );

        // Dropped uncommitted: its inserts are gone.
        let mut tx = store.begin().await?;
        let gone_a = tx.task_insert(&TaskInsertParams { parent: Some(link), ..task("gone-a") }).await?;
        let gone_b = tx.task_insert(&task("gone-b")).await?;
        drop(tx);
        assert_eq!(store.task_get(gone_a).await?, None);
        assert_eq!(store.task_get(gone_b).await?, None);
        assert_eq!(list(&*store, TaskFilter::new()).await?, [root, mid, id]);
        assert_eq!(list(&*store, TaskFilter::new().parent(TaskId(mid))).await?, [id]);

        // A parent's change and its children's inserts roll back together.
        let parent = claimed(&*store, task("parent")).await?;
        let update = ChildrenUpdate { count: 1, on_failure: ChildFailure::FailParent };
        let mut tx = store.begin().await?;
        let change = TaskSetStatusParams::awaiting_children(parent.id, fence(&parent)?, update, Some(b"ctx".to_vec()));
        assert!(tx.task_set_status(&change).await?.is_some());
        let gone_child = tx.task_insert(&child_of("c", &parent)).await?;
        drop(tx);
        assert_eq!(get(&*store, parent.id).await?, parent);
        assert_eq!(store.task_get(gone_child).await?, None);
        assert_eq!(store.task_context(parent.id).await?, None);
        assert_eq!(list(&*store, TaskFilter::new().parent(TaskId(parent.id))).await?, Vec::<i64>::new());

        // The same work commits afterwards.
        let kids = await_children(&*store, &parent, &["c"], ChildFailure::FailParent, None).await?;
        assert_eq!(list(&*store, TaskFilter::new().parent(TaskId(parent.id))).await?, kids);
        assert_eq!(list(&*store, TaskFilter::new()).await?, [root, mid, id, parent.id, kids[0]]);
        let child = get(&*store, kids[0]).await?;
        assert_eq!((child.root_id, child.parent_id, child.parent_stage), (Some(parent.id), Some(parent.id), Some(0)));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// StoreTx::task_child_finished
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_child_finished_counts_a_child_only_on_a_parent_waiting_at_that_stage(db) {
        let store = db.store().await;
        // A parent at stage 1 waiting for two children.
        let first = claimed(&*store, task("parent")).await?;
        assert!(apply(&*store, TaskSetStatusParams::advanced(first.id, fence(&first)?, None)).await?.is_some());
        let parent = claim_one(&*store, "parent", first.id).await?;
        await_children(&*store, &parent, &["c1", "c2"], ChildFailure::Resume, None).await?;
        let waiting_row = get(&*store, parent.id).await?;
        assert_eq!((waiting_row.stage, waiting_row.pending_children), (1, 2));

        for stage in [0, 2] {
            assert_eq!(child_finished(&*store, parent.id, stage).await?, None, "stage {stage}");
            assert_eq!(get(&*store, parent.id).await?, waiting_row, "stage {stage}");
        }
        assert_eq!(child_finished(&*store, parent.id + 1_000, 1).await?, None, "missing parent");

        // Each count changes only pending_children.
        assert_eq!(child_finished(&*store, parent.id, 1).await?, Some(waiting(&parent, 1, ChildFailure::Resume)));
        assert_eq!(get(&*store, parent.id).await?, TaskRow { pending_children: 1, ..waiting_row.clone() });
        assert_eq!(child_finished(&*store, parent.id, 1).await?, Some(waiting(&parent, 0, ChildFailure::Resume)));
        let counted = get(&*store, parent.id).await?;
        assert_eq!(counted, TaskRow { pending_children: 0, ..waiting_row.clone() });
        // None left to count.
        assert_eq!(child_finished(&*store, parent.id, 1).await?, None);
        assert_eq!(get(&*store, parent.id).await?, counted);

        // Not waiting: pending, running, explicitly suspended.
        for status in [TaskStatus::Pending, TaskStatus::Running, TaskStatus::Suspended] {
            let row = task_in(&*store, task(&format!("n_{status}")), status).await?;
            assert_eq!(child_finished(&*store, row.id, 0).await?, None, "{status}");
            assert_eq!(get(&*store, row.id).await?, row, "{status}");
        }

        // Stopped waiting: a cancelled async parent (finished, so it waits
        // for no children any more) and a cron parent paused by a failed
        // child (its other child still outstanding).
        let cancelled = claimed(&*store, task("cancelled")).await?;
        await_children(&*store, &cancelled, &["c3", "c4"], ChildFailure::FailParent, None).await?;
        assert!(apply(&*store, TaskSetStatusParams::cancelled(cancelled.id, "stop".into())).await?.is_some());
        let cron = claimed(&*store, cron_task("cron")).await?;
        await_children(&*store, &cron, &["c5", "c6"], ChildFailure::FailParent, None).await?;
        let change = TaskSetStatusParams::failed_by_child(cron.id, Transition::ChildFailedCron, "c5 failed".into());
        assert!(apply(&*store, change).await?.is_some());
        for (id, outstanding) in [(cancelled.id, 0), (cron.id, 2)] {
            let row = get(&*store, id).await?;
            assert_eq!(row.pending_children, outstanding, "{}", row.status);
            assert_eq!(child_finished(&*store, id, 0).await?, None, "{}", row.status);
            assert_eq!(get(&*store, id).await?, row, "{}", row.status);
        }

        // A waiting cron parent reports its kind and policy.
        let cron = claimed(&*store, cron_task("cron-2")).await?;
        await_children(&*store, &cron, &["c7"], ChildFailure::FailParent, None).await?;
        assert_eq!(
            child_finished(&*store, cron.id, 0).await?,
            Some(WaitingParent {
                id: cron.id,
                kind: "cron".into(),
                pending_children: 0,
                on_child_failure: Some("fail_parent".into()),
            })
        );

        // Counted in a transaction dropped uncommitted: not counted.
        let parent = claimed(&*store, task("parent-2")).await?;
        await_children(&*store, &parent, &["c8"], ChildFailure::FailParent, None).await?;
        assert_eq!(peek_waiting(&*store, parent.id, 0).await?, Some(waiting(&parent, 0, ChildFailure::FailParent)));
        assert_eq!(get(&*store, parent.id).await?.pending_children, 1);
        assert_eq!(child_finished(&*store, parent.id, 0).await?, Some(waiting(&parent, 0, ChildFailure::FailParent)));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// StoreTx::task_mark_parent_notified
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_mark_parent_notified_is_true_only_the_first_time_for_a_child(db) {
        let store = db.store().await;
        let mark = |id: i64| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await?;
                let marked = tx.task_mark_parent_notified(id).await?;
                tx.commit().await?;
                Ok::<_, anyhow::Error>(marked)
            }
        };
        let parent = claimed(&*store, task("parent")).await?;
        let kids = await_children(&*store, &parent, &["c1", "c2", "c3"], ChildFailure::FailParent, None).await?;
        let top = store.task_insert(&task("top")).await?;
        let before = get(&*store, kids[0]).await?;

        assert!(mark(kids[0]).await?);
        assert!(!mark(kids[0]).await?);
        assert_eq!(get(&*store, kids[0]).await?, before, "no listed column changes");

        // Twice in one transaction.
        let mut tx = store.begin().await?;
        assert!(tx.task_mark_parent_notified(kids[1]).await?);
        assert!(!tx.task_mark_parent_notified(kids[1]).await?);
        tx.commit().await?;
        assert!(!mark(kids[1]).await?);

        // Tasks without a parent, and missing tasks.
        assert!(!mark(top).await?);
        assert!(!mark(parent.id).await?);
        assert!(!mark(top + 1_000).await?);

        // Marked in a transaction dropped uncommitted: still unmarked.
        let mut tx = store.begin().await?;
        assert!(tx.task_mark_parent_notified(kids[2]).await?);
        drop(tx);
        assert!(mark(kids[2]).await?);
        assert!(!mark(kids[2]).await?);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// StoreTx::task_list_unfinished_children / Store::task_list_children
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_list_unfinished_children_lists_direct_children_in_the_given_statuses_in_id_order(db) {
        let store = db.store().await;
        let parent = claimed(&*store, task("parent")).await?;
        let other = claimed(&*store, task("other")).await?;
        // One child of each parent in every status, interleaved by id.
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for status in TaskStatus::ALL {
            mine.push((status, task_in(&*store, child_of(&format!("m_{status}"), &parent), status).await?));
            theirs.push((status, task_in(&*store, child_of(&format!("o_{status}"), &other), status).await?.id));
        }
        // A grandchild under the pending child.
        let pending_child = mine[0].1.clone();
        assert_eq!(pending_child.status, "pending");
        let grandchild = store.task_insert(&child_of("g", &pending_child)).await?;

        let unfinished = |params: TaskCancelChildrenParams| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await?;
                let ids = tx.task_list_unfinished_children(&params).await?;
                tx.commit().await?;
                Ok::<_, anyhow::Error>(ids)
            }
        };
        let of = |list: &[(TaskStatus, i64)], keep: &dyn Fn(TaskStatus) -> bool| -> Vec<i64> {
            list.iter().filter(|(s, _)| keep(*s)).map(|(_, id)| *id).collect()
        };
        let mine_ids: Vec<(TaskStatus, i64)> = mine.iter().map(|(s, row)| (*s, row.id)).collect();
        let expected = of(&mine_ids, &|s| s.is_unfinished());
        assert_eq!(expected.len(), 6);
        assert_eq!(unfinished(TaskCancelChildrenParams::new(parent.id, "stop".into())).await?, expected);
        assert_eq!(
            unfinished(TaskCancelChildrenParams::new(other.id, "stop".into())).await?,
            of(&theirs, &|s| s.is_unfinished())
        );
        // The statuses are the params' own.
        let terminal = TaskCancelChildrenParams {
            from: vec![TaskStatus::PermanentlyFailed, TaskStatus::Completed],
            ..TaskCancelChildrenParams::new(parent.id, "stop".into())
        };
        assert_eq!(unfinished(terminal).await?, of(&mine_ids, &|s| s.is_terminal()));
        let none = TaskCancelChildrenParams { from: Vec::new(), ..TaskCancelChildrenParams::new(parent.id, "stop".into()) };
        assert_eq!(unfinished(none).await?, Vec::<i64>::new());
        // Only direct children: the grandchild is its own parent's.
        assert_eq!(unfinished(TaskCancelChildrenParams::new(pending_child.id, "stop".into())).await?, [grandchild]);
        assert_eq!(unfinished(TaskCancelChildrenParams::new(grandchild, "stop".into())).await?, Vec::<i64>::new());
        // Listing changes nothing.
        for (status, row) in &mine {
            assert_eq!(&get(&*store, row.id).await?, row, "{status}");
        }
        Ok(())
    }
}

backend_test! {
    async fn task_list_children_returns_one_stage_of_one_parent_in_id_order(db) {
        let store = db.store().await;
        let parent = claimed(&*store, task("parent")).await?;
        let stage0 = await_children(&*store, &parent, &["a", "b", "c"], ChildFailure::Resume, None).await?;
        let other = claimed(&*store, task("other")).await?;
        let theirs = await_children(&*store, &other, &["d"], ChildFailure::Resume, None).await?;

        // a completes, b fails for good, c completes after a failed attempt.
        let a = claim_one(&*store, "a", stage0[0]).await?;
        assert!(apply(&*store, TaskSetStatusParams::completed(a.id, fence(&a)?, r#"{"v":1}"#.into())).await?.is_some());
        let b = claim_one(&*store, "b", stage0[1]).await?;
        let exhausted = plan_failure(TaskKind::Async, FailureKind::Error, 0, 1, Duration::ZERO);
        assert!(apply(&*store, TaskSetStatusParams::failed(b.id, fence(&b)?, &exhausted, FailureKind::Error, "fatal".into())).await?.is_some());
        let c = claim_one(&*store, "c", stage0[2]).await?;
        let plan = retry_plan(TaskKind::Async, FailureKind::Error);
        assert!(apply(&*store, TaskSetStatusParams::failed(c.id, fence(&c)?, &plan, FailureKind::Error, "boom".into())).await?.is_some());
        let c = claim_one(&*store, "c", stage0[2]).await?;
        assert!(apply(&*store, TaskSetStatusParams::completed(c.id, fence(&c)?, "2".into())).await?.is_some());
        for _ in 0..3 {
            assert!(child_finished(&*store, parent.id, 0).await?.is_some());
        }
        // Stage 1 creates two more, still pending.
        assert!(apply(&*store, TaskSetStatusParams::children_done(parent.id)).await?.is_some());
        let parent = claim_one(&*store, "parent", parent.id).await?;
        let stage1 = await_children(&*store, &parent, &["e", "f"], ChildFailure::Resume, None).await?;
        // A grandchild under e.
        let e = get(&*store, stage1[0]).await?;
        let grandchild = store.task_insert(&child_of("g", &e)).await?;

        let children = |parent_id: i64, parent_stage: i64| {
            let store = store.clone();
            async move { store.task_list_children(&TaskListChildrenParams { parent_id, parent_stage, parent_cycle: 0 }).await }
        };
        let row = |id: i64, name: &str, status: &str, result: Option<&str>, error: Option<&str>| ChildRow {
            id,
            name: name.into(),
            status: status.into(),
            result: result.map(str::to_owned),
            error: error.map(str::to_owned),
        };
        assert_eq!(
            children(parent.id, 0).await?,
            [
                row(stage0[0], "a", "completed", Some(r#"{"v":1}"#), None),
                row(stage0[1], "b", "permanently_failed", None, Some("fatal")),
                // The raw columns: the earlier attempt's error stays.
                row(stage0[2], "c", "completed", Some("2"), Some("boom")),
            ]
        );
        assert_eq!(
            children(parent.id, 1).await?,
            [row(stage1[0], "e", "pending", None, None), row(stage1[1], "f", "pending", None, None)]
        );
        assert_eq!(children(parent.id, 2).await?, []);
        assert_eq!(children(other.id, 0).await?, [row(theirs[0], "d", "pending", None, None)]);
        assert_eq!(children(other.id, 1).await?, []);
        assert_eq!(children(e.id, 0).await?, [row(grandchild, "g", "pending", None, None)]);
        assert_eq!(children(grandchild + 1_000, 0).await?, []);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Store::task_context
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_context_is_none_until_set_then_returns_the_exact_bytes(db) {
        let store = db.store().await;
        let id = store.task_insert(&task("t")).await?;
        assert_eq!(store.task_context(id).await?, None);
        assert_eq!(store.task_context(id + 1_000).await?, None, "missing task");

        // 1 MiB, every byte value: more than a MySQL BLOB holds.
        let large: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let values: [(&str, Vec<u8>); 5] = [
            ("text", b"small".to_vec()),
            ("binary", vec![0, 255, 0x80, 0, b'\n', b'\r', 0xC3, 0x28]),
            ("empty", Vec::new()),
            ("1 MiB", large),
            ("text after large", b"small again".to_vec()),
        ];
        for (what, value) in values {
            let row = claim_one(&*store, "t", id).await?;
            assert!(apply(&*store, TaskSetStatusParams::advanced(id, fence(&row)?, Some(value.clone()))).await?.is_some());
            let stored = store.task_context(id).await?;
            assert_eq!(stored.as_ref().map(Vec::len), Some(value.len()), "{what}");
            assert!(stored == Some(value), "{what}: the bytes differ");
        }
        // Gone with its task.
        let filter = TaskFilter::new().name("t");
        assert_eq!(store.task_delete_many(&TaskListParams { filter, limit: None }).await?, 1);
        assert_eq!(store.task_context(id).await?, None);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Store::task_list / task_delete_many: the workflow filters
// ---------------------------------------------------------------------------

/// Two workflows and a loose task. `r` (tag x) waits for `a`, `b`, `c`; `a`
/// waits for `g`; `b` is suspended for approval; `s` waits for `t`, which
/// is suspended for approval; `u` (tag x) stands alone. Returns the ids
/// by name, in id order r, s, u, a, b, c, t, g.
async fn workflow_fixture(
    store: &dyn Store,
) -> anyhow::Result<std::collections::BTreeMap<&'static str, i64>> {
    let r = claimed(
        store,
        TaskInsertParams {
            tag: Some("x".into()),
            ..task("r")
        },
    )
    .await?;
    let s = claimed(store, task("s")).await?;
    let u = store
        .task_insert(&TaskInsertParams {
            tag: Some("x".into()),
            ..task("u")
        })
        .await?;
    let abc = await_children(store, &r, &["a", "b", "c"], ChildFailure::FailParent, None).await?;
    let t = await_children(store, &s, &["t"], ChildFailure::FailParent, None).await?[0];
    let a = claim_one(store, "a", abc[0]).await?;
    let g = await_children(store, &a, &["g"], ChildFailure::FailParent, None).await?[0];
    for (name, id) in [("b", abc[1]), ("t", t)] {
        let row = claim_one(store, name, id).await?;
        let change = TaskSetStatusParams::suspended(id, fence(&row)?, "approval".into(), None);
        ensure!(apply(store, change).await?.is_some(), "suspending {name}");
    }
    let ids = [
        ("r", r.id),
        ("s", s.id),
        ("u", u),
        ("a", abc[0]),
        ("b", abc[1]),
        ("c", abc[2]),
        ("t", t),
        ("g", g),
    ];
    let mut sorted: Vec<i64> = ids.iter().map(|(_, id)| *id).collect();
    sorted.sort_unstable();
    ensure!(
        sorted == ids.map(|(_, id)| id),
        "fixture ids out of order: {ids:?}"
    );
    let grandchild = get(store, g).await?;
    ensure!(
        (grandchild.root_id, grandchild.parent_id) == (Some(r.id), Some(abc[0])),
        "g's link"
    );
    Ok(ids.into_iter().collect())
}

backend_test! {
    async fn task_list_filters_by_parent_workflow_and_suspend_reason_and_with_the_other_filters(db) {
        let store = db.store().await;
        let id = workflow_fixture(&*store).await?;
        let ids = |names: &[&str]| names.iter().map(|n| id[n]).collect::<Vec<i64>>();
        let listed = |filter: TaskFilter| list(&*store, filter);
        let wf = |name: &str| TaskFilter::new().workflow(TaskId(id[name]));
        let parent = |name: &str| TaskFilter::new().parent(TaskId(id[name]));

        assert_eq!(listed(parent("r")).await?, ids(&["a", "b", "c"]));
        assert_eq!(listed(parent("a")).await?, ids(&["g"]));
        assert_eq!(listed(parent("u")).await?, ids(&[]));
        assert_eq!(listed(wf("r")).await?, ids(&["r", "a", "b", "c", "g"]));
        assert_eq!(listed(wf("s")).await?, ids(&["s", "t"]));
        assert_eq!(listed(wf("u")).await?, ids(&["u"]));
        // A task inside a workflow is not a root: only itself matches.
        assert_eq!(listed(wf("a")).await?, ids(&["a"]));
        let reason = |r: &str| TaskFilter::new().suspend_reason(r);
        assert_eq!(listed(reason("approval")).await?, ids(&["b", "t"]));
        assert_eq!(listed(reason(AWAITING_CHILDREN)).await?, ids(&["r", "s", "a"]));
        assert_eq!(listed(reason("Approval")).await?, ids(&[]), "compared exactly");

        // AND-combined with each other and with tag, status and name.
        assert_eq!(listed(wf("r").suspend_reason("approval")).await?, ids(&["b"]));
        assert_eq!(listed(wf("r").status(TaskStatus::Pending)).await?, ids(&["c", "g"]));
        assert_eq!(listed(wf("r").tag("x")).await?, ids(&["r"]));
        assert_eq!(listed(wf("r").name("g")).await?, ids(&["g"]));
        assert_eq!(listed(parent("r").status(TaskStatus::Pending)).await?, ids(&["c"]));
        assert_eq!(listed(parent("r").suspend_reason(AWAITING_CHILDREN)).await?, ids(&["a"]));
        assert_eq!(listed(parent("r").workflow(TaskId(id["r"]))).await?, ids(&["a", "b", "c"]));
        assert_eq!(listed(parent("r").workflow(TaskId(id["s"]))).await?, ids(&[]));
        assert_eq!(listed(reason(AWAITING_CHILDREN).tag("x")).await?, ids(&["r"]));
        assert_eq!(listed(reason("approval").name("t").status(TaskStatus::Suspended)).await?, ids(&["t"]));
        assert_eq!(listed(TaskFilter::new().tag("x")).await?, ids(&["r", "u"]));
        let limited = store.task_list(&TaskListParams { filter: wf("r"), limit: Some(2) }).await?;
        assert_eq!(limited.iter().map(|row| row.id).collect::<Vec<_>>(), ids(&["r", "a"]));
        Ok(())
    }
}

backend_test! {
    async fn task_delete_many_filters_by_parent_workflow_and_suspend_reason_and_with_the_other_filters(db) {
        let store = db.store().await;
        let id = workflow_fixture(&*store).await?;
        let ids = |names: &[&str]| names.iter().map(|n| id[n]).collect::<Vec<i64>>();
        let delete = |filter: TaskFilter| {
            let store = store.clone();
            async move { Ok::<_, anyhow::Error>(store.task_delete_many(&TaskListParams { filter, limit: None }).await?) }
        };
        let wf = |name: &str| TaskFilter::new().workflow(TaskId(id[name]));
        let parent = |name: &str| TaskFilter::new().parent(TaskId(id[name]));

        assert_eq!(delete(parent("r").workflow(TaskId(id["s"]))).await?, 0);
        assert_eq!(delete(TaskFilter::new().suspend_reason("nope")).await?, 0);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&["r", "s", "u", "a", "b", "c", "t", "g"]));

        assert_eq!(delete(wf("s").suspend_reason("approval")).await?, 1);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&["r", "s", "u", "a", "b", "c", "g"]));
        assert_eq!(delete(parent("r").status(TaskStatus::Pending)).await?, 1);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&["r", "s", "u", "a", "b", "g"]));
        assert_eq!(delete(wf("r").suspend_reason(AWAITING_CHILDREN)).await?, 2);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&["s", "u", "b", "g"]));
        assert_eq!(delete(parent("a")).await?, 1);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&["s", "u", "b"]));
        assert_eq!(delete(wf("s").tag("x")).await?, 0);
        assert_eq!(delete(wf("s")).await?, 1);
        // The root is gone; its remaining descendant still belongs to it.
        assert_eq!(delete(wf("r")).await?, 1);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&["u"]));
        assert_eq!(delete(parent("r")).await?, 0);
        assert_eq!(delete(wf("u").tag("x")).await?, 1);
        assert_eq!(list(&*store, TaskFilter::new()).await?, ids(&[]));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Concurrency: children of one parent finishing at once
// ---------------------------------------------------------------------------

/// Counts one child in `tx` and commits.
async fn count_and_commit(
    mut tx: Box<dyn StoreTx>,
    params: TaskChildFinishedParams,
) -> anyhow::Result<Option<WaitingParent>> {
    let waiting = tx.task_child_finished(&params).await?;
    tx.commit().await?;
    Ok(waiting)
}

backend_test! {
    async fn children_finishing_at_once_on_two_connections_are_each_counted_once(db) {
        if !db.shareable() {
            eprintln!("skipped on {}: needs a second connection to the same database", db.backend);
            return Ok(());
        }
        const ROUNDS: usize = 20;
        let first = db.store().await;
        // A second process on the same database.
        let second = store::connect(&db.config()).await?;
        let server = !db.is_sqlite();
        for round in 0..ROUNDS {
            let parent = claimed(&*first, task("parent")).await?;
            await_children(&*first, &parent, &["c1", "c2"], ChildFailure::FailParent, None).await?;
            let params = TaskChildFinishedParams { parent_id: parent.id, parent_stage: 0, parent_cycle: 0 };
            let (one, two) = if server && round % 2 == 0 {
                // Both transactions open; the first counts and holds the
                // row; the second must wait for it before counting.
                let mut tx1 = first.begin().await?;
                let tx2 = second.begin().await?;
                let one = tx1.task_child_finished(&params).await?;
                let blocked = tokio::spawn(count_and_commit(tx2, params));
                wait_until("the second count to wait for the row lock", || async {
                    (lock_waits(&db).await.expect("lock_waits") > 0).then_some(())
                })
                .await;
                assert!(!blocked.is_finished(), "round {round}: the second count did not wait");
                tx1.commit().await?;
                let two = blocked.await??;
                assert_eq!(
                    (one.as_ref().map(|w| w.pending_children), two.as_ref().map(|w| w.pending_children)),
                    (Some(1), Some(0)),
                    "round {round}: in lock order"
                );
                (one, two)
            } else if server {
                // Both transactions open, then both count and commit at once.
                let tx1 = first.begin().await?;
                let tx2 = second.begin().await?;
                let one = tokio::spawn(count_and_commit(tx1, params));
                let two = tokio::spawn(count_and_commit(tx2, params));
                (one.await??, two.await??)
            } else {
                // SQLite: the write lock serialises the two transactions.
                let spawn = |store: Arc<dyn Store>| {
                    tokio::spawn(async move { count_and_commit(store.begin().await?, params).await })
                };
                let one = spawn(first.clone());
                let two = spawn(second.clone());
                (one.await??, two.await??)
            };
            let one = one.with_context(|| format!("round {round}: the first count found no waiting parent"))?;
            let two = two.with_context(|| format!("round {round}: the second count found no waiting parent"))?;
            let mut seen = [one.pending_children, two.pending_children];
            seen.sort_unstable();
            assert_eq!(seen, [0, 1], "round {round}: exactly one count saw none left");
            for counted in [one, two] {
                assert_eq!(
                    WaitingParent { pending_children: 0, ..counted },
                    waiting(&parent, 0, ChildFailure::FailParent),
                    "round {round}"
                );
            }
            let stored = get(&*first, parent.id).await?;
            assert_eq!(
                (stored.status.as_str(), stored.pending_children, stored.total_children),
                ("suspended", 0, 2),
                "round {round}"
            );
        }
        second.close().await;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Schema invariants of workflows (raw SQL on shareable backends)
// ---------------------------------------------------------------------------

backend_test! {
    /// The workflow CHECK constraints reject rows the store would never
    /// write, whoever writes them.
    async fn workflow_check_constraints_reject_invalid_rows(db) {
        let store = db.store().await;
        if !db.shareable() {
            eprintln!("skipped on {}: raw SQL needs a second connection", db.backend);
            return Ok(());
        }
        let insert = |columns: &str, values: &str| {
            format!(
                "INSERT INTO {{tasks}} (name, kind, status, timeout_ms, max_attempts, created_at, next_run_at{columns}) \
                 VALUES ('t', 'async', 'pending', 1000, 1, 1, 1{values})"
            )
        };
        // Valid rows go in, so the failures below are the constraints'.
        for sql in [
            insert(", on_child_failure", ", 'fail_parent'"),
            insert(", on_child_failure", ", 'resume'"),
            insert(", on_child_failure", ", NULL"),
            insert(", root_id, parent_id, parent_stage, parent_cycle", ", 1, 1, 0, 0"),
            insert(", pending_children, total_children", ", 2, 3"),
        ] {
            assert_eq!(raw_execute(&db, &sql).await?.context("raw SQL")??, 1, "{sql}");
        }

        let invalid = [
            ("child_failure_valid", insert(", on_child_failure", ", 'sometimes'")),
            ("child_failure_valid", insert(", on_child_failure", ", ''")),
            ("child_failure_valid", insert(", on_child_failure", ", 'FAIL_PARENT'")),
            ("child_has_parent_stage", insert(", parent_id", ", 1")),
            ("child_has_parent_stage", insert(", root_id, parent_id", ", 1, 1")),
            ("child_has_parent_stage", insert(", root_id, parent_id, parent_stage", ", 1, 1, 0")),
            ("counts_non_negative", insert(", pending_children", ", -1")),
            ("counts_non_negative", insert(", total_children", ", -1")),
            // Updates into an invalid state are refused too.
            (
                "child_failure_valid",
                "UPDATE {tasks} SET on_child_failure = 'never' WHERE on_child_failure = 'resume'".to_owned(),
            ),
            (
                "child_has_parent_stage",
                "UPDATE {tasks} SET parent_stage = NULL WHERE parent_id IS NOT NULL".to_owned(),
            ),
            (
                "counts_non_negative",
                "UPDATE {tasks} SET pending_children = pending_children - 3 WHERE pending_children = 2".to_owned(),
            ),
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
        let child = stored.iter().find(|row| row.parent_id.is_some()).context("the valid child")?;
        assert_eq!((child.root_id, child.parent_id, child.parent_stage), (Some(1), Some(1), Some(0)));
        Ok(())
    }
}
