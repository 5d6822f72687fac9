//! Connection pool settings shared by the network backends (PostgreSQL,
//! MySQL / MariaDB).
//!
//! sqlx pings every connection it hands out by default: one extra round
//! trip before every statement or transaction, about a fifth of a one-row
//! commit on loopback. A connection handed back a moment ago is as alive
//! as it was then, so the pool pings only one that sat idle for
//! [`PING_IDLE_AFTER`] or longer (pgxpool's rule, which River relies on).
//! The price: a connection the server killed within that second fails the
//! one operation that finds it dead (a submit returns the error; the worker
//! loops log it and go on), and sqlx closes it when it comes back to the
//! pool (its ping on release fails), so the pool opens a fresh one
//! (`tests/connection_loss.rs`).

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

/// Connections per pool of a network backend.
const MAX_CONNECTIONS: u32 = 10;

/// A pooled connection idle for this long is pinged before it is handed
/// out; one used more recently is handed out as it is.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Pool options of a network backend: [`MAX_CONNECTIONS`], and a ping
/// only for connections idle for [`PING_IDLE_AFTER`] or longer.
pub(super) fn network_pool<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .test_before_acquire(false)
        .before_acquire(|conn: &mut DB::Connection, meta| {
            Box::pin(async move {
                if needs_ping(meta.idle_for) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Whether a connection idle for `idle_for` must be pinged before it is
/// handed out.
fn needs_ping(idle_for: Duration) -> bool {
    idle_for >= PING_IDLE_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_handed_back_a_moment_ago_is_not_pinged() {
        assert!(!needs_ping(Duration::from_millis(999)));
    }

    #[test]
    fn a_connection_idle_for_a_second_or_more_is_pinged() {
        assert!(needs_ping(PING_IDLE_AFTER));
        assert!(needs_ping(Duration::from_secs(300)));
    }
}
