//! PLACEHOLDER: the registry and leases on mysql (being written).

use async_trait::async_trait;

use super::MySqlStore;
use crate::error::{Error, Result};
use crate::store::workers::*;

fn missing() -> Error {
    Error::UnsupportedDatabase {
        url: String::new(),
        reason: "worker registry not written yet".into(),
    }
}

#[async_trait]
impl WorkerStore for MySqlStore {
    async fn lease_acquire(&self, _: &LeaseAcquireParams) -> Result<Option<LeaseRow>> {
        Err(missing())
    }
    async fn lease_get(&self, _: &str) -> Result<Option<LeaseRow>> {
        Err(missing())
    }
    async fn lease_release(&self, _: &LeaseReleaseParams) -> Result<bool> {
        Err(missing())
    }
    async fn task_list_orphaned(&self, _: &TaskListOrphanedParams) -> Result<Vec<OrphanedTask>> {
        Err(missing())
    }
    async fn worker_get(&self, _: &str) -> Result<Option<WorkerRow>> {
        Err(missing())
    }
    async fn worker_heartbeat(&self, _: &WorkerHeartbeatParams) -> Result<Option<WorkerRow>> {
        Err(missing())
    }
    async fn worker_list(&self, _: &WorkerListParams) -> Result<Vec<WorkerRow>> {
        Err(missing())
    }
    async fn worker_prune(&self, _: &WorkerPruneParams) -> Result<u64> {
        Err(missing())
    }
    async fn worker_reap(&self) -> Result<Vec<String>> {
        Err(missing())
    }
    async fn worker_register(&self, _: &WorkerRegisterParams) -> Result<WorkerRegistration> {
        Err(missing())
    }
    async fn worker_stop(&self, _: &str) -> Result<bool> {
        Err(missing())
    }
}
