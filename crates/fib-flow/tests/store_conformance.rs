//! The `Store` contract: every method, run once per backend through
//! `backend_test!`. A backend is done when this suite passes on it (STYLE
//! §2.6, rule 9); when a backend method changes, extend this file.
//!
//! Times are compared against `store.now_ms()` read before and after the
//! call under test, so the checks hold on any backend clock.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use fib_flow::state::{plan_failure, FailureKind, Transition};
use fib_flow::store::{
    self, migrate, ClaimName, ErrorUpdate, Fence, NextRun, Store, TaskClaimManyParams,
    TaskHeartbeatParams, TaskInsertParams, TaskListExpiredParams, TaskListParams, TaskRow,
    TaskSetStatusParams, TaskStatsParams, TaskStatsRow,
};
use fib_flow::{TaskFilter, TaskKind, TaskStatus};
use tokio::sync::Notify;

use common::store::{fence, get, raw_execute, task, within};
use common::{wait_until, TestDb};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// The worker that fixtures claim with.
const WORKER: &str = "worker-a";

/// Applies changes in one transaction (as the engine does) and returns,
/// per change, whether it applied.
async fn set_many(store: &dyn Store, changes: &[TaskSetStatusParams]) -> anyhow::Result<Vec<bool>> {
    let mut tx = store.begin().await?;
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        applied.push(tx.task_set_status(change).await?.is_some());
    }
    tx.commit().await?;
    Ok(applied)
}

fn names(limits: &[(&str, i64)]) -> Vec<ClaimName> {
    limits
        .iter()
        .map(|&(name, limit)| ClaimName {
            name: name.to_owned(),
            limit,
        })
        .collect()
}

async fn claim(
    store: &dyn Store,
    worker: &str,
    limits: &[(&str, i64)],
    limit: i64,
) -> anyhow::Result<Vec<TaskRow>> {
    Ok(store
        .task_claim_many(&TaskClaimManyParams::new(worker, names(limits), limit))
        .await?)
}

fn ids(rows: &[TaskRow]) -> Vec<i64> {
    rows.iter().map(|row| row.id).collect()
}

/// Applies one change and returns whether it applied.
async fn set(store: &dyn Store, change: TaskSetStatusParams) -> anyhow::Result<bool> {
    let applied = set_many(store, &[change]).await?;
    ensure!(applied.len() == 1, "one change gave {applied:?}");
    Ok(applied[0])
}

/// Inserts `params` and claims exactly that row under `worker` (its name
/// must have no other due row).
async fn claimed(
    store: &dyn Store,
    worker: &str,
    params: TaskInsertParams,
) -> anyhow::Result<TaskRow> {
    let id = store.task_insert(&params).await?;
    let rows = claim(store, worker, &[(&params.name, 1)], 1).await?;
    ensure!(
        ids(&rows) == [id],
        "claiming {} took {:?}, expected [{id}]",
        params.name,
        ids(&rows)
    );
    rows.into_iter().next().context("claimed row")
}

/// Inserts `params` and moves the row to `status` through store methods
/// (raw SQL for `suspended`, which no store transition enters yet). `None`
/// when this database cannot hold that status in a test.
async fn task_in(
    db: &TestDb,
    store: &dyn Store,
    params: TaskInsertParams,
    status: TaskStatus,
) -> anyhow::Result<Option<TaskRow>> {
    let kind = params.kind;
    let id = match status {
        TaskStatus::Pending => store.task_insert(&params).await?,
        TaskStatus::Paused => {
            let id = store.task_insert(&params).await?;
            ensure!(set(store, TaskSetStatusParams::paused(id)).await?);
            id
        }
        TaskStatus::Suspended => {
            if !db.shareable() {
                return Ok(None);
            }
            let id = store.task_insert(&params).await?;
            let sql = format!("UPDATE {{tasks}} SET status = 'suspended' WHERE id = {id}");
            let done = raw_execute(db, &sql).await?.context("raw SQL")?;
            ensure!(done? == 1, "suspending task {id}");
            id
        }
        TaskStatus::Running
        | TaskStatus::Completed
        | TaskStatus::Failed
        | TaskStatus::Timeout
        | TaskStatus::PermanentlyFailed => {
            let row = claimed(store, WORKER, params).await?;
            let plan = |failure, max_attempts| {
                plan_failure(kind, failure, 0, max_attempts, Duration::ZERO)
            };
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
                    &plan(FailureKind::Error, 3),
                    FailureKind::Error,
                    "boom".into(),
                )),
                TaskStatus::Timeout => Some(TaskSetStatusParams::failed(
                    row.id,
                    fence(&row)?,
                    &plan(FailureKind::Timeout, 3),
                    FailureKind::Timeout,
                    "too slow".into(),
                )),
                _ => Some(TaskSetStatusParams::failed(
                    row.id,
                    fence(&row)?,
                    &plan(FailureKind::Error, 1),
                    FailureKind::Error,
                    "fatal".into(),
                )),
            };
            if let Some(change) = change {
                ensure!(set(store, change).await?, "fixture change to {status}");
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
    Ok(Some(row))
}

/// Waits until the store's clock has passed `ms`.
async fn clock_passes(store: &dyn Store, ms: i64) {
    wait_until(&format!("the store clock to pass {ms}"), || async {
        (store.now_ms().await.expect("now_ms") > ms).then_some(())
    })
    .await;
}

fn filter_params(filter: TaskFilter, limit: Option<i64>) -> TaskListParams {
    TaskListParams { filter, limit }
}

// ---------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------

backend_test! {
    async fn migrate_applies_every_version_once_and_is_idempotent(db) {
        let expected: Vec<i64> = migrate::SQLITE.iter().map(|m| m.version).collect();
        let store = store::connect(&db.config()).await?;
        assert_eq!(store.migration_versions().await?, Vec::<i64>::new());
        assert_eq!(store.migrate().await?, expected);
        assert_eq!(store.migrate().await?, Vec::<i64>::new());
        assert_eq!(store.migration_versions().await?, expected);
        assert_eq!(store.migration_versions().await?, [1, 2, 3, 4]);
        if db.shareable() {
            // A second process on the same database finds nothing to do.
            let other = store::connect(&db.config()).await?;
            assert_eq!(other.migrate().await?, Vec::<i64>::new());
            assert_eq!(other.migration_versions().await?, expected);
            other.close().await;
        }
        // The schema is usable after the no-op second run.
        let id = store.task_insert(&task("after_migrate")).await?;
        assert!(store.task_get(id).await?.is_some());
        Ok(())
    }
}

/// The migrations each backend of this build embeds.
#[allow(clippy::vec_init_then_push)] // each push is behind its feature
fn embedded_migrations() -> Vec<(&'static str, &'static [migrate::Migration])> {
    let mut all: Vec<(&'static str, &'static [migrate::Migration])> = Vec::new();
    #[cfg(feature = "sqlite")]
    all.push(("sqlite", migrate::SQLITE));
    #[cfg(feature = "postgres")]
    all.push(("postgres", migrate::POSTGRES));
    #[cfg(feature = "mysql")]
    all.push(("mysql", migrate::MYSQL));
    all
}

/// `NNNN_name.sql` → (NNNN, name); `None` for any other file name.
fn migration_file(file_name: &str) -> Option<(i64, String)> {
    let stem = file_name.strip_suffix(".sql")?;
    let (number, name) = stem.split_once('_')?;
    if number.len() != 4 || !number.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((number.parse().ok()?, name.to_owned()))
}

