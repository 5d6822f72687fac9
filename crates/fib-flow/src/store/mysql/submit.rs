//! [`Store::task_submit`](crate::store::Store::task_submit) and
//! [`Store::task_submit_many`](crate::store::Store::task_submit_many) on
//! MySQL / MariaDB. One task: one call of the `fib_flow_submit_task`
//! procedure, which carries its transaction (`task_submit.sql`). A batch:
//! one transaction, one multi-row insert for the tasks (ids read from
//! `LAST_INSERT_ID()`, see the query file) and one `INSERT … SELECT` of
//! their events from the new rows.

use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};

use super::literal::Lit;
use super::{insert_query, inserted_id, sql_int as int, InsertQuery, MySqlStore, MySqlTx};
use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::store::audit::NewEvent;
use crate::store::own_tx::OwnTxConn;
use crate::store::params::{TaskBatchParams, TaskInsertParams};
use crate::store::StoreTx;

/// Rows per insert statement (each binds its payload; a prepared
/// statement takes at most 65,535 parameters). Covers
/// [`MAX_SUBMIT_BATCH`](crate::config::MAX_SUBMIT_BATCH) in one statement.
const ROWS_PER_STATEMENT: usize = 10_000;

impl MySqlStore {
    /// One task and its `task_created` event: one call of the
    /// `fib_flow_submit_task` procedure (migration 4), which inserts both
    /// in its own transaction and returns the committed id.
    pub(super) async fn submit_one(
        &self,
        params: &TaskInsertParams,
        created: &NewEvent,
    ) -> Result<i64> {
        let call = bind_created_event(
            insert_query(include_str!("queries/task_submit.sql"), params),
            created,
        );
        // The procedure rolls back on an error, but a call whose future is
        // dropped mid-flight could leave its transaction open: the guard
        // closes such a connection instead of pooling it.
        let mut conn = OwnTxConn::acquire(&self.pool).await?;
        let rows = call.fetch_all(conn.conn()).await?;
        conn.finished();
        match &rows[..] {
            // By position: a prepared CALL describes no columns, so the
            // row's names are unknown to the driver.
            [row] => Ok(row.try_get(0)?),
            _ => Err(Error::Corrupt {
                column: "id",
                reason: format!("inserting one task returned {} ids", rows.len()),
            }),
        }
    }

    pub(super) async fn submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = MySqlTx {
            tx: self.pool.begin().await?,
            now: None,
        };
        let (now, step): (i64, i64) =
            sqlx::query_as(include_str!("queries/task_submit_many_clock.sql"))
                .fetch_one(&mut *tx.tx)
                .await?;
        tx.now = Some(now);
        let ids: Vec<i64> = insert_tasks(&mut tx.tx, batch, now)
            .await?
            .into_iter()
            .flat_map(|(first, rows)| (0..rows as i64).map(move |i| first + i * step))
            .collect();
        insert_created_events(&mut tx.tx, batch, &ids, now).await?;
        Box::new(tx).commit().await?;
        Ok(ids)
    }
}

/// Inserts `batch`'s tasks as multi-row `VALUES` inserts and returns, for
/// each statement, its first id and how many rows it inserted (a simple
/// insert's ids are consecutive by `@@auto_increment_increment`), created
/// at `now` (ms). Every
/// row but its payload is the same, written in once as text; the payloads
/// are bound. Also the benchmark floor's insert.
pub(super) async fn insert_tasks(
    conn: &mut MySqlConnection,
    batch: &TaskBatchParams,
    now: i64,
) -> Result<Vec<(i64, usize)>> {
    let (head, tail) = shared_columns(batch, now);
    let mut inserted = Vec::new();
    for chunk in batch.payloads().chunks(ROWS_PER_STATEMENT) {
        let mut insert =
            QueryBuilder::<MySql>::new(include_str!("queries/task_submit_many_insert.sql"));
        insert.push_values(chunk, |mut row, payload| {
            row.push(&head).push_bind(payload.as_deref()).push(&tail);
        });
        // Each batch has its own text: do not fill the statement cache.
        let done = insert.build().persistent(false).execute(&mut *conn).await?;
        if usize::try_from(done.rows_affected()).ok() != Some(chunk.len()) {
            return Err(Error::Corrupt {
                column: "id",
                reason: format!("inserted {} tasks of {}", done.rows_affected(), chunk.len()),
            });
        }
        inserted.push((inserted_id(done.last_insert_id())?, chunk.len()));
    }
    Ok(inserted)
}

/// Inserts the `task_created` event of each task of `batch` inserted as
/// `ids` (in input order) at `now`, read from the new task rows
/// (`task_submit_many_events.sql`): the shared columns bound once, the ids
/// written in.
async fn insert_created_events(
    conn: &mut MySqlConnection,
    batch: &TaskBatchParams,
    ids: &[i64],
    now: i64,
) -> Result<()> {
    let created = batch.created();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(include_str!("queries/task_submit_many_events.sql"));
        for (index, id) in chunk.iter().enumerate() {
            if index > 0 {
                sql.push(',');
            }
            sql.push_str(&id.to_string());
        }
        sql.push_str(") ORDER BY id");
        let done = bind_created_event(sqlx::query(&sql), created)
            .bind(now)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        if usize::try_from(done.rows_affected()).ok() != Some(chunk.len()) {
            return Err(Error::Corrupt {
                column: "id",
                reason: format!(
                    "inserted {} events of {}",
                    done.rows_affected(),
                    chunk.len()
                ),
            });
        }
    }
    Ok(())
}

/// The SQL of a batch row's values before its payload (name, kind, status,
/// priority) and after it (tag through last_event_type), in the order of
/// `task_submit_many_insert.sql`, created at `now` (ms) and due times
/// resolved against it.
fn shared_columns(batch: &TaskBatchParams, now: i64) -> (String, String) {
    let task = batch.task();
    let (_, at, delay) = task.next_run.as_args();
    let head = [
        Lit::Text(&task.name).sql(),
        Lit::Text(task.kind.as_str()).sql(),
        Lit::Text(TaskStatus::Pending.as_str()).sql(),
        int(Some(i64::from(task.priority))),
    ];
    // A batch holds top-level tasks: no root, parent, parent stage or cycle.
    let tail = [
        Lit::text(task.tag.as_deref()).sql(),
        int(Some(task.timeout_ms)),
        int(Some(task.max_attempts)),
        int(Some(task.retry_interval_ms)),
        Lit::text(task.cron_expr.as_deref()).sql(),
        int(Some(now)),
        int(Some(at.unwrap_or_else(|| now.saturating_add(delay)))),
        "NULL".to_owned(),
        "NULL".to_owned(),
        "NULL".to_owned(),
        "NULL".to_owned(),
        int(Some(now)),
        Lit::Text(batch.created().event_type).sql(),
    ];
    (head.join(", "), tail.join(", "))
}

/// `query` with a `task_created` event's columns bound as its next nine
/// `?`: event_type, parent_id, from_status, to_status, stage, worker_id,
/// attempt, message, metadata (the event's task, root and time are the
/// statement's own; the order is the submit procedure's, which migration 4
/// fixed).
fn bind_created_event<'q>(query: InsertQuery<'q>, created: &'q NewEvent) -> InsertQuery<'q> {
    query
        .bind(created.event_type)
        .bind(created.parent_id)
        .bind(created.from_status.as_deref())
        .bind(created.to_status.as_deref())
        .bind(created.stage)
        .bind(created.worker_id.as_deref())
        .bind(created.attempt)
        .bind(created.message.as_deref())
        .bind(created.metadata.as_deref())
}
