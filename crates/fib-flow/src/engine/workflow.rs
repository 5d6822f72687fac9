//! Applying status changes with everything that follows from them, inside
//! one store transaction: a parent's children are inserted with its
//! suspension; a child's terminal status is counted on its parent exactly
//! once (recorded on the child row); the last child resumes the parent at
//! its next stage; a failed child fails the parent (by default) and the
//! parent's other unfinished descendants are cancelled; failures climb as
//! many levels as they must.
//!
//! The rules come from [`crate::state`]; this module only sequences store
//! calls, so every backend behaves alike.

use super::retry_transient;
use crate::audit::record::{self, AuditRows};
use crate::error::Result;
use crate::state::{plan_child_finished, ChildFailure, ParentPlan, TaskKind, TaskStatus};
use crate::store::{
    NextRun, Store, StoreTx, TaskCancelChildrenParams, TaskChildFinishedParams,
    TaskClaimManyParams, TaskInsertParams, TaskRef, TaskRow, TaskSetStatusParams,
};

/// One status change and the children it creates.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub(crate) change: TaskSetStatusParams,
    pub(crate) children: Vec<TaskInsertParams>,
    /// Whether the write can touch no row but its task's (no parent to
    /// tell, no children to insert or cancel), so it can share a
    /// transaction with other such writes without any lock-order risk.
    pub(crate) isolated: bool,
}

impl From<TaskSetStatusParams> for Write {
    fn from(change: TaskSetStatusParams) -> Self {
        Write {
            change,
            children: Vec::new(),
            isolated: false,
        }
    }
}

/// What the engine must do once the transaction has committed.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Some task became claimable now: wake the claim loop.
    pub(crate) wake: bool,
    /// Tasks cancelled because an ancestor failed or was cancelled; their
    /// attempts running here are stopped.
    pub(crate) cancelled: Vec<i64>,
    /// Times (ms since the epoch) at which a task written here becomes due
    /// (a retry, a cron task's next run): the claim loop wakes then rather
    /// than at its next poll.
    pub(crate) due: Vec<i64>,
}

/// Applies `writes` and commits; returns,
/// per write, whether it applied, and what to do now that it committed.
///
/// On a backend with row locks and concurrent writers each write gets its
/// own transaction (see [`StoreCaps::single_writer`](crate::store::StoreCaps)),
/// committed one after the other.
pub(crate) async fn apply_all(store: &dyn Store, writes: &[Write]) -> Result<(Vec<bool>, Effects)> {
    if store.caps().single_writer || writes.len() <= 1 {
        let (applied, effects, _) =
            retry_transient(|| apply_in_one_transaction(store, writes, None)).await?;
        return Ok((applied, effects));
    }
    let mut effects = Effects::default();
    let mut applied = Vec::with_capacity(writes.len());
    for write in writes {
        let one_write = std::slice::from_ref(write);
        let (one, more, _) =
            retry_transient(|| apply_in_one_transaction(store, one_write, None)).await?;
        applied.extend(one);
        effects.merge(more);
    }
    Ok((applied, effects))
}

/// Applies `writes` in one transaction whatever the backend (again when
/// the database rolled it back to break a deadlock), and then, when
/// `claim` is given, claims in the same transaction (a single-writer
/// backend: one commit for a batch of outcomes and the claim that refills
/// their slots). For writes that lock only their own tasks' rows
/// ([`Write::isolated`]), whose tasks this worker owns: no other
/// transaction locks two of them. Returns, per write, whether it applied,
/// what to do after the commit, and the rows claimed.
pub(crate) async fn apply_together(
    store: &dyn Store,
    writes: &[Write],
    claim: Option<&TaskClaimManyParams>,
) -> Result<(Vec<bool>, Effects, Vec<TaskRow>)> {
    retry_transient(|| apply_in_one_transaction(store, writes, claim)).await
}

