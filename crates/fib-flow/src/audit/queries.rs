//! The audit's query API on [`TaskManager`]: events, attempts and tasks
//! page by page, a task's or a workflow's whole audit, the workflow
//! summary, and manual retention.

use chrono::{DateTime, Utc};

use super::summary::{self, EventStats, SummaryInput};
use super::{
    AttemptQuery, EventQuery, EventType, Order, Page, PageRequest, RetentionPolicy,
    RetentionReport, TaskAttempt, TaskAudit, TaskEvent, TaskQuery, WorkflowAudit, WorkflowSummary,
};
use crate::error::Result;
use crate::manager::TaskManager;
use crate::state::TaskStatus;
use crate::store::{
    AttemptListParams, AuditScope, EventListParams, RetentionParams, Slice, Store, TaskQueryParams,
};
use crate::task::{TaskId, TaskRecord};

fn ms(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp_millis())
}

fn slice(page: &PageRequest) -> Result<Slice> {
    page.validate()?;
    Ok(Slice {
        limit: page.limit.map(i64::from),
        offset: i64::try_from(page.offset).unwrap_or(i64::MAX),
        desc: page.order == Order::Desc,
    })
}

fn count(total: i64) -> u64 {
    u64::try_from(total).unwrap_or(0)
}

fn event_params(scope: AuditScope, query: &EventQuery) -> Result<EventListParams> {
    let mut types: Vec<String> = query
        .event_types
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    types.sort();
    types.dedup();
    Ok(EventListParams {
        scope,
        parent_id: query.parent_id.map(TaskId::get),
        worker_id: query.worker_id.clone(),
        event_types: types,
        attempt: query.attempt,
        stage: query.stage,
        after_ms: ms(query.after),
        before_ms: ms(query.before),
        slice: slice(&query.page)?,
    })
}

fn attempt_params(scope: AuditScope, query: &AttemptQuery) -> Result<AttemptListParams> {
    Ok(AttemptListParams {
        scope,
        worker_id: query.worker_id.clone(),
        outcome: query.outcome.map(|o| o.as_str().to_owned()),
        started_after_ms: ms(query.started_after),
        started_before_ms: ms(query.started_before),
        ended_after_ms: ms(query.ended_after),
        ended_before_ms: ms(query.ended_before),
        open_only: query.open_only,
        slice: slice(&query.page)?,
    })
}

fn task_params(query: &TaskQuery) -> Result<TaskQueryParams> {
    Ok(TaskQueryParams {
        tag: query.tag.clone(),
        status: query.status.map(|s| s.as_str().to_owned()),
        name: query.name.clone(),
        worker_id: query.worker_id.clone(),
        parent_id: query.parent_id.map(TaskId::get),
        root_id: query.root_id.map(TaskId::get),
        kind: query.kind.map(|k| k.as_str().to_owned()),
        workflow: query.workflow.map(TaskId::get),
        slice: slice(&query.page)?,
    })
}

