//! The `AuditStore` contract: the event, attempt and task listings with
//! their counts, the workflow aggregates, and retention, run once per
//! backend through `backend_test!`.
//!
//! Events and attempts are written with raw SQL (no store method writes
//! them yet), so those suites skip `sqlite_memory`, whose database is
//! private to its store; `sqlite_file` runs the same SQL. The task query
//! suites use store methods only and run everywhere.

#[macro_use]
mod common;

use anyhow::{ensure, Context};
use fib_flow::audit::{AttemptOutcome, EventType, TaskAttempt, TaskEvent};
use fib_flow::store::{
    AttemptListParams, AttemptRow, AuditScope, ClaimName, EventListParams, EventRow, ParentLink,
    RetentionBatch, RetentionParams, Slice, Store, TaskClaimManyParams, TaskInsertParams,
    TaskQueryParams, TaskRow, TaskSetStatusParams,
};
use fib_flow::{TaskId, TaskKind, TaskStatus};

use common::store::{attempts_of, created_event, events_of, raw_execute, task};
use common::TestDb;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A fixed base time for fixture events and attempts (ms).
const T: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

/// Whether this database can take raw-SQL fixtures; prints the skip.
fn skips_raw_sql(db: &TestDb) -> bool {
    let skip = !db.shareable();
    if skip {
        eprintln!(
            "skipped on {}: events and attempts are written with raw SQL",
            db.backend
        );
    }
    skip
}

/// Runs one raw statement with `{tasks}`, `{events}` and `{attempts}`
/// naming the tables (schema-qualified on servers); returns the rows it
/// changed.
async fn raw(db: &TestDb, sql: &str) -> anyhow::Result<u64> {
    let qualify = |table: &str| match (db.backend, db.schema.as_deref()) {
        ("postgres", Some(schema)) => format!("\"{schema}\".{table}"),
        ("mysql", Some(schema)) => format!("`{schema}`.{table}"),
        _ => table.to_owned(),
    };
    let sql = sql
        .replace("{events}", &qualify("fib_flow_task_events"))
        .replace("{attempts}", &qualify("fib_flow_task_attempts"));
    let done = raw_execute(db, &sql)
        .await?
        .with_context(|| format!("raw SQL on {}", db.backend))?;
    done.with_context(|| format!("raw SQL failed: {sql}"))
}

fn lit_str(value: Option<&str>) -> String {
    value.map_or("NULL".into(), |v| format!("'{}'", v.replace('\'', "''")))
}

fn lit_int(value: Option<i64>) -> String {
    value.map_or("NULL".into(), |v| v.to_string())
}

/// One event to insert; `label` goes into `message` to name it in checks.
#[derive(Clone, Copy)]
struct Ev<'a> {
    label: &'a str,
    task: i64,
    root: i64,
    parent: Option<i64>,
    kind: EventType,
    worker: Option<&'a str>,
    attempt: Option<i64>,
    stage: Option<i64>,
    time: i64,
}

impl<'a> Ev<'a> {
    fn new(label: &'a str, task: i64, root: i64, kind: EventType, time: i64) -> Self {
        Ev {
            label,
            task,
            root,
            parent: None,
            kind,
            worker: None,
            attempt: None,
            stage: None,
            time,
        }
    }

    fn parent(self, parent: i64) -> Self {
        Ev {
            parent: Some(parent),
            ..self
        }
    }

    fn run(self, worker: &'a str, attempt: i64, stage: i64) -> Self {
        Ev {
            worker: Some(worker),
            attempt: Some(attempt),
            stage: Some(stage),
            ..self
        }
    }
}

/// Inserts events in the given order (ids ascend in that order).
async fn insert_events(db: &TestDb, events: &[Ev<'_>]) -> anyhow::Result<()> {
    let rows: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "({}, {}, {}, '{}', NULL, NULL, {}, {}, {}, {}, '{}', NULL)",
                e.task,
                e.root,
                lit_int(e.parent),
                e.kind.as_str(),
                lit_int(e.stage),
                lit_str(e.worker),
                lit_int(e.attempt),
                e.time,
                e.label
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO {{events}} (task_id, root_id, parent_id, event_type, from_status, \
         to_status, stage, worker_id, attempt, event_time, message, metadata) VALUES {}",
        rows.join(", ")
    );
    let n = raw(db, &sql).await?;
    ensure!(
        n == events.len() as u64,
        "inserted {n} of {} events",
        events.len()
    );
    Ok(())
}

/// One attempt to insert: (task, attempt, worker, started, ended, outcome,
/// error, timed out).
type At<'a> = (
    i64,
    i64,
    Option<&'a str>,
    i64,
    Option<i64>,
    Option<AttemptOutcome>,
    Option<&'a str>,
    bool,
);

/// Inserts attempts in the given order.
async fn insert_attempts(db: &TestDb, attempts: &[At<'_>]) -> anyhow::Result<()> {
    let rows: Vec<String> = attempts
        .iter()
        .map(
            |&(task, attempt, worker, started, ended, outcome, error, timed_out)| {
                format!(
                    "({task}, {attempt}, {}, {started}, {}, {}, {}, {})",
                    lit_str(worker),
                    lit_int(ended),
                    lit_str(outcome.map(AttemptOutcome::as_str)),
                    lit_str(error),
                    if timed_out { "TRUE" } else { "FALSE" }
                )
            },
        )
        .collect();
    let sql = format!(
        "INSERT INTO {{attempts}} (task_id, attempt, worker_id, started_at, ended_at, outcome, \
         error, timed_out) VALUES {}",
        rows.join(", ")
    );
    let n = raw(db, &sql).await?;
    ensure!(
        n == attempts.len() as u64,
        "inserted {n} of {} attempts",
        attempts.len()
    );
    Ok(())
}

/// A closed attempt.
fn ended<'a>(
    task: i64,
    attempt: i64,
    worker: &'a str,
    started: i64,
    end: i64,
    outcome: AttemptOutcome,
) -> At<'a> {
    (
        task,
        attempt,
        Some(worker),
        started,
        Some(end),
        Some(outcome),
        None,
        false,
    )
}

/// An attempt still running.
fn open(task: i64, attempt: i64, worker: &str, started: i64) -> At<'_> {
    (
        task,
        attempt,
        Some(worker),
        started,
        None,
        None,
        None,
        false,
    )
}

