//! The running parts of a manager: the claim loop, executions, the
//! completer, the task lease heartbeat, the worker registry heartbeat, the
//! maintenance-lease election, and the maintenance pass (reaping,
//! recovery, the expiry sweep) and retention that only the elected node
//! runs. Each service is a loop around a `run_once`-style step.
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
use crate::store::{Store, TaskLease};

pub(crate) mod claim;
pub(crate) mod completer;
pub(crate) mod election;
pub(crate) mod execute;
pub(crate) mod heartbeat;
pub(crate) mod maintenance;
pub(crate) mod outcome;
pub(crate) mod recovery;
pub(crate) mod registry;
pub(crate) mod retention;
pub(crate) mod sweeper;
pub(crate) mod workflow;

pub(crate) use crate::retry::retry_transient;

/// An attempt executing in this process.
#[derive(Debug)]
pub(crate) struct RunningTask {
    pub(crate) name: String,
    /// Told to stop: the attempt lost its task, or the manager is stopping.
    pub(crate) cancel: CancellationToken,
    /// Set before `cancel` when the manager stops: the execution gives the
    /// task back to `pending` instead of leaving it.
    pub(crate) release: bool,
    /// The attempt is over and its outcome is being written: the heartbeat
    /// neither renews it nor calls it lost.
    pub(crate) finishing: bool,
}

/// The in-process bookkeeping of running attempts, keyed by task id *and*
/// attempt number: a stale attempt of a task (lost, still finishing) and the
/// newer attempt that re-claimed it are two entries.
///
/// A slot (`max_concurrent_tasks`, and a name's own limit) is held while a
/// handler executes: an attempt whose handler returned frees its slot
/// while its outcome waits for the completer, so the claim loop refills at
/// once instead of after the write (River's completer does the same). The
/// attempt stays in `tasks` until its outcome is written.
#[derive(Debug, Default)]
pub(crate) struct RunningSet {
    pub(crate) tasks: HashMap<TaskLease, RunningTask>,
    /// Executing attempts per name (finishing ones are not counted).
    pub(crate) by_name: HashMap<String, usize>,
    /// How many entries of `tasks` are finishing.
    finishing: usize,
}

impl RunningSet {
    pub(crate) fn insert(&mut self, lease: TaskLease, task: RunningTask) {
        if !task.finishing {
            *self.by_name.entry(task.name.clone()).or_default() += 1;
        } else {
            self.finishing += 1;
        }
        if let Some(replaced) = self.tasks.insert(lease, task) {
            // Cannot happen (the database hands out each attempt once), but
            // keep the counts right if it did.
            if replaced.finishing {
                self.finishing = self.finishing.saturating_sub(1);
            } else {
                self.forget_name(&replaced.name);
            }
        }
    }

    pub(crate) fn remove(&mut self, lease: TaskLease) -> Option<RunningTask> {
        let task = self.tasks.remove(&lease)?;
        if task.finishing {
            self.finishing = self.finishing.saturating_sub(1);
        } else {
            self.forget_name(&task.name);
        }
        Some(task)
    }

    /// Attempts whose handlers are executing (each holds a slot).
    pub(crate) fn executing_count(&self) -> usize {
        self.tasks.len().saturating_sub(self.finishing)
    }

    /// Free slots out of `max`: `max` less the executing attempts, and no
    /// more than keeps the attempts held here (executing or waiting for
    /// their outcome to be written) within twice `max`, so a slow
    /// database holds back claiming instead of letting outcomes pile up.
    /// `leaving` finishing attempts are being written in the transaction
    /// the claim shares (single-writer backends), so they are held no
    /// longer once it commits.
    pub(crate) fn free_slots(&self, max: usize, leaving: usize) -> usize {
        let executing = max.saturating_sub(self.executing_count());
        let held_after = self.tasks.len().saturating_sub(leaving.min(self.finishing));
        let held = max.saturating_mul(2).saturating_sub(held_after);
        executing.min(held)
    }

