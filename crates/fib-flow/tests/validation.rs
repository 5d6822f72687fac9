//! Bad input is a typed error naming the culprit, and nothing is written.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use fib_flow::{
    BoxError, Error, HandlerOptions, Step, Task, TaskFilter, TaskManager, TaskOptions, TaskStatus,
};

/// The field of an `InvalidInput` error; anything else fails the test.
fn invalid_field<T: std::fmt::Debug>(result: fib_flow::Result<T>) -> &'static str {
    match result {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected Error::InvalidInput, got {other:?}"),
    }
}

/// The field of a `Config` error; anything else fails the test.
fn config_field(result: fib_flow::Result<TaskManager>) -> &'static str {
    match result {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

async fn assert_nothing_inserted(manager: &TaskManager) -> anyhow::Result<()> {
    let rows = manager.get_tasks(TaskFilter::new()).await?;
    assert!(rows.is_empty(), "a rejected submit inserted {rows:?}");
    Ok(())
}

backend_test! {
    async fn bad_task_names_are_rejected_and_nothing_is_inserted(db) {
        let manager = db.manager().await;
        let too_long = "n".repeat(256);
        for name in ["", " ", " padded", "padded ", "\tpadded", "line\nbreak", too_long.as_str()] {
            assert_eq!(
                invalid_field(manager.submit(name, &()).await),
                "name",
                "name {name:?}"
            );
            assert_eq!(
                invalid_field(manager.submit_with(name, &(), TaskOptions::new().priority(1)).await),
                "name",
                "name {name:?}"
            );
            assert_nothing_inserted(&manager).await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn names_and_priorities_at_their_limits_are_accepted(db) {
        let manager = db.manager().await;
        let longest = "n".repeat(255);
        let id = manager.submit(&longest, &()).await?;
        assert_eq!(manager.get_task(id).await?.map(|t| t.name), Some(longest));
        for priority in [-1000, 1000] {
            let id = manager
                .submit_with("edge", &(), TaskOptions::new().priority(priority))
                .await?;
            assert_eq!(manager.get_task(id).await?.map(|t| t.priority), Some(priority));
        }
        Ok(())
    }
}

backend_test! {
    async fn out_of_range_priorities_are_rejected(db) {
        let manager = db.manager().await;
        for priority in [-1001, 1001, i32::MIN, i32::MAX] {
            let result = manager
                .submit_with("job", &(), TaskOptions::new().priority(priority))
                .await;
            assert_eq!(invalid_field(result), "priority", "priority {priority}");
            assert_nothing_inserted(&manager).await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn bad_tags_are_rejected(db) {
        let manager = db.manager().await;
        let too_long = "t".repeat(256);
        for tag in ["", " tag", "tag ", too_long.as_str()] {
            let result = manager
                .submit_with("job", &(), TaskOptions::new().tag(tag))
                .await;
            assert_eq!(invalid_field(result), "tag", "tag {tag:?}");
            assert_nothing_inserted(&manager).await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn a_zero_or_absurd_timeout_is_rejected(db) {
        let manager = db.manager().await;
        for timeout in [Duration::ZERO, Duration::from_secs(200 * 365 * 24 * 3600)] {
            let result = manager
                .submit_with("job", &(), TaskOptions::new().timeout(timeout))
                .await;
            assert_eq!(invalid_field(result), "timeout", "timeout {timeout:?}");
            assert_nothing_inserted(&manager).await?;
        }
        Ok(())
    }
}

backend_test! {
    async fn zero_max_attempts_is_rejected(db) {
        let manager = db.manager().await;
        let result = manager
            .submit_with("job", &(), TaskOptions::new().max_attempts(0))
            .await;
        assert_eq!(invalid_field(result), "max_attempts");
        assert_nothing_inserted(&manager).await?;
        Ok(())
    }
}

backend_test! {
    async fn an_absurd_delay_or_retry_interval_is_rejected(db) {
        let manager = db.manager().await;
        let forever = Duration::from_secs(200 * 365 * 24 * 3600);
        let result = manager
            .submit_with("job", &(), TaskOptions::new().delay(forever))
            .await;
        assert_eq!(invalid_field(result), "delay");
        let result = manager
            .submit_with("job", &(), TaskOptions::new().retry_interval(forever))
            .await;
        assert_eq!(invalid_field(result), "retry_interval");
        assert_nothing_inserted(&manager).await?;
        Ok(())
    }
}

backend_test! {
    async fn a_payload_that_cannot_be_serialised_is_rejected(db) {
        let manager = db.manager().await;
        // JSON object keys must be strings; tuple keys cannot be encoded.
        let payload: HashMap<(i32, i32), i32> = HashMap::from([((1, 2), 3)]);
        match manager.submit("job", &payload).await {
            Err(Error::Serialization { field, .. }) => assert_eq!(field, "payload"),
            other => panic!("expected Error::Serialization, got {other:?}"),
        }
        match manager
            .submit_with("job", &payload, TaskOptions::new().tag("t"))
            .await
        {
            Err(Error::Serialization { field, .. }) => assert_eq!(field, "payload"),
            other => panic!("expected Error::Serialization, got {other:?}"),
        }
        assert_nothing_inserted(&manager).await?;
        Ok(())
    }
}

backend_test! {
    async fn zero_intervals_and_timeouts_in_the_builder_are_rejected_by_name(db) {
        let zero = Duration::ZERO;
        assert_eq!(config_field(db.builder().poll_interval(zero).build().await), "poll_interval");
        assert_eq!(config_field(db.builder().timeout(zero).build().await), "timeout");
        assert_eq!(
            config_field(db.builder().task_heartbeat_interval(zero).build().await),
            "task_heartbeat_interval"
        );
        assert_eq!(
            config_field(db.builder().task_heartbeat_timeout(zero).build().await),
            "task_heartbeat_timeout"
        );
        assert_eq!(
            config_field(db.builder().maintenance_interval(zero).build().await),
            "maintenance_interval"
        );
        assert_eq!(config_field(db.builder().max_attempts(0).build().await), "max_attempts");
        assert_eq!(
            config_field(db.builder().max_concurrent_tasks(0).build().await),
            "max_concurrent_tasks"
        );
        assert_eq!(config_field(db.builder().worker_id(" w ").build().await), "worker_id");
        assert_eq!(config_field(TaskManager::builder().build().await), "database");
        Ok(())
    }
}

backend_test! {
    async fn absurd_durations_in_the_builder_are_rejected_by_name(db) {
        let forever = Duration::from_secs(200 * 365 * 24 * 3600);
        assert_eq!(config_field(db.builder().poll_interval(forever).build().await), "poll_interval");
        assert_eq!(config_field(db.builder().retry_interval(forever).build().await), "retry_interval");
        assert_eq!(
            config_field(db.builder().shutdown_timeout(forever).build().await),
            "shutdown_timeout"
        );
        // Zero is a valid retry interval (retry at once) and shutdown timeout
        // (release at once).
        db.builder()
            .retry_interval(Duration::ZERO)
            .shutdown_timeout(Duration::ZERO)
            .build()
            .await?;
        Ok(())
    }
}

backend_test! {
    async fn a_heartbeat_timeout_not_longer_than_its_interval_is_rejected(db) {
        for (interval, timeout) in [(1000, 1000), (1000, 999)] {
            let result = db
                .builder()
                .task_heartbeat_interval(Duration::from_millis(interval))
                .task_heartbeat_timeout(Duration::from_millis(timeout))
                .build()
                .await;
            assert_eq!(config_field(result), "task_heartbeat_timeout");
        }
        // Just longer is fine.
        db.builder()
            .task_heartbeat_interval(Duration::from_millis(1000))
            .task_heartbeat_timeout(Duration::from_millis(1001))
            .build()
            .await?;
        Ok(())
    }
}

backend_test! {
    async fn unsupported_database_urls_are_rejected_without_leaking_passwords(db) {
        // The test database itself works; other schemes do not.
        db.builder().build().await?;
        for url in ["redis://x", "mongodb://user:hunter2@db.example/app", "nonsense"] {
            match TaskManager::builder().database(url).build().await {
                Err(Error::UnsupportedDatabase { url: shown, reason }) => {
                    assert!(!shown.contains("hunter2"), "password shown in {shown:?}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{url}: expected Error::UnsupportedDatabase, got {other:?}"),
            }
        }
        Ok(())
    }
}

backend_test! {
    async fn an_unknown_status_name_in_a_filter_is_rejected(db) {
        let manager = db.manager().await;
        assert_eq!(invalid_field(TaskFilter::new().status_named("bogus")), "status");
        assert_eq!(invalid_field(TaskFilter::new().status_named("Pending")), "status");
        assert_eq!(invalid_field(TaskFilter::new().status_named("")), "status");
        let filter = TaskFilter::new().status_named("permanently_failed")?;
        assert_eq!(filter.status, Some(TaskStatus::PermanentlyFailed));
        assert!(manager.get_tasks(filter).await?.is_empty());
        Ok(())
    }
}

backend_test! {
    async fn bad_handler_registrations_are_rejected_and_leave_no_handler(db) {
        let manager = db.manager().await;
        let handler = |_task: Task| async { Ok::<_, BoxError>(Step::done(())) };
        assert_eq!(invalid_field(manager.register("", handler)), "name");
        assert_eq!(invalid_field(manager.register(" padded", handler)), "name");
        assert_eq!(invalid_field(manager.register(&"h".repeat(256), handler)), "name");
        let bad_options = [
            (HandlerOptions::new().max_attempts(0), "max_attempts"),
            (HandlerOptions::new().timeout(Duration::ZERO), "timeout"),
            (HandlerOptions::new().priority(1001), "priority"),
            (HandlerOptions::new().max_concurrent_tasks(0), "max_concurrent_tasks"),
            (
                HandlerOptions::new().retry_interval(Duration::from_secs(200 * 365 * 24 * 3600)),
                "retry_interval",
            ),
        ];
        for (options, field) in bad_options {
            assert_eq!(invalid_field(manager.register_with("h", handler, options)), field);
        }
        assert!(manager.handlers().is_empty());
        assert!(!manager.unregister("h"));
        Ok(())
    }
}
