//! [`Store::task_submit_many`](crate::store::Store::task_submit_many) on
//! PostgreSQL: one statement, the payloads bound as one array and every
//! shared column once.

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::Postgres;

use super::PgStore;
use crate::error::Result;
use crate::state::TaskStatus;
use crate::store::params::TaskBatchParams;

impl PgStore {
    pub(super) async fn submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let created = batch.created();
        let rows = bind_task_columns(
            sqlx::query(include_str!("queries/task_submit_many.sql")),
            batch,
        )
        .bind(created.parent_id)
        .bind(created.from_status.as_deref())
        .bind(created.to_status.as_deref())
        .bind(created.stage)
        .bind(created.worker_id.as_deref())
        .bind(created.attempt)
        .bind(created.message.as_deref())
        .bind(created.metadata.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(sqlx::Row::try_get::<i64, _>(row, 0)?))
            .collect()
    }
}

/// Binds `$1..$13` of `task_submit_many.sql` and of the floor's insert
/// (`floor_task_insert_many.sql`), which share them: the payloads as one
/// array, the shared task columns, and the `task_created` event type as
/// the rows' `last_event_type`.
pub(super) fn bind_task_columns<'q>(
    query: Query<'q, Postgres, PgArguments>,
    batch: &'q TaskBatchParams,
) -> Query<'q, Postgres, PgArguments> {
    let task = batch.task();
    let (_, run_at, delay_ms) = task.next_run.as_args();
    query
        .bind(batch.payloads())
        .bind(task.name.as_str())
        .bind(task.kind.as_str())
        .bind(TaskStatus::Pending.as_str())
        .bind(i64::from(task.priority))
        .bind(task.tag.as_deref())
        .bind(task.timeout_ms)
        .bind(task.max_attempts)
        .bind(task.retry_interval_ms)
        .bind(task.cron_expr.as_deref())
        .bind(run_at)
        .bind(delay_ms)
        .bind(batch.created().event_type)
}