    fn forget_name(&mut self, name: &str) {
        if let Some(count) = self.by_name.get_mut(name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.by_name.remove(name);
            }
        }
    }

    pub(crate) fn running_of(&self, name: &str) -> usize {
        self.by_name.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn get(&self, lease: TaskLease) -> Option<&RunningTask> {
        self.tasks.get(&lease)
    }

    /// Tells one attempt to stop, if it runs here.
    pub(crate) fn cancel_attempt(&mut self, lease: TaskLease, release: bool) -> bool {
        match self.tasks.get_mut(&lease) {
            Some(task) => {
                task.release |= release;
                task.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Marks an attempt as over (its outcome is being written): its slot
    /// is free from now on.
    pub(crate) fn finishing(&mut self, lease: TaskLease) {
        let Some(task) = self.tasks.get_mut(&lease) else {
            return;
        };
        if task.finishing {
            return;
        }
        task.finishing = true;
        let name = task.name.clone();
        self.finishing += 1;
        self.forget_name(&name);
    }

    /// The attempts still executing (not finishing).
    pub(crate) fn executing(&self) -> Vec<TaskLease> {
        self.tasks
            .iter()
            .filter(|(_, task)| !task.finishing)
            .map(|(&lease, _)| lease)
            .collect()
    }

    /// Tells every attempt of task `id` running here to stop.
    pub(crate) fn cancel_task(&mut self, id: i64) -> bool {
        let leases: Vec<TaskLease> = self.tasks.keys().filter(|l| l.id == id).copied().collect();
        for &lease in &leases {
            self.cancel_attempt(lease, false);
        }
        !leases.is_empty()
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
    /// When tasks written by this process become due (retries, delayed
    /// submits, cron runs), so the claim loop wakes on time.
    pub(crate) due: Mutex<DueTimes>,
    /// Whether the manager is paused (no new claims).
    pub(crate) paused: watch::Sender<bool>,
    /// Whether another worker of this pod is active, so this one may not
    /// claim (see [`registry`]).
    pub(crate) fenced: watch::Sender<bool>,
    /// This process's hold on the maintenance lease.
    pub(crate) leadership: election::Leadership,
    /// When the manager was built (the registry's `meta.started_at`).
    pub(crate) built_at: chrono::DateTime<chrono::Utc>,
    /// Stops claiming.
    pub(crate) stop_claiming: CancellationToken,
    /// Stops the background services (heartbeats, election,
    /// maintenance, retention, completer).
    pub(crate) stop_services: CancellationToken,
    /// Every execution, so `stop()` can wait for them.
    pub(crate) executions: TaskTracker,
    /// Where executions send their outcomes to be written in batches.
    pub(crate) completer: completer::Queue,
    /// The completer's inbox until the services start.
    completer_inbox: Mutex<Option<completer::Inbox>>,
}

impl Shared {
    pub(crate) fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let (completer, inbox) = completer::queue();
        Shared {
            completer,
            completer_inbox: Mutex::new(Some(inbox)),
            config,
            store,
            registry: Registry::default(),
            running: Mutex::new(RunningSet::default()),
            wake: Arc::new(Notify::new()),
            idle: Notify::new(),
            check_leases: Notify::new(),
            due: Mutex::new(DueTimes::default()),
            paused: watch::channel(false).0,
            fenced: watch::channel(false).0,
            leadership: election::Leadership::default(),
            built_at: chrono::Utc::now(),
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
        let leases: Vec<TaskLease> = running.tasks.keys().copied().collect();
        for &lease in &leases {
            running.cancel_attempt(lease, true);
        }
        leases.len()
    }

    /// What follows a committed transaction: wake the claim loop, stop
    /// attempts of tasks that were cancelled.
    pub(crate) fn after_commit(&self, effects: workflow::Effects) {
        if !effects.cancelled.is_empty() {
            let mut running = self.running();
            for id in effects.cancelled {
                running.cancel_task(id);
            }
        }
        if !effects.due.is_empty() {
            let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
            for at in effects.due {
                due.note(at);
            }
        }
        if effects.wake {
            self.wake.notify_one();
        }
    }

    /// Notes that a task becomes due at `at_ms` and wakes the claim loop so
    /// that it shortens its wait.
    pub(crate) fn note_due(&self, at_ms: i64) {
        self.due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note(at_ms);
        self.wake.notify_one();
    }

    /// How long the claim loop may wait: the poll interval, or less when a
    /// task this process wrote becomes due sooner.
    pub(crate) fn idle_wait(&self) -> Duration {
        let now = chrono::Utc::now().timestamp_millis();
        let poll = self.config.poll_interval;
        match self
            .due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_after(now)
        {
            // At least a few ms, so a time just past does not spin the loop.
            Some(at) => poll.min(Duration::from_millis(
                u64::try_from(at - now).unwrap_or(0).max(10),
            )),
            None => poll,
        }
    }

    pub(crate) fn running_count(&self) -> usize {
        self.running().tasks.len()
    }
}

/// Due times noted by this process, earliest first; bounded, since polling
/// remains the fallback for anything forgotten.
#[derive(Debug, Default)]
pub(crate) struct DueTimes {
    times: std::collections::BTreeSet<i64>,
}

impl DueTimes {
    const MAX: usize = 4096;

    fn note(&mut self, at_ms: i64) {
        self.times.insert(at_ms);
        while self.times.len() > Self::MAX {
            self.times.pop_last();
        }
    }

    /// How long a due time is kept after it passed: the database's clock
    /// (PostgreSQL, MySQL) may run slightly behind this process's, so a
    /// task may become due a moment after the local time says.
    const SLACK_MS: i64 = 100;

    /// The earliest due time not yet long past `now` (older ones are
    /// dropped: the claim rounds since then took those tasks).
    fn next_after(&mut self, now: i64) -> Option<i64> {
        while let Some(&first) = self.times.first() {
            if first > now - Self::SLACK_MS {
                return Some(first);
            }
            self.times.pop_first();
        }
        None
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
        // The manager starts its services once, so the inbox is there.
        let inbox = shared
            .completer_inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| completer::queue().1);
        Services {
            claim: tokio::spawn(claim::run(shared.clone())),
            others: vec![
                tokio::spawn(completer::run(shared.clone(), inbox)),
                tokio::spawn(heartbeat::run(shared.clone())),
                tokio::spawn(registry::run(shared.clone())),
                tokio::spawn(election::run(shared.clone())),
                tokio::spawn(maintenance::run(shared.clone())),
                tokio::spawn(retention::run(shared.clone())),
            ],
        }
    }

    /// Drains: stop claiming, wait for running attempts up to the shutdown
    /// timeout, stop and release the rest, then stop the services (giving
    /// up the maintenance lease) and mark the worker `stopped`.
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
        registry::deregister(shared).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> RunningTask {
        RunningTask {
            name: name.into(),
            cancel: CancellationToken::new(),
            release: false,
            finishing: false,
        }
    }

    #[test]
    fn due_times_give_the_earliest_time_still_ahead() {
        let mut due = DueTimes::default();
        assert_eq!(due.next_after(100), None);
        due.note(300);
        due.note(200);
        due.note(50);
        assert_eq!(
            due.next_after(100),
            Some(50),
            "just past: kept for a clock behind ours"
        );
        assert_eq!(due.next_after(200), Some(200), "50 is long past");
        assert_eq!(due.next_after(350), Some(300));
        assert_eq!(due.next_after(401), None);
    }

    #[test]
    fn two_attempts_of_one_task_are_two_entries() {
        let mut set = RunningSet::default();
        let stale = TaskLease { id: 1, attempt: 1 };
        let fresh = TaskLease { id: 1, attempt: 2 };
        set.insert(stale, task("a"));
        set.insert(fresh, task("a"));
        assert_eq!(set.tasks.len(), 2);
        assert_eq!(set.running_of("a"), 2);
        set.remove(stale);
        assert!(set.get(fresh).is_some());
        assert_eq!(set.running_of("a"), 1);
        set.remove(fresh);
        assert_eq!(set.running_of("a"), 0);
        assert!(set.by_name.is_empty());
    }

    #[test]
    fn a_finishing_attempt_frees_its_slot_but_stays_held() {
        let mut set = RunningSet::default();
        let one = TaskLease { id: 1, attempt: 1 };
        let two = TaskLease { id: 2, attempt: 1 };
        set.insert(one, task("a"));
        set.insert(two, task("a"));
        assert_eq!(set.free_slots(2, 0), 0);
        set.finishing(one);
        set.finishing(one);
        assert_eq!(set.executing_count(), 1);
        assert_eq!(
            set.running_of("a"),
            1,
            "only executing attempts count per name"
        );
        assert_eq!(set.free_slots(2, 0), 1);
        assert_eq!(set.executing(), vec![two]);
        set.remove(one);
        assert_eq!(set.tasks.len(), 1);
        assert_eq!(set.free_slots(2, 0), 1);
        set.remove(two);
        assert_eq!(set.free_slots(2, 0), 2);
        assert!(set.by_name.is_empty());
    }

    #[test]
    fn outcomes_waiting_to_be_written_cap_the_free_slots() {
        let mut set = RunningSet::default();
        for id in 1..=4 {
            let lease = TaskLease { id, attempt: 1 };
            set.insert(lease, task("a"));
            set.finishing(lease);
        }
        assert_eq!(set.executing_count(), 0);
        assert_eq!(set.free_slots(3, 0), 2, "at most twice max held: 6 - 4");
        assert_eq!(
            set.free_slots(3, 2),
            3,
            "two written in the claim's transaction are held no longer"
        );
        assert_eq!(set.free_slots(2, 9), 2, "no more leave than are finishing");
        assert_eq!(set.free_slots(2, 0), 0);
    }

    #[test]
    fn cancelling_a_task_stops_all_its_attempts_here() {
        let mut set = RunningSet::default();
        let (one, two) = (
            TaskLease { id: 7, attempt: 1 },
            TaskLease { id: 7, attempt: 2 },
        );
        set.insert(one, task("a"));
        set.insert(two, task("a"));
        set.insert(TaskLease { id: 8, attempt: 1 }, task("a"));
        assert!(set.cancel_task(7));
        assert!(set
            .get(one)
            .is_some_and(|t| t.cancel.is_cancelled() && !t.release));
        assert!(set.get(two).is_some_and(|t| t.cancel.is_cancelled()));
        assert!(!set
            .get(TaskLease { id: 8, attempt: 1 })
            .is_some_and(|t| t.cancel.is_cancelled()));
        assert!(!set.cancel_task(9));
    }
}
