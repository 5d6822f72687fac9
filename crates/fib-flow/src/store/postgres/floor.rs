//! The benchmark floor's statements on PostgreSQL (see
//! [`FloorStore`](crate::store::floor::FloorStore)): each one statement on
//! the pool, autocommitted.

use async_trait::async_trait;

use super::PgStore;
use crate::error::Result;
use crate::state::TaskStatus;
use crate::store::floor::{FloorCompleteParams, FloorStore};
use crate::store::params::TaskBatchParams;

#[async_trait]
impl FloorStore for PgStore {
    async fn floor_reset(&self) -> Result<()> {
        sqlx::query(include_str!("queries/floor_reset.sql"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn floor_task_complete_many(&self, params: &FloorCompleteParams) -> Result<u64> {
        if params.ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query(include_str!("queries/floor_task_complete_many.sql"))
            .bind(&params.ids)
            .bind(params.from.as_str())
            .bind(params.to.as_str())
            .bind(&params.result)
            .bind(params.last_event_type)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn floor_task_insert_many(&self, batch: &TaskBatchParams) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let task = batch.task();
        let (_, run_at, delay_ms) = task.next_run.as_args();
        let done = sqlx::query(include_str!("queries/floor_task_insert_many.sql"))
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
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
