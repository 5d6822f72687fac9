//! [`StoreTx::task_set_status`](crate::store::StoreTx::task_set_status) and
//! [`StoreTx::task_set_status_many`](crate::store::StoreTx::task_set_status_many)
//! on MySQL / MariaDB. MySQL has no `RETURNING`: a change is an `UPDATE`
//! and a read-back of its row. One change binds its values (two round
//! trips); a batch sends every `UPDATE` and one read-back of all their rows
//! as one text command (one round trip): each `UPDATE`'s own
//! affected-rows count says whether its guards let it apply.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::mysql::MySqlArguments;
use sqlx::{Either, Executor, FromRow, MySql};

use super::literal::{interpolate, Lit};
use super::{MySqlTx, StampedRef};
use crate::error::{Error, Result};
use crate::store::params::{json_list, status_list, TaskSetStatusParams};
use crate::store::row::TaskRef;

/// The values of `task_set_status.sql`'s `?`s, in order; `from` is
/// [`status_list`] of the change's source statuses.
fn values<'a>(change: &'a TaskSetStatusParams, now: Option<i64>, from: &'a str) -> Vec<Lit<'a>> {
    let (set_error, error) = change.error.as_args();
    let (set_next, at, delay) = change.next_run.as_args();
    let fence_worker = change.fence.as_ref().map(|f| f.worker_id.as_str());
    let children = change.children;
    let suspend_reason = change.suspend_reason.as_ref().and_then(Option::as_deref);
    vec![
        Lit::Text(change.to().as_str()),
        Lit::int(now),
        Lit::Bool(change.finishes()),
        Lit::Bool(change.result.is_some()),
        Lit::text(change.result.as_deref()),
        Lit::Bool(set_error),
        Lit::text(error),
        Lit::Bool(set_next),
        Lit::int(at),
        Lit::Int(delay),
        Lit::int(change.retry_count),
        Lit::Bool(change.release_owner),
        Lit::Bool(change.advances_stage()),
        Lit::Bool(change.reset_stage),
        Lit::Bool(change.reset_stage),
        Lit::Bool(change.context.is_some()),
        Lit::bytes(change.context.as_deref()),
        Lit::Bool(change.suspend_reason.is_some()),
        Lit::text(suspend_reason),
        Lit::int(children.map(|c| c.count)),
        Lit::int(children.map(|c| c.count)),
        Lit::Bool(change.finishes()),
        Lit::Bool(change.reset_stage),
        Lit::text(children.map(|c| c.on_failure.as_str())),
        Lit::Text(change.last_event_type),
        Lit::Int(change.id),
        Lit::Text(from),
        Lit::text(fence_worker),
        Lit::text(fence_worker),
        Lit::int(change.fence.as_ref().map(|f| f.attempt)),
        Lit::Bool(change.require_no_children),
        Lit::int(change.require_expired_ms),
        Lit::int(change.require_expired_ms),
        Lit::int(change.require_expired_ms),
    ]
}

/// Binds one value to a prepared query.
fn bind<'q>(
    query: sqlx::query::Query<'q, MySql, MySqlArguments>,
    value: Lit<'q>,
) -> sqlx::query::Query<'q, MySql, MySqlArguments> {
    match value {
        Lit::Null => query.bind(None::<i64>),
        Lit::Int(value) => query.bind(value),
        Lit::Bool(value) => query.bind(value),
        Lit::Text(value) => query.bind(value),
        Lit::Bytes(value) => query.bind(value),
    }
}

impl MySqlTx {
    pub(super) async fn set_status(
        &mut self,
        change: &TaskSetStatusParams,
    ) -> Result<Option<TaskRef>> {
        let from = status_list(change.from());
        let query = values(change, self.now, &from).into_iter().fold(
            sqlx::query(include_str!("queries/task_set_status.sql")),
            bind,
        );
        let done = query.execute(&mut *self.tx).await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let stamped: StampedRef = sqlx::query_as(include_str!("queries/task_ref.sql"))
            .bind(change.id)
            .fetch_one(&mut *self.tx)
            .await?;
        self.now = self.now.or(stamped.last_active_at);
        Ok(Some(stamped.task))
    }

    pub(super) async fn set_status_many(
        &mut self,
        changes: &[TaskSetStatusParams],
    ) -> Result<Vec<Option<TaskRef>>> {
        let mut ids: Vec<i64> = changes.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if changes.len() < 2 || ids.len() < changes.len() {
            // One change, or a task changed twice (each change must see
            // the one before it applied): one by one.
            let mut applied = Vec::with_capacity(changes.len());
            for change in changes {
                applied.push(self.set_status(change).await?);
            }
            return Ok(applied);
        }
        // Every change stamps the transaction's one time.
        let now = self.now().await?;
        let mut sql = String::new();
        for change in changes {
            let from = status_list(change.from());
            interpolate(
                &mut sql,
                include_str!("queries/task_set_status.sql"),
                &values(change, Some(now), &from),
            )?;
            sql.push_str(";\n");
        }
        let ids = json_list(&ids);
        interpolate(
            &mut sql,
            include_str!("queries/task_refs.sql"),
            &[Lit::Text(&ids)],
        )?;
        let mut applied = Vec::with_capacity(changes.len());
        let mut rows = HashMap::new();
        let mut results = (&mut *self.tx).fetch_many(sqlx::raw_sql(&sql));
        while let Some(item) = results.try_next().await? {
            match item {
                // One per UPDATE, in order; then the read-back's own.
                Either::Left(done) if applied.len() < changes.len() => {
                    applied.push(done.rows_affected() == 1);
                }
                Either::Left(_) => {}
                Either::Right(row) => {
                    let stamped = StampedRef::from_row(&row)?;
                    rows.insert(stamped.task.id, stamped.task);
                }
            }
        }
        drop(results);
        if applied.len() != changes.len() {
            return Err(Error::Corrupt {
                column: "status",
                reason: format!(
                    "{} status changes sent, {} results came back",
                    changes.len(),
                    applied.len()
                ),
            });
        }
        changes
            .iter()
            .zip(applied)
            .map(|(change, applied)| {
                if !applied {
                    return Ok(None);
                }
                rows.get(&change.id)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| Error::Corrupt {
                        column: "id",
                        reason: format!("task {} changed but was not read back", change.id),
                    })
            })
            .collect()
    }
}
