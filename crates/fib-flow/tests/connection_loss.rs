//! Connections the database server dropped: the pool hands a connection
//! used within the last second out unpinged (pgxpool's rule), so a
//! connection killed under the manager fails at most the one operation that
//! finds it dead; the pool then replaces it, and submits and the worker
//! loop go on.

#[macro_use]
mod common;

use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};
use sqlx::Connection;

use common::{wait_for_status, TestDb};

/// The most connections one manager's pool holds (`MAX_CONNECTIONS` in
/// `src/store/pool.rs`).
const POOL_SIZE: usize = 10;

/// The manager's URL, marked on PostgreSQL with an application name so
/// that its connections (and no other test's) can be found.
fn marked_url(db: &TestDb, mark: &str) -> String {
    match db.backend {
        "postgres" => {
            let separator = if db.url.contains('?') { '&' } else { '?' };
            format!("{}{separator}application_name={mark}", db.url)
        }
        _ => db.url.clone(),
    }
}

/// Kills every server connection of the manager (marked `mark` on
/// PostgreSQL, using the test's database on MySQL); returns how many.
async fn kill_connections(db: &TestDb, mark: &str) -> anyhow::Result<usize> {
    match db.backend {
        "postgres" => {
            let mut admin = sqlx::PgConnection::connect(&db.url).await?;
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(mark)
            .fetch_all(&mut admin)
            .await?;
            Ok(killed.into_iter().filter(|&k| k).count())
        }
        _ => {
            let mut admin = sqlx::MySqlConnection::connect(&db.url).await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
            )
            .bind(db.schema.as_deref())
            .fetch_all(&mut admin)
            .await?;
            for id in &ids {
                sqlx::raw_sql(&format!("KILL CONNECTION {id}"))
                    .execute(&mut admin)
                    .await?;
            }
            Ok(ids.len())
        }
    }
}

async fn probe_worker(db: &TestDb, mark: &str) -> anyhow::Result<TaskManager> {
    let manager = db.manager_with(|b| b.database(marked_url(db, mark))).await;
    manager.register("probe", |_task: Task| async {
        Ok::<_, BoxError>(Step::done(()))
    })?;
    manager.start().await?;
    Ok(manager)
}

backend_test! {
    async fn connections_killed_by_the_server_are_replaced(db) {
        if db.backend.starts_with("sqlite") {
            return Ok(()); // no server to drop a connection
        }
        let mark = db.schema.clone().unwrap_or_default();
        let manager = probe_worker(&db, &mark).await?;
        let first = manager.submit("probe", &()).await?;
        wait_for_status(&manager, first, TaskStatus::Completed).await;

        assert!(kill_connections(&db, &mark).await? > 0, "no connection of the manager found");

        // Each dead connection fails at most the one operation that finds
        // it, the worker loop's or a submit's.
        let mut failures = 0;
        let second = loop {
            match manager.submit("probe", &()).await {
                Ok(id) => break id,
                Err(error) => {
                    failures += 1;
                    assert!(
                        failures <= POOL_SIZE,
                        "submit failed {failures} times after the kill: {error}"
                    );
                }
            }
        };
        wait_for_status(&manager, second, TaskStatus::Completed).await;
        manager.stop().await?;
        Ok(())
    }
}
