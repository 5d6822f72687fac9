//! The MySQL / MariaDB backend: bind, run, map. No decisions here.
//!
//! Needs MySQL 8.0+ or MariaDB 10.6+ (`SKIP LOCKED`, `JSON_TABLE`); `setup()`
//! refuses older servers. Claims are a transaction: lock each name's best
//! due rows with `FOR UPDATE SKIP LOCKED`, then update the chosen ones.
//! Times come from the database clock. There is no push notification:
//! other processes find new work by polling (right away after a full
//! batch). With a `schema` option the database of that name is created
//! when missing and used by every connection. DDL commits implicitly in
//! MySQL, so a migration that fails halfway is not rolled back (its version
//! is recorded only when all of it succeeded). Migration 4 creates one
//! stored procedure, `fib_flow_submit_task` (a single submit: two inserts
//! and a commit in one prepared call), so the migrating user needs
//! `CREATE ROUTINE` and the workers' user `EXECUTE`.

mod audit;
mod floor;
mod literal;
mod set_status;
mod submit;
mod workers;

use std::cmp::Reverse;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::mysql::{MySqlArguments, MySqlConnectOptions, MySqlPool};
use sqlx::{Connection, Executor, MySql, MySqlConnection, QueryBuilder, Transaction};
use tokio::sync::Notify;

use super::audit::{AuditRows, NewEvent};
use super::migrate::{self, MYSQL as MIGRATIONS};
use super::params::*;
use super::pool::network_pool;
use super::row::*;
use super::{redact, Store, StoreCaps, StoreTx};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::retry::retry_transient;
use crate::state::TaskStatus;
use crate::task::TaskId;

/// The MySQL / MariaDB [`Store`].
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
}

impl MySqlStore {
    async fn try_task_cron_upsert(&self, params: &CronUpsertParams) -> Result<i64> {
        let task = &params.task;
        let (_, at, _) = task.next_run.as_args();
        let done = sqlx::query(include_str!("queries/task_cron_upsert.sql"))
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
            .execute(&self.pool)
            .await?;
        inserted_id(done.last_insert_id())
    }

    /// Connects (creating the configured database when missing).
    pub async fn connect(config: &Config) -> Result<Self> {
        let url = config.database_url.trim();
        // sqlx knows only the mysql:// spelling.
        let normalized = match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => url.to_owned(),
        };
        let mut options =
            MySqlConnectOptions::from_str(&normalized).map_err(|e| Error::UnsupportedDatabase {
                url: redact(url),
                reason: format!("not a valid MySQL URL: {e}"),
            })?;
        if let Some(schema) = &config.schema {
            let mut conn = MySqlConnection::connect_with(&options).await?;
            // `schema` is validated as [a-z_][a-z0-9_]* by Config::validate.
            conn.execute(format!("CREATE DATABASE IF NOT EXISTS `{schema}`").as_str())
                .await?;
            conn.close().await?;
            options = options.database(schema);
        }
        let pool = network_pool::<MySql>()
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // No gap locks: a claim's locking read must not block
                    // concurrent inserts.
                    conn.execute(include_str!("queries/session_isolation.sql"))
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(MySqlStore { pool })
    }
}

/// Checks that the server has what the claim needs: MySQL 8.0+ or MariaDB
/// 10.6+.
pub fn check_server_version(version: &str) -> std::result::Result<(), String> {
    let numbers: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let (major, minor) = (
        numbers.first().copied().unwrap_or(0),
        numbers.get(1).copied().unwrap_or(0),
    );
    let (ok, required) = if version.to_ascii_lowercase().contains("mariadb") {
        ((major, minor) >= (10, 6), "MariaDB 10.6 or newer")
    } else {
        (major >= 8, "MySQL 8.0 or newer")
    };
    if ok {
        Ok(())
    } else {
        Err(format!("server version {version} is too old: fib-flow needs {required} (SKIP LOCKED, JSON_TABLE)"))
    }
}

