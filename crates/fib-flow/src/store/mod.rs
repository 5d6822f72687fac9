//! The storage seam: the [`Store`] trait the engine talks to, and
//! [`connect`], which picks a backend from the database URL.
//!
//! **Not a stable API.** The trait is public so that tests and tools can
//! exercise backends directly; it changes whenever the engine needs it to.
//! Do not implement it outside this crate.
//!
//! Rules: no SQL above this line, no decisions below it. Every method takes
//! one params struct built by the engine (see [`params`]); a backend binds
//! the values, runs one SQL file (or a short transaction of them), and maps
//! the rows. Methods are named `noun_verb` and kept in alphabetical order.
//! Times are milliseconds since the Unix epoch on the database's clock.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{Error, Result};

pub mod audit;
pub mod floor;
pub mod migrate;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(any(feature = "sqlite", feature = "mysql"))]
mod own_tx;
pub mod params;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod row;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod traced;
mod traced_audit;
mod traced_floor;
mod traced_workers;
pub mod workers;

pub use audit::*;
pub use floor::*;
pub use params::*;
pub use row::*;
pub use workers::*;

/// What a backend can do, as data (not as optional traits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCaps {
    /// The backend name: `sqlite`, `postgres` or `mysql`.
    pub backend: &'static str,
    /// Whether other processes can be woken by the database
    /// (`LISTEN/NOTIFY`).
    pub listen_notify: bool,
    /// Whether claims skip rows locked by other transactions.
    pub skip_locked: bool,
    /// Whether all writes are serialised (SQLite: one writer at a time), so
    /// many changes can share one transaction without two transactions ever
    /// waiting on each other's rows. With row locks and concurrent writers
    /// (PostgreSQL, MySQL) each change gets its own short transaction
    /// instead: two transactions locking children and parents in different
    /// orders would deadlock.
    pub single_writer: bool,
}

