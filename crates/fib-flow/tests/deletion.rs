//! Deleting a child that has not finished tells its parent, so the parent
//! does not wait for it forever.

#[macro_use]
mod common;

use fib_flow::{BoxError, Child, ChildFailure, Step, Task, TaskId, TaskManager, TaskStatus};
use serde_json::json;

use common::{wait_for_status, wait_until, Gate};

/// Registers a `child` handler that waits on `gate` (never opened here), so
/// children stay unfinished until deleted.
fn blocking_children(manager: &TaskManager, gate: &Gate) -> anyhow::Result<()> {
    let gate = gate.clone();
    manager.register("child", move |_task: Task| {
        let gate = gate.clone();
        async move {
            gate.wait().await;
            Ok::<_, BoxError>(Step::done(()))
        }
    })?;
    Ok(())
}

async fn children_of(manager: &TaskManager, parent: TaskId, count: usize) -> Vec<TaskId> {
    wait_until("the parent to wait for its children", || async {
        let task = manager.get_task(parent).await.ok()??;
        let children = manager.get_children(parent).await.ok()?;
        (task.status == TaskStatus::Suspended && children.len() == count)
            .then(|| children.iter().map(|c| c.id).collect())
    })
    .await
}

backend_test! {
    async fn deleting_an_unfinished_child_fails_its_parent_under_the_default_policy(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        blocking_children(&manager, &gate)?;
        manager.register("parent", |task: Task| async move {
            match task.stage() {
                0 => Ok::<_, BoxError>(Step::children([Child::new("child", &1), Child::new("child", &2)])),
                _ => Ok(Step::done(json!("resumed"))),
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let children = children_of(&manager, parent, 2).await;
        assert!(manager.delete_task(children[0]).await?);
        assert!(!manager.delete_task(children[0]).await?, "deleted once");
        let failed = wait_for_status(&manager, parent, TaskStatus::PermanentlyFailed).await;
        let error = failed.error.unwrap_or_default();
        assert!(error.contains(&format!("child task {}", children[0])), "{error}");
        assert!(error.contains("was deleted"), "{error}");
        // The sibling is cancelled with its parent.
        let sibling = wait_for_status(&manager, children[1], TaskStatus::PermanentlyFailed).await;
        assert!(sibling.error.unwrap_or_default().starts_with("cancelled:"));
        gate.open();
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn deleting_an_unfinished_child_resumes_a_parent_that_handles_failures(db) {
        let manager = db.manager().await;
        let gate = Gate::new();
        blocking_children(&manager, &gate)?;
        manager.register("parent", |task: Task| async move {
            match task.stage() {
                0 => Ok::<_, BoxError>(
                    Step::children([Child::new("child", &1)]).on_child_failure(ChildFailure::Resume),
                ),
                _ => {
                    let outcomes: Vec<String> =
                        task.child_results().iter().map(|r| r.status.to_string()).collect();
                    Ok(Step::done(json!(outcomes)))
                }
            }
        })?;
        manager.start().await?;
        let parent = manager.submit("parent", &()).await?;
        let children = children_of(&manager, parent, 1).await;
        assert!(manager.delete_task(children[0]).await?);
        let done = wait_for_status(&manager, parent, TaskStatus::Completed).await;
        // The child is cancelled (its parent resumes) and then deleted; the
        // resumed stage may run before or after the delete, so it sees the
        // cancelled child or nothing. What matters is that the parent did
        // not wait forever.
        let seen = done.result.unwrap_or_default();
        assert!(seen == json!([]) || seen == json!(["permanently_failed"]), "{seen}");
        assert_eq!(done.stage, 1);
        gate.open();
        manager.stop().await?;
        Ok(())
    }
}
