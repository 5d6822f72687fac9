//! This process in the worker registry (only with a `pod_id`): it
//! registers at start (superseding an older worker of its pod and taking
//! back that worker's running tasks), renews its lease every
//! `worker_heartbeat_interval`, stops claiming while another worker of its
//! pod is active ("fenced"), registers again when it finds itself reaped
//! with no successor, and marks itself `stopped` on `stop()`.

use std::sync::Arc;

use super::{recovery, Shared};
use crate::config::millis;
use crate::error::Result;
use crate::store::{WorkerHeartbeatParams, WorkerListParams, WorkerRegisterParams};
use crate::workers::{presence, Presence, WorkerStatus};

/// Registers this process (when it has a pod id) and recovers the running
/// tasks of the workers it superseded.
pub(crate) async fn register(shared: &Shared) -> Result<()> {
    let Some(pod_id) = shared.config.pod_id.clone() else {
        return Ok(());
    };
    let registration = shared
        .store
        .worker_register(&params(shared, &pod_id, false))
        .await?;
    shared.fenced.send_replace(false);
    tracing::info!(%pod_id, superseded = ?registration.superseded, "registered in the worker registry");
    if !registration.superseded.is_empty() && shared.config.recover_running_jobs {
        let recovered = recovery::run(shared).await?;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "took back the running tasks of superseded workers"
            );
        }
    }
    Ok(())
}

fn params(shared: &Shared, pod_id: &str, again: bool) -> WorkerRegisterParams {
    let mut meta = serde_json::json!({
        "pid": std::process::id(),
        "host": host_name(),
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": shared.built_at.to_rfc3339(),
    });
    if again {
        meta["recovered_at"] = serde_json::json!(chrono::Utc::now().to_rfc3339());
    }
    WorkerRegisterParams {
        worker_id: shared.config.worker_id.clone(),
        pod_id: pod_id.to_owned(),
        ttl_ms: millis(shared.config.worker_heartbeat_timeout),
        meta: Some(meta.to_string()),
    }
}

/// The host name from the environment, where one is set.
fn host_name() -> Option<String> {
    ["HOSTNAME", "COMPUTERNAME"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

pub(crate) async fn run(shared: Arc<Shared>) {
    if shared.config.pod_id.is_none() {
        return;
    }
    let mut interval = tokio::time::interval(shared.config.worker_heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await; // registered just now
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.stop_services.cancelled() => return,
        }
        if let Err(error) = heartbeat_once(&shared).await {
            tracing::warn!(%error, "worker heartbeat failed");
        }
    }
}

/// Renews this worker's lease and applies the presence rule; returns what
/// it decided.
pub(crate) async fn heartbeat_once(shared: &Shared) -> Result<Presence> {
    let Some(pod_id) = shared.config.pod_id.clone() else {
        return Ok(Presence::Active);
    };
    let me = &shared.config.worker_id;
    let renewed = shared
        .store
        .worker_heartbeat(&WorkerHeartbeatParams {
            worker_id: me.clone(),
            ttl_ms: millis(shared.config.worker_heartbeat_timeout),
        })
        .await?;
    let own = renewed
        .map(|row| row.status.parse::<WorkerStatus>())
        .transpose()?;
    let peers = if own == Some(WorkerStatus::Active) {
        0
    } else {
        let list = WorkerListParams {
            pod_id: Some(pod_id.clone()),
            status: Some(WorkerStatus::Active.as_str().to_owned()),
        };
        let active = shared.store.worker_list(&list).await?;
        active.iter().filter(|w| &w.worker_id != me).count()
    };
    let decision = presence(own, peers);
    let was_fenced = *shared.fenced.borrow();
    match decision {
        Presence::Active => {
            if was_fenced {
                tracing::info!("worker is active again; claiming");
            }
            shared.fenced.send_replace(false);
        }
        Presence::Fenced => {
            if !was_fenced {
                tracing::warn!(
                    status = ?own,
                    "another worker of this pod is active; this one stops claiming"
                );
            }
            shared.fenced.send_replace(true);
        }
        Presence::Reregister => {
            tracing::warn!(status = ?own, "worker lease was lost with no successor; registering again");
            shared
                .store
                .worker_register(&params(shared, &pod_id, true))
                .await?;
            shared.fenced.send_replace(false);
            shared.wake.notify_one();
        }
    }
    Ok(decision)
}

/// Marks this worker `stopped` (on `stop()`, after its tasks were
/// finished or released).
pub(crate) async fn deregister(shared: &Shared) {
    if shared.config.pod_id.is_none() {
        return;
    }
    match shared.store.worker_stop(&shared.config.worker_id).await {
        Ok(_) => tracing::info!("worker marked stopped in the registry"),
        Err(error) => {
            tracing::warn!(%error, "could not mark the worker stopped; it will be reaped when its lease lapses")
        }
    }
}
