//! The benchmark floor's statements on MySQL / MariaDB (see
//! [`FloorStore`](crate::store::floor::FloorStore)): each one autocommitted
//! statement on the pool (the reset one command of several `TRUNCATE
//! TABLE`s), timed by the database clock.

use async_trait::async_trait;
use sqlx::{Executor, MySqlPool};

use super::submit::insert_tasks;
use super::MySqlStore;
use crate::error::Result;
use crate::state::TaskStatus;
use crate::store::floor::{FloorCompleteParams, FloorStore};
use crate::store::params::{json_list, TaskBatchParams};

#[async_trait]
impl FloorStore for MySqlStore {
    async fn floor_reset(&self) -> Result<()> {
        // A plain string runs through the text protocol, which accepts the
        // file's several statements (and TRUNCATE).
        (&self.pool)
            .execute(include_str!("queries/floor_reset.sql"))
            .await?;
        Ok(())
    }

    async fn floor_task_complete_many(&self, params: &FloorCompleteParams) -> Result<u64> {
        if params.ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query(include_str!("queries/floor_task_complete_many.sql"))
            .bind(json_list(&params.ids))
            .bind(params.to.as_str())
            .bind(&params.result)
            .bind(params.last_event_type)
            .bind(params.from.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn floor_task_insert_many(&self, batch: &TaskBatchParams) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        if let [payload] = batch.payloads() {
            return insert_one(&self.pool, batch, payload.as_deref()).await;
        }
        // The engine's batch insert bare: one autocommitted statement, no
        // events. The engine reads the database clock first (the events
        // are stamped with it too); the floor stamps the application's,
        // the same clock on one machine (written in per row, the server's
        // clock expression would be evaluated for every row).
        let mut conn = self.pool.acquire().await?;
        let now = chrono::Utc::now().timestamp_millis();
        let inserted = insert_tasks(&mut conn, batch, now).await?;
        Ok(inserted.iter().map(|&(_, rows)| rows as u64).sum())
    }
}

/// One row of `batch` (its one payload), autocommitted, by a statement the
/// connection keeps prepared with every value bound: one round trip. (The
/// batch insert writes its shared values into its text, so a batch of one
/// would be prepared anew each time, two round trips.)
async fn insert_one(
    pool: &MySqlPool,
    batch: &TaskBatchParams,
    payload: Option<&str>,
) -> Result<u64> {
    let task = batch.task();
    let (_, at, delay) = task.next_run.as_args();
    let now = chrono::Utc::now().timestamp_millis();
    let done = sqlx::query(include_str!("queries/floor_task_insert_one.sql"))
        .bind(&task.name)
        .bind(task.kind.as_str())
        .bind(TaskStatus::Pending.as_str())
        .bind(i64::from(task.priority))
        .bind(payload)
        .bind(task.tag.as_deref())
        .bind(task.timeout_ms)
        .bind(task.max_attempts)
        .bind(task.retry_interval_ms)
        .bind(task.cron_expr.as_deref())
        .bind(now)
        .bind(at.unwrap_or_else(|| now.saturating_add(delay)))
        .bind(now)
        .bind(batch.created().event_type)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