async fn apply_in_one_transaction(
    store: &dyn Store,
    writes: &[Write],
    claim: Option<&TaskClaimManyParams>,
) -> Result<(Vec<bool>, Effects, Vec<TaskRow>)> {
    let mut tx = store.begin().await?;
    let mut effects = Effects::default();
    let mut audit = AuditRows::default();
    let mut applied = Vec::with_capacity(writes.len());
    if batchable(writes) {
        // One statement for all the status changes (PostgreSQL); what
        // follows each is then worked out as for a single change.
        let changes: Vec<TaskSetStatusParams> = writes.iter().map(|w| w.change.clone()).collect();
        let tasks = tx.task_set_status_many(&changes).await?;
        for (write, task) in writes.iter().zip(tasks) {
            let Some(task) = task else {
                applied.push(false);
                continue;
            };
            follow_up(tx.as_mut(), write, task, &mut effects, &mut audit).await?;
            applied.push(true);
        }
    } else {
        for write in writes {
            applied.push(apply(tx.as_mut(), write, &mut effects, &mut audit).await?);
        }
    }
    let claimed = match claim {
        Some(params) => tx.task_claim_many(params).await?,
        None => Vec::new(),
    };
    for row in &claimed {
        record::claimed(row, &mut audit);
    }
    tx.audit_write(&audit).await?;
    tx.commit().await?;
    Ok((applied, effects, claimed))
}

impl Effects {
    fn merge(&mut self, other: Effects) {
        self.wake |= other.wake;
        self.cancelled.extend(other.cancelled);
        self.due.extend(other.due);
    }
}

/// Applies `write` in `tx`; returns whether its change applied (false: the
/// task was not in an allowed status, or the fence did not match, and
/// nothing was written).
pub(crate) async fn apply(
    tx: &mut dyn StoreTx,
    write: &Write,
    effects: &mut Effects,
    audit: &mut AuditRows,
) -> Result<bool> {
    let Some(task) = tx.task_set_status(&write.change).await? else {
        return Ok(false);
    };
    follow_up(tx, write, task, effects, audit).await?;
    Ok(true)
}

/// Whether `writes` can share one batched status change: more than one,
/// each touching only its own task's row, no two of the same task.
fn batchable(writes: &[Write]) -> bool {
    if writes.len() < 2 || !writes.iter().all(|w| w.isolated && w.children.is_empty()) {
        return false;
    }
    let mut ids: Vec<i64> = writes.iter().map(|w| w.change.id).collect();
    ids.sort_unstable();
    ids.windows(2).all(|pair| pair[0] != pair[1])
}

/// Everything that follows `write`'s change once it applied to `task`:
/// its audit rows, its children, waking, due times, cancelling
/// descendants and telling parents.
async fn follow_up(
    tx: &mut dyn StoreTx,
    write: &Write,
    task: TaskRef,
    effects: &mut Effects,
    audit: &mut AuditRows,
) -> Result<()> {
    record::status_changed(&write.change, &task, audit);
    if !write.children.is_empty() {
        let mut ids = Vec::with_capacity(write.children.len());
        let mut created = Vec::with_capacity(write.children.len());
        for child in &write.children {
            let id = tx.task_insert(child).await?;
            ids.push(id);
            created.push(record::created(id, child));
        }
        let names: Vec<&str> = write.children.iter().map(|c| c.name.as_str()).collect();
        record::subtasks_created(&task, &ids, &names, audit);
        audit.events.extend(created);
    }
    if !write.children.is_empty() || write.change.to() == TaskStatus::Pending {
        effects.wake = true;
    }
    match write.change.next_run {
        NextRun::AfterMs(delay) if delay > 0 => {
            effects
                .due
                .push(chrono::Utc::now().timestamp_millis().saturating_add(delay));
        }
        NextRun::AtMs(at) => effects.due.push(at),
        _ => {}
    }
    if write.change.to() == TaskStatus::PermanentlyFailed {
        let reason = format!(
            "cancelled: ancestor task {} ended permanently_failed",
            task.id
        );
        cancel_descendants(tx, task.id, &reason, effects, audit).await?;
    }
    if write.change.to().is_terminal() {
        propagate(tx, task, effects, audit).await?;
    }
    Ok(())
}

