//! [`Store::task_submit_many`](crate::store::Store::task_submit_many) on
//! MySQL / MariaDB: one transaction, one multi-row insert for the tasks
//! (ids read from `LAST_INSERT_ID()`, see the query file) and one for
//! their events.

use sqlx::{MySql, QueryBuilder};

use super::{inserted_id, MySqlStore, MySqlTx};
use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::store::audit::{AuditRows, NewEvent};
use crate::store::params::TaskInsertParams;
use crate::store::StoreTx;

/// Rows per insert statement: each binds six strings, and a prepared
/// statement takes at most 65,535 parameters. Covers
/// [`MAX_SUBMIT_BATCH`](crate::config::MAX_SUBMIT_BATCH) in one statement.
const ROWS_PER_STATEMENT: usize = 10_000;

/// An integer column as SQL text (integers are written into the statement,
/// strings bound, to stay under the parameter limit).
fn int(value: Option<i64>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| v.to_string())
}

impl MySqlStore {
    pub(super) async fn submit_many(
        &self,
        params: &[TaskInsertParams],
        created: &[NewEvent],
    ) -> Result<Vec<i64>> {
        if params.is_empty() {
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
        let mut ids = Vec::with_capacity(params.len());
        for (chunk, events) in params
            .chunks(ROWS_PER_STATEMENT)
            .zip(created.chunks(ROWS_PER_STATEMENT))
        {
            let mut insert =
                QueryBuilder::<MySql>::new(include_str!("queries/task_submit_many_insert.sql"));
            insert.push_values(chunk.iter().zip(events), |mut row, (p, event)| {
                let (_, at, delay) = p.next_run.as_args();
                let parent = p.parent;
                row.push_bind(p.name.as_str())
                    .push_bind(p.kind.as_str())
                    .push_bind(TaskStatus::Pending.as_str())
                    .push(int(Some(i64::from(p.priority))))
                    .push_bind(p.payload.as_deref())
                    .push_bind(p.tag.as_deref())
                    .push(int(Some(p.timeout_ms)))
                    .push(int(Some(p.max_attempts)))
                    .push(int(Some(p.retry_interval_ms)))
                    .push_bind(p.cron_expr.as_deref())
                    .push(int(Some(now)))
                    .push(int(Some(at.unwrap_or_else(|| now.saturating_add(delay)))))
                    .push(int(parent.map(|l| l.root_id)))
                    .push(int(parent.map(|l| l.parent_id)))
                    .push(int(parent.map(|l| l.parent_stage)))
                    .push(int(parent.map(|l| l.parent_cycle)))
                    .push(int(Some(now)))
                    .push_bind(event.event_type);
            });
            // Each batch has its own text: do not fill the statement cache.
            let done = insert
                .build()
                .persistent(false)
                .execute(&mut *tx.tx)
                .await?;
            if usize::try_from(done.rows_affected()).ok() != Some(chunk.len()) {
                return Err(Error::Corrupt {
                    column: "id",
                    reason: format!("inserted {} tasks of {}", done.rows_affected(), chunk.len()),
                });
            }
            let first = inserted_id(done.last_insert_id())?;
            ids.extend((0..chunk.len() as i64).map(|i| first + i * step));
        }
        tx.audit_write(&AuditRows::created(&ids, created)).await?;
        Box::new(tx).commit().await?;
        Ok(ids)
    }
}
