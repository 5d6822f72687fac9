//! The cluster side of the storage seam: the worker registry
//! (`fib_flow_workers`), the running tasks of workers that are gone, and
//! named leases (`fib_flow_leases`, one row per elected role, such as the
//! maintenance node) ([`WorkerStore`]).
//!
//! Same rules as the rest of the store: one params struct per method, one
//! SQL file per statement, no decisions. Times are milliseconds since the
//! epoch on the database clock (SQLite: this process's clock).

use async_trait::async_trait;

use crate::error::Result;

/// `status` of a worker that holds its lease and may claim.
pub const WORKER_ACTIVE: &str = "active";
/// `status` of a worker replaced by a newer one of the same pod.
pub const WORKER_SUPERSEDED: &str = "superseded";
/// `status` of a worker whose lease lapsed without renewal.
pub const WORKER_DEAD: &str = "dead";
/// `status` of a worker that stopped gracefully.
pub const WORKER_STOPPED: &str = "stopped";

/// A row of `fib_flow_workers`, with how many tasks it runs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkerRow {
    /// `worker_id`: unique per process start.
    pub worker_id: String,
    /// `pod_id`: the stable node identity it registered under.
    pub pod_id: String,
    /// `status`: one of the `WORKER_*` constants.
    pub status: String,
    /// `registered_at`
    pub registered_at: i64,
    /// `last_seen_at`: its newest registration or renewal.
    pub last_seen_at: i64,
    /// `expires_at`: its lease ends here unless renewed.
    pub expires_at: i64,
    /// `superseded_at`
    pub superseded_at: Option<i64>,
    /// `superseded_by`: the worker that superseded it.
    pub superseded_by: Option<String>,
    /// `dead_at`
    pub dead_at: Option<i64>,
    /// `stopped_at`
    pub stopped_at: Option<i64>,
    /// `meta`: JSON object text (`pid`, `host`, `version`, `started_at`).
    pub meta: Option<String>,
    /// How many tasks are `running` under this worker id (counted by the
    /// query; not a column).
    pub running_tasks: i64,
}

/// Params of [`WorkerStore::worker_register`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegisterParams {
    /// The registering worker.
    pub worker_id: String,
    /// Its pod.
    pub pod_id: String,
    /// Lease length, ms (> 0).
    pub ttl_ms: i64,
    /// JSON object text stored in `meta`.
    pub meta: Option<String>,
}

/// What [`WorkerStore::worker_register`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegistration {
    /// The worker's row as registered.
    pub worker: WorkerRow,
    /// The other workers of the pod it superseded, sorted.
    pub superseded: Vec<String>,
}

/// Params of [`WorkerStore::worker_heartbeat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerHeartbeatParams {
    /// The worker renewing its lease.
    pub worker_id: String,
    /// Lease length from now, ms (> 0).
    pub ttl_ms: i64,
}

/// Params of [`WorkerStore::worker_list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerListParams {
    /// Only this pod.
    pub pod_id: Option<String>,
    /// Only this status (a `WORKER_*` constant).
    pub status: Option<String>,
}

/// Params of [`WorkerStore::worker_prune`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPruneParams {
    /// Rows not `active` whose `last_seen_at` is older than the clock minus
    /// this many ms are deleted (when they run no task).
    pub older_than_ms: i64,
    /// Most rows deleted in one call.
    pub limit: i64,
}

/// Params of [`WorkerStore::task_list_orphaned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskListOrphanedParams {
    /// Most rows returned.
    pub limit: i64,
}

/// A running task whose worker is registered but no longer `active`
/// (superseded, dead or stopped): nobody will finish it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrphanedTask {
    /// The task's `id`.
    pub id: i64,
    /// The task's `name`.
    pub name: String,
    /// The task's `worker_id` (the worker that is gone).
    pub worker_id: String,
    /// The task's `attempt` (the running one).
    pub attempt: i64,
    /// That worker's registry `status`.
    pub worker_status: String,
}

