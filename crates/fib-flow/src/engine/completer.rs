//! The completer: executions hand it their outcome and wait; it writes
//! whatever outcomes are waiting at once, so a busy worker pays one commit
//! for many completions instead of one each (River's batch completer):
//! on SQLite the whole batch is one transaction; on PostgreSQL and MySQL
//! the outcomes that touch only their own task (no parent, no children)
//! share one transaction and the others get one each. Each transaction
//! carries its audit rows. There is no artificial delay: while one batch
//! is being written the next one gathers.
//!
//! On a single-writer backend (SQLite) every batch of outcomes also
//! claims, in the same transaction, as many tasks as there are slots free
//! once it commits, and the claim loop sends its claims here too: every
//! write goes through one connection anyway, so a batch of outcomes and
//! the claim that refills their slots share one transaction and one
//! commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::claim::{self, Claimed, Plan};
use super::workflow::{self, Effects, Write};
use super::Shared;
use crate::error::{Error, Result};
use crate::store::{TaskClaimManyParams, TaskRow};

/// Most outcomes written in one call.
const MAX_BATCH: usize = 256;

/// Most times the completer yields to let executions that are about to
/// hand in their outcome do so before it writes a batch (see [`gather`]).
pub(crate) const GATHER_YIELDS: usize = 4;

/// Delays between tries of a batch that hit a database error. Every change
/// is fenced, and a failed transaction is rolled back whole, so a retried
/// batch can never apply a change twice.
const WRITE_RETRY_DELAYS: [Duration; 4] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// One outcome waiting to be written, and who to tell.
pub(crate) struct Pending {
    write: Write,
    done: oneshot::Sender<Result<bool>>,
}

/// A claim round waiting to share the next transaction (planned when it
/// is written), and who to tell what it claimed.
pub(crate) struct ClaimRequest {
    done: oneshot::Sender<Result<Claimed>>,
}

/// What the completer is asked to write.
pub(crate) enum Job {
    Outcome(Box<Pending>),
    Claim(ClaimRequest),
}

/// The sending side, held by the shared state.
pub(crate) type Queue = mpsc::UnboundedSender<Job>;

/// The receiving side, taken by the completer service when it starts.
pub(crate) type Inbox = mpsc::UnboundedReceiver<Job>;

pub(crate) fn queue() -> (Queue, Inbox) {
    mpsc::unbounded_channel()
}

fn stopped<T>(what: &str) -> Result<T> {
    Err(Error::Lifecycle {
        state: "stopped",
        reason: format!("the completer has stopped; {what}"),
    })
}

/// Writes one outcome through the completer; returns whether it applied
/// (false: the attempt had lost its task).
pub(crate) async fn write(shared: &Shared, write: Write) -> Result<bool> {
    let (done, result) = oneshot::channel();
    if shared
        .completer
        .send(Job::Outcome(Box::new(Pending { write, done })))
        .is_err()
    {
        return stopped("the outcome was not written");
    }
    result
        .await
        .unwrap_or_else(|_| stopped("the outcome was not written"))
}

/// Claims through the completer, in the transaction of its next batch
/// (single-writer backends), as many tasks as there are free slots then;
/// their executions are started by the time this returns.
pub(crate) async fn claim(shared: &Shared) -> Result<Claimed> {
    let (done, result) = oneshot::channel();
    if shared
        .completer
        .send(Job::Claim(ClaimRequest { done }))
        .is_err()
    {
        return stopped("nothing was claimed");
    }
    result
        .await
        .unwrap_or_else(|_| stopped("nothing was claimed"))
}

/// Outcomes and claims taken from the inbox together.
#[derive(Default)]
struct Batch {
    outcomes: Vec<Pending>,
    claims: Vec<ClaimRequest>,
}

impl Batch {
    fn push(&mut self, job: Job) {
        match job {
            Job::Outcome(pending) => self.outcomes.push(*pending),
            Job::Claim(request) => self.claims.push(request),
        }
    }

    /// Takes whatever is waiting, up to [`MAX_BATCH`] outcomes; returns
    /// whether anything was.
    fn fill(&mut self, inbox: &mut Inbox) -> bool {
        let mut took = false;
        while self.outcomes.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(job) => {
                    self.push(job);
                    took = true;
                }
                Err(_) => break,
            }
        }
        took
    }

    fn is_empty(&self) -> bool {
        self.outcomes.is_empty() && self.claims.is_empty()
    }
}

/// The service loop. Runs until the services stop; by then every execution
/// has finished, and anything still queued is written before it returns.
pub(crate) async fn run(shared: Arc<Shared>, mut inbox: Inbox) {
    loop {
        let first = tokio::select! {
            first = inbox.recv() => first,
            () = shared.stop_services.cancelled() => None,
        };
        let Some(first) = first else {
            // Stopping: write what is left, then end.
            loop {
                let mut batch = Batch::default();
                batch.fill(&mut inbox);
                if batch.is_empty() {
                    return;
                }
                write_batch(&shared, batch).await;
            }
        };
        let mut batch = Batch::default();
        batch.push(first);
        batch.fill(&mut inbox);
        gather(&mut inbox, &mut batch).await;
        write_batch(&shared, batch).await;
    }
}

/// Lets executions that are about to hand in their outcome (handlers that
/// just returned, often on this very thread's run queue) do so before the
/// batch is written: yields to the scheduler, again while each yield
/// brings more, at most [`GATHER_YIELDS`] times. No timer: a lone outcome
/// of an otherwise idle worker is written at once.
async fn gather(inbox: &mut Inbox, batch: &mut Batch) {
    for _ in 0..GATHER_YIELDS {
        if batch.outcomes.len() >= MAX_BATCH {
            return;
        }
        tokio::task::yield_now().await;
        if !batch.fill(inbox) {
            return;
        }
    }
}

