//! The maintenance lease: one node at a time runs maintenance (reaping
//! workers, recovering their tasks, timing out lapsed tasks, retention).
//! Every started manager campaigns every `worker_heartbeat_interval`; the
//! holder renews the lease, and another node takes it once it lapsed
//! (`worker_heartbeat_timeout` after the last renewal). A stopping holder
//! gives it up so a peer takes over at its next campaign. A process built
//! with `maintenance(false)` never campaigns.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Shared;
use crate::error::Result;
use crate::store::{LeaseAcquireParams, LeaseReleaseParams};
use crate::workers::MAINTENANCE_LEASE;

/// This process's view of the maintenance lease.
#[derive(Debug, Default)]
pub(crate) struct Leadership {
    /// Until when this process holds the lease, by its own clock: the
    /// campaign's start plus the lease length, so it never believes it
    /// holds a lease the database already let lapse.
    until: Mutex<Option<Instant>>,
    /// Signalled when this process becomes the maintenance node, so it
    /// runs a pass at once.
    pub(crate) gained: Notify,
}

impl Leadership {
    /// Whether this process holds the maintenance lease now.
    pub(crate) fn is_leader(&self) -> bool {
        self.until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    /// Records the outcome of a campaign (the local deadline of the lease
    /// it holds, if any); returns whether this process just became the
    /// leader.
    fn record(&self, held: Option<Instant>) -> bool {
        let now = Instant::now();
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let was = until.is_some_and(|at| now < at);
        *until = held;
        held.is_some_and(|at| now < at) && !was
    }

    fn clear(&self) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

pub(crate) async fn run(shared: Arc<Shared>) {
    if !shared.config.maintenance {
        return;
    }
    let mut interval = tokio::time::interval(shared.config.worker_heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.stop_services.cancelled() => break,
        }
        if let Err(error) = campaign_once(&shared).await {
            // The local deadline lets a lease this process cannot renew
            // lapse on its own.
            tracing::warn!(%error, "maintenance lease campaign failed");
        }
    }
    resign(&shared).await;
}

/// Takes or renews the maintenance lease; returns whether this process
/// holds it.
pub(crate) async fn campaign_once(shared: &Shared) -> Result<bool> {
    let started = Instant::now();
    let ttl = shared.config.worker_heartbeat_timeout;
    let params = LeaseAcquireParams {
        name: MAINTENANCE_LEASE.to_owned(),
        holder: shared.config.worker_id.clone(),
        ttl_ms: crate::config::millis(ttl),
    };
    let held = shared.store.lease_acquire(&params).await?.is_some();
    if shared.leadership.record(held.then(|| started + ttl)) {
        tracing::info!("this node now runs maintenance");
        shared.leadership.gained.notify_one();
    }
    Ok(held)
}

/// Gives the lease up (on stop), so a peer takes over at once.
async fn resign(shared: &Shared) {
    if !shared.leadership.is_leader() {
        return;
    }
    shared.leadership.clear();
    let params = LeaseReleaseParams {
        name: MAINTENANCE_LEASE.to_owned(),
        holder: shared.config.worker_id.clone(),
    };
    match shared.store.lease_release(&params).await {
        Ok(_) => tracing::info!("gave up the maintenance lease"),
        Err(error) => {
            tracing::warn!(%error, "could not give up the maintenance lease; it lapses on its own")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn leadership_lasts_until_its_local_deadline() {
        let leadership = Leadership::default();
        assert!(!leadership.is_leader());
        let now = Instant::now();
        assert!(
            leadership.record(Some(now + Duration::from_secs(60))),
            "gained"
        );
        assert!(leadership.is_leader());
        assert!(
            !leadership.record(Some(now + Duration::from_secs(90))),
            "renewed, not gained"
        );
        assert!(!leadership.record(None), "lost");
        assert!(!leadership.is_leader());
        assert!(
            !leadership.record(Some(now)),
            "a deadline already past holds nothing"
        );
        assert!(!leadership.is_leader());
    }
}
