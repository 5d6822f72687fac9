//! Automatic retention: every `retention.interval`, delete the finished
//! workflows the configured policy makes eligible, batch by batch.
//!
//! Only the node holding the maintenance lease runs it (deletes are
//! idempotent and skip rows another node is deleting, so a brief overlap
//! while the lease changes hands is harmless).

use std::sync::Arc;

use super::Shared;
use crate::audit::queries::retention_run;

pub(crate) async fn run(shared: Arc<Shared>) {
    let Some(policy) = shared.config.retention.clone() else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(policy.interval) => {}
            () = shared.stop_services.cancelled() => return,
        }
        if !shared.leadership.is_leader() {
            continue;
        }
        match retention_run(shared.store.as_ref(), &policy).await {
            Ok(report) if report.tasks_deleted > 0 => tracing::info!(
                tasks = report.tasks_deleted,
                events = report.events_deleted,
                attempts = report.attempts_deleted,
                "retention deleted expired workflows"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention failed; trying again next interval"),
        }
    }
}
