//! What a handler writes into its own history while it runs:
//! checkpoints (`Task::audit`) and progress reports (`Task::progress`) —
//! their events, metadata merging and message defaults, the progress
//! snapshot on the task row, progress as a heartbeat, every validation
//! rule (nothing written), and the fence (`Error::Lost` once the attempt
//! lost its task).

#[macro_use]
mod common;

use std::collections::BTreeMap;

use fib_flow::{
    BoxError, Error, EventQuery, EventType, Step, Task, TaskId, TaskManager, TaskStatus,
};
use serde_json::{json, Value};

use common::{
    audit_manager_with, events_of, invalid_field, ms, task_row, wait_clock_past,
    wait_for_running_count, wait_for_status, Gate, Recorder,
};

/// A manager whose heartbeat loop stays out of the way (one beat at start,
/// the next a minute later), so only reports move `last_active_at`.
async fn quiet_manager(db: &common::TestDb) -> TaskManager {
    audit_manager_with(db, |b| {
        b.task_heartbeat_interval(ms(60_000))
            .task_heartbeat_timeout(ms(120_000))
    })
    .await
}

/// The handler's own events of `kind` (checkpoints or progress reports).
async fn reports(manager: &TaskManager, id: TaskId, kind: EventType) -> Vec<fib_flow::TaskEvent> {
    manager
        .task_events(id, EventQuery::new().event_type(kind))
        .await
        .expect("task_events")
        .items
}

/// Waits, inside a handler, until the clock is past the attempt's claim,
/// so a write now has a later time than the claim.
async fn after_claim(task: &Task) {
    let claimed = task.record().started_at.expect("a claimed task");
    wait_clock_past(claimed, ms(5)).await;
}

const TRICKY: &str = "quote \" backslash \\ newline \n tab \t unicode é ✓ 🚀 'single'";

