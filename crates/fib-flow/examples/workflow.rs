//! A three-stage workflow with a person in the loop, on an in-memory SQLite
//! database:
//!
//! 1. stage 0 fans out one `fetch_price` child per item and keeps the order
//!    in its private context;
//! 2. stage 1 totals the children's results and suspends for approval;
//! 3. an operator (here: `main`) approves with `resume_task`, and stage 2
//!    completes with the approved total.
//!
//! ```text
//! cargo run -p fib-flow --example workflow
//! ```

use std::time::Duration;

use fib_flow::{
    BoxError, Child, Step, Task, TaskFilter, TaskId, TaskManager, TaskRecord, TaskStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    customer: String,
    items: Vec<String>,
}

/// A child: looks up one item's price (in cents).
async fn fetch_price(task: Task) -> Result<Step, BoxError> {
    let item: String = task.payload()?;
    tokio::time::sleep(Duration::from_millis(50)).await; // a remote call
    let cents = 100 * (item.len() as i64);
    Ok(Step::done(json!({ "item": item, "cents": cents })))
}

/// The parent: one handler, one branch per stage.
async fn quote_order(task: Task) -> Result<Step, BoxError> {
    match task.stage() {
        0 => {
            let order: Order = task.payload()?;
            let children = order
                .items
                .iter()
                .map(|item| Child::new("fetch_price", item));
            // The context is private to this task and survives its stages.
            Ok(Step::children(children).context(serde_json::to_vec(&order)?))
        }
        1 => {
            let total: i64 = task
                .child_results()
                .iter()
                .filter_map(|child| child.result.as_ref()?.get("cents")?.as_i64())
                .sum();
            let mut order: serde_json::Value =
                serde_json::from_slice(task.context().unwrap_or(b"{}"))?;
            order["total_cents"] = json!(total);
            println!("stage 1: total {total} cents; waiting for approval");
            Ok(Step::suspend("awaiting_approval").context(serde_json::to_vec(&order)?))
        }
        _ => {
            let order: serde_json::Value = serde_json::from_slice(task.context().unwrap_or(b"{}"))?;
            println!("stage 2: approved, placing the order");
            Ok(Step::done(json!({ "placed": true, "order": order })))
        }
    }
}

/// Waits (up to 10 s) until `ready` holds for task `id`.
async fn wait_for(
    manager: &TaskManager,
    id: TaskId,
    what: &str,
    ready: impl Fn(&TaskRecord) -> bool,
) -> Result<(), BoxError> {
    for _ in 0..500 {
        if manager.get_task(id).await?.is_some_and(|task| ready(&task)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("task {id} did not become {what}").into())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let manager = TaskManager::builder()
        .database("sqlite::memory:")
        .poll_interval(Duration::from_millis(100))
        .build()
        .await?;
    manager.setup().await?;
    manager.register("fetch_price", fetch_price)?;
    manager.register("quote_order", quote_order)?;
    manager.start().await?;

    let order = Order {
        customer: "ada".into(),
        items: vec!["keyboard".into(), "mouse".into(), "monitor".into()],
    };
    let id = manager.submit("quote_order", &order).await?;
    println!("submitted workflow {id}");

    // First it waits for its children (suspended, "awaiting_children"),
    // then for a person.
    wait_for(&manager, id, "awaiting approval", |task| {
        task.suspend_reason.as_deref() == Some("awaiting_approval")
    })
    .await?;
    let waiting = manager
        .get_tasks(TaskFilter::new().suspend_reason("awaiting_approval"))
        .await?;
    println!(
        "{} task(s) await approval: {:?}",
        waiting.len(),
        waiting.iter().map(|t| t.id).collect::<Vec<_>>()
    );

    manager
        .resume_task(id, Some("approved by the operator"))
        .await?;
    wait_for(&manager, id, "completed", |task| {
        task.status == TaskStatus::Completed
    })
    .await?;

    let done = manager.get_task(id).await?.ok_or("the workflow vanished")?;
    println!("result: {}", done.result.unwrap_or_default());
    for task in manager.get_workflow(id).await? {
        println!(
            "  task {:>2} {:<12} stage {} {}",
            task.id, task.name, task.stage, task.status
        );
    }
    manager.stop().await?;
    Ok(())
}
