//! The shortest path through the engine, on every backend.

#[macro_use]
mod common;

use fib_flow::{BoxError, Step, Task, TaskStatus};
use serde_json::json;

use common::wait_for_status;

backend_test! {
    async fn a_submitted_task_completes_with_its_result(db) {
        let manager = db.manager().await;
        manager.register("double", |task: Task| async move {
            let n: i64 = task.payload()?;
            Ok::<_, BoxError>(Step::done(json!(n * 2)))
        })?;
        manager.start().await?;
        let id = manager.submit("double", &21).await?;
        let task = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(task.result, Some(json!(42)));
        assert_eq!(task.attempt, 1);
        assert!(task.finished_at.is_some());
        manager.stop().await?;
        Ok(())
    }
}