backend_test! {
    async fn checkpoints_are_events_of_the_running_attempt_and_do_not_renew_the_lease(db) {
        let manager = quiet_manager(&db).await;
        let (reported, gate) = (Recorder::new(), Gate::new());
        manager.register("pay", {
            let (reported, gate) = (reported.clone(), gate.clone());
            move |task: Task| {
                let (reported, gate) = (reported.clone(), gate.clone());
                async move {
                    after_claim(&task).await;
                    task.audit("payment_captured")
                        .metadata(&json!({ "amount": 42, "code": "theirs" }))
                        .await?;
                    task.audit("shipped").message("Parcel handed over").stage(3).await?;
                    task.audit("tricky")
                        .message(TRICKY)
                        .metadata(&json!({ "note": TRICKY, "nested": { "list": [1, null] } }))
                        .await?;
                    // `null` metadata counts as none; the longest code and
                    // message are accepted.
                    task.audit("c".repeat(255)).metadata(&()).message("m".repeat(4096)).await?;
                    reported.push(());
                    gate.wait().await;
                    Ok::<_, BoxError>(Step::done(json!("paid")))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("pay", &()).await?;
        reported.wait_len("the checkpoints", 1).await;

        let row = task_row(&manager, id).await;
        assert_eq!(row.status, TaskStatus::Running);
        assert_eq!(row.last_event_type.as_deref(), Some("task_checkpoint"));
        // Checkpoints are not heartbeats, nor progress.
        assert_eq!(row.last_active_at, row.started_at);
        assert_eq!(
            (row.current_stage_name, row.progress_text, row.progress_percent),
            (None, None, None)
        );

        let events = reports(&manager, id, EventType::TaskCheckpoint).await;
        assert_eq!(events.len(), 4, "{events:?}");
        let w = manager.worker_id();
        for event in &events {
            assert_eq!(event.from_status, Some(TaskStatus::Running), "{event:?}");
            assert_eq!(event.to_status, Some(TaskStatus::Running), "{event:?}");
            assert_eq!(event.attempt, Some(1), "{event:?}");
            assert_eq!(event.worker_id.as_deref(), Some(w), "{event:?}");
            assert_eq!((event.root_id, event.parent_id), (id, None), "{event:?}");
        }
        let view: Vec<_> = events
            .iter()
            .map(|e| (e.stage, e.message.clone(), e.metadata.clone()))
            .collect();
        assert_eq!(
            view,
            [
                (
                    Some(0),
                    Some("payment_captured".to_owned()),
                    json!({ "amount": 42, "code": "payment_captured" }),
                ),
                (
                    Some(3),
                    Some("Parcel handed over".to_owned()),
                    json!({ "code": "shipped" }),
                ),
                (
                    Some(0),
                    Some(TRICKY.to_owned()),
                    json!({ "note": TRICKY, "nested": { "list": [1, null] }, "code": "tricky" }),
                ),
                (
                    Some(0),
                    Some("m".repeat(4096)),
                    json!({ "code": "c".repeat(255) }),
                ),
            ]
        );
        // The stage filter finds the checkpoint filed under stage 3.
        let staged = manager
            .task_events(id, EventQuery::new().stage(3))
            .await?;
        assert_eq!(staged.total, 1);
        assert_eq!(staged.items[0].message.as_deref(), Some("Parcel handed over"));

        gate.open();
        wait_for_status(&manager, id, TaskStatus::Completed).await;
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn progress_updates_the_snapshot_renews_the_lease_and_keeps_what_a_report_leaves_out(db) {
        let manager = quiet_manager(&db).await;
        let (reported, gates) = (Recorder::new(), common::Gates::new());
        manager.register("upload", {
            let (reported, gates) = (reported.clone(), gates.clone());
            move |task: Task| {
                let (reported, gates) = (reported.clone(), gates.clone());
                async move {
                    after_claim(&task).await;
                    task.progress().stage("upload").percent(40.0).text("2 of 5 files").await?;
                    reported.push(1);
                    gates.wait("second").await;
                    task.progress()
                        .percent(75.5)
                        .message("most done")
                        .metadata(&json!({ "progress_percent": "mine", "extra": 1 }))
                        .await?;
                    task.progress().stage("finalize").await?;
                    task.progress().percent(100.0).await?;
                    reported.push(2);
                    gates.wait("third").await;
                    // The longest stage name and text are stored whole.
                    task.progress().stage("s".repeat(255)).text("t".repeat(4096)).await?;
                    Ok::<_, BoxError>(Step::done(json!("uploaded")))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("upload", &()).await?;

        reported.wait_len("the first report", 1).await;
        let row = task_row(&manager, id).await;
        assert_eq!(row.current_stage_name.as_deref(), Some("upload"));
        assert_eq!(row.progress_text.as_deref(), Some("2 of 5 files"));
        assert_eq!(row.progress_percent, Some(40.0));
        assert_eq!(row.last_event_type.as_deref(), Some("task_progress"));
        // A progress report renews the lease: only it moved last_active_at
        // past the claim (the heartbeat loop beats once a minute here).
        let claimed = row.started_at.expect("claimed");
        assert!(
            row.last_active_at.is_some_and(|at| at > claimed),
            "last_active_at {:?} not past the claim {claimed}",
            row.last_active_at
        );

        gates.open("second");
        reported.wait_len("the later reports", 2).await;
        let row = task_row(&manager, id).await;
        // A report changes only what it carries.
        assert_eq!(row.current_stage_name.as_deref(), Some("finalize"));
        assert_eq!(row.progress_text.as_deref(), Some("2 of 5 files"));
        assert_eq!(row.progress_percent, Some(100.0));

        gates.open("third");
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        // The snapshot outlives the run.
        assert_eq!(done.current_stage_name, Some("s".repeat(255)));
        assert_eq!(done.progress_text, Some("t".repeat(4096)));
        assert_eq!(done.progress_percent, Some(100.0));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn progress_reports_are_events_with_merged_metadata_and_a_default_message(db) {
        let manager = quiet_manager(&db).await;
        manager.register("upload", |task: Task| async move {
            task.progress().stage("upload").percent(40.0).text("2 of 5 files").await?;
            task.progress()
                .percent(75.5)
                .message("most done")
                .metadata(&json!({ "progress_percent": "mine", "extra": 1 }))
                .await?;
            task.progress().stage("finalize").await?;
            task.progress().percent(100.0).await?;
            Ok::<_, BoxError>(Step::done(json!("uploaded")))
        })?;
        manager.start().await?;
        let id = manager.submit("upload", &()).await?;
        wait_for_status(&manager, id, TaskStatus::Completed).await;

        let events = reports(&manager, id, EventType::TaskProgress).await;
        let view: Vec<_> = events
            .iter()
            .map(|e| (e.message.clone().unwrap_or_default(), e.metadata.clone()))
            .collect();
        assert_eq!(
            view,
            [
                (
                    "2 of 5 files".to_owned(),
                    json!({
                        "stage_name": "upload",
                        "progress_text": "2 of 5 files",
                        "progress_percent": 40.0,
                    }),
                ),
                (
                    "most done".to_owned(),
                    json!({ "progress_percent": "mine", "extra": 1 }),
                ),
                ("finalize".to_owned(), json!({ "stage_name": "finalize" })),
                (
                    "task progress updated".to_owned(),
                    json!({ "progress_percent": 100.0 }),
                ),
            ]
        );
        for event in &events {
            assert_eq!(event.attempt, Some(1), "{event:?}");
            assert_eq!(event.stage, Some(0), "{event:?}");
            assert_eq!(event.worker_id.as_deref(), Some(manager.worker_id()));
            assert_eq!(
                (event.from_status, event.to_status),
                (Some(TaskStatus::Running), Some(TaskStatus::Running))
            );
        }
        let all = events_of(&manager, id).await;
        assert_eq!(all.len(), 3 + 4 + 1, "created, claimed, started, 4 reports, completed");
        common::assert_history_consistent(&manager, id).await;
        manager.stop().await?;
        Ok(())
    }
}

/// Every invalid checkpoint and progress report a handler can build, with
/// the field its error names (in call order).
async fn try_every_invalid_report(task: &Task) -> Vec<(&'static str, &'static str)> {
    let long_text = "x".repeat(4097);
    let long_name = "x".repeat(256);
    let mut seen = Vec::new();
    let mut check = |label: &'static str, result: fib_flow::Result<()>| {
        seen.push((label, invalid_field(result)));
    };
    check("empty code", task.audit("").await);
    check("blank code", task.audit("  \t").await);
    check("code of 256 bytes", task.audit(long_name.as_str()).await);
    check("empty message", task.audit("c").message("").await);
    check("blank message", task.audit("c").message(" \n").await);
    check(
        "message of 4097 bytes",
        task.audit("c").message(long_text.as_str()).await,
    );
    check("array metadata", task.audit("c").metadata(&[1, 2]).await);
    check("string metadata", task.audit("c").metadata("text").await);
    check("number metadata", task.audit("c").metadata(&5).await);
    check("bool metadata", task.audit("c").metadata(&true).await);
    check("negative stage", task.audit("c").stage(-1).await);
    check("nothing to report", task.progress().await);
    check("only a message", task.progress().message("m").await);
    check(
        "only metadata",
        task.progress().metadata(&json!({ "a": 1 })).await,
    );
    check("percent below 0", task.progress().percent(-0.1).await);
    check("percent above 100", task.progress().percent(100.5).await);
    check("percent NaN", task.progress().percent(f64::NAN).await);
    check(
        "percent infinite",
        task.progress().percent(f64::INFINITY).await,
    );
    check("empty stage name", task.progress().stage("").await);
    check(
        "stage name of 256 bytes",
        task.progress().stage(long_name.as_str()).await,
    );
    check("blank text", task.progress().text(" ").await);
    check(
        "text of 4097 bytes",
        task.progress().text(long_text.as_str()).await,
    );
    check(
        "empty progress message",
        task.progress().text("t").message("").await,
    );
    check(
        "progress message of 4097 bytes",
        task.progress().text("t").message(long_text.as_str()).await,
    );
    check(
        "array progress metadata",
        task.progress().text("t").metadata(&[1]).await,
    );
    check(
        "null progress metadata is fine but percent is not",
        task.progress().metadata(&()).percent(101.0).await,
    );
    seen
}

backend_test! {
    async fn every_invalid_report_is_an_input_error_naming_its_field_and_writes_nothing(db) {
        let manager = quiet_manager(&db).await;
        let seen = Recorder::new();
        let unserialisable = Recorder::new();
        manager.register("picky", {
            let (seen, unserialisable) = (seen.clone(), unserialisable.clone());
            move |task: Task| {
                let (seen, unserialisable) = (seen.clone(), unserialisable.clone());
                async move {
                    after_claim(&task).await;
                    for entry in try_every_invalid_report(&task).await {
                        seen.push(entry);
                    }
                    // Metadata serde cannot turn into JSON at all (a map
                    // with non-string keys).
                    let bad: BTreeMap<(i32, i32), i32> = BTreeMap::from([((1, 2), 3)]);
                    let error = task.audit("c").metadata(&bad).await.expect_err("refused");
                    unserialisable.push(format!("{error:?}"));
                    let error = task.progress().text("t").metadata(&bad).await.expect_err("refused");
                    unserialisable.push(format!("{error:?}"));
                    Ok::<_, BoxError>(Step::done(json!("checked")))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("picky", &()).await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;

        let fields: Vec<_> = seen.snapshot();
        assert_eq!(
            fields,
            [
                ("empty code", "code"),
                ("blank code", "code"),
                ("code of 256 bytes", "code"),
                ("empty message", "message"),
                ("blank message", "message"),
                ("message of 4097 bytes", "message"),
                ("array metadata", "metadata"),
                ("string metadata", "metadata"),
                ("number metadata", "metadata"),
                ("bool metadata", "metadata"),
                ("negative stage", "stage"),
                ("nothing to report", "progress"),
                ("only a message", "progress"),
                ("only metadata", "progress"),
                ("percent below 0", "percent"),
                ("percent above 100", "percent"),
                ("percent NaN", "percent"),
                ("percent infinite", "percent"),
                ("empty stage name", "stage"),
                ("stage name of 256 bytes", "stage"),
                ("blank text", "text"),
                ("text of 4097 bytes", "text"),
                ("empty progress message", "message"),
                ("progress message of 4097 bytes", "message"),
                ("array progress metadata", "metadata"),
                ("null progress metadata is fine but percent is not", "percent"),
            ]
        );
        for error in unserialisable.snapshot() {
            assert!(
                error.starts_with("Serialization { field: \"metadata\""),
                "{error}"
            );
        }

        // Nothing was written: no report events, no snapshot, no renewed
        // lease; the newest event of the run is its completion.
        for kind in [EventType::TaskCheckpoint, EventType::TaskProgress] {
            assert!(reports(&manager, id, kind).await.is_empty());
        }
        assert_eq!(
            (done.current_stage_name, done.progress_text, done.progress_percent),
            (None, None, None)
        );
        assert_eq!(done.last_event_type.as_deref(), Some("task_completed"));
        manager.stop().await?;
        Ok(())
    }
}

/// How the running attempt loses its task in a fence scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Takeover {
    Pause,
    Cancel,
    /// The attempt fails and the next attempt (same worker) runs.
    NextAttempt,
}

/// What a late report returned.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Written,
    Lost { id: TaskId, attempt: i64 },
    Other(String),
}

impl Outcome {
    fn of(result: fib_flow::Result<()>) -> Self {
        match result {
            Ok(()) => Outcome::Written,
            Err(error @ Error::Lost { .. }) if !error.is_lost() => {
                Outcome::Other(format!("is_lost() is false for {error:?}"))
            }
            Err(Error::Lost { id, attempt }) => Outcome::Lost { id, attempt },
            Err(other) => Outcome::Other(format!("{other:?}")),
        }
    }
}

/// A handler whose attempt 1 reports once, then spawns work that outlives
/// the attempt and reports again (a checkpoint and a progress report) when
/// `late` opens, pushing both outcomes. Attempt 1 then fails when `takeover`
/// is `NextAttempt`; every other run hangs.
fn fenced_reporter(
    takeover: Takeover,
    early: &Recorder<bool>,
    late: &Gate,
    outcomes: &Recorder<(Outcome, Outcome)>,
) -> impl fib_flow::Handler {
    let (early, late, outcomes) = (early.clone(), late.clone(), outcomes.clone());
    move |task: Task| {
        let (early, late, outcomes) = (early.clone(), late.clone(), outcomes.clone());
        async move {
            if task.attempt() == 1 {
                let ok = task.progress().text("early").await.is_ok();
                early.push(ok);
                let spawned = task.clone();
                tokio::spawn(async move {
                    late.wait().await;
                    let checkpoint = Outcome::of(spawned.audit("late").await);
                    let progress = Outcome::of(spawned.progress().text("late").percent(99.0).await);
                    outcomes.push((checkpoint, progress));
                });
                if takeover == Takeover::NextAttempt {
                    return Err::<Step, BoxError>("attempt 1 gives way".into());
                }
            }
            std::future::pending::<()>().await;
            Ok(Step::done("unreachable"))
        }
    }
}

async fn reports_of_an_attempt_that_lost_its_task(
    db: common::TestDb,
    takeover: Takeover,
) -> anyhow::Result<()> {
    // No heartbeat moves last_active_at of the attempt that runs on (and
    // stop() does not wait long for it).
    let manager = audit_manager_with(&db, |b| {
        b.task_heartbeat_interval(ms(60_000))
            .task_heartbeat_timeout(ms(120_000))
            .shutdown_timeout(ms(100))
    })
    .await;
    let (early, late, outcomes) = (Recorder::new(), Gate::new(), Recorder::new());
    manager.register(
        "fenced",
        fenced_reporter(takeover, &early, &late, &outcomes),
    )?;
    manager.start().await?;
    let id = manager.submit("fenced", &()).await?;
    assert_eq!(early.wait_len("the early report", 1).await, [true]);

    let expected_status = match takeover {
        Takeover::Pause => {
            manager.pause_task(id).await?;
            wait_for_running_count(&manager, 0).await;
            TaskStatus::Paused
        }
        Takeover::Cancel => {
            manager.cancel_task(id, None).await?;
            wait_for_running_count(&manager, 0).await;
            TaskStatus::PermanentlyFailed
        }
        Takeover::NextAttempt => {
            common::wait_until("attempt 2 to run", || async {
                let row = task_row(&manager, id).await;
                (row.status == TaskStatus::Running && row.attempt == 2).then_some(())
            })
            .await;
            TaskStatus::Running
        }
    };
    let before = task_row(&manager, id).await;
    let events_before = events_of(&manager, id).await.len();

    late.open();
    let results = outcomes.wait_len("the late reports", 1).await;
    let lost = Outcome::Lost { id, attempt: 1 };
    assert_eq!(results, [(lost.clone(), lost)], "{takeover:?}");

    // Nothing was written: same history, same snapshot.
    let after = task_row(&manager, id).await;
    assert_eq!(after.status, expected_status);
    assert_eq!(events_of(&manager, id).await.len(), events_before);
    assert_eq!(after.progress_text.as_deref(), Some("early"));
    assert_eq!(after.progress_percent, None);
    assert_eq!(after.last_event_type, before.last_event_type);
    assert_eq!(after.last_event_at, before.last_event_at);
    assert_eq!(after.last_active_at, before.last_active_at);
    manager.stop().await?;
    Ok(())
}

backend_test! {
    async fn reports_after_the_task_was_paused_are_lost_and_write_nothing(db) {
        reports_of_an_attempt_that_lost_its_task(db, Takeover::Pause).await
    }
}

backend_test! {
    async fn reports_after_the_task_was_cancelled_are_lost_and_write_nothing(db) {
        reports_of_an_attempt_that_lost_its_task(db, Takeover::Cancel).await
    }
}

backend_test! {
    async fn reports_of_a_timed_out_attempt_are_lost_while_the_next_attempt_runs(db) {
        reports_of_an_attempt_that_lost_its_task(db, Takeover::NextAttempt).await
    }
}

backend_test! {
    async fn a_report_of_a_later_stage_belongs_to_that_stage_and_attempt(db) {
        // A workflow parent reporting at stage 1 (attempt 2): the event
        // carries the stage and attempt of the run that wrote it.
        let manager = quiet_manager(&db).await;
        manager.register("leaf", |_task: Task| async move {
            Ok::<_, BoxError>(Step::done(json!(1)))
        })?;
        manager.register("parent", |task: Task| async move {
            task.audit(format!("stage_{}", task.stage())).await?;
            Ok::<_, BoxError>(match task.stage() {
                0 => Step::children([fib_flow::Child::new("leaf", &())]),
                _ => Step::done(json!("joined")),
            })
        })?;
        manager.start().await?;
        let id = manager.submit("parent", &()).await?;
        wait_for_status(&manager, id, TaskStatus::Completed).await;
        let events = reports(&manager, id, EventType::TaskCheckpoint).await;
        let view: Vec<_> = events
            .iter()
            .map(|e| (e.stage, e.attempt, e.metadata.clone()))
            .collect();
        assert_eq!(
            view,
            [
                (Some(0), Some(1), json!({ "code": "stage_0" })),
                (Some(1), Some(2), json!({ "code": "stage_1" })),
            ]
        );
        let second_attempt = manager
            .task_events(id, EventQuery::new().attempt(2))
            .await?;
        let types: Vec<Value> = second_attempt
            .items
            .iter()
            .map(|e| json!(e.event_type.as_str()))
            .collect();
        assert_eq!(types, [json!("task_started"), json!("task_checkpoint")]);
        manager.stop().await?;
        Ok(())
    }
}
