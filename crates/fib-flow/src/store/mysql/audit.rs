//! The audit reads and retention on MySQL / MariaDB: bind, run, map.
//! Positional `?` parameters are bound once per occurrence. Filters compare
//! the tables' binary columns; text is read converted (the events and
//! attempts tables are `utf8mb4_bin` like the tasks table). A retention
//! batch is one transaction that locks its roots with `SKIP LOCKED`, timed
//! by the database clock, and runs again when InnoDB picks it as a
//! deadlock victim.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::mysql::MySqlArguments;
use sqlx::MySqlConnection;

use super::MySqlStore;
use crate::audit::EventType;
use crate::error::Result;
use crate::retry::retry_transient;
use crate::store::audit::*;
use crate::store::params::json_list;
use crate::store::row::TaskRow;

static EVENT_LIST: LazyLock<OrderedSql> =
    LazyLock::new(|| OrderedSql::new(include_str!("queries/event_list.sql")));
static ATTEMPT_LIST: LazyLock<OrderedSql> =
    LazyLock::new(|| OrderedSql::new(include_str!("queries/attempt_list.sql")));
static TASK_QUERY: LazyLock<OrderedSql> =
    LazyLock::new(|| OrderedSql::new(include_str!("queries/task_query.sql")));

/// MySQL has no "no limit": the largest value stands in for it.
fn limit(slice: &Slice) -> i64 {
    slice.limit.unwrap_or(i64::MAX)
}

/// Binds the filters shared by `event_list.sql` and `event_count.sql`.
fn bind_event_filters<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::MySql, O, MySqlArguments>,
    p: &'q EventListParams,
    types: &'q str,
) -> sqlx::query::QueryAs<'q, sqlx::MySql, O, MySqlArguments> {
    let (task, root) = p.scope.as_args();
    query
        .bind(task)
        .bind(root)
        .bind(p.parent_id)
        .bind(p.parent_id)
        .bind(p.worker_id.as_deref())
        .bind(p.worker_id.as_deref())
        .bind(types)
        .bind(types)
        .bind(p.attempt)
        .bind(p.attempt)
        .bind(p.stage)
        .bind(p.stage)
        .bind(p.after_ms)
        .bind(p.after_ms)
        .bind(p.before_ms)
        .bind(p.before_ms)
}

/// Binds the filters shared by `attempt_list.sql` and `attempt_count.sql`.
fn bind_attempt_filters<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::MySql, O, MySqlArguments>,
    p: &'q AttemptListParams,
) -> sqlx::query::QueryAs<'q, sqlx::MySql, O, MySqlArguments> {
    let (task, root) = p.scope.as_args();
    query
        .bind(task)
        .bind(root)
        .bind(root)
        .bind(p.worker_id.as_deref())
        .bind(p.worker_id.as_deref())
        .bind(p.outcome.as_deref())
        .bind(p.outcome.as_deref())
        .bind(p.started_after_ms)
        .bind(p.started_after_ms)
        .bind(p.started_before_ms)
        .bind(p.started_before_ms)
        .bind(p.ended_after_ms)
        .bind(p.ended_after_ms)
        .bind(p.ended_before_ms)
        .bind(p.ended_before_ms)
        .bind(p.open_only)
}

/// Binds the filters shared by `task_query.sql` and `task_query_count.sql`.
fn bind_task_filters<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::MySql, O, MySqlArguments>,
    p: &'q TaskQueryParams,
) -> sqlx::query::QueryAs<'q, sqlx::MySql, O, MySqlArguments> {
    query
        .bind(p.tag.as_deref())
        .bind(p.tag.as_deref())
        .bind(p.status.as_deref())
        .bind(p.status.as_deref())
        .bind(p.name.as_deref())
        .bind(p.name.as_deref())
        .bind(p.worker_id.as_deref())
        .bind(p.worker_id.as_deref())
        .bind(p.parent_id)
        .bind(p.parent_id)
        .bind(p.root_id)
        .bind(p.root_id)
        .bind(p.kind.as_deref())
        .bind(p.kind.as_deref())
        .bind(p.workflow)
        .bind(p.workflow)
        .bind(p.workflow)
}