async fn write_batch(shared: &Arc<Shared>, batch: Batch) {
    let Batch { outcomes, claims } = batch;
    if !shared.store.caps().single_writer {
        // Row locks and concurrent writers: outcomes that touch only their
        // own task's row share one transaction (no lock-order risk: this
        // worker owns those rows); the others, which may lock parents and
        // children, get one transaction each, written side by side (see
        // StoreCaps::single_writer). Claims (not sent here on these
        // backends) get their own.
        let (mut isolated, others): (Vec<_>, Vec<_>) =
            outcomes.into_iter().partition(|p| p.write.isolated);
        isolated.sort_by_key(|p| p.write.change.id);
        let one_by_one =
            futures::future::join_all(others.into_iter().map(|pending| write_one(shared, pending)));
        let together = async {
            match isolated.len() {
                0 => {}
                1 => write_one(shared, isolated.remove(0)).await,
                _ => write_together(shared, isolated, None, Vec::new()).await,
            }
        };
        futures::future::join(one_by_one, together).await;
        if !claims.is_empty() {
            claim_alone(shared, claims).await;
        }
        return;
    }
    // One writer: the outcomes and a claim of every slot free once they
    // are written share one transaction, whether the claim loop asked or
    // not.
    let plan = claim::plan(shared, outcomes.len());
    write_together(shared, outcomes, plan, claims).await;
}

/// Claims in a transaction of its own, planned now, and replies to each
/// request (the claim loop has one in flight at a time).
async fn claim_alone(shared: &Arc<Shared>, claims: Vec<ClaimRequest>) {
    let result = match claim::plan(shared, 0) {
        None => Ok(Claimed::NoCapacity),
        Some(plan) => claim::claim_with_audit(shared.store.as_ref(), &plan.params)
            .await
            .map(|rows| claim::start(shared, &plan, rows)),
    };
    reply_claims(claims, result);
}

/// Gives the first request `result`, any other "no capacity" (the round
/// claimed for them all).
fn reply_claims(claims: Vec<ClaimRequest>, result: Result<Claimed>) {
    let mut result = Some(result);
    for request in claims {
        let _ = request
            .done
            .send(result.take().unwrap_or(Ok(Claimed::NoCapacity)));
    }
}

/// Writes a batch in one transaction (with retries), claiming in it too
/// when `plan` is given; starts the claimed tasks and replies to each.
async fn write_together(
    shared: &Arc<Shared>,
    batch: Vec<Pending>,
    plan: Option<Plan>,
    claims: Vec<ClaimRequest>,
) {
    let (writes, waiting): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.done)).unzip();
    if writes.is_empty() && plan.is_none() {
        reply_claims(claims, Ok(Claimed::NoCapacity));
        return;
    }
    tracing::trace!(
        outcomes = writes.len(),
        claim = plan.is_some(),
        "writing a batch of outcomes"
    );
    let params = plan.as_ref().map(|plan| &plan.params);
    match write_with_retries(shared, &writes, params).await {
        Ok((applied, effects, claimed)) => {
            shared.after_commit(effects);
            let round = match &plan {
                Some(plan) => claim::start(shared, plan, claimed),
                None => Claimed::NoCapacity,
            };
            for (done, applied) in waiting.into_iter().zip(applied) {
                let _ = done.send(Ok(applied));
            }
            reply_claims(claims, Ok(round));
        }
        // Not a database error (a corrupt row, say): write the outcomes one
        // by one, and claim on its own, so that one bad outcome does not
        // sink the others.
        Err(error) if writes.len() > 1 || plan.is_some() => {
            tracing::warn!(%error, "a batch of outcomes failed; writing them one by one");
            for (write, done) in writes.into_iter().zip(waiting) {
                let result = write_with_retries(shared, std::slice::from_ref(&write), None).await;
                let _ = done.send(result.map(|(applied, effects, _)| {
                    shared.after_commit(effects);
                    applied.first().copied().unwrap_or(false)
                }));
            }
            claim_alone(shared, claims).await;
        }
        Err(error) => {
            for done in waiting {
                let _ = done.send(Err(Error::Lifecycle {
                    state: "running",
                    reason: format!("recording the outcome failed: {error}"),
                }));
            }
            reply_claims(claims, Ok(Claimed::NoCapacity));
        }
    }
}

/// Writes one outcome in its own transaction (with retries) and replies.
async fn write_one(shared: &Shared, pending: Pending) {
    let result = write_with_retries(shared, std::slice::from_ref(&pending.write), None).await;
    let _ = pending.done.send(result.map(|(applied, effects, _)| {
        shared.after_commit(effects);
        applied.first().copied().unwrap_or(false)
    }));
}

/// Writes a batch in one transaction (claiming in it when `claim` is
/// given), trying again on database errors (a busy or briefly unreachable
/// database, a deadlock victim) so that finished attempts are not
/// stranded.
async fn write_with_retries(
    shared: &Shared,
    writes: &[Write],
    claim: Option<&TaskClaimManyParams>,
) -> Result<(Vec<bool>, Effects, Vec<TaskRow>)> {
    let mut delays = WRITE_RETRY_DELAYS.iter();
    loop {
        match workflow::apply_together(shared.store.as_ref(), writes, claim).await {
            Ok(done) => return Ok(done),
            Err(Error::Database(error)) => match delays.next() {
                Some(delay) => {
                    tracing::warn!(%error, ?delay, "recording outcomes failed; trying again");
                    tokio::time::sleep(*delay).await;
                }
                None => return Err(Error::Database(error)),
            },
            Err(other) => return Err(other),
        }
    }
}
