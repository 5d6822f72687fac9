//! The shortest cron path, on every backend: a schedule that fires every
//! second runs, is re-armed at its next occurrence with its result kept,
//! and runs again.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use fib_flow::{BoxError, Step, Task, TaskKind, TaskStatus};
use serde_json::json;

use common::wait_until;

backend_test! {
    async fn a_cron_task_runs_at_each_occurrence_and_is_rearmed(db) {
        let manager = db.manager().await;
        let runs = Arc::new(AtomicI64::new(0));
        manager.register("tick", {
            let runs = runs.clone();
            move |_task: Task| {
                let runs = runs.clone();
                async move {
                    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    Ok::<_, BoxError>(Step::done(json!({ "run": n })))
                }
            }
        })?;
        let id = manager.cron("tick", "* * * * * *", &json!({})).await?;
        let armed = manager.get_task(id).await?.expect("cron task");
        assert_eq!(armed.kind, TaskKind::Cron);
        assert_eq!(armed.status, TaskStatus::Pending);
        assert_eq!(armed.cron_expr.as_deref(), Some("* * * * * *"));
        manager.start().await?;
        wait_until("two runs", || async { (runs.load(Ordering::SeqCst) >= 2).then_some(()) }).await;
        let task = wait_until("the task re-armed after a run", || async {
            let task = manager.get_task(id).await.ok()??;
            (task.status == TaskStatus::Pending && task.result.is_some()).then_some(task)
        })
        .await;
        assert_eq!(task.stage, 0);
        assert_eq!(task.retry_count, 0);
        assert!(task.next_run_at > task.last_active_at.expect("last_active_at"));
        assert_eq!(task.next_run_at.timestamp_subsec_millis(), 0, "occurrences are on the second");
        manager.stop().await?;
        Ok(())
    }
}