impl MySqlStore {
    async fn try_task_claim_many(&self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        let mut tx = self.pool.begin().await?;
        let now: i64 = sqlx::query_scalar(include_str!("queries/now_ms.sql"))
            .fetch_one(&mut *tx)
            .await?;
        let rows = claim_many(&mut tx, params, now).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn try_task_delete_many(&self, params: &TaskListParams) -> Result<u64> {
        let filter = &params.filter;
        let status = filter.status.map(TaskStatus::as_str);
        let parent = filter.parent_id.map(TaskId::get);
        let workflow = filter.workflow.map(TaskId::get);
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(include_str!("queries/task_delete_many_select.sql"))
            .bind(filter.tag.as_deref())
            .bind(filter.tag.as_deref())
            .bind(status)
            .bind(status)
            .bind(filter.name.as_deref())
            .bind(filter.name.as_deref())
            .bind(parent)
            .bind(parent)
            .bind(workflow)
            .bind(workflow)
            .bind(workflow)
            .bind(filter.suspend_reason.as_deref())
            .bind(filter.suspend_reason.as_deref())
            .fetch_all(&mut *tx)
            .await?;
        let deleted = delete_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn try_task_delete(&self, id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let deleted = delete_ids(&mut tx, &[id]).await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn try_task_heartbeat(&self, params: &TaskHeartbeatParams) -> Result<Vec<TaskLease>> {
        if params.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = json_list(&params.ids);
        let mut tx = self.pool.begin().await?;
        sqlx::query(include_str!("queries/task_heartbeat_update.sql"))
            .bind(&ids)
            .bind(&params.worker_id)
            .execute(&mut *tx)
            .await?;
        let leases = sqlx::query_as(include_str!("queries/task_heartbeat_select.sql"))
            .bind(&ids)
            .bind(&params.worker_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(leases)
    }

    async fn try_task_insert(&self, params: &TaskInsertParams) -> Result<i64> {
        let done = insert_query(include_str!("queries/task_insert.sql"), params)
            .bind(None::<i64>)
            .execute(&self.pool)
            .await?;
        inserted_id(done.last_insert_id())
    }
}

#[async_trait]
impl Store for MySqlStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        Ok(Box::new(MySqlTx {
            tx: self.pool.begin().await?,
            now: None,
        }))
    }

    fn caps(&self) -> StoreCaps {
        StoreCaps {
            backend: "mysql",
            listen_notify: false,
            skip_locked: true,
            single_writer: false,
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn listen(&self, _wake: Arc<Notify>) -> Result<bool> {
        Ok(false)
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        let mut conn = self.pool.acquire().await?;
        let version: String = sqlx::query_scalar(include_str!("queries/server_version.sql"))
            .fetch_one(&mut *conn)
            .await?;
        check_server_version(&version).map_err(|reason| Error::UnsupportedDatabase {
            url: "mysql".into(),
            reason,
        })?;
        let locked: Option<i64> = sqlx::query_scalar(include_str!("queries/migrations_lock.sql"))
            .fetch_one(&mut *conn)
            .await?;
        if locked != Some(1) {
            return Err(Error::Lifecycle {
                state: "setup",
                reason: "another process held the migration lock for 60 s".into(),
            });
        }
        let result = async {
            sqlx::query(include_str!("queries/migrations_create.sql"))
                .execute(&mut *conn)
                .await?;
            let applied: Vec<i64> =
                sqlx::query_scalar(include_str!("../sqlite/queries/migrations_list.sql"))
                    .fetch_all(&mut *conn)
                    .await?;
            let mut done = Vec::new();
            for migration in migrate::pending(MIGRATIONS, &applied)? {
                let failed = |source| Error::Migration {
                    version: migration.version,
                    name: migration.name,
                    source,
                };
                (&mut *conn).execute(migration.sql).await.map_err(failed)?;
                sqlx::query(include_str!("queries/migrations_insert.sql"))
                    .bind(migration.version)
                    .bind(migration.name)
                    .execute(&mut *conn)
                    .await
                    .map_err(failed)?;
                done.push(migration.version);
            }
            Ok::<_, Error>(done)
        }
        .await;
        sqlx::query(include_str!("queries/migrations_unlock.sql"))
            .execute(&mut *conn)
            .await?;
        result
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

    async fn task_cron_get(&self, id: i64) -> Result<Option<CronRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_cron_get.sql"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn task_cron_update(&self, params: &CronUpdateParams) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_cron_update.sql"))
            .bind(params.next_run_at)
            .bind(status_list(&params.rearm_from))
            .bind(params.next_run_at)
            .bind(params.cron_expr.as_deref())
            .bind(params.cron_tz.as_deref())
            .bind(params.cron_misfire.as_deref())
            .bind(params.payload.is_some())
            .bind(params.payload.clone().flatten())
            .bind(params.id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_cron_upsert(&self, params: &CronUpsertParams) -> Result<i64> {
        retry_transient(|| self.try_task_cron_upsert(params)).await
    }

    async fn task_delete(&self, id: i64) -> Result<bool> {
        retry_transient(|| self.try_task_delete(id)).await
    }

    async fn task_claim_many(&self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        retry_transient(|| self.try_task_claim_many(params)).await
    }

    async fn task_delete_many(&self, params: &TaskListParams) -> Result<u64> {
        retry_transient(|| self.try_task_delete_many(params)).await
    }

    async fn task_get(&self, id: i64) -> Result<Option<TaskRow>> {
        Ok(sqlx::query_as(include_str!("queries/task_get.sql"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn task_heartbeat(&self, params: &TaskHeartbeatParams) -> Result<Vec<TaskLease>> {
        retry_transient(|| self.try_task_heartbeat(params)).await
    }

    async fn task_insert(&self, params: &TaskInsertParams) -> Result<i64> {
        retry_transient(|| self.try_task_insert(params)).await
    }

    async fn task_submit(&self, params: &TaskInsertParams, created: &NewEvent) -> Result<i64> {
        self.submit_one(params, created).await
    }

    async fn task_submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>> {
        self.submit_many(batch).await
    }

    async fn task_list(&self, params: &TaskListParams) -> Result<Vec<TaskRow>> {
        let filter = &params.filter;
        let status = filter.status.map(TaskStatus::as_str);
        let parent = filter.parent_id.map(TaskId::get);
        let workflow = filter.workflow.map(TaskId::get);
        Ok(sqlx::query_as(include_str!("queries/task_list.sql"))
            .bind(filter.tag.as_deref())
            .bind(filter.tag.as_deref())
            .bind(status)
            .bind(status)
            .bind(filter.name.as_deref())
            .bind(filter.name.as_deref())
            .bind(parent)
            .bind(parent)
            .bind(workflow)
            .bind(workflow)
            .bind(workflow)
            .bind(filter.suspend_reason.as_deref())
            .bind(filter.suspend_reason.as_deref())
            .bind(params.limit.unwrap_or(i64::MAX))
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
            .bind(params.tag.as_deref())
            .fetch_all(&self.pool)
            .await?)
    }
}

/// The claim (see [`Store::task_claim_many`]) inside the caller's
/// transaction: lock each name's best due rows, take the best of them, and
/// read them back.
async fn claim_many(
    conn: &mut MySqlConnection,
    params: &TaskClaimManyParams,
    now: i64,
) -> Result<Vec<TaskRow>> {
    if params.limit <= 0 || params.names.is_empty() {
        return Ok(Vec::new());
    }
    if params.require_active_worker {
        let active: Option<i64> =
            sqlx::query_scalar(include_str!("queries/worker_claim_guard.sql"))
                .bind(&params.worker_id)
                .fetch_optional(&mut *conn)
                .await?;
        if active.is_none() {
            return Ok(Vec::new());
        }
    }
    let mut candidates: Vec<ClaimCandidate> = Vec::new();
    for claim in params.names.iter().filter(|c| c.limit > 0) {
        let rows: Vec<ClaimCandidate> =
            sqlx::query_as(include_str!("queries/task_claim_many_select.sql"))
                .bind(&claim.name)
                .bind(now)
                .bind(claim.limit.min(params.limit))
                .fetch_all(&mut *conn)
                .await?;
        candidates.extend(rows);
    }
    // Merging each name's best rows gives the best rows overall.
    candidates.sort_by_key(|c| (Reverse(c.priority), c.next_run_at, c.id));
    candidates.truncate(usize::try_from(params.limit).unwrap_or(usize::MAX));
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = candidates.iter().map(|c| c.id).collect();
    sqlx::query(include_str!("queries/task_claim_many_update.sql"))
        .bind(json_list(&candidates))
        .bind(TaskStatus::Running.as_str())
        .bind(&params.worker_id)
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(params.retry_started_event)
        .bind(params.started_event)
        .bind(status_list(&params.from))
        .execute(&mut *conn)
        .await?;
    let mut rows: Vec<TaskRow> = sqlx::query_as(include_str!("queries/task_get_many.sql"))
        .bind(json_list(&ids))
        .fetch_all(&mut *conn)
        .await?;
    rows.sort_by_key(|row| ids.iter().position(|&id| id == row.id));
    Ok(rows)
}

/// Deletes tasks by id with their events and attempts; returns how many
/// tasks went.
async fn delete_ids(conn: &mut MySqlConnection, ids: &[i64]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids = json_list(ids);
    for sql in [
        include_str!("queries/history_delete_events.sql"),
        include_str!("queries/history_delete_attempts.sql"),
    ] {
        sqlx::query(sql).bind(&ids).execute(&mut *conn).await?;
    }
    let done = sqlx::query(include_str!("queries/task_delete_ids.sql"))
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// A row step 1 of the claim locked, with the status it had.
#[derive(Debug, sqlx::FromRow, serde::Serialize)]
struct ClaimCandidate {
    id: i64,
    #[serde(skip)]
    priority: i64,
    #[serde(skip)]
    next_run_at: i64,
    status: String,
}

/// A MySQL transaction (READ COMMITTED, like every session here).
struct MySqlTx {
    tx: Transaction<'static, MySql>,
    /// The transaction's time once known (ms, database clock): every row
    /// it writes carries the same one, as on the other backends, where
    /// the whole transaction sees one `now()`.
    now: Option<i64>,
}

impl MySqlTx {
    /// The transaction's time: the one its first write stamped, or read
    /// now.
    async fn now(&mut self) -> Result<i64> {
        if let Some(now) = self.now {
            return Ok(now);
        }
        let now: i64 = sqlx::query_scalar(include_str!("queries/now_ms.sql"))
            .fetch_one(&mut *self.tx)
            .await?;
        self.now = Some(now);
        Ok(now)
    }

    /// Inserts `events` at `now`, in order (their ids ascend in it): one
    /// multi-row `VALUES` insert (`event_insert_values.sql`) per
    /// [`EVENTS_PER_STATEMENT`], strings bound and integers written in,
    /// which costs the server less than reading a JSON document.
    async fn insert_events(&mut self, events: &[NewEvent], now: i64) -> Result<()> {
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            let mut insert =
                QueryBuilder::<MySql>::new(include_str!("queries/event_insert_values.sql"));
            insert.push_values(chunk, |mut row, event| {
                row.push(sql_int(Some(event.task_id)))
                    .push(sql_int(Some(event.root_id)))
                    .push(sql_int(event.parent_id))
                    .push_bind(event.event_type)
                    .push_bind(event.from_status.as_deref())
                    .push_bind(event.to_status.as_deref())
                    .push(sql_int(event.stage))
                    .push_bind(event.worker_id.as_deref())
                    .push(sql_int(event.attempt))
                    .push(sql_int(Some(now)))
                    .push_bind(event.message.as_deref())
                    .push_bind(event.metadata.as_deref());
            });
            // Each batch has its own text: do not fill the statement cache.
            insert
                .build()
                .persistent(false)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }
}

/// Events per insert statement: each binds six strings, and a prepared
/// statement takes at most 65,535 parameters.
const EVENTS_PER_STATEMENT: usize = 10_000;

/// An integer column as SQL text (integers are written into a multi-row
/// statement, strings bound, to stay under the parameter limit).
pub(super) fn sql_int(value: Option<i64>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| v.to_string())
}

/// A status change read back with the time it was stamped at.
#[derive(sqlx::FromRow)]
struct StampedRef {
    #[sqlx(flatten)]
    task: TaskRef,
    last_active_at: Option<i64>,
}

/// A report read back with the time it was stamped at.
#[derive(sqlx::FromRow)]
struct StampedTouch {
    #[sqlx(flatten)]
    task: TouchedTask,
    last_event_at: Option<i64>,
}

type InsertQuery<'q> = sqlx::query::Query<'q, MySql, MySqlArguments>;

/// `sql` (a statement taking one task's columns as its first 16 `?`, in
/// the order of `task_insert.sql`) bound to `params`.
pub(super) fn insert_query<'q>(sql: &'q str, params: &'q TaskInsertParams) -> InsertQuery<'q> {
    let (_, at, delay) = params.next_run.as_args();
    let parent = params.parent;
    sqlx::query(sql)
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

fn inserted_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| Error::Corrupt {
        column: "id",
        reason: "the new id does not fit in i64".into(),
    })
}

#[async_trait]
impl StoreTx for MySqlTx {
    async fn audit_write(&mut self, rows: &AuditRows) -> Result<()> {
        if !rows.opened.is_empty() {
            sqlx::query(include_str!("queries/attempt_open_many.sql"))
                .bind(json_list(&rows.opened))
                .execute(&mut *self.tx)
                .await?;
        }
        if !rows.closed.is_empty() {
            let now = self.now().await?;
            sqlx::query(include_str!("queries/attempt_close_many.sql"))
                .bind(json_list(&rows.closed))
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
        }
        if !rows.events.is_empty() {
            let now = self.now().await?;
            self.insert_events(&rows.events, now).await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    async fn task_claim_many(&mut self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>> {
        let now = self.now().await?;
        claim_many(&mut self.tx, params, now).await
    }

    async fn task_stamp_created(&mut self, id: i64) -> Result<bool> {
        let done = sqlx::query(include_str!("queries/task_stamp_created.sql"))
            .bind(self.now().await?)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_touch(&mut self, params: &TaskTouchParams) -> Result<Option<TouchedTask>> {
        sqlx::query(include_str!("queries/task_touch.sql"))
            .bind(self.now)
            .bind(params.heartbeat)
            .bind(params.stage_name.as_deref())
            .bind(params.progress_text.as_deref())
            .bind(params.progress_percent)
            .bind(params.event_type)
            .bind(params.id)
            .bind(&params.fence.worker_id)
            .bind(params.fence.attempt)
            .execute(&mut *self.tx)
            .await?;
        // A touch that changes no value may report 0 affected rows: read
        // the row back, under the lock the UPDATE took, with the same fence.
        let stamped: Option<StampedTouch> =
            sqlx::query_as(include_str!("queries/task_touched.sql"))
                .bind(params.id)
                .bind(&params.fence.worker_id)
                .bind(params.fence.attempt)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(stamped.map(|stamped| {
            self.now = self.now.or(stamped.last_event_at);
            stamped.task
        }))
    }

    async fn task_child_finished(
        &mut self,
        params: &TaskChildFinishedParams,
    ) -> Result<Option<WaitingParent>> {
        let done = sqlx::query(include_str!("queries/task_child_finished_update.sql"))
            .bind(params.parent_id)
            .bind(params.parent_stage)
            .bind(params.parent_cycle)
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        Ok(Some(
            sqlx::query_as(include_str!("queries/task_child_finished_select.sql"))
                .bind(params.parent_id)
                .fetch_one(&mut *self.tx)
                .await?,
        ))
    }

    async fn task_insert(&mut self, params: &TaskInsertParams) -> Result<i64> {
        let now = self.now().await?;
        let done = insert_query(include_str!("queries/task_insert.sql"), params)
            .bind(Some(now))
            .execute(&mut *self.tx)
            .await?;
        inserted_id(done.last_insert_id())
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
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn task_set_status(&mut self, change: &TaskSetStatusParams) -> Result<Option<TaskRef>> {
        self.set_status(change).await
    }

    async fn task_set_status_many(
        &mut self,
        changes: &[TaskSetStatusParams],
    ) -> Result<Vec<Option<TaskRef>>> {
        self.set_status_many(changes).await
    }
}

#[cfg(test)]
mod tests {
    use super::check_server_version;

    #[test]
    fn server_versions_are_checked() {
        assert!(check_server_version("8.0.36").is_ok());
        assert!(check_server_version("8.4.0-log").is_ok());
        assert!(check_server_version("10.11.19-MariaDB-0+deb12u1").is_ok());
        assert!(check_server_version("10.6.0-MariaDB").is_ok());
        assert!(check_server_version("5.7.44").is_err());
        assert!(check_server_version("10.5.9-MariaDB").is_err());
        assert!(check_server_version("garbage").is_err());
    }
}
