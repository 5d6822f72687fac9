//! `TaskManager::submit_many`: a batch is stored all or nothing, with one
//! `task_created` event per task, ids in payload order.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use fib_flow::audit::EventType;
use fib_flow::config::MAX_SUBMIT_BATCH;
use fib_flow::{BoxError, Error, Step, Task, TaskFilter, TaskOptions, TaskStatus};
use serde_json::json;

use common::{events_of, wait_for_status};

/// The field and reason of an `InvalidInput` error; anything else fails.
fn invalid<T: std::fmt::Debug>(result: fib_flow::Result<T>) -> (&'static str, String) {
    match result {
        Err(Error::InvalidInput { field, reason }) => (field, reason),
        other => panic!("expected Error::InvalidInput, got {other:?}"),
    }
}

backend_test! {
    async fn ids_come_back_in_payload_order_with_one_created_event_each(db) {
        let manager = db.manager().await;
        let payloads: Vec<_> = (0..50).map(|i| json!({ "i": i })).collect();
        let ids = manager.submit_many("batch", &payloads).await?;
        assert_eq!(ids.len(), payloads.len());
        for (payload, id) in payloads.iter().zip(&ids) {
            let task = manager.get_task(*id).await?.expect("task exists");
            assert_eq!(task.payload.as_ref(), Some(payload), "task {id}");
            assert_eq!((task.name.as_str(), task.status), ("batch", TaskStatus::Pending));
            let events = events_of(&manager, *id).await;
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!(events[0].event_type, EventType::TaskCreated);
            assert_eq!((events[0].task_id, events[0].root_id), (*id, *id));
        }
        Ok(())
    }
}

backend_test! {
    async fn options_apply_to_every_task(db) {
        let manager = db.manager().await;
        let options = TaskOptions::new()
            .priority(7)
            .tag("bulk")
            .max_attempts(5)
            .delay(Duration::from_secs(3600));
        let ids = manager.submit_many_with("batch", &[1, 2, 3], options).await?;
        for id in &ids {
            let task = manager.get_task(*id).await?.expect("task exists");
            assert_eq!((task.priority, task.tag.as_deref(), task.max_attempts), (7, Some("bulk"), 5));
        }
        let tagged = manager.get_tasks(TaskFilter::new().tag("bulk")).await?;
        assert_eq!(tagged.len(), 3);
        Ok(())
    }
}

backend_test! {
    async fn a_batch_of_5000_is_stored(db) {
        let manager = db.manager().await;
        let payloads: Vec<i64> = (0..5_000).collect();
        let ids = manager.submit_many("big", &payloads).await?;
        assert_eq!(ids.len(), 5_000);
        let rows = manager.get_tasks(TaskFilter::new().name("big")).await?;
        let by_id: BTreeMap<_, _> = rows.iter().map(|t| (t.id, t.payload.clone())).collect();
        assert_eq!(by_id.len(), 5_000);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(by_id.get(id), Some(&Some(json!(i))), "item {i}, task {id}");
        }
        for id in [ids[0], ids[2_500], ids[4_999]] {
            assert_eq!(events_of(&manager, id).await.len(), 1);
        }
        Ok(())
    }
}

backend_test! {
    async fn an_empty_batch_stores_nothing(db) {
        let manager = db.manager().await;
        let ids = manager.submit_many("batch", &Vec::<i64>::new()).await?;
        assert!(ids.is_empty());
        assert!(manager.get_tasks(TaskFilter::new()).await?.is_empty());
        Ok(())
    }
}

backend_test! {
    async fn a_bad_item_stores_nothing_and_is_named(db) {
        let manager = db.manager().await;
        // Maps with non-string keys cannot be serialised to JSON.
        let mut bad = BTreeMap::new();
        bad.insert((1, 2), "x");
        let payloads = vec![BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), bad];
        let (field, reason) = invalid(manager.submit_many("batch", &payloads).await);
        assert_eq!(field, "payloads");
        assert!(reason.starts_with("item 3:"), "{reason}");
        let (field, reason) = invalid(
            manager
                .submit_many_with("batch", &[1, 2], TaskOptions::new().tag(" padded"))
                .await,
        );
        assert_eq!(field, "tag");
        assert!(reason.contains("whitespace"), "{reason}");
        let (field, _) = invalid(manager.submit_many("", &[1]).await);
        assert_eq!(field, "name");
        assert!(manager.get_tasks(TaskFilter::new()).await?.is_empty());
        Ok(())
    }
}

backend_test! {
    async fn more_than_the_limit_is_refused(db) {
        let manager = db.manager().await;
        let payloads = vec![0u8; MAX_SUBMIT_BATCH + 1];
        let (field, reason) = invalid(manager.submit_many("batch", &payloads).await);
        assert_eq!(field, "payloads");
        assert!(reason.contains("10000"), "{reason}");
        assert!(manager.get_tasks(TaskFilter::new()).await?.is_empty());
        Ok(())
    }
}

backend_test! {
    async fn a_started_manager_runs_a_submitted_batch(db) {
        let manager = db.manager().await;
        manager.register("double", |task: Task| async move {
            let n: i64 = task.payload()?;
            Ok::<_, BoxError>(Step::done(json!(n * 2)))
        })?;
        manager.start().await?;
        let ids = manager.submit_many("double", &[1, 2, 3, 4, 5]).await?;
        for (n, id) in (1..).zip(&ids) {
            let task = wait_for_status(&manager, *id, TaskStatus::Completed).await;
            assert_eq!(task.result, Some(json!(n * 2)));
        }
        manager.stop().await?;
        Ok(())
    }
}
