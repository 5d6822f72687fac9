//! The `Store::task_submit` and `Store::task_submit_many` contract, once
//! per backend.

#[macro_use]
mod common;

use std::future::Future;
use std::task::Poll;

use anyhow::{ensure, Context};
use fib_flow::store::{AuditScope, NextRun, Store, TaskBatchParams, TaskListParams};
use fib_flow::TaskFilter;

use common::store::{created_event, events_of, raw_execute, task};
use common::TestDb;

/// Every task's id, and how many events each has (`task_created` only
/// here), in id order.
async fn tasks_and_event_counts(store: &dyn Store) -> anyhow::Result<Vec<(i64, i64)>> {
    let params = TaskListParams {
        filter: TaskFilter::new(),
        limit: None,
    };
    let mut counts = Vec::new();
    for row in store.task_list(&params).await? {
        let events = store
            .event_count(&events_of(AuditScope::Task(row.id)))
            .await?;
        counts.push((row.id, events));
    }
    counts.sort_unstable();
    Ok(counts)
}

/// Polls `future` at most `polls` times, yielding to the runtime between
/// polls, then drops it: its output when it finished in time.
async fn drop_after_polls<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    for _ in 0..polls {
        let polled = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        if let Poll::Ready(output) = polled {
            return Some(output);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// The statements that make every event insert fail on this database, and
/// those that undo it.
fn refuse_events_sql(db: &TestDb) -> (Vec<String>, Vec<String>) {
    let schema = db.schema.as_deref().unwrap_or_default();
    match db.backend {
        "postgres" => (
            vec![
                format!(
                    "CREATE FUNCTION \"{schema}\".refuse_event() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'events refused'; END $$"
                ),
                format!(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON \"{schema}\".fib_flow_task_events \
                     FOR EACH ROW EXECUTE FUNCTION \"{schema}\".refuse_event()"
                ),
            ],
            vec![format!(
                "DROP TRIGGER refuse_events ON \"{schema}\".fib_flow_task_events"
            )],
        ),
        "mysql" => (
            vec![format!(
                "CREATE TRIGGER `{schema}`.refuse_events BEFORE INSERT ON `{schema}`.fib_flow_task_events \
                 FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'events refused'"
            )],
            vec![format!("DROP TRIGGER `{schema}`.refuse_events")],
        ),
        _ => (
            vec!["CREATE TRIGGER refuse_events BEFORE INSERT ON fib_flow_task_events \
                  BEGIN SELECT RAISE(ABORT, 'events refused'); END"
                .to_owned()],
            vec!["DROP TRIGGER refuse_events".to_owned()],
        ),
    }
}

async fn raw_all(db: &TestDb, statements: &[String]) -> anyhow::Result<()> {
    for sql in statements {
        raw_execute(db, sql)
            .await?
            .context("raw SQL")?
            .with_context(|| format!("raw SQL failed: {sql}"))?;
    }
    Ok(())
}

backend_test! {
    async fn a_submit_whose_event_is_refused_stores_nothing_and_later_submits_succeed(db) {
        if !db.shareable() {
            eprintln!("skipped on {}: the failure is injected with raw SQL", db.backend);
            return Ok(());
        }
        let store = db.store().await;
        let kept = store.task_submit(&task("kept"), &created_event(None)).await?;
        let (refuse, allow) = refuse_events_sql(&db);
        raw_all(&db, &refuse).await?;
        let one = store.task_submit(&task("lost"), &created_event(None)).await;
        ensure!(one.is_err(), "task_submit succeeded without its event: {one:?}");
        let batch = TaskBatchParams::new(task("lost"), vec![None, None], created_event(None))?;
        let many = store.task_submit_many(&batch).await;
        ensure!(many.is_err(), "task_submit_many succeeded without its events: {many:?}");
        assert_eq!(tasks_and_event_counts(&*store).await?, [(kept, 1)]);

        raw_all(&db, &allow).await?;
        let after = store.task_submit(&task("after"), &created_event(None)).await?;
        let batch_ids = store.task_submit_many(&batch).await?;
        let mut expected = vec![(kept, 1), (after, 1)];
        expected.extend(batch_ids.iter().map(|&id| (id, 1)));
        assert_eq!(tasks_and_event_counts(&*store).await?, expected);
        Ok(())
    }
}

backend_test! {
    async fn a_submit_dropped_mid_flight_stores_its_task_with_its_event_or_nothing(db) {
        let store = db.store().await;
        // Dropped after 1, 2, ... polls: before, during and after the
        // command reaches the database.
        let (params, created) = (task("dropped"), created_event(None));
        let mut finished = Vec::new();
        for polls in 1..=40 {
            let submit = store.task_submit(&params, &created);
            if let Some(id) = drop_after_polls(submit, polls).await {
                finished.push(id?);
            }
        }
        // The store writes on: whatever a dropped submit left open is gone.
        let after = store.task_submit(&task("after"), &created_event(None)).await?;
        let listed = tasks_and_event_counts(&*store).await?;
        for &(id, events) in &listed {
            assert_eq!(events, 1, "task {id} is stored without its created event");
        }
        let ids: Vec<i64> = listed.iter().map(|&(id, _)| id).collect();
        for id in finished.iter().chain([&after]) {
            ensure!(ids.contains(id), "submitted task {id} is missing: {ids:?}");
        }
        Ok(())
    }
}

backend_test! {
    async fn task_submit_many_inserts_tasks_and_events_in_input_order(db) {
        let store = db.store().await;
        let empty = TaskBatchParams::new(task("t"), Vec::new(), created_event(None))?;
        assert!(store.task_submit_many(&empty).await?.is_empty());
        let mut shared = task("t");
        shared.priority = 3;
        shared.tag = Some("even".to_owned());
        shared.next_run = NextRun::AfterMs(60_000);
        // The shared row's own payload is not used: each task has its own.
        shared.payload = Some("ignored".to_owned());
        let payloads: Vec<_> = (0..300)
            .map(|n| (n % 7 != 0).then(|| format!(r#"{{"n":{n}}}"#)))
            .collect();
        let created = created_event(Some("Task t created".to_owned()));
        let batch = TaskBatchParams::new(shared, payloads.clone(), created)?;
        let before = store.now_ms().await?;
        let ids = store.task_submit_many(&batch).await?;
        let after = store.now_ms().await?;
        ensure!(ids.len() == 300, "{} ids", ids.len());
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        ensure!(distinct.len() == 300, "duplicate ids");
        for (id, payload) in ids.iter().zip(&payloads) {
            let row = store.task_get(*id).await?.context("row")?;
            assert_eq!(row.name, "t");
            assert_eq!(&row.payload, payload);
            assert_eq!((row.priority, row.tag.as_deref()), (3, Some("even")));
            assert_eq!((row.status.as_str(), row.last_event_type.as_deref()), ("pending", Some("task_created")));
            ensure!(row.created_at >= before - 1_000 && row.created_at <= after + 1_000, "created_at");
            assert_eq!(row.next_run_at, row.created_at + 60_000);
            let listed = store
                .event_list(&events_of(AuditScope::Task(*id)))
                .await?;
            assert_eq!(listed.len(), 1, "{listed:?}");
            let event = &listed[0];
            assert_eq!((event.task_id, event.root_id, event.parent_id), (*id, *id, None));
            assert_eq!(event.message.as_deref(), Some("Task t created"));
            assert_eq!(row.last_event_at, Some(event.event_time));
        }
        Ok(())
    }
}

backend_test! {
    async fn submits_store_quotes_backslashes_braces_and_unicode_as_given(db) {
        use fib_flow::store::NewEvent;
        let store = db.store().await;
        let odd = r#"it's "quoted" \ back\\slash {name} {payload} ' OR 1=1; -- é ✓ 🚀 %_"#;
        let params = fib_flow::store::TaskInsertParams {
            payload: Some(serde_json::json!({ "text": odd }).to_string()),
            tag: Some(odd.to_owned()),
            ..task(odd)
        };
        let created = NewEvent {
            message: Some(odd.to_owned()),
            metadata: Some(serde_json::json!({ "name": odd }).to_string()),
            ..created_event(None)
        };
        let id = store.task_submit(&params, &created).await?;
        let row = store.task_get(id).await?.context("row")?;
        assert_eq!((row.name.as_str(), row.tag.as_deref()), (odd, Some(odd)));
        assert_eq!(row.payload, params.payload);
        let events = store.event_list(&events_of(AuditScope::Task(id))).await?;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].message.as_deref(), Some(odd));
        assert_eq!(events[0].metadata, created.metadata);
        // A batch writes its shared columns once, its payloads each.
        let payloads = vec![params.payload.clone(), Some(format!("{:?}", odd))];
        let batch = TaskBatchParams::new(params.clone(), payloads.clone(), created.clone())?;
        for (id, payload) in store.task_submit_many(&batch).await?.into_iter().zip(&payloads) {
            let row = store.task_get(id).await?.context("row")?;
            assert_eq!((row.name.as_str(), row.tag.as_deref()), (odd, Some(odd)));
            assert_eq!(&row.payload, payload);
            let events = store.event_list(&events_of(AuditScope::Task(id))).await?;
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!(events[0].message.as_deref(), Some(odd));
            assert_eq!(events[0].metadata, created.metadata);
        }
        Ok(())
    }
}

backend_test! {
    async fn task_submit_stores_a_payload_of_ten_megabytes_with_its_event(db) {
        let store = db.store().await;
        // Past the size MySQL's one-command submit takes (its strings are
        // hex, twice their size): that one is bound as parameters.
        let payload = serde_json::Value::String("x".repeat(10 << 20)).to_string();
        let params = fib_flow::store::TaskInsertParams {
            payload: Some(payload),
            ..task("big")
        };
        let id = store.task_submit(&params, &created_event(None)).await?;
        let row = store.task_get(id).await?.context("row")?;
        ensure!(row.payload == params.payload, "the payload changed");
        assert_eq!(tasks_and_event_counts(&*store).await?, [(id, 1)]);
        Ok(())
    }
}
