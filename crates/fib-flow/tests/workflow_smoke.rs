//! The shortest workflow, on every backend: a parent spawns children,
//! resumes with their results, and completes.

#[macro_use]
mod common;

use fib_flow::{BoxError, Child, Step, Task, TaskStatus};
use serde_json::json;

use common::wait_for_status;

backend_test! {
    async fn a_parent_resumes_with_its_childrens_results_and_context(db) {
        let manager = db.manager().await;
        manager.register("square", |task: Task| async move {
            let n: i64 = task.payload()?;
            Ok::<_, BoxError>(Step::done(json!(n * n)))
        })?;
        manager.register("sum_of_squares", |task: Task| async move {
            match task.stage() {
                0 => {
                    let ns: Vec<i64> = task.payload()?;
                    Ok::<_, BoxError>(
                        Step::children(ns.iter().map(|n| Child::new("square", n))).context(b"ctx".to_vec()),
                    )
                }
                _ => {
                    assert_eq!(task.context(), Some(&b"ctx"[..]));
                    let sum: i64 = task
                        .child_results()
                        .iter()
                        .map(|r| r.result.as_ref().and_then(|v| v.as_i64()).unwrap_or(0))
                        .sum();
                    Ok(Step::done(json!({ "sum": sum, "children": task.child_results().len() })))
                }
            }
        })?;
        manager.start().await?;
        let id = manager.submit("sum_of_squares", &[1, 2, 3]).await?;
        let done = wait_for_status(&manager, id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!({ "sum": 14, "children": 3 })));
        assert_eq!(done.stage, 1);
        assert_eq!(done.total_children, 3);
        let children = manager.get_children(id).await?;
        assert_eq!(children.len(), 3);
        assert!(children.iter().all(|c| c.status == TaskStatus::Completed && c.root_id == Some(id)));
        assert_eq!(manager.get_workflow(id).await?.len(), 4);
        manager.stop().await?;
        Ok(())
    }
}
