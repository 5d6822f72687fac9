//! Tracing spans for the benchmark floor's calls (see `traced`).

use async_trait::async_trait;

use super::floor::{FloorCompleteParams, FloorStore};
use super::params::TaskBatchParams;
use super::traced::Traced;
use crate::error::Result;

#[async_trait]
impl FloorStore for Traced {
    async fn floor_reset(&self) -> Result<()> {
        self.run("floor_reset", self.inner.floor_reset()).await
    }

    async fn floor_task_complete_many(&self, params: &FloorCompleteParams) -> Result<u64> {
        self.run(
            "floor_task_complete_many",
            self.inner.floor_task_complete_many(params),
        )
        .await
    }

    async fn floor_task_insert_many(&self, batch: &TaskBatchParams) -> Result<u64> {
        self.run(
            "floor_task_insert_many",
            self.inner.floor_task_insert_many(batch),
        )
        .await
    }
}
