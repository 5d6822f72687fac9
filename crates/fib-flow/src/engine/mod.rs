//! The running parts of a manager: the claim loop, executions, the lease
//! heartbeat and the expiry sweeper. Each service is a loop around a
//! `run_once` that tests can drive step by step.
//!
//! The engine decides *when* things happen and asks [`crate::state`] *what*
//! happens; it talks to the database only through [`Store`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::handler::Registry;
use crate::store::Store;

pub(crate) mod claim;
pub(crate) mod execute;
pub(crate) mod heartbeat;
pub(crate) mod sweeper;

/// An attempt executing in this process.
#[derive(Debug)]
pub(crate) struct RunningTask {
    pub(crate) attempt: i64,
    pub(crate) name: String,
    /// Told to stop: the attempt lost its task, or the manager is stopping.
    pub(crate) cancel: CancellationToken,
    /// Set before `cancel` when the manager stops: the execution gives the
    /// task back to `pending` instead of leaving it.
    pub(crate) release: bool,
}

/// The in-process bookkeeping of running attempts.
#[derive(Debug, Default)]
pub(crate) struct RunningSet {
    pub(crate) tasks: HashMap<i64, RunningTask>,
    pub(crate) by_name: HashMap<String, usize>,
}

impl RunningSet {
    pub(crate) fn insert(&mut self, id: i64, task: RunningTask) {
        *self.by_name.entry(task.name.clone()).or_default() += 1;
        self.tasks.insert(id, task);
    }

    pub(crate) fn remove(&mut self, id: i64) -> Option<RunningTask> {
        let task = self.tasks.remove(&id)?;
        if let Some(count) = self.by_name.get_mut(&task.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.by_name.remove(&task.name);
            }
        }
        Some(task)
    }

    pub(crate) fn running_of(&self, name: &str) -> usize {
        self.by_name.get(name).copied().unwrap_or(0)
    }

    /// Tells the attempt of task `id` to stop, if it runs here.
    pub(crate) fn cancel(&mut self, id: i64, release: bool) -> bool {
        match self.tasks.get_mut(&id) {
            Some(task) => {
                task.release |= release;
                task.cancel.cancel();
                true
            }
            None => false,
        }
    }
}

/// State shared by the manager handle and every engine service.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Registry,
    pub(crate) running: Mutex<RunningSet>,
    /// Wakes the claim loop: a submit, a freed slot, a registration.
    pub(crate) wake: Arc<Notify>,
    /// Signalled when the last running attempt finishes.
    pub(crate) idle: Notify,
    /// Asks the heartbeat to check leases now (after a pause or delete).
    pub(crate) check_leases: Notify,
    /// Whether the manager is paused (no new claims).
    pub(crate) paused: watch::Sender<bool>,
    /// Stops claiming.
    pub(crate) stop_claiming: CancellationToken,
    /// Stops the heartbeat and the sweeper.
    pub(crate) stop_services: CancellationToken,
    /// Every execution, so `stop()` can wait for them.
    pub(crate) executions: TaskTracker,
}

impl Shared {
    pub(crate) fn new(config: Config, store: Arc<dyn Store>) -> Self {
        Shared {
            config,
            store,
            registry: Registry::default(),
            running: Mutex::new(RunningSet::default()),
            wake: Arc::new(Notify::new()),
            idle: Notify::new(),
            check_leases: Notify::new(),
            paused: watch::channel(false).0,
            stop_claiming: CancellationToken::new(),
            stop_services: CancellationToken::new(),
            executions: TaskTracker::new(),
        }
    }

    pub(crate) fn running(&self) -> MutexGuard<'_, RunningSet> {
        // The set is only touched by short, non-panicking sections.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every running attempt to stop and give its task back.
    pub(crate) fn release_all(&self) -> usize {
        let mut running = self.running();
        let ids: Vec<i64> = running.tasks.keys().copied().collect();
        for &id in &ids {
            running.cancel(id, true);
        }
        ids.len()
    }

    pub(crate) fn running_count(&self) -> usize {
        self.running().tasks.len()
    }
}

/// The background services of a started manager.
pub(crate) struct Services {
    claim: JoinHandle<()>,
    others: Vec<JoinHandle<()>>,
}

impl Services {
    pub(crate) async fn start(shared: &Arc<Shared>) -> Self {
        // Wake-ups from other processes, where the backend pushes them.
        let listening = match shared.config.notifications {
            true => shared.store.listen(shared.wake.clone()).await,
            false => Ok(false),
        };
        match listening {
            Ok(true) => tracing::debug!("listening for wake-ups from other processes"),
            Ok(false) => tracing::debug!("no cross-process wake-ups on this backend; polling"),
            Err(error) => tracing::warn!(%error, "could not listen for wake-ups; polling"),
        }
        Services {
            claim: tokio::spawn(claim::run(shared.clone())),
            others: vec![
                tokio::spawn(heartbeat::run(shared.clone())),
                tokio::spawn(sweeper::run(shared.clone())),
            ],
        }
    }

    /// Drains: stop claiming, wait for running attempts up to the shutdown
    /// timeout, stop and release the rest, then stop the services.
    pub(crate) async fn stop(self, shared: &Arc<Shared>) {
        shared.stop_claiming.cancel();
        // A claim round in flight still starts its executions; wait for it
        // so every execution is tracked before the tracker is closed.
        if let Err(e) = self.claim.await {
            tracing::error!(error = %e, "claim loop ended abnormally");
        }
        shared.executions.close();
        let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
        if tokio::time::timeout_at(deadline, shared.executions.wait())
            .await
            .is_err()
        {
            let count = shared.release_all();
            tracing::warn!(count, "shutdown timeout passed; releasing unfinished tasks");
            // Releasing is one write per attempt; give it a bounded wait.
            let grace = Duration::from_secs(10);
            if tokio::time::timeout(grace, shared.executions.wait())
                .await
                .is_err()
            {
                tracing::error!("executions did not finish within {grace:?} of being stopped");
            }
        }
        shared.stop_services.cancel();
        for handle in self.others {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "engine service ended abnormally");
            }
        }
    }
}
