//! `LISTEN` on the schema's channel and turn every notification into a
//! local wake-up; reconnect with backoff after a lost connection. Polling
//! remains the fallback, so a missed notification costs at most one poll
//! interval.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) fn spawn(pool: PgPool, channel: String, wake: Arc<Notify>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                connected = connect(&pool, &channel) => connected,
            };
            let mut listener = match connected {
                Ok(listener) => listener,
                // The store closed its pool (the manager stopped): done.
                Err(_) if pool.is_closed() => return,
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "LISTEN failed; trying again");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            // Anything submitted while we were not listening is found now.
            wake.notify_one();
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(_)) => wake.notify_one(),
                    // The connection dropped; the listener reconnects and
                    // re-subscribes on the next call. Look for missed work.
                    Ok(None) => {
                        tracing::debug!("LISTEN connection lost; reconnecting");
                        wake.notify_one();
                    }
                    Err(_) if pool.is_closed() => return,
                    Err(error) => {
                        tracing::warn!(%error, "LISTEN connection failed; reconnecting");
                        break;
                    }
                }
            }
        }
    });
}

async fn connect(pool: &PgPool, channel: &str) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
