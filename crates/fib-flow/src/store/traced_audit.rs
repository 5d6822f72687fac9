//! Tracing spans for the audit reads (see `traced`).

use async_trait::async_trait;

use super::audit::*;
use super::row::TaskRow;
use super::traced::Traced;
use crate::error::Result;

#[async_trait]
impl AuditStore for Traced {
    async fn event_list(&self, params: &EventListParams) -> Result<Vec<EventRow>> {
        self.run("event_list", self.inner.event_list(params)).await
    }

    async fn event_count(&self, params: &EventListParams) -> Result<i64> {
        self.run("event_count", self.inner.event_count(params))
            .await
    }

    async fn event_stats(&self, root_id: i64) -> Result<EventStatsRow> {
        self.run("event_stats", self.inner.event_stats(root_id))
            .await
    }

    async fn event_workers(&self, root_id: i64) -> Result<Vec<String>> {
        self.run("event_workers", self.inner.event_workers(root_id))
            .await
    }

    async fn attempt_list(&self, params: &AttemptListParams) -> Result<Vec<AttemptRow>> {
        self.run("attempt_list", self.inner.attempt_list(params))
            .await
    }

    async fn attempt_count(&self, params: &AttemptListParams) -> Result<i64> {
        self.run("attempt_count", self.inner.attempt_count(params))
            .await
    }

    async fn task_query(&self, params: &TaskQueryParams) -> Result<Vec<TaskRow>> {
        self.run("task_query", self.inner.task_query(params)).await
    }

    async fn task_query_count(&self, params: &TaskQueryParams) -> Result<i64> {
        self.run("task_query_count", self.inner.task_query_count(params))
            .await
    }

    async fn retention_delete_batch(&self, params: &RetentionParams) -> Result<RetentionBatch> {
        self.run(
            "retention_delete_batch",
            self.inner.retention_delete_batch(params),
        )
        .await
    }
}
