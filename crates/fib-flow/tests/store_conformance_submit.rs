//! The `Store::task_submit_many` contract, once per backend.

#[macro_use]
mod common;

use anyhow::{ensure, Context};
use fib_flow::store::{AuditScope, NextRun};

use common::store::{created_event, events_of, task};

backend_test! {
    async fn task_submit_many_inserts_tasks_and_events_in_input_order(db) {
        let store = db.store().await;
        assert!(store.task_submit_many(&[], &[]).await?.is_empty());
        let created = |n: usize| created_event(Some(format!("Task {n} created")));
        let params: Vec<_> = (0..300)
            .map(|n| {
                let mut p = task(&format!("t{n}"));
                p.payload = Some(format!(r#"{{"n":{n}}}"#));
                p.priority = n % 5;
                p.tag = (n % 2 == 0).then(|| "even".to_owned());
                p.next_run = NextRun::AfterMs(60_000);
                p
            })
            .collect();
        let events: Vec<_> = (0..300).map(created).collect();
        let before = store.now_ms().await?;
        let ids = store.task_submit_many(&params, &events).await?;
        let after = store.now_ms().await?;
        ensure!(ids.len() == 300, "{} ids", ids.len());
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        ensure!(distinct.len() == 300, "duplicate ids");
        for (n, (id, p)) in ids.iter().zip(&params).enumerate() {
            let row = store.task_get(*id).await?.context("row")?;
            assert_eq!(row.name, p.name);
            assert_eq!(row.payload, p.payload);
            assert_eq!((row.priority, row.tag.clone()), (i64::from(p.priority), p.tag.clone()));
            assert_eq!((row.status.as_str(), row.last_event_type.as_deref()), ("pending", Some("task_created")));
            ensure!(row.created_at >= before - 1_000 && row.created_at <= after + 1_000, "created_at");
            assert_eq!(row.next_run_at, row.created_at + 60_000);
            let listed = store
                .event_list(&events_of(AuditScope::Task(*id)))
                .await?;
            assert_eq!(listed.len(), 1, "{listed:?}");
            let event = &listed[0];
            assert_eq!((event.task_id, event.root_id, event.parent_id), (*id, *id, None));
            assert_eq!(event.message.as_deref(), Some(format!("Task {n} created").as_str()));
            assert_eq!(row.last_event_at, Some(event.event_time));
        }
        Ok(())
    }
}
