//! What the whole-system benchmarks share: the database of one run (a
//! temporary SQLite file, an in-memory SQLite database, or a fresh schema on
//! the PostgreSQL / MySQL server named by `FIB_FLOW_TEST_*_URL`), dropped
//! after the run.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use anyhow::{bail, Context};
use fib_flow::{TaskManager, TaskManagerBuilder};

/// The server URL of a backend from its environment variable, if set.
pub fn server_url(backend: &str) -> Option<String> {
    let var = match backend {
        "postgres" => "FIB_FLOW_TEST_POSTGRES_URL",
        "mysql" => "FIB_FLOW_TEST_MYSQL_URL",
        _ => return None,
    };
    std::env::var(var).ok().filter(|url| !url.trim().is_empty())
}

/// `requested`, or else the candidates that can run here (SQLite always,
/// a server when its URL is set).
pub fn backends_or_available(requested: Vec<String>, candidates: &[&str]) -> Vec<String> {
    if !requested.is_empty() {
        return requested;
    }
    candidates
        .iter()
        .filter(|b| b.starts_with("sqlite") || server_url(b).is_some())
        .map(|b| (*b).to_owned())
        .collect()
}

/// Where one run's database lives; dropped (or its schema dropped) after.
pub struct Database {
    pub url: String,
    pub backend: String,
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    /// A fresh database for `backend` (`sqlite_file`, `sqlite_memory`,
    /// `postgres`, `mysql`).
    pub fn new(backend: &str) -> anyhow::Result<Self> {
        let unique = || {
            format!(
                "ffbench_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            )
        };
        let (url, schema, dir) = match backend {
            "sqlite_file" => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite:{}", dir.path().join("bench.db").display());
                (url, None, Some(dir))
            }
            "sqlite_memory" => ("sqlite::memory:".to_owned(), None, None),
            "postgres" | "mysql" => {
                let url = server_url(backend).with_context(|| {
                    format!(
                        "{backend}: set FIB_FLOW_TEST_{}_URL",
                        backend.to_uppercase()
                    )
                })?;
                (url, Some(unique()), None)
            }
            other => bail!("unknown backend {other:?}"),
        };
        Ok(Database {
            url,
            backend: backend.to_owned(),
            schema,
            _dir: dir,
        })
    }

    /// A builder on this database with the given poll interval.
    pub fn builder(&self, poll: Duration) -> TaskManagerBuilder {
        let builder = TaskManager::builder()
            .database(self.url.clone())
            .poll_interval(poll);
        match &self.schema {
            Some(schema) => builder.schema(schema.clone()),
            None => builder,
        }
    }

    /// Drops the run's schema or database on a server (SQLite files go
    /// with their temporary directory).
    pub async fn drop_schema(&self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        if self.backend == "postgres" {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await?;
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&self.url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS `{schema}`"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}