/// Tells the parents of a task that reached a terminal status, level by
/// level, for as long as a parent fails with it.
async fn propagate(
    tx: &mut dyn StoreTx,
    finished: TaskRef,
    effects: &mut Effects,
    audit: &mut AuditRows,
) -> Result<()> {
    let mut child = finished;
    loop {
        let (Some(parent_id), Some(parent_stage), Some(parent_cycle)) =
            (child.parent_id, child.parent_stage, child.parent_cycle)
        else {
            return Ok(());
        };
        // Exactly once per child, whoever gets here first.
        if !tx.task_mark_parent_notified(child.id).await? {
            return Ok(());
        }
        let counted = TaskChildFinishedParams {
            parent_id,
            parent_stage,
            parent_cycle,
        };
        let Some(parent) = tx.task_child_finished(&counted).await? else {
            // The parent is no longer waiting at that stage (it failed, was
            // cancelled or deleted): nothing to tell.
            return Ok(());
        };
        let child_status: TaskStatus = child.status.parse()?;
        let policy: ChildFailure = match parent.on_child_failure.as_deref() {
            Some(policy) => policy.parse()?,
            None => ChildFailure::default(),
        };
        let kind: TaskKind = parent.kind.parse()?;
        match plan_child_finished(child_status, policy, parent.pending_children, kind) {
            ParentPlan::Wait => return Ok(()),
            ParentPlan::Resume => {
                let change = TaskSetStatusParams::children_done(parent.id)
                    .with_detail("resume_reason", "children_completed");
                if let Some(resumed) = tx.task_set_status(&change).await? {
                    record::status_changed(&change, &resumed, audit);
                }
                effects.wake = true;
                return Ok(());
            }
            ParentPlan::Fail(transition) => {
                let error = format!(
                    "child task {} ({}) failed: {}",
                    child.id,
                    child.name,
                    child.error.as_deref().unwrap_or("no error recorded")
                );
                let change = TaskSetStatusParams::failed_by_child(parent.id, transition, error)
                    .with_detail("failed_child_id", child.id);
                let Some(failed) = tx.task_set_status(&change).await? else {
                    return Ok(());
                };
                record::status_changed(&change, &failed, audit);
                let reason = format!("cancelled: sibling task {} failed", child.id);
                cancel_descendants(tx, parent.id, &reason, effects, audit).await?;
                if !transition.target().is_terminal() {
                    // A paused (cron) parent is not finished: its own
                    // parent keeps waiting.
                    return Ok(());
                }
                child = failed;
            }
        }
    }
}

/// Cancels every unfinished descendant of `root` (children, their
/// children, ...). Cancelled tasks are not counted on their parents: those
/// are failing or cancelled themselves.
async fn cancel_descendants(
    tx: &mut dyn StoreTx,
    root: i64,
    reason: &str,
    effects: &mut Effects,
    audit: &mut AuditRows,
) -> Result<()> {
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        let params = TaskCancelChildrenParams::new(parent, reason.to_owned());
        for id in tx.task_list_unfinished_children(&params).await? {
            let change = TaskSetStatusParams::cancelled(id, reason.to_owned());
            if let Some(cancelled) = tx.task_set_status(&change).await? {
                record::status_changed(&change, &cancelled, audit);
                tx.task_mark_parent_notified(id).await?;
                effects.cancelled.push(id);
                parents.push(id);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Fence;

    fn completion(id: i64, isolated: bool) -> Write {
        let fence = Fence {
            worker_id: "w".into(),
            attempt: 1,
        };
        Write {
            change: TaskSetStatusParams::completed(id, fence, "null".into()),
            children: Vec::new(),
            isolated,
        }
    }

    #[test]
    fn isolated_writes_of_distinct_tasks_share_one_batched_change() {
        assert!(batchable(&[completion(1, true), completion(2, true)]));
    }

    #[test]
    fn a_single_write_a_shared_row_or_a_repeated_task_is_not_batched() {
        assert!(
            !batchable(&[completion(1, true)]),
            "one write: the plain statement"
        );
        assert!(!batchable(&[completion(1, true), completion(2, false)]));
        assert!(
            !batchable(&[
                completion(1, true),
                completion(2, true),
                completion(1, true)
            ]),
            "two changes of one task must apply in order"
        );
        let mut parent = completion(3, true);
        parent.children.push(TaskInsertParams {
            name: "child".into(),
            kind: TaskKind::Async,
            payload: None,
            priority: 0,
            tag: None,
            timeout_ms: 1_000,
            max_attempts: 1,
            retry_interval_ms: 0,
            next_run: NextRun::Keep,
            cron_expr: None,
            parent: None,
        });
        assert!(!batchable(&[completion(1, true), parent]));
    }
}
