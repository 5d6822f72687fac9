//! Cross-manager wake-ups on PostgreSQL (LISTEN/NOTIFY): an idle worker
//! whose poll interval is 10 s starts a task another manager submits within
//! a fraction of that, also after its listening connection was killed.
//! (Two managers in one process share nothing in memory, so only the
//! database can wake the worker.)

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};
use sqlx::Connection;

use common::{wait_for_status, TestDb};

/// Far longer than any wake-up may take: a task picked up by polling
/// would take about this long.
const POLL: Duration = Duration::from_secs(10);
/// The bound a notified pickup must meet.
const PROMPT: Duration = Duration::from_secs(3);

async fn idle_worker(db: &TestDb) -> anyhow::Result<TaskManager> {
    let worker = db.manager_with(|b| b.poll_interval(POLL)).await;
    worker.register("probe", |_task: Task| async {
        Ok::<_, BoxError>(Step::done(()))
    })?;
    worker.start().await?;
    Ok(worker)
}

/// Submits a probe and returns how long it took to complete.
async fn pickup(submitter: &TaskManager) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let id = submitter.submit("probe", &()).await?;
    wait_for_status(submitter, id, TaskStatus::Completed).await;
    Ok(started.elapsed())
}

backend_test! {
    async fn a_task_submitted_elsewhere_wakes_an_idle_worker_at_once(db) {
        if db.backend != "postgres" {
            return Ok(()); // only PostgreSQL pushes wake-ups between managers
        }
        let worker = idle_worker(&db).await?;
        let submitter = db.manager().await;
        // Let the worker's first poll pass so that it is waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..3 {
            let took = pickup(&submitter).await?;
            assert!(took < PROMPT, "pickup took {took:?} with a {POLL:?} poll interval");
        }
        worker.stop().await?;
        submitter.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_listener_reconnects_after_its_connection_is_killed(db) {
        if db.backend != "postgres" {
            return Ok(());
        }
        let worker = idle_worker(&db).await?;
        let submitter = db.manager().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(pickup(&submitter).await? < PROMPT);

        // Kill the worker's LISTEN connection from outside.
        let schema = db.schema.clone().unwrap_or_default();
        let mut admin = sqlx::PgConnection::connect(&db.url).await?;
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'",
        )
        .bind(&schema)
        .fetch_all(&mut admin)
        .await?;
        assert_eq!(killed, [true], "exactly the worker's listening connection is killed");

        // The listener notices, reconnects and listens again; a submit
        // after that is still picked up at once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..3 {
            let took = pickup(&submitter).await?;
            assert!(took < PROMPT, "pickup after reconnect took {took:?}");
        }
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'",
        )
        .bind(&schema)
        .fetch_one(&mut admin)
        .await?;
        assert_eq!(listening, 1, "the worker listens again on one connection");
        worker.stop().await?;
        submitter.stop().await?;
        Ok(())
    }
}
