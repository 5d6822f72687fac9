//! The audit's query API on the manager: pagination edges of
//! `task_events`, `task_attempts` and `query_tasks` (limit, offset, offset
//! past the end, `has_more`, `total`, descending order, refused limits),
//! their filters, and the shapes of `task_audit` and `workflow_audit`.

#[macro_use]
mod common;

use fib_flow::{
    AttemptOutcome, AttemptQuery, BoxError, Child, EventQuery, EventType, Order, PageRequest, Step,
    Task, TaskFilter, TaskId, TaskKind, TaskManager, TaskOptions, TaskQuery, TaskStatus,
};
use serde_json::json;

use common::{
    attempts_of, audit_manager_with, events_of, invalid_field, ms, wait_for_running_count,
    wait_for_status,
};

use EventType as E;

fn ids<T, I>(items: &[T], id: impl Fn(&T) -> I) -> Vec<I> {
    items.iter().map(id).collect()
}

/// Runs one task that records five checkpoints `c1`..`c5` and completes:
/// nine events (created, claimed, started, five checkpoints, completed).
async fn nine_events(manager: &TaskManager) -> anyhow::Result<TaskId> {
    manager.register("noted", |task: Task| async move {
        for n in 1..=5 {
            task.audit(format!("c{n}")).await?;
        }
        Ok::<_, BoxError>(Step::done(json!("noted")))
    })?;
    manager.start().await?;
    let id = manager.submit("noted", &()).await?;
    wait_for_status(manager, id, TaskStatus::Completed).await;
    Ok(id)
}

