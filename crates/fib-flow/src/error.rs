//! The one error type of the library.

use std::time::Duration;

use crate::state::TaskStatus;
use crate::task::TaskId;

/// An error a handler may return: anything that converts into a boxed
/// standard error (`anyhow::Error`, `std::io::Error`, `String`, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in fib-flow.
///
/// Match on the variants (or use the predicates such as
/// [`Error::is_not_found`]) rather than on the message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A manager option is invalid; raised once, by `build()`.
    #[error("invalid configuration: {field} {reason}")]
    Config {
        /// The option's name, as the builder method spells it.
        field: &'static str,
        /// The rule it broke.
        reason: String,
    },

    /// An argument of an API call is invalid; nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument or field that is wrong.
        field: &'static str,
        /// The rule it broke.
        reason: String,
    },

    /// A payload, result or option value could not be turned into JSON (or
    /// back into the type the handler asked for).
    #[error("{field} could not be (de)serialised: {source}")]
    Serialization {
        /// Which value: `payload`, `result`, ...
        field: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The database URL names a backend this build does not support.
    #[error("unsupported database URL {url:?}: {reason}")]
    UnsupportedDatabase {
        /// The URL with any password removed.
        url: String,
        /// Why it is not supported (unknown scheme, or the cargo feature that
        /// would enable it).
        reason: String,
    },

    /// No task has this id.
    #[error("task {id} not found")]
    NotFound {
        /// The id asked for.
        id: TaskId,
    },

    /// The task's current status does not allow the requested change;
    /// nothing was changed.
    #[error("task {id} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The task.
        id: TaskId,
        /// Its current status.
        from: TaskStatus,
        /// The status that was requested.
        to: TaskStatus,
    },

    /// The attempt no longer owns its task (it timed out, was paused,
    /// deleted, or claimed again), so its write was rejected.
    #[error("task {id} attempt {attempt} no longer owns the task; its write was rejected")]
    Lost {
        /// The task.
        id: TaskId,
        /// The attempt number that lost ownership.
        attempt: i64,
    },

    /// The attempt exceeded its timeout (returned by `Task::check_timeout`).
    #[error("task {id} exceeded its timeout of {timeout:?}")]
    Timeout {
        /// The task.
        id: TaskId,
        /// The timeout that applied.
        timeout: Duration,
    },

    /// The manager is in the wrong lifecycle state for the call (for example
    /// `start()` after `stop()`).
    #[error("task manager is {state}: {reason}")]
    Lifecycle {
        /// The manager's current state.
        state: &'static str,
        /// What was attempted.
        reason: String,
    },

    /// A schema migration failed; the version and the database error are
    /// kept.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// The version number of the migration.
        version: i64,
        /// Its file name.
        name: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },

    /// The database has a newer schema than this build knows.
    #[error("database schema is at version {found}, newer than this build's {known}")]
    SchemaTooNew {
        /// The highest version applied in the database.
        found: i64,
        /// The highest version this build ships.
        known: i64,
    },

    /// The database returned an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A stored value could not be decoded (a corrupt row or a schema that
    /// does not match this build).
    #[error("corrupt stored value in {column}: {reason}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Whether the error says a task does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether the error says an attempt lost its task (a fenced write).
    pub fn is_lost(&self) -> bool {
        matches!(self, Error::Lost { .. })
    }

    /// Whether the error is a rejected input or configuration value.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidInput { .. } | Error::Config { .. } | Error::Serialization { .. }
        )
    }

    /// Whether the database rolled the transaction back to break a
    /// deadlock, a lock wait or a serialization conflict, so running it
    /// again is safe and may succeed.
    pub fn is_transient(&self) -> bool {
        let Error::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        // MySQL / MariaDB: a deadlock (1213) or a lock wait timeout (1205),
        // by error number (the lock wait's SQLSTATE is the generic HY000).
        #[cfg(feature = "mysql")]
        if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            return matches!(mysql.number(), 1213 | 1205);
        }
        // SQLSTATE 40001 (serialization failure) and 40P01 (PostgreSQL's
        // deadlock).
        matches!(db.code().as_deref(), Some("40001" | "40P01"))
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }
}
