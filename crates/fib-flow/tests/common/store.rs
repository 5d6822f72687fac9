//! Fixtures shared by the store conformance suites: plain insert params,
//! reading rows back, fences, audit listings, raw SQL on the test
//! database, and clock bounds.

use anyhow::{ensure, Context};
use fib_flow::store::{
    AttemptListParams, AuditScope, EventListParams, Fence, NewEvent, NextRun, Slice, Store,
    TaskInsertParams, TaskRef, TaskRow,
};
use fib_flow::TaskKind;

use super::TestDb;

/// Insert params with plain values; override fields with `..task("name")`.
pub fn task(name: &str) -> TaskInsertParams {
    TaskInsertParams {
        name: name.to_owned(),
        kind: TaskKind::Async,
        payload: Some(r#"{"n":1}"#.to_owned()),
        priority: 0,
        tag: None,
        timeout_ms: 60_000,
        max_attempts: 3,
        retry_interval_ms: 0,
        next_run: NextRun::Keep,
        cron_expr: None,
        parent: None,
    }
}

pub async fn get(store: &dyn Store, id: i64) -> anyhow::Result<TaskRow> {
    store
        .task_get(id)
        .await?
        .with_context(|| format!("task {id} is missing"))
}

/// The fence of a claimed row.
pub fn fence(row: &TaskRow) -> anyhow::Result<Fence> {
    Ok(Fence {
        worker_id: row
            .worker_id
            .clone()
            .with_context(|| format!("task {} has no owner", row.id))?,
        attempt: row.attempt,
    })
}

/// Runs one raw statement on the test's database, outside any store, with
/// `{tasks}` replaced by the tasks table (schema-qualified on servers).
/// `None` where the database is private to its store (`sqlite_memory`).
/// Only for what no store method can do: bypassing the store to check the
/// schema's own constraints, or entering a status no transition enters yet.
pub async fn raw_execute(
    db: &TestDb,
    sql: &str,
) -> anyhow::Result<Option<Result<u64, sqlx::Error>>> {
    use sqlx::Connection;
    let schema = db.schema.as_deref().unwrap_or_default();
    let done = match db.backend {
        "sqlite_file" => {
            let sql = sql.replace("{tasks}", "fib_flow_tasks");
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await?;
            let done = sqlx::query(&sql).execute(&mut conn).await;
            conn.close().await?;
            done.map(|d| d.rows_affected())
        }
        "postgres" => {
            let sql = sql.replace("{tasks}", &format!("\"{schema}\".fib_flow_tasks"));
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            let done = sqlx::query(&sql).execute(&mut conn).await;
            conn.close().await?;
            done.map(|d| d.rows_affected())
        }
        "mysql" => {
            let sql = sql.replace("{tasks}", &format!("`{schema}`.fib_flow_tasks"));
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await?;
            let done = sqlx::query(&sql).execute(&mut conn).await;
            conn.close().await?;
            done.map(|d| d.rows_affected())
        }
        _ => return Ok(None),
    };
    Ok(Some(done))
}

/// Fails unless `lo <= value <= hi`.
pub fn within(what: &str, value: i64, lo: i64, hi: i64) -> anyhow::Result<()> {
    ensure!(
        lo <= value && value <= hi,
        "{what} = {value}, expected within [{lo}, {hi}]"
    );
    Ok(())
}

/// A status change's reference without what the audit reads (previous
/// status, stage, owner, attempt, root, retry count, due time): what
/// propagation needs, for comparisons that do not care about the rest.
pub fn link_only(task: TaskRef) -> TaskRef {
    TaskRef {
        id: task.id,
        name: task.name,
        kind: task.kind,
        status: task.status,
        parent_id: task.parent_id,
        parent_stage: task.parent_stage,
        parent_cycle: task.parent_cycle,
        error: task.error,
        ..TaskRef::default()
    }
}

/// Every event of `scope`, unfiltered, in the default slice.
pub fn events_of(scope: AuditScope) -> EventListParams {
    EventListParams {
        scope,
        parent_id: None,
        worker_id: None,
        event_types: Vec::new(),
        attempt: None,
        stage: None,
        after_ms: None,
        before_ms: None,
        slice: Slice::default(),
    }
}

/// Every attempt of `scope`, unfiltered, in the default slice.
pub fn attempts_of(scope: AuditScope) -> AttemptListParams {
    AttemptListParams {
        scope,
        worker_id: None,
        outcome: None,
        started_after_ms: None,
        started_before_ms: None,
        ended_after_ms: None,
        ended_before_ms: None,
        open_only: false,
        slice: Slice::default(),
    }
}

/// A `task_created` event for a submit (its task and root are filled in by
/// the store), with `message`.
pub fn created_event(message: Option<String>) -> NewEvent {
    NewEvent {
        task_id: 0,
        root_id: 0,
        parent_id: None,
        event_type: "task_created",
        from_status: None,
        to_status: Some("pending".into()),
        stage: Some(0),
        worker_id: None,
        attempt: None,
        message,
        metadata: None,
    }
}
