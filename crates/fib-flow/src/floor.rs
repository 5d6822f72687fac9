//! The benchmark floor: fib-flow's own insert, claim and complete
//! statements issued bare, without the engine, to measure the database's
//! ceiling for this schema (`fib-flow bench --workloads floor`), so each
//! engine figure can be given as a fraction of it.
//!
//! **A benchmarking tool, not an API for applications.** A [`FloorProbe`]
//! bypasses the engine and every guarantee it gives: no handler runs, no
//! audit events or attempts are written, claims ignore the worker registry,
//! completions are not fenced, and [`FloorProbe::reset`] empties every
//! fib-flow table. Never point it at a database whose tasks or workers you
//! care about.
//!
//! ```
//! use fib_flow::floor::FloorProbe;
//! use fib_flow::TaskManager;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fib_flow::Error> {
//! let manager = TaskManager::builder()
//!     .database("sqlite::memory:")
//!     .build()
//!     .await?;
//! manager.setup().await?;
//! let probe = FloorProbe::new(&manager)?;
//! probe.insert(100).await?;
//! let ids = probe.claim("floor-worker", 10).await?;
//! assert_eq!(probe.complete(&ids).await?, 10);
//! probe.reset().await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::audit::record;
use crate::error::{Error, Result};
use crate::manager::TaskManager;
use crate::store::{
    ClaimName, FloorCompleteParams, Store, TaskBatchParams, TaskClaimManyParams, TaskInsertParams,
};
use crate::task::TaskOptions;

/// The name of every row a probe inserts and claims.
pub const FLOOR_TASK_NAME: &str = "noop";

/// Issues fib-flow's insert, claim and complete statements bare, on a
/// manager's database (see the module docs: benchmarking only; it bypasses
/// the engine, the audit and every guarantee).
pub struct FloorProbe {
    store: Arc<dyn Store>,
    /// The row every insert writes: a submit of [`FLOOR_TASK_NAME`] with
    /// the payload `{"n":1}` and the manager's defaults.
    row: TaskInsertParams,
}

impl std::fmt::Debug for FloorProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorProbe")
            .field("backend", &self.store.caps().backend)
            .field("row", &self.row)
            .finish()
    }
}

impl FloorProbe {
    /// A probe on `manager`'s database. Its rows get the columns
    /// `manager.submit(FLOOR_TASK_NAME, &json!({"n": 1}))` would write (the
    /// manager's default timeout, attempts and retry interval, priority 0,
    /// due now).
    ///
    /// # Errors
    ///
    /// [`Error::Lifecycle`] when the manager is stopped.
    pub fn new(manager: &TaskManager) -> Result<Self> {
        // Fails on a stopped manager.
        manager.store()?;
        let store = Arc::clone(&manager.shared().store);
        let payload = serde_json::json!({ "n": 1 });
        let row = manager.insert_params(FLOOR_TASK_NAME, &payload, TaskOptions::new())?;
        Ok(FloorProbe { store, row })
    }

    /// Inserts `rows` pending [`FLOOR_TASK_NAME`] rows in ONE autocommitted
    /// statement, the engine's batch insert without its `task_created`
    /// events: `insert(1)` is the single-row commit, `insert(b)` the
    /// multi-row insert of a batch. Nothing happens for 0 rows.
    ///
    /// # Errors
    ///
    /// A database error; [`Error::Corrupt`] if the database reports another
    /// row count.
    pub async fn insert(&self, rows: usize) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        let payloads = vec![self.row.payload.clone(); rows];
        let created = record::created(0, &self.row);
        let batch = TaskBatchParams::new(self.row.clone(), payloads, created)?;
        let inserted = self.store.floor_task_insert_many(&batch).await?;
        if usize::try_from(inserted).ok() != Some(rows) {
            return Err(Error::Corrupt {
                column: "id",
                reason: format!("inserted {inserted} rows of {rows}"),
            });
        }
        Ok(())
    }

    /// Claims up to `limit` due [`FLOOR_TASK_NAME`] rows for `worker_id`
    /// with the store's real claim statement (the one the engine runs), but
    /// without the claim's audit writes and without checking the worker
    /// registry. Returns the claimed ids in claim order (priority first),
    /// now `running`.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn claim(&self, worker_id: &str, limit: usize) -> Result<Vec<i64>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names = vec![ClaimName {
            name: FLOOR_TASK_NAME.to_owned(),
            limit,
        }];
        let params = TaskClaimManyParams::new(worker_id, names, limit);
        let rows = self.store.task_claim_many(&params).await?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    /// Marks the `running` rows among `ids` `completed` in ONE
    /// autocommitted statement (status, finish time, a `null` result, no
    /// owner, as a completion writes them), without fence, event or
    /// attempt. Returns how many rows changed.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn complete(&self, ids: &[i64]) -> Result<u64> {
        self.store
            .floor_task_complete_many(&FloorCompleteParams::new(ids.to_vec()))
            .await
    }

    /// Empties every fib-flow table (tasks, task events, task attempts,
    /// workers, leases; not the migrations table) so no dead rows remain:
    /// PostgreSQL `TRUNCATE … RESTART IDENTITY`, MySQL `TRUNCATE TABLE`,
    /// SQLite `DELETE FROM`. Other managers on the database lose their
    /// tasks and their registry rows.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn reset(&self) -> Result<()> {
        self.store.floor_reset().await
    }
}