/// Inserts a child of `parent` in the workflow of `root`.
async fn child(store: &dyn Store, name: &str, root: i64, parent: i64) -> anyhow::Result<i64> {
    Ok(store
        .task_insert(&TaskInsertParams {
            parent: Some(ParentLink {
                root_id: root,
                parent_id: parent,
                parent_stage: 0,
                parent_cycle: 0,
            }),
            ..task(name)
        })
        .await?)
}

/// A workflow: root `a`, its child `a1`, and `a1`'s child `a11`; and a
/// separate top-level task `b`.
struct Tree {
    a: i64,
    a1: i64,
    a11: i64,
    b: i64,
}

async fn tree(store: &dyn Store) -> anyhow::Result<Tree> {
    let a = store.task_insert(&task("a")).await?;
    let a1 = child(store, "a1", a, a).await?;
    let a11 = child(store, "a11", a, a1).await?;
    let b = store.task_insert(&task("b")).await?;
    Ok(Tree { a, a1, a11, b })
}

/// The tree with eight events, `e1` to `e8`, inserted in label order;
/// `e4` and `e5` share a time.
async fn event_fixture(db: &TestDb, store: &dyn Store) -> anyhow::Result<Tree> {
    let t = tree(store).await?;
    use EventType::*;
    insert_events(
        db,
        &[
            Ev::new("e1", t.a, t.a, TaskCreated, T),
            Ev::new("e2", t.a, t.a, TaskClaimed, T + 10).run("w1", 1, 0),
            Ev::new("e3", t.a1, t.a, TaskCreated, T + 20).parent(t.a),
            Ev::new("e4", t.a1, t.a, TaskClaimed, T + 30)
                .parent(t.a)
                .run("w2", 1, 0),
            Ev::new("e5", t.a11, t.a, TaskCheckpoint, T + 30)
                .parent(t.a1)
                .run("w2", 1, 1),
            Ev::new("e6", t.a, t.a, TaskCheckpoint, T + 40).run("w1", 2, 1),
            Ev::new("e7", t.b, t.b, TaskCreated, T + 5),
            Ev::new("e8", t.b, t.b, TaskClaimed, T + 15).run("w3", 1, 0),
        ],
    )
    .await?;
    Ok(t)
}

/// The tree with six attempts; `(task, attempt)` names each.
async fn attempt_fixture(db: &TestDb, store: &dyn Store) -> anyhow::Result<Tree> {
    let t = tree(store).await?;
    use AttemptOutcome::*;
    insert_attempts(
        db,
        &[
            ended(t.a, 1, "w1", T, T + 100, Failed),
            ended(t.a, 2, "w1", T + 200, T + 300, Completed),
            (
                t.a1,
                1,
                Some("w2"),
                T + 50,
                Some(T + 150),
                Some(Timeout),
                Some("slow"),
                true,
            ),
            open(t.a11, 1, "w2", T + 60),
            open(t.a1, 2, "w3", T + 400),
            ended(t.b, 1, "w1", T + 10, T + 20, Completed),
        ],
    )
    .await?;
    Ok(t)
}

