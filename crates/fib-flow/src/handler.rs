//! Handlers, their options, and the hot-reloadable registry.
//!
//! Registering a name that exists replaces it; an attempt keeps the handler
//! it started with, and later claims use the live registry (SPEC §7).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::config::MAX_DURATION;
use crate::error::{BoxError, Error, Result};
use crate::step::Step;
use crate::task::{check_name, check_priority, Task};

/// Runs tasks of one name. Implemented for every
/// `Fn(Task) -> impl Future<Output = Result<S, E>>` where `S: Into<Step>`
/// and `E: Into<BoxError>`, so an `async fn` or an async closure works.
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of `task`.
    fn run(&self, task: Task) -> BoxFuture<'static, Result<Step, BoxError>>;
}

impl<F, Fut, S, E> Handler for F
where
    F: Fn(Task) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<S, E>> + Send + 'static,
    S: Into<Step>,
    E: Into<BoxError>,
{
    fn run(&self, task: Task) -> BoxFuture<'static, Result<Step, BoxError>> {
        (self)(task)
            .map(|outcome| outcome.map(Into::into).map_err(Into::into))
            .boxed()
    }
}

/// Options of one handler; each unset one falls back to the manager's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry_interval: Option<Duration>,
    pub(crate) priority: Option<i32>,
    pub(crate) max_concurrent_tasks: Option<usize>,
    pub(crate) description: Option<String>,
}

impl HandlerOptions {
    /// No options set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total run time of one attempt (> 0). Defaults to the manager's
    /// `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Total runs of a task, the first included (>= 1). Defaults to the
    /// manager's `max_attempts`.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Delay between a failed run and the next. Defaults to the manager's
    /// `retry_interval`.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = Some(interval);
        self
    }

    /// Priority of tasks submitted without one. Defaults to 0.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Most tasks of this name running at once in this process (>= 1).
    /// Defaults to no limit beyond the manager's `max_concurrent_tasks`.
    pub fn max_concurrent_tasks(mut self, limit: usize) -> Self {
        self.max_concurrent_tasks = Some(limit);
        self
    }

    /// A human description shown by operator tools. Defaults to none.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The limit set by [`HandlerOptions::max_concurrent_tasks`], if any.
    pub fn concurrency_limit(&self) -> Option<usize> {
        self.max_concurrent_tasks
    }

    /// The description, if any.
    pub fn description_text(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(timeout) = self.timeout {
            check_duration("timeout", timeout, false)?;
        }
        if let Some(interval) = self.retry_interval {
            check_duration("retry_interval", interval, true)?;
        }
        if self.max_attempts == Some(0) {
            return Err(Error::invalid(
                "max_attempts",
                "must be at least 1 (it counts total runs)",
            ));
        }
        if self.max_concurrent_tasks == Some(0) {
            return Err(Error::invalid("max_concurrent_tasks", "must be at least 1"));
        }
        if let Some(priority) = self.priority {
            check_priority(priority)?;
        }
        Ok(())
    }
}

pub(crate) fn check_duration(field: &'static str, value: Duration, zero_ok: bool) -> Result<()> {
    if !zero_ok && value.is_zero() {
        return Err(Error::invalid(field, "must be greater than zero"));
    }
    if value > MAX_DURATION {
        return Err(Error::invalid(
            field,
            format!("must be at most 100 years, got {value:?}"),
        ));
    }
    Ok(())
}

/// A registered handler with its options, as captured by one attempt.
#[derive(Clone)]
pub(crate) struct Registration {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) options: HandlerOptions,
}

/// The live handler table. Cheap reads; never held across an await.
#[derive(Default)]
pub(crate) struct Registry {
    entries: RwLock<HashMap<String, Registration>>,
}

impl Registry {
    pub(crate) fn insert(&self, name: &str, registration: Registration) -> Result<()> {
        check_name("name", name)?;
        registration.options.validate()?;
        self.write().insert(name.to_owned(), registration);
        Ok(())
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        self.write().remove(name).is_some()
    }

    pub(crate) fn get(&self, name: &str) -> Option<Registration> {
        self.read().get(name).cloned()
    }

    /// Names with their per-name concurrency limit, sorted by name.
    pub(crate) fn names(&self) -> Vec<(String, Option<usize>)> {
        let mut names: Vec<_> = self
            .read()
            .iter()
            .map(|(name, reg)| (name.clone(), reg.options.max_concurrent_tasks))
            .collect();
        names.sort();
        names
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Registration>> {
        // A poisoned lock only means a panic happened while it was held; the
        // map itself is always left consistent (single insert/remove calls).
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Registration>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Registration {
        Registration {
            handler: Arc::new(|_task: Task| async { Ok::<_, BoxError>(Step::done(1)) }),
            options: HandlerOptions::new(),
        }
    }

    #[test]
    fn replacing_keeps_one_entry_and_remove_reports() {
        let registry = Registry::default();
        registry.insert("a", noop()).unwrap();
        registry
            .insert(
                "a",
                Registration {
                    options: HandlerOptions::new().max_concurrent_tasks(2),
                    ..noop()
                },
            )
            .unwrap();
        assert_eq!(registry.names(), vec![("a".to_owned(), Some(2))]);
        assert!(registry.remove("a"));
        assert!(!registry.remove("a"));
    }

    #[test]
    fn bad_names_and_options_are_rejected() {
        let registry = Registry::default();
        assert!(matches!(
            registry.insert("", noop()),
            Err(Error::InvalidInput { field: "name", .. })
        ));
        let bad = Registration {
            options: HandlerOptions::new().max_attempts(0),
            ..noop()
        };
        assert!(matches!(
            registry.insert("x", bad),
            Err(Error::InvalidInput {
                field: "max_attempts",
                ..
            })
        ));
        let bad = Registration {
            options: HandlerOptions::new().timeout(Duration::ZERO),
            ..noop()
        };
        assert!(matches!(
            registry.insert("x", bad),
            Err(Error::InvalidInput {
                field: "timeout",
                ..
            })
        ));
        let bad = Registration {
            options: HandlerOptions::new().priority(5000),
            ..noop()
        };
        assert!(matches!(
            registry.insert("x", bad),
            Err(Error::InvalidInput {
                field: "priority",
                ..
            })
        ));
        assert!(registry.names().is_empty());
    }
}
