//! Cron tasks end to end, on every backend: creation and validation, the
//! re-arm after each run (result kept, retry budget reset), retries within
//! a cycle and exhaustion into `paused`, pause and resume, cron workflows,
//! missed occurrences under both misfire policies, `update_cron`,
//! `delete_task`, the idempotent upsert by key, and exactly-once runs
//! across two workers.
//!
//! Schedules fire every second (or every other second) so the tests wait
//! for seconds, never minutes; the parsing and next-run arithmetic of
//! expressions is unit-tested in `src/cron.rs`.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use fib_flow::{
    BoxError, Child, CronOptions, CronUpdate, Error, HandlerOptions, Misfire, Step, Task,
    TaskFilter, TaskId, TaskKind, TaskManager, TaskOptions, TaskRecord, TaskStatus,
};
use serde_json::{json, Value};

use common::{
    task_row, wait_for_running_count, wait_for_status, wait_for_tasks, wait_until, DropFlag, Gate,
    Gates, HighWater, Recorder,
};

/// What a handler saw of one run of a cron task.
#[derive(Debug, Clone)]
struct Run {
    id: TaskId,
    kind: TaskKind,
    /// The occurrence (or retry time) the claim was due for.
    scheduled: DateTime<Utc>,
    attempt: i64,
    retry_count: u32,
    stage: i64,
    payload: Value,
    /// The row's result when it was claimed (the previous cycle's).
    result: Option<Value>,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
}

impl Run {
    fn begin(task: &Task) -> Run {
        let record = task.record();
        let now = Utc::now();
        Run {
            id: task.id(),
            kind: task.kind(),
            scheduled: record.next_run_at,
            attempt: task.attempt(),
            retry_count: task.retry_count(),
            stage: task.stage(),
            payload: task.payload_json().clone(),
            result: record.result.clone(),
            started: now,
            ended: now,
        }
    }

    fn end(mut self) -> Run {
        self.ended = Utc::now();
        self
    }
}

/// Registers `name` with a handler that records each run and returns
/// `{"attempt": <attempt>}`.
fn register_ticker(manager: &TaskManager, name: &str) -> anyhow::Result<Recorder<Run>> {
    let runs = Recorder::new();
    manager.register(name, {
        let runs = runs.clone();
        move |task: Task| {
            let runs = runs.clone();
            async move {
                runs.push(Run::begin(&task).end());
                Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
            }
        }
    })?;
    Ok(runs)
}

/// Stops `manager` claiming and waits until nothing it claimed is still
/// running, so the rows it wrote stay as they are.
async fn quiesce(manager: &TaskManager) {
    manager.pause();
    // A claim round already under way when the manager paused may still
    // start an attempt.
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for_running_count(manager, 0).await;
}

/// Every task in the database, oldest first.
async fn all_tasks(manager: &TaskManager) -> Vec<TaskRecord> {
    manager
        .get_tasks(TaskFilter::new())
        .await
        .expect("get_tasks")
}

