//! The benchmark floor's statements on PostgreSQL (see
//! [`FloorStore`](crate::store::floor::FloorStore)): each one statement on
//! the pool, autocommitted.

use async_trait::async_trait;

use super::submit::bind_task_columns;
use super::PgStore;
use crate::error::Result;
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
        let done = bind_task_columns(
            sqlx::query(include_str!("queries/floor_task_insert_many.sql")),
            batch,
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
