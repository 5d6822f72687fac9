//! Tracing spans for the registry and lease calls (see `traced`).

use async_trait::async_trait;

use super::traced::Traced;
use super::workers::*;
use crate::error::Result;

#[async_trait]
impl WorkerStore for Traced {
    async fn lease_acquire(&self, params: &LeaseAcquireParams) -> Result<Option<LeaseRow>> {
        self.run("lease_acquire", self.inner.lease_acquire(params))
            .await
    }

    async fn lease_get(&self, name: &str) -> Result<Option<LeaseRow>> {
        self.run("lease_get", self.inner.lease_get(name)).await
    }

    async fn lease_release(&self, params: &LeaseReleaseParams) -> Result<bool> {
        self.run("lease_release", self.inner.lease_release(params))
            .await
    }

    async fn task_list_orphaned(
        &self,
        params: &TaskListOrphanedParams,
    ) -> Result<Vec<OrphanedTask>> {
        self.run("task_list_orphaned", self.inner.task_list_orphaned(params))
            .await
    }

    async fn worker_get(&self, worker_id: &str) -> Result<Option<WorkerRow>> {
        self.run("worker_get", self.inner.worker_get(worker_id))
            .await
    }

    async fn worker_heartbeat(&self, params: &WorkerHeartbeatParams) -> Result<Option<WorkerRow>> {
        self.run("worker_heartbeat", self.inner.worker_heartbeat(params))
            .await
    }

    async fn worker_list(&self, params: &WorkerListParams) -> Result<Vec<WorkerRow>> {
        self.run("worker_list", self.inner.worker_list(params))
            .await
    }

    async fn worker_prune(&self, params: &WorkerPruneParams) -> Result<u64> {
        self.run("worker_prune", self.inner.worker_prune(params))
            .await
    }

    async fn worker_reap(&self) -> Result<Vec<String>> {
        self.run("worker_reap", self.inner.worker_reap()).await
    }

    async fn worker_register(&self, params: &WorkerRegisterParams) -> Result<WorkerRegistration> {
        self.run("worker_register", self.inner.worker_register(params))
            .await
    }

    async fn worker_stop(&self, worker_id: &str) -> Result<bool> {
        self.run("worker_stop", self.inner.worker_stop(worker_id))
            .await
    }
}
