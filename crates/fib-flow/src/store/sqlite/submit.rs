//! [`Store::task_submit`](crate::store::Store::task_submit) and
//! [`Store::task_submit_many`](crate::store::Store::task_submit_many) on
//! SQLite. One task: one command carrying its transaction, the task's
//! insert and its event's. A batch: one write transaction, one insert for
//! the tasks (from a JSON array) and one multi-row insert for their events.

use serde::Serialize;

use super::{insert_query, next_run_ms, now_ms, SqliteStore, SqliteTx};
use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::store::audit::NewEvent;
use crate::store::own_tx::OwnTxConn;
use crate::store::params::{json_list, TaskBatchParams, TaskInsertParams};
use crate::store::StoreTx;

/// One task as `task_submit_many.sql` reads it from its JSON array.
#[derive(Serialize)]
struct TaskJson<'a> {
    name: &'a str,
    kind: &'static str,
    status: &'static str,
    priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    timeout_ms: i64,
    max_attempts: i64,
    retry_interval_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron_expr: Option<&'a str>,
    next_run_at: i64,
    last_event_type: &'static str,
}

impl SqliteStore {
    pub(super) async fn submit_one(
        &self,
        params: &TaskInsertParams,
        created: &NewEvent,
    ) -> Result<i64> {
        let mut writer = OwnTxConn::acquire(&self.writer).await?;
        let ids = insert_query(include_str!("queries/task_submit.sql"), params, now_ms())
            .bind(created.parent_id)
            .bind(created.event_type)
            .bind(created.from_status.as_deref())
            .bind(created.to_status.as_deref())
            .bind(created.stage)
            .bind(created.worker_id.as_deref())
            .bind(created.attempt)
            .bind(created.message.as_deref())
            .bind(created.metadata.as_deref())
            .fetch_all(writer.conn())
            .await?;
        writer.finished();
        match ids[..] {
            [id] => Ok(id),
            _ => Err(Error::Corrupt {
                column: "id",
                reason: format!("inserting one task returned {} ids", ids.len()),
            }),
        }
    }

    pub(super) async fn submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let rows = task_rows_json(batch, now);
        let mut tx = SqliteTx {
            tx: self.begin_write().await?,
            now,
        };
        let mut ids: Vec<i64> = sqlx::query_scalar(include_str!("queries/task_submit_many.sql"))
            .bind(rows)
            .bind(now)
            .fetch_all(&mut *tx.tx)
            .await?;
        if ids.len() != batch.len() {
            return Err(Error::Corrupt {
                column: "id",
                reason: format!("inserted {} tasks of {}", ids.len(), batch.len()),
            });
        }
        // Rowids grow in insert order (array order) within one statement.
        ids.sort_unstable();
        insert_events(&mut tx, &batch.events(&ids)).await?;
        Box::new(tx).commit().await?;
        Ok(ids)
    }
}

/// `batch` as the JSON array `task_submit_many.sql` reads, due times
/// resolved against `now`; every row's newest event is its
/// `task_created`. Also the benchmark floor's insert.
pub(super) fn task_rows_json(batch: &TaskBatchParams, now: i64) -> String {
    let task = batch.task();
    let rows: Vec<TaskJson<'_>> = batch
        .payloads()
        .iter()
        .map(|payload| TaskJson {
            name: &task.name,
            kind: task.kind.as_str(),
            status: TaskStatus::Pending.as_str(),
            priority: task.priority,
            payload: payload.as_deref(),
            tag: task.tag.as_deref(),
            timeout_ms: task.timeout_ms,
            max_attempts: task.max_attempts,
            retry_interval_ms: task.retry_interval_ms,
            cron_expr: task.cron_expr.as_deref(),
            next_run_at: next_run_ms(task.next_run, now).unwrap_or(now),
            last_event_type: batch.created().event_type,
        })
        .collect();
    json_list(&rows)
}

/// Events per insert statement: twelve parameters each, and SQLite takes
/// at most 32,766 per statement.
const EVENTS_PER_STATEMENT: usize = 2_500;

/// Inserts `events` at the transaction's time, in order, as multi-row
/// `VALUES` inserts with bound parameters (`event_insert_values.sql`):
/// no JSON to render and parse per row. Not kept in the statement cache:
/// each batch size is its own statement, and a cached one of thousands of
/// parameters holds its memory until evicted (re-preparing costs ~5 %).
async fn insert_events(tx: &mut SqliteTx, events: &[NewEvent]) -> Result<()> {
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(include_str!(
            "queries/event_insert_values.sql"
        ));
        insert.push_values(chunk, |mut row, event| {
            row.push_bind(event.task_id)
                .push_bind(event.root_id)
                .push_bind(event.parent_id)
                .push_bind(event.event_type)
                .push_bind(event.from_status.as_deref())
                .push_bind(event.to_status.as_deref())
                .push_bind(event.stage)
                .push_bind(event.worker_id.as_deref())
                .push_bind(event.attempt)
                .push_bind(tx.now)
                .push_bind(event.message.as_deref())
                .push_bind(event.metadata.as_deref());
        });
        insert
            .build()
            .persistent(false)
            .execute(&mut *tx.tx)
            .await?;
    }
    Ok(())
}
