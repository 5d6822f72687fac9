//! [`TaskManager`], the one public entry point, and its builder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::audit::{record, RetentionPolicy};
use crate::config::{millis, Config, MAX_SUBMIT_BATCH};
use crate::cron::{CronOptions, CronSchedule, CronUpdate};
use crate::engine::workflow;
use crate::engine::{retry_transient, Services, Shared};
use crate::error::{Error, Result};
use crate::handler::{check_duration, Handler, HandlerOptions, Registration};
use crate::state::{TaskKind, TaskStatus};
use crate::store::{
    CronUpdateParams, CronUpsertParams, NextRun, Store, StoreCaps, TaskBatchParams,
    TaskInsertParams, TaskListParams, TaskSetStatusParams, TaskStatsParams,
};
use crate::task::{
    check_name, check_priority, RunAt, TaskFilter, TaskId, TaskOptions, TaskRecord, TaskStats,
};

/// Builds a [`TaskManager`]; every option says its default. Options are
/// checked once, by [`TaskManagerBuilder::build`].
#[derive(Debug, Clone)]
pub struct TaskManagerBuilder {
    config: Config,
}

macro_rules! option_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    )*};
}

impl TaskManagerBuilder {
    /// The database URL: `sqlite:PATH` (created when missing),
    /// `sqlite::memory:`, `postgres://…` / `postgresql://…`, or `mysql://…` /
    /// `mariadb://…`. Required.
    pub fn database(mut self, url: impl Into<String>) -> Self {
        self.config.database_url = url.into();
        self
    }

