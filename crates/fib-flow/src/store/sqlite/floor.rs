//! The benchmark floor's statements on SQLite (see
//! [`FloorStore`](crate::store::floor::FloorStore)): each one command on
//! the writer connection, autocommitted, timed by this process's clock.

use async_trait::async_trait;

use super::submit::task_rows_json;
use super::{now_ms, SqliteStore};
use crate::error::Result;
use crate::store::floor::{FloorCompleteParams, FloorStore};
use crate::store::params::{json_list, TaskBatchParams};

#[async_trait]
impl FloorStore for SqliteStore {
    async fn floor_reset(&self) -> Result<()> {
        sqlx::query(include_str!("queries/floor_reset.sql"))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn floor_task_complete_many(&self, params: &FloorCompleteParams) -> Result<u64> {
        if params.ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query(include_str!("queries/floor_task_complete_many.sql"))
            .bind(json_list(&params.ids))
            .bind(params.from.as_str())
            .bind(params.to.as_str())
            .bind(&params.result)
            .bind(params.last_event_type)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn floor_task_insert_many(&self, batch: &TaskBatchParams) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        // The engine's own batch insert (task_submit_many.sql), bare: one
        // autocommitted statement, no events.
        let now = now_ms();
        let ids: Vec<i64> = sqlx::query_scalar(include_str!("queries/task_submit_many.sql"))
            .bind(task_rows_json(batch, now))
            .bind(now)
            .fetch_all(&self.writer)
            .await?;
        Ok(ids.len() as u64)
    }
}