impl MySqlStore {
    async fn try_retention_delete_batch(&self, params: &RetentionParams) -> Result<RetentionBatch> {
        let mut tx = self.pool.begin().await?;
        let roots: Vec<i64> = sqlx::query_scalar(include_str!("queries/retention_select.sql"))
            .bind(json_list(&params.statuses))
            .bind(params.expire_after_ms)
            .bind(json_list(&params.unfinished))
            .bind(params.batch_size)
            .fetch_all(&mut *tx)
            .await?;
        if roots.is_empty() {
            tx.commit().await?;
            return Ok(RetentionBatch::default());
        }
        let roots_json = json_list(&roots);
        let tasks: Vec<i64> = sqlx::query_scalar(include_str!("queries/retention_tasks.sql"))
            .bind(&roots_json)
            .bind(&roots_json)
            .fetch_all(&mut *tx)
            .await?;
        let tasks_json = json_list(&tasks);
        let events = delete(
            &mut tx,
            include_str!("queries/retention_delete_events.sql"),
            &roots_json,
        )
        .await?;
        let stray_events = delete(
            &mut tx,
            include_str!("queries/retention_delete_task_events.sql"),
            &tasks_json,
        )
        .await?;
        let attempts = delete(
            &mut tx,
            include_str!("queries/retention_delete_attempts.sql"),
            &tasks_json,
        )
        .await?;
        let children = delete(
            &mut tx,
            include_str!("queries/retention_delete_children.sql"),
            &roots_json,
        )
        .await?;
        let roots_deleted = delete(
            &mut tx,
            include_str!("queries/retention_delete_roots.sql"),
            &roots_json,
        )
        .await?;
        tx.commit().await?;
        Ok(RetentionBatch::from_counts(
            roots.len(),
            children + roots_deleted,
            events + stray_events,
            attempts,
        ))
    }
}

/// Runs one retention delete whose only parameter is a JSON array of ids;
/// returns how many rows it deleted.
async fn delete(conn: &mut MySqlConnection, sql: &'static str, ids: &str) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(ids)
        .execute(conn)
        .await?
        .rows_affected())
}

#[async_trait]
impl AuditStore for MySqlStore {
    async fn event_list(&self, params: &EventListParams) -> Result<Vec<EventRow>> {
        let types = json_list(&params.event_types);
        Ok(bind_event_filters(
            sqlx::query_as(EVENT_LIST.get(params.slice.desc)),
            params,
            &types,
        )
        .bind(limit(&params.slice))
        .bind(params.slice.offset)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn event_count(&self, params: &EventListParams) -> Result<i64> {
        let types = json_list(&params.event_types);
        let (count,): (i64,) = bind_event_filters(
            sqlx::query_as(include_str!("queries/event_count.sql")),
            params,
            &types,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    async fn event_stats(&self, root_id: i64) -> Result<EventStatsRow> {
        Ok(sqlx::query_as(include_str!("queries/event_stats.sql"))
            .bind(EventType::TaskCheckpoint.as_str())
            .bind(root_id)
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
        Ok(
            bind_attempt_filters(sqlx::query_as(ATTEMPT_LIST.get(params.slice.desc)), params)
                .bind(limit(&params.slice))
                .bind(params.slice.offset)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn attempt_count(&self, params: &AttemptListParams) -> Result<i64> {
        let (count,): (i64,) = bind_attempt_filters(
            sqlx::query_as(include_str!("queries/attempt_count.sql")),
            params,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    async fn task_query(&self, params: &TaskQueryParams) -> Result<Vec<TaskRow>> {
        Ok(
            bind_task_filters(sqlx::query_as(TASK_QUERY.get(params.slice.desc)), params)
                .bind(limit(&params.slice))
                .bind(params.slice.offset)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn task_query_count(&self, params: &TaskQueryParams) -> Result<i64> {
        let (count,): (i64,) = bind_task_filters(
            sqlx::query_as(include_str!("queries/task_query_count.sql")),
            params,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    async fn retention_delete_batch(&self, params: &RetentionParams) -> Result<RetentionBatch> {
        retry_transient(|| self.try_retention_delete_batch(params)).await
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
