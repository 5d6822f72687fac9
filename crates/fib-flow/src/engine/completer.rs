//! The completer: executions hand it their outcome and wait; it writes
//! whatever outcomes are waiting at once, so a busy worker pays one commit
//! for many completions instead of one each (River's batch completer):
//! on SQLite the whole batch is one transaction; on PostgreSQL and MySQL
//! the outcomes that touch only their own task (no parent, no children)
//! share one transaction and the others get one each. Each transaction
//! carries its audit rows. There is no artificial delay: while one batch
//! is being written the next one gathers.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::workflow::{self, Effects, Write};
use super::Shared;
use crate::error::{Error, Result};

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

/// The sending side, held by the shared state.
pub(crate) type Queue = mpsc::UnboundedSender<Pending>;

/// The receiving side, taken by the completer service when it starts.
pub(crate) type Inbox = mpsc::UnboundedReceiver<Pending>;

pub(crate) fn queue() -> (Queue, Inbox) {
    mpsc::unbounded_channel()
}

/// Writes one outcome through the completer; returns whether it applied
/// (false: the attempt had lost its task).
pub(crate) async fn write(shared: &Shared, write: Write) -> Result<bool> {
    let (done, result) = oneshot::channel();
    if shared.completer.send(Pending { write, done }).is_err() {
        return Err(Error::Lifecycle {
            state: "stopped",
            reason: "the completer has stopped; the outcome was not written".into(),
        });
    }
    result.await.unwrap_or_else(|_| {
        Err(Error::Lifecycle {
            state: "stopped",
            reason: "the completer stopped before writing the outcome".into(),
        })
    })
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

/// `first` plus whatever else is already waiting, up to [`MAX_BATCH`].
fn take_batch(inbox: &mut Inbox, first: Option<Pending>) -> Option<Vec<Pending>> {
    let mut batch: Vec<Pending> = first.into_iter().collect();
    while batch.len() < MAX_BATCH {
        match inbox.try_recv() {
            Ok(pending) => batch.push(pending),
            Err(_) => break,
        }
    }
    (!batch.is_empty()).then_some(batch)
}

async fn write_batch(shared: &Shared, batch: Vec<Pending>) {
    if !shared.store.caps().single_writer {
        // Row locks and concurrent writers: outcomes that touch only their
        // own task's row share one transaction (no lock-order risk: this
        // worker owns those rows); the others, which may lock parents and
        // children, get one transaction each, written side by side (see
        // StoreCaps::single_writer).
        let (mut isolated, others): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|p| p.write.isolated);
        isolated.sort_by_key(|p| p.write.change.id);
        let one_by_one =
            futures::future::join_all(others.into_iter().map(|pending| write_one(shared, pending)));
        let together = async {
            match isolated.len() {
                0 => {}
                1 => write_one(shared, isolated.remove(0)).await,
                _ => write_together(shared, isolated).await,
            }
        };
        futures::future::join(one_by_one, together).await;
        return;
    }
    write_together(shared, batch).await;
}

/// Writes a batch in one transaction (with retries); replies to each.
async fn write_together(shared: &Shared, batch: Vec<Pending>) {
    let (writes, waiting): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.done)).unzip();
    tracing::trace!(outcomes = writes.len(), "writing a batch of outcomes");
    match write_with_retries(shared, &writes).await {
        Ok((applied, effects)) => {
            shared.after_commit(effects);
            for (done, applied) in waiting.into_iter().zip(applied) {
                let _ = done.send(Ok(applied));
            }
        }
        // Not a database error (a corrupt row, say): write the outcomes one
        // by one so that one bad outcome does not sink the others.
        Err(error) if writes.len() > 1 => {
            tracing::warn!(%error, "a batch of outcomes failed; writing them one by one");
            for (write, done) in writes.into_iter().zip(waiting) {
                let result = write_with_retries(shared, std::slice::from_ref(&write)).await;
                let _ = done.send(result.map(|(applied, effects)| {
                    shared.after_commit(effects);
                    applied.first().copied().unwrap_or(false)
                }));
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
    let result = write_with_retries(shared, std::slice::from_ref(&pending.write)).await;
    let _ = pending.done.send(result.map(|(applied, effects)| {
        shared.after_commit(effects);
        applied.first().copied().unwrap_or(false)
    }));
}

/// Writes a batch in one transaction, trying again on database errors (a
/// busy or briefly unreachable database, a deadlock victim) so that
/// finished attempts are not stranded.
async fn write_with_retries(shared: &Shared, writes: &[Write]) -> Result<(Vec<bool>, Effects)> {
    let mut delays = WRITE_RETRY_DELAYS.iter();
    loop {
        match workflow::apply_together(shared.store.as_ref(), writes).await {
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
