//! The completer: executions hand it their outcome and wait; it writes
//! whatever outcomes are waiting at once, so a busy worker pays one commit
//! for many completions instead of one each (River's batch completer):
//! on SQLite the whole batch is one transaction; on PostgreSQL and MySQL
//! the outcomes that touch only their own task (no parent, no children)
//! share one transaction and the others get one each. Each transaction
//! carries its audit rows. There is no artificial delay: while one batch
//! is being written the next one gathers.
//!
//! On a single-writer backend (SQLite) the claim loop sends its claims
//! here too: every write goes through one connection anyway, so a batch
//! of outcomes and the claim that refills their slots share one
//! transaction and one commit.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::workflow::{self, Effects, Write};
use super::{claim, Shared};
use crate::error::{Error, Result};
use crate::store::{TaskClaimManyParams, TaskRow};

/// Most outcomes written in one call.
const MAX_BATCH: usize = 256;

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

/// A claim round waiting to share the next transaction, and who to give
/// the claimed rows.
pub(crate) struct ClaimRequest {
    params: TaskClaimManyParams,
    done: oneshot::Sender<Result<Vec<TaskRow>>>,
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
/// (single-writer backends); returns the claimed rows.
pub(crate) async fn claim(shared: &Shared, params: TaskClaimManyParams) -> Result<Vec<TaskRow>> {
    let (done, result) = oneshot::channel();
    if shared
        .completer
        .send(Job::Claim(ClaimRequest { params, done }))
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
}

/// The service loop. Runs until the services stop; by then every execution
/// has finished, and anything still queued is written before it returns.
pub(crate) async fn run(shared: std::sync::Arc<Shared>, mut inbox: Inbox) {
    loop {
        let first = tokio::select! {
            first = inbox.recv() => first,
            () = shared.stop_services.cancelled() => None,
        };
        let Some(first) = first else {
            // Stopping: write what is left, then end.
            while let Some(batch) = take_batch(&mut inbox, None) {
                write_batch(&shared, batch).await;
            }
            return;
        };
        if let Some(batch) = take_batch(&mut inbox, Some(first)) {
            write_batch(&shared, batch).await;
        }
    }
}

/// `first` plus whatever else is already waiting, up to [`MAX_BATCH`]
/// outcomes.
fn take_batch(inbox: &mut Inbox, first: Option<Job>) -> Option<Batch> {
    let mut batch = Batch::default();
    if let Some(job) = first {
        batch.push(job);
    }
    while batch.outcomes.len() < MAX_BATCH {
        match inbox.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    (!batch.outcomes.is_empty() || !batch.claims.is_empty()).then_some(batch)
}

async fn write_batch(shared: &Shared, batch: Batch) {
    let Batch {
        outcomes,
        mut claims,
    } = batch;
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
                _ => write_together(shared, isolated, None).await,
            }
        };
        futures::future::join(one_by_one, together).await;
        for request in claims {
            claim_alone(shared, request).await;
        }
        return;
    }
    // One writer: the outcomes and one claim share a transaction (the
    // claim loop has one claim in flight at a time, so there is at most
    // one; any other gets its own).
    let first = (!claims.is_empty()).then(|| claims.remove(0));
    write_together(shared, outcomes, first).await;
    for request in claims {
        claim_alone(shared, request).await;
    }
}

/// Claims in a transaction of its own and replies.
async fn claim_alone(shared: &Shared, request: ClaimRequest) {
    let result = claim::claim_with_audit(shared.store.as_ref(), &request.params).await;
    let _ = request.done.send(result);
}

/// Writes a batch in one transaction (with retries), claiming in it too
/// when `claim` is given; replies to each.
async fn write_together(shared: &Shared, batch: Vec<Pending>, claim: Option<ClaimRequest>) {
    let (writes, waiting): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.done)).unzip();
    tracing::trace!(
        outcomes = writes.len(),
        claim = claim.is_some(),
        "writing a batch of outcomes"
    );
    let params = claim.as_ref().map(|request| &request.params);
    match write_with_retries(shared, &writes, params).await {
        Ok((applied, effects, claimed)) => {
            shared.after_commit(effects);
            for (done, applied) in waiting.into_iter().zip(applied) {
                let _ = done.send(Ok(applied));
            }
            if let Some(request) = claim {
                let _ = request.done.send(Ok(claimed));
            }
        }
        // Not a database error (a corrupt row, say): write the outcomes one
        // by one, and claim on its own, so that one bad outcome does not
        // sink the others.
        Err(error) if writes.len() > 1 || claim.is_some() => {
            tracing::warn!(%error, "a batch of outcomes failed; writing them one by one");
            for (write, done) in writes.into_iter().zip(waiting) {
                let result = write_with_retries(shared, std::slice::from_ref(&write), None).await;
                let _ = done.send(result.map(|(applied, effects, _)| {
                    shared.after_commit(effects);
                    applied.first().copied().unwrap_or(false)
                }));
            }
            if let Some(request) = claim {
                claim_alone(shared, request).await;
            }
        }
        Err(error) => {
            for done in waiting {
                let _ = done.send(Err(Error::Lifecycle {
                    state: "running",
                    reason: format!("recording the outcome failed: {error}"),
                }));
            }
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
