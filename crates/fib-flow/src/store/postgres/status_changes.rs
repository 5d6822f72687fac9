//! The batch form of the status change (`task_set_status_many.sql`): the
//! parameters of [`TaskSetStatusParams`] as one array per column.

use sqlx::postgres::PgArguments;
use sqlx::Postgres;

use super::status_names;
use crate::store::params::TaskSetStatusParams;
use crate::store::row::TaskRef;

type ManyQuery<'q> = sqlx::query::QueryAs<'q, Postgres, TaskRef, PgArguments>;

/// Binds `changes` to the batch statement, column by column in the order
/// of `task_set_status.sql`'s parameters.
pub(super) fn bind<'q>(query: ManyQuery<'q>, changes: &'q [TaskSetStatusParams]) -> ManyQuery<'q> {
    let column = |f: &dyn Fn(&TaskSetStatusParams) -> Option<String>| -> Vec<Option<String>> {
        changes.iter().map(f).collect()
    };
    let flags =
        |f: &dyn Fn(&TaskSetStatusParams) -> bool| -> Vec<bool> { changes.iter().map(f).collect() };
    let numbers = |f: &dyn Fn(&TaskSetStatusParams) -> Option<i64>| -> Vec<Option<i64>> {
        changes.iter().map(f).collect()
    };
    query
        .bind(column(&|c| Some(c.to().as_str().to_owned())))
        .bind(flags(&|c| c.finishes()))
        .bind(flags(&|c| c.result.is_some()))
        .bind(column(&|c| c.result.clone()))
        .bind(flags(&|c| c.error.as_args().0))
        .bind(column(&|c| c.error.as_args().1.map(str::to_owned)))
        .bind(flags(&|c| c.next_run.as_args().0))
        .bind(numbers(&|c| c.next_run.as_args().1))
        .bind(numbers(&|c| Some(c.next_run.as_args().2)))
        .bind(numbers(&|c| c.retry_count))
        .bind(flags(&|c| c.release_owner))
        .bind(changes.iter().map(|c| c.id).collect::<Vec<i64>>())
        .bind(column(&|c| Some(status_names(c.from()).join(","))))
        .bind(column(&|c| c.fence.as_ref().map(|f| f.worker_id.clone())))
        .bind(numbers(&|c| c.fence.as_ref().map(|f| f.attempt)))
        .bind(flags(&|c| c.advances_stage()))
        .bind(flags(&|c| c.context.is_some()))
        .bind(
            changes
                .iter()
                .map(|c| c.context.clone())
                .collect::<Vec<Option<Vec<u8>>>>(),
        )
        .bind(flags(&|c| c.suspend_reason.is_some()))
        .bind(column(&|c| c.suspend_reason.clone().flatten()))
        .bind(numbers(&|c| c.children.map(|u| u.count)))
        .bind(column(&|c| {
            c.children.map(|u| u.on_failure.as_str().to_owned())
        }))
        .bind(flags(&|c| c.require_no_children))
        .bind(flags(&|c| c.reset_stage))
        .bind(numbers(&|c| c.require_expired_ms))
        .bind(column(&|c| Some(c.last_event_type.to_owned())))
}