    /// A PostgreSQL schema or MySQL database for fib-flow's tables, created
    /// when missing. Defaults to none (see [`Config::schema`]).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.config.schema = Some(schema.into());
        self
    }

    /// The automatic retention policy (see [`Config::retention`]); checked
    /// by `build()`. Defaults to the default [`RetentionPolicy`].
    pub fn retention(mut self, policy: RetentionPolicy) -> Self {
        self.config.retention = Some(policy);
        self
    }

    /// Turns automatic retention off (finished tasks are kept until
    /// [`TaskManager::run_retention`] or a delete).
    pub fn no_retention(mut self) -> Self {
        self.config.retention = None;
        self
    }

    /// This process's worker id. Defaults to `worker-<uuid v4>`.
    pub fn worker_id(mut self, worker_id: impl Into<String>) -> Self {
        self.config.worker_id = worker_id.into();
        self
    }

    /// This node's stable identity; enables the worker registry (see
    /// [`Config::pod_id`]). Defaults to none.
    pub fn pod_id(mut self, pod_id: impl Into<String>) -> Self {
        self.config.pod_id = Some(pod_id.into());
        self
    }

    option_setters! {
        /// Idle wait between polls. Defaults to
        /// [`DEFAULT_POLL_INTERVAL`](crate::config::DEFAULT_POLL_INTERVAL) (1 s).
        poll_interval: Duration;
        /// Default total runs per task. Defaults to
        /// [`DEFAULT_MAX_ATTEMPTS`](crate::config::DEFAULT_MAX_ATTEMPTS) (3).
        max_attempts: u32;
        /// Default delay before a retry. Defaults to
        /// [`DEFAULT_RETRY_INTERVAL`](crate::config::DEFAULT_RETRY_INTERVAL) (0).
        retry_interval: Duration;
        /// Default total run time of an attempt. Defaults to
        /// [`DEFAULT_TIMEOUT`](crate::config::DEFAULT_TIMEOUT) (60 s).
        timeout: Duration;
        /// Most handlers running at once in this process. Defaults to
        /// [`DEFAULT_MAX_CONCURRENT_TASKS`](crate::config::DEFAULT_MAX_CONCURRENT_TASKS) (10).
        max_concurrent_tasks: usize;
        /// Period of the lease heartbeat. Defaults to
        /// [`DEFAULT_TASK_HEARTBEAT_INTERVAL`](crate::config::DEFAULT_TASK_HEARTBEAT_INTERVAL) (5 s).
        task_heartbeat_interval: Duration;
        /// Lease length of a running task. Defaults to
        /// [`DEFAULT_TASK_HEARTBEAT_TIMEOUT`](crate::config::DEFAULT_TASK_HEARTBEAT_TIMEOUT) (30 s).
        task_heartbeat_timeout: Duration;
        /// Period of the maintenance pass (on the elected node: reaping
        /// workers, recovering their tasks, timing out lapsed tasks).
        /// Defaults to
        /// [`DEFAULT_MAINTENANCE_INTERVAL`](crate::config::DEFAULT_MAINTENANCE_INTERVAL) (5 s).
        maintenance_interval: Duration;
        /// How long `stop()` lets handlers finish. Defaults to
        /// [`DEFAULT_SHUTDOWN_TIMEOUT`](crate::config::DEFAULT_SHUTDOWN_TIMEOUT) (30 s).
        shutdown_timeout: Duration;
        /// Period of the registry and maintenance-lease heartbeat. Defaults
        /// to [`DEFAULT_WORKER_HEARTBEAT_INTERVAL`](crate::config::DEFAULT_WORKER_HEARTBEAT_INTERVAL) (5 s).
        worker_heartbeat_interval: Duration;
        /// Length of the registry and maintenance leases. Defaults to
        /// [`DEFAULT_WORKER_HEARTBEAT_TIMEOUT`](crate::config::DEFAULT_WORKER_HEARTBEAT_TIMEOUT) (30 s).
        worker_heartbeat_timeout: Duration;
        /// Whether tasks of dead, superseded and stopped workers are
        /// recovered at once. Defaults to true.
        recover_running_jobs: bool;
        /// Whether this process may be elected the maintenance node.
        /// Defaults to true.
        maintenance: bool;
        /// Whether a claim's commit waits for its disk flush (PostgreSQL;
        /// see [`Config::synchronous_claims`](crate::config::Config::synchronous_claims)).
        /// Defaults to false.
        synchronous_claims: bool;
        /// Whether the maintenance node vacuums the busy tables where the
        /// database will not (PostgreSQL with autovacuum off; see
        /// [`Config::vacuum`](crate::config::Config::vacuum)). Defaults to true.
        vacuum: bool;
        /// Wake-ups pushed by other processes (PostgreSQL). Defaults to true.
        notifications: bool;
        /// SQLite lock wait. Defaults to
        /// [`DEFAULT_SQLITE_BUSY_TIMEOUT`](crate::config::DEFAULT_SQLITE_BUSY_TIMEOUT) (5 s).
        sqlite_busy_timeout: Duration;
    }

    /// The options as set so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Validates every option and connects to the database (it does not
    /// create the schema: call [`TaskManager::setup`]).
    pub async fn build(self) -> Result<TaskManager> {
        self.config.validate()?;
        let store = crate::store::connect(&self.config).await?;
        Ok(TaskManager {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(self.config, store)),
                lifecycle: tokio::sync::Mutex::new(Lifecycle::Idle),
                state: Mutex::new(ManagerState::Idle),
            }),
        })
    }
}

/// Where a manager is in its life: idle → running → stopped (no restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerState {
    /// Built, not started: submissions and queries work, nothing runs.
    Idle,
    /// Claiming and running tasks.
    Running,
    /// Running, but not claiming new tasks (`pause()`).
    Paused,
    /// Stopped; every call fails.
    Stopped,
}

impl ManagerState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagerState::Idle => "idle",
            ManagerState::Running => "running",
            ManagerState::Paused => "paused",
            ManagerState::Stopped => "stopped",
        }
    }
}

enum Lifecycle {
    Idle,
    Running(Services),
    Stopped,
}

struct Inner {
    shared: Arc<Shared>,
    /// Serialises start/stop.
    lifecycle: tokio::sync::Mutex<Lifecycle>,
    state: Mutex<ManagerState>,
}