/// `t` without its fraction of a second.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("a representable time")
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn millis(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

/// Sleeps until the wall clock reaches `at`.
async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

/// The first `hour:minute:00` UTC strictly after `after`.
fn next_daily_utc(after: DateTime<Utc>, hour: u32, minute: u32) -> DateTime<Utc> {
    let today = after
        .date_naive()
        .and_hms_opt(hour, minute, 0)
        .expect("a valid time of day")
        .and_utc();
    if today > after {
        today
    } else {
        today + TimeDelta::days(1)
    }
}

/// The first 1 January 00:00:00 UTC strictly after `after`.
fn next_new_year(after: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(after.year() + 1, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// Whether a cron call failed with `InvalidInput` on `field`, the reason
/// containing `quoted`.
fn assert_invalid<T: std::fmt::Debug>(result: fib_flow::Result<T>, field: &str, quoted: &str) {
    match result {
        Err(Error::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "{reason}");
            assert!(
                reason.contains(quoted),
                "the reason {reason:?} should contain {quoted:?}"
            );
        }
        other => panic!("expected InvalidInput on {field}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Creation and validation.

backend_test! {
    async fn a_cron_task_is_one_pending_row_due_at_the_first_occurrence_after_now(db) {
        let manager = db.manager().await;
        let before = Utc::now();
        let id = manager
            .cron("tick", "* * * * * *", &json!({ "report": "daily" }))
            .await?;
        let after = Utc::now();
        let rows = all_tasks(&manager).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.id, id);
        assert_eq!(row.name, "tick");
        assert_eq!(row.kind, TaskKind::Cron);
        assert_eq!(row.status, TaskStatus::Pending);
        assert_eq!(row.cron_expr.as_deref(), Some("* * * * * *"));
        assert_eq!(row.payload, Some(json!({ "report": "daily" })));
        assert_eq!(row.result, None);
        assert_eq!(row.error, None);
        assert_eq!(row.stage, 0);
        assert_eq!(row.retry_count, 0);
        assert_eq!(row.attempt, 0);
        assert_eq!(row.parent_id, None);
        assert_eq!(row.root_id, None);
        // The first occurrence strictly after the call: the next second.
        assert!(
            row.next_run_at == whole_second(before) + secs(1)
                || row.next_run_at == whole_second(after) + secs(1),
            "next_run_at {} for a call between {before} and {after}",
            row.next_run_at
        );
        Ok(())
    }
}

backend_test! {
    async fn cron_with_stores_its_time_zone_task_options_and_ignores_a_delay(db) {
        let manager = db.manager().await;
        let before = Utc::now();
        let id = manager
            .cron_with(
                "report",
                "0 30 9 * * *",
                &json!({ "kind": "nightly" }),
                CronOptions::new()
                    .time_zone("Asia/Kolkata")
                    .misfire(Misfire::Skip)
                    .key("nightly-report")
                    .task(
                        TaskOptions::new()
                            .max_attempts(2)
                            .priority(5)
                            .tag("reports")
                            .timeout(Duration::from_secs(7))
                            .retry_interval(Duration::from_millis(1500))
                            .delay(Duration::from_secs(3 * 3600)),
                    ),
            )
            .await?;
        let row = task_row(&manager, id).await;
        // 09:30 in Kolkata (UTC+05:30, no daylight saving) is 04:00 UTC; the
        // delay is ignored: the schedule decides.
        assert_eq!(row.next_run_at, next_daily_utc(before, 4, 0));
        assert_eq!(row.kind, TaskKind::Cron);
        assert_eq!(row.status, TaskStatus::Pending);
        assert_eq!(row.cron_expr.as_deref(), Some("0 30 9 * * *"));
        assert_eq!(row.max_attempts, 2);
        assert_eq!(row.priority, 5);
        assert_eq!(row.tag.as_deref(), Some("reports"));
        assert_eq!(row.timeout, Duration::from_secs(7));
        assert_eq!(row.retry_interval, Duration::from_millis(1500));
        assert_eq!(row.payload, Some(json!({ "kind": "nightly" })));
        Ok(())
    }
}

backend_test! {
    async fn cron_task_options_fall_back_to_the_handler_then_the_manager(db) {
        let manager = db
            .manager_with(|b| {
                b.timeout(Duration::from_secs(42))
                    .retry_interval(Duration::from_millis(250))
            })
            .await;
        manager.register_with(
            "report",
            |_task: Task| async move { Ok::<_, BoxError>(Step::done(json!(null))) },
            HandlerOptions::new().max_attempts(4).priority(3),
        )?;
        let before = Utc::now();
        let id = manager.cron("report", "@hourly", &json!(null)).await?;
        let row = task_row(&manager, id).await;
        assert_eq!(row.max_attempts, 4);
        assert_eq!(row.priority, 3);
        assert_eq!(row.timeout, Duration::from_secs(42));
        assert_eq!(row.retry_interval, Duration::from_millis(250));
        assert_eq!(row.tag, None);
        assert_eq!(row.payload, None);
        let next_hour = DateTime::from_timestamp((before.timestamp() / 3600 + 1) * 3600, 0)
            .expect("a representable time");
        assert_eq!(row.next_run_at, next_hour);
        Ok(())
    }
}

backend_test! {
    async fn invalid_expressions_zones_and_keys_are_refused_and_nothing_is_inserted(db) {
        let manager = db.manager().await;
        for bad in ["", "* * *", "61 * * * *", "0 0 32 * *", "* * * * * * *", "bogus"] {
            assert_invalid(
                manager.cron("tick", bad, &json!({})).await,
                "cron_expr",
                &format!("{bad:?}"),
            );
        }
        assert_invalid(
            manager
                .cron_with(
                    "tick",
                    "* * * * *",
                    &json!({}),
                    CronOptions::new().time_zone("Mars/Olympus"),
                )
                .await,
            "time_zone",
            "\"Mars/Olympus\"",
        );
        for bad_key in ["", " padded", &"k".repeat(256)] {
            assert_invalid(
                manager
                    .cron_with("tick", "* * * * *", &json!({}), CronOptions::new().key(bad_key))
                    .await,
                "key",
                "",
            );
        }
        assert_invalid(manager.cron("", "* * * * *", &json!({})).await, "name", "");
        assert_eq!(all_tasks(&manager).await, Vec::<TaskRecord>::new());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Running: re-arm, overruns, retries, exhaustion, pause and resume.

backend_test! {
    async fn a_successful_run_rearms_the_same_row_at_the_next_occurrence_keeping_its_result(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let id = manager
            .cron("tick", "* * * * * *", &json!({ "report": "daily" }))
            .await?;
        let armed = task_row(&manager, id).await;
        manager.start().await?;
        runs.wait_len("two runs", 2).await;
        quiesce(&manager).await;
        let runs = runs.snapshot();
        let n = runs.len();
        assert_eq!(runs[0].scheduled, armed.next_run_at);
        for (i, run) in runs.iter().enumerate() {
            assert_eq!(run.id, id);
            assert_eq!(run.kind, TaskKind::Cron);
            assert_eq!(run.attempt, i as i64 + 1, "attempt counts claims");
            assert_eq!(run.retry_count, 0);
            assert_eq!(run.stage, 0);
            assert_eq!(run.payload, json!({ "report": "daily" }));
            assert_eq!(run.scheduled.timestamp_subsec_millis(), 0, "{run:?}");
            assert!(run.started >= run.scheduled, "ran before it was due: {run:?}");
        }
        for pair in runs.windows(2) {
            // Each run is due at an occurrence strictly after the previous
            // run ended, and sees the previous run's result on the row.
            assert!(pair[1].scheduled > pair[0].ended, "{pair:?}");
            assert_eq!(pair[1].result, Some(json!({ "attempt": pair[0].attempt })));
        }
        let rows = all_tasks(&manager).await;
        assert_eq!(rows.len(), 1, "a cron task is a single row");
        let row = &rows[0];
        assert_eq!(row.id, id);
        assert_eq!(row.status, TaskStatus::Pending);
        assert_eq!(row.stage, 0);
        assert_eq!(row.retry_count, 0);
        assert_eq!(row.attempt, n as i64);
        assert_eq!(row.result, Some(json!({ "attempt": n })));
        assert_eq!(row.error, None);
        assert_eq!(row.finished_at, None);
        let last = &runs[n - 1];
        assert!(row.next_run_at > last.ended, "{row:?} {last:?}");
        assert!(row.next_run_at <= whole_second(last.ended) + secs(2), "{row:?} {last:?}");
        assert_eq!(row.next_run_at.timestamp_subsec_millis(), 0);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_run_that_outlasts_later_occurrences_is_not_overlapped_and_the_next_run_follows_its_end(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let busy = HighWater::new();
        let runs = Recorder::new();
        manager.register("slow", {
            let (gate, busy, runs) = (gate.clone(), busy.clone(), runs.clone());
            move |task: Task| {
                let (gate, busy, runs) = (gate.clone(), busy.clone(), runs.clone());
                async move {
                    let _executing = busy.enter();
                    let run = Run::begin(&task);
                    if task.attempt() == 1 {
                        gate.wait().await;
                    }
                    runs.push(run.end());
                    Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        let id = manager.cron("slow", "* * * * * *", &json!({})).await?;
        manager.start().await?;
        let running = wait_for_status(&manager, id, TaskStatus::Running).await;
        assert_eq!(running.attempt, 1);
        // Two and a half occurrences come and go while the first run lasts.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(busy.current(), 1);
        assert!(runs.is_empty());
        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::Running);
        assert_eq!(row.attempt, 1);
        gate.open();
        runs.wait_len("the run after the long one", 2).await;
        quiesce(&manager).await;
        let runs = runs.snapshot();
        assert_eq!(busy.max(), 1, "runs of one cron task never overlap");
        assert_eq!(runs[0].attempt, 1);
        assert_eq!(runs[1].attempt, 2);
        assert!(runs[1].scheduled > runs[0].ended, "{runs:?}");
        assert!(runs[1].scheduled <= whole_second(runs[0].ended) + secs(2), "{runs:?}");
        assert!(
            runs[1].scheduled - runs[0].scheduled >= secs(3),
            "the occurrences during the long run were not run: {runs:?}"
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_failed_run_is_retried_within_its_cycle_and_success_resets_the_retry_budget(db) {
        let manager = db.manager().await;
        let runs = Recorder::new();
        manager.register("flaky", {
            let runs = runs.clone();
            move |task: Task| {
                let runs = runs.clone();
                async move {
                    runs.push(Run::begin(&task).end());
                    if task.attempt() == 1 {
                        return Err::<Step, BoxError>("first run breaks".into());
                    }
                    Ok(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        let id = manager
            .cron_with(
                "flaky",
                "*/2 * * * * *",
                &json!({}),
                CronOptions::new().task(
                    TaskOptions::new()
                        .max_attempts(3)
                        .retry_interval(Duration::from_millis(300)),
                ),
            )
            .await?;
        let armed = task_row(&manager, id).await;
        manager.start().await?;
        runs.wait_len("the failed run and its retry", 2).await;
        quiesce(&manager).await;
        let runs = runs.snapshot();
        let occurrence = armed.next_run_at;
        assert_eq!(runs[0].scheduled, occurrence);
        assert_eq!((runs[0].attempt, runs[0].retry_count), (1, 0));
        // The retry is due retry_interval after the failure, before the
        // next occurrence: it belongs to the same cycle.
        assert_eq!((runs[1].attempt, runs[1].retry_count), (2, 1));
        // (Due times are kept to the millisecond.)
        assert!(runs[1].scheduled >= runs[0].ended + millis(299), "{runs:?}");
        assert!(runs[1].scheduled < occurrence + secs(2), "{runs:?}");
        assert!(runs[1].ended < occurrence + secs(2), "{runs:?}");
        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::Pending);
        assert_eq!(row.retry_count, 0, "a success gives a fresh retry budget");
        assert_eq!(row.attempt, runs.len() as i64);
        assert_eq!(row.result, Some(json!({ "attempt": runs.len() })));
        assert_eq!(runs.len(), 2);
        assert_eq!(row.next_run_at, occurrence + secs(2));
        assert_eq!(row.error.as_deref(), Some("first run breaks"));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn exhausted_retries_pause_a_cron_task_and_resume_rearms_it_at_its_next_occurrence(db) {
        let manager = db.manager().await;
        let failing = Arc::new(AtomicBool::new(true));
        let runs = Recorder::new();
        manager.register("doomed", {
            let (failing, runs) = (failing.clone(), runs.clone());
            move |task: Task| {
                let (failing, runs) = (failing.clone(), runs.clone());
                async move {
                    runs.push(Run::begin(&task).end());
                    if failing.load(Ordering::SeqCst) {
                        return Err::<Step, BoxError>(format!("failure #{}", task.attempt()).into());
                    }
                    Ok(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        let id = manager
            .cron_with(
                "doomed",
                "* * * * * *",
                &json!({}),
                CronOptions::new().task(TaskOptions::new().max_attempts(2)),
            )
            .await?;
        manager.start().await?;
        let paused = wait_for_status(&manager, id, TaskStatus::Paused).await;
        wait_for_running_count(&manager, 0).await;
        assert_eq!(paused.attempt, 2);
        assert_eq!(paused.retry_count, 1);
        assert_eq!(paused.error.as_deref(), Some("failure #2"));
        assert_eq!(paused.stage, 0);
        assert_eq!(paused.result, None);
        assert_eq!(paused.finished_at, None, "paused is not terminal");
        let seen: Vec<_> = runs.snapshot().iter().map(|r| (r.attempt, r.retry_count)).collect();
        assert_eq!(seen, [(1, 0), (2, 1)]);

        // Paused, it does not run at its later occurrences.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(runs.len(), 2);
        assert_eq!(task_row(&manager, id).await, paused);

        failing.store(false, Ordering::SeqCst);
        let before = Utc::now();
        manager.resume_task(id, None).await?;
        let after = Utc::now();
        let resumed = task_row(&manager, id).await;
        assert_eq!(resumed.status, TaskStatus::Pending);
        assert_eq!(resumed.stage, 0);
        assert_eq!(resumed.retry_count, 0);
        assert_eq!(resumed.attempt, 2);
        assert!(resumed.next_run_at > before, "{resumed:?}");
        assert!(resumed.next_run_at <= whole_second(after) + secs(1), "{resumed:?}");
        assert_eq!(resumed.next_run_at.timestamp_subsec_millis(), 0);

        runs.wait_len("the run after resume", 3).await;
        quiesce(&manager).await;
        let runs = runs.snapshot();
        assert_eq!(runs[2].attempt, 3);
        assert_eq!(runs[2].retry_count, 0);
        assert_eq!(runs[2].scheduled, resumed.next_run_at);
        assert!(runs[2].started >= resumed.next_run_at);
        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::Pending);
        assert_eq!(row.retry_count, 0);
        assert_eq!(row.attempt, runs.len() as i64);
        assert_eq!(row.result, Some(json!({ "attempt": runs.len() })));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_paused_cron_task_does_not_run_until_resumed_at_its_next_occurrence(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let id = manager.cron("tick", "* * * * * *", &json!({})).await?;
        manager.pause_task(id).await?;
        manager.start().await?;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(runs.is_empty());
        let paused = task_row(&manager, id).await;
        assert_eq!(paused.status, TaskStatus::Paused);
        assert_eq!(paused.attempt, 0);

        let before = Utc::now();
        manager.resume_task(id, Some("maintenance over")).await?;
        let after = Utc::now();
        let resumed = task_row(&manager, id).await;
        assert_eq!(resumed.status, TaskStatus::Pending);
        assert!(resumed.next_run_at > before, "{resumed:?}");
        assert!(resumed.next_run_at <= whole_second(after) + secs(1), "{resumed:?}");
        let first = runs.wait_len("a run after resume", 1).await;
        assert_eq!(first[0].scheduled, resumed.next_run_at);
        assert_eq!(first[0].attempt, 1);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn resuming_a_cron_task_that_is_not_paused_is_refused(db) {
        let manager = db.manager().await;
        let id = manager.cron("tick", "* * * * * *", &json!({})).await?;
        let before = task_row(&manager, id).await;
        match manager.resume_task(id, None).await {
            Err(Error::InvalidTransition { id: refused, from, .. }) => {
                assert_eq!(refused, id);
                assert_eq!(from, TaskStatus::Pending);
            }
            other => panic!("resume of a pending cron task: {other:?}"),
        }
        assert_eq!(task_row(&manager, id).await, before);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Cron workflows.

/// The child results a cron parent's stage 1 saw, as `(status, result)`.
fn outcomes(task: &Task) -> Vec<(TaskStatus, Option<Value>)> {
    task.child_results()
        .iter()
        .map(|child| (child.status, child.result.clone()))
        .collect()
}

backend_test! {
    async fn a_cron_workflow_is_rearmed_only_after_its_children_and_each_cycle_spawns_new_children(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("part", {
            let gates = gates.clone();
            move |task: Task| {
                let gates = gates.clone();
                async move {
                    let payload = task.payload_json().clone();
                    gates.wait(&format!("cycle-{}", payload["cycle"])).await;
                    Ok::<_, BoxError>(Step::done(payload))
                }
            }
        })?;
        let cycles = Arc::new(AtomicI64::new(0));
        let runs = Recorder::new();
        let seen = Recorder::new();
        manager.register("report", {
            let (cycles, runs, seen) = (cycles.clone(), runs.clone(), seen.clone());
            move |task: Task| {
                let (cycles, runs, seen) = (cycles.clone(), runs.clone(), seen.clone());
                async move {
                    let run = Run::begin(&task);
                    let step = if task.stage() == 0 {
                        let cycle = cycles.fetch_add(1, Ordering::SeqCst) + 1;
                        Step::children([
                            Child::new("part", &json!({ "cycle": cycle, "part": 0 })),
                            Child::new("part", &json!({ "cycle": cycle, "part": 1 })),
                        ])
                        .context(cycle.to_string())
                    } else {
                        let cycle: i64 = std::str::from_utf8(task.context().unwrap_or_default())?.parse()?;
                        let outcomes = outcomes(&task);
                        let parts = outcomes.len();
                        seen.push((cycle, outcomes));
                        Step::done(json!({ "cycle": cycle, "parts": parts }))
                    };
                    runs.push(run.end());
                    Ok::<_, BoxError>(step)
                }
            }
        })?;
        let id = manager.cron("report", "* * * * * *", &json!({})).await?;
        manager.start().await?;

        // Cycle 1: the parent waits for its two children ...
        let first = wait_for_tasks(&manager, "cycle 1's children", TaskFilter::new().parent(id), 2).await;
        let waiting = wait_for_status(&manager, id, TaskStatus::Suspended).await;
        assert_eq!(waiting.stage, 0);
        assert_eq!(waiting.attempt, 1);
        assert_eq!(waiting.suspend_reason.as_deref(), Some("awaiting_children"));
        for (part, child) in first.iter().enumerate() {
            assert_eq!(child.kind, TaskKind::Async, "children are async");
            assert_eq!(child.parent_id, Some(id));
            assert_eq!(child.root_id, Some(id));
            assert_eq!(child.parent_stage, Some(0));
            assert_eq!(child.payload, Some(json!({ "cycle": 1, "part": part })));
        }
        // ... and is not re-armed while they run, however many occurrences
        // pass.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let still = task_row(&manager, id).await;
        assert_eq!(still.status, TaskStatus::Suspended);
        assert_eq!(still.attempt, 1);
        assert_eq!(manager.get_children(id).await?.len(), 2);
        assert_eq!(cycles.load(Ordering::SeqCst), 1);
        let opened = Utc::now();
        gates.open("cycle-1");

        // Cycle 2 runs with new children; cycle 3 starts once it is done.
        gates.open("cycle-2");
        let runs = runs.wait_len("two cycles and the start of a third", 5).await;
        let children = manager.get_children(id).await?;
        gates.open("cycle-3");
        let stages: Vec<_> = runs.iter().map(|r| (r.stage, r.attempt)).collect();
        assert_eq!(stages, [(0, 1), (1, 2), (0, 3), (1, 4), (0, 5)]);
        for run in &runs {
            assert_eq!(run.retry_count, 0, "{run:?}");
        }
        // Stage 1 of each cycle sees the children of that cycle only.
        let completed = |n: i64| -> Vec<(TaskStatus, Option<Value>)> {
            (0..2)
                .map(|part| (TaskStatus::Completed, Some(json!({ "cycle": n, "part": part }))))
                .collect()
        };
        let seen = seen.snapshot();
        assert_eq!(seen[0], (1, completed(1)));
        assert_eq!(seen[1], (2, completed(2)), "cycle 2's stage 1 saw the children of cycle 1 too");
        // Each cycle starts at an occurrence after the previous workflow
        // completed, on the row re-armed with the previous cycle's result.
        assert!(runs[2].scheduled > opened, "{runs:?}");
        assert!(runs[2].scheduled > runs[1].ended, "{runs:?}");
        assert_eq!(runs[2].scheduled.timestamp_subsec_millis(), 0);
        assert_eq!(runs[2].result, Some(json!({ "cycle": 1, "parts": 2 })));
        assert!(runs[4].scheduled > runs[3].ended, "{runs:?}");
        assert_eq!(runs[4].scheduled.timestamp_subsec_millis(), 0);
        assert_eq!(runs[4].result, Some(json!({ "cycle": 2, "parts": 2 })));
        // Every cycle spawned a new set of children.
        let payloads: Vec<_> = children.iter().map(|c| c.payload.clone()).collect();
        let cycle_of = |n: i64| -> Vec<Option<Value>> {
            (0..2).map(|part| Some(json!({ "cycle": n, "part": part }))).collect()
        };
        assert_eq!(payloads[..4], [cycle_of(1), cycle_of(2)].concat()[..]);
        assert!(children[..4].iter().all(|c| c.status == TaskStatus::Completed));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_failed_child_pauses_its_cron_parent_and_resume_starts_a_new_cycle(db) {
        let manager = db.manager().await;
        let gates = Gates::new();
        manager.register("part", {
            let gates = gates.clone();
            move |task: Task| {
                let gates = gates.clone();
                async move {
                    let payload = task.payload_json().clone();
                    if payload["wait"] == json!(true) {
                        gates.wait("never").await;
                    }
                    if payload["fail"] == json!(true) {
                        return Err::<Step, BoxError>("part broke".into());
                    }
                    Ok(Step::done(payload))
                }
            }
        })?;
        let cycles = Arc::new(AtomicI64::new(0));
        let runs = Recorder::new();
        let seen = Recorder::new();
        manager.register("report", {
            let (cycles, runs, seen) = (cycles.clone(), runs.clone(), seen.clone());
            move |task: Task| {
                let (cycles, runs, seen) = (cycles.clone(), runs.clone(), seen.clone());
                async move {
                    let run = Run::begin(&task);
                    let step = if task.stage() == 0 {
                        let cycle = cycles.fetch_add(1, Ordering::SeqCst) + 1;
                        let first = cycle == 1;
                        Step::children([
                            Child::new("part", &json!({ "cycle": cycle, "fail": first })).max_attempts(1),
                            Child::new("part", &json!({ "cycle": cycle, "wait": first })),
                        ])
                    } else {
                        seen.push(outcomes(&task));
                        Step::done(json!({ "parts": task.child_results().len() }))
                    };
                    runs.push(run.end());
                    Ok::<_, BoxError>(step)
                }
            }
        })?;
        let id = manager.cron("report", "* * * * * *", &json!({})).await?;
        manager.start().await?;
        let paused = wait_for_status(&manager, id, TaskStatus::Paused).await;
        let children = manager.get_children(id).await?;
        assert_eq!(children.len(), 2);
        let (broken, sibling) = (&children[0], &children[1]);
        assert_eq!(broken.status, TaskStatus::PermanentlyFailed);
        assert_eq!(broken.error.as_deref(), Some("part broke"));
        assert_eq!(
            paused.error,
            Some(format!("child task {} (part) failed: part broke", broken.id))
        );
        assert_eq!(paused.stage, 0);
        assert_eq!(paused.attempt, 1);
        assert_eq!(paused.finished_at, None);
        let sibling = wait_for_status(&manager, sibling.id, TaskStatus::PermanentlyFailed).await;
        assert_eq!(
            sibling.error,
            Some(format!("cancelled: sibling task {} failed", broken.id))
        );

        // Paused, the schedule does not start new cycles.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(task_row(&manager, id).await.status, TaskStatus::Paused);
        assert_eq!(runs.len(), 1);
        assert_eq!(manager.get_children(id).await?.len(), 2);

        let before = Utc::now();
        manager.resume_task(id, None).await?;
        let resumed = task_row(&manager, id).await;
        assert_eq!(resumed.status, TaskStatus::Pending);
        assert_eq!(resumed.stage, 0);
        assert_eq!(resumed.retry_count, 0);
        assert!(resumed.next_run_at > before);
        let runs = runs.wait_len("cycle 2 and the start of cycle 3", 4).await;
        // Cycle 3 does not wait on anything: its stage 1 may already have
        // run by the time the poll sees four runs.
        let runs = &runs[..4];
        let stages: Vec<_> = runs.iter().map(|r| (r.stage, r.attempt)).collect();
        assert_eq!(stages, [(0, 1), (0, 2), (1, 3), (0, 4)]);
        assert_eq!(runs[1].scheduled, resumed.next_run_at);
        let seen = seen.snapshot();
        assert_eq!(
            seen[0],
            [
                (TaskStatus::Completed, Some(json!({ "cycle": 2, "fail": false }))),
                (TaskStatus::Completed, Some(json!({ "cycle": 2, "wait": false }))),
            ],
            "cycle 2's stage 1 saw the children of cycle 1 too"
        );
        assert_eq!(runs[3].result, Some(json!({ "parts": 2 })));
        gates.open("never");
        manager.stop().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Missed occurrences.

backend_test! {
    async fn missed_occurrences_run_once_when_a_worker_starts_late(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let id = manager.cron("tick", "* * * * * *", &json!({})).await?;
        let armed = task_row(&manager, id).await;
        let first = armed.next_run_at;
        // No worker runs while three occurrences pass: first, +1 s, +2 s.
        sleep_until(first + millis(2200)).await;
        let started = Utc::now();
        manager.start().await?;
        runs.wait_len("the late run and the one after it", 2).await;
        quiesce(&manager).await;
        let runs = runs.snapshot();
        // One run for all the missed occurrences, due at the first of them ...
        assert_eq!(runs[0].scheduled, first);
        assert_eq!(runs[0].attempt, 1);
        assert!(runs[0].started >= first + millis(2200));
        assert_eq!(
            runs.iter().filter(|r| r.scheduled < started).count(),
            1,
            "one run for the missed occurrences: {runs:?}"
        );
        // ... then re-armed after it, not at the next missed occurrence.
        assert!(runs[1].scheduled > runs[0].ended, "{runs:?}");
        assert_eq!(runs[1].scheduled, first + secs(3), "{runs:?}");
        assert_eq!(runs[1].attempt, 2);
        assert_eq!(task_row(&manager, id).await.attempt, runs.len() as i64);
        manager.stop().await?;
        Ok(())
    }
}

/// Starts `manager` 1.5 periods after the first occurrence of its
/// every-other-second schedule `id` and checks the skip policy: the late
/// claim is skipped (re-armed without running the handler) and the handler
/// first runs at the next occurrence after the start.
async fn check_skipped_start(
    manager: &TaskManager,
    id: TaskId,
    runs: &Recorder<Run>,
) -> anyhow::Result<()> {
    let first = task_row(manager, id).await.next_run_at;
    assert_eq!(first.timestamp() % 2, 0);
    assert_eq!(first.timestamp_subsec_millis(), 0);
    // A whole period (and a half) late: the occurrence at first + 2 s has
    // passed too.
    sleep_until(first + millis(3000)).await;
    manager.start().await?;
    let skipped = wait_until("the late claim to be skipped", || async {
        let row = manager.get_task(id).await.ok()??;
        (row.attempt == 1 && row.status == TaskStatus::Pending).then_some(row)
    })
    .await;
    assert!(
        runs.is_empty(),
        "the skipped occurrence ran: {:?}",
        runs.snapshot()
    );
    assert_eq!(skipped.next_run_at, first + secs(4));
    assert_eq!(skipped.result, None);
    assert_eq!(skipped.retry_count, 0);
    assert_eq!(skipped.stage, 0);
    runs.wait_len("the run at the next occurrence", 1).await;
    quiesce(manager).await;
    let runs = runs.snapshot();
    assert_eq!(runs[0].scheduled, first + secs(4));
    assert_eq!(runs[0].attempt, 2, "the skip took one claim");
    assert!(runs[0].started >= first + secs(4));
    assert!(
        runs.iter().all(|r| r.scheduled >= first + secs(4)),
        "{runs:?}"
    );
    let row = task_row(manager, id).await;
    assert_eq!(row.attempt, runs.len() as i64 + 1);
    assert_eq!(row.result, Some(json!({ "attempt": runs.len() + 1 })));
    Ok(())
}

backend_test! {
    async fn with_misfire_skip_a_run_late_by_a_whole_period_is_skipped(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let id = manager
            .cron_with(
                "tick",
                "*/2 * * * * *",
                &json!({}),
                CronOptions::new().misfire(Misfire::Skip),
            )
            .await?;
        check_skipped_start(&manager, id, &runs).await?;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn update_cron_can_switch_a_schedule_to_misfire_skip(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let id = manager.cron("tick", "*/2 * * * * *", &json!({})).await?;
        manager
            .update_cron(id, CronUpdate::new().misfire(Misfire::Skip))
            .await?;
        check_skipped_start(&manager, id, &runs).await?;
        manager.stop().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// update_cron and delete_task.

backend_test! {
    async fn update_cron_moves_a_pending_task_to_the_new_schedule_and_later_runs_see_the_new_payload(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let before = Utc::now();
        let id = manager.cron("tick", "0 0 0 1 1 *", &json!({ "v": 1 })).await?;
        assert_eq!(task_row(&manager, id).await.next_run_at, next_new_year(before));

        let before = Utc::now();
        manager
            .update_cron(
                id,
                CronUpdate::new().expr("* * * * * *").payload(&json!({ "v": 2 }))?,
            )
            .await?;
        let after = Utc::now();
        let moved = task_row(&manager, id).await;
        assert_eq!(moved.status, TaskStatus::Pending);
        assert_eq!(moved.cron_expr.as_deref(), Some("* * * * * *"));
        assert_eq!(moved.payload, Some(json!({ "v": 2 })));
        assert!(moved.next_run_at > before, "{moved:?}");
        assert!(moved.next_run_at <= whole_second(after) + secs(1), "{moved:?}");

        manager.start().await?;
        let first = runs.wait_len("a run on the new schedule", 1).await;
        assert_eq!(first[0].scheduled, moved.next_run_at);
        assert_eq!(first[0].payload, json!({ "v": 2 }));

        // A payload-only update keeps the schedule; later runs see it.
        let updating = Utc::now();
        manager
            .update_cron(id, CronUpdate::new().payload(&json!({ "v": 3 }))?)
            .await?;
        let updated = Utc::now();
        wait_until("a run with the new payload", || async {
            runs.snapshot()
                .iter()
                .any(|r| r.payload == json!({ "v": 3 }))
                .then_some(())
        })
        .await;
        quiesce(&manager).await;
        for run in runs.snapshot() {
            if run.started < updating {
                assert_eq!(run.payload, json!({ "v": 2 }), "{run:?}");
            } else if run.started > updated {
                assert_eq!(run.payload, json!({ "v": 3 }), "{run:?}");
            }
        }
        let row = task_row(&manager, id).await;
        assert_eq!(row.cron_expr.as_deref(), Some("* * * * * *"));
        assert_eq!(row.payload, Some(json!({ "v": 3 })));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn update_cron_changes_the_time_zone_the_expression_is_read_in(db) {
        let manager = db.manager().await;
        let before = Utc::now();
        let id = manager.cron("report", "0 30 9 * * *", &json!({})).await?;
        assert_eq!(task_row(&manager, id).await.next_run_at, next_daily_utc(before, 9, 30));
        let before = Utc::now();
        manager
            .update_cron(id, CronUpdate::new().time_zone("Asia/Kolkata"))
            .await?;
        let row = task_row(&manager, id).await;
        // 09:30 in Kolkata is 04:00 UTC.
        assert_eq!(row.next_run_at, next_daily_utc(before, 4, 0));
        assert_eq!(row.cron_expr.as_deref(), Some("0 30 9 * * *"));
        assert_eq!(row.status, TaskStatus::Pending);
        Ok(())
    }
}

backend_test! {
    async fn update_cron_with_an_invalid_expression_or_zone_is_refused_and_changes_nothing(db) {
        let manager = db.manager().await;
        let id = manager
            .cron_with(
                "tick",
                "0 0 0 1 1 *",
                &json!({ "v": 1 }),
                CronOptions::new().time_zone("Europe/Berlin"),
            )
            .await?;
        let before = task_row(&manager, id).await;
        assert_invalid(
            manager
                .update_cron(id, CronUpdate::new().expr("61 * * * *"))
                .await,
            "cron_expr",
            "\"61 * * * *\"",
        );
        assert_invalid(
            manager
                .update_cron(
                    id,
                    CronUpdate::new().expr("bogus").payload(&json!({ "v": 2 }))?,
                )
                .await,
            "cron_expr",
            "\"bogus\"",
        );
        assert_invalid(
            manager
                .update_cron(
                    id,
                    CronUpdate::new()
                        .time_zone("Mars/Olympus")
                        .payload(&json!({ "v": 2 }))?,
                )
                .await,
            "time_zone",
            "\"Mars/Olympus\"",
        );
        assert_eq!(task_row(&manager, id).await, before);
        Ok(())
    }
}

backend_test! {
    async fn update_cron_of_an_async_task_or_a_missing_id_is_not_found(db) {
        let manager = db.manager().await;
        let async_id = manager.submit("tick", &json!({ "v": 1 })).await?;
        let before = task_row(&manager, async_id).await;
        let missing = TaskId(async_id.get() + 1000);
        for id in [async_id, missing] {
            match manager
                .update_cron(id, CronUpdate::new().expr("* * * * * *").payload(&json!({ "v": 2 }))?)
                .await
            {
                Err(Error::NotFound { id: not_found }) => assert_eq!(not_found, id),
                other => panic!("update_cron of {id}: {other:?}"),
            }
        }
        assert_eq!(task_row(&manager, async_id).await, before);
        assert_eq!(all_tasks(&manager).await.len(), 1);
        Ok(())
    }
}

backend_test! {
    async fn updating_a_running_cron_task_keeps_its_run_and_rearms_it_by_the_new_schedule(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let started = Recorder::new();
        let runs = Recorder::new();
        manager.register("slow", {
            let (gate, started, runs) = (gate.clone(), started.clone(), runs.clone());
            move |task: Task| {
                let (gate, started, runs) = (gate.clone(), started.clone(), runs.clone());
                async move {
                    let run = Run::begin(&task);
                    started.push(task.attempt());
                    gate.wait().await;
                    runs.push(run.end());
                    Ok::<_, BoxError>(Step::done(json!({ "attempt": task.attempt() })))
                }
            }
        })?;
        let id = manager.cron("slow", "* * * * * *", &json!({ "v": 1 })).await?;
        manager.start().await?;
        // The handler is executing: its attempt was claimed and set up.
        started.wait_len("the handler to start", 1).await;
        let running = task_row(&manager, id).await;
        assert_eq!(running.status, TaskStatus::Running);
        manager
            .update_cron(
                id,
                CronUpdate::new().expr("0 0 0 1 1 *").payload(&json!({ "v": 2 }))?,
            )
            .await?;
        let updated = task_row(&manager, id).await;
        assert_eq!(updated.status, TaskStatus::Running);
        assert_eq!(updated.attempt, 1);
        assert_eq!(updated.next_run_at, running.next_run_at);
        assert_eq!(updated.cron_expr.as_deref(), Some("0 0 0 1 1 *"));
        assert_eq!(updated.payload, Some(json!({ "v": 2 })));
        gate.open();
        let runs = runs.wait_len("the run to finish", 1).await;
        let row = wait_for_status(&manager, id, TaskStatus::Pending).await;
        assert_eq!(runs[0].payload, json!({ "v": 1 }), "the run kept its payload");
        assert_eq!(row.attempt, 1);
        assert_eq!(row.result, Some(json!({ "attempt": 1 })));
        assert_eq!(row.next_run_at, next_new_year(runs[0].ended));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_paused_cron_task_keeps_its_due_time_on_update_and_resumes_on_the_new_schedule(db) {
        let manager = db.manager().await;
        let id = manager.cron("tick", "* * * * * *", &json!({})).await?;
        manager.pause_task(id).await?;
        let paused = task_row(&manager, id).await;
        manager
            .update_cron(id, CronUpdate::new().expr("0 0 0 1 1 *"))
            .await?;
        let updated = task_row(&manager, id).await;
        assert_eq!(updated.status, TaskStatus::Paused);
        assert_eq!(updated.next_run_at, paused.next_run_at);
        assert_eq!(updated.cron_expr.as_deref(), Some("0 0 0 1 1 *"));
        let before = Utc::now();
        manager.resume_task(id, None).await?;
        let resumed = task_row(&manager, id).await;
        assert_eq!(resumed.status, TaskStatus::Pending);
        assert_eq!(resumed.next_run_at, next_new_year(before));
        Ok(())
    }
}

backend_test! {
    async fn a_deleted_cron_task_no_longer_runs(db) {
        let manager = db.manager().await;
        let runs = register_ticker(&manager, "tick")?;
        let id = manager.cron("tick", "* * * * * *", &json!({})).await?;
        manager.start().await?;
        runs.wait_len("a run", 1).await;
        assert!(manager.delete_task(id).await?);
        assert!(!manager.delete_task(id).await?);
        assert_eq!(manager.get_task(id).await?, None);
        wait_for_running_count(&manager, 0).await;
        let ran = runs.len();
        // Occurrences pass without a run, and no write brings the row back.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(runs.len(), ran);
        assert_eq!(all_tasks(&manager).await, Vec::<TaskRecord>::new());
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn deleting_a_running_cron_task_stops_its_attempt_and_it_is_not_rearmed(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        let dropped = DropFlag::new();
        let started = Recorder::new();
        let finished = Recorder::new();
        manager.register("slow", {
            let (gate, dropped) = (gate.clone(), dropped.clone());
            let (started, finished) = (started.clone(), finished.clone());
            move |task: Task| {
                let (gate, dropped) = (gate.clone(), dropped.clone());
                let (started, finished) = (started.clone(), finished.clone());
                async move {
                    let _guard = dropped.guard();
                    started.push(task.attempt());
                    gate.wait().await;
                    finished.push(task.attempt());
                    Ok::<_, BoxError>(Step::done(json!({})))
                }
            }
        })?;
        let id = manager.cron("slow", "* * * * * *", &json!({})).await?;
        manager.start().await?;
        // The handler is executing.
        started.wait_len("the handler to start", 1).await;
        assert!(manager.delete_task(id).await?);
        dropped.wait("the running attempt to be stopped", 1).await;
        wait_for_running_count(&manager, 0).await;
        gate.open();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(finished.is_empty(), "{:?}", finished.snapshot());
        assert_eq!(dropped.count(), 1);
        assert_eq!(all_tasks(&manager).await, Vec::<TaskRecord>::new());
        manager.stop().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Idempotent upsert by key.

backend_test! {
    async fn cron_with_the_same_key_twice_returns_the_same_schedule_and_changes_nothing(db) {
        let manager = db.manager().await;
        let options = CronOptions::new().key("nightly-report");
        let id = manager
            .cron_with("report", "* * * * * *", &json!({ "v": 1 }), options.clone())
            .await?;
        let first = task_row(&manager, id).await;
        // Let the first occurrence pass, so a recomputed one would differ.
        sleep_until(first.next_run_at + millis(200)).await;
        let again = manager
            .cron_with("report", "* * * * * *", &json!({ "v": 1 }), options)
            .await?;
        assert_eq!(again, id);
        assert_eq!(all_tasks(&manager).await, [first]);
        Ok(())
    }
}

backend_test! {
    async fn cron_with_a_known_key_and_a_changed_payload_updates_that_schedule_in_place(db) {
        let manager = db.manager().await;
        let id = manager
            .cron_with(
                "report",
                "* * * * * *",
                &json!({ "v": 1 }),
                CronOptions::new().key("nightly-report"),
            )
            .await?;
        let first = task_row(&manager, id).await;
        sleep_until(first.next_run_at + millis(200)).await;
        let again = manager
            .cron_with(
                "report",
                "* * * * * *",
                &json!({ "v": 2 }),
                CronOptions::new()
                    .key("nightly-report")
                    .task(TaskOptions::new().max_attempts(5).priority(7)),
            )
            .await?;
        assert_eq!(again, id);
        let rows = all_tasks(&manager).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.payload, Some(json!({ "v": 2 })));
        assert_eq!(row.max_attempts, 5);
        assert_eq!(row.priority, 7);
        assert_eq!(row.next_run_at, first.next_run_at, "the schedule did not change");
        assert_eq!(row.created_at, first.created_at);
        assert_eq!(row.status, TaskStatus::Pending);
        Ok(())
    }
}

backend_test! {
    async fn cron_with_a_known_key_and_a_changed_expression_moves_that_schedule(db) {
        let manager = db.manager().await;
        let id = manager
            .cron_with(
                "report",
                "0 0 0 1 1 *",
                &json!({ "v": 1 }),
                CronOptions::new().key("nightly-report"),
            )
            .await?;
        let before = Utc::now();
        let again = manager
            .cron_with(
                "report",
                "* * * * * *",
                &json!({ "v": 1 }),
                CronOptions::new().key("nightly-report"),
            )
            .await?;
        let after = Utc::now();
        assert_eq!(again, id);
        let rows = all_tasks(&manager).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.cron_expr.as_deref(), Some("* * * * * *"));
        assert!(row.next_run_at > before, "{row:?}");
        assert!(row.next_run_at <= whole_second(after) + secs(1), "{row:?}");
        Ok(())
    }
}

backend_test! {
    async fn without_a_key_each_cron_call_creates_a_new_schedule(db) {
        let manager = db.manager().await;
        let a = manager.cron("report", "* * * * * *", &json!({ "v": 1 })).await?;
        let b = manager.cron("report", "* * * * * *", &json!({ "v": 1 })).await?;
        assert_ne!(a, b);
        let rows = all_tasks(&manager).await;
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [a, b]);
        assert!(rows.iter().all(|r| r.kind == TaskKind::Cron));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Several workers.

backend_test! {
    async fn each_occurrence_runs_exactly_once_across_two_workers(db) {
        if !db.shareable() {
            return Ok(());
        }
        let workers = [
            db.manager_with(|b| b.worker_id("worker-a")).await,
            db.manager_with(|b| b.worker_id("worker-b")).await,
        ];
        let runs = Recorder::new();
        for manager in &workers {
            let worker = manager.worker_id().to_owned();
            manager.register("tick", {
                let runs = runs.clone();
                move |task: Task| {
                    let (runs, worker) = (runs.clone(), worker.clone());
                    async move {
                        runs.push((worker, task.record().next_run_at));
                        Ok::<_, BoxError>(Step::done(json!({})))
                    }
                }
            })?;
        }
        let created = Utc::now();
        let id = workers[0].cron("tick", "* * * * * *", &json!({})).await?;
        for manager in &workers {
            manager.start().await?;
        }
        wait_until("ten occurrences", || async {
            let occurrences: BTreeSet<_> = runs.snapshot().into_iter().map(|(_, at)| at).collect();
            (occurrences.len() >= 10).then_some(())
        })
        .await;
        for manager in &workers {
            quiesce(manager).await;
        }
        let runs = runs.snapshot();
        let occurrences: BTreeSet<_> = runs.iter().map(|(_, at)| *at).collect();
        assert!(occurrences.len() >= 10);
        assert_eq!(runs.len(), occurrences.len(), "an occurrence ran twice: {runs:?}");
        assert!(occurrences.iter().all(|at| *at > created && at.timestamp_subsec_millis() == 0));
        let row = task_row(&workers[0], id).await;
        assert_eq!(row.attempt, runs.len() as i64, "every claim ran the handler once");
        for worker in ["worker-a", "worker-b"] {
            let ran = runs.iter().filter(|(w, _)| w == worker).count();
            eprintln!("{worker} ran {ran} of {} occurrences", runs.len());
        }
        for manager in &workers {
            manager.stop().await?;
        }
        Ok(())
    }
}
