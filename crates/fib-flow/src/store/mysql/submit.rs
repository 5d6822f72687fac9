//! [`Store::task_submit`](crate::store::Store::task_submit) and
//! [`Store::task_submit_many`](crate::store::Store::task_submit_many) on
//! MySQL / MariaDB. One task: one text command carrying its transaction
//! (`task_submit.sql`). A batch: one transaction, one multi-row insert for
//! the tasks (ids read from `LAST_INSERT_ID()`, see the query file) and one
//! for their events.

use sqlx::{Executor, MySql, QueryBuilder};

use super::literal::Lit;
use super::{inserted_id, sql_int as int, MySqlStore, MySqlTx};
use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::store::audit::{AuditRows, NewEvent};
use crate::store::own_tx::OwnTxConn;
use crate::store::params::TaskInsertParams;
use crate::store::{submit_in_tx, Store, StoreTx};

/// Rows per insert statement: each binds six strings, and a prepared
/// statement takes at most 65,535 parameters. Covers
/// [`MAX_SUBMIT_BATCH`](crate::config::MAX_SUBMIT_BATCH) in one statement.
const ROWS_PER_STATEMENT: usize = 10_000;

/// The longest one-command submit (`task_submit.sql` with its values
/// written in): its strings are hex, twice their size, and a command must
/// fit in `max_allowed_packet` (16 MiB by default on MariaDB, 64 MiB on
/// MySQL 8). A longer one runs as a transaction with bound parameters.
const ONE_COMMAND_MAX_BYTES: usize = 1 << 20;

/// `task_submit.sql` with every placeholder replaced by its value's SQL
/// text ([`Lit`]).
fn submit_sql(params: &TaskInsertParams, created: &NewEvent) -> String {
    let (_, at, delay) = params.next_run.as_args();
    let parent = params.parent;
    let values = [
        ("{name}", Lit::Text(&params.name).sql()),
        ("{kind}", Lit::Text(params.kind.as_str()).sql()),
        ("{status}", Lit::Text(TaskStatus::Pending.as_str()).sql()),
        ("{priority}", int(Some(i64::from(params.priority)))),
        ("{payload}", Lit::text(params.payload.as_deref()).sql()),
        ("{tag}", Lit::text(params.tag.as_deref()).sql()),
        ("{timeout_ms}", int(Some(params.timeout_ms))),
        ("{max_attempts}", int(Some(params.max_attempts))),
        ("{retry_interval_ms}", int(Some(params.retry_interval_ms))),
        ("{cron_expr}", Lit::text(params.cron_expr.as_deref()).sql()),
        ("{next_run_at}", int(at)),
        ("{delay_ms}", int(Some(delay))),
        ("{root_id}", int(parent.map(|l| l.root_id))),
        ("{parent_id}", int(parent.map(|l| l.parent_id))),
        ("{parent_stage}", int(parent.map(|l| l.parent_stage))),
        ("{parent_cycle}", int(parent.map(|l| l.parent_cycle))),
        ("{event_parent_id}", int(created.parent_id)),
        ("{event_type}", Lit::Text(created.event_type).sql()),
        (
            "{from_status}",
            Lit::text(created.from_status.as_deref()).sql(),
        ),
        ("{to_status}", Lit::text(created.to_status.as_deref()).sql()),
        ("{stage}", int(created.stage)),
        ("{worker_id}", Lit::text(created.worker_id.as_deref()).sql()),
        ("{attempt}", int(created.attempt)),
        ("{message}", Lit::text(created.message.as_deref()).sql()),
        ("{metadata}", Lit::text(created.metadata.as_deref()).sql()),
    ];
    // Values hold no braces, so no replacement can create a placeholder.
    values.iter().fold(
        include_str!("queries/task_submit.sql").to_owned(),
        |sql, (name, value)| sql.replace(name, value),
    )
}

impl MySqlStore {
    pub(super) async fn submit_one(
        &self,
        params: &TaskInsertParams,
        created: &NewEvent,
    ) -> Result<i64> {
        let sql = submit_sql(params, created);
        if sql.len() > ONE_COMMAND_MAX_BYTES {
            // Hex doubles the strings: past this size, bound parameters.
            let mut tx = self.begin().await?;
            let id = submit_in_tx(&mut *tx, params, created).await?;
            tx.commit().await?;
            return Ok(id);
        }
        let mut conn = OwnTxConn::acquire(&self.pool).await?;
        let ids: Vec<(i64,)> = conn
            .conn()
            .fetch_all(sqlx::raw_sql(&sql))
            .await?
            .iter()
            .map(sqlx::FromRow::from_row)
            .collect::<std::result::Result<_, _>>()?;
        conn.finished();
        match ids[..] {
            [(id,)] => Ok(id),
            _ => Err(Error::Corrupt {
                column: "id",
                reason: format!("inserting one task returned {} ids", ids.len()),
            }),
        }
    }

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
        tx.insert_events(&AuditRows::created(&ids, created).events, now)
            .await?;
        Box::new(tx).commit().await?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::submit_sql;
    use crate::store::audit::NewEvent;
    use crate::store::params::{NextRun, TaskInsertParams};
    use crate::TaskKind;

    #[test]
    fn every_placeholder_is_replaced_and_no_value_appears_as_written() {
        let odd = "x'); DROP TABLE fib_flow_tasks; -- {name}";
        let params = TaskInsertParams {
            name: odd.to_owned(),
            kind: TaskKind::Async,
            payload: Some(odd.to_owned()),
            priority: -3,
            tag: None,
            timeout_ms: 60_000,
            max_attempts: 3,
            retry_interval_ms: 0,
            next_run: NextRun::AfterMs(5),
            cron_expr: None,
            parent: None,
        };
        let created = NewEvent {
            task_id: 0,
            root_id: 0,
            parent_id: None,
            event_type: "task_created",
            from_status: None,
            to_status: Some("pending".to_owned()),
            stage: Some(0),
            worker_id: None,
            attempt: None,
            message: Some(odd.to_owned()),
            metadata: None,
        };
        let sql = submit_sql(&params, &created);
        let statements: String = sql
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect();
        assert!(
            !statements.contains('{'),
            "a placeholder is left: {statements}"
        );
        assert!(!statements.contains("DROP"), "a value is written as is");
        assert!(statements.contains("-3"), "the priority is written in");
    }
}