async fn events(store: &dyn Store, params: &EventListParams) -> Result<(Vec<TaskEvent>, u64)> {
    let (rows, total) = tokio::try_join!(store.event_list(params), store.event_count(params))?;
    let items = rows
        .into_iter()
        .map(TaskEvent::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok((items, count(total)))
}

async fn attempts(
    store: &dyn Store,
    params: &AttemptListParams,
) -> Result<(Vec<TaskAttempt>, u64)> {
    let (rows, total) = tokio::try_join!(store.attempt_list(params), store.attempt_count(params))?;
    let items = rows
        .into_iter()
        .map(TaskAttempt::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok((items, count(total)))
}

async fn tasks(store: &dyn Store, params: &TaskQueryParams) -> Result<(Vec<TaskRecord>, u64)> {
    let (rows, total) = tokio::try_join!(store.task_query(params), store.task_query_count(params))?;
    let items = rows
        .into_iter()
        .map(TaskRecord::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok((items, count(total)))
}

/// The retention batch of `policy`.
fn retention_params(policy: &RetentionPolicy) -> RetentionParams {
    let statuses = policy.distinct_statuses();
    RetentionParams {
        statuses: statuses.iter().map(|s| s.as_str().to_owned()).collect(),
        expire_after_ms: crate::config::millis(policy.expire_after),
        unfinished: TaskStatus::ALL
            .iter()
            .filter(|s| s.is_unfinished() && !statuses.contains(s))
            .map(|s| s.as_str().to_owned())
            .collect(),
        batch_size: i64::from(policy.batch_size),
    }
}

/// Deletes, batch by batch (each its own transaction), every workflow
/// `policy` makes eligible.
pub(crate) async fn retention_run(
    store: &dyn Store,
    policy: &RetentionPolicy,
) -> Result<RetentionReport> {
    policy.validate()?;
    let params = retention_params(policy);
    let mut report = RetentionReport::default();
    loop {
        let batch =
            crate::engine::retry_transient(|| store.retention_delete_batch(&params)).await?;
        report.add(RetentionReport {
            tasks_deleted: count(batch.tasks_deleted),
            events_deleted: count(batch.events_deleted),
            attempts_deleted: count(batch.attempts_deleted),
        });
        if batch.roots < params.batch_size {
            return Ok(report);
        }
    }
}

impl TaskManager {
    /// One task's events, oldest first (by time, then id), filtered and
    /// paged by `query`. An unknown task has none.
    pub async fn task_events(&self, id: TaskId, query: EventQuery) -> Result<Page<TaskEvent>> {
        let params = event_params(AuditScope::Task(id.get()), &query)?;
        let (items, total) = events(self.store()?, &params).await?;
        Ok(query.page.page(items, total))
    }

    /// The events of every task of the workflow rooted at `root` (the
    /// root's included), filtered and paged by `query`.
    pub async fn workflow_events(
        &self,
        root: TaskId,
        query: EventQuery,
    ) -> Result<Page<TaskEvent>> {
        let params = event_params(AuditScope::Workflow(root.get()), &query)?;
        let (items, total) = events(self.store()?, &params).await?;
        Ok(query.page.page(items, total))
    }

    /// One task's attempts, by attempt number, filtered and paged by
    /// `query`.
    pub async fn task_attempts(
        &self,
        id: TaskId,
        query: AttemptQuery,
    ) -> Result<Page<TaskAttempt>> {
        let params = attempt_params(AuditScope::Task(id.get()), &query)?;
        let (items, total) = attempts(self.store()?, &params).await?;
        Ok(query.page.page(items, total))
    }

    /// The attempts of every task of the workflow rooted at `root`, by
    /// attempt number then id, filtered and paged by `query`.
    pub async fn workflow_attempts(
        &self,
        root: TaskId,
        query: AttemptQuery,
    ) -> Result<Page<TaskAttempt>> {
        let params = attempt_params(AuditScope::Workflow(root.get()), &query)?;
        let (items, total) = attempts(self.store()?, &params).await?;
        Ok(query.page.page(items, total))
    }

    /// Tasks, oldest first (by creation time, then id), filtered and paged
    /// by `query`. Never reads context blobs.
    pub async fn query_tasks(&self, query: TaskQuery) -> Result<Page<TaskRecord>> {
        let params = task_params(&query)?;
        let (items, total) = tasks(self.store()?, &params).await?;
        Ok(query.page.page(items, total))
    }

    /// A task with a page of its events and a page of its attempts. The
    /// task is `None` when it does not exist (or was deleted); its history
    /// is then empty too.
    pub async fn task_audit(
        &self,
        id: TaskId,
        events: EventQuery,
        attempts: AttemptQuery,
    ) -> Result<TaskAudit> {
        // Refuse a bad page before any read starts.
        events.page.validate()?;
        attempts.page.validate()?;
        let (task, events, attempts) = tokio::try_join!(
            self.get_task(id),
            self.task_events(id, events),
            self.task_attempts(id, attempts)
        )?;
        Ok(TaskAudit {
            task,
            events,
            attempts,
        })
    }

    /// A workflow's root, a page of its tasks (`tasks` is narrowed to the
    /// workflow) and a page of its events.
    pub async fn workflow_audit(
        &self,
        root: TaskId,
        tasks: TaskQuery,
        events: EventQuery,
    ) -> Result<WorkflowAudit> {
        tasks.page.validate()?;
        events.page.validate()?;
        let tasks = TaskQuery {
            workflow: Some(root),
            ..tasks
        };
        let (root_task, tasks, events) = tokio::try_join!(
            self.get_task(root),
            self.query_tasks(tasks),
            self.workflow_events(root, events)
        )?;
        Ok(WorkflowAudit {
            root_task,
            tasks,
            events,
        })
    }

    /// The workflow rooted at `root`, condensed: counts per status,
    /// outcome, name and stage; workers; timing; the root's stage timings;
    /// failed tasks; the critical path; the slowest attempts. Reads the
    /// workflow's task rows (no context blobs) and attempts, aggregates of
    /// its events, and the root's own start events.
    pub async fn workflow_summary(&self, root: TaskId) -> Result<WorkflowSummary> {
        let store = self.store()?;
        let all_tasks = TaskQueryParams {
            workflow: Some(root.get()),
            ..TaskQueryParams::default()
        };
        let all_attempts = attempt_params(AuditScope::Workflow(root.get()), &AttemptQuery::new())?;
        let starts = EventQuery::new()
            .event_type(EventType::TaskStarted)
            .event_type(EventType::TaskRetryStarted);
        let starts = event_params(AuditScope::Task(root.get()), &starts)?;
        let (task_rows, attempt_rows, stats, workers, start_rows) = tokio::try_join!(
            store.task_query(&all_tasks),
            store.attempt_list(&all_attempts),
            store.event_stats(root.get()),
            store.event_workers(root.get()),
            store.event_list(&starts),
        )?;
        let input = SummaryInput {
            root_id: root,
            tasks: task_rows
                .into_iter()
                .map(TaskRecord::try_from)
                .collect::<Result<_>>()?,
            attempts: attempt_rows
                .into_iter()
                .map(TaskAttempt::try_from)
                .collect::<Result<_>>()?,
            events: EventStats {
                count: count(stats.events),
                checkpoints: count(stats.checkpoints),
                workers,
                last_event_at: stats
                    .last_event_at
                    .and_then(DateTime::<Utc>::from_timestamp_millis),
            },
            root_starts: start_rows
                .into_iter()
                .map(TaskEvent::try_from)
                .collect::<Result<_>>()?,
        };
        Ok(summary::summarize(input))
    }

    /// Deletes, now, the finished workflows a retention policy makes
    /// eligible (`None`: the configured one, or the default if retention
    /// is off), with their events and attempts, batch by batch (each batch
    /// one transaction). Returns what it deleted. An invalid policy is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming the
    /// field, and nothing is deleted.
    pub async fn run_retention(&self, policy: Option<RetentionPolicy>) -> Result<RetentionReport> {
        let policy = match policy {
            Some(policy) => policy,
            None => self.config().retention.clone().unwrap_or_default(),
        };
        let store = self.store()?;
        retention_run(store, &policy).await
    }
}
