//! [`Store::task_submit_many`](crate::store::Store::task_submit_many) on
//! PostgreSQL: one statement, the task columns bound as arrays.

use super::PgStore;
use crate::error::Result;
use crate::state::TaskStatus;
use crate::store::audit::NewEvent;
use crate::store::params::TaskInsertParams;

impl PgStore {
    pub(super) async fn submit_many(
        &self,
        params: &[TaskInsertParams],
        created: &[NewEvent],
    ) -> Result<Vec<i64>> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let column = |f: fn(&TaskInsertParams) -> Option<i64>| -> Option<Vec<Option<i64>>> {
            all_null_as_none(params.iter().map(f).collect())
        };
        let text = |f: fn(&TaskInsertParams) -> Option<&str>| -> Option<Vec<Option<&str>>> {
            all_null_as_none(params.iter().map(f).collect())
        };
        Ok(
            sqlx::query_scalar(include_str!("queries/task_submit_many.sql"))
                .bind(text(|p| Some(p.name.as_str())))
                .bind(text(|p| Some(p.kind.as_str())))
                .bind(text(|_| Some(TaskStatus::Pending.as_str())))
                .bind(column(|p| Some(i64::from(p.priority))))
                .bind(text(|p| p.payload.as_deref()))
                .bind(text(|p| p.tag.as_deref()))
                .bind(column(|p| Some(p.timeout_ms)))
                .bind(column(|p| Some(p.max_attempts)))
                .bind(column(|p| Some(p.retry_interval_ms)))
                .bind(text(|p| p.cron_expr.as_deref()))
                .bind(column(|p| p.next_run.as_args().1))
                .bind(column(|p| Some(p.next_run.as_args().2)))
                .bind(column(|p| p.parent.map(|l| l.root_id)))
                .bind(column(|p| p.parent.map(|l| l.parent_id)))
                .bind(column(|p| p.parent.map(|l| l.parent_stage)))
                .bind(column(|p| p.parent.map(|l| l.parent_cycle)))
                .bind(events(created, |e| e.parent_id))
                .bind(events(created, |e| Some(e.event_type)))
                .bind(events(created, |e| e.from_status.as_deref()))
                .bind(events(created, |e| e.to_status.as_deref()))
                .bind(events(created, |e| e.stage))
                .bind(events(created, |e| e.worker_id.as_deref()))
                .bind(events(created, |e| e.attempt))
                .bind(events(created, |e| e.message.as_deref()))
                .bind(events(created, |e| e.metadata.as_deref()))
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// One column of the events, as an array bound to the statement.
fn events<'e, T>(
    created: &'e [NewEvent],
    column: impl Fn(&'e NewEvent) -> Option<T>,
) -> Option<Vec<Option<T>>> {
    all_null_as_none(created.iter().map(column).collect())
}

/// A column of nulls as a null array: the statement's `unnest` pads a
/// null array with nulls to the length of the others, the same rows
/// without unpacking an array of nulls (a batch of top-level tasks has
/// five such columns, their events four). The name column is never null,
/// so the rows' count is always set.
fn all_null_as_none<T>(column: Vec<Option<T>>) -> Option<Vec<Option<T>>> {
    column.iter().any(Option::is_some).then_some(column)
}
