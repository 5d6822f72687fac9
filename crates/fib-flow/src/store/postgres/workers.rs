//! The worker registry, orphaned tasks and leases on PostgreSQL: bind,
//! run, map, timed by the database clock. Each method is one statement
//! (`lease_acquire` an `INSERT … ON CONFLICT DO UPDATE … WHERE`, atomic
//! against concurrent callers) except `worker_register`, one transaction
//! that holds a per-pod advisory lock so registrations of a pod take turns
//! (and runs again when rolled back to break a deadlock).

use async_trait::async_trait;

use super::PgStore;
use crate::error::Result;
use crate::retry::retry_transient;
use crate::store::workers::*;

#[async_trait]
impl WorkerStore for PgStore {
    async fn lease_acquire(&self, params: &LeaseAcquireParams) -> Result<Option<LeaseRow>> {
        Ok(sqlx::query_as(include_str!("queries/lease_acquire.sql"))
            .bind(&params.name)
            .bind(&params.holder)
            .bind(params.ttl_ms)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn lease_get(&self, name: &str) -> Result<Option<LeaseRow>> {
        Ok(sqlx::query_as(include_str!("queries/lease_get.sql"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn lease_release(&self, params: &LeaseReleaseParams) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/lease_release.sql"))
            .bind(&params.name)
            .bind(&params.holder)
            .execute(&self.pool)
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
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn worker_get(&self, worker_id: &str) -> Result<Option<WorkerRow>> {
        Ok(sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(worker_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn worker_heartbeat(&self, params: &WorkerHeartbeatParams) -> Result<Option<WorkerRow>> {
        Ok(sqlx::query_as(include_str!("queries/worker_heartbeat.sql"))
            .bind(&params.worker_id)
            .bind(params.ttl_ms)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn worker_list(&self, params: &WorkerListParams) -> Result<Vec<WorkerRow>> {
        Ok(sqlx::query_as(include_str!("queries/worker_list.sql"))
            .bind(params.pod_id.as_deref())
            .bind(params.status.as_deref())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn worker_prune(&self, params: &WorkerPruneParams) -> Result<u64> {
        let done = sqlx::query(include_str!("queries/worker_prune.sql"))
            .bind(params.older_than_ms)
            .bind(params.limit)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn worker_reap(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(include_str!("queries/worker_reap.sql"))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn worker_register(&self, params: &WorkerRegisterParams) -> Result<WorkerRegistration> {
        retry_transient(|| self.try_worker_register(params)).await
    }

    async fn worker_stop(&self, worker_id: &str) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/worker_stop.sql"))
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl PgStore {
    /// One try of `worker_register`: run again whole when the database
    /// rolled it back to break a deadlock (a reap locking the same rows in
    /// another order).
    async fn try_worker_register(
        &self,
        params: &WorkerRegisterParams,
    ) -> Result<WorkerRegistration> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(include_str!("queries/worker_register_lock.sql"))
            .bind(&params.pod_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("queries/worker_register_delete.sql"))
            .bind(&params.worker_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("queries/worker_register_insert.sql"))
            .bind(&params.worker_id)
            .bind(&params.pod_id)
            .bind(params.ttl_ms)
            .bind(params.meta.as_deref())
            .execute(&mut *tx)
            .await?;
        let superseded = sqlx::query_scalar(include_str!("queries/worker_register_supersede.sql"))
            .bind(&params.pod_id)
            .bind(&params.worker_id)
            .fetch_all(&mut *tx)
            .await?;
        let worker = sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(&params.worker_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(WorkerRegistration { worker, superseded })
    }
}
