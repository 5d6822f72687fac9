//! The workflow summary (SPEC.md §10.7), computed in memory from rows the
//! manager loaded: pure functions, unit-tested without a database.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{
    CriticalPath, EventType, FailedTask, PathNode, SlowAttempt, StageTiming, SummaryTotals,
    TaskAttempt, TaskEvent, WorkflowSummary, WorkflowTiming,
};
use crate::state::TaskStatus;
use crate::task::{TaskId, TaskRecord};

/// How many attempts the slowest-attempts list keeps.
const SLOWEST_ATTEMPTS: usize = 5;

/// What the summary is computed from. The manager loads only this: the
/// workflow's task rows (no context blobs), its attempts, aggregate counts
/// of its events, and the root's own attempt-start events.
#[derive(Debug, Clone)]
pub(crate) struct SummaryInput {
    /// The root's id.
    pub(crate) root_id: TaskId,
    /// Every task of the workflow, the root included, in id order.
    pub(crate) tasks: Vec<TaskRecord>,
    /// Every attempt of those tasks, ordered by attempt number then id.
    pub(crate) attempts: Vec<TaskAttempt>,
    /// Aggregates over every event of the workflow.
    pub(crate) events: EventStats,
    /// The root's `task_started` and `task_retry_started` events, oldest
    /// first (they carry the stage each attempt ran).
    pub(crate) root_starts: Vec<TaskEvent>,
}

/// Aggregates over a workflow's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EventStats {
    /// How many events.
    pub(crate) count: u64,
    /// How many `task_checkpoint` events.
    pub(crate) checkpoints: u64,
    /// Distinct non-null worker ids on the events.
    pub(crate) workers: Vec<String>,
    /// The newest event time.
    pub(crate) last_event_at: Option<DateTime<Utc>>,
}

/// The summary of the workflow described by `input`.
pub(crate) fn summarize(input: SummaryInput) -> WorkflowSummary {
    let SummaryInput {
        root_id,
        tasks,
        attempts,
        events,
        root_starts,
    } = input;
    let root = tasks.iter().find(|task| task.id == root_id);

    WorkflowSummary {
        root_task: root.cloned(),
        totals: totals(&tasks, &attempts, &events),
        statuses: count_by(tasks.iter().map(|task| task.status)),
        attempt_outcomes: count_by(attempts.iter().filter_map(|attempt| attempt.outcome)),
        task_names: count_by(tasks.iter().map(|task| task.name.clone())),
        stages: count_by(tasks.iter().map(|task| task.stage)),
        workers: workers(&tasks, &attempts, &events),
        timing: timing(root, &attempts, events.last_event_at),
        stage_timings: stage_timings(root_id, &attempts, &root_starts),
        failed_tasks: failed_tasks(&tasks),
        critical_path: critical_path(root_id, &tasks, &attempts),
        slowest_attempts: slowest_attempts(&attempts),
    }
}

/// The counts of [`SummaryTotals`].
fn totals(tasks: &[TaskRecord], attempts: &[TaskAttempt], events: &EventStats) -> SummaryTotals {
    SummaryTotals {
        tasks: tasks.len() as u64,
        attempts: attempts.len() as u64,
        events: events.count,
        checkpoints: events.checkpoints,
        max_attempt: attempts
            .iter()
            .map(|attempt| attempt.attempt)
            .max()
            .unwrap_or(0),
    }
}

