//! The PostgreSQL backend: bind, run, map. No decisions here.
//!
//! Claims are one `UPDATE … FROM (… FOR UPDATE SKIP LOCKED)` statement;
//! times come from the database clock; inserts notify idle workers of other
//! processes through a statement trigger (`LISTEN/NOTIFY`, see `listen.rs`).
//! With a `schema` option the schema is created when missing and every
//! connection's `search_path` points at it.

use std::cmp::Reverse;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool};
use sqlx::{Connection, Executor, PgConnection, Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::audit::{AuditRows, NewEvent};
use super::migrate::{self, POSTGRES as MIGRATIONS};
use super::params::*;
use super::pool::network_pool;
use super::row::*;
use super::{redact, Store, StoreCaps, StoreTx};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::task::TaskId;

mod audit;
mod floor;
mod listen;
mod status_changes;
mod submit;
mod workers;

/// The PostgreSQL [`Store`].
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The `LISTEN/NOTIFY` channel of this schema.
    channel: String,
    /// Stops the listener on close.
    closing: CancellationToken,
}

impl PgStore {
    /// Connects (creating the configured schema when missing).
    pub async fn connect(config: &Config) -> Result<Self> {
        let url = config.database_url.trim();
        let mut options =
            PgConnectOptions::from_str(url).map_err(|e| Error::UnsupportedDatabase {
                url: redact(url),
                reason: format!("not a valid PostgreSQL URL: {e}"),
            })?;
        if let Some(schema) = &config.schema {
            let mut conn = PgConnection::connect_with(&options).await?;
            // `schema` is validated as [a-z_][a-z0-9_]* by Config::validate.
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
                .await?;
            conn.close().await?;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = network_pool().connect_with(options).await?;
        let schema: Option<String> = sqlx::query_scalar(include_str!("queries/current_schema.sql"))
            .fetch_one(&pool)
            .await?;
        let schema = schema.ok_or_else(|| {
            Error::config(
                "schema",
                "the connection has no current schema (empty search_path)",
            )
        })?;
        Ok(PgStore {
            pool,
            channel: format!("fib_flow_{schema}"),
            closing: CancellationToken::new(),
        })
    }
}

fn status_names(statuses: &[TaskStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

#[async_trait]
impl Store for PgStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        Ok(Box::new(PgTx {
            tx: self.pool.begin().await?,
            channel: self.channel.clone(),
            wake: false,
        }))
    }

    fn caps(&self) -> StoreCaps {
        StoreCaps {
            backend: "postgres",
            listen_notify: true,
            skip_locked: true,
            single_writer: false,
        }
    }

    async fn close(&self) {
        self.closing.cancel();
        self.pool.close().await;
    }

    async fn listen(&self, wake: Arc<Notify>) -> Result<bool> {
        listen::spawn(
            self.pool.clone(),
            self.channel.clone(),
            wake,
            self.closing.child_token(),
        );
        Ok(true)
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(include_str!("queries/migrations_lock.sql"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("queries/migrations_create.sql"))
            .execute(&mut *tx)
            .await?;
        let applied: Vec<i64> =
            sqlx::query_scalar(include_str!("../sqlite/queries/migrations_list.sql"))
                .fetch_all(&mut *tx)
                .await?;
        let mut done = Vec::new();
        for migration in migrate::pending(MIGRATIONS, &applied)? {
            let failed = |source| Error::Migration {
                version: migration.version,
                name: migration.name,
                source,
            };
            // A plain string runs through the simple query protocol, which
            // accepts the file's several statements.
            (&mut *tx).execute(migration.sql).await.map_err(failed)?;
            sqlx::query(include_str!("queries/migrations_insert.sql"))
                .bind(migration.version)
                .bind(migration.name)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            done.push(migration.version);
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn migration_versions(&self) -> Result<Vec<i64>> {
        sqlx::query(include_str!("queries/migrations_create.sql"))
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar(include_str!("../sqlite/queries/migrations_list.sql"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn now_ms(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(include_str!("queries/now_ms.sql"))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn vacuum_if_needed(&self) -> Result<Vec<String>> {
        let due: Vec<(String, bool, bool)> =
            sqlx::query_as(include_str!("queries/vacuum_candidates.sql"))
                .bind(VACUUMED_TABLES)
                .bind(VACUUM_MIN_ROWS)
                .bind(VACUUM_DEAD_FRACTION)
                .bind(ANALYZE_CHANGED_FRACTION)
                .fetch_all(&self.pool)
                .await?;
        let mut done = Vec::with_capacity(due.len());
        for (table, vacuum, analyze) in due {
            // Only names from the fixed list above reach the statement.
            let Some(&known) = VACUUMED_TABLES.iter().find(|&&t| t == table) else {
                continue;
            };
            let command = match (vacuum, analyze) {
                (true, true) => format!("VACUUM (ANALYZE) {known}"),
                (true, false) => format!("VACUUM {known}"),
                (false, true) => format!("ANALYZE {known}"),
                (false, false) => continue,
            };
            // VACUUM cannot run in a transaction: the simple protocol,
            // one statement on its own.
            sqlx::raw_sql(&command).execute(&self.pool).await?;
            done.push(command);
        }
        Ok(done)
    }

    async fn task_cron_get(&self, id: i64) -> Result<Option<CronRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_cron_get.sql"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn task_cron_update(&self, params: &CronUpdateParams) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_cron_update.sql"))
            .bind(params.id)
            .bind(params.cron_expr.as_deref())
            .bind(params.cron_tz.as_deref())
            .bind(params.cron_misfire.as_deref())
            .bind(params.payload.clone().flatten())
            .bind(params.next_run_at)
            .bind(status_names(&params.rearm_from))
            .bind(params.payload.is_some())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_cron_upsert(&self, params: &CronUpsertParams) -> Result<i64> {
        let task = &params.task;
        let (_, at, _) = task.next_run.as_args();
        Ok(
            sqlx::query_scalar(include_str!("queries/task_cron_upsert.sql"))
                .bind(&task.name)
                .bind(task.kind.as_str())
                .bind(TaskStatus::Pending.as_str())
                .bind(i64::from(task.priority))
                .bind(task.payload.as_deref())
                .bind(task.tag.as_deref())
                .bind(task.timeout_ms)
                .bind(task.max_attempts)
                .bind(task.retry_interval_ms)
                .bind(task.cron_expr.as_deref())
                .bind(&params.cron_tz)
                .bind(&params.cron_misfire)
                .bind(params.unique_key.as_deref())
                .bind(at)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn task_delete(&self, id: i64) -> Result<bool> {
        let deleted: i64 = sqlx::query_scalar(include_str!("queries/task_delete.sql"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(deleted == 1)
    }

    async fn task_claim_many(&self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        claim_many(&mut *self.pool.acquire().await?, params).await
    }

    async fn task_delete_many(&self, params: &TaskListParams) -> Result<u64> {
        let filter = &params.filter;
        let deleted: i64 = sqlx::query_scalar(include_str!("queries/task_delete_many.sql"))
            .bind(filter.tag.as_deref())
            .bind(filter.status.map(TaskStatus::as_str))
            .bind(filter.name.as_deref())
            .bind(filter.parent_id.map(TaskId::get))
            .bind(filter.workflow.map(TaskId::get))
            .bind(filter.suspend_reason.as_deref())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn task_get(&self, id: i64) -> Result<Option<TaskRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_get.sql"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn task_heartbeat(&self, params: &TaskHeartbeatParams) -> Result<Vec<TaskLease>> {
        if params.ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(include_str!("queries/task_heartbeat.sql"))
            .bind(&params.worker_id)
            .bind(&params.ids)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn task_insert(&self, params: &TaskInsertParams) -> Result<i64> {
        Ok(
            insert_query(include_str!("queries/task_insert.sql"), params)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn task_submit(&self, params: &TaskInsertParams, created: &NewEvent) -> Result<i64> {
        Ok(
            insert_query(include_str!("queries/task_submit.sql"), params)
                .bind(created.event_type)
                .bind(created.to_status.as_deref())
                .bind(created.stage)
                .bind(created.message.as_deref())
                .bind(created.metadata.as_deref())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn task_submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>> {
        self.submit_many(batch).await
    }

    async fn task_list(&self, params: &TaskListParams) -> Result<Vec<TaskRow>> {
        let filter = &params.filter;
        Ok(sqlx::query_as(include_str!("queries/task_list.sql"))
            .bind(filter.tag.as_deref())
            .bind(filter.status.map(TaskStatus::as_str))
            .bind(filter.name.as_deref())
            .bind(params.limit)
            .bind(filter.parent_id.map(TaskId::get))
            .bind(filter.workflow.map(TaskId::get))
            .bind(filter.suspend_reason.as_deref())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn task_list_expired(&self, params: &TaskListExpiredParams) -> Result<Vec<ExpiredTask>> {
        Ok(
            sqlx::query_as(include_str!("queries/task_list_expired.sql"))
                .bind(params.heartbeat_timeout_ms)
                .bind(params.limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn task_context(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let context: Option<Option<Vec<u8>>> =
            sqlx::query_scalar(include_str!("queries/task_context.sql"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(context.flatten())
    }

    async fn task_list_children(&self, params: &TaskListChildrenParams) -> Result<Vec<ChildRow>> {
        Ok(
            sqlx::query_as(include_str!("queries/task_list_children.sql"))
                .bind(params.parent_id)
                .bind(params.parent_stage)
                .bind(params.parent_cycle)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn task_stats(&self, params: &TaskStatsParams) -> Result<Vec<TaskStatsRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_stats.sql"))
            .bind(params.tag.as_deref())
            .fetch_all(&self.pool)
            .await?)
    }
}

/// The tables every task writes to (claims, completions, attempts,
/// events, registry renewals): the ones worth vacuuming and analysing.
const VACUUMED_TABLES: &[&str] = &[
    "fib_flow_tasks",
    "fib_flow_task_attempts",
    "fib_flow_task_events",
    "fib_flow_workers",
    "fib_flow_leases",
];
/// A table is vacuumed once its dead rows exceed this many plus
/// [`VACUUM_DEAD_FRACTION`] of its live rows, and analysed once the rows
/// changed since its last analysis exceed this many plus
/// [`ANALYZE_CHANGED_FRACTION`] of them (autovacuum's defaults are 50,
/// 0.2 and 0.1; a queue table is small and hot, so it starts higher).
const VACUUM_MIN_ROWS: i64 = 1_000;
/// See [`VACUUM_MIN_ROWS`].
const VACUUM_DEAD_FRACTION: f64 = 0.2;
/// See [`VACUUM_MIN_ROWS`].
const ANALYZE_CHANGED_FRACTION: f64 = 0.1;

/// The claim (see [`Store::task_claim_many`]): one statement, on whatever
/// connection or transaction it is given.
async fn claim_many(conn: &mut PgConnection, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
    if params.require_active_worker {
        let active: Option<i32> =
            sqlx::query_scalar(include_str!("queries/worker_claim_guard.sql"))
                .bind(&params.worker_id)
                .fetch_optional(&mut *conn)
                .await?;
        if active.is_none() {
            return Ok(Vec::new());
        }
    }
    let names: Vec<&str> = params
        .names
        .iter()
        .filter(|c| c.limit > 0)
        .map(|c| c.name.as_str())
        .collect();
    let limits: Vec<i64> = params
        .names
        .iter()
        .filter(|c| c.limit > 0)
        .map(|c| c.limit.min(params.limit))
        .collect();
    if params.limit <= 0 || names.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<TaskRow> = sqlx::query_as(include_str!("queries/task_claim_many.sql"))
        .bind(&names)
        .bind(&limits)
        .bind(params.limit)
        .bind(TaskStatus::Running.as_str())
        .bind(&params.worker_id)
        .bind(status_names(&params.from))
        .bind(params.started_event)
        .bind(params.retry_started_event)
        .bind(params.async_commit)
        .fetch_all(&mut *conn)
        .await?;
    rows.sort_by_key(|row| (Reverse(row.priority), row.next_run_at, row.id));
    Ok(rows)
}

/// A transaction that remembers whether it made a task claimable now
/// (resumed, released, a parent's next stage) so it can wake idle workers
/// of other processes when it commits.
struct PgTx {
    tx: Transaction<'static, Postgres>,
    channel: String,
    wake: bool,
}

type InsertQuery<'q> = sqlx::query::QueryScalar<'q, Postgres, i64, PgArguments>;

/// `sql` (an insert of one task taking its columns as $1..$16) bound to
/// `params`.
fn insert_query<'q>(sql: &'q str, params: &'q TaskInsertParams) -> InsertQuery<'q> {
    let (_, at, delay) = params.next_run.as_args();
    let parent = params.parent;
    sqlx::query_scalar(sql)
        .bind(&params.name)
        .bind(params.kind.as_str())
        .bind(TaskStatus::Pending.as_str())
        .bind(i64::from(params.priority))
        .bind(params.payload.as_deref())
        .bind(params.tag.as_deref())
        .bind(params.timeout_ms)
        .bind(params.max_attempts)
        .bind(params.retry_interval_ms)
        .bind(params.cron_expr.as_deref())
        .bind(at)
        .bind(delay)
        .bind(parent.map(|p| p.root_id))
        .bind(parent.map(|p| p.parent_id))
        .bind(parent.map(|p| p.parent_stage))
        .bind(parent.map(|p| p.parent_cycle))
}

#[async_trait]
impl StoreTx for PgTx {
    async fn audit_write(&mut self, rows: &AuditRows) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(include_str!("queries/audit_write.sql"))
            .bind(json_list(&rows.opened))
            .bind(json_list(&rows.closed))
            .bind(json_list(&rows.events))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn task_claim_many(&mut self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        claim_many(&mut self.tx, params).await
    }

    async fn task_stamp_created(&mut self, id: i64) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_stamp_created.sql"))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_touch(&mut self, params: &TaskTouchParams) -> Result<Option<TouchedTask>> {
        Ok(sqlx::query_as(include_str!("queries/task_touch.sql"))
            .bind(params.id)
            .bind(&params.fence.worker_id)
            .bind(params.fence.attempt)
            .bind(params.heartbeat)
            .bind(params.stage_name.as_deref())
            .bind(params.progress_text.as_deref())
            .bind(params.progress_percent)
            .bind(params.event_type)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if self.wake {
            sqlx::query(include_str!("queries/notify.sql"))
                .bind(&self.channel)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(self.tx.commit().await?)
    }

    async fn task_child_finished(
        &mut self,
        params: &TaskChildFinishedParams,
    ) -> Result<Option<WaitingParent>> {
        Ok(
            sqlx::query_as(include_str!("queries/task_child_finished.sql"))
                .bind(params.parent_id)
                .bind(params.parent_stage)
                .bind(params.parent_cycle)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn task_insert(&mut self, params: &TaskInsertParams) -> Result<i64> {
        Ok(
            insert_query(include_str!("queries/task_insert.sql"), params)
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    async fn task_list_unfinished_children(
        &mut self,
        params: &TaskCancelChildrenParams,
    ) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar(include_str!("queries/task_list_unfinished_children.sql"))
                .bind(params.parent_id)
                .bind(status_names(&params.from))
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    async fn task_mark_parent_notified(&mut self, id: i64) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_mark_parent_notified.sql"))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_set_status(&mut self, change: &TaskSetStatusParams) -> Result<Option<TaskRef>> {
        let (set_error, error) = change.error.as_args();
        let (set_next, at, delay) = change.next_run.as_args();
        let children = change.children;
        let applied: Option<TaskRef> = sqlx::query_as(include_str!("queries/task_set_status.sql"))
            .bind(change.to().as_str())
            .bind(change.finishes())
            .bind(change.result.is_some())
            .bind(change.result.as_deref())
            .bind(set_error)
            .bind(error)
            .bind(set_next)
            .bind(at)
            .bind(delay)
            .bind(change.retry_count)
            .bind(change.release_owner)
            .bind(change.id)
            .bind(status_names(change.from()))
            .bind(change.fence.as_ref().map(|f| f.worker_id.as_str()))
            .bind(change.fence.as_ref().map(|f| f.attempt))
            .bind(change.advances_stage())
            .bind(change.context.is_some())
            .bind(change.context.as_deref())
            .bind(change.suspend_reason.is_some())
            .bind(change.suspend_reason.clone().flatten())
            .bind(children.map(|c| c.count))
            .bind(children.map(|c| c.on_failure.as_str()))
            .bind(change.require_no_children)
            .bind(change.reset_stage)
            .bind(change.require_expired_ms)
            .bind(change.last_event_type)
            .fetch_optional(&mut *self.tx)
            .await?;
        if applied.is_some() && change.to() == TaskStatus::Pending {
            self.wake = true;
        }
        Ok(applied)
    }

    async fn task_set_status_many(
        &mut self,
        changes: &[TaskSetStatusParams],
    ) -> Result<Vec<Option<TaskRef>>> {
        let rows: Vec<TaskRef> = status_changes::bind(
            sqlx::query_as(include_str!("queries/task_set_status_many.sql")),
            changes,
        )
        .fetch_all(&mut *self.tx)
        .await?;
        let applied = applied_in_order(changes, rows)?;
        if applied
            .iter()
            .zip(changes)
            .any(|(row, change)| row.is_some() && change.to() == TaskStatus::Pending)
        {
            self.wake = true;
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    /// The claim query spells the claimable statuses out for its partial
    /// index; they must be exactly the claim transition's sources.
    #[test]
    fn claim_query_statuses_match_the_claim_transition() {
        let spelled = "status IN ('pending', 'failed', 'timeout')";
        for sql in [
            include_str!("queries/task_claim_many.sql"),
            include_str!("../../../migrations/postgres/0001_init.sql"),
        ] {
            assert!(sql.contains(spelled), "{sql}");
        }
    }
}
