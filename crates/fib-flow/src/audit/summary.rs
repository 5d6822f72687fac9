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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::AttemptOutcome;
    use crate::state::TaskKind;

    /// `ms` milliseconds after a fixed instant.
    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    /// A task created at `at(0)`, stage 0, no worker, no error.
    fn task(id: i64, parent: Option<i64>, name: &str, status: TaskStatus) -> TaskRecord {
        TaskRecord {
            id: TaskId(id),
            name: name.to_owned(),
            kind: TaskKind::Async,
            status,
            priority: 0,
            payload: None,
            tag: None,
            result: None,
            error: None,
            stage: 0,
            cycle: 0,
            timeout: Duration::from_secs(60),
            retry_count: 0,
            max_attempts: 3,
            retry_interval: Duration::from_secs(1),
            cron_expr: None,
            root_id: parent.map(|_| TaskId(1)),
            parent_id: parent.map(TaskId),
            parent_stage: parent.map(|_| 0),
            total_children: 0,
            pending_children: 0,
            worker_id: None,
            attempt: 0,
            suspend_reason: None,
            previous_status: None,
            current_stage_name: None,
            progress_text: None,
            progress_percent: None,
            last_event_at: None,
            last_event_type: None,
            created_at: at(0),
            next_run_at: at(0),
            started_at: None,
            last_active_at: None,
            finished_at: None,
        }
    }

    /// Attempt `number` of `task_id`, from `start` to `end` (ms after
    /// `at(0)`); running when `end` is none.
    fn attempt(
        id: i64,
        task_id: i64,
        number: i64,
        start: i64,
        end: Option<i64>,
        outcome: Option<AttemptOutcome>,
    ) -> TaskAttempt {
        TaskAttempt {
            id,
            task_id: TaskId(task_id),
            attempt: number,
            worker_id: None,
            started_at: at(start),
            ended_at: end.map(at),
            outcome,
            error: None,
            timed_out: outcome == Some(AttemptOutcome::Timeout),
        }
    }

    /// A closed attempt that completed.
    fn done(id: i64, task_id: i64, number: i64, start: i64, end: i64) -> TaskAttempt {
        attempt(
            id,
            task_id,
            number,
            start,
            Some(end),
            Some(AttemptOutcome::Completed),
        )
    }

    /// A start event of task 1 (the root).
    fn start_event(
        id: i64,
        event_type: EventType,
        attempt: Option<i64>,
        stage: Option<i64>,
    ) -> TaskEvent {
        TaskEvent {
            id,
            task_id: TaskId(1),
            root_id: TaskId(1),
            parent_id: None,
            event_type,
            from_status: Some(TaskStatus::Pending),
            to_status: Some(TaskStatus::Running),
            stage,
            worker_id: None,
            attempt,
            event_time: at(id),
            message: None,
            metadata: serde_json::Value::Null,
        }
    }

    /// The input of workflow 1 made of `tasks` and `attempts`, no events.
    fn input(tasks: Vec<TaskRecord>, attempts: Vec<TaskAttempt>) -> SummaryInput {
        SummaryInput {
            root_id: TaskId(1),
            tasks,
            attempts,
            events: EventStats::default(),
            root_starts: Vec::new(),
        }
    }

    /// The task ids along the critical path.
    fn path_ids(summary: &WorkflowSummary) -> Vec<i64> {
        summary
            .critical_path
            .nodes
            .iter()
            .map(|node| node.task_id.get())
            .collect()
    }

    /// The attempt ids of the slowest-attempts list.
    fn slow_ids(summary: &WorkflowSummary) -> Vec<i64> {
        summary
            .slowest_attempts
            .iter()
            .map(|slow| slow.attempt.id)
            .collect()
    }

    /// Root 1 ("pipeline") ran stage 0 (attempt 1), which created children
    /// 2 ("fetch") and 3 ("process"). Task 3 failed its first attempt,
    /// created child 4 ("transform") in its second and completed in its
    /// third. Once both children were done, the root ran stage 1 (attempt
    /// 2), which failed; a retry is scheduled.
    ///
    /// ```text
    /// attempt id  task  #  start  end  ms   outcome    worker
    ///          1     1  1     10  110  100  suspended  w1
    ///          2     2  1    120  420  300  completed  w1
    ///          3     3  1    120  170   50  failed     w3
    ///          4     3  2    200  240   40  suspended  w3
    ///          5     4  1    250  530  280  completed  w2
    ///          6     3  3    532  537    5  completed  w3
    ///          7     1  2    540  600   60  failed     w2
    /// ```
    fn three_level_workflow() -> SummaryInput {
        let mut root = task(1, None, "pipeline", TaskStatus::Failed);
        root.stage = 1;
        root.error = Some("bad total".into());
        root.worker_id = Some("w2".into());
        root.attempt = 2;
        let mut fetch = task(2, Some(1), "fetch", TaskStatus::Completed);
        fetch.worker_id = Some("w1".into());
        let mut process = task(3, Some(1), "process", TaskStatus::Completed);
        process.stage = 1;
        // The error of a failed attempt stays after a later success.
        process.error = Some("boom".into());
        process.worker_id = Some("w3".into());
        let mut transform = task(4, Some(3), "transform", TaskStatus::Completed);
        transform.parent_stage = Some(1);
        transform.worker_id = Some("w2".into());

        let run = |id, task_id, number, start, end, outcome, worker: &str| {
            let mut a = attempt(id, task_id, number, start, Some(end), Some(outcome));
            a.worker_id = Some(worker.to_owned());
            a
        };
        use AttemptOutcome::{Completed, Failed, Suspended};
        let attempts = vec![
            run(1, 1, 1, 10, 110, Suspended, "w1"),
            run(2, 2, 1, 120, 420, Completed, "w1"),
            run(3, 3, 1, 120, 170, Failed, "w3"),
            run(5, 4, 1, 250, 530, Completed, "w2"),
            run(4, 3, 2, 200, 240, Suspended, "w3"),
            run(7, 1, 2, 540, 600, Failed, "w2"),
            run(6, 3, 3, 532, 537, Completed, "w3"),
        ];

        SummaryInput {
            root_id: TaskId(1),
            tasks: vec![root, fetch, process, transform],
            attempts,
            events: EventStats {
                count: 30,
                checkpoints: 2,
                workers: vec!["w4".into(), "w1".into()],
                last_event_at: Some(at(605)),
            },
            root_starts: vec![
                start_event(100, EventType::TaskStarted, Some(1), Some(0)),
                start_event(101, EventType::TaskStarted, Some(2), Some(1)),
            ],
        }
    }

    #[test]
    fn three_level_workflow_by_hand() {
        let input = three_level_workflow();
        let root = input.tasks[0].clone();
        let summary = summarize(input);

        assert_eq!(summary.root_task, Some(root));
        assert_eq!(
            summary.totals,
            SummaryTotals {
                tasks: 4,
                attempts: 7,
                events: 30,
                checkpoints: 2,
                max_attempt: 3,
            }
        );
        assert_eq!(
            summary.statuses,
            BTreeMap::from([(TaskStatus::Completed, 3), (TaskStatus::Failed, 1)])
        );
        assert_eq!(
            summary.attempt_outcomes,
            BTreeMap::from([
                (AttemptOutcome::Completed, 3),
                (AttemptOutcome::Failed, 2),
                (AttemptOutcome::Suspended, 2),
            ])
        );
        assert_eq!(
            summary.task_names,
            BTreeMap::from([
                ("fetch".to_owned(), 1),
                ("pipeline".to_owned(), 1),
                ("process".to_owned(), 1),
                ("transform".to_owned(), 1),
            ])
        );
        assert_eq!(summary.stages, BTreeMap::from([(0, 2), (1, 2)]));
        assert_eq!(summary.workers, ["w1", "w2", "w3", "w4"]);

        assert_eq!(
            summary.timing,
            WorkflowTiming {
                created_at: Some(at(0)),
                first_started_at: Some(at(10)),
                last_ended_at: Some(at(600)),
                last_event_at: Some(at(605)),
                duration_ms: Some(600),
            }
        );

        assert_eq!(
            summary.stage_timings,
            [
                StageTiming {
                    stage: 0,
                    attempt: 1,
                    started_at: at(10),
                    ended_at: Some(at(110)),
                    duration_ms: Some(100),
                    outcome: Some(AttemptOutcome::Suspended),
                    worker_id: Some("w1".into()),
                },
                StageTiming {
                    stage: 1,
                    attempt: 2,
                    started_at: at(540),
                    ended_at: Some(at(600)),
                    duration_ms: Some(60),
                    outcome: Some(AttemptOutcome::Failed),
                    worker_id: Some("w2".into()),
                },
            ]
        );

        // Task 3 is completed: its kept error does not make it failed.
        assert_eq!(
            summary.failed_tasks,
            [FailedTask {
                task_id: TaskId(1),
                name: "pipeline".into(),
                status: TaskStatus::Failed,
                error: Some("bad total".into()),
            }]
        );

        // Root: its longest attempt is #1 (100 ms, not #2 at 60 ms).
        // Child 2 alone: 300 ms. Child 3: its longest attempt #1 (50 ms)
        // plus child 4 (280 ms) = 330 ms > 300 ms. Total 100 + 330 = 430.
        assert_eq!(
            summary.critical_path,
            CriticalPath {
                total_duration_ms: 430,
                nodes: vec![
                    PathNode {
                        task_id: TaskId(1),
                        name: "pipeline".into(),
                        status: TaskStatus::Failed,
                        stage: 1,
                        attempt: Some(1),
                        outcome: Some(AttemptOutcome::Suspended),
                        duration_ms: Some(100),
                        started_at: Some(at(10)),
                        ended_at: Some(at(110)),
                    },
                    PathNode {
                        task_id: TaskId(3),
                        name: "process".into(),
                        status: TaskStatus::Completed,
                        stage: 1,
                        attempt: Some(1),
                        outcome: Some(AttemptOutcome::Failed),
                        duration_ms: Some(50),
                        started_at: Some(at(120)),
                        ended_at: Some(at(170)),
                    },
                    PathNode {
                        task_id: TaskId(4),
                        name: "transform".into(),
                        status: TaskStatus::Completed,
                        stage: 0,
                        attempt: Some(1),
                        outcome: Some(AttemptOutcome::Completed),
                        duration_ms: Some(280),
                        started_at: Some(at(250)),
                        ended_at: Some(at(530)),
                    },
                ],
            }
        );

        // 300 (id 2), 280 (id 5), 100 (id 1), 60 (id 7), 50 (id 3); the
        // 40 ms and 5 ms attempts are cut.
        assert_eq!(slow_ids(&summary), [2, 5, 1, 7, 3]);
        let durations: Vec<_> = summary
            .slowest_attempts
            .iter()
            .map(|slow| slow.duration_ms)
            .collect();
        assert_eq!(
            durations,
            [Some(300), Some(280), Some(100), Some(60), Some(50)]
        );
    }

    #[test]
    fn empty_workflow() {
        let summary = summarize(input(Vec::new(), Vec::new()));
        assert_eq!(summary.root_task, None);
        assert_eq!(summary.totals, SummaryTotals::default());
        assert!(summary.statuses.is_empty());
        assert!(summary.attempt_outcomes.is_empty());
        assert!(summary.task_names.is_empty());
        assert!(summary.stages.is_empty());
        assert!(summary.workers.is_empty());
        assert_eq!(summary.timing, WorkflowTiming::default());
        assert!(summary.stage_timings.is_empty());
        assert!(summary.failed_tasks.is_empty());
        assert_eq!(summary.critical_path, CriticalPath::default());
        assert!(summary.slowest_attempts.is_empty());
    }

    #[test]
    fn totals_count_rows_and_take_events_from_the_stats() {
        let mut input = input(
            vec![
                task(1, None, "root", TaskStatus::Suspended),
                task(2, Some(1), "child", TaskStatus::Running),
            ],
            vec![
                done(1, 1, 1, 0, 10),
                done(2, 2, 1, 20, 30),
                attempt(3, 2, 4, 40, None, None),
            ],
        );
        input.events.count = 12;
        input.events.checkpoints = 5;
        let totals = summarize(input).totals;
        assert_eq!(
            totals,
            SummaryTotals {
                tasks: 2,
                attempts: 3,
                events: 12,
                checkpoints: 5,
                max_attempt: 4,
            }
        );
    }

    #[test]
    fn counts_per_status_outcome_name_and_stage() {
        let mut a = task(1, None, "root", TaskStatus::Suspended);
        a.stage = 2;
        let mut b = task(2, Some(1), "work", TaskStatus::Completed);
        b.stage = 2;
        let c = task(3, Some(1), "work", TaskStatus::Completed);
        let d = task(4, Some(1), "other", TaskStatus::Pending);
        let summary = summarize(input(
            vec![a, b, c, d],
            vec![
                done(1, 1, 1, 0, 10),
                attempt(2, 1, 2, 10, Some(20), Some(AttemptOutcome::Suspended)),
                done(3, 2, 1, 0, 5),
                done(4, 3, 1, 0, 5),
                // Running: no outcome, not counted.
                attempt(5, 4, 1, 30, None, None),
            ],
        ));
        assert_eq!(
            summary.statuses,
            BTreeMap::from([
                (TaskStatus::Pending, 1),
                (TaskStatus::Completed, 2),
                (TaskStatus::Suspended, 1),
            ])
        );
        assert_eq!(
            summary.attempt_outcomes,
            BTreeMap::from([
                (AttemptOutcome::Completed, 3),
                (AttemptOutcome::Suspended, 1)
            ])
        );
        assert_eq!(
            summary.task_names,
            BTreeMap::from([
                ("other".to_owned(), 1),
                ("root".to_owned(), 1),
                ("work".to_owned(), 2),
            ])
        );
        assert_eq!(summary.stages, BTreeMap::from([(0, 2), (2, 2)]));
    }

    #[test]
    fn workers_are_merged_sorted_and_deduplicated() {
        let mut root = task(1, None, "root", TaskStatus::Running);
        root.worker_id = Some("b".into());
        let child = task(2, Some(1), "child", TaskStatus::Pending);
        let mut first = done(1, 1, 1, 0, 10);
        first.worker_id = Some("c".into());
        let mut second = attempt(2, 1, 2, 10, None, None);
        second.worker_id = Some("b".into());
        let anonymous = done(3, 2, 1, 0, 10);
        let mut input = input(vec![root, child], vec![first, second, anonymous]);
        input.events.workers = vec!["c".into(), "a".into()];
        assert_eq!(summarize(input).workers, ["a", "b", "c"]);
    }

    #[test]
    fn timing_spans_root_creation_to_last_attempt_end() {
        let mut root = task(1, None, "root", TaskStatus::Suspended);
        root.created_at = at(-50);
        let mut input = input(
            vec![root, task(2, Some(1), "child", TaskStatus::Running)],
            vec![
                done(1, 1, 1, 0, 100),
                done(2, 2, 1, 150, 250),
                // A later start that has not ended.
                attempt(3, 2, 2, 300, None, None),
            ],
        );
        input.events.last_event_at = Some(at(310));
        assert_eq!(
            summarize(input).timing,
            WorkflowTiming {
                created_at: Some(at(-50)),
                first_started_at: Some(at(0)),
                last_ended_at: Some(at(250)),
                last_event_at: Some(at(310)),
                duration_ms: Some(300),
            }
        );
    }

    #[test]
    fn timing_has_no_duration_until_an_attempt_ended() {
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Running)],
            vec![attempt(1, 1, 1, 20, None, None)],
        ));
        assert_eq!(
            summary.timing,
            WorkflowTiming {
                created_at: Some(at(0)),
                first_started_at: Some(at(20)),
                last_ended_at: None,
                last_event_at: None,
                duration_ms: None,
            }
        );
    }

    #[test]
    fn timing_duration_is_never_negative() {
        // Clocks disagree: the attempt ended before the root's creation.
        let mut root = task(1, None, "root", TaskStatus::Completed);
        root.created_at = at(1_000);
        let summary = summarize(input(vec![root], vec![done(1, 1, 1, 0, 500)]));
        assert_eq!(summary.timing.last_ended_at, Some(at(500)));
        assert_eq!(summary.timing.duration_ms, Some(0));
    }

    #[test]
    fn open_attempt() {
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Running)],
            vec![done(1, 1, 1, 0, 40), attempt(2, 1, 2, 50, None, None)],
        ));
        let open = &summary.stage_timings[1];
        assert_eq!(open.attempt, 2);
        assert_eq!(open.ended_at, None);
        assert_eq!(open.duration_ms, None);
        assert_eq!(open.outcome, None);
        assert_eq!(summary.timing.last_ended_at, Some(at(40)));
        // The closed attempt is the root's representative.
        assert_eq!(summary.critical_path.total_duration_ms, 40);
        assert_eq!(summary.critical_path.nodes[0].attempt, Some(1));
        // The running attempt is listed last, without a duration.
        assert_eq!(slow_ids(&summary), [1, 2]);
        assert_eq!(summary.slowest_attempts[1].duration_ms, None);
    }

    #[test]
    fn stage_timings_follow_attempt_order_and_only_the_root() {
        let input = input(
            vec![
                task(1, None, "root", TaskStatus::Completed),
                task(2, Some(1), "child", TaskStatus::Completed),
            ],
            vec![
                done(9, 1, 2, 100, 150),
                done(3, 2, 1, 20, 90),
                done(4, 1, 1, 0, 10),
            ],
        );
        let attempts: Vec<_> = summarize(input)
            .stage_timings
            .iter()
            .map(|timing| (timing.attempt, timing.started_at))
            .collect();
        assert_eq!(attempts, [(1, at(0)), (2, at(100))]);
    }

    #[test]
    fn stage_comes_from_the_first_matching_start_event() {
        let mut input = input(
            vec![task(1, None, "root", TaskStatus::Completed)],
            vec![
                done(1, 1, 1, 0, 10),
                done(2, 1, 2, 20, 30),
                done(3, 1, 3, 40, 50),
            ],
        );
        input.root_starts = vec![
            // Attempt 1: the first start event with a stage wins.
            start_event(1, EventType::TaskStarted, Some(1), None),
            start_event(2, EventType::TaskStarted, Some(1), Some(7)),
            start_event(3, EventType::TaskStarted, Some(1), Some(8)),
            // Attempt 2: a claim is not a start event; the retry start is.
            start_event(4, EventType::TaskClaimed, Some(2), Some(5)),
            start_event(5, EventType::TaskRetryStarted, Some(2), Some(9)),
            // Attempt 3: no attempt number, no match.
            start_event(6, EventType::TaskStarted, None, Some(4)),
        ];
        let stages: Vec<_> = summarize(input)
            .stage_timings
            .iter()
            .map(|timing| timing.stage)
            .collect();
        // Attempt 3 falls back to 3 - 1.
        assert_eq!(stages, [7, 9, 2]);
    }

    #[test]
    fn stage_falls_back_to_attempt_minus_one() {
        let mut input = input(
            vec![task(1, None, "root", TaskStatus::Completed)],
            vec![
                done(1, 1, 0, 0, 10),
                done(2, 1, 1, 20, 30),
                done(3, 1, 4, 40, 50),
            ],
        );
        // An event for another attempt number matches none of them.
        input.root_starts = vec![start_event(1, EventType::TaskStarted, Some(2), Some(6))];
        let stages: Vec<_> = summarize(input)
            .stage_timings
            .iter()
            .map(|timing| timing.stage)
            .collect();
        assert_eq!(stages, [0, 0, 3]);
    }

    #[test]
    fn failed_tasks_are_the_current_failures_in_id_order() {
        let mut paused = task(5, Some(1), "paused", TaskStatus::Paused);
        paused.error = Some("operator".into());
        let mut timeout = task(3, Some(1), "timeout", TaskStatus::Timeout);
        timeout.error = Some("too slow".into());
        let mut completed = task(6, Some(1), "completed", TaskStatus::Completed);
        completed.error = Some("kept from an earlier attempt".into());
        let tasks = vec![
            task(1, None, "root", TaskStatus::Suspended),
            paused,
            task(2, Some(1), "failed", TaskStatus::Failed),
            timeout,
            task(4, Some(1), "gave_up", TaskStatus::PermanentlyFailed),
            completed,
            task(7, Some(1), "pending", TaskStatus::Pending),
            task(8, Some(1), "running", TaskStatus::Running),
        ];
        let failed = summarize(input(tasks, Vec::new())).failed_tasks;
        let expected = [
            (2, "failed", TaskStatus::Failed, None),
            (3, "timeout", TaskStatus::Timeout, Some("too slow")),
            (4, "gave_up", TaskStatus::PermanentlyFailed, None),
            (5, "paused", TaskStatus::Paused, Some("operator")),
        ]
        .map(|(id, name, status, error)| FailedTask {
            task_id: TaskId(id),
            name: name.into(),
            status,
            error: error.map(Into::into),
        });
        assert_eq!(failed, expected);
    }

    #[test]
    fn missing_root() {
        let mut input = input(
            vec![
                task(2, Some(1), "child", TaskStatus::Completed),
                task(3, Some(1), "child", TaskStatus::Failed),
            ],
            vec![done(1, 2, 1, 0, 10), done(2, 3, 1, 0, 20)],
        );
        input.events.count = 4;
        let summary = summarize(input);
        assert_eq!(summary.root_task, None);
        assert_eq!(summary.totals.tasks, 2);
        assert_eq!(summary.totals.events, 4);
        assert_eq!(summary.timing.created_at, None);
        assert_eq!(summary.timing.last_ended_at, Some(at(20)));
        assert_eq!(summary.timing.duration_ms, None);
        assert!(summary.stage_timings.is_empty());
        assert_eq!(summary.failed_tasks.len(), 1);
        assert_eq!(
            summary.critical_path,
            CriticalPath {
                total_duration_ms: 0,
                nodes: Vec::new(),
            }
        );
    }

    #[test]
    fn root_without_attempts_is_one_bare_node() {
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Pending)],
            Vec::new(),
        ));
        assert_eq!(
            summary.critical_path,
            CriticalPath {
                total_duration_ms: 0,
                nodes: vec![PathNode {
                    task_id: TaskId(1),
                    name: "root".into(),
                    status: TaskStatus::Pending,
                    stage: 0,
                    attempt: None,
                    outcome: None,
                    duration_ms: None,
                    started_at: None,
                    ended_at: None,
                }],
            }
        );
        assert_eq!(summary.totals.max_attempt, 0);
        assert!(summary.stage_timings.is_empty());
    }

    #[test]
    fn path_continues_below_a_task_that_never_ran() {
        let summary = summarize(input(
            vec![
                task(1, None, "root", TaskStatus::Suspended),
                task(2, Some(1), "child", TaskStatus::Completed),
            ],
            vec![done(1, 2, 1, 0, 25)],
        ));
        assert_eq!(path_ids(&summary), [1, 2]);
        assert_eq!(summary.critical_path.total_duration_ms, 25);
        assert_eq!(summary.critical_path.nodes[0].attempt, None);
        assert_eq!(summary.critical_path.nodes[1].duration_ms, Some(25));
    }

    #[test]
    fn critical_path_tie_keeps_the_earlier_child() {
        // Children 3 and 2 both total 50 ms (3 through its own child 4);
        // the lower id wins whatever the input order.
        let summary = summarize(input(
            vec![
                task(1, None, "root", TaskStatus::Suspended),
                task(3, Some(1), "b", TaskStatus::Completed),
                task(4, Some(3), "c", TaskStatus::Completed),
                task(2, Some(1), "a", TaskStatus::Completed),
            ],
            vec![
                done(1, 1, 1, 0, 10),
                done(2, 3, 1, 10, 30),
                done(3, 4, 1, 30, 60),
                done(4, 2, 1, 10, 60),
            ],
        ));
        assert_eq!(path_ids(&summary), [1, 2]);
        assert_eq!(summary.critical_path.total_duration_ms, 60);
    }

    #[test]
    fn critical_path_prefers_the_longer_later_child() {
        let summary = summarize(input(
            vec![
                task(1, None, "root", TaskStatus::Suspended),
                task(2, Some(1), "a", TaskStatus::Completed),
                task(3, Some(1), "b", TaskStatus::Completed),
            ],
            vec![done(1, 2, 1, 0, 50), done(2, 3, 1, 0, 51)],
        ));
        assert_eq!(path_ids(&summary), [1, 3]);
        assert_eq!(summary.critical_path.total_duration_ms, 51);
    }

    #[test]
    fn representative_is_the_longest_attempt() {
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Completed)],
            vec![
                done(1, 1, 1, 0, 10),
                done(2, 1, 2, 20, 50),
                done(3, 1, 3, 60, 80),
            ],
        ));
        let node = &summary.critical_path.nodes[0];
        assert_eq!(node.attempt, Some(2));
        assert_eq!(node.duration_ms, Some(30));
        assert_eq!(summary.critical_path.total_duration_ms, 30);
    }

    #[test]
    fn representative_ties_go_to_the_earliest_end_then_lowest_attempt() {
        // Equal durations: attempt 3 ended first.
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Completed)],
            vec![
                done(1, 1, 1, 0, 300),
                done(2, 1, 2, 100, 400),
                done(3, 1, 3, -200, 100),
            ],
        ));
        assert_eq!(summary.critical_path.nodes[0].attempt, Some(3));

        // Equal durations and ends: the lower attempt number.
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Completed)],
            vec![done(7, 1, 5, 0, 100), done(8, 1, 4, 0, 100)],
        ));
        assert_eq!(summary.critical_path.nodes[0].attempt, Some(4));
    }

    #[test]
    fn representative_open_attempt_ranks_below_a_zero_length_one() {
        let summary = summarize(input(
            vec![
                task(1, None, "root", TaskStatus::Suspended),
                task(2, Some(1), "a", TaskStatus::Running),
                task(3, Some(1), "b", TaskStatus::Running),
            ],
            vec![
                // Task 2: a running attempt and an instant one.
                attempt(1, 2, 1, 0, None, None),
                done(2, 2, 2, 5, 5),
                // Task 3: only a running attempt.
                attempt(3, 3, 1, 0, None, None),
            ],
        ));
        let nodes = &summary.critical_path.nodes;
        // Both children total 0 ms: the earlier one, with its 0 ms attempt.
        assert_eq!(path_ids(&summary), [1, 2]);
        assert_eq!(nodes[1].attempt, Some(2));
        assert_eq!(nodes[1].duration_ms, Some(0));
        assert_eq!(summary.critical_path.total_duration_ms, 0);

        // Alone, the running attempt represents its task, as 0 ms.
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Running)],
            vec![attempt(1, 1, 1, 0, None, None)],
        ));
        let node = &summary.critical_path.nodes[0];
        assert_eq!(node.attempt, Some(1));
        assert_eq!(node.started_at, Some(at(0)));
        assert_eq!(node.ended_at, None);
        assert_eq!(node.duration_ms, None);
        assert_eq!(summary.critical_path.total_duration_ms, 0);
    }

    #[test]
    fn critical_path_ignores_tasks_outside_the_root_tree() {
        let summary = summarize(input(
            vec![
                task(1, None, "root", TaskStatus::Completed),
                task(2, Some(1), "child", TaskStatus::Completed),
                // Its parent is not among the tasks.
                task(3, Some(99), "stray", TaskStatus::Completed),
            ],
            vec![
                done(1, 1, 1, 0, 10),
                done(2, 2, 1, 10, 20),
                done(3, 3, 1, 0, 1_000),
                // An attempt of a task not in the workflow.
                done(4, 42, 1, 0, 5_000),
            ],
        ));
        assert_eq!(path_ids(&summary), [1, 2]);
        assert_eq!(summary.critical_path.total_duration_ms, 20);
    }

    #[test]
    fn critical_path_survives_cycles() {
        // The root names its own child as its parent.
        let mut root = task(1, None, "root", TaskStatus::Suspended);
        root.parent_id = Some(TaskId(2));
        let summary = summarize(input(
            vec![root, task(2, Some(1), "child", TaskStatus::Completed)],
            vec![done(1, 1, 1, 0, 10), done(2, 2, 1, 10, 30)],
        ));
        assert_eq!(path_ids(&summary), [1, 2]);
        assert_eq!(summary.critical_path.total_duration_ms, 30);

        // A task that is its own parent.
        let mut root = task(1, None, "root", TaskStatus::Completed);
        root.parent_id = Some(TaskId(1));
        let summary = summarize(input(vec![root], vec![done(1, 1, 1, 0, 10)]));
        assert_eq!(path_ids(&summary), [1]);
        assert_eq!(summary.critical_path.total_duration_ms, 10);
    }

    #[test]
    fn deep_chain_does_not_overflow_the_stack() {
        const DEPTH: i64 = 10_000;
        let tasks: Vec<_> = (1..=DEPTH)
            .map(|id| {
                let parent = (id > 1).then_some(id - 1);
                task(id, parent, "link", TaskStatus::Completed)
            })
            .collect();
        let attempts: Vec<_> = (1..=DEPTH)
            .map(|id| done(id, id, 1, id * 10, id * 10 + 2))
            .collect();
        let input = input(tasks, attempts);
        // A small stack: a recursive walk 10,000 deep would overflow it.
        let summary = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || summarize(input))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(summary.critical_path.total_duration_ms, 2 * DEPTH);
        assert_eq!(path_ids(&summary), (1..=DEPTH).collect::<Vec<_>>());
    }

    #[test]
    fn slowest_attempts_order_with_ties() {
        let summary = summarize(input(
            vec![
                task(1, None, "root", TaskStatus::Suspended),
                task(2, Some(1), "child", TaskStatus::Running),
            ],
            vec![
                // Running: last, whatever its start.
                attempt(1, 2, 3, -100, None, None),
                // 50 ms, started at 10: after the one started at 0.
                done(2, 1, 1, 10, 60),
                // 50 ms, started at 0, higher id than 4.
                done(5, 2, 1, 0, 50),
                // 50 ms, started at 0: first among the ties.
                done(4, 1, 2, 0, 50),
                // 80 ms: the slowest.
                done(3, 2, 2, 100, 180),
                // 10 ms: fifth.
                done(6, 1, 3, 0, 10),
                // 10 ms, started later: cut.
                done(7, 2, 4, 5, 15),
            ],
        ));
        assert_eq!(slow_ids(&summary), [3, 4, 5, 2, 6]);

        // With fewer than five, the running ones come last.
        let summary = summarize(input(
            vec![task(1, None, "root", TaskStatus::Running)],
            vec![
                attempt(1, 1, 1, 0, None, None),
                done(2, 1, 2, 50, 50),
                attempt(3, 1, 3, -10, None, None),
            ],
        ));
        assert_eq!(slow_ids(&summary), [2, 3, 1]);
        assert_eq!(summary.slowest_attempts[0].duration_ms, Some(0));
        assert_eq!(summary.slowest_attempts[1].duration_ms, None);
    }
}
