//! The embedded SQLite backend: bind, run, map. No decisions here.
//!
//! File databases run in WAL mode with a busy timeout. All writes go through
//! a pool of exactly one connection, so writers in this process queue in
//! order instead of spinning on SQLite's lock; write transactions begin with
//! `BEGIN IMMEDIATE` so a read-then-write transaction never fails to upgrade
//! when another process shares the file. Reads use a separate pool.
//! `sqlite::memory:` uses one connection for everything (each connection
//! would otherwise be its own database).
//!
//! SQLite's clock is this process's clock: times are read here, in
//! milliseconds, and bound as parameters.

mod audit;
mod floor;
mod submit;
mod workers;

use std::cmp::Reverse;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqliteConnection, Transaction};
use tokio::sync::Notify;

use super::audit::{AuditRows, NewEvent};
use super::migrate::{self, SQLITE as MIGRATIONS};
use super::params::*;
use super::row::*;
use super::{Store, StoreCaps, StoreTx};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::TaskStatus;
use crate::task::TaskId;

const READ_CONNECTIONS: u32 = 4;

/// The SQLite [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// For `sqlite::memory:`: a second connection to the same (shared,
    /// named) in-memory database that runs nothing. The database lives as
    /// long as one connection to it is open; without this one, a query
    /// future dropped mid-flight (a handler stopped by its timeout, a
    /// `try_join!` that failed early) makes the pool close its only
    /// connection, and with it every table.
    anchor: Option<Arc<tokio::sync::Mutex<Option<SqliteConnection>>>>,
}

impl SqliteStore {
    /// Opens (and for files, creates) the database named by
    /// `config.database_url`.
    pub async fn connect(config: &Config) -> Result<Self> {
        if config.schema.is_some() {
            return Err(Error::config(
                "schema",
                "is not supported on SQLite; use a separate database file",
            ));
        }
        let url = config.database_url.trim();
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::UnsupportedDatabase {
                url: url.to_owned(),
                reason: format!("not a valid SQLite URL: {e}"),
            })?
            .busy_timeout(config.sqlite_busy_timeout)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if in_memory {
            let anchor = SqliteConnection::connect_with(&options).await?;
            let pool = local_pool()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            return Ok(SqliteStore {
                writer: pool.clone(),
                reader: pool,
                anchor: Some(Arc::new(tokio::sync::Mutex::new(Some(anchor)))),
            });
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = local_pool()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let reader = local_pool()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            writer,
            reader,
            anchor: None,
        })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Pool options for SQLite: connections are handed out unpinged. A
/// connection to a file in this process cannot be dropped by a server, and
/// sqlx's default ping before every hand-out is a round trip to the
/// connection's worker thread.
fn local_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new().test_before_acquire(false)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn next_run_ms(next_run: NextRun, now: i64) -> Option<i64> {
    match next_run {
        NextRun::Keep => None,
        NextRun::AfterMs(ms) => Some(now.saturating_add(ms)),
        NextRun::AtMs(ms) => Some(ms),
    }
}

/// `task_claim_many.sql` for `names` names: one arm each
/// (`task_claim_many_arm.sql`), the first reading ?9 and ?10.
fn claim_sql(names: usize) -> String {
    let arms: Vec<String> = (0..names)
        .map(|i| {
            include_str!("queries/task_claim_many_arm.sql")
                .replace("{name}", &(9 + 2 * i).to_string())
                .replace("{limit}", &(10 + 2 * i).to_string())
        })
        .collect();
    include_str!("queries/task_claim_many.sql").replace("{arms}", &arms.join("\nUNION ALL\n"))
}

