//! The benchmark floor's statements on PostgreSQL (see
//! [`FloorStore`](crate::store::floor::FloorStore)): each one statement on
//! the pool, autocommitted.

use async_trait::async_trait;

use super::PgStore;
use crate::error::Result;
use crate::state::TaskStatus;
use crate::store::floor::{FloorCompleteParams, FloorStore};
use crate::store::params::TaskInsertParams;

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

    async fn floor_task_insert_many(&self, params: &[TaskInsertParams]) -> Result<u64> {
        if params.is_empty() {
            return Ok(0);
        }
        let int = |f: fn(&TaskInsertParams) -> Option<i64>| -> Vec<Option<i64>> {
            params.iter().map(f).collect()
        };
        let text = |f: fn(&TaskInsertParams) -> Option<&str>| -> Vec<Option<&str>> {
            params.iter().map(f).collect()
        };
        let done = sqlx::query(include_str!("queries/floor_task_insert_many.sql"))
            .bind(TaskStatus::Pending.as_str())
            .bind(text(|p| Some(p.name.as_str())))
            .bind(text(|p| Some(p.kind.as_str())))
            .bind(int(|p| Some(i64::from(p.priority))))
            .bind(text(|p| p.payload.as_deref()))
            .bind(text(|p| p.tag.as_deref()))
            .bind(int(|p| Some(p.timeout_ms)))
            .bind(int(|p| Some(p.max_attempts)))
            .bind(int(|p| Some(p.retry_interval_ms)))
            .bind(text(|p| p.cron_expr.as_deref()))
            .bind(int(|p| p.next_run.as_args().1))
            .bind(int(|p| Some(p.next_run.as_args().2)))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
