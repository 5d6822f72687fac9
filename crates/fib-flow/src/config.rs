//! Manager options, their defaults and their validation.
//!
//! Every option has a `DEFAULT_*` constant; [`Config::validate`] runs once,
//! from `TaskManagerBuilder::build`, and names the option that is wrong.

use std::time::Duration;

use crate::error::{Error, Result};

/// Most tasks one [`TaskManager::submit_many`](crate::TaskManager::submit_many)
/// call accepts (10,000): larger batches are refused with
/// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `payloads`;
/// split them into several calls.
pub const MAX_SUBMIT_BATCH: usize = 10_000;

/// Default for [`Config::poll_interval`]: 1 second.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default for [`Config::max_attempts`]: 3 runs in total.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default for [`Config::retry_interval`]: retry at once.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::ZERO;
/// Default for [`Config::timeout`]: 60 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`Config::max_concurrent_tasks`]: 10 handlers at once.
pub const DEFAULT_MAX_CONCURRENT_TASKS: usize = 10;
/// Default for [`Config::task_heartbeat_interval`]: 5 seconds.
pub const DEFAULT_TASK_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Default for [`Config::task_heartbeat_timeout`]: 30 seconds.
pub const DEFAULT_TASK_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`Config::maintenance_interval`]: 5 seconds.
pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);
/// Default for [`Config::shutdown_timeout`]: 30 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`Config::worker_heartbeat_interval`]: 5 seconds.
pub const DEFAULT_WORKER_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Default for [`Config::worker_heartbeat_timeout`]: 30 seconds.
pub const DEFAULT_WORKER_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`Config::sqlite_busy_timeout`]: 5 seconds.
pub const DEFAULT_SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Lowest accepted task priority.
pub const PRIORITY_MIN: i32 = -1000;
/// Highest accepted task priority.
pub const PRIORITY_MAX: i32 = 1000;
/// Longest accepted task name, tag or worker id, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest accepted duration option: 100 years (stored as milliseconds).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The resolved options of a `TaskManager`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL: `sqlite:PATH` or `sqlite::memory:`. Required.
    pub database_url: String,
    /// How long an idle claim loop waits before polling again when nothing
    /// wakes it. Defaults to [`DEFAULT_POLL_INTERVAL`] (1 s); must be > 0.
    pub poll_interval: Duration,
    /// Default total number of runs of a task, the first included. Defaults
    /// to [`DEFAULT_MAX_ATTEMPTS`] (3); must be >= 1.
    pub max_attempts: u32,
    /// Default delay between a failed run and the next one. Defaults to
    /// [`DEFAULT_RETRY_INTERVAL`] (0: at once).
    pub retry_interval: Duration,
    /// Default total run time of one attempt; the handler is stopped when it
    /// passes. Defaults to [`DEFAULT_TIMEOUT`] (60 s); must be > 0.
    pub timeout: Duration,
    /// Most handlers running at once in this process. Defaults to
    /// [`DEFAULT_MAX_CONCURRENT_TASKS`] (10); must be >= 1.
    pub max_concurrent_tasks: usize,
    /// How often this process renews the lease of all its running tasks (one
    /// write for all of them). Defaults to [`DEFAULT_TASK_HEARTBEAT_INTERVAL`]
    /// (5 s); must be > 0 and shorter than `task_heartbeat_timeout`.
    pub task_heartbeat_interval: Duration,
    /// A running task whose lease has not been renewed for this long is
    /// timed out (its worker is presumed gone). Defaults to
    /// [`DEFAULT_TASK_HEARTBEAT_TIMEOUT`] (30 s).
    pub task_heartbeat_timeout: Duration,
    /// How often the maintenance pass looks for timed-out running tasks.
    /// Defaults to [`DEFAULT_MAINTENANCE_INTERVAL`] (5 s); must be > 0.
    pub maintenance_interval: Duration,
    /// How long `stop()` waits for running handlers before it stops them and
    /// releases their tasks to `pending`. Defaults to
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`] (30 s); zero releases at once.
    pub shutdown_timeout: Duration,
    /// How long a SQLite connection waits for a lock held by another
    /// connection or process. Defaults to [`DEFAULT_SQLITE_BUSY_TIMEOUT`]
    /// (5 s).
    pub sqlite_busy_timeout: Duration,
    /// Where fib-flow's tables live: a PostgreSQL schema or a MySQL database
    /// of this name, created when missing, so several applications (or
    /// tests) share one server without seeing each other. Lowercase letters,
    /// digits and `_`, starting with a letter or `_`, at most 63 bytes. Not
    /// supported on SQLite (use another file). Defaults to none: the URL's
    /// database and PostgreSQL's default `search_path`.
    pub schema: Option<String>,
    /// Whether idle workers are woken by other processes' submits where the
    /// backend can push them (PostgreSQL `LISTEN/NOTIFY`); polling remains
    /// the fallback either way. Defaults to true.
    pub notifications: bool,
    /// This process's identity, written on every task it claims and used to
    /// fence its writes. Defaults to `worker-<uuid v4>`, new at every build;
    /// 1 to 255 bytes, no surrounding whitespace.
    pub worker_id: String,
    /// A stable identity of the node this process runs as (a pod name, a
    /// host name, a systemd unit): enables the worker registry. The process
    /// registers under its `worker_id` with this pod, renews its lease
    /// every `worker_heartbeat_interval`, supersedes an older worker of
    /// the same pod at start (taking back that worker's running tasks at
    /// once), and its running tasks are recovered within about
    /// `worker_heartbeat_timeout` if it dies. Without it the process is not
    /// registered and its tasks are recovered only by the task heartbeat
    /// timeout, which counts as a failed attempt. Defaults to none; 1 to
    /// 255 bytes, no surrounding whitespace.
    pub pod_id: Option<String>,
    /// How often this process renews its registry lease and campaigns for
    /// (or renews) the maintenance lease. Defaults to
    /// [`DEFAULT_WORKER_HEARTBEAT_INTERVAL`] (5 s); must be > 0 and shorter
    /// than `worker_heartbeat_timeout`.
    pub worker_heartbeat_interval: Duration,
    /// Length of a worker's registry lease and of the maintenance lease:
    /// a worker not renewed for this long is reaped as dead, and a
    /// maintenance node not renewed for this long is replaced. Defaults to
    /// [`DEFAULT_WORKER_HEARTBEAT_TIMEOUT`] (30 s).
    pub worker_heartbeat_timeout: Duration,
    /// Whether the running tasks of dead, superseded and stopped workers
    /// go back to `pending` at once (not counted as a retry). When false,
    /// workers are still marked, and their tasks wait for the task
    /// heartbeat timeout. Defaults to true.
    pub recover_running_jobs: bool,
    /// Whether this process may be elected the maintenance node, the one
    /// process at a time that reaps dead workers, recovers their tasks,
    /// times out lapsed tasks and runs retention. Turn it off for
    /// processes that should do no background work (at least one process
    /// sharing the database must keep it on). Defaults to true.
    pub maintenance: bool,
    /// Whether a claim's commit waits until the database has flushed it to
    /// disk. PostgreSQL only (its `synchronous_commit`, set for the claim's
    /// transaction alone). Defaults to false: a claim becomes durable with
    /// the next synchronous commit (its outcome's at the latest), so the
    /// pickup does not wait for a disk flush; if the database server
    /// crashes within moments of a claim, the claim can be lost and its
    /// task runs again, as it would after a worker crash. Every other
    /// write (submits, outcomes, suspensions) commits synchronously.
    /// SQLite (WAL, `synchronous=NORMAL`) and MySQL (a server-wide
    /// setting) ignore it.
    pub synchronous_claims: bool,
    /// Whether the maintenance node vacuums and analyses fib-flow's busy
    /// tables (tasks, attempts, events, the registry) when the database
    /// will not: PostgreSQL with `autovacuum` off, for the server or the
    /// table. A task's row is rewritten at its claim and at its outcome;
    /// unvacuumed, the dead index entries make every later claim slower,
    /// and unanalysed, plans cached while a table was small keep scanning
    /// it whole once it is large. In a maintenance pass a table is
    /// vacuumed once its dead rows exceed 1,000 plus 20 % of its live
    /// rows, and analysed once its changed rows exceed 1,000 plus 10 %.
    /// With autovacuum on, and on SQLite and MySQL, it does nothing.
    /// Defaults to true.
    pub vacuum: bool,
    /// Which finished workflows are deleted automatically, with their
    /// events and attempts, and how often (see
    /// [`RetentionPolicy`](crate::RetentionPolicy)). Defaults to the
    /// default policy: completed and permanently failed workflows older
    /// than 1 day, checked every 5 minutes. `None` turns automatic
    /// retention off (`run_retention` still works).
    pub retention: Option<crate::audit::RetentionPolicy>,
}

impl Config {
    /// Options with every default and the given database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        Config {
            database_url: database_url.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_concurrent_tasks: DEFAULT_MAX_CONCURRENT_TASKS,
            task_heartbeat_interval: DEFAULT_TASK_HEARTBEAT_INTERVAL,
            task_heartbeat_timeout: DEFAULT_TASK_HEARTBEAT_TIMEOUT,
            maintenance_interval: DEFAULT_MAINTENANCE_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            sqlite_busy_timeout: DEFAULT_SQLITE_BUSY_TIMEOUT,
            schema: None,
            notifications: true,
            worker_id: new_worker_id(),
            pod_id: None,
            worker_heartbeat_interval: DEFAULT_WORKER_HEARTBEAT_INTERVAL,
            worker_heartbeat_timeout: DEFAULT_WORKER_HEARTBEAT_TIMEOUT,
            recover_running_jobs: true,
            maintenance: true,
            synchronous_claims: false,
            vacuum: true,
            retention: Some(crate::audit::RetentionPolicy::default()),
        }
    }

    /// Checks every option and names the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.database_url.trim().is_empty() {
            return Err(Error::config(
                "database",
                "is required (sqlite:PATH or sqlite::memory:)",
            ));
        }
        positive("poll_interval", self.poll_interval)?;
        positive("timeout", self.timeout)?;
        positive("task_heartbeat_interval", self.task_heartbeat_interval)?;
        positive("task_heartbeat_timeout", self.task_heartbeat_timeout)?;
        positive("maintenance_interval", self.maintenance_interval)?;
        positive("worker_heartbeat_interval", self.worker_heartbeat_interval)?;
        positive("worker_heartbeat_timeout", self.worker_heartbeat_timeout)?;
        bounded("retry_interval", self.retry_interval)?;
        bounded("shutdown_timeout", self.shutdown_timeout)?;
        bounded("sqlite_busy_timeout", self.sqlite_busy_timeout)?;
        if self.task_heartbeat_timeout <= self.task_heartbeat_interval {
            return Err(Error::config(
                "task_heartbeat_timeout",
                format!(
                    "must be longer than task_heartbeat_interval ({:?}), got {:?}",
                    self.task_heartbeat_interval, self.task_heartbeat_timeout
                ),
            ));
        }
        if self.worker_heartbeat_timeout <= self.worker_heartbeat_interval {
            return Err(Error::config(
                "worker_heartbeat_timeout",
                format!(
                    "must be longer than worker_heartbeat_interval ({:?}), got {:?}",
                    self.worker_heartbeat_interval, self.worker_heartbeat_timeout
                ),
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::config(
                "max_attempts",
                "must be at least 1 (it counts total runs)",
            ));
        }
        if self.max_concurrent_tasks == 0 {
            return Err(Error::config("max_concurrent_tasks", "must be at least 1"));
        }
        check_identifier(&self.worker_id).map_err(|reason| Error::config("worker_id", reason))?;
        if let Some(pod_id) = &self.pod_id {
            check_identifier(pod_id).map_err(|reason| Error::config("pod_id", reason))?;
        }
        if let Some(schema) = &self.schema {
            check_schema_name(schema).map_err(|reason| Error::config("schema", reason))?;
        }
        if let Some(policy) = &self.retention {
            policy.validate().map_err(|error| match error {
                Error::InvalidInput { field, reason } => Error::Config { field, reason },
                other => other,
            })?;
        }
        Ok(())
    }
}

/// A fresh worker id: `worker-` followed by a random UUID.
pub fn new_worker_id() -> String {
    format!("worker-{}", uuid::Uuid::new_v4())
}

fn positive(field: &'static str, value: Duration) -> Result<()> {
    if value.is_zero() {
        return Err(Error::config(field, "must be greater than zero"));
    }
    bounded(field, value)
}

fn bounded(field: &'static str, value: Duration) -> Result<()> {
    if value > MAX_DURATION {
        return Err(Error::config(
            field,
            format!("must be at most 100 years, got {value:?}"),
        ));
    }
    Ok(())
}

/// Rules shared by task names, tags and worker ids: 1..=255 bytes, no
/// surrounding whitespace, no control characters.
pub(crate) fn check_identifier(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.trim() != value {
        return Err(format!(
            "must not start or end with whitespace, got {value:?}"
        ));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(format!(
            "must be at most {MAX_NAME_LEN} bytes, got {}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "must not contain control characters, got {value:?}"
        ));
    }
    Ok(())
}

/// A schema (or MySQL database) name is spliced into DDL, so it must be a
/// plain SQL identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes.
pub(crate) fn check_schema_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_well || !rest_ok || name.len() > 63 {
        return Err(format!(
            "must match [a-z_][a-z0-9_]* and be at most 63 bytes, got {name:?}"
        ));
    }
    Ok(())
}

/// Converts a duration to whole milliseconds for storage.
pub(crate) fn millis(value: Duration) -> i64 {
    i64::try_from(value.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<()>) -> &'static str {
        match result {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        Config::new("sqlite::memory:").validate().unwrap();
    }

    #[test]
    fn each_zero_duration_names_its_option() {
        type Set = fn(&mut Config);
        let cases: [(&str, Set); 7] = [
            ("poll_interval", |c| c.poll_interval = Duration::ZERO),
            ("timeout", |c| c.timeout = Duration::ZERO),
            ("task_heartbeat_interval", |c| {
                c.task_heartbeat_interval = Duration::ZERO
            }),
            ("task_heartbeat_timeout", |c| {
                c.task_heartbeat_timeout = Duration::ZERO
            }),
            ("maintenance_interval", |c| {
                c.maintenance_interval = Duration::ZERO
            }),
            ("worker_heartbeat_interval", |c| {
                c.worker_heartbeat_interval = Duration::ZERO
            }),
            ("worker_heartbeat_timeout", |c| {
                c.worker_heartbeat_timeout = Duration::ZERO
            }),
        ];
        for (name, set) in cases {
            let mut config = Config::new("sqlite::memory:");
            set(&mut config);
            assert_eq!(field_of(config.validate()), name);
        }
    }

    #[test]
    fn heartbeat_timeout_must_exceed_the_interval() {
        let mut config = Config::new("sqlite::memory:");
        config.task_heartbeat_interval = Duration::from_secs(10);
        config.task_heartbeat_timeout = Duration::from_secs(10);
        assert_eq!(field_of(config.validate()), "task_heartbeat_timeout");
    }

    #[test]
    fn worker_heartbeat_timeout_must_exceed_its_interval() {
        let mut config = Config::new("sqlite::memory:");
        config.worker_heartbeat_interval = Duration::from_secs(30);
        assert_eq!(field_of(config.validate()), "worker_heartbeat_timeout");
    }

    #[test]
    fn pod_ids_follow_the_identifier_rules() {
        let mut config = Config::new("sqlite::memory:");
        config.pod_id = Some("web-1".into());
        config.validate().unwrap();
        for bad in ["", " web", "a\nb"] {
            config.pod_id = Some(bad.into());
            assert_eq!(field_of(config.validate()), "pod_id", "{bad:?}");
        }
    }

    #[test]
    fn counts_must_be_positive() {
        let mut config = Config::new("sqlite::memory:");
        config.max_attempts = 0;
        assert_eq!(field_of(config.validate()), "max_attempts");
        let mut config = Config::new("sqlite::memory:");
        config.max_concurrent_tasks = 0;
        assert_eq!(field_of(config.validate()), "max_concurrent_tasks");
    }

    #[test]
    fn worker_id_and_url_are_checked() {
        let mut config = Config::new("sqlite::memory:");
        config.worker_id = " w ".into();
        assert_eq!(field_of(config.validate()), "worker_id");
        config.worker_id = "x".repeat(256);
        assert_eq!(field_of(config.validate()), "worker_id");
        assert_eq!(field_of(Config::new("  ").validate()), "database");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["fib", "_t1", "tenant_42"] {
            let mut config = Config::new("sqlite::memory:");
            config.schema = Some(good.into());
            config.validate().unwrap();
        }
        for bad in ["", "1abc", "Fib", "a-b", "a;drop", "x\"y", &"a".repeat(64)] {
            let mut config = Config::new("sqlite::memory:");
            config.schema = Some(bad.into());
            assert_eq!(field_of(config.validate()), "schema", "{bad}");
        }
    }

    #[test]
    fn huge_durations_are_rejected() {
        let mut config = Config::new("sqlite::memory:");
        config.retry_interval = Duration::MAX;
        assert_eq!(field_of(config.validate()), "retry_interval");
    }

    #[test]
    fn generated_worker_ids_are_unique() {
        assert_ne!(new_worker_id(), new_worker_id());
    }
}
