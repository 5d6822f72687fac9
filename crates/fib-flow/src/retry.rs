//! Running a whole transaction again when the database rolled it back to
//! break a deadlock: the engine's transactions and the MySQL store's
//! single-statement writes share this one loop.

use std::time::Duration;

use crate::error::Result;

/// How often a transaction the database rolled back to break a deadlock is
/// run again.
const TRANSIENT_TRIES: u32 = 5;

/// Runs `op` (one whole transaction) again, after a short growing pause,
/// when the database rolled it back to break a deadlock: nothing of it was
/// written, so running it again is safe.
pub(crate) async fn retry_transient<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match op().await {
            Err(error) if tries < TRANSIENT_TRIES && error.is_transient() => {
                tracing::debug!(%error, tries, "transaction rolled back by the database; trying again");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::Error;

    #[tokio::test]
    async fn an_error_that_is_not_transient_is_returned_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = retry_transient(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::invalid("x", "bad"))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!Error::invalid("x", "bad").is_transient());
    }

    #[tokio::test]
    async fn a_success_is_returned_as_is() {
        assert_eq!(retry_transient(|| async { Ok(7) }).await.unwrap(), 7);
    }
}