/// A row of `fib_flow_leases`: who holds a named role, until when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRow {
    /// `name` of the role (`maintenance`).
    pub name: String,
    /// `holder`: the worker id holding it.
    pub holder: String,
    /// `acquired_at`: when this holder took it.
    pub acquired_at: i64,
    /// `renewed_at`: its newest renewal.
    pub renewed_at: i64,
    /// `expires_at`: it lapses here unless renewed.
    pub expires_at: i64,
}

/// Params of [`WorkerStore::lease_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAcquireParams {
    /// The role.
    pub name: String,
    /// The worker asking for it.
    pub holder: String,
    /// Lease length from now, ms (> 0).
    pub ttl_ms: i64,
}

/// Params of [`WorkerStore::lease_release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseReleaseParams {
    /// The role.
    pub name: String,
    /// The worker giving it up.
    pub holder: String,
}

/// The registry, orphaned tasks and leases. Every backend implements it;
/// see the module docs.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// Takes or renews a lease, atomically: inserts it when there is no
    /// row; renews it (`renewed_at = now`, `expires_at = now + ttl_ms`)
    /// when `holder` holds it; takes it over (`holder`, `acquired_at =
    /// renewed_at = now`, new `expires_at`) when another holder's lease
    /// ended (`expires_at < now`); otherwise changes nothing. Returns the
    /// row when `holder` holds it afterwards, `None` when another does.
    async fn lease_acquire(&self, params: &LeaseAcquireParams) -> Result<Option<LeaseRow>>;

    /// The row of a lease, current or lapsed (`None` when never taken or
    /// released).
    async fn lease_get(&self, name: &str) -> Result<Option<LeaseRow>>;

    /// Gives a lease up (deletes its row) when `holder` holds it; returns
    /// whether it did.
    async fn lease_release(&self, params: &LeaseReleaseParams) -> Result<bool>;

    /// Running tasks whose `worker_id` names a registered worker whose
    /// status is not `active`, by id.
    async fn task_list_orphaned(
        &self,
        params: &TaskListOrphanedParams,
    ) -> Result<Vec<OrphanedTask>>;

    /// One worker, with its running task count.
    async fn worker_get(&self, worker_id: &str) -> Result<Option<WorkerRow>>;

    /// Renews the lease of an `active` worker (`last_seen_at = now`,
    /// `expires_at = now + ttl_ms`); a worker in any other status is left
    /// alone. Returns its row afterwards (renewed or not), `None` when
    /// there is none.
    async fn worker_heartbeat(&self, params: &WorkerHeartbeatParams) -> Result<Option<WorkerRow>>;

    /// Workers matching the filters, ordered by `registered_at` then
    /// `worker_id`, each with its running task count.
    async fn worker_list(&self, params: &WorkerListParams) -> Result<Vec<WorkerRow>>;

    /// Deletes up to `limit` workers that are not `active`, were last seen
    /// before the clock minus `older_than_ms`, and run no task; returns how
    /// many.
    async fn worker_prune(&self, params: &WorkerPruneParams) -> Result<u64>;

    /// Marks every `active` worker whose lease ended (`expires_at < now`;
    /// equal is still alive) `dead` (`dead_at = now`); returns their ids,
    /// sorted.
    async fn worker_reap(&self) -> Result<Vec<String>>;

    /// In one transaction: replaces any row with this worker id by a new
    /// `active` one (`registered_at = last_seen_at = now`, `expires_at =
    /// now + ttl_ms`, the given `meta`, the other columns null), and marks
    /// every other `active` worker of the same pod `superseded`
    /// (`superseded_at = now`, `superseded_by` = this worker).
    async fn worker_register(&self, params: &WorkerRegisterParams) -> Result<WorkerRegistration>;

    /// Marks a worker `stopped` (`stopped_at = now`) unless it already is;
    /// returns whether it changed a row.
    async fn worker_stop(&self, worker_id: &str) -> Result<bool>;
}