/// The operations the engine needs from a database. See the module docs:
/// not semver-stable, do not implement.
#[async_trait]
pub trait Store: AuditStore + FloorStore + WorkerStore + Send + Sync + 'static {
    /// The backend's capabilities.
    fn caps(&self) -> StoreCaps;

    /// Starts a write transaction. Status changes and everything that must
    /// happen with them (child inserts, a parent counting its finished
    /// children) go through one. Dropping it without
    /// [`StoreTx::commit`] rolls it back.
    async fn begin(&self) -> Result<Box<dyn StoreTx>>;

    /// Closes the connections; later calls fail.
    async fn close(&self);

    /// Forwards wake-ups from other processes (a task submitted or resumed
    /// elsewhere) to `wake` until the store is closed, reconnecting after a
    /// lost connection. Returns false when the backend cannot push them
    /// (callers poll).
    async fn listen(&self, wake: Arc<Notify>) -> Result<bool>;

    /// Applies every migration not yet applied, in version order, and
    /// returns the versions it applied. Idempotent.
    async fn migrate(&self) -> Result<Vec<i64>>;

    /// The migration versions recorded in the database, ascending.
    async fn migration_versions(&self) -> Result<Vec<i64>>;

    /// The database's current time, in milliseconds since the epoch.
    async fn now_ms(&self) -> Result<i64>;

    /// Vacuums and analyses fib-flow's busy tables where they need it,
    /// when the database does not do so itself (PostgreSQL with
    /// `autovacuum` off: a queue table rewrites every row at claim and
    /// completion, the dead index entries left behind slow every later
    /// claim, and plans cached while a table was small go on scanning it
    /// whole once it is large). Returns the commands it ran. Backends that
    /// clean up after themselves (SQLite, InnoDB's purge) do nothing.
    async fn vacuum_if_needed(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The schedule of a cron task (none for a missing task).
    async fn task_cron_get(&self, id: i64) -> Result<Option<CronRow>>;

    /// Changes a cron task's schedule or payload; returns whether the task
    /// exists and is a cron task.
    async fn task_cron_update(&self, params: &CronUpdateParams) -> Result<bool>;

    /// Inserts a cron task, or, when a task with its `unique_key` exists,
    /// updates that one's schedule and options (moving a pending row to the
    /// new first occurrence when the schedule changed). Returns the id.
    async fn task_cron_upsert(&self, params: &CronUpsertParams) -> Result<i64>;

    /// Deletes one task; returns whether it existed.
    async fn task_delete(&self, id: i64) -> Result<bool>;

    /// Claims up to `limit` due tasks in one transaction: per name at most
    /// that name's limit, ordered by priority (high first), then due time,
    /// then id. Claimed rows become `running` under `worker_id` with their
    /// attempt number incremented. Returns them in claim order. With
    /// `require_active_worker`, claims nothing unless the worker's registry
    /// row is `active` (and locks it in share mode until the end).
    async fn task_claim_many(&self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>>;

    /// Deletes the tasks matching the filter; returns how many.
    async fn task_delete_many(&self, params: &TaskListParams) -> Result<u64>;

    /// One task by id.
    async fn task_get(&self, id: i64) -> Result<Option<TaskRow>>;

    /// Renews, in one statement, the leases of the given tasks that are
    /// still running under `worker_id`, and returns the leases it renewed
    /// (id and attempt), so the caller can tell which attempts were lost.
    async fn task_heartbeat(&self, params: &TaskHeartbeatParams) -> Result<Vec<TaskLease>>;

    /// Inserts one task; returns its id.
    async fn task_insert(&self, params: &TaskInsertParams) -> Result<i64>;

    /// Submits a top-level task: inserts it together with its
    /// `task_created` event (`created`, whose task and root ids become the
    /// new id), atomically; returns the id. One transaction by default;
    /// PostgreSQL does it in one statement.
    async fn task_submit(&self, params: &TaskInsertParams, created: &NewEvent) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = tx.task_insert(params).await?;
        tx.audit_write(&AuditRows::created(&[id], created)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// [`Store::task_submit`] for a batch: inserts one task per payload,
    /// each with its `task_created` event, all or nothing, and returns the
    /// new ids in input order. One round trip per table per batch, not per
    /// task: PostgreSQL does it in one statement (the shared columns bound
    /// once), SQLite and MySQL in one transaction. An empty batch touches
    /// nothing.
    async fn task_submit_many(&self, batch: &TaskBatchParams) -> Result<Vec<i64>>;

    /// Tasks matching the filter, ordered by creation time then id.
    async fn task_list(&self, params: &TaskListParams) -> Result<Vec<TaskRow>>;

    /// Running tasks past their total timeout or their heartbeat timeout.
    async fn task_list_expired(&self, params: &TaskListExpiredParams) -> Result<Vec<ExpiredTask>>;

    /// The context blob of a task (none when unset or the task is gone).
    async fn task_context(&self, id: i64) -> Result<Option<Vec<u8>>>;

    /// The children a parent created at one stage, in id order.
    async fn task_list_children(&self, params: &TaskListChildrenParams) -> Result<Vec<ChildRow>>;

    /// Task counts grouped by tag, name and status.
    async fn task_stats(&self, params: &TaskStatsParams) -> Result<Vec<TaskStatsRow>>;
}

/// The writes of one transaction (see [`Store::begin`]). Same rules as
/// [`Store`]: one SQL file per method, no decisions. Rows a method changes
/// stay locked until the transaction ends.
#[async_trait]
pub trait StoreTx: Send {
    /// Writes a transaction's audit rows: opens the attempts, closes the
    /// open ones listed (by task and attempt number; one already closed is
    /// left alone) and inserts the events in order, all at the
    /// transaction's time, with one statement per table (PostgreSQL: one
    /// statement in all; SQLite: one command). The statements that change
    /// task rows stamp their newest-event snapshot themselves
    /// (`last_event_at`, `last_event_type`).
    async fn audit_write(&mut self, rows: &AuditRows) -> Result<()>;

    /// Commits every write of the transaction.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Counts one finished child on a parent still waiting at
    /// `parent_stage` (decrements `pending_children`); returns the parent
    /// afterwards, or `None` when it is not waiting at that stage (it
    /// failed, was cancelled, or moved on), in which case nothing changed.
    async fn task_child_finished(
        &mut self,
        params: &TaskChildFinishedParams,
    ) -> Result<Option<WaitingParent>>;

    /// [`Store::task_claim_many`] inside this transaction, so the claim's
    /// attempts and events commit with it.
    async fn task_claim_many(&mut self, params: &TaskClaimManyParams) -> Result<Vec<TaskRow>>;

    /// Inserts one task (a child, inside its parent's transaction).
    async fn task_insert(&mut self, params: &TaskInsertParams) -> Result<i64>;

    /// The ids of a task's children whose status is in `from`, locked, in
    /// id order.
    async fn task_list_unfinished_children(
        &mut self,
        params: &TaskCancelChildrenParams,
    ) -> Result<Vec<i64>>;

    /// Records on a child that its parent has been told of its outcome.
    /// True only the first time: the guard that makes propagation happen
    /// exactly once.
    async fn task_mark_parent_notified(&mut self, id: i64) -> Result<bool>;

    /// One status change, guarded by its allowed source statuses and (when
    /// given) its fence; returns the task when it applied.
    async fn task_set_status(&mut self, params: &TaskSetStatusParams) -> Result<Option<TaskRef>>;

    /// Several status changes of distinct tasks, each guarded as in
    /// [`StoreTx::task_set_status`]; returns, per change in order, the
    /// task when it applied. PostgreSQL and SQLite write them with one
    /// statement; MySQL (no `RETURNING` on updates) one by one.
    async fn task_set_status_many(
        &mut self,
        changes: &[TaskSetStatusParams],
    ) -> Result<Vec<Option<TaskRef>>> {
        let mut applied = Vec::with_capacity(changes.len());
        for change in changes {
            applied.push(self.task_set_status(change).await?);
        }
        Ok(applied)
    }

    /// Stamps `task_created` as the newest event of a task that has none
    /// yet (a cron task its upsert just inserted); returns whether it did,
    /// so the creation is recorded exactly once.
    async fn task_stamp_created(&mut self, id: i64) -> Result<bool>;

    /// A progress report or checkpoint of a running attempt: applies (and
    /// returns the task) only while the attempt still owns the task.
    async fn task_touch(&mut self, params: &TaskTouchParams) -> Result<Option<TouchedTask>>;
}

/// Opens the backend named by the URL scheme.
///
/// `sqlite:PATH` (a file, created when missing), `sqlite::memory:`,
/// `postgres://` / `postgresql://` and `mysql://` / `mariadb://`, each
/// behind its cargo feature (all on by default); any other scheme, or one
/// whose feature is off, is [`Error::UnsupportedDatabase`]. Every call
/// on the returned store runs in a `store` tracing span.
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>> {
    let backend = connect_backend(config).await?;
    Ok(Arc::new(traced::Traced::new(backend)))
}

async fn connect_backend(config: &Config) -> Result<Arc<dyn Store>> {
    let url = config.database_url.trim();
    let scheme = match url.split_once(':') {
        Some((scheme, rest)) if !rest.is_empty() => scheme.to_ascii_lowercase(),
        _ => String::new(),
    };
    match scheme.as_str() {
        "sqlite" => connect_sqlite(config).await,
        "postgres" | "postgresql" => connect_postgres(config).await,
        "mysql" | "mariadb" => connect_mysql(config).await,
        _ => Err(Error::UnsupportedDatabase {
            url: redact(url),
            reason: "unknown scheme; expected sqlite:PATH, sqlite::memory:, postgres://, \
                     postgresql://, mysql:// or mariadb://"
                .into(),
        }),
    }
}

#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn feature_off(config: &Config, feature: &str) -> Error {
    Error::UnsupportedDatabase {
        url: redact(&config.database_url),
        reason: format!(
            "this build of fib-flow lacks the `{feature}` cargo feature that supports it"
        ),
    }
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(config: &Config) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(sqlite::SqliteStore::connect(config).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(config: &Config) -> Result<Arc<dyn Store>> {
    Err(feature_off(config, "sqlite"))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(config: &Config) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(postgres::PgStore::connect(config).await?))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(config: &Config) -> Result<Arc<dyn Store>> {
    Err(feature_off(config, "postgres"))
}

#[cfg(feature = "mysql")]
async fn connect_mysql(config: &Config) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(mysql::MySqlStore::connect(config).await?))
}

#[cfg(not(feature = "mysql"))]
async fn connect_mysql(config: &Config) -> Result<Arc<dyn Store>> {
    Err(feature_off(config, "mysql"))
}

/// The URL with any password replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    if let (Some(scheme_end), Some(at)) = (url.find("://"), url.rfind('@')) {
        let credentials = &url[scheme_end + 3..at];
        if let Some(colon) = credentials.find(':') {
            let user = &credentials[..colon];
            return format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]);
        }
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite:x.db"), "sqlite:x.db");
    }

    #[tokio::test]
    async fn unknown_and_unbuilt_schemes_are_clear_errors() {
        for url in ["redis://x", "nonsense", "sqlite", "sqlite:", "postgres:"] {
            match connect(&Config::new(url)).await {
                Err(Error::UnsupportedDatabase { reason, .. }) => assert!(!reason.is_empty()),
                Err(other) => panic!("{url}: unexpected {other:?}"),
                Ok(_) => panic!("{url}: connected"),
            }
        }
    }
}