/// One change of a batch (`task_set_status_many.sql`): the parameters of
/// `task_set_status.sql` by name, the context as hex text.
fn status_change_json(change: &TaskSetStatusParams, now: i64) -> serde_json::Value {
    let (set_error, error) = change.error.as_args();
    let children = change.children;
    let statuses: Vec<&str> = change.from().iter().map(|s| s.as_str()).collect();
    serde_json::json!({
        "id": change.id,
        "to": change.to().as_str(),
        "finishes": change.finishes(),
        "set_result": change.result.is_some(),
        "result": change.result,
        "set_error": set_error,
        "error": error,
        "next_run_at": next_run_ms(change.next_run, now),
        "retry_count": change.retry_count,
        "release_owner": change.release_owner,
        "from": statuses,
        "fence_worker": change.fence.as_ref().map(|f| f.worker_id.as_str()),
        "fence_attempt": change.fence.as_ref().map(|f| f.attempt),
        "advance_stage": change.advances_stage(),
        "set_context": change.context.is_some(),
        "context": change.context.as_deref().map(hex),
        "set_suspend": change.suspend_reason.is_some(),
        "suspend_reason": change.suspend_reason.clone().flatten(),
        "child_count": children.map(|c| c.count),
        "on_child_failure": children.map(|c| c.on_failure.as_str()),
        "require_no_children": change.require_no_children,
        "reset_stage": change.reset_stage,
        "require_expired_ms": change.require_expired_ms,
        "last_event_type": change.last_event_type,
    })
}