backend_test! {
    async fn task_events_pages_by_limit_and_offset_in_either_order(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = nine_events(&manager).await?;
        let page = |request: PageRequest| {
            let manager = manager.clone();
            async move {
                manager
                    .task_events(id, EventQuery::new().page(request))
                    .await
                    .expect("task_events")
            }
        };

        let all = page(PageRequest::new()).await;
        assert_eq!(all.items.len(), 9);
        assert_eq!((all.total, all.limit, all.offset, all.has_more), (9, None, 0, false));
        let every = ids(&all.items, |e| e.id);
        assert_eq!(all.items[0].event_type, E::TaskCreated);
        assert_eq!(all.items[8].event_type, E::TaskCompleted);

        let first = page(PageRequest::new().limit(4)).await;
        assert_eq!(ids(&first.items, |e| e.id), every[..4]);
        assert_eq!((first.total, first.limit, first.has_more), (9, Some(4), true));
        let second = page(PageRequest::new().limit(4).offset(4)).await;
        assert_eq!(ids(&second.items, |e| e.id), every[4..8]);
        assert!(second.has_more);
        let last = page(PageRequest::new().limit(4).offset(8)).await;
        assert_eq!(ids(&last.items, |e| e.id), every[8..]);
        assert_eq!((last.total, last.offset, last.has_more), (9, 8, false));
        let exact = page(PageRequest::new().limit(9)).await;
        assert_eq!((exact.items.len(), exact.has_more), (9, false));

        // Offsets at and past the end: no items, the total still counted.
        for offset in [9, 100] {
            let past = page(PageRequest::new().limit(4).offset(offset)).await;
            assert!(past.items.is_empty());
            assert_eq!((past.total, past.offset, past.has_more), (9, offset, false));
            let unlimited = page(PageRequest::new().offset(offset)).await;
            assert!(unlimited.items.is_empty());
            assert_eq!((unlimited.total, unlimited.has_more), (9, false));
        }
        let rest = page(PageRequest::new().offset(6)).await;
        assert_eq!(ids(&rest.items, |e| e.id), every[6..]);
        assert!(!rest.has_more);

        let mut reversed = every.clone();
        reversed.reverse();
        let desc = page(PageRequest::new().order(Order::Desc)).await;
        assert_eq!(ids(&desc.items, |e| e.id), reversed);
        let desc = page(PageRequest::new().order(Order::Desc).limit(3).offset(1)).await;
        assert_eq!(ids(&desc.items, |e| e.id), reversed[1..4]);
        assert_eq!((desc.total, desc.has_more), (9, true));

        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn a_limit_of_zero_or_an_offset_beyond_i64_is_refused_by_every_query(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = manager.submit("idle", &()).await?;
        // The largest offset that fits is fine: an empty page.
        let far = PageRequest::new().offset(i64::MAX as u64);
        let page = manager.query_tasks(TaskQuery::new().page(far)).await?;
        assert!(page.items.is_empty());
        assert_eq!((page.total, page.has_more), (1, false));
        let zero = PageRequest::new().limit(0);
        let huge = PageRequest::new().offset(u64::MAX);
        for (request, field) in [(zero, "limit"), (huge, "offset")] {
            let events = EventQuery::new().page(request);
            let attempts = AttemptQuery::new().page(request);
            let tasks = TaskQuery::new().page(request);
            assert_eq!(invalid_field(manager.task_events(id, events.clone()).await), field);
            assert_eq!(invalid_field(manager.workflow_events(id, events.clone()).await), field);
            assert_eq!(invalid_field(manager.task_attempts(id, attempts.clone()).await), field);
            assert_eq!(
                invalid_field(manager.workflow_attempts(id, attempts.clone()).await),
                field
            );
            assert_eq!(invalid_field(manager.query_tasks(tasks.clone()).await), field);
            assert_eq!(
                invalid_field(manager.task_audit(id, events.clone(), AttemptQuery::new()).await),
                field
            );
            assert_eq!(
                invalid_field(manager.task_audit(id, EventQuery::new(), attempts).await),
                field
            );
            assert_eq!(
                invalid_field(manager.workflow_audit(id, tasks, EventQuery::new()).await),
                field
            );
            assert_eq!(
                invalid_field(manager.workflow_audit(id, TaskQuery::new(), events).await),
                field
            );
        }
        Ok(())
    }
}

/// Runs one task whose attempts 1 and 2 fail and 3 succeeds, 100 ms apart,
/// each recording a checkpoint filed under stage `10 + attempt`.
async fn three_attempts(manager: &TaskManager) -> anyhow::Result<TaskId> {
    manager.register("stubborn", |task: Task| async move {
        task.audit(format!("a{}", task.attempt()))
            .stage(10 + task.attempt())
            .await?;
        if task.attempt() < 3 {
            return Err::<Step, BoxError>(format!("failure #{}", task.attempt()).into());
        }
        Ok(Step::done(json!("third time")))
    })?;
    manager.start().await?;
    let id = manager
        .submit_with(
            "stubborn",
            &(),
            TaskOptions::new().max_attempts(3).retry_interval(ms(100)),
        )
        .await?;
    wait_for_status(manager, id, TaskStatus::Completed).await;
    wait_for_running_count(manager, 0).await;
    Ok(id)
}

backend_test! {
    async fn task_attempts_page_and_filter_by_outcome_worker_and_times(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = three_attempts(&manager).await?;
        let list = |query: AttemptQuery| {
            let manager = manager.clone();
            async move {
                let page = manager.task_attempts(id, query).await.expect("task_attempts");
                (ids(&page.items, |a| a.attempt), page.total, page.has_more)
            }
        };
        let all = attempts_of(&manager, id).await;
        assert_eq!(ids(&all, |a| a.attempt), [1, 2, 3]);
        let (a1, a2, a3) = (&all[0], &all[1], &all[2]);
        let end = |a: &fib_flow::TaskAttempt| a.ended_at.expect("ended");

        let page = |request: PageRequest| AttemptQuery::new().page(request);
        assert_eq!(list(page(PageRequest::new().limit(2))).await, (vec![1, 2], 3, true));
        assert_eq!(
            list(page(PageRequest::new().limit(2).offset(2))).await,
            (vec![3], 3, false)
        );
        assert_eq!(list(page(PageRequest::new().offset(3))).await, (vec![], 3, false));
        assert_eq!(
            list(page(PageRequest::new().limit(5).offset(50))).await,
            (vec![], 3, false)
        );
        assert_eq!(
            list(page(PageRequest::new().order(Order::Desc))).await,
            (vec![3, 2, 1], 3, false)
        );
        assert_eq!(
            list(page(PageRequest::new().order(Order::Desc).limit(1))).await,
            (vec![3], 3, true)
        );

        let q = AttemptQuery::new;
        assert_eq!(list(q().outcome(AttemptOutcome::Failed)).await, (vec![1, 2], 2, false));
        assert_eq!(list(q().outcome(AttemptOutcome::Completed)).await, (vec![3], 1, false));
        assert_eq!(list(q().outcome(AttemptOutcome::Timeout)).await, (vec![], 0, false));
        assert_eq!(list(q().worker(manager.worker_id())).await, (vec![1, 2, 3], 3, false));
        assert_eq!(list(q().worker("someone-else")).await, (vec![], 0, false));
        assert_eq!(list(q().open_only()).await, (vec![], 0, false));
        // Time bounds are inclusive; the retry interval keeps the attempts
        // apart.
        assert_eq!(list(q().started_after(a2.started_at)).await, (vec![2, 3], 2, false));
        assert_eq!(list(q().started_before(a1.started_at)).await, (vec![1], 1, false));
        assert_eq!(list(q().ended_after(end(a3))).await, (vec![3], 1, false));
        assert_eq!(list(q().ended_before(end(a1))).await, (vec![1], 1, false));
        assert_eq!(
            list(q().started_after(a2.started_at).ended_before(end(a2))).await,
            (vec![2], 1, false)
        );
        assert_eq!(
            list(q().started_after(a1.started_at).outcome(AttemptOutcome::Failed).page(
                PageRequest::new().limit(1).offset(1)
            ))
            .await,
            (vec![2], 2, false)
        );
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn task_events_filter_by_type_attempt_stage_worker_and_time(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = three_attempts(&manager).await?;
        let all = events_of(&manager, id).await;
        // Created; claimed, started, checkpoint and an ending per attempt; a
        // retry start for attempts 2 and 3.
        assert_eq!(all.len(), 1 + 3 * 4 + 2, "{all:?}");
        let list = |query: EventQuery| {
            let manager = manager.clone();
            async move {
                let page = manager.task_events(id, query).await.expect("task_events");
                assert_eq!(page.total as usize, page.items.len());
                page.items
            }
        };
        let types = |events: &[fib_flow::TaskEvent]| ids(events, |e| (e.event_type, e.attempt));
        let q = EventQuery::new;

        let failures = list(q().event_type(E::TaskFailed).event_type(E::TaskRetryStarted)).await;
        assert_eq!(
            types(&failures),
            [
                (E::TaskFailed, None),
                (E::TaskRetryStarted, Some(2)),
                (E::TaskFailed, None),
                (E::TaskRetryStarted, Some(3)),
            ]
        );
        let doubled = list(q().event_type(E::TaskCompleted).event_type(E::TaskCompleted)).await;
        assert_eq!(types(&doubled), [(E::TaskCompleted, None)]);
        assert!(list(q().event_type(E::TaskPaused)).await.is_empty());

        // The attempt filter matches what carries the attempt: its start,
        // retry start and reports (claims and status changes carry none).
        let second = list(q().attempt(2)).await;
        assert_eq!(
            types(&second),
            [
                (E::TaskStarted, Some(2)),
                (E::TaskRetryStarted, Some(2)),
                (E::TaskCheckpoint, Some(2)),
            ]
        );
        let staged = list(q().stage(12)).await;
        assert_eq!(types(&staged), [(E::TaskCheckpoint, Some(2))]);
        assert_eq!(list(q().stage(0)).await.len(), all.len() - 3);
        assert_eq!(
            types(&list(q().event_type(E::TaskStarted).attempt(1)).await),
            [(E::TaskStarted, Some(1))]
        );

        let w = manager.worker_id();
        assert_eq!(list(q().worker(w)).await.len(), all.len() - 1, "all but task_created");
        assert!(list(q().worker("someone-else")).await.is_empty());
        assert!(list(q().parent(id)).await.is_empty(), "a top-level task has no parent");

        // Time bounds are inclusive.
        let failed = all
            .iter()
            .find(|e| e.event_type == E::TaskFailed)
            .expect("a failure");
        let at = failed.event_time;
        let after = list(q().after(at)).await;
        assert_eq!(
            ids(&after, |e| e.id),
            ids(&all, |e| e.id)
                .into_iter()
                .zip(&all)
                .filter(|(_, e)| e.event_time >= at)
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
        );
        assert!(after.iter().any(|e| e.id == failed.id));
        let before = list(q().before(at)).await;
        assert!(before.iter().all(|e| e.event_time <= at));
        assert!(before.iter().any(|e| e.id == failed.id));
        assert_eq!(
            before.len() + after.len(),
            all.len() + all.iter().filter(|e| e.event_time == at).count()
        );
        let window = list(q().after(at).before(at)).await;
        assert!(window.iter().all(|e| e.event_time == at));
        assert!(!window.is_empty());
        manager.stop().await?;
        Ok(())
    }
}

/// Tasks for the `query_tasks` filters: a completed `ok` (tag t1), two
/// pending `idle` (tags t1, t2) nobody runs, a cron `tick` not due this
/// year, and a completed workflow `flow` with two `leaf` children.
struct Listing {
    ok: TaskId,
    idle1: TaskId,
    idle2: TaskId,
    tick: TaskId,
    flow: TaskId,
    leaves: Vec<TaskId>,
}

async fn listing(manager: &TaskManager) -> anyhow::Result<Listing> {
    manager.register("ok", |_task: Task| async move {
        Ok::<_, BoxError>(Step::done(json!(1)))
    })?;
    manager.register("leaf", |_task: Task| async move {
        Ok::<_, BoxError>(Step::done(json!(2)))
    })?;
    manager.register("flow", |task: Task| async move {
        Ok::<_, BoxError>(match task.stage() {
            0 => Step::children([Child::new("leaf", &1), Child::new("leaf", &2).tag("t2")]),
            _ => Step::done(json!("joined")),
        })
    })?;
    manager.start().await?;
    let ok = manager
        .submit_with("ok", &(), TaskOptions::new().tag("t1"))
        .await?;
    wait_for_status(manager, ok, TaskStatus::Completed).await;
    let idle1 = manager
        .submit_with("idle", &(), TaskOptions::new().tag("t1"))
        .await?;
    let idle2 = manager
        .submit_with("idle", &(), TaskOptions::new().tag("t2"))
        .await?;
    let tick = manager.cron("tick", "0 0 1 1 *", &()).await?;
    let flow = manager.submit("flow", &()).await?;
    wait_for_status(manager, flow, TaskStatus::Completed).await;
    let leaves = common::ids_of(&manager.get_children(flow).await?);
    Ok(Listing {
        ok,
        idle1,
        idle2,
        tick,
        flow,
        leaves,
    })
}

backend_test! {
    async fn query_tasks_pages_and_filters_by_status_name_tag_kind_worker_parent_and_workflow(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let l = listing(&manager).await?;
        let list = |query: TaskQuery| {
            let manager = manager.clone();
            async move {
                let page = manager.query_tasks(query).await.expect("query_tasks");
                (ids(&page.items, |t| t.id), page.total, page.has_more)
            }
        };
        let every = vec![l.ok, l.idle1, l.idle2, l.tick, l.flow, l.leaves[0], l.leaves[1]];
        let n = every.len() as u64;
        let q = TaskQuery::new;
        assert_eq!(list(q()).await, (every.clone(), n, false));
        // The same rows as get_tasks, every column.
        let page = manager.query_tasks(q()).await?;
        assert_eq!(page.items, manager.get_tasks(TaskFilter::new()).await?);

        let page = |request: PageRequest| q().page(request);
        assert_eq!(list(page(PageRequest::new().limit(3))).await, (every[..3].to_vec(), n, true));
        assert_eq!(
            list(page(PageRequest::new().limit(3).offset(6))).await,
            (every[6..].to_vec(), n, false)
        );
        assert_eq!(list(page(PageRequest::new().offset(7))).await, (vec![], n, false));
        let mut reversed = every.clone();
        reversed.reverse();
        assert_eq!(list(page(PageRequest::new().order(Order::Desc))).await, (reversed.clone(), n, false));
        assert_eq!(
            list(page(PageRequest::new().order(Order::Desc).limit(2).offset(1))).await,
            (reversed[1..3].to_vec(), n, true)
        );

        assert_eq!(
            list(q().status(TaskStatus::Pending)).await,
            (vec![l.idle1, l.idle2, l.tick], 3, false)
        );
        assert_eq!(list(q().status(TaskStatus::Suspended)).await, (vec![], 0, false));
        assert_eq!(list(q().name("idle")).await, (vec![l.idle1, l.idle2], 2, false));
        assert_eq!(list(q().tag("t1")).await, (vec![l.ok, l.idle1], 2, false));
        assert_eq!(list(q().tag("t2")).await, (vec![l.idle2, l.leaves[1]], 2, false));
        assert_eq!(list(q().kind(TaskKind::Cron)).await, (vec![l.tick], 1, false));
        assert_eq!(list(q().kind(TaskKind::Async)).await.1, n - 1);
        assert_eq!(
            list(q().worker(manager.worker_id())).await,
            (vec![l.ok, l.flow, l.leaves[0], l.leaves[1]], 4, false)
        );
        assert_eq!(list(q().parent(l.flow)).await, (l.leaves.clone(), 2, false));
        assert_eq!(list(q().root(l.flow)).await, (l.leaves.clone(), 2, false));
        assert_eq!(
            list(q().workflow(l.flow)).await,
            (vec![l.flow, l.leaves[0], l.leaves[1]], 3, false)
        );
        assert_eq!(list(q().workflow(l.ok)).await, (vec![l.ok], 1, false));
        assert_eq!(list(q().parent(l.ok)).await, (vec![], 0, false));
        // Filters combine.
        assert_eq!(
            list(q().status(TaskStatus::Completed).name("leaf").tag("t2")).await,
            (vec![l.leaves[1]], 1, false)
        );
        assert_eq!(
            list(q().workflow(l.flow).kind(TaskKind::Async).page(PageRequest::new().limit(1).offset(1)))
                .await,
            (vec![l.leaves[0]], 3, true)
        );
        assert_eq!(list(q().name("nobody")).await, (vec![], 0, false));
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn task_audit_is_the_task_with_a_page_of_its_events_and_of_its_attempts(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let id = three_attempts(&manager).await?;
        let audit = manager
            .task_audit(
                id,
                EventQuery::new()
                    .event_type(E::TaskCheckpoint)
                    .page(PageRequest::new().limit(2)),
                AttemptQuery::new().outcome(AttemptOutcome::Failed),
            )
            .await?;
        assert_eq!(audit.task, manager.get_task(id).await?);
        assert!(audit.task.is_some());
        assert_eq!(audit.events.total, 3);
        assert_eq!((audit.events.items.len(), audit.events.has_more), (2, true));
        assert_eq!(audit.events.limit, Some(2));
        let codes: Vec<_> = audit.events.items.iter().map(|e| e.metadata["code"].clone()).collect();
        assert_eq!(codes, [json!("a1"), json!("a2")]);
        assert_eq!(ids(&audit.attempts.items, |a| a.attempt), [1, 2]);
        assert_eq!((audit.attempts.total, audit.attempts.has_more), (2, false));

        let whole = manager
            .task_audit(id, EventQuery::new(), AttemptQuery::new())
            .await?;
        assert_eq!(whole.events.items, events_of(&manager, id).await);
        assert_eq!(whole.attempts.items, attempts_of(&manager, id).await);
        manager.stop().await?;
        Ok(())
    }
}

backend_test! {
    async fn the_audit_of_an_unknown_task_or_workflow_is_empty(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        manager.submit("idle", &()).await?;
        let unknown = TaskId(987_654);
        let audit = manager
            .task_audit(unknown, EventQuery::new(), AttemptQuery::new())
            .await?;
        assert_eq!(audit.task, None);
        assert_eq!((audit.events.total, audit.events.items.len()), (0, 0));
        assert_eq!((audit.attempts.total, audit.attempts.items.len()), (0, 0));
        let flow = manager
            .workflow_audit(unknown, TaskQuery::new(), EventQuery::new())
            .await?;
        assert_eq!(flow.root_task, None);
        assert_eq!((flow.tasks.total, flow.tasks.items.len()), (0, 0));
        assert_eq!((flow.events.total, flow.events.items.len()), (0, 0));
        Ok(())
    }
}

backend_test! {
    async fn workflow_audit_is_the_root_with_pages_of_its_tasks_and_their_events(db) {
        let manager = audit_manager_with(&db, |b| b).await;
        let l = listing(&manager).await?;
        let audit = manager
            .workflow_audit(l.flow, TaskQuery::new(), EventQuery::new())
            .await?;
        assert_eq!(audit.root_task, manager.get_task(l.flow).await?);
        assert_eq!(
            ids(&audit.tasks.items, |t| t.id),
            [l.flow, l.leaves[0], l.leaves[1]]
        );
        assert_eq!(audit.tasks.total, 3);
        // The root's nine events and four of each child.
        assert_eq!(audit.events.total, 9 + 2 * 4);
        assert!(audit.events.items.iter().all(|e| e.root_id == l.flow));
        let mut from_tasks = Vec::new();
        for id in [l.flow, l.leaves[0], l.leaves[1]] {
            from_tasks.extend(events_of(&manager, id).await.into_iter().map(|e| e.id));
        }
        from_tasks.sort_unstable();
        let mut listed = ids(&audit.events.items, |e| e.id);
        listed.sort_unstable();
        assert_eq!(listed, from_tasks);

        // The task query is narrowed to the workflow, whatever it names.
        let narrowed = manager
            .workflow_audit(
                l.flow,
                TaskQuery::new().workflow(l.ok).name("leaf"),
                EventQuery::new()
                    .parent(l.flow)
                    .event_type(E::TaskCompleted)
                    .page(PageRequest::new().limit(1)),
            )
            .await?;
        assert_eq!(ids(&narrowed.tasks.items, |t| t.id), l.leaves);
        assert_eq!(narrowed.events.total, 2, "the children's completions");
        assert_eq!(narrowed.events.items.len(), 1);
        assert!(narrowed.events.has_more);
        assert_eq!(narrowed.events.items[0].parent_id, Some(l.flow));

        // A task outside any workflow is a workflow of one.
        let single = manager
            .workflow_audit(l.idle1, TaskQuery::new(), EventQuery::new())
            .await?;
        assert_eq!(ids(&single.tasks.items, |t| t.id), [l.idle1]);
        assert_eq!(single.events.total, 1);
        assert!(single.events.items.iter().all(|e| e.task_id != l.idle2));
        manager.stop().await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_audits_leave_an_in_memory_database_intact() -> anyhow::Result<()> {
    // task_audit and workflow_audit start their store reads together and
    // return the first error: the refused page returns at once, dropping
    // a read in flight. On `sqlite::memory:` the store lives on one pooled
    // connection; losing it means a new, empty database.
    let db = common::TestDb::sqlite_memory();
    let manager = audit_manager_with(&db, |b| b).await;
    let id = manager.submit("idle", &()).await?;
    let refused = PageRequest::new().limit(0);
    for round in 1..=200 {
        let events = EventQuery::new().page(refused);
        let result = if round % 2 == 0 {
            manager
                .task_audit(id, events, AttemptQuery::new())
                .await
                .map(drop)
        } else {
            manager
                .workflow_audit(id, TaskQuery::new(), events)
                .await
                .map(drop)
        };
        assert_eq!(invalid_field(result), "limit");
        match manager.get_task(id).await {
            Ok(Some(_)) => {}
            other => panic!("after {round} refused audits the task is gone: {other:?}"),
        }
    }
    Ok(())
}
