//! # fib-flow
//!
//! A durable workflow and background-task engine. Tasks live in a database
//! (SQLite embedded, PostgreSQL or MySQL), so they survive restarts and many
//! worker processes can share them.
//!
//! ```
//! use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fib_flow::Error> {
//! let manager = TaskManager::builder()
//!     .database("sqlite::memory:")
//!     .max_concurrent_tasks(4)
//!     .build()
//!     .await?;
//! manager.setup().await?;
//!
//! manager.register("add", |task: Task| async move {
//!     let (a, b): (i64, i64) = task.payload()?;
//!     Ok::<_, BoxError>(Step::done(json!({ "sum": a + b })))
//! })?;
//!
//! manager.start().await?;
//! let id = manager.submit("add", &(2, 3)).await?;
//! # let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
//! loop {
//!     let task = manager.get_task(id).await?.expect("submitted");
//!     if task.status == TaskStatus::Completed {
//!         assert_eq!(task.result, Some(json!({ "sum": 5 })));
//!         break;
//!     }
//! #   assert!(std::time::Instant::now() < deadline, "task did not complete");
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! manager.stop().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The pieces: [`TaskManager`] (built with [`TaskManager::builder`]),
//! handlers ([`Handler`], any async closure taking a [`Task`] and returning
//! a [`Step`]), per-task [`TaskOptions`], and the statuses of
//! [`TaskStatus`] (see `docs/state_machine.md`).
//!
//! - **Workflows**: a handler returns [`Step::children`] to create child
//!   tasks and wait; it runs again at `stage + 1` and reads
//!   [`Task::child_results`] and its private [`Task::context`]. A failed
//!   child fails its parent unless the parent chose
//!   [`ChildFailure::Resume`] (`cargo run -p fib-flow --example workflow`).
//! - **Human in the loop**: [`Step::suspend`] waits for
//!   [`TaskManager::resume_task`] or [`TaskManager::cancel_task`].
//! - **Cron**: [`TaskManager::cron`] / [`TaskManager::cron_with`] keep one
//!   row per schedule, re-armed after each run (see [`cron`]).
//! - **Execution audit**: every claim, status change and child stage is
//!   recorded as events and attempts in the same transaction; handlers add
//!   [`Task::audit`] checkpoints and [`Task::progress`] reports; query them
//!   with [`TaskManager::task_events`], [`TaskManager::task_attempts`],
//!   [`TaskManager::query_tasks`] and [`TaskManager::workflow_summary`];
//!   [`RetentionPolicy`] bounds them (see [`audit`] and `docs/audit.md`).
//! - **Many workers**: point several processes at one PostgreSQL or MySQL
//!   database; claims skip each other's rows, every write of a running
//!   attempt is fenced by worker id and attempt number, and PostgreSQL
//!   wakes idle workers with `LISTEN/NOTIFY`. With a
//!   [`pod_id`](TaskManagerBuilder::pod_id) each process registers in the
//!   worker registry ([`TaskManager::workers`]); the running tasks of a
//!   worker that died, was superseded by a restart of its pod, or stopped
//!   go back to `pending` within seconds, without spending a retry. One
//!   elected node runs maintenance ([`TaskManager::maintenance_leader`];
//!   see [`workers`] and `docs/worker-recovery.md`).

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
// Nothing a user or the database causes may panic; tests may unwrap.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod config;
pub mod cron;
mod engine;
mod error;
pub mod floor;
mod handler;
mod manager;
mod retry;
pub mod state;
mod step;
pub mod store;
mod task;
pub mod workers;

pub use audit::{
    AttemptOutcome, AttemptQuery, Checkpoint, EventQuery, EventType, Order, Page, PageRequest,
    Progress, RetentionPolicy, RetentionReport, TaskAttempt, TaskAudit, TaskEvent, TaskQuery,
    WorkflowAudit, WorkflowSummary,
};
pub use config::Config;
pub use cron::{CronOptions, CronUpdate, Misfire};
pub use error::{BoxError, Error, Result};
pub use handler::{Handler, HandlerOptions};
pub use manager::{ManagerState, TaskManager, TaskManagerBuilder};
pub use state::{ChildFailure, TaskKind, TaskStatus};
pub use step::{Child, ChildResult, Children, Step, Suspension};
pub use task::{RunAt, Task, TaskFilter, TaskId, TaskOptions, TaskRecord, TaskStats};
pub use workers::{MaintenanceLeader, WorkerFilter, WorkerRecord, WorkerStatus};