/// A named attempt listing and the `(task, attempt)` keys it returns.
type AttemptCase = (&'static str, AttemptListParams, Vec<(i64, i64)>);

fn slice(limit: Option<i64>, offset: i64, desc: bool) -> Slice {
    Slice {
        limit,
        offset,
        desc,
    }
}

fn labels(rows: &[EventRow]) -> Vec<String> {
    rows.iter()
        .map(|r| r.message.clone().unwrap_or_default())
        .collect()
}

fn keys(rows: &[AttemptRow]) -> Vec<(i64, i64)> {
    rows.iter().map(|r| (r.task_id, r.attempt)).collect()
}

fn ids(rows: &[TaskRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

/// Lists with `params` and checks the labels, and that the count is the
/// number of matches whatever the slice.
async fn check_events(
    store: &dyn Store,
    what: &str,
    params: EventListParams,
    expected: &[&str],
) -> anyhow::Result<()> {
    let rows = store.event_list(&params).await?;
    ensure!(
        labels(&rows) == expected,
        "{what}: listed {:?}, expected {expected:?}",
        labels(&rows)
    );
    let count = store.event_count(&params).await?;
    ensure!(
        count == expected.len() as i64,
        "{what}: counted {count}, expected {}",
        expected.len()
    );
    Ok(())
}

async fn check_attempts(
    store: &dyn Store,
    what: &str,
    params: AttemptListParams,
    expected: &[(i64, i64)],
) -> anyhow::Result<()> {
    let rows = store.attempt_list(&params).await?;
    ensure!(
        keys(&rows) == expected,
        "{what}: listed {:?}, expected {expected:?}",
        keys(&rows)
    );
    let count = store.attempt_count(&params).await?;
    ensure!(
        count == expected.len() as i64,
        "{what}: counted {count}, expected {}",
        expected.len()
    );
    Ok(())
}

async fn check_tasks(
    store: &dyn Store,
    what: &str,
    params: TaskQueryParams,
    expected: &[i64],
) -> anyhow::Result<()> {
    let rows = store.task_query(&params).await?;
    ensure!(
        ids(&rows) == expected,
        "{what}: listed {:?}, expected {expected:?}",
        ids(&rows)
    );
    let count = store.task_query_count(&params).await?;
    ensure!(
        count == expected.len() as i64,
        "{what}: counted {count}, expected {}",
        expected.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

backend_test! {
    async fn event_scope_task_reads_one_task_and_workflow_reads_every_event_of_the_root(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = event_fixture(&db, &*store).await?;
        use AuditScope::*;
        check_events(&*store, "task a", events_of(Task(t.a)), &["e1", "e2", "e6"]).await?;
        check_events(&*store, "task a1", events_of(Task(t.a1)), &["e3", "e4"]).await?;
        check_events(&*store, "task a11", events_of(Task(t.a11)), &["e5"]).await?;
        check_events(&*store, "workflow a", events_of(Workflow(t.a)), &["e1", "e2", "e3", "e4", "e5", "e6"]).await?;
        check_events(&*store, "workflow b", events_of(Workflow(t.b)), &["e7", "e8"]).await?;
        // Events carry the workflow root: a child's id is no event's root.
        check_events(&*store, "workflow a1", events_of(Workflow(t.a1)), &[]).await?;
        check_events(&*store, "a missing task", events_of(Task(t.b + 100)), &[]).await?;
        Ok(())
    }
}

backend_test! {
    async fn event_list_applies_each_filter_alone(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = event_fixture(&db, &*store).await?;
        let all = || events_of(AuditScope::Workflow(t.a));
        let types = |types: &[EventType]| EventListParams {
            event_types: types.iter().map(|t| t.as_str().to_owned()).collect(),
            ..all()
        };
        let cases: Vec<(&str, EventListParams, &[&str])> = vec![
            ("parent a", EventListParams { parent_id: Some(t.a), ..all() }, &["e3", "e4"]),
            ("parent a1", EventListParams { parent_id: Some(t.a1), ..all() }, &["e5"]),
            ("worker w2", EventListParams { worker_id: Some("w2".into()), ..all() }, &["e4", "e5"]),
            ("worker W2 (case matters)", EventListParams { worker_id: Some("W2".into()), ..all() }, &[]),
            ("no types: any", types(&[]), &["e1", "e2", "e3", "e4", "e5", "e6"]),
            ("type checkpoint", types(&[EventType::TaskCheckpoint]), &["e5", "e6"]),
            (
                "types created and claimed",
                types(&[EventType::TaskCreated, EventType::TaskClaimed]),
                &["e1", "e2", "e3", "e4"],
            ),
            ("type of no event", types(&[EventType::TaskProgress]), &[]),
            ("attempt 1", EventListParams { attempt: Some(1), ..all() }, &["e2", "e4", "e5"]),
            ("attempt 2", EventListParams { attempt: Some(2), ..all() }, &["e6"]),
            ("stage 1", EventListParams { stage: Some(1), ..all() }, &["e5", "e6"]),
            ("stage 0", EventListParams { stage: Some(0), ..all() }, &["e2", "e4"]),
            ("after (inclusive)", EventListParams { after_ms: Some(T + 30), ..all() }, &["e4", "e5", "e6"]),
            ("before (inclusive)", EventListParams { before_ms: Some(T + 10), ..all() }, &["e1", "e2"]),
            (
                "after and before",
                EventListParams { after_ms: Some(T + 10), before_ms: Some(T + 30), ..all() },
                &["e2", "e3", "e4", "e5"],
            ),
            (
                "filters AND-combined",
                EventListParams {
                    worker_id: Some("w2".into()),
                    event_types: vec![EventType::TaskCheckpoint.as_str().into()],
                    ..all()
                },
                &["e5"],
            ),
        ];
        for (what, params, expected) in cases {
            check_events(&*store, what, params, expected).await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn event_list_pages_by_time_then_id_in_either_direction(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = event_fixture(&db, &*store).await?;
        let page = |limit, offset, desc| EventListParams {
            slice: slice(limit, offset, desc),
            ..events_of(AuditScope::Workflow(t.a))
        };
        // e4 and e5 share a time: id breaks the tie, both ways.
        let cases: Vec<(&str, EventListParams, &[&str])> = vec![
            ("everything", page(None, 0, false), &["e1", "e2", "e3", "e4", "e5", "e6"]),
            ("limit", page(Some(2), 0, false), &["e1", "e2"]),
            ("limit and offset", page(Some(2), 2, false), &["e3", "e4"]),
            ("a short last page", page(Some(4), 4, false), &["e5", "e6"]),
            ("offset at the end", page(Some(2), 6, false), &[]),
            ("offset past the end", page(None, 100, false), &[]),
            ("offset without a limit", page(None, 4, false), &["e5", "e6"]),
            ("newest first", page(None, 0, true), &["e6", "e5", "e4", "e3", "e2", "e1"]),
            ("newest first, sliced", page(Some(2), 1, true), &["e5", "e4"]),
            ("a limit above the total", page(Some(100), 0, false), &["e1", "e2", "e3", "e4", "e5", "e6"]),
        ];
        for (what, params, expected) in cases {
            let rows = store.event_list(&params).await?;
            ensure!(labels(&rows) == expected, "{what}: listed {:?}, expected {expected:?}", labels(&rows));
        }
        Ok(())
    }
}

backend_test! {
    async fn event_count_is_the_filtered_total_whatever_the_slice(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = event_fixture(&db, &*store).await?;
        for (limit, offset, desc) in [(None, 0, false), (Some(1), 0, false), (Some(2), 5, true), (None, 100, false)] {
            let params = EventListParams {
                slice: slice(limit, offset, desc),
                ..events_of(AuditScope::Workflow(t.a))
            };
            ensure!(store.event_count(&params).await? == 6, "workflow a, slice {:?}", params.slice);
            let params = EventListParams { attempt: Some(1), ..params };
            ensure!(store.event_count(&params).await? == 3, "attempt 1, slice {:?}", params.slice);
        }
        Ok(())
    }
}

backend_test! {
    async fn event_list_returns_every_column_and_the_rows_convert(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let id = store.task_insert(&task("a")).await?;
        let sql = format!(
            "INSERT INTO {{events}} (task_id, root_id, parent_id, event_type, from_status, \
             to_status, stage, worker_id, attempt, event_time, message, metadata) VALUES \
             ({id}, 77, 76, 'task_claimed', 'pending', 'running', 2, 'wörker-1', 3, {T}, \
              'claimed ✓', '{{\"k\":[1,\"x\"]}}'), \
             ({id}, 77, NULL, 'task_created', NULL, NULL, NULL, NULL, NULL, {}, NULL, NULL)",
            T + 1
        );
        ensure!(raw(&db, &sql).await? == 2);
        let rows = store.event_list(&events_of(AuditScope::Task(id))).await?;
        ensure!(rows.len() == 2, "{rows:?}");
        let full = &rows[0];
        ensure!(
            (full.task_id, full.root_id, full.parent_id, full.stage, full.attempt, full.event_time)
                == (id, 77, Some(76), Some(2), Some(3), T),
            "{full:?}"
        );
        ensure!(full.event_type == "task_claimed" && full.worker_id.as_deref() == Some("wörker-1"), "{full:?}");
        ensure!(full.from_status.as_deref() == Some("pending") && full.to_status.as_deref() == Some("running"), "{full:?}");
        ensure!(full.message.as_deref() == Some("claimed ✓"), "{full:?}");
        let event = TaskEvent::try_from(full.clone())?;
        ensure!(event.event_type == EventType::TaskClaimed, "{event:?}");
        ensure!(event.to_status == Some(TaskStatus::Running), "{event:?}");
        ensure!(event.root_id == TaskId(77) && event.parent_id == Some(TaskId(76)), "{event:?}");
        ensure!(event.event_time.timestamp_millis() == T, "{event:?}");
        ensure!(event.metadata == serde_json::json!({"k": [1, "x"]}), "{event:?}");
        let bare = TaskEvent::try_from(rows[1].clone())?;
        ensure!(bare.metadata.is_null() && bare.from_status.is_none() && bare.worker_id.is_none(), "{bare:?}");
        ensure!(rows[1].id > full.id, "ids ascend in insertion order");
        Ok(())
    }
}

backend_test! {
    async fn event_stats_aggregate_the_events_of_one_root(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = event_fixture(&db, &*store).await?;
        let a = store.event_stats(t.a).await?;
        ensure!((a.events, a.checkpoints, a.last_event_at) == (6, 2, Some(T + 40)), "workflow a: {a:?}");
        let b = store.event_stats(t.b).await?;
        ensure!((b.events, b.checkpoints, b.last_event_at) == (2, 0, Some(T + 15)), "workflow b: {b:?}");
        // Only roots are aggregated: a child's id is no event's root.
        let none = store.event_stats(t.a1).await?;
        ensure!((none.events, none.checkpoints, none.last_event_at) == (0, 0, None), "a1: {none:?}");
        Ok(())
    }
}

backend_test! {
    async fn event_workers_lists_distinct_non_null_workers_of_one_root_sorted(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = tree(&*store).await?;
        use EventType::*;
        insert_events(
            &db,
            &[
                Ev::new("1", t.a, t.a, TaskCreated, T),
                Ev::new("2", t.a, t.a, TaskClaimed, T + 1).run("w-b", 1, 0),
                Ev::new("3", t.a1, t.a, TaskClaimed, T + 2).run("W-c", 1, 0),
                Ev::new("4", t.a11, t.a, TaskClaimed, T + 3).run("w-a", 1, 0),
                Ev::new("5", t.a, t.a, TaskCheckpoint, T + 4).run("w-b", 2, 1),
                Ev::new("6", t.b, t.b, TaskClaimed, T + 5).run("w-other", 1, 0),
            ],
        )
        .await?;
        // Byte-wise: upper case sorts before lower case.
        let workers = store.event_workers(t.a).await?;
        ensure!(workers == ["W-c", "w-a", "w-b"], "workflow a: {workers:?}");
        ensure!(store.event_workers(t.b).await? == ["w-other"], "workflow b");
        ensure!(store.event_workers(t.a1).await?.is_empty(), "a1 is no root");
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Attempts
// ---------------------------------------------------------------------------

backend_test! {
    async fn attempt_scope_task_reads_one_task_and_workflow_reads_the_root_and_every_task_under_it(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = attempt_fixture(&db, &*store).await?;
        use AuditScope::*;
        check_attempts(&*store, "task a", attempts_of(Task(t.a)), &[(t.a, 1), (t.a, 2)]).await?;
        check_attempts(&*store, "task a1", attempts_of(Task(t.a1)), &[(t.a1, 1), (t.a1, 2)]).await?;
        check_attempts(&*store, "task a11", attempts_of(Task(t.a11)), &[(t.a11, 1)]).await?;
        check_attempts(
            &*store,
            "workflow a",
            attempts_of(Workflow(t.a)),
            &[(t.a, 1), (t.a1, 1), (t.a11, 1), (t.a, 2), (t.a1, 2)],
        )
        .await?;
        check_attempts(&*store, "workflow b", attempts_of(Workflow(t.b)), &[(t.b, 1)]).await?;
        check_attempts(&*store, "a missing task", attempts_of(Task(t.b + 100)), &[]).await?;
        Ok(())
    }
}

backend_test! {
    async fn attempt_list_applies_each_filter_alone(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = attempt_fixture(&db, &*store).await?;
        let all = || attempts_of(AuditScope::Workflow(t.a));
        let cases: Vec<AttemptCase> = vec![
            ("worker w2", AttemptListParams { worker_id: Some("w2".into()), ..all() }, vec![(t.a1, 1), (t.a11, 1)]),
            ("worker W2 (case matters)", AttemptListParams { worker_id: Some("W2".into()), ..all() }, vec![]),
            ("outcome completed", AttemptListParams { outcome: Some("completed".into()), ..all() }, vec![(t.a, 2)]),
            ("outcome timeout", AttemptListParams { outcome: Some("timeout".into()), ..all() }, vec![(t.a1, 1)]),
            (
                "started after (inclusive)",
                AttemptListParams { started_after_ms: Some(T + 60), ..all() },
                vec![(t.a11, 1), (t.a, 2), (t.a1, 2)],
            ),
            (
                "started before (inclusive)",
                AttemptListParams { started_before_ms: Some(T + 50), ..all() },
                vec![(t.a, 1), (t.a1, 1)],
            ),
            (
                "ended after (inclusive; open ones have not ended)",
                AttemptListParams { ended_after_ms: Some(T + 150), ..all() },
                vec![(t.a1, 1), (t.a, 2)],
            ),
            (
                "ended before (inclusive)",
                AttemptListParams { ended_before_ms: Some(T + 100), ..all() },
                vec![(t.a, 1)],
            ),
            ("open only", AttemptListParams { open_only: true, ..all() }, vec![(t.a11, 1), (t.a1, 2)]),
            (
                "filters AND-combined",
                AttemptListParams { worker_id: Some("w2".into()), open_only: true, ..all() },
                vec![(t.a11, 1)],
            ),
        ];
        for (what, params, expected) in cases {
            check_attempts(&*store, what, params, &expected).await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn attempt_list_pages_by_attempt_then_id_in_either_direction(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = attempt_fixture(&db, &*store).await?;
        let page = |limit, offset, desc| AttemptListParams {
            slice: slice(limit, offset, desc),
            ..attempts_of(AuditScope::Workflow(t.a))
        };
        let cases: Vec<AttemptCase> = vec![
            ("limit", page(Some(2), 0, false), vec![(t.a, 1), (t.a1, 1)]),
            ("limit and offset", page(Some(2), 2, false), vec![(t.a11, 1), (t.a, 2)]),
            ("offset without a limit", page(None, 3, false), vec![(t.a, 2), (t.a1, 2)]),
            ("offset at the end", page(Some(1), 5, false), vec![]),
            ("offset past the end", page(None, 50, false), vec![]),
            (
                "newest first",
                page(None, 0, true),
                vec![(t.a1, 2), (t.a, 2), (t.a11, 1), (t.a1, 1), (t.a, 1)],
            ),
            ("newest first, sliced", page(Some(2), 2, true), vec![(t.a11, 1), (t.a1, 1)]),
        ];
        for (what, params, expected) in cases {
            let rows = store.attempt_list(&params).await?;
            ensure!(keys(&rows) == expected, "{what}: listed {:?}, expected {expected:?}", keys(&rows));
            let count = store.attempt_count(&params).await?;
            ensure!(count == 5, "{what}: counted {count}, expected 5 whatever the slice");
        }
        Ok(())
    }
}

backend_test! {
    async fn attempt_list_returns_every_column_and_the_rows_convert(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let t = attempt_fixture(&db, &*store).await?;
        let rows = store.attempt_list(&attempts_of(AuditScope::Task(t.a1))).await?;
        ensure!(rows.len() == 2, "{rows:?}");
        let closed = &rows[0];
        ensure!(
            (closed.started_at, closed.ended_at, closed.timed_out) == (T + 50, Some(T + 150), true),
            "{closed:?}"
        );
        ensure!(
            closed.worker_id.as_deref() == Some("w2")
                && closed.outcome.as_deref() == Some("timeout")
                && closed.error.as_deref() == Some("slow"),
            "{closed:?}"
        );
        let attempt = TaskAttempt::try_from(closed.clone())?;
        ensure!(attempt.outcome == Some(AttemptOutcome::Timeout), "{attempt:?}");
        ensure!(attempt.duration_ms() == Some(100), "{attempt:?}");
        let running = TaskAttempt::try_from(rows[1].clone())?;
        ensure!(
            running.ended_at.is_none() && running.outcome.is_none() && !running.timed_out,
            "{running:?}"
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Task queries (store methods only: every backend)
// ---------------------------------------------------------------------------

/// Tasks inserted in id order: `r1` (tag t1) with child `c1` (tag t2)
/// and grandchild `g1` (both named beta); `r2` a cron task (tag t1);
/// `r3` claimed by worker `wq`; `r4` paused.
struct Listing {
    r1: i64,
    c1: i64,
    g1: i64,
    r2: i64,
    r3: i64,
    r4: i64,
}

impl Listing {
    fn all(&self) -> Vec<i64> {
        vec![self.r1, self.c1, self.g1, self.r2, self.r3, self.r4]
    }
}

async fn listing(store: &dyn Store) -> anyhow::Result<Listing> {
    let tagged = |name: &str, tag: &str| TaskInsertParams {
        tag: Some(tag.into()),
        ..task(name)
    };
    let r1 = store.task_insert(&tagged("alpha", "t1")).await?;
    let link = |root, parent| {
        Some(ParentLink {
            root_id: root,
            parent_id: parent,
            parent_stage: 0,
            parent_cycle: 0,
        })
    };
    let c1 = store
        .task_insert(&TaskInsertParams {
            parent: link(r1, r1),
            ..tagged("beta", "t2")
        })
        .await?;
    let g1 = store
        .task_insert(&TaskInsertParams {
            parent: link(r1, c1),
            ..task("beta")
        })
        .await?;
    let r2 = store
        .task_insert(&TaskInsertParams {
            kind: TaskKind::Cron,
            cron_expr: Some("0 * * * * *".into()),
            ..tagged("gamma", "t1")
        })
        .await?;
    let r3 = store.task_insert(&task("delta")).await?;
    let claimed = store
        .task_claim_many(&TaskClaimManyParams::new(
            "wq",
            vec![ClaimName {
                name: "delta".into(),
                limit: 1,
            }],
            1,
        ))
        .await?;
    ensure!(ids(&claimed) == [r3], "claimed {:?}", ids(&claimed));
    let r4 = store.task_insert(&task("eps")).await?;
    let mut tx = store.begin().await?;
    ensure!(tx
        .task_set_status(&TaskSetStatusParams::paused(r4))
        .await?
        .is_some());
    tx.commit().await?;
    Ok(Listing {
        r1,
        c1,
        g1,
        r2,
        r3,
        r4,
    })
}

backend_test! {
    async fn task_query_applies_each_filter_alone(db) {
        let store = db.store().await;
        let t = listing(&*store).await?;
        let q = TaskQueryParams::default;
        let s = |v: &str| Some(v.to_owned());
        let cases: Vec<(&str, TaskQueryParams, Vec<i64>)> = vec![
            ("no filter", q(), t.all()),
            ("tag", TaskQueryParams { tag: s("t1"), ..q() }, vec![t.r1, t.r2]),
            ("status pending", TaskQueryParams { status: s("pending"), ..q() }, vec![t.r1, t.c1, t.g1, t.r2]),
            ("status running", TaskQueryParams { status: s("running"), ..q() }, vec![t.r3]),
            ("status paused", TaskQueryParams { status: s("paused"), ..q() }, vec![t.r4]),
            ("name", TaskQueryParams { name: s("beta"), ..q() }, vec![t.c1, t.g1]),
            ("worker", TaskQueryParams { worker_id: s("wq"), ..q() }, vec![t.r3]),
            ("another worker", TaskQueryParams { worker_id: s("WQ"), ..q() }, vec![]),
            ("parent r1", TaskQueryParams { parent_id: Some(t.r1), ..q() }, vec![t.c1]),
            ("parent c1", TaskQueryParams { parent_id: Some(t.c1), ..q() }, vec![t.g1]),
            ("root r1 (not the root itself)", TaskQueryParams { root_id: Some(t.r1), ..q() }, vec![t.c1, t.g1]),
            ("kind cron", TaskQueryParams { kind: s("cron"), ..q() }, vec![t.r2]),
            ("kind async", TaskQueryParams { kind: s("async"), ..q() }, vec![t.r1, t.c1, t.g1, t.r3, t.r4]),
            ("workflow r1 (the root too)", TaskQueryParams { workflow: Some(t.r1), ..q() }, vec![t.r1, t.c1, t.g1]),
            ("workflow of a lone task", TaskQueryParams { workflow: Some(t.r3), ..q() }, vec![t.r3]),
            (
                "filters AND-combined",
                TaskQueryParams { name: s("beta"), parent_id: Some(t.c1), ..q() },
                vec![t.g1],
            ),
        ];
        for (what, params, expected) in cases {
            check_tasks(&*store, what, params, &expected).await?;
        }
        // The records carry the view's columns.
        let rows = store.task_query(&TaskQueryParams { worker_id: s("wq"), ..q() }).await?;
        let row = rows.first().context("r3")?;
        ensure!(row.name == "delta" && row.status == "running" && row.attempt == 1, "{row:?}");
        Ok(())
    }
}

backend_test! {
    async fn task_query_pages_by_creation_then_id_in_either_direction(db) {
        let store = db.store().await;
        let t = listing(&*store).await?;
        let page = |limit, offset, desc| TaskQueryParams {
            slice: slice(limit, offset, desc),
            ..TaskQueryParams::default()
        };
        let all = t.all();
        let mut reversed = all.clone();
        reversed.reverse();
        let cases: Vec<(&str, TaskQueryParams, Vec<i64>)> = vec![
            ("limit", page(Some(2), 0, false), all[..2].to_vec()),
            ("limit and offset", page(Some(2), 2, false), all[2..4].to_vec()),
            ("a short last page", page(Some(4), 4, false), all[4..].to_vec()),
            ("offset without a limit", page(None, 3, false), all[3..].to_vec()),
            ("offset at the end", page(Some(3), 6, false), vec![]),
            ("offset past the end", page(None, 60, false), vec![]),
            ("newest first", page(None, 0, true), reversed.clone()),
            ("newest first, sliced", page(Some(2), 1, true), reversed[1..3].to_vec()),
        ];
        for (what, params, expected) in cases {
            let rows = store.task_query(&params).await?;
            ensure!(ids(&rows) == expected, "{what}: listed {:?}, expected {expected:?}", ids(&rows));
            let count = store.task_query_count(&params).await?;
            ensure!(count == 6, "{what}: counted {count}, expected 6 whatever the slice");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

/// Sets a task's status and last activity (and what the schema's checks
/// require with that status).
async fn age(db: &TestDb, id: i64, status: TaskStatus, last_active_at: i64) -> anyhow::Result<()> {
    let finished = match status {
        TaskStatus::Completed | TaskStatus::PermanentlyFailed => last_active_at.to_string(),
        _ => "NULL".into(),
    };
    let owner = if status == TaskStatus::Running {
        format!("'w', started_at = {last_active_at}")
    } else {
        "NULL".into()
    };
    let sql = format!(
        "UPDATE {{tasks}} SET status = '{status}', last_active_at = {last_active_at}, \
         finished_at = {finished}, worker_id = {owner} WHERE id = {id}"
    );
    ensure!(raw(db, &sql).await? == 1, "aging task {id}");
    Ok(())
}

/// Gives each task of a workflow two events (carrying the root) and one
/// attempt.
async fn audit_rows(db: &TestDb, root: i64, tasks: &[i64]) -> anyhow::Result<()> {
    let mut events = Vec::new();
    let mut attempts = Vec::new();
    for &task in tasks {
        events.push(Ev::new("created", task, root, EventType::TaskCreated, T));
        events.push(Ev::new("claimed", task, root, EventType::TaskClaimed, T + 1).run("w", 1, 0));
        attempts.push(ended(task, 1, "w", T + 1, T + 2, AttemptOutcome::Completed));
    }
    insert_events(db, &events).await?;
    insert_attempts(db, &attempts).await
}

/// Which of `ids` still exist.
async fn existing(store: &dyn Store, ids: &[i64]) -> anyhow::Result<Vec<i64>> {
    let mut found = Vec::new();
    for &id in ids {
        if store.task_get(id).await?.is_some() {
            found.push(id);
        }
    }
    Ok(found)
}

/// (events carrying `root`, attempts of `tasks`).
async fn audit_counts(store: &dyn Store, root: i64, tasks: &[i64]) -> anyhow::Result<(i64, i64)> {
    let events = store
        .event_count(&events_of(AuditScope::Workflow(root)))
        .await?;
    let mut attempt_rows = 0;
    for &task in tasks {
        attempt_rows += store
            .attempt_count(&attempts_of(AuditScope::Task(task)))
            .await?;
    }
    Ok((events, attempt_rows))
}

fn policy(batch_size: i64) -> RetentionParams {
    RetentionParams {
        statuses: vec!["completed".into(), "permanently_failed".into()],
        expire_after_ms: DAY,
        unfinished: [
            "pending",
            "running",
            "failed",
            "timeout",
            "suspended",
            "paused",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        batch_size,
    }
}

backend_test! {
    async fn retention_deletes_eligible_old_workflows_whole_and_nothing_else(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let now = store.now_ms().await?;
        let old = now - 10 * DAY;
        let young = now - DAY + 60_000;
        use TaskStatus::*;
        // Deleted: an old completed workflow of three (one child failed for
        // good), and an old lone permanently_failed task.
        let w1 = tree(&*store).await?;
        age(&db, w1.a, Completed, old).await?;
        age(&db, w1.a1, Completed, old).await?;
        age(&db, w1.a11, PermanentlyFailed, old).await?;
        audit_rows(&db, w1.a, &[w1.a, w1.a1, w1.a11]).await?;
        // An event of w1's child that carries another root goes too.
        let elsewhere = w1.b + 1_000_000;
        insert_events(&db, &[Ev::new("stray", w1.a1, elsewhere, EventType::TaskProgress, T)]).await?;
        let w2 = w1.b;
        age(&db, w2, PermanentlyFailed, old - 1).await?;
        audit_rows(&db, w2, &[w2]).await?;
        // Kept: a young root (with an old child), ...
        let y = tree(&*store).await?;
        age(&db, y.a, Completed, young).await?;
        age(&db, y.a1, Completed, old).await?;
        age(&db, y.a11, Completed, old).await?;
        age(&db, y.b, Completed, young).await?;
        audit_rows(&db, y.a, &[y.a, y.a1, y.a11]).await?;
        // ... an old root with an unfinished child, an old paused root, ...
        let u = tree(&*store).await?;
        age(&db, u.a, Completed, old).await?;
        age(&db, u.a1, Completed, old).await?;
        audit_rows(&db, u.a, &[u.a, u.a1, u.a11]).await?;
        age(&db, u.b, Paused, old).await?;
        audit_rows(&db, u.b, &[u.b]).await?;
        // ... and an old pending root.
        let pending = store.task_insert(&task("pending")).await?;
        audit_rows(&db, pending, &[pending]).await?;
        let kept = [y.a, y.a1, y.a11, y.b, u.a, u.a1, u.a11, u.b, pending];
        let kept_audit = [
            (y.a, vec![y.a, y.a1, y.a11]),
            (u.a, vec![u.a, u.a1, u.a11]),
            (u.b, vec![u.b]),
            (pending, vec![pending]),
        ];
        let mut before = Vec::new();
        for (root, tasks) in &kept_audit {
            before.push(audit_counts(&*store, *root, tasks).await?);
        }

        let batch = store.retention_delete_batch(&policy(100)).await?;
        ensure!(
            batch
                == RetentionBatch {
                    roots: 2,
                    tasks_deleted: 4,
                    events_deleted: 6 + 1 + 2,
                    attempts_deleted: 4,
                },
            "{batch:?}"
        );
        let gone = [w1.a, w1.a1, w1.a11, w2];
        ensure!(existing(&*store, &gone).await?.is_empty(), "left {:?}", existing(&*store, &gone).await?);
        ensure!(existing(&*store, &kept).await? == kept, "kept only {:?}", existing(&*store, &kept).await?);
        for &id in &gone {
            ensure!(audit_counts(&*store, id, &[id]).await? == (0, 0), "task {id} left audit rows");
            let by_task = store.event_count(&events_of(AuditScope::Task(id))).await?;
            ensure!(by_task == 0, "task {id} left {by_task} events");
        }
        for ((root, tasks), before) in kept_audit.iter().zip(before) {
            let after = audit_counts(&*store, *root, tasks).await?;
            ensure!(after == before, "workflow {root}: {before:?} became {after:?}");
        }
        let again = store.retention_delete_batch(&policy(100)).await?;
        ensure!(again == RetentionBatch::default(), "a second batch found {again:?}");
        Ok(())
    }
}

backend_test! {
    async fn retention_takes_the_oldest_batch_size_roots_and_a_second_batch_the_rest(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let now = store.now_ms().await?;
        // Inserted newest first: the batch goes by last activity, not id.
        let mut roots = Vec::new();
        for (name, days) in [("newest", 10), ("oldest", 30), ("middle", 20)] {
            let root = store.task_insert(&task(name)).await?;
            let kid = child(&*store, "kid", root, root).await?;
            age(&db, root, TaskStatus::Completed, now - days * DAY).await?;
            age(&db, kid, TaskStatus::Completed, now - days * DAY).await?;
            audit_rows(&db, root, &[root, kid]).await?;
            roots.push((root, kid));
        }
        let [(newest, newest_kid), (oldest, oldest_kid), (middle, middle_kid)] = roots[..] else {
            anyhow::bail!("three roots");
        };
        let first = store.retention_delete_batch(&policy(2)).await?;
        ensure!(
            first == RetentionBatch { roots: 2, tasks_deleted: 4, events_deleted: 8, attempts_deleted: 4 },
            "{first:?}"
        );
        let all = [newest, newest_kid, oldest, oldest_kid, middle, middle_kid];
        ensure!(
            existing(&*store, &all).await? == [newest, newest_kid],
            "left {:?}",
            existing(&*store, &all).await?
        );
        ensure!(audit_counts(&*store, newest, &[newest, newest_kid]).await? == (4, 2));
        let second = store.retention_delete_batch(&policy(2)).await?;
        ensure!(
            second == RetentionBatch { roots: 1, tasks_deleted: 2, events_deleted: 4, attempts_deleted: 2 },
            "{second:?}"
        );
        ensure!(existing(&*store, &all).await?.is_empty());
        let third = store.retention_delete_batch(&policy(2)).await?;
        ensure!(third == RetentionBatch::default(), "{third:?}");
        Ok(())
    }
}

backend_test! {
    async fn retention_keeps_a_workflow_while_any_task_under_it_is_unfinished(db) {
        if skips_raw_sql(&db) {
            return Ok(());
        }
        let store = db.store().await;
        let old = store.now_ms().await? - 10 * DAY;
        let t = tree(&*store).await?;
        age(&db, t.a, TaskStatus::Completed, old).await?;
        age(&db, t.a1, TaskStatus::Completed, old).await?;
        // The grandchild is still running (deep in the tree).
        age(&db, t.a11, TaskStatus::Running, old).await?;
        audit_rows(&db, t.a, &[t.a, t.a1, t.a11]).await?;
        let workflow = [t.a, t.a1, t.a11];
        let batch = store.retention_delete_batch(&policy(10)).await?;
        ensure!(batch == RetentionBatch::default(), "{batch:?}");
        ensure!(existing(&*store, &workflow).await? == workflow);
        ensure!(audit_counts(&*store, t.a, &workflow).await? == (6, 3));
        // Once it finishes, the whole workflow goes.
        age(&db, t.a11, TaskStatus::Completed, old).await?;
        let batch = store.retention_delete_batch(&policy(10)).await?;
        ensure!(
            batch == RetentionBatch { roots: 1, tasks_deleted: 3, events_deleted: 6, attempts_deleted: 3 },
            "{batch:?}"
        );
        ensure!(existing(&*store, &workflow).await?.is_empty());
        Ok(())
    }
}

backend_test! {
    async fn retention_skips_roots_another_transaction_holds(db) {
        if db.is_sqlite() {
            eprintln!("skipped on {}: one writer at a time, nothing to skip", db.backend);
            return Ok(());
        }
        use sqlx::Connection;
        let store = db.store().await;
        let old = store.now_ms().await? - 10 * DAY;
        let held = store.task_insert(&task("held")).await?;
        let free = store.task_insert(&task("free")).await?;
        age(&db, held, TaskStatus::Completed, old - DAY).await?;
        age(&db, free, TaskStatus::Completed, old).await?;
        let schema = db.schema.clone().context("server schema")?;
        let lock = match db.backend {
            "postgres" => format!("SELECT id FROM \"{schema}\".fib_flow_tasks WHERE id = {held} FOR UPDATE"),
            _ => format!("SELECT id FROM `{schema}`.fib_flow_tasks WHERE id = {held} FOR UPDATE"),
        };
        let outcome = async {
            if db.backend == "postgres" {
                let mut conn = sqlx::PgConnection::connect(&db.url).await?;
                let mut tx = conn.begin().await?;
                sqlx::query(&lock).execute(&mut *tx).await?;
                let batch = store.retention_delete_batch(&policy(10)).await?;
                tx.rollback().await?;
                anyhow::Ok(batch)
            } else {
                let mut conn = sqlx::MySqlConnection::connect(&db.url).await?;
                let mut tx = conn.begin().await?;
                sqlx::query(&lock).execute(&mut *tx).await?;
                let batch = store.retention_delete_batch(&policy(10)).await?;
                tx.rollback().await?;
                anyhow::Ok(batch)
            }
        };
        let batch = tokio::time::timeout(std::time::Duration::from_secs(20), outcome)
            .await
            .context("the batch waited for the held root")??;
        ensure!(batch.roots == 1 && batch.tasks_deleted == 1, "{batch:?}");
        ensure!(existing(&*store, &[held, free]).await? == [held]);
        let batch = store.retention_delete_batch(&policy(10)).await?;
        ensure!(batch.roots == 1 && batch.tasks_deleted == 1, "{batch:?}");
        ensure!(existing(&*store, &[held, free]).await?.is_empty());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// audit_write: what the engine's transactions write
// ---------------------------------------------------------------------------

backend_test! {
    async fn audit_write_opens_closes_and_inserts_in_one_transaction(db) {
        use fib_flow::store::{AttemptClose, AuditRows, NewAttempt, NewEvent};
        let store = db.store().await;
        let a = store.task_insert(&task("a")).await?;
        let b = store.task_insert(&task("b")).await?;
        let event = |task_id: i64, event_type: &'static str, attempt: Option<i64>| NewEvent {
            task_id,
            root_id: task_id,
            parent_id: None,
            event_type,
            from_status: Some("pending".into()),
            to_status: Some("running".into()),
            stage: Some(0),
            worker_id: Some("w1".into()),
            attempt,
            message: Some(format!("{event_type} of {task_id}")),
            metadata: Some(r#"{"k":"v"}"#.into()),
        };
        let before = store.now_ms().await?;
        let mut tx = store.begin().await?;
        tx.audit_write(&AuditRows {
            events: vec![
                event(a, "task_claimed", None),
                event(a, "task_started", Some(1)),
                event(b, "task_started", Some(1)),
            ],
            opened: vec![
                NewAttempt { task_id: a, attempt: 1, worker_id: "w1".into(), started_at: before },
                NewAttempt { task_id: b, attempt: 1, worker_id: "w1".into(), started_at: before },
            ],
            closed: Vec::new(),
        })
        .await?;
        tx.commit().await?;
        let after = store.now_ms().await?;

        let events = store.event_list(&events_of(AuditScope::Task(a))).await?;
        let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["task_claimed", "task_started"]);
        let started = &events[1];
        assert_eq!(
            (started.attempt, started.worker_id.as_deref(), started.stage, started.root_id),
            (Some(1), Some("w1"), Some(0), a)
        );
        assert_eq!(
            (started.from_status.as_deref(), started.to_status.as_deref(), started.parent_id),
            (Some("pending"), Some("running"), None)
        );
        assert_eq!(started.metadata.as_deref(), Some(r#"{"k":"v"}"#));
        assert_eq!(started.message.as_deref(), Some(&*format!("task_started of {a}")));
        ensure!((before..=after).contains(&started.event_time), "event_time {}", started.event_time);
        // The snapshot of the newest event is stamped by the statements
        // that change task rows (here the insert), not by audit_write.
        let row = store.task_get(a).await?.context("a")?;
        assert_eq!(row.last_event_type.as_deref(), Some("task_created"));
        assert_eq!(row.last_event_at, Some(row.created_at));

        // Closing: only the open attempt named changes; a second close is a no-op.
        let close = AttemptClose { task_id: a, attempt: 1, outcome: "failed", error: Some("boom".into()), timed_out: true };
        for _ in 0..2 {
            let mut tx = store.begin().await?;
            tx.audit_write(&AuditRows { closed: vec![close.clone()], ..AuditRows::default() }).await?;
            tx.commit().await?;
        }
        let attempts = store.attempt_list(&attempts_of(AuditScope::Task(a))).await?;
        assert_eq!(attempts.len(), 1);
        let closed = &attempts[0];
        assert_eq!((closed.outcome.as_deref(), closed.error.as_deref(), closed.timed_out), (Some("failed"), Some("boom"), true));
        assert_eq!(closed.started_at, before);
        ensure!(closed.ended_at.is_some_and(|t| t >= before), "ended_at {:?}", closed.ended_at);
        let open = store.attempt_list(&attempts_of(AuditScope::Task(b))).await?;
        assert_eq!((open.len(), open[0].ended_at, open[0].outcome.clone()), (1, None, None));

        // Rolled back: nothing of it stays.
        let mut tx = store.begin().await?;
        tx.audit_write(&AuditRows { events: vec![event(b, "task_completed", None)], ..AuditRows::default() }).await?;
        drop(tx);
        assert_eq!(store.event_count(&events_of(AuditScope::Task(b))).await?, 1);
        Ok(())
    }
}

backend_test! {
    async fn task_submit_inserts_the_task_and_its_created_event_together(db) {
        use fib_flow::store::NewEvent;
        let store = db.store().await;
        let created = NewEvent {
            metadata: Some(r#"{"name":"a"}"#.into()),
            ..created_event(Some("Task a created".into()))
        };
        let first = store.task_submit(&task("a"), &created).await?;
        let second = store.task_submit(&task("a"), &created).await?;
        ensure!(second > first, "ids {first}, {second}");
        for id in [first, second] {
            let events = store.event_list(&events_of(AuditScope::Task(id))).await?;
            assert_eq!(events.len(), 1, "{events:?}");
            let event = &events[0];
            assert_eq!((event.task_id, event.root_id, event.parent_id), (id, id, None));
            assert_eq!(event.event_type, "task_created");
            assert_eq!((event.to_status.as_deref(), event.stage), (Some("pending"), Some(0)));
            assert_eq!(event.message.as_deref(), Some("Task a created"));
            assert_eq!(event.metadata.as_deref(), Some(r#"{"name":"a"}"#));
            let row = store.task_get(id).await?.context("row")?;
            assert_eq!((row.status.as_str(), row.last_event_type.as_deref()), ("pending", Some("task_created")));
            assert_eq!((row.last_event_at, Some(row.created_at)), (Some(event.event_time), Some(event.event_time)));
        }
        Ok(())
    }
}
