//! The audit reads and retention on PostgreSQL: bind, run, map. A
//! retention batch is one transaction that locks its roots with `SKIP
//! LOCKED` (concurrent batches take different workflows), timed by the
//! database clock.

use std::sync::LazyLock;

use async_trait::async_trait;

use super::PgStore;
use crate::audit::EventType;
use crate::error::Result;
use crate::store::audit::*;
use crate::store::row::TaskRow;

static EVENT_LIST: LazyLock<OrderedSql> =
    LazyLock::new(|| OrderedSql::new(include_str!("queries/event_list.sql")));
static ATTEMPT_LIST: LazyLock<OrderedSql> =
    LazyLock::new(|| OrderedSql::new(include_str!("queries/attempt_list.sql")));
static TASK_QUERY: LazyLock<OrderedSql> =
    LazyLock::new(|| OrderedSql::new(include_str!("queries/task_query.sql")));

#[async_trait]
impl AuditStore for PgStore {
    async fn event_list(&self, params: &EventListParams) -> Result<Vec<EventRow>> {
        let (task, root) = params.scope.as_args();
        Ok(sqlx::query_as(EVENT_LIST.get(params.slice.desc))
            .bind(task)
            .bind(root)
            .bind(params.parent_id)
            .bind(params.worker_id.as_deref())
            .bind(&params.event_types)
            .bind(params.attempt)
            .bind(params.stage)
            .bind(params.after_ms)
            .bind(params.before_ms)
            .bind(params.slice.limit)
            .bind(params.slice.offset)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn event_count(&self, params: &EventListParams) -> Result<i64> {
        let (task, root) = params.scope.as_args();
        Ok(sqlx::query_scalar(include_str!("queries/event_count.sql"))
            .bind(task)
            .bind(root)
            .bind(params.parent_id)
            .bind(params.worker_id.as_deref())
            .bind(&params.event_types)
            .bind(params.attempt)
            .bind(params.stage)
            .bind(params.after_ms)
            .bind(params.before_ms)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn event_stats(&self, root_id: i64) -> Result<EventStatsRow> {
        Ok(sqlx::query_as(include_str!("queries/event_stats.sql"))
            .bind(root_id)
            .bind(EventType::TaskCheckpoint.as_str())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn event_workers(&self, root_id: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar(include_str!("queries/event_workers.sql"))
                .bind(root_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn attempt_list(&self, params: &AttemptListParams) -> Result<Vec<AttemptRow>> {
        let (task, root) = params.scope.as_args();
        Ok(sqlx::query_as(ATTEMPT_LIST.get(params.slice.desc))
            .bind(task)
            .bind(root)
            .bind(params.worker_id.as_deref())
            .bind(params.outcome.as_deref())
            .bind(params.started_after_ms)
            .bind(params.started_before_ms)
            .bind(params.ended_after_ms)
            .bind(params.ended_before_ms)
            .bind(params.open_only)
            .bind(params.slice.limit)
            .bind(params.slice.offset)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn attempt_count(&self, params: &AttemptListParams) -> Result<i64> {
        let (task, root) = params.scope.as_args();
        Ok(
            sqlx::query_scalar(include_str!("queries/attempt_count.sql"))
                .bind(task)
                .bind(root)
                .bind(params.worker_id.as_deref())
                .bind(params.outcome.as_deref())
                .bind(params.started_after_ms)
                .bind(params.started_before_ms)
                .bind(params.ended_after_ms)
                .bind(params.ended_before_ms)
                .bind(params.open_only)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn task_query(&self, params: &TaskQueryParams) -> Result<Vec<TaskRow>> {
        Ok(sqlx::query_as(TASK_QUERY.get(params.slice.desc))
            .bind(params.tag.as_deref())
            .bind(params.status.as_deref())
            .bind(params.name.as_deref())
            .bind(params.worker_id.as_deref())
            .bind(params.parent_id)
            .bind(params.root_id)
            .bind(params.kind.as_deref())
            .bind(params.workflow)
            .bind(params.slice.limit)
            .bind(params.slice.offset)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn task_query_count(&self, params: &TaskQueryParams) -> Result<i64> {
        Ok(
            sqlx::query_scalar(include_str!("queries/task_query_count.sql"))
                .bind(params.tag.as_deref())
                .bind(params.status.as_deref())
                .bind(params.name.as_deref())
                .bind(params.worker_id.as_deref())
                .bind(params.parent_id)
                .bind(params.root_id)
                .bind(params.kind.as_deref())
                .bind(params.workflow)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn retention_delete_batch(&self, params: &RetentionParams) -> Result<RetentionBatch> {
        let mut tx = self.pool.begin().await?;
        let roots: Vec<i64> = sqlx::query_scalar(include_str!("queries/retention_select.sql"))
            .bind(&params.statuses)
            .bind(params.expire_after_ms)
            .bind(&params.unfinished)
            .bind(params.batch_size)
            .fetch_all(&mut *tx)
            .await?;
        if roots.is_empty() {
            tx.commit().await?;
            return Ok(RetentionBatch::default());
        }
        let events = sqlx::query(include_str!("queries/retention_delete_events.sql"))
            .bind(&roots)
            .execute(&mut *tx)
            .await?;
        let attempts = sqlx::query(include_str!("queries/retention_delete_attempts.sql"))
            .bind(&roots)
            .execute(&mut *tx)
            .await?;
        let tasks = sqlx::query(include_str!("queries/retention_delete_tasks.sql"))
            .bind(&roots)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RetentionBatch::from_counts(
            roots.len(),
            tasks.rows_affected(),
            events.rows_affected(),
            attempts.rows_affected(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::audit::OrderedSql;

    /// Every sort key of a listing carries the direction marker.
    #[test]
    fn listings_mark_their_sort_keys() {
        for sql in [
            include_str!("queries/event_list.sql"),
            include_str!("queries/attempt_list.sql"),
            include_str!("queries/task_query.sql"),
        ] {
            assert_eq!(sql.matches(OrderedSql::MARKER).count(), 2, "{sql}");
        }
    }
}
