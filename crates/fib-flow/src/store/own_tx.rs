//! Commands that carry their own transaction (`BEGIN … COMMIT` inside the
//! command's text, or inside the stored procedure it calls): one round
//! trip instead of one per statement plus two.
//! The driver does not know about a transaction begun that way, so the
//! connection must never go back to the pool with it open: [`OwnTxConn`]
//! closes the connection unless the command ran to its end.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

use crate::error::Result;

/// A pooled connection checked out for one command that begins and commits
/// its own transaction. Dropped before [`OwnTxConn::finished`] (the command
/// failed part-way, or its future was dropped mid-flight), it closes the
/// connection instead of returning it to the pool: the database rolls back
/// whatever the command left open, and the pool opens a fresh connection
/// when one is next needed.
pub(crate) struct OwnTxConn<DB: Database> {
    conn: PoolConnection<DB>,
    finished: bool,
}

impl<DB: Database> OwnTxConn<DB> {
    /// Checks a connection out of `pool`.
    pub(crate) async fn acquire(pool: &Pool<DB>) -> Result<Self> {
        Ok(OwnTxConn {
            conn: pool.acquire().await?,
            finished: false,
        })
    }

    /// The connection to run the command on. Read every row the command
    /// returns (`fetch_all`, `execute`): a fetch that stops early leaves
    /// the statements after it, `COMMIT` among them, unrun.
    pub(crate) fn conn(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    /// The command ran to its end: its transaction is committed, and the
    /// connection may go back to the pool.
    pub(crate) fn finished(mut self) {
        self.finished = true;
    }
}

impl<DB: Database> Drop for OwnTxConn<DB> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}
