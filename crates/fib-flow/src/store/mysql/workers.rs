//! The worker registry, orphaned tasks and leases on MySQL / MariaDB:
//! bind, run, map, timed by the database clock. Positional `?` parameters
//! are bound once per occurrence; text is read converted (see version 1 of
//! the schema). There is no `UPDATE … RETURNING`, so the writes that
//! report rows are short transactions that lock the rows first (`FOR
//! UPDATE`), change exactly those, and read them back, each stamped with
//! one time read at its start; `lease_acquire` is one such transaction
//! (insert-or-lock the row, then a guarded update), so concurrent callers
//! take turns on the row and at most one holds the lease. Each transaction
//! runs again when InnoDB picks it as a deadlock victim.

use async_trait::async_trait;
use sqlx::{MySql, Transaction};

use super::MySqlStore;
use crate::error::Result;
use crate::retry::retry_transient;
use crate::store::params::json_list;
use crate::store::workers::*;

/// The database clock, ms, read inside a transaction: every row it writes
/// carries this one time.
async fn tx_now(tx: &mut Transaction<'static, MySql>) -> Result<i64> {
    Ok(sqlx::query_scalar(include_str!("queries/now_ms.sql"))
        .fetch_one(&mut **tx)
        .await?)
}

impl MySqlStore {
    async fn try_lease_acquire(&self, params: &LeaseAcquireParams) -> Result<Option<LeaseRow>> {
        let mut tx = self.pool.begin().await?;
        let now = tx_now(&mut tx).await?;
        let expires_at = now.saturating_add(params.ttl_ms);
        sqlx::query(include_str!("queries/lease_acquire_ensure.sql"))
            .bind(&params.name)
            .bind(&params.holder)
            .bind(now)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("queries/lease_acquire_update.sql"))
            .bind(&params.holder)
            .bind(now)
            .bind(now)
            .bind(expires_at)
            .bind(&params.holder)
            .bind(&params.name)
            .bind(&params.holder)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let lease = sqlx::query_as(include_str!("queries/lease_acquire_select.sql"))
            .bind(&params.name)
            .bind(&params.holder)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(lease)
    }

    async fn try_worker_heartbeat(
        &self,
        params: &WorkerHeartbeatParams,
    ) -> Result<Option<WorkerRow>> {
        let mut tx = self.pool.begin().await?;
        let now = tx_now(&mut tx).await?;
        sqlx::query(include_str!("queries/worker_heartbeat.sql"))
            .bind(now)
            .bind(now.saturating_add(params.ttl_ms))
            .bind(&params.worker_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(&params.worker_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn try_worker_reap(&self) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let now = tx_now(&mut tx).await?;
        let reaped: Vec<String> =
            sqlx::query_scalar(include_str!("queries/worker_reap_select.sql"))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
        if !reaped.is_empty() {
            sqlx::query(include_str!("queries/worker_reap_update.sql"))
                .bind(json_list(&reaped))
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(reaped)
    }

    async fn try_worker_register(
        &self,
        params: &WorkerRegisterParams,
    ) -> Result<WorkerRegistration> {
        let mut tx = self.pool.begin().await?;
        let now = tx_now(&mut tx).await?;
        sqlx::query(include_str!("queries/worker_register_delete.sql"))
            .bind(&params.worker_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("queries/worker_register_insert.sql"))
            .bind(&params.worker_id)
            .bind(&params.pod_id)
            .bind(now)
            .bind(now)
            .bind(now.saturating_add(params.ttl_ms))
            .bind(params.meta.as_deref())
            .execute(&mut *tx)
            .await?;
        let superseded: Vec<String> =
            sqlx::query_scalar(include_str!("queries/worker_register_select.sql"))
                .bind(&params.pod_id)
                .bind(&params.worker_id)
                .fetch_all(&mut *tx)
                .await?;
        if !superseded.is_empty() {
            sqlx::query(include_str!("queries/worker_register_supersede.sql"))
                .bind(json_list(&superseded))
                .bind(now)
                .bind(&params.worker_id)
                .execute(&mut *tx)
                .await?;
        }
        let worker = sqlx::query_as(include_str!("queries/worker_get.sql"))
            .bind(&params.worker_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(WorkerRegistration { worker, superseded })
    }
}

#[async_trait]
impl WorkerStore for MySqlStore {
    async fn lease_acquire(&self, params: &LeaseAcquireParams) -> Result<Option<LeaseRow>> {
        retry_transient(|| self.try_lease_acquire(params)).await
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
        retry_transient(|| self.try_worker_heartbeat(params)).await
    }

    async fn worker_list(&self, params: &WorkerListParams) -> Result<Vec<WorkerRow>> {
        let pod = params.pod_id.as_deref();
        let status = params.status.as_deref();
        Ok(sqlx::query_as(include_str!("queries/worker_list.sql"))
            .bind(pod)
            .bind(pod)
            .bind(status)
            .bind(status)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn worker_prune(&self, params: &WorkerPruneParams) -> Result<u64> {
        let done = retry_transient(|| async {
            Ok(sqlx::query(include_str!("queries/worker_prune.sql"))
                .bind(params.older_than_ms)
                .bind(params.limit)
                .execute(&self.pool)
                .await?)
        })
        .await?;
        Ok(done.rows_affected())
    }

    async fn worker_reap(&self) -> Result<Vec<String>> {
        retry_transient(|| self.try_worker_reap()).await
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
