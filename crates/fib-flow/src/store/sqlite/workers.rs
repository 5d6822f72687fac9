//! The worker registry, orphaned tasks and leases on SQLite: bind, run,
//! map. Reads use the read pool; writes go through the single writer
//! (a multi-statement write is one `BEGIN IMMEDIATE` transaction), timed by
//! this process's clock (SQLite's clock). The single writer also makes
//! `lease_acquire`'s upsert atomic against other callers.

use async_trait::async_trait;

use super::{now_ms, SqliteStore};
use crate::error::Result;
use crate::store::workers::*;

#[async_trait]
impl WorkerStore for SqliteStore {
    async fn lease_acquire(&self, params: &LeaseAcquireParams) -> Result<Option<LeaseRow>> {
        Ok(sqlx::query_as(include_str!("queries/lease_acquire.sql"))
            .bind(&params.name)
            .bind(&params.holder)
            .bind(now_ms())
            .bind(params.ttl_ms)
            .fetch_optional(&self.writer)
            .await?)
    }

    async fn lease_get(&self, name: &str) -> Result<Option<LeaseRow>> {
        Ok(sqlx::query_as(include_str!("queries/lease_get.sql"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn lease_release(&self, params: &LeaseReleaseParams) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/lease_release.sql"))
            .bind(&params.name)
            .bind(&params.holder)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_list_orphaned(
        &self,
        params: &TaskListOrphanedParams,
    ) -> Result<Vec<OrphanedTask>> {
        Ok(
            sqlx::query_as(include_str!("queries/task_list_orphaned.sql"))
                .bind(params.limit)
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn worker_get(&self, worker_id: &str) -> Result<Option<WorkerRow>> {
        Ok(sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(worker_id)
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn worker_heartbeat(&self, params: &WorkerHeartbeatParams) -> Result<Option<WorkerRow>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(include_str!("queries/worker_heartbeat.sql"))
            .bind(&params.worker_id)
            .bind(now_ms())
            .bind(params.ttl_ms)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(&params.worker_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn worker_list(&self, params: &WorkerListParams) -> Result<Vec<WorkerRow>> {
        Ok(sqlx::query_as(include_str!("queries/worker_list.sql"))
            .bind(params.pod_id.as_deref())
            .bind(params.status.as_deref())
            .fetch_all(&self.reader)
            .await?)
    }

    async fn worker_prune(&self, params: &WorkerPruneParams) -> Result<u64> {
        let done = sqlx::query(include_str!("queries/worker_prune.sql"))
            .bind(now_ms())
            .bind(params.older_than_ms)
            .bind(params.limit)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn worker_reap(&self) -> Result<Vec<String>> {
        let mut reaped: Vec<String> = sqlx::query_scalar(include_str!("queries/worker_reap.sql"))
            .bind(now_ms())
            .fetch_all(&self.writer)
            .await?;
        reaped.sort();
        Ok(reaped)
    }

    async fn worker_register(&self, params: &WorkerRegisterParams) -> Result<WorkerRegistration> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(include_str!("queries/worker_register_delete.sql"))
            .bind(&params.worker_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("queries/worker_register_insert.sql"))
            .bind(&params.worker_id)
            .bind(&params.pod_id)
            .bind(now)
            .bind(params.ttl_ms)
            .bind(params.meta.as_deref())
            .execute(&mut *tx)
            .await?;
        let mut superseded: Vec<String> =
            sqlx::query_scalar(include_str!("queries/worker_register_supersede.sql"))
                .bind(&params.pod_id)
                .bind(&params.worker_id)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
        let worker = sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(&params.worker_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        superseded.sort();
        Ok(WorkerRegistration { worker, superseded })
    }

    async fn worker_stop(&self, worker_id: &str) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/worker_stop.sql"))
            .bind(worker_id)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