/// Submits, runs and inspects tasks. Cheap to clone (an `Arc` inside), so
/// handlers can hold one.
///
/// Calls that only touch the database (submit, queries, `pause_task`) work
/// before [`TaskManager::start`]; after [`TaskManager::stop`] every call
/// fails with [`Error::Lifecycle`].
#[derive(Clone)]
pub struct TaskManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager")
            .field("worker_id", &self.shared().config.worker_id)
            .field("state", &self.state())
            .finish()
    }
}

impl TaskManager {
    /// A builder with every option at its default.
    pub fn builder() -> TaskManagerBuilder {
        TaskManagerBuilder {
            config: Config::new(""),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn store(&self) -> Result<&dyn Store> {
        self.ensure_open()?;
        Ok(self.shared().store.as_ref())
    }

    fn ensure_open(&self) -> Result<()> {
        match self.state() {
            ManagerState::Stopped => Err(Error::Lifecycle {
                state: "stopped",
                reason: "a stopped manager cannot be used; build a new one".into(),
            }),
            _ => Ok(()),
        }
    }

    fn set_state(&self, state: ManagerState) {
        *self.inner.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The manager's lifecycle state.
    pub fn state(&self) -> ManagerState {
        *self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resolved options.
    pub fn config(&self) -> &Config {
        &self.shared().config
    }

    /// This process's worker id.
    pub fn worker_id(&self) -> &str {
        &self.shared().config.worker_id
    }

    /// What the database backend can do.
    pub fn backend(&self) -> StoreCaps {
        self.shared().store.caps()
    }

    /// Creates or upgrades the schema (versioned migrations tracked in
    /// `fib_flow_migrations`). Idempotent; returns the versions it applied.
    pub async fn setup(&self) -> Result<Vec<i64>> {
        self.store()?.migrate().await
    }

    /// Registers `handler` for tasks named `name` with default options,
    /// replacing any handler of that name (hot reload: attempts already
    /// running keep the handler they started with).
    pub fn register(&self, name: &str, handler: impl Handler) -> Result<()> {
        self.register_with(name, handler, HandlerOptions::new())
    }

    /// Registers `handler` with options; see [`TaskManager::register`].
    /// Never undoes a manager-level [`TaskManager::pause`].
    pub fn register_with(
        &self,
        name: &str,
        handler: impl Handler,
        options: HandlerOptions,
    ) -> Result<()> {
        self.ensure_open()?;
        self.shared().registry.insert(
            name,
            Registration {
                handler: Arc::new(handler),
                options,
            },
        )?;
        self.shared().wake.notify_one();
        Ok(())
    }

    /// Removes the handler of `name`; returns whether there was one. Future
    /// claims skip the name; attempts already running finish.
    pub fn unregister(&self, name: &str) -> bool {
        self.shared().registry.remove(name)
    }

    /// The registered handler names with their options, sorted by name.
    pub fn handlers(&self) -> Vec<(String, HandlerOptions)> {
        let registry = &self.shared().registry;
        registry
            .names()
            .into_iter()
            .filter_map(|(name, _)| registry.get(&name).map(|reg| (name, reg.options)))
            .collect()
    }

    /// Submits an async task with default options. A name nobody here has
    /// registered is accepted: another worker may run it.
    pub async fn submit<P: Serialize + ?Sized>(&self, name: &str, payload: &P) -> Result<TaskId> {
        self.submit_with(name, payload, TaskOptions::new()).await
    }

    /// Submits an async task. Each option falls back to the handler's, then
    /// the manager's. Invalid input is a typed error and nothing is
    /// inserted.
    pub async fn submit_with<P: Serialize + ?Sized>(
        &self,
        name: &str,
        payload: &P,
        options: TaskOptions,
    ) -> Result<TaskId> {
        let params = self.insert_params(name, payload, options)?;
        let store = self.store()?;
        // The event's ids are filled in with the new task's.
        let created = record::created(0, &params);
        let id = retry_transient(|| store.task_submit(&params, &created)).await?;
        match params.next_run {
            NextRun::Keep | NextRun::AfterMs(0) => self.shared().wake.notify_one(),
            NextRun::AfterMs(delay) => self
                .shared()
                .note_due(chrono::Utc::now().timestamp_millis().saturating_add(delay)),
            NextRun::AtMs(at) => self.shared().note_due(at),
        }
        Ok(TaskId(id))
    }

    /// Submits one async task per payload, all of `name` with default
    /// options, in one batch: see [`TaskManager::submit_many_with`].
    pub async fn submit_many<P: Serialize>(
        &self,
        name: &str,
        payloads: &[P],
    ) -> Result<Vec<TaskId>> {
        self.submit_many_with(name, payloads, TaskOptions::new())
            .await
    }

    /// Submits one async task per payload, all of `name` with the same
    /// `options` (resolved as in [`TaskManager::submit_with`]), and returns
    /// their ids in payload order.
    ///
    /// All or nothing: every payload is validated and serialised first, then
    /// the whole batch is inserted with its `task_created` events in one
    /// transaction (one statement per table, not per task). An empty slice
    /// returns an empty list without touching the database.
    ///
    /// # Errors
    ///
    /// Nothing is stored on any error.
    /// - [`Error::InvalidInput`] naming `payloads` for more than
    ///   [`MAX_SUBMIT_BATCH`] (10,000) payloads, or for a payload that cannot
    ///   be serialised to JSON (the reason starts with `item N:`, its index).
    /// - [`Error::InvalidInput`] naming the option (`name`, `tag`,
    ///   `timeout`, ...) when an option is invalid, as `submit_with` does
    ///   (the options are checked once for the whole batch).
    /// - A database error, after retrying transient ones.
    pub async fn submit_many_with<P: Serialize>(
        &self,
        name: &str,
        payloads: &[P],
        options: TaskOptions,
    ) -> Result<Vec<TaskId>> {
        if payloads.len() > MAX_SUBMIT_BATCH {
            return Err(Error::invalid(
                "payloads",
                format!(
                    "{} items is more than MAX_SUBMIT_BATCH ({MAX_SUBMIT_BATCH}) per call; \
                     split the batch",
                    payloads.len()
                ),
            ));
        }
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        // One name and one set of options for every task: checked once,
        // and written once per batch.
        let task = self.task_params(name, options)?;
        let payloads = payloads
            .iter()
            .enumerate()
            .map(|(index, payload)| {
                payload_text(payload).map_err(|source| Error::InvalidInput {
                    field: "payloads",
                    reason: format!("item {index}: the payload cannot be serialised: {source}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let store = self.store()?;
        let next_run = task.next_run;
        // The event's ids are filled in with each new task's.
        let created = record::created(0, &task);
        let batch = TaskBatchParams::new(task, payloads, created)?;
        let ids = retry_transient(|| store.task_submit_many(&batch)).await?;
        // One wake-up (or due time) per batch.
        match next_run {
            NextRun::Keep | NextRun::AfterMs(0) => self.shared().wake.notify_one(),
            NextRun::AfterMs(delay) => self
                .shared()
                .note_due(chrono::Utc::now().timestamp_millis().saturating_add(delay)),
            NextRun::AtMs(at) => self.shared().note_due(at),
        }
        Ok(ids.into_iter().map(TaskId).collect())
    }

    /// Adds a cron task: one row that runs `name` with `payload` at every
    /// occurrence of `expr` (in UTC; see [`TaskManager::cron_with`] for
    /// options) and is re-armed after each run. Returns its id.
    pub async fn cron<P: Serialize + ?Sized>(
        &self,
        name: &str,
        expr: &str,
        payload: &P,
    ) -> Result<TaskId> {
        self.cron_with(name, expr, payload, CronOptions::new())
            .await
    }

    /// Adds a cron task with options: a time zone, a misfire policy, task
    /// options, and a key that makes the call an idempotent upsert. An
    /// invalid expression or zone is a typed error and nothing is
    /// inserted. After each successful run the task goes back to `pending`
    /// at the next occurrence strictly after the run, at stage 0 with a
    /// fresh retry budget; exhausted retries pause it.
    pub async fn cron_with<P: Serialize + ?Sized>(
        &self,
        name: &str,
        expr: &str,
        payload: &P,
        options: CronOptions,
    ) -> Result<TaskId> {
        let schedule = CronSchedule::parse(expr, options.time_zone.as_deref())?;
        if let Some(key) = &options.key {
            check_name("key", key)?;
        }
        let first = schedule.next_after(chrono::Utc::now())?;
        let mut task = self.insert_params(
            name,
            payload,
            TaskOptions {
                run_at: None,
                ..options.task
            },
        )?;
        task.kind = TaskKind::Cron;
        task.cron_expr = Some(expr.to_owned());
        task.next_run = NextRun::AtMs(first.timestamp_millis());
        let params = CronUpsertParams {
            task,
            cron_tz: schedule.time_zone().to_owned(),
            cron_misfire: options.misfire.as_str().to_owned(),
            unique_key: options.key,
        };
        let store = self.store()?;
        let id = store.task_cron_upsert(&params).await?;
        // A schedule the upsert inserted (not one it updated) has no event
        // yet: record its creation, once.
        retry_transient(|| async {
            let mut tx = store.begin().await?;
            if tx.task_stamp_created(id).await? {
                let audit = record::AuditRows {
                    events: vec![record::created(id, &params.task)],
                    ..Default::default()
                };
                tx.audit_write(&audit).await?;
            }
            tx.commit().await
        })
        .await?;
        self.shared().note_due(first.timestamp_millis());
        Ok(TaskId(id))
    }

    /// Changes a cron task's expression, time zone, misfire policy or
    /// payload. A pending task moves to the new schedule's next occurrence
    /// at once; a running one keeps its run and re-arms by the new
    /// schedule. Not a cron task (or no such task) → [`Error::NotFound`].
    pub async fn update_cron(&self, id: TaskId, update: CronUpdate) -> Result<()> {
        let store = self.store()?;
        let current = store
            .task_cron_get(id.get())
            .await?
            .ok_or(Error::NotFound { id })?;
        let expr = update
            .expr
            .clone()
            .or(current.cron_expr)
            .unwrap_or_default();
        let tz = update.time_zone.clone().or(current.cron_tz);
        let schedule = CronSchedule::parse(&expr, tz.as_deref())?;
        let payload = update
            .payload
            .as_ref()
            .map(|value| (!value.is_null()).then(|| value.to_string()));
        let next = schedule.next_after(chrono::Utc::now())?.timestamp_millis();
        let params = CronUpdateParams {
            id: id.get(),
            cron_expr: update.expr,
            cron_tz: update.time_zone.map(|_| schedule.time_zone().to_owned()),
            cron_misfire: update.misfire.map(|m| m.as_str().to_owned()),
            payload,
            next_run_at: Some(next),
            rearm_from: vec![TaskStatus::Pending],
        };
        if !store.task_cron_update(&params).await? {
            return Err(Error::NotFound { id });
        }
        self.shared().note_due(next);
        Ok(())
    }

    /// Deletes one task (a cron schedule, say); returns whether it existed.
    /// A running attempt of it is stopped and can no longer write.
    ///
    /// An unfinished child is first cancelled (in its own transaction), so
    /// its parent learns of it like of any failed child instead of waiting
    /// for it forever.
    pub async fn delete_task(&self, id: TaskId) -> Result<bool> {
        let store = self.store()?;
        if let Some(row) = store.task_get(id.get()).await? {
            let status: TaskStatus = crate::store::row::parse_column("status", &row.status)?;
            if row.parent_id.is_some() && status.is_unfinished() {
                let reason = format!("cancelled: task {id} was deleted");
                self.try_transition(TaskSetStatusParams::cancelled(id.get(), reason))
                    .await?;
            }
        }
        let deleted = store.task_delete(id.get()).await?;
        if deleted {
            self.shared().running().cancel_task(id.get());
        }
        Ok(deleted)
    }

    pub(crate) fn insert_params<P: Serialize + ?Sized>(
        &self,
        name: &str,
        payload: &P,
        options: TaskOptions,
    ) -> Result<TaskInsertParams> {
        let task = self.task_params(name, options)?;
        let payload = payload_text(payload).map_err(|source| Error::Serialization {
            field: "payload",
            source,
        })?;
        Ok(TaskInsertParams { payload, ..task })
    }

    /// The row of a top-level async task of `name` with `options`
    /// resolved (the handler's defaults, then the manager's) and checked,
    /// without a payload.
    fn task_params(&self, name: &str, options: TaskOptions) -> Result<TaskInsertParams> {
        check_name("name", name)?;
        let config = &self.shared().config;
        let handler = self
            .shared()
            .registry
            .get(name)
            .map(|reg| reg.options)
            .unwrap_or_default();
        let priority = options.priority.or(handler.priority).unwrap_or(0);
        check_priority(priority)?;
        if let Some(tag) = &options.tag {
            check_name("tag", tag)?;
        }
        let timeout = options
            .timeout
            .or(handler.timeout)
            .unwrap_or(config.timeout);
        check_duration("timeout", timeout, false)?;
        let retry_interval = options
            .retry_interval
            .or(handler.retry_interval)
            .unwrap_or(config.retry_interval);
        check_duration("retry_interval", retry_interval, true)?;
        let max_attempts = options
            .max_attempts
            .or(handler.max_attempts)
            .unwrap_or(config.max_attempts);
        if max_attempts == 0 {
            return Err(Error::invalid(
                "max_attempts",
                "must be at least 1 (it counts total runs)",
            ));
        }
        let next_run = match options.run_at {
            None => NextRun::Keep,
            Some(RunAt::Delay(delay)) => {
                check_duration("delay", delay, true)?;
                NextRun::AfterMs(millis(delay))
            }
            Some(RunAt::At(at)) => NextRun::AtMs(at.timestamp_millis()),
        };
        Ok(TaskInsertParams {
            name: name.to_owned(),
            kind: TaskKind::Async,
            payload: None,
            priority,
            tag: options.tag,
            timeout_ms: millis(timeout),
            max_attempts: i64::from(max_attempts),
            retry_interval_ms: millis(retry_interval),
            next_run,
            cron_expr: None,
            parent: None,
        })
    }

    /// Starts claiming and running tasks. Starting a running manager does
    /// nothing; a stopped manager cannot be started again.
    pub async fn start(&self) -> Result<()> {
        let mut lifecycle = self.inner.lifecycle.lock().await;
        match &*lifecycle {
            Lifecycle::Running(_) => Ok(()),
            Lifecycle::Stopped => Err(Error::Lifecycle {
                state: "stopped",
                reason: "a stopped manager cannot be restarted; build a new one".into(),
            }),
            Lifecycle::Idle => {
                // With a pod id: register (superseding an older worker of
                // the pod and taking back its tasks) before claiming.
                crate::engine::registry::register(self.shared()).await?;
                *lifecycle = Lifecycle::Running(Services::start(self.shared()).await);
                let paused = *self.shared().paused.borrow();
                self.set_state(if paused {
                    ManagerState::Paused
                } else {
                    ManagerState::Running
                });
                tracing::info!(worker_id = %self.worker_id(), "task manager started");
                Ok(())
            }
        }
    }

    /// Stops claiming new tasks; running handlers go on. Registering or
    /// unregistering handlers does not undo it; only
    /// [`TaskManager::resume`] does.
    pub fn pause(&self) {
        self.shared().paused.send_replace(true);
        if self.state() == ManagerState::Running {
            self.set_state(ManagerState::Paused);
        }
    }

    /// Claims again after [`TaskManager::pause`].
    pub fn resume(&self) {
        self.shared().paused.send_replace(false);
        if self.state() == ManagerState::Paused {
            self.set_state(ManagerState::Running);
        }
    }

    /// Whether [`TaskManager::pause`] is in force.
    pub fn is_paused(&self) -> bool {
        *self.shared().paused.borrow()
    }

    /// Stops gracefully: no new claims; running handlers get up to
    /// `shutdown_timeout` to finish and their results are recorded; those
    /// still running then are stopped and their tasks go back to `pending`
    /// (not counted as a retry). Closes the database. Idempotent.
    pub async fn stop(&self) -> Result<()> {
        let mut lifecycle = self.inner.lifecycle.lock().await;
        let previous = std::mem::replace(&mut *lifecycle, Lifecycle::Stopped);
        if let Lifecycle::Running(services) = previous {
            services.stop(self.shared()).await;
        }
        if !matches!(self.state(), ManagerState::Stopped) {
            self.set_state(ManagerState::Stopped);
            self.shared().store.close().await;
            tracing::info!(worker_id = %self.worker_id(), "task manager stopped");
        }
        Ok(())
    }

    /// How many attempts this process is running now.
    pub fn running_count(&self) -> usize {
        self.shared().running_count()
    }

    /// One task by id, or `None`.
    pub async fn get_task(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        self.store()?
            .task_get(id.get())
            .await?
            .map(TaskRecord::try_from)
            .transpose()
    }

    /// Tasks matching the filter (AND-combined), oldest first.
    pub async fn get_tasks(&self, filter: TaskFilter) -> Result<Vec<TaskRecord>> {
        let params = TaskListParams {
            filter,
            limit: None,
        };
        self.store()?
            .task_list(&params)
            .await?
            .into_iter()
            .map(TaskRecord::try_from)
            .collect()
    }

    /// Task counts per tag, name and status (all tags when `tag` is none),
    /// ordered by tag, name, status.
    pub async fn task_stats(&self, tag: Option<&str>) -> Result<Vec<TaskStats>> {
        let params = TaskStatsParams {
            tag: tag.map(str::to_owned),
        };
        self.store()?
            .task_stats(&params)
            .await?
            .into_iter()
            .map(TaskStats::try_from)
            .collect()
    }

    /// Deletes the tasks matching the filter (an empty filter deletes every
    /// task); returns how many. A deleted running task's attempt is stopped
    /// and can no longer write. Unfinished children are deleted as they are:
    /// their parents keep waiting for them, so cancel such children first
    /// (or delete them one by one with [`TaskManager::delete_task`], which
    /// does).
    pub async fn delete_tasks(&self, filter: TaskFilter) -> Result<u64> {
        let params = TaskListParams {
            filter,
            limit: None,
        };
        let deleted = self.store()?.task_delete_many(&params).await?;
        self.shared().check_leases.notify_one();
        Ok(deleted)
    }

    /// Pauses one task (from pending, running, failed or timeout). A running
    /// attempt is stopped and its writes are rejected; only
    /// [`TaskManager::resume_task`] runs it again.
    pub async fn pause_task(&self, id: TaskId) -> Result<()> {
        self.transition(TaskSetStatusParams::paused(id.get()))
            .await?;
        if self.shared().running().cancel_task(id.get()) {
            tracing::info!(%id, "paused a task running here; its attempt was stopped");
        }
        self.shared().check_leases.notify_one();
        Ok(())
    }

    /// Resumes a task stopped for a person: a paused task runs again at
    /// its current stage; an explicitly suspended task (`Step::suspend`)
    /// goes on to its next stage. Either is due at once with a fresh retry
    /// budget. Any other task (a parent waiting for its children included)
    /// is refused with [`Error::InvalidTransition`] naming its status, and
    /// nothing changes. `reason` is logged with the change.
    pub async fn resume_task(&self, id: TaskId, reason: Option<&str>) -> Result<()> {
        // A paused cron task starts a new cycle at its next occurrence.
        let paused = match self.store()?.task_cron_get(id.get()).await? {
            Some(cron) => {
                let expr = cron.cron_expr.unwrap_or_default();
                let schedule = CronSchedule::parse(&expr, cron.cron_tz.as_deref())?;
                let next = schedule.next_after(chrono::Utc::now())?;
                TaskSetStatusParams::resumed_cron(id.get(), next.timestamp_millis())
            }
            None => TaskSetStatusParams::resumed(id.get()),
        };
        let reason = reason.unwrap_or("manual");
        if !self
            .try_transition(paused.with_detail("resume_reason", reason))
            .await?
        {
            self.transition(
                TaskSetStatusParams::resumed_suspended(id.get())
                    .with_detail("resume_reason", reason),
            )
            .await?;
        }
        tracing::info!(%id, reason, "task resumed");
        Ok(())
    }

    /// Cancels an unfinished task: it becomes `permanently_failed` with
    /// `reason` (default `"Task cancelled"`) as its error, its unfinished
    /// descendants are cancelled too, a running attempt is stopped and can
    /// no longer write, and its parent learns of the failure like of any
    /// failed child. A finished task is refused with
    /// [`Error::InvalidTransition`].
    pub async fn cancel_task(&self, id: TaskId, reason: Option<&str>) -> Result<()> {
        let reason = reason.unwrap_or("Task cancelled").to_owned();
        self.transition(
            TaskSetStatusParams::cancelled(id.get(), reason).with_detail("cancelled", true),
        )
        .await?;
        self.shared().running().cancel_task(id.get());
        self.shared().check_leases.notify_one();
        Ok(())
    }

    /// The direct children of a task (of every stage), oldest first.
    pub async fn get_children(&self, parent: TaskId) -> Result<Vec<TaskRecord>> {
        self.get_tasks(TaskFilter::new().parent(parent)).await
    }

    /// Every task of the workflow rooted at `root`: the root and all its
    /// descendants, oldest first.
    pub async fn get_workflow(&self, root: TaskId) -> Result<Vec<TaskRecord>> {
        self.get_tasks(TaskFilter::new().workflow(root)).await
    }

    /// Applies one operator transition (with what follows from it in its
    /// workflow); returns whether it applied.
    async fn try_transition(&self, change: TaskSetStatusParams) -> Result<bool> {
        let store = self.store()?;
        let (applied, effects) = workflow::apply_all(store, &[change.into()]).await?;
        self.shared().after_commit(effects);
        Ok(applied.first().copied().unwrap_or(false))
    }

    /// Applies one operator transition; a refused one becomes `NotFound` or
    /// `InvalidTransition` naming the current status.
    async fn transition(&self, change: TaskSetStatusParams) -> Result<()> {
        let (id, to) = (change.id, change.to());
        if self.try_transition(change).await? {
            return Ok(());
        }
        let task = TaskId(id);
        let row = self
            .store()?
            .task_get(id)
            .await?
            .ok_or(Error::NotFound { id: task })?;
        let from: TaskStatus = crate::store::row::parse_column("status", &row.status)?;
        Err(Error::InvalidTransition { id: task, from, to })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Without stop() the background services would keep the shared
        // state alive forever; stop them (running attempts are abandoned
        // and their leases lapse).
        self.shared.stop_claiming.cancel();
        self.shared.stop_services.cancel();
    }
}

/// A payload as the JSON text stored for it; JSON `null` is no payload.
fn payload_text<P: Serialize + ?Sized>(
    payload: &P,
) -> std::result::Result<Option<String>, serde_json::Error> {
    let value = serde_json::to_value(payload)?;
    Ok((!value.is_null()).then(|| value.to_string()))
}