/// Lower-case hex text of `bytes` (read back by SQLite's `unhex`).
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        Ok(Box::new(SqliteTx {
            tx: self.begin_write().await?,
            now: now_ms(),
        }))
    }

    fn caps(&self) -> StoreCaps {
        StoreCaps {
            backend: "sqlite",
            listen_notify: false,
            skip_locked: false,
            single_writer: true,
        }
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        if let Some(anchor) = &self.anchor {
            if let Some(connection) = anchor.lock().await.take() {
                if let Err(error) = connection.close().await {
                    tracing::debug!(%error, "closing the in-memory database's anchor failed");
                }
            }
        }
    }

    async fn listen(&self, _wake: Arc<Notify>) -> Result<bool> {
        // One process per file in practice; other processes are found by
        // polling.
        Ok(false)
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(include_str!("queries/migrations_create.sql"))
            .execute(&mut *tx)
            .await?;
        let applied: Vec<i64> = sqlx::query_scalar(include_str!("queries/migrations_list.sql"))
            .fetch_all(&mut *tx)
            .await?;
        let mut done = Vec::new();
        for migration in migrate::pending(MIGRATIONS, &applied)? {
            let failed = |source| Error::Migration {
                version: migration.version,
                name: migration.name,
                source,
            };
            // sqlx's SQLite driver runs every statement of a multi-statement
            // string (and `raw_sql` trips async-trait's Send inference).
            sqlx::query(migration.sql)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query(include_str!("queries/migrations_insert.sql"))
                .bind(migration.version)
                .bind(migration.name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            done.push(migration.version);
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn migration_versions(&self) -> Result<Vec<i64>> {
        let mut conn = self.reader.acquire().await?;
        sqlx::query(include_str!("queries/migrations_create.sql"))
            .execute(&mut *conn)
            .await?;
        Ok(
            sqlx::query_scalar(include_str!("queries/migrations_list.sql"))
                .fetch_all(&mut *conn)
                .await?,
        )
    }

    async fn now_ms(&self) -> Result<i64> {
        Ok(now_ms())
    }

    async fn task_cron_get(&self, id: i64) -> Result<Option<CronRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_cron_get.sql"))
            .bind(id)
            .fetch_optional(&self.reader)
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
            .bind(status_list(&params.rearm_from))
            .bind(params.payload.is_some())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_cron_upsert(&self, params: &CronUpsertParams) -> Result<i64> {
        let task = &params.task;
        let now = now_ms();
        Ok(
            sqlx::query_scalar(include_str!("queries/task_cron_upsert.sql"))
                .bind(&task.name)
                .bind(task.kind.as_str())
                .bind(TaskStatus::Pending.as_str())
                .bind(task.priority)
                .bind(task.payload.as_deref())
                .bind(task.tag.as_deref())
                .bind(task.timeout_ms)
                .bind(task.max_attempts)
                .bind(task.retry_interval_ms)
                .bind(task.cron_expr.as_deref())
                .bind(&params.cron_tz)
                .bind(&params.cron_misfire)
                .bind(params.unique_key.as_deref())
                .bind(now)
                .bind(next_run_ms(task.next_run, now).unwrap_or(now))
                .fetch_one(&self.writer)
                .await?,
        )
    }

    async fn task_delete(&self, id: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = delete_ids(&mut tx, &[id]).await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn task_claim_many(&self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        let mut tx = SqliteTx {
            tx: self.begin_write().await?,
            now: now_ms(),
        };
        let rows = StoreTx::task_claim_many(&mut tx, params).await?;
        tx.tx.commit().await?;
        Ok(rows)
    }

    async fn task_delete_many(&self, params: &TaskListParams) -> Result<u64> {
        let filter = &params.filter;
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(include_str!("queries/task_delete_many_select.sql"))
            .bind(filter.tag.as_deref())
            .bind(filter.status.map(TaskStatus::as_str))
            .bind(filter.name.as_deref())
            .bind(filter.parent_id.map(TaskId::get))
            .bind(filter.workflow.map(TaskId::get))
            .bind(filter.suspend_reason.as_deref())
            .fetch_all(&mut *tx)
            .await?;
        let deleted = delete_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn task_get(&self, id: i64) -> Result<Option<TaskRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_get.sql"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn task_heartbeat(&self, params: &TaskHeartbeatParams) -> Result<Vec<TaskLease>> {
        if params.ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(include_str!("queries/task_heartbeat.sql"))
            .bind(&params.worker_id)
            .bind(now_ms())
            .bind(json_list(&params.ids))
            .fetch_all(&self.writer)
            .await?)
    }

    async fn task_insert(&self, params: &TaskInsertParams) -> Result<i64> {
        Ok(
            insert_query(include_str!("queries/task_insert.sql"), params, now_ms())
                .fetch_one(&self.writer)
                .await?,
        )
    }

    async fn task_submit(&self, params: &TaskInsertParams, created: &NewEvent) -> Result<i64> {
        self.submit_one(params, created).await
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
            .bind(params.limit.unwrap_or(-1))
            .bind(filter.parent_id.map(TaskId::get))
            .bind(filter.workflow.map(TaskId::get))
            .bind(filter.suspend_reason.as_deref())
            .fetch_all(&self.reader)
            .await?)
    }

    async fn task_list_expired(&self, params: &TaskListExpiredParams) -> Result<Vec<ExpiredTask>> {
        Ok(
            sqlx::query_as(include_str!("queries/task_list_expired.sql"))
                .bind(now_ms())
                .bind(params.heartbeat_timeout_ms)
                .bind(params.limit)
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn task_context(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let context: Option<Option<Vec<u8>>> =
            sqlx::query_scalar(include_str!("queries/task_context.sql"))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(context.flatten())
    }

    async fn task_list_children(&self, params: &TaskListChildrenParams) -> Result<Vec<ChildRow>> {
        Ok(
            sqlx::query_as(include_str!("queries/task_list_children.sql"))
                .bind(params.parent_id)
                .bind(params.parent_stage)
                .bind(params.parent_cycle)
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn task_stats(&self, params: &TaskStatsParams) -> Result<Vec<TaskStatsRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_stats.sql"))
            .bind(params.tag.as_deref())
            .fetch_all(&self.reader)
            .await?)
    }
}

/// Deletes tasks by id with their events and attempts; returns how many
/// tasks went.
async fn delete_ids(tx: &mut Transaction<'static, Sqlite>, ids: &[i64]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids = json_list(ids);
    for sql in [
        include_str!("queries/history_delete_events.sql"),
        include_str!("queries/history_delete_attempts.sql"),
    ] {
        sqlx::query(sql).bind(&ids).execute(&mut **tx).await?;
    }
    let done = sqlx::query(include_str!("queries/task_delete_ids.sql"))
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// A `BEGIN IMMEDIATE` transaction; its clock reading is taken once.
struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    now: i64,
}

type InsertQuery<'q> = sqlx::query::QueryScalar<'q, Sqlite, i64, SqliteArguments<'q>>;

/// `sql` (`task_insert.sql`, or a command that starts with its
/// statement) with the task's parameters bound as ?1-?16.
fn insert_query<'q>(sql: &'q str, params: &'q TaskInsertParams, now: i64) -> InsertQuery<'q> {
    let parent = params.parent;
    sqlx::query_scalar(sql)
        .bind(&params.name)
        .bind(params.kind.as_str())
        .bind(TaskStatus::Pending.as_str())
        .bind(params.priority)
        .bind(params.payload.as_deref())
        .bind(params.tag.as_deref())
        .bind(params.timeout_ms)
        .bind(params.max_attempts)
        .bind(params.retry_interval_ms)
        .bind(params.cron_expr.as_deref())
        .bind(now)
        .bind(next_run_ms(params.next_run, now).unwrap_or(now))
        .bind(parent.map(|p| p.root_id))
        .bind(parent.map(|p| p.parent_id))
        .bind(parent.map(|p| p.parent_stage))
        .bind(parent.map(|p| p.parent_cycle))
}

#[async_trait]
impl StoreTx for SqliteTx {
    async fn audit_write(&mut self, rows: &AuditRows) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(include_str!("queries/audit_write.sql"))
            .bind(json_list(&rows.opened))
            .bind(json_list(&rows.closed))
            .bind(json_list(&rows.events))
            .bind(self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    async fn task_claim_many(&mut self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        let names: Vec<&ClaimName> = params.names.iter().filter(|c| c.limit > 0).collect();
        if params.limit <= 0 || names.is_empty() {
            return Ok(Vec::new());
        }
        let sql = claim_sql(names.len());
        let mut query = sqlx::query_as::<_, TaskRow>(&sql)
            .bind(TaskStatus::Running.as_str())
            .bind(&params.worker_id)
            .bind(self.now)
            .bind(params.limit)
            .bind(status_list(&params.from))
            .bind(params.started_event)
            .bind(params.retry_started_event)
            .bind(params.require_active_worker);
        for claim in names {
            query = query.bind(&claim.name).bind(claim.limit.min(params.limit));
        }
        let mut rows = query.fetch_all(&mut *self.tx).await?;
        // RETURNING promises no order: best first, as they were picked.
        rows.sort_by_key(|row| (Reverse(row.priority), row.next_run_at, row.id));
        Ok(rows)
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
            insert_query(include_str!("queries/task_insert.sql"), params, self.now)
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
                .bind(status_list(&params.from))
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    async fn task_mark_parent_notified(&mut self, id: i64) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_mark_parent_notified.sql"))
            .bind(id)
            .bind(self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_set_status(&mut self, change: &TaskSetStatusParams) -> Result<Option<TaskRef>> {
        let (set_error, error) = change.error.as_args();
        let children = change.children;
        Ok(sqlx::query_as(include_str!("queries/task_set_status.sql"))
            .bind(change.to().as_str())
            .bind(self.now)
            .bind(change.finishes())
            .bind(change.result.is_some())
            .bind(change.result.as_deref())
            .bind(set_error)
            .bind(error)
            .bind(next_run_ms(change.next_run, self.now))
            .bind(change.retry_count)
            .bind(change.release_owner)
            .bind(change.id)
            .bind(status_list(change.from()))
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
            .await?)
    }

    async fn task_set_status_many(
        &mut self,
        changes: &[TaskSetStatusParams],
    ) -> Result<Vec<Option<TaskRef>>> {
        let batch: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| status_change_json(c, self.now))
            .collect();
        let rows: Vec<TaskRef> = sqlx::query_as(include_str!("queries/task_set_status_many.sql"))
            .bind(serde_json::Value::Array(batch).to_string())
            .bind(self.now)
            .fetch_all(&mut *self.tx)
            .await?;
        applied_in_order(changes, rows)
    }

    async fn task_stamp_created(&mut self, id: i64) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_stamp_created.sql"))
            .bind(self.now)
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
            .bind(self.now)
            .bind(params.heartbeat)
            .bind(params.stage_name.as_deref())
            .bind(params.progress_text.as_deref())
            .bind(params.progress_percent)
            .bind(params.event_type)
            .fetch_optional(&mut *self.tx)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::state::Transition;

    /// The claim query spells the claimable statuses out for its partial
    /// index; they must be exactly the claim transition's sources.
    #[test]
    fn claim_query_statuses_match_the_claim_transition() {
        for sql in [
            include_str!("queries/task_claim_many_arm.sql"),
            include_str!("../../../migrations/sqlite/0001_init.sql"),
        ] {
            let spelled = "status IN ('pending', 'failed', 'timeout')";
            assert!(sql.contains(spelled), "{sql}");
        }
        let expected: Vec<_> = Transition::Claim
            .allowed_from()
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(expected, ["pending", "failed", "timeout"]);
    }
}