/// Every folder under `migrations/` (one per backend) holds the same
/// `NNNN_name.sql` files, numbered 1, 2, … without gaps, and each backend
/// embeds exactly its folder.
#[test]
fn migration_folders_list_the_same_versions_for_every_backend() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut folders: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(&root).with_context(|| root.display().to_string())? {
        let entry = entry?;
        let backend = entry.file_name().to_string_lossy().into_owned();
        ensure!(
            entry.file_type()?.is_dir(),
            "migrations/{backend} is not a folder"
        );
        let mut files = Vec::new();
        for file in std::fs::read_dir(entry.path())? {
            let file_name = file?.file_name().to_string_lossy().into_owned();
            let Some(parsed) = migration_file(&file_name) else {
                bail!("migrations/{backend}/{file_name} is not named NNNN_name.sql");
            };
            files.push(parsed);
        }
        files.sort();
        let versions: Vec<i64> = files.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i64> = (1..=i64::try_from(files.len())?).collect();
        ensure!(
            versions == expected,
            "migrations/{backend} versions {versions:?} are not 1..={}",
            files.len()
        );
        folders.insert(backend, files);
    }
    let sqlite = folders
        .get("sqlite")
        .context("migrations/sqlite is missing")?;
    for (backend, files) in &folders {
        assert_eq!(
            files, sqlite,
            "migrations/{backend} differs from migrations/sqlite"
        );
    }
    // Each backend's embedded list is exactly its folder, text included.
    for (backend, embedded) in embedded_migrations() {
        let files = folders
            .get(backend)
            .with_context(|| format!("migrations/{backend} is missing"))?;
        let listed: Vec<(i64, String)> = embedded
            .iter()
            .map(|m| (m.version, m.name.to_owned()))
            .collect();
        assert_eq!(
            &listed, files,
            "store::migrate's {backend} list differs from its folder"
        );
        for m in embedded {
            let path = root
                .join(backend)
                .join(format!("{:04}_{}.sql", m.version, m.name));
            assert_eq!(std::fs::read_to_string(&path)?, m.sql, "{}", path.display());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// task_insert / task_get
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_insert_returns_increasing_ids_and_task_get_returns_every_field(db) {
        let store = db.store().await;
        let before = store.now_ms().await?;
        let first = store.task_insert(&task("plain")).await?;
        let full = TaskInsertParams {
            kind: TaskKind::Cron,
            payload: Some(r#"{"to":"a@b.c","n":[1,2]}"#.into()),
            priority: -7,
            tag: Some("billing".into()),
            timeout_ms: 1_500,
            max_attempts: 5,
            retry_interval_ms: 2_500,
            cron_expr: Some("0 2 * * *".into()),
            ..task("nightly")
        };
        let second = store.task_insert(&full).await?;
        let third = store.task_insert(&TaskInsertParams { payload: None, ..task("plain") }).await?;
        let after = store.now_ms().await?;
        assert!(first < second && second < third, "ids {first}, {second}, {third}");

        let row = get(&*store, second).await?;
        within("created_at", row.created_at, before, after)?;
        let expected = TaskRow {
            id: second,
            name: "nightly".into(),
            kind: "cron".into(),
            status: "pending".into(),
            priority: -7,
            payload: Some(r#"{"to":"a@b.c","n":[1,2]}"#.into()),
            tag: Some("billing".into()),
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
            last_event_at: Some(row.created_at),
            last_event_type: Some("task_created".into()),
            created_at: row.created_at,
            next_run_at: row.created_at,
            started_at: None,
            last_active_at: None,
            finished_at: None,
        };
        assert_eq!(row, expected);

        let plain = get(&*store, first).await?;
        assert_eq!(plain.kind, "async");
        assert_eq!(plain.payload.as_deref(), Some(r#"{"n":1}"#));
        assert_eq!((plain.tag, plain.cron_expr), (None, None));
        assert_eq!(plain.next_run_at, plain.created_at);
        assert_eq!(get(&*store, third).await?.payload, None);

        assert_eq!(store.task_get(third + 1000).await?, None);
        Ok(())
    }
}

backend_test! {
    async fn task_insert_next_run_after_ms_is_relative_to_created_at_and_at_ms_is_absolute(db) {
        let store = db.store().await;
        let later = store
            .task_insert(&TaskInsertParams { next_run: NextRun::AfterMs(90_000), ..task("t") })
            .await?;
        let row = get(&*store, later).await?;
        assert_eq!(row.next_run_at, row.created_at + 90_000);

        let now = store
            .task_insert(&TaskInsertParams { next_run: NextRun::AfterMs(0), ..task("t") })
            .await?;
        let row = get(&*store, now).await?;
        assert_eq!(row.next_run_at, row.created_at);

        let at = 1_900_000_000_123;
        let fixed = store
            .task_insert(&TaskInsertParams { next_run: NextRun::AtMs(at), ..task("t") })
            .await?;
        assert_eq!(get(&*store, fixed).await?.next_run_at, at);

        let past = 1_000_000_000_000;
        let overdue = store
            .task_insert(&TaskInsertParams { next_run: NextRun::AtMs(past), ..task("t") })
            .await?;
        assert_eq!(get(&*store, overdue).await?.next_run_at, past);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_claim_many
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_claim_many_claims_only_due_rows_of_the_given_names(db) {
        let store = db.store().await;
        let a_due = store.task_insert(&task("a")).await?;
        let a_later = store
            .task_insert(&TaskInsertParams { next_run: NextRun::AfterMs(600_000), ..task("a") })
            .await?;
        let b_due = store.task_insert(&task("b")).await?;
        let c_due = store.task_insert(&task("c")).await?;

        let rows = claim(&*store, WORKER, &[("a", 10), ("b", 10)], 10).await?;
        let got: BTreeSet<i64> = ids(&rows).into_iter().collect();
        assert_eq!(got, BTreeSet::from([a_due, b_due]));
        assert_eq!(claim(&*store, WORKER, &[("a", 10), ("b", 10)], 10).await?, []);
        assert_eq!(get(&*store, a_later).await?.status, "pending");
        assert_eq!(get(&*store, c_due).await?.status, "pending");

        // A name nobody has rows for, an empty name list and a zero limit
        // claim nothing.
        assert_eq!(claim(&*store, WORKER, &[("zzz", 10)], 10).await?, []);
        assert_eq!(claim(&*store, WORKER, &[], 10).await?, []);
        assert_eq!(claim(&*store, WORKER, &[("c", 10)], 0).await?, []);
        assert_eq!(claim(&*store, WORKER, &[("c", 0)], 10).await?, []);
        assert_eq!(get(&*store, c_due).await?.status, "pending");
        assert_eq!(ids(&claim(&*store, WORKER, &[("c", 1)], 1).await?), [c_due]);
        Ok(())
    }
}

backend_test! {
    async fn an_async_commit_claim_claims_like_any_other(db) {
        let store = db.store().await;
        let id = store.task_insert(&task("a")).await?;
        let params = TaskClaimManyParams {
            async_commit: true,
            ..TaskClaimManyParams::new(WORKER, names(&[("a", 10)]), 10)
        };
        let mut tx = store.begin().await?;
        let rows = tx.task_claim_many(&params).await?;
        tx.commit().await?;
        assert_eq!(ids(&rows), [id]);
        let row = get(&*store, id).await?;
        assert_eq!((row.status.as_str(), row.worker_id.as_deref()), ("running", Some(WORKER)));
        Ok(())
    }
}

backend_test! {
    async fn vacuum_if_needed_vacuums_only_where_the_database_will_not(db) {
        let store = db.store().await;
        // A table nobody vacuums yet, whatever the server's setting.
        if db.backend == "postgres" {
            raw_execute(&db, "ALTER TABLE {tasks} SET (autovacuum_enabled = false)")
                .await?
                .context("postgres runs raw SQL")??;
        }
        for _ in 0..1_500 {
            store.task_insert(&task("churn")).await?;
        }
        raw_execute(&db, "DELETE FROM {tasks}").await?;
        if db.backend != "postgres" {
            assert_eq!(store.vacuum_if_needed().await?, Vec::<String>::new());
            return Ok(());
        }
        // The statistics reach the server within about a second, the
        // inserts maybe before the deletes: gather what it runs until it
        // has vacuumed.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut commands: Vec<String> = Vec::new();
        while !commands.iter().any(|c| c.starts_with("VACUUM")) {
            assert!(std::time::Instant::now() < deadline, "no vacuum within 20 s: {commands:?}");
            commands.extend(store.vacuum_if_needed().await?);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(commands.contains(&"VACUUM (ANALYZE) fib_flow_tasks".to_owned())
            || commands.contains(&"VACUUM fib_flow_tasks".to_owned()), "{commands:?}");
        assert!(commands.iter().all(|c| c.ends_with(" fib_flow_tasks")), "only the changed table: {commands:?}");
        Ok(())
    }
}

/// The PostgreSQL claim statement turns `synchronous_commit` off for its
/// own transaction only, and only when asked.
#[tokio::test]
async fn postgres_claim_commit_mode_is_set_for_its_transaction_only() -> anyhow::Result<()> {
    use sqlx::{Connection, Row};
    let Some(db) = TestDb::postgres() else {
        eprintln!("skipped: FIB_FLOW_TEST_POSTGRES_URL is not set");
        return Ok(());
    };
    let store = db.store().await;
    // One due row for each claim below (a claim that finds none commits
    // nothing, whatever its mode).
    store.task_insert(&task("a")).await?;
    store.task_insert(&task("a")).await?;
    let mut conn = sqlx::PgConnection::connect(&db.url).await?;
    let schema = db.schema.clone().context("a server test has a schema")?;
    sqlx::query(&format!("SET search_path TO \"{schema}\""))
        .execute(&mut conn)
        .await?;
    let setting = "SELECT current_setting('synchronous_commit')";
    for (asked, inside) in [(false, "on"), (true, "off")] {
        let mut tx = conn.begin().await?;
        sqlx::query(include_str!(
            "../src/store/postgres/queries/task_claim_many.sql"
        ))
        .bind(vec!["a"])
        .bind(vec![1_i64])
        .bind(1_i64)
        .bind("running")
        .bind(WORKER)
        .bind(vec!["pending"])
        .bind("task_started")
        .bind("task_retry_started")
        .bind(asked)
        .fetch_all(&mut *tx)
        .await?;
        let during: String = sqlx::query(setting).fetch_one(&mut *tx).await?.try_get(0)?;
        assert_eq!(during, inside, "asked for async commit: {asked}");
        tx.commit().await?;
        let after: String = sqlx::query(setting)
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        assert_eq!(after, "on", "the session keeps its own setting");
    }
    db.cleanup().await;
    Ok(())
}

backend_test! {
    async fn task_claim_many_honours_the_overall_and_per_name_limits(db) {
        let store = db.store().await;
        let mut a = Vec::new();
        for _ in 0..5 {
            a.push(store.task_insert(&task("a")).await?);
        }
        let mut b = Vec::new();
        for _ in 0..5 {
            b.push(store.task_insert(&task("b")).await?);
        }
        // At most 2 of a, at most 10 of b, at most 4 in all: a's two best,
        // then b's best two (a's rows were created first).
        let limits = [("a", 2), ("b", 10)];
        assert_eq!(ids(&claim(&*store, WORKER, &limits, 4).await?), [a[0], a[1], b[0], b[1]]);
        assert_eq!(ids(&claim(&*store, WORKER, &limits, 4).await?), [a[2], a[3], b[2], b[3]]);
        assert_eq!(ids(&claim(&*store, WORKER, &limits, 4).await?), [a[4], b[4]]);
        assert_eq!(claim(&*store, WORKER, &limits, 4).await?, []);

        // A per-name limit above the overall limit is capped by it.
        let mut c = Vec::new();
        for _ in 0..3 {
            c.push(store.task_insert(&task("c")).await?);
        }
        assert_eq!(ids(&claim(&*store, WORKER, &[("c", 100)], 2).await?), [c[0], c[1]]);
        assert_eq!(ids(&claim(&*store, WORKER, &[("c", 1)], 100).await?), [c[2]]);
        Ok(())
    }
}

backend_test! {
    async fn task_claim_many_orders_by_priority_then_due_time_then_id(db) {
        let store = db.store().await;
        let now = store.now_ms().await?;
        let insert = |name: &'static str, priority: i32, ago: i64| {
            let store = store.clone();
            async move {
                store
                    .task_insert(&TaskInsertParams {
                        priority,
                        next_run: NextRun::AtMs(now - ago),
                        ..task(name)
                    })
                    .await
            }
        };
        let r1 = insert("a", 0, 1_000).await?;
        let r2 = insert("b", 5, 100).await?;
        let r3 = insert("a", 5, 500).await?;
        let r4 = insert("b", 0, 2_000).await?;
        let r5 = insert("b", 5, 500).await?;
        let r6 = insert("a", -1, 5_000).await?;
        let r7 = insert("a", 0, 1_000).await?;

        let limits = [("a", 10), ("b", 10)];
        let first = claim(&*store, WORKER, &limits, 3).await?;
        assert_eq!(ids(&first), [r3, r5, r2]);
        let rest = claim(&*store, WORKER, &limits, 10).await?;
        assert_eq!(ids(&rest), [r4, r1, r7, r6]);
        Ok(())
    }
}

backend_test! {
    async fn task_claim_many_marks_rows_running_under_the_worker_with_a_new_attempt(db) {
        let store = db.store().await;
        let id = store
            .task_insert(&TaskInsertParams { tag: Some("t".into()), priority: 3, ..task("a") })
            .await?;
        let pending = get(&*store, id).await?;
        let before = store.now_ms().await?;
        let rows = claim(&*store, "worker-1", &[("a", 1)], 1).await?;
        let after = store.now_ms().await?;
        assert_eq!(ids(&rows), [id]);
        let row = rows[0].clone();
        let started_at = row.started_at.context("started_at")?;
        within("started_at", started_at, before, after)?;
        assert_eq!(
            row,
            TaskRow {
                last_event_at: row.last_event_at,
                last_event_type: Some("task_started".into()),
                status: "running".into(),
                worker_id: Some("worker-1".into()),
                attempt: 1,
                started_at: Some(started_at),
                last_active_at: Some(started_at),
                previous_status: Some("pending".into()),
                ..pending.clone()
            }
        );
        // The returned row is what is stored.
        assert_eq!(get(&*store, id).await?, row);

        // Failed and due again: the next claim opens attempt 2, for whichever
        // worker claims it.
        let plan = plan_failure(TaskKind::Async, FailureKind::Error, 0, 3, Duration::ZERO);
        assert!(set(&*store, TaskSetStatusParams::failed(id, fence(&row)?, &plan, FailureKind::Error, "e".into())).await?);
        let again = claim(&*store, "worker-2", &[("a", 1)], 1).await?;
        assert_eq!(ids(&again), [id]);
        assert_eq!(again[0].attempt, 2);
        assert_eq!(again[0].worker_id.as_deref(), Some("worker-2"));
        assert_eq!(again[0].status, "running");
        assert_eq!(again[0].retry_count, 1);
        Ok(())
    }
}

backend_test! {
    async fn task_claim_many_takes_due_failed_and_timeout_rows_but_no_other_status(db) {
        let store = db.store().await;
        let mut claimable = BTreeSet::new();
        let mut not_claimable = BTreeMap::new();
        for status in TaskStatus::ALL {
            // One name per status so each fixture claims only its own row.
            let name = format!("fixture_{status}");
            let Some(row) = task_in(&db, &*store, task(&name), status).await? else {
                continue;
            };
            if TaskStatus::CLAIMABLE.contains(&status) {
                claimable.insert(row.id);
            } else {
                not_claimable.insert(row.id, row);
            }
        }
        let all: Vec<(String, i64)> = TaskStatus::ALL
            .iter()
            .map(|s| (format!("fixture_{s}"), 10))
            .collect();
        let limits: Vec<(&str, i64)> = all.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let rows = claim(&*store, "worker-b", &limits, 100).await?;
        let got: BTreeSet<i64> = ids(&rows).into_iter().collect();
        assert_eq!(got, claimable);
        for row in &rows {
            assert_eq!(row.status, "running");
            assert_eq!(row.worker_id.as_deref(), Some("worker-b"));
        }
        // Every other row is untouched, whatever its status.
        for (id, before) in not_claimable {
            assert_eq!(get(&*store, id).await?, before, "task {id} ({})", before.status);
        }

        // A failed row scheduled for later is not due yet.
        let row = claimed(&*store, WORKER, task("later")).await?;
        let plan = plan_failure(TaskKind::Async, FailureKind::Error, 0, 3, Duration::from_secs(600));
        assert!(set(&*store, TaskSetStatusParams::failed(row.id, fence(&row)?, &plan, FailureKind::Error, "e".into())).await?);
        assert_eq!(claim(&*store, WORKER, &[("later", 1)], 1).await?, []);
        assert_eq!(get(&*store, row.id).await?.status, "failed");
        Ok(())
    }
}

backend_test! {
    async fn concurrent_claimers_never_claim_the_same_row(db) {
        const ROWS: usize = 200;
        const BATCH: i64 = 7;
        let first = db.store().await;
        // Two processes on a shared database; two claimers on one store
        // where the database is private to it.
        let second = if db.shareable() {
            store::connect(&db.config()).await?
        } else {
            first.clone()
        };
        let mut inserted = BTreeSet::new();
        for _ in 0..ROWS {
            inserted.insert(first.task_insert(&task("q")).await?);
        }
        let claimer = |store: Arc<dyn Store>, worker: &'static str| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let rows = claim(&*store, worker, &[("q", BATCH)], BATCH).await?;
                    anyhow::ensure!(rows.len() <= BATCH as usize, "claimed {} > {BATCH}", rows.len());
                    if rows.is_empty() {
                        return Ok::<_, anyhow::Error>(got);
                    }
                    got.extend(rows.into_iter().map(|row| (row.id, worker)));
                }
            })
        };
        let one = claimer(first.clone(), "worker-1");
        let two = claimer(second.clone(), "worker-2");
        let (one, two) = (one.await??, two.await??);
        let mut seen = HashSet::new();
        for &(id, _) in one.iter().chain(&two) {
            assert!(seen.insert(id), "task {id} was claimed twice");
        }
        let union: BTreeSet<i64> = seen.into_iter().collect();
        assert_eq!(union, inserted);
        for (id, worker) in one.into_iter().chain(two) {
            let row = get(&*first, id).await?;
            assert_eq!((row.status.as_str(), row.worker_id.as_deref(), row.attempt), ("running", Some(worker), 1));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_set_status_many
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_set_status_many_applies_a_fenced_change_only_for_the_same_worker_and_attempt(db) {
        let store = db.store().await;
        let row = claimed(&*store, WORKER, task("a")).await?;
        let done = |worker: &str, attempt: i64| {
            TaskSetStatusParams::completed(
                row.id,
                Fence { worker_id: worker.into(), attempt },
                r#"{"ok":true}"#.into(),
            )
        };
        assert!(!set(&*store, done(WORKER, 2)).await?, "wrong attempt applied");
        assert_eq!(get(&*store, row.id).await?, row);
        assert!(!set(&*store, done(WORKER, 0)).await?, "older attempt applied");
        assert_eq!(get(&*store, row.id).await?, row);
        assert!(!set(&*store, done("worker-other", 1)).await?, "wrong worker applied");
        assert_eq!(get(&*store, row.id).await?, row);

        // The same worker loses attempt 1 and claims attempt 2: a write for
        // attempt 1 no longer applies.
        assert!(set(&*store, TaskSetStatusParams::released(row.id, fence(&row)?)).await?);
        let again = claim(&*store, WORKER, &[("a", 1)], 1).await?;
        assert_eq!((ids(&again), again[0].attempt), (vec![row.id], 2));
        assert!(!set(&*store, done(WORKER, 1)).await?, "lost attempt applied");
        assert_eq!(get(&*store, row.id).await?, again[0]);
        assert!(set(&*store, done(WORKER, 2)).await?);
        assert_eq!(get(&*store, row.id).await?.status, "completed");
        Ok(())
    }
}

backend_test! {
    async fn task_set_status_many_applies_only_from_allowed_statuses_and_reports_each_change_in_order(db) {
        let store = db.store().await;
        let running = claimed(&*store, WORKER, task("r")).await?;
        let pending = store.task_insert(&task("p")).await?;
        let paused = task_in(&db, &*store, task("z"), TaskStatus::Paused).await?.context("paused")?;
        let completed =
            task_in(&db, &*store, task("c"), TaskStatus::Completed).await?.context("completed")?;
        let missing = completed.id + 1000;
        let snapshot = |id| {
            let store = store.clone();
            async move { get(&*store, id).await }
        };
        let completed_before = snapshot(completed.id).await?;

        let changes = vec![
            TaskSetStatusParams::resumed(pending),   // pending is not paused
            TaskSetStatusParams::paused(running.id), // running may be paused
            TaskSetStatusParams::paused(paused.id),  // already paused
            TaskSetStatusParams::resumed(paused.id), // paused may be resumed
            TaskSetStatusParams::paused(completed.id), // terminal
            TaskSetStatusParams::paused(missing),    // no such row
            TaskSetStatusParams::paused(pending),    // pending may be paused
        ];
        assert_eq!(
            set_many(&*store, &changes).await?,
            [false, true, false, true, false, false, true]
        );
        assert_eq!(set_many(&*store, &[]).await?, Vec::<bool>::new());
        assert_eq!(snapshot(running.id).await?.status, "paused");
        assert_eq!(snapshot(paused.id).await?.status, "pending");
        assert_eq!(snapshot(completed.id).await?, completed_before);
        assert_eq!(snapshot(pending).await?.status, "paused");
        assert_eq!(store.task_get(missing).await?, None);

        // Changes in one batch see the earlier ones: pause then resume the
        // same row applies both.
        let row = store.task_insert(&task("twice")).await?;
        assert_eq!(
            set_many(
                &*store,
                &[
                    TaskSetStatusParams::paused(row),
                    TaskSetStatusParams::resumed(row),
                    TaskSetStatusParams::resumed(row),
                ],
            )
            .await?,
            [true, true, false]
        );
        assert_eq!(snapshot(row).await?.status, "pending");

        // Every fenced transition needs a running row.
        for transition in Transition::ALL.into_iter().filter(|t| t.is_fenced()) {
            let change = TaskSetStatusParams {
                transition,
                ..TaskSetStatusParams::released(pending, Fence { worker_id: WORKER.into(), attempt: 0 })
            };
            assert!(!set(&*store, change).await?, "{transition:?} applied to a paused row");
        }
        Ok(())
    }
}

backend_test! {
    async fn task_set_status_many_writes_the_columns_the_params_name(db) {
        let store = db.store().await;
        let row = claimed(&*store, WORKER, task("a")).await?;
        // Every optional column set at once.
        let change = TaskSetStatusParams {
            result: Some(r#"{"partial":1}"#.into()),
            error: ErrorUpdate::Set("kept going".into()),
            next_run: NextRun::AtMs(1_900_000_000_000),
            retry_count: Some(7),
            release_owner: true,
            ..TaskSetStatusParams::released(row.id, fence(&row)?)
        };
        let before = store.now_ms().await?;
        assert!(set(&*store, change).await?);
        let after = store.now_ms().await?;
        let stored = get(&*store, row.id).await?;
        let last_active_at = stored.last_active_at.context("last_active_at")?;
        within("last_active_at", last_active_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: Some("task_status_changed".into()),
                status: "pending".into(),
                result: Some(r#"{"partial":1}"#.into()),
                error: Some("kept going".into()),
                next_run_at: 1_900_000_000_000,
                retry_count: 7,
                worker_id: None,
                last_active_at: Some(last_active_at),
                previous_status: Some("running".into()),
                ..row.clone()
            }
        );

        // Nothing optional set: only status, last_active_at and the event
        // snapshot move.
        let paused = stored.clone();
        assert!(set(&*store, TaskSetStatusParams::paused(row.id)).await?);
        let stored = get(&*store, row.id).await?;
        assert_eq!(
            stored,
            TaskRow {
                status: "paused".into(),
                last_active_at: stored.last_active_at,
                last_event_at: stored.last_active_at,
                last_event_type: Some("task_paused".into()),
                previous_status: Some("pending".into()),
                ..paused
            }
        );
        ensure!(stored.last_active_at >= Some(last_active_at));

        // next_run AfterMs is relative to the database's now.
        let change = TaskSetStatusParams {
            next_run: NextRun::AfterMs(45_000),
            ..TaskSetStatusParams::resumed(row.id)
        };
        let before = store.now_ms().await?;
        assert!(set(&*store, change).await?);
        let after = store.now_ms().await?;
        let stored = get(&*store, row.id).await?;
        within("next_run_at", stored.next_run_at, before + 45_000, after + 45_000)?;
        Ok(())
    }
}

/// Builds a change of a claimed row.
type ChangeOf = dyn Fn(&TaskRow) -> anyhow::Result<TaskSetStatusParams>;

/// The parts of a row a status change decides (not its id, name or
/// times), to compare twins changed in different ways.
fn decided(row: &TaskRow) -> TaskRow {
    TaskRow {
        id: 0,
        name: String::new(),
        root_id: None,
        created_at: 0,
        next_run_at: 0,
        started_at: None,
        last_active_at: None,
        last_event_at: None,
        finished_at: row.finished_at.map(|_| 0),
        ..row.clone()
    }
}

backend_test! {
    async fn a_batch_of_status_changes_matches_the_same_changes_one_by_one(db) {
        use fib_flow::state::ChildFailure;
        use fib_flow::store::ChildrenUpdate;
        let store = db.store().await;
        let retry = plan_failure(TaskKind::Async, FailureKind::Error, 0, 3, Duration::from_secs(60));
        // Each kind of change a finished attempt writes, and one whose
        // fence no longer matches.
        let changes: Vec<(&str, Box<ChangeOf>)> = vec![
            ("completed", Box::new(|r| Ok(TaskSetStatusParams::completed(r.id, fence(r)?, r#"{"x":1}"#.into())))),
            ("failed", Box::new(move |r| Ok(TaskSetStatusParams::failed(r.id, fence(r)?, &retry, FailureKind::Error, "boom".into())))),
            ("suspended", Box::new(|r| Ok(TaskSetStatusParams::suspended(r.id, fence(r)?, "approve".into(), Some(vec![1, 2, 3]))))),
            ("released", Box::new(|r| Ok(TaskSetStatusParams::released(r.id, fence(r)?)))),
            ("advanced", Box::new(|r| Ok(TaskSetStatusParams::advanced(r.id, fence(r)?, Some(vec![9]))))),
            ("awaiting", Box::new(|r| {
                let update = ChildrenUpdate { count: 2, on_failure: ChildFailure::default() };
                Ok(TaskSetStatusParams::awaiting_children(r.id, fence(r)?, update, None))
            })),
            ("stale", Box::new(|r| {
                let stale = Fence { attempt: r.attempt + 1, ..fence(r)? };
                Ok(TaskSetStatusParams::completed(r.id, stale, "1".into()))
            })),
        ];
        let mut one_by_one = Vec::new();
        let mut batch = Vec::new();
        for (name, change) in &changes {
            let single = claimed(&*store, WORKER, task(&format!("{name}-single"))).await?;
            let batched = claimed(&*store, WORKER, task(&format!("{name}-batched"))).await?;
            one_by_one.push((single.id, change(&single)?));
            batch.push((batched.id, change(&batched)?));
        }
        let mut singles = Vec::new();
        for (_, change) in &one_by_one {
            let mut tx = store.begin().await?;
            singles.push(tx.task_set_status(change).await?);
            tx.commit().await?;
        }
        let params: Vec<TaskSetStatusParams> = batch.iter().map(|(_, c)| c.clone()).collect();
        let mut tx = store.begin().await?;
        let batched = tx.task_set_status_many(&params).await?;
        assert_eq!(tx.task_set_status_many(&[]).await?, [], "an empty batch");
        let again = tx.task_set_status_many(&params[..1]).await?;
        assert_eq!(again, [None], "a batch of one: completed already");
        tx.commit().await?;
        assert_eq!(batched.len(), changes.len());
        for (k, (name, _)) in changes.iter().enumerate() {
            let (single, batch_ref) = (&singles[k], &batched[k]);
            assert_eq!(single.is_some(), batch_ref.is_some(), "{name}: applied");
            assert_eq!(single.is_some(), *name != "stale", "{name}: applied");
            if let (Some(a), Some(b)) = (single, batch_ref) {
                assert_eq!(b.id, batch[k].0, "{name}: the returned task is its own");
                let same = |r: &fib_flow::store::TaskRef| fib_flow::store::TaskRef {
                    id: 0,
                    name: String::new(),
                    root_id: None,
                    next_run_at: 0,
                    ..r.clone()
                };
                assert_eq!(same(a), same(b), "{name}: returned task");
            }
            let (a, b) = (get(&*store, one_by_one[k].0).await?, get(&*store, batch[k].0).await?);
            assert_eq!(decided(&a), decided(&b), "{name}: stored row");
            assert_eq!(
                store.task_context(a.id).await?,
                store.task_context(b.id).await?,
                "{name}: context"
            );
            // A delay is counted from each change's own clock.
            let delay = |r: &TaskRow| r.next_run_at - r.last_active_at.unwrap_or(r.next_run_at);
            assert!((delay(&a) - delay(&b)).abs() < 5_000, "{name}: due time {a:?} {b:?}");
        }
        Ok(())
    }
}

backend_test! {
    async fn completed_stores_the_result_and_finishes_the_task(db) {
        let store = db.store().await;
        // An earlier attempt's error stays; the result is written.
        let first = claimed(&*store, WORKER, task("a")).await?;
        let plan = plan_failure(TaskKind::Async, FailureKind::Error, 0, 3, Duration::ZERO);
        assert!(set(&*store, TaskSetStatusParams::failed(first.id, fence(&first)?, &plan, FailureKind::Error, "first try".into())).await?);
        let row = claim(&*store, WORKER, &[("a", 1)], 1).await?.remove(0);
        let before = store.now_ms().await?;
        assert!(set(&*store, TaskSetStatusParams::completed(row.id, fence(&row)?, r#"{"sum":5}"#.into())).await?);
        let after = store.now_ms().await?;
        let stored = get(&*store, row.id).await?;
        let finished_at = stored.finished_at.context("finished_at")?;
        within("finished_at", finished_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: Some("task_completed".into()),
                status: "completed".into(),
                result: Some(r#"{"sum":5}"#.into()),
                finished_at: Some(finished_at),
                last_active_at: Some(finished_at),
                previous_status: Some("running".into()),
                ..row.clone()
            }
        );
        assert_eq!(stored.error.as_deref(), Some("first try"));
        assert_eq!((stored.attempt, stored.retry_count), (2, 1));
        // Terminal: no second completion, no pause.
        assert!(!set(&*store, TaskSetStatusParams::completed(row.id, fence(&row)?, "1".into())).await?);
        assert!(!set(&*store, TaskSetStatusParams::paused(row.id)).await?);
        assert_eq!(get(&*store, row.id).await?, stored);
        Ok(())
    }
}

backend_test! {
    async fn failed_with_a_retry_plan_schedules_the_next_attempt(db) {
        let store = db.store().await;
        for (failure, status) in [(FailureKind::Error, "failed"), (FailureKind::Timeout, "timeout")] {
            let name = format!("retry_{status}");
            let row = claimed(&*store, WORKER, TaskInsertParams { retry_interval_ms: 5_000, ..task(&name) }).await?;
            let plan = plan_failure(TaskKind::Async, failure, 0, 3, Duration::from_millis(5_000));
            assert_eq!(plan.retry_count, 1);
            let before = store.now_ms().await?;
            assert!(set(&*store, TaskSetStatusParams::failed(row.id, fence(&row)?, &plan, FailureKind::Error, "boom".into())).await?);
            let after = store.now_ms().await?;
            let stored = get(&*store, row.id).await?;
            within("next_run_at", stored.next_run_at, before + 5_000, after + 5_000)?;
            let last_active_at = stored.last_active_at.context("last_active_at")?;
            within("last_active_at", last_active_at, before, after)?;
            assert_eq!(
                stored,
                TaskRow {
                    last_event_at: stored.last_event_at,
                    last_event_type: stored.last_event_type.clone(),
                    status: status.into(),
                    error: Some("boom".into()),
                    retry_count: 1,
                    next_run_at: stored.next_run_at,
                    last_active_at: Some(last_active_at),
                    finished_at: None,
                    previous_status: Some("running".into()),
                    ..row.clone()
                },
                "{failure:?}"
            );
            // Not due for five seconds.
            assert_eq!(claim(&*store, WORKER, &[(&name, 1)], 1).await?, []);
        }

        // A zero interval is due at once; a second failure counts 2.
        let row = claimed(&*store, WORKER, task("again")).await?;
        let plan = plan_failure(TaskKind::Async, FailureKind::Error, 0, 3, Duration::ZERO);
        assert!(set(&*store, TaskSetStatusParams::failed(row.id, fence(&row)?, &plan, FailureKind::Error, "one".into())).await?);
        let row = claim(&*store, WORKER, &[("again", 1)], 1).await?.remove(0);
        let plan = plan_failure(TaskKind::Async, FailureKind::Error, 1, 3, Duration::ZERO);
        assert!(set(&*store, TaskSetStatusParams::failed(row.id, fence(&row)?, &plan, FailureKind::Error, "two".into())).await?);
        let stored = get(&*store, row.id).await?;
        assert_eq!((stored.status.as_str(), stored.retry_count, stored.error.as_deref()), ("failed", 2, Some("two")));
        Ok(())
    }
}

backend_test! {
    async fn failed_with_an_exhausted_plan_finishes_async_tasks_and_pauses_cron_tasks(db) {
        let store = db.store().await;
        let row = claimed(&*store, WORKER, TaskInsertParams { max_attempts: 1, ..task("a") }).await?;
        let plan = plan_failure(TaskKind::Async, FailureKind::Error, 0, 1, Duration::from_secs(9));
        assert_eq!(plan.transition, Transition::Exhaust);
        let before = store.now_ms().await?;
        assert!(set(&*store, TaskSetStatusParams::failed(row.id, fence(&row)?, &plan, FailureKind::Error, "fatal".into())).await?);
        let after = store.now_ms().await?;
        let stored = get(&*store, row.id).await?;
        let finished_at = stored.finished_at.context("finished_at")?;
        within("finished_at", finished_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: Some("task_permanently_failed".into()),
                status: "permanently_failed".into(),
                error: Some("fatal".into()),
                finished_at: Some(finished_at),
                last_active_at: Some(finished_at),
                previous_status: Some("running".into()),
                ..row.clone()
            }
        );
        assert_eq!(claim(&*store, WORKER, &[("a", 1)], 1).await?, []);

        let cron = claimed(
            &*store,
            WORKER,
            TaskInsertParams { kind: TaskKind::Cron, cron_expr: Some("* * * * *".into()), ..task("c") },
        )
        .await?;
        let plan = plan_failure(TaskKind::Cron, FailureKind::Timeout, 2, 3, Duration::ZERO);
        assert_eq!(plan.transition, Transition::ExhaustCron);
        assert!(set(&*store, TaskSetStatusParams::failed(cron.id, fence(&cron)?, &plan, FailureKind::Error, "late".into())).await?);
        let stored = get(&*store, cron.id).await?;
        assert_eq!(
            (stored.status.as_str(), stored.finished_at, stored.retry_count, stored.next_run_at, stored.error.as_deref()),
            ("paused", None, 2, cron.next_run_at, Some("late"))
        );
        assert_eq!(claim(&*store, WORKER, &[("c", 1)], 1).await?, []);
        Ok(())
    }
}

backend_test! {
    async fn released_gives_the_task_back_due_now_without_an_owner(db) {
        let store = db.store().await;
        let row = claimed(&*store, WORKER, TaskInsertParams { next_run: NextRun::AtMs(1_000), ..task("a") }).await?;
        let before = store.now_ms().await?;
        assert!(set(&*store, TaskSetStatusParams::released(row.id, fence(&row)?)).await?);
        let after = store.now_ms().await?;
        let stored = get(&*store, row.id).await?;
        within("next_run_at", stored.next_run_at, before, after)?;
        assert_eq!(
            stored,
            TaskRow {
                last_event_at: stored.last_event_at,
                last_event_type: Some("task_status_changed".into()),
                status: "pending".into(),
                worker_id: None,
                next_run_at: stored.next_run_at,
                last_active_at: stored.last_active_at,
                previous_status: Some("running".into()),
                ..row.clone()
            }
        );
        assert_eq!((stored.retry_count, stored.attempt, stored.finished_at), (0, 1, None));
        // Released twice: the second has no running row to release.
        assert!(!set(&*store, TaskSetStatusParams::released(row.id, fence(&row)?)).await?);
        let again = claim(&*store, "worker-2", &[("a", 1)], 1).await?;
        assert_eq!((ids(&again), again[0].attempt), (vec![row.id], 2));
        Ok(())
    }
}

backend_test! {
    async fn paused_applies_to_pending_running_failed_and_timeout_without_a_fence(db) {
        let store = db.store().await;
        for status in TaskStatus::ALL {
            let Some(row) = task_in(&db, &*store, task(&format!("p_{status}")), status).await? else {
                continue;
            };
            let allowed = Transition::Pause.allowed_from().contains(&status);
            assert_eq!(
                allowed,
                matches!(status, TaskStatus::Pending | TaskStatus::Running | TaskStatus::Failed | TaskStatus::Timeout)
            );
            assert_eq!(set(&*store, TaskSetStatusParams::paused(row.id)).await?, allowed, "pause from {status}");
            let stored = get(&*store, row.id).await?;
            if allowed {
                assert_eq!(
                    stored,
                    TaskRow {
                        last_event_at: stored.last_event_at,
                        last_event_type: Some("task_paused".into()),
                        status: "paused".into(),
                        last_active_at: stored.last_active_at,
                        previous_status: Some(status.as_str().into()),
                        ..row.clone()
                    },
                    "pause from {status}"
                );
            } else {
                assert_eq!(stored, row, "pause from {status}");
            }
        }
        Ok(())
    }
}

backend_test! {
    async fn resumed_makes_a_paused_task_due_with_a_fresh_retry_budget(db) {
        let store = db.store().await;
        let failed = task_in(&db, &*store, TaskInsertParams { retry_interval_ms: 600_000, ..task("a") }, TaskStatus::Failed)
            .await?
            .context("failed")?;
        assert_eq!(failed.retry_count, 1);
        assert!(set(&*store, TaskSetStatusParams::paused(failed.id)).await?);
        let before = store.now_ms().await?;
        assert!(set(&*store, TaskSetStatusParams::resumed(failed.id)).await?);
        let after = store.now_ms().await?;
        let stored = get(&*store, failed.id).await?;
        within("next_run_at", stored.next_run_at, before, after)?;
        assert_eq!(
            (stored.status.as_str(), stored.retry_count, stored.stage, stored.finished_at, stored.attempt),
            ("pending", 0, 0, None, 1)
        );
        assert_eq!(stored.error.as_deref(), Some("boom"));
        // Due at once and claimable.
        assert_eq!(ids(&claim(&*store, WORKER, &[("a", 1)], 1).await?), [failed.id]);
        // Only paused rows resume.
        for status in TaskStatus::ALL.into_iter().filter(|s| *s != TaskStatus::Paused) {
            let Some(row) = task_in(&db, &*store, task(&format!("r_{status}")), status).await? else {
                continue;
            };
            assert!(!set(&*store, TaskSetStatusParams::resumed(row.id)).await?, "resume from {status}");
            assert_eq!(get(&*store, row.id).await?, row);
        }
        Ok(())
    }
}

backend_test! {
    async fn finished_at_is_set_exactly_when_the_target_status_is_terminal(db) {
        let store = db.store().await;
        for transition in Transition::ALL.into_iter().filter(|t| t.is_fenced()) {
            let row = claimed(&*store, WORKER, task(&format!("f_{transition:?}"))).await?;
            let change = TaskSetStatusParams {
                transition,
                ..TaskSetStatusParams::completed(row.id, fence(&row)?, "null".into())
            };
            assert!(set(&*store, change).await?, "{transition:?}");
            let stored = get(&*store, row.id).await?;
            assert_eq!(stored.status, transition.target().as_str());
            assert_eq!(stored.finished_at.is_some(), transition.target().is_terminal(), "{transition:?}");
            if let Some(finished_at) = stored.finished_at {
                assert_eq!(stored.last_active_at, Some(finished_at));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_heartbeat / task_list_expired
// ---------------------------------------------------------------------------

backend_test! {
    async fn task_heartbeat_renews_only_the_given_rows_the_worker_runs_and_returns_their_leases(db) {
        let store = db.store().await;
        let mine_1 = claimed(&*store, "worker-1", task("a")).await?;
        let mine_2 = claimed(&*store, "worker-1", task("b")).await?;
        // attempt 2 for mine_2: released and claimed again.
        assert!(set(&*store, TaskSetStatusParams::released(mine_2.id, fence(&mine_2)?)).await?);
        let mine_2 = claim(&*store, "worker-1", &[("b", 1)], 1).await?.remove(0);
        let done = claimed(&*store, "worker-1", task("c")).await?;
        assert!(set(&*store, TaskSetStatusParams::completed(done.id, fence(&done)?, "1".into())).await?);
        let paused = claimed(&*store, "worker-1", task("d")).await?;
        assert!(set(&*store, TaskSetStatusParams::paused(paused.id)).await?);
        let theirs = claimed(&*store, "worker-2", task("e")).await?;
        let pending = store.task_insert(&task("f")).await?;
        // Running under worker-1 but not named by the heartbeat: a row whose
        // outcome worker-1 could not write must lapse, not be kept alive.
        let orphan = claimed(&*store, "worker-1", task("g")).await?;
        let snapshot = [
            get(&*store, done.id).await?,
            get(&*store, paused.id).await?,
            get(&*store, theirs.id).await?,
            get(&*store, pending).await?,
            get(&*store, orphan.id).await?,
        ];

        let newest = [&mine_1, &mine_2]
            .iter()
            .filter_map(|r| r.last_active_at)
            .max()
            .context("last_active_at")?;
        clock_passes(&*store, newest).await;
        let before = store.now_ms().await?;
        let named = vec![mine_1.id, mine_2.id, done.id, paused.id, theirs.id, pending];
        let mut leases = store
            .task_heartbeat(&TaskHeartbeatParams { worker_id: "worker-1".into(), ids: named.clone() })
            .await?;
        let after = store.now_ms().await?;
        leases.sort_by_key(|lease| lease.id);
        let got: Vec<(i64, i64)> = leases.iter().map(|l| (l.id, l.attempt)).collect();
        assert_eq!(got, [(mine_1.id, 1), (mine_2.id, 2)]);
        for mine in [&mine_1, &mine_2] {
            let stored = get(&*store, mine.id).await?;
            let renewed = stored.last_active_at.context("last_active_at")?;
            within("renewed last_active_at", renewed, before, after)?;
            assert_eq!(stored, TaskRow { last_active_at: Some(renewed), ..(*mine).clone() });
        }
        for row in snapshot {
            assert_eq!(get(&*store, row.id).await?, row, "task {} ({})", row.id, row.status);
        }
        let none = store
            .task_heartbeat(&TaskHeartbeatParams { worker_id: "worker-unknown".into(), ids: named })
            .await?;
        assert_eq!(none, []);
        let empty = store
            .task_heartbeat(&TaskHeartbeatParams { worker_id: "worker-1".into(), ids: vec![] })
            .await?;
        assert_eq!(empty, []);
        Ok(())
    }
}

backend_test! {
    async fn task_list_expired_returns_running_rows_with_a_stale_lease(db) {
        let store = db.store().await;
        let stale_1 = claimed(
            &*store,
            "worker-1",
            TaskInsertParams { max_attempts: 4, retry_interval_ms: 250, ..task("a") },
        )
        .await?;
        let stale_2 = claimed(&*store, "worker-2", task("b")).await?;
        let paused = claimed(&*store, "worker-1", task("c")).await?;
        assert!(set(&*store, TaskSetStatusParams::paused(paused.id)).await?);
        let _completed = task_in(&db, &*store, task("d"), TaskStatus::Completed).await?;
        let _failed = task_in(&db, &*store, task("e"), TaskStatus::Failed).await?;
        let _pending = store.task_insert(&task("f")).await?;
        let newest = [&stale_1, &stale_2]
            .iter()
            .filter_map(|r| r.last_active_at)
            .max()
            .context("last_active_at")?;
        clock_passes(&*store, newest).await;

        let mut expired = store
            .task_list_expired(&TaskListExpiredParams { heartbeat_timeout_ms: 0, limit: 100 })
            .await?;
        expired.sort_by_key(|e| e.id);
        let got: Vec<_> = expired
            .iter()
            .map(|e| (e.id, e.name.as_str(), e.kind.as_str(), e.worker_id.as_str(), e.attempt, e.retry_count, e.max_attempts, e.retry_interval_ms, e.total_timeout))
            .collect();
        assert_eq!(
            got,
            [
                (stale_1.id, "a", "async", "worker-1", 1, 0, 4, 250, false),
                (stale_2.id, "b", "async", "worker-2", 1, 0, 3, 0, false),
            ]
        );

        let limited = store
            .task_list_expired(&TaskListExpiredParams { heartbeat_timeout_ms: 0, limit: 1 })
            .await?;
        assert_eq!(limited.len(), 1);
        assert!([stale_1.id, stale_2.id].contains(&limited[0].id));

        // A long heartbeat timeout: nothing has expired.
        let fresh = store
            .task_list_expired(&TaskListExpiredParams::new(Duration::from_secs(600), 100))
            .await?;
        assert_eq!(fresh, []);

        Ok(())
    }
}

backend_test! {
    async fn task_list_expired_flags_rows_past_their_total_timeout(db) {
        let store = db.store().await;
        let quick = claimed(&*store, WORKER, TaskInsertParams { timeout_ms: 1, ..task("quick") }).await?;
        let slow = claimed(&*store, WORKER, task("slow")).await?;
        let started = quick.started_at.context("started_at")?.max(slow.started_at.context("started_at")?);
        // Past the 1 ms total timeout of `quick` (with zero grace).
        clock_passes(&*store, started + 1).await;
        let mut expired = store
            .task_list_expired(&TaskListExpiredParams { heartbeat_timeout_ms: 0, limit: 100 })
            .await?;
        expired.sort_by_key(|e| e.id);
        let got: Vec<(i64, bool)> = expired.iter().map(|e| (e.id, e.total_timeout)).collect();
        assert_eq!(got, [(quick.id, true), (slow.id, false)]);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// task_list / task_delete_many / task_stats
// ---------------------------------------------------------------------------

/// Six tasks: (name, tag, status). Returns their ids in insertion order.
async fn listing_fixture(db: &TestDb, store: &dyn Store) -> anyhow::Result<Vec<i64>> {
    let spec: [(&str, Option<&str>, TaskStatus); 6] = [
        ("a", Some("x"), TaskStatus::Pending),
        ("a", Some("y"), TaskStatus::Pending),
        ("b", Some("x"), TaskStatus::Pending),
        ("b", None, TaskStatus::Pending),
        ("a", Some("x"), TaskStatus::Paused),
        ("c", Some("x"), TaskStatus::Pending),
    ];
    let mut ids = Vec::new();
    for (name, tag, status) in spec {
        let params = TaskInsertParams {
            tag: tag.map(str::to_owned),
            ..task(name)
        };
        let row = task_in(db, store, params, status)
            .await?
            .context("fixture")?;
        ids.push(row.id);
    }
    Ok(ids)
}

backend_test! {
    async fn task_list_filters_are_and_combined_and_ordered_by_creation(db) {
        let store = db.store().await;
        let t = listing_fixture(&db, &*store).await?;
        let list = |filter: TaskFilter, limit: Option<i64>| {
            let store = store.clone();
            async move { Ok::<_, anyhow::Error>(ids(&store.task_list(&filter_params(filter, limit)).await?)) }
        };
        assert_eq!(list(TaskFilter::new(), None).await?, t);
        assert_eq!(list(TaskFilter::new().tag("x"), None).await?, [t[0], t[2], t[4], t[5]]);
        assert_eq!(list(TaskFilter::new().name("a"), None).await?, [t[0], t[1], t[4]]);
        assert_eq!(list(TaskFilter::new().status(TaskStatus::Paused), None).await?, [t[4]]);
        assert_eq!(list(TaskFilter::new().tag("x").name("a"), None).await?, [t[0], t[4]]);
        assert_eq!(
            list(TaskFilter::new().tag("x").name("a").status(TaskStatus::Pending), None).await?,
            [t[0]]
        );
        assert_eq!(list(TaskFilter::new().tag("y").name("b"), None).await?, Vec::<i64>::new());
        assert_eq!(list(TaskFilter::new().status(TaskStatus::Completed), None).await?, Vec::<i64>::new());
        assert_eq!(list(TaskFilter::new(), Some(2)).await?, [t[0], t[1]]);
        assert_eq!(list(TaskFilter::new().tag("x"), Some(3)).await?, [t[0], t[2], t[4]]);
        assert_eq!(list(TaskFilter::new(), Some(0)).await?, Vec::<i64>::new());

        // Rows come back whole, as task_get returns them.
        let rows = store.task_list(&filter_params(TaskFilter::new(), None)).await?;
        for row in rows {
            assert_eq!(get(&*store, row.id).await?, row);
        }
        Ok(())
    }
}

backend_test! {
    async fn task_delete_many_deletes_matching_rows_and_returns_the_count(db) {
        let store = db.store().await;
        let t = listing_fixture(&db, &*store).await?;
        let delete = |filter: TaskFilter| {
            let store = store.clone();
            async move { Ok::<_, anyhow::Error>(store.task_delete_many(&filter_params(filter, None)).await?) }
        };
        let remaining = || {
            let store = store.clone();
            async move {
                Ok::<_, anyhow::Error>(ids(&store.task_list(&filter_params(TaskFilter::new(), None)).await?))
            }
        };
        assert_eq!(delete(TaskFilter::new().tag("y").name("b")).await?, 0);
        assert_eq!(remaining().await?, t);
        assert_eq!(delete(TaskFilter::new().tag("x").name("a")).await?, 2);
        assert_eq!(remaining().await?, [t[1], t[2], t[3], t[5]]);
        assert_eq!(store.task_get(t[0]).await?, None);
        assert_eq!(store.task_get(t[4]).await?, None);
        assert_eq!(delete(TaskFilter::new().status(TaskStatus::Pending).name("b")).await?, 2);
        assert_eq!(remaining().await?, [t[1], t[5]]);
        assert_eq!(delete(TaskFilter::new().status(TaskStatus::Paused)).await?, 0);
        assert_eq!(delete(TaskFilter::new()).await?, 2);
        assert_eq!(remaining().await?, Vec::<i64>::new());
        assert_eq!(delete(TaskFilter::new()).await?, 0);
        Ok(())
    }
}

fn stat(tag: Option<&str>, name: &str, status: &str, count: i64) -> TaskStatsRow {
    TaskStatsRow {
        tag: tag.map(str::to_owned),
        name: name.to_owned(),
        status: status.to_owned(),
        count,
    }
}

backend_test! {
    async fn task_stats_counts_per_tag_name_and_status_and_filters_by_tag(db) {
        let store = db.store().await;
        assert_eq!(store.task_stats(&TaskStatsParams::default()).await?, []);
        listing_fixture(&db, &*store).await?;
        task_in(&db, &*store, TaskInsertParams { tag: Some("x".into()), ..task("a") }, TaskStatus::Pending).await?;
        task_in(&db, &*store, TaskInsertParams { tag: Some("y".into()), ..task("z") }, TaskStatus::Completed).await?;
        task_in(&db, &*store, task("b"), TaskStatus::Pending).await?;

        // Ordered by tag (untagged first), name, status.
        assert_eq!(
            store.task_stats(&TaskStatsParams::default()).await?,
            [
                stat(None, "b", "pending", 2),
                stat(Some("x"), "a", "paused", 1),
                stat(Some("x"), "a", "pending", 2),
                stat(Some("x"), "b", "pending", 1),
                stat(Some("x"), "c", "pending", 1),
                stat(Some("y"), "a", "pending", 1),
                stat(Some("y"), "z", "completed", 1),
            ]
        );
        assert_eq!(
            store.task_stats(&TaskStatsParams { tag: Some("y".into()) }).await?,
            [stat(Some("y"), "a", "pending", 1), stat(Some("y"), "z", "completed", 1)]
        );
        assert_eq!(store.task_stats(&TaskStatsParams { tag: Some("nope".into()) }).await?, []);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// listen
// ---------------------------------------------------------------------------

backend_test! {
    async fn listen_forwards_other_processes_inserts_and_resumes_where_the_backend_can(db) {
        let store = db.store().await;
        let wake = Arc::new(Notify::new());
        let pushes = store.listen(wake.clone()).await?;
        assert_eq!(pushes, store.caps().listen_notify);
        if !pushes {
            return Ok(());
        }
        let woken = |what: &'static str| {
            let wake = wake.clone();
            async move {
                tokio::time::timeout(common::DEADLINE, wake.notified())
                    .await
                    .with_context(|| format!("no wake-up after {what}"))
            }
        };
        // The listener wakes once when it is connected (to look for work
        // submitted before it listened).
        woken("connecting").await?;
        let other = if db.shareable() {
            store::connect(&db.config()).await?
        } else {
            store.clone()
        };
        let id = other.task_insert(&task("a")).await?;
        woken("an insert").await?;
        assert!(set(&*other, TaskSetStatusParams::paused(id)).await?);
        assert!(set(&*other, TaskSetStatusParams::resumed(id)).await?);
        woken("a resume").await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// now_ms / caps / close
// ---------------------------------------------------------------------------

backend_test! {
    async fn now_ms_is_close_to_the_system_clock(db) {
        let store = db.store().await;
        let system = || chrono::Utc::now().timestamp_millis();
        let before = system();
        let now = store.now_ms().await?;
        let after = system();
        // Same machine for SQLite; a small allowance for a database server's
        // clock elsewhere.
        within("now_ms", now, before - 2_000, after + 2_000)?;
        Ok(())
    }
}

backend_test! {
    async fn caps_name_the_backend(db) {
        let store = db.store().await;
        let caps = store.caps();
        let expected = db.backend.split('_').next().context("backend")?;
        assert_eq!(caps.backend, expected);
        let (listen_notify, skip_locked) = match caps.backend {
            "sqlite" => (false, false),
            "postgres" => (true, true),
            "mysql" => (false, true),
            other => bail!("unknown backend {other}"),
        };
        assert_eq!((caps.listen_notify, caps.skip_locked), (listen_notify, skip_locked));
        Ok(())
    }
}

backend_test! {
    async fn close_makes_later_calls_fail(db) {
        let store = db.store().await;
        let id = store.task_insert(&task("a")).await?;
        store.close().await;
        assert!(store.task_get(id).await.is_err());
        assert!(store.task_insert(&task("a")).await.is_err());
        if db.shareable() {
            // The data outlives the closed store.
            let other = db.store().await;
            assert!(other.task_get(id).await?.is_some());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Schema invariants (raw SQL: SQLite file only)
// ---------------------------------------------------------------------------

backend_test! {
    /// The schema's CHECK constraints reject rows the store would never
    /// write, whoever writes them.
    async fn schema_check_constraints_reject_invalid_rows(db) {
        let store = db.store().await;
        if !db.shareable() {
            eprintln!("skipped on {}: raw SQL needs a second connection", db.backend);
            return Ok(());
        }
        let insert = |columns: &str, values: &str| {
            format!(
                "INSERT INTO {{tasks}} (name, timeout_ms, max_attempts, created_at, next_run_at, kind, status{columns}) \
                 VALUES ('t', 1000, 1, 1, 1{values})"
            )
        };
        // Valid rows go in, so the failures below are the constraints'.
        for sql in [
            insert("", ", 'async', 'pending'"),
            insert(", finished_at", ", 'async', 'completed', 5"),
            insert(", worker_id, started_at, cron_expr", ", 'cron', 'running', 'w', 5, '* * * * *'"),
            insert(", finished_at", ", 'async', 'permanently_failed', 5"),
        ] {
            assert_eq!(raw_execute(&db, &sql).await?.context("raw SQL")??, 1, "{sql}");
        }

        let invalid = [
            ("status_valid", insert("", ", 'async', 'done'")),
            ("cron_has_expr", insert("", ", 'cron', 'pending'")),
            ("misfire_valid", insert(", cron_expr, cron_misfire", ", 'cron', 'pending', '* * * * *', 'sometimes'")),
            ("kind_valid", insert("", ", 'once', 'pending'")),
            ("finished_iff_terminal", insert("", ", 'async', 'completed'")),
            ("finished_iff_terminal", insert("", ", 'async', 'permanently_failed'")),
            ("finished_iff_terminal", insert(", finished_at", ", 'async', 'pending', 5")),
            ("finished_iff_terminal", insert(", finished_at", ", 'async', 'paused', 5")),
            ("running_has_owner", insert(", started_at", ", 'async', 'running', 5")),
            ("running_has_owner", insert(", worker_id", ", 'async', 'running', 'w'")),
            (
                "timeout_positive",
                "INSERT INTO {tasks} (name, kind, status, timeout_ms, max_attempts, created_at, next_run_at) \
                 VALUES ('t', 'async', 'pending', 0, 1, 1, 1)"
                    .to_owned(),
            ),
            (
                "max_attempts_positive",
                "INSERT INTO {tasks} (name, kind, status, timeout_ms, max_attempts, created_at, next_run_at) \
                 VALUES ('t', 'async', 'pending', 1000, 0, 1, 1)"
                    .to_owned(),
            ),
            ("counts_non_negative", insert(", retry_count", ", 'async', 'pending', -1")),
            ("counts_non_negative", insert(", attempt", ", 'async', 'pending', -1")),
            ("counts_non_negative", insert(", retry_interval_ms", ", 'async', 'pending', -1")),
            // An update into an invalid state is refused too.
            (
                "finished_iff_terminal",
                "UPDATE {tasks} SET status = 'completed' WHERE status = 'pending'".to_owned(),
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
        assert_eq!(stored.len(), 4, "only the valid rows were stored");
        Ok(())
    }
}