/// How often each key occurs.
fn count_by<K: Ord>(keys: impl IntoIterator<Item = K>) -> BTreeMap<K, u64> {
    let mut counts = BTreeMap::new();
    for key in keys {
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Every non-null worker id of the tasks, attempts and events, sorted and
/// without duplicates.
fn workers(tasks: &[TaskRecord], attempts: &[TaskAttempt], events: &EventStats) -> Vec<String> {
    let mut workers = BTreeSet::new();
    workers.extend(tasks.iter().filter_map(|task| task.worker_id.as_deref()));
    workers.extend(
        attempts
            .iter()
            .filter_map(|attempt| attempt.worker_id.as_deref()),
    );
    workers.extend(events.workers.iter().map(String::as_str));
    workers.into_iter().map(str::to_owned).collect()
}

/// Milliseconds from `from` to `to`, never negative.
fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// When the workflow was created, first started and last ended.
fn timing(
    root: Option<&TaskRecord>,
    attempts: &[TaskAttempt],
    last_event_at: Option<DateTime<Utc>>,
) -> WorkflowTiming {
    let created_at = root.map(|root| root.created_at);
    let first_started_at = attempts.iter().map(|attempt| attempt.started_at).min();
    let last_ended_at = attempts.iter().filter_map(|attempt| attempt.ended_at).max();
    let duration_ms = match (created_at, last_ended_at) {
        (Some(created), Some(ended)) => Some(millis_between(created, ended)),
        _ => None,
    };
    WorkflowTiming {
        created_at,
        first_started_at,
        last_ended_at,
        last_event_at,
        duration_ms,
    }
}

/// The root's attempts in attempt order, each with the stage it ran: the
/// stage of the first start event of that attempt that carries one, else
/// the attempt number minus one (at least 0).
fn stage_timings(
    root_id: TaskId,
    attempts: &[TaskAttempt],
    root_starts: &[TaskEvent],
) -> Vec<StageTiming> {
    let mut stage_of: HashMap<i64, i64> = HashMap::new();
    for event in root_starts {
        if !matches!(
            event.event_type,
            EventType::TaskStarted | EventType::TaskRetryStarted
        ) {
            continue;
        }
        if let (Some(attempt), Some(stage)) = (event.attempt, event.stage) {
            stage_of.entry(attempt).or_insert(stage);
        }
    }

    let mut root_attempts: Vec<&TaskAttempt> = attempts
        .iter()
        .filter(|attempt| attempt.task_id == root_id)
        .collect();
    root_attempts.sort_by_key(|attempt| (attempt.attempt, attempt.id));
    root_attempts
        .into_iter()
        .map(|attempt| StageTiming {
            stage: stage_of
                .get(&attempt.attempt)
                .copied()
                .unwrap_or_else(|| attempt.attempt.saturating_sub(1).max(0)),
            attempt: attempt.attempt,
            started_at: attempt.started_at,
            ended_at: attempt.ended_at,
            duration_ms: attempt.duration_ms(),
            outcome: attempt.outcome,
            worker_id: attempt.worker_id.clone(),
        })
        .collect()
}

/// Whether a task's current status counts as failed for the summary.
fn is_failed(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed
            | TaskStatus::Timeout
            | TaskStatus::PermanentlyFailed
            | TaskStatus::Paused
    )
}

/// The tasks whose current status is a failure (or paused), in id order.
fn failed_tasks(tasks: &[TaskRecord]) -> Vec<FailedTask> {
    let mut failed: Vec<FailedTask> = tasks
        .iter()
        .filter(|task| is_failed(task.status))
        .map(|task| FailedTask {
            task_id: task.id,
            name: task.name.clone(),
            status: task.status,
            error: task.error.clone(),
        })
        .collect();
    failed.sort_by_key(|task| task.task_id);
    failed
}

/// An attempt's duration for ranking: a running attempt counts as -1.
fn ranked_duration(attempt: &TaskAttempt) -> i64 {
    attempt.duration_ms().unwrap_or(-1)
}

/// Orders the candidates for a task's representative attempt, best first:
/// longest duration, then earliest end (running last), then lowest attempt
/// number, then lowest id.
fn representative_order(a: &TaskAttempt, b: &TaskAttempt) -> Ordering {
    let ended = match (a.ended_at, b.ended_at) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    ranked_duration(b)
        .cmp(&ranked_duration(a))
        .then(ended)
        .then(a.attempt.cmp(&b.attempt))
        .then(a.id.cmp(&b.id))
}

/// The critical-path node of `task`, with its representative attempt.
fn path_node(task: &TaskRecord, attempt: Option<&TaskAttempt>) -> PathNode {
    PathNode {
        task_id: task.id,
        name: task.name.clone(),
        status: task.status,
        stage: task.stage,
        attempt: attempt.map(|attempt| attempt.attempt),
        outcome: attempt.and_then(|attempt| attempt.outcome),
        duration_ms: attempt.and_then(TaskAttempt::duration_ms),
        started_at: attempt.map(|attempt| attempt.started_at),
        ended_at: attempt.and_then(|attempt| attempt.ended_at),
    }
}

/// The chain from the root down whose representative attempts add up to
/// the longest time; among equal children the one with the lower id.
///
/// Walks the tree in post-order with an explicit stack (no recursion, so a
/// deep chain cannot overflow the stack) and visits each task at most once
/// (so a cycle in the parent links cannot loop).
fn critical_path(root_id: TaskId, tasks: &[TaskRecord], attempts: &[TaskAttempt]) -> CriticalPath {
    let mut by_id: HashMap<TaskId, &TaskRecord> = HashMap::with_capacity(tasks.len());
    for task in tasks {
        by_id.entry(task.id).or_insert(task);
    }
    if !by_id.contains_key(&root_id) {
        return CriticalPath::default();
    }

    let mut children: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
    for task in by_id.values() {
        if let Some(parent) = task.parent_id {
            if parent != task.id {
                children.entry(parent).or_default().push(task.id);
            }
        }
    }
    for ids in children.values_mut() {
        ids.sort_unstable();
    }

    let mut representative: HashMap<TaskId, &TaskAttempt> = HashMap::new();
    for attempt in attempts {
        representative
            .entry(attempt.task_id)
            .and_modify(|best| {
                if representative_order(attempt, best) == Ordering::Less {
                    *best = attempt;
                }
            })
            .or_insert(attempt);
    }
    let own_duration = |id: TaskId| -> i64 {
        representative
            .get(&id)
            .and_then(|attempt| attempt.duration_ms())
            .unwrap_or(0)
    };

    // Per finished task: its path's total and the child its path continues
    // with.
    let mut best: HashMap<TaskId, (i64, Option<TaskId>)> = HashMap::new();
    let mut visited: HashSet<TaskId> = HashSet::from([root_id]);
    let mut stack: Vec<(TaskId, bool)> = vec![(root_id, false)];
    while let Some((id, expanded)) = stack.pop() {
        let kids = children.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        if !expanded {
            stack.push((id, true));
            for &child in kids {
                if visited.insert(child) {
                    stack.push((child, false));
                }
            }
            continue;
        }
        // Children are finished before their parent; a child that is not
        // (an ancestor reached through a cycle) is skipped.
        let mut chosen: Option<(i64, TaskId)> = None;
        for &child in kids {
            if let Some(&(total, _)) = best.get(&child) {
                if chosen.is_none_or(|(best_total, _)| total > best_total) {
                    chosen = Some((total, child));
                }
            }
        }
        let own = own_duration(id);
        let entry = match chosen {
            Some((total, child)) => (own.saturating_add(total), Some(child)),
            None => (own, None),
        };
        best.insert(id, entry);
    }

    let total_duration_ms = best.get(&root_id).map_or(0, |&(total, _)| total);
    let mut nodes = Vec::new();
    let mut next = Some(root_id);
    while let Some(id) = next {
        let Some(task) = by_id.get(&id) else { break };
        nodes.push(path_node(task, representative.get(&id).copied()));
        next = best.get(&id).and_then(|&(_, child)| child);
    }
    CriticalPath {
        total_duration_ms,
        nodes,
    }
}

/// The slowest attempts: longest first (running ones last), then earliest
/// start, then lowest id.
fn slowest_attempts(attempts: &[TaskAttempt]) -> Vec<SlowAttempt> {
    let mut sorted: Vec<&TaskAttempt> = attempts.iter().collect();
    sorted.sort_by(|a, b| {
        ranked_duration(b)
            .cmp(&ranked_duration(a))
            .then(a.started_at.cmp(&b.started_at))
            .then(a.id.cmp(&b.id))
    });
    sorted
        .into_iter()
        .take(SLOWEST_ATTEMPTS)
        .map(|attempt| SlowAttempt {
            attempt: attempt.clone(),
            duration_ms: attempt.duration_ms(),
        })
        .collect()
}
