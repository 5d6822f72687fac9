//! The one place where store calls get a tracing span: a facade over any
//! backend (as Oban's `Engine.with_span`).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;
use tracing::Instrument;

use super::audit::{AuditRows, NewEvent};
use super::params::*;
use super::row::*;
use super::{Store, StoreCaps, StoreTx};
use crate::error::Result;

/// Wraps a backend so every call runs in a `store` span naming the
/// operation and the backend, and failures are logged at debug level.
pub(crate) struct Traced {
    pub(super) inner: Arc<dyn Store>,
    backend: &'static str,
}

impl Traced {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        let backend = inner.caps().backend;
        Traced { inner, backend }
    }

    pub(super) async fn run<T>(
        &self,
        op: &'static str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        traced(op, self.backend, call).await
    }
}

/// Runs one store call in its span; failures are logged at debug level.
async fn traced<T>(
    op: &'static str,
    backend: &'static str,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::debug_span!("store", op, backend);
    let result = call.instrument(span.clone()).await;
    if let Err(error) = &result {
        span.in_scope(|| tracing::debug!(%error, "store call failed"));
    }
    result
}

#[async_trait]
impl Store for Traced {
    fn caps(&self) -> StoreCaps {
        self.inner.caps()
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        let inner = self.run("begin", self.inner.begin()).await?;
        Ok(Box::new(TracedTx {
            inner,
            backend: self.backend,
        }))
    }

    async fn close(&self) {
        self.inner.close().await
    }

    async fn listen(&self, wake: Arc<Notify>) -> Result<bool> {
        self.run("listen", self.inner.listen(wake)).await
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        self.run("migrate", self.inner.migrate()).await
    }

    async fn migration_versions(&self) -> Result<Vec<i64>> {
        self.run("migration_versions", self.inner.migration_versions())
            .await
    }

    async fn now_ms(&self) -> Result<i64> {
        self.run("now_ms", self.inner.now_ms()).await
    }

    async fn vacuum_if_needed(&self) -> Result<Vec<String>> {
        self.run("vacuum_if_needed", self.inner.vacuum_if_needed())
            .await
    }

    async fn task_cron_get(&self, id: i64) -> Result<Option<CronRow>> {
        self.run("task_cron_get", self.inner.task_cron_get(id))
            .await
    }

    async fn task_cron_update(&self, params: &CronUpdateParams) -> Result<bool> {
        self.run("task_cron_update", self.inner.task_cron_update(params))
            .await
    }

    async fn task_cron_upsert(&self, params: &CronUpsertParams) -> Result<i64> {
        self.run("task_cron_upsert", self.inner.task_cron_upsert(params))
            .await
    }

    async fn task_delete(&self, id: i64) -> Result<bool> {
        self.run("task_delete", self.inner.task_delete(id)).await
    }

    async fn task_claim_many(&self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        self.run("task_claim_many", self.inner.task_claim_many(params))
            .await
    }

    async fn task_delete_many(&self, params: &TaskListParams) -> Result<u64> {
        self.run("task_delete_many", self.inner.task_delete_many(params))
            .await
    }

    async fn task_get(&self, id: i64) -> Result<Option<TaskRow>> {
        self.run("task_get", self.inner.task_get(id)).await
    }

    async fn task_heartbeat(&self, params: &TaskHeartbeatParams) -> Result<Vec<TaskLease>> {
        self.run("task_heartbeat", self.inner.task_heartbeat(params))
            .await
    }

    async fn task_insert(&self, params: &TaskInsertParams) -> Result<i64> {
        self.run("task_insert", self.inner.task_insert(params))
            .await
    }

    async fn task_submit(&self, params: &TaskInsertParams, created: &NewEvent) -> Result<i64> {
        self.run("task_submit", self.inner.task_submit(params, created))
            .await
    }

    async fn task_submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>> {
        self.run("task_submit_many", self.inner.task_submit_many(batch))
            .await
    }

    async fn task_list(&self, params: &TaskListParams) -> Result<Vec<TaskRow>> {
        self.run("task_list", self.inner.task_list(params)).await
    }

    async fn task_list_expired(&self, params: &TaskListExpiredParams) -> Result<Vec<ExpiredTask>> {
        self.run("task_list_expired", self.inner.task_list_expired(params))
            .await
    }

    async fn task_context(&self, id: i64) -> Result<Option<Vec<u8>>> {
        self.run("task_context", self.inner.task_context(id)).await
    }

    async fn task_list_children(&self, params: &TaskListChildrenParams) -> Result<Vec<ChildRow>> {
        self.run("task_list_children", self.inner.task_list_children(params))
            .await
    }

    async fn task_stats(&self, params: &TaskStatsParams) -> Result<Vec<TaskStatsRow>> {
        self.run("task_stats", self.inner.task_stats(params)).await
    }
}

/// A transaction whose calls run in `store` spans too.
struct TracedTx {
    inner: Box<dyn StoreTx>,
    backend: &'static str,
}

#[async_trait]
impl StoreTx for TracedTx {
    async fn audit_write(&mut self, rows: &AuditRows) -> Result<()> {
        traced("audit_write", self.backend, self.inner.audit_write(rows)).await
    }

    async fn task_claim_many(&mut self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        traced(
            "task_claim_many",
            self.backend,
            self.inner.task_claim_many(params),
        )
        .await
    }

    async fn task_stamp_created(&mut self, id: i64) -> Result<bool> {
        traced(
            "task_stamp_created",
            self.backend,
            self.inner.task_stamp_created(id),
        )
        .await
    }

    async fn task_touch(&mut self, params: &TaskTouchParams) -> Result<Option<TouchedTask>> {
        traced("task_touch", self.backend, self.inner.task_touch(params)).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let backend = self.backend;
        traced("commit", backend, self.inner.commit()).await
    }

    async fn task_child_finished(
        &mut self,
        params: &TaskChildFinishedParams,
    ) -> Result<Option<WaitingParent>> {
        let backend = self.backend;
        traced(
            "task_child_finished",
            backend,
            self.inner.task_child_finished(params),
        )
        .await
    }

    async fn task_insert(&mut self, params: &TaskInsertParams) -> Result<i64> {
        let backend = self.backend;
        traced("task_insert", backend, self.inner.task_insert(params)).await
    }

    async fn task_list_unfinished_children(
        &mut self,
        params: &TaskCancelChildrenParams,
    ) -> Result<Vec<i64>> {
        let backend = self.backend;
        traced(
            "task_list_unfinished_children",
            backend,
            self.inner.task_list_unfinished_children(params),
        )
        .await
    }

    async fn task_mark_parent_notified(&mut self, id: i64) -> Result<bool> {
        let backend = self.backend;
        traced(
            "task_mark_parent_notified",
            backend,
            self.inner.task_mark_parent_notified(id),
        )
        .await
    }

    async fn task_set_status(&mut self, params: &TaskSetStatusParams) -> Result<Option<TaskRef>> {
        let backend = self.backend;
        traced(
            "task_set_status",
            backend,
            self.inner.task_set_status(params),
        )
        .await
    }

    async fn task_set_status_many(
        &mut self,
        changes: &[TaskSetStatusParams],
    ) -> Result<Vec<Option<TaskRef>>> {
        let backend = self.backend;
        traced(
            "task_set_status_many",
            backend,
            self.inner.task_set_status_many(changes),
        )
        .await
    }
}
