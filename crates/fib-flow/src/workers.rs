//! The worker registry as users see it: [`WorkerRecord`]s (one per process
//! start of a manager with a `pod_id`), their [`WorkerStatus`], the
//! [`WorkerFilter`] of [`TaskManager::workers`](crate::TaskManager::workers),
//! and the [`MaintenanceLeader`]. See `docs/worker-recovery.md`.
//!
//! The rules a worker follows about its own registration are pure functions
//! here (`presence`), so they are tested without a database.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::check_identifier;
use crate::error::{Error, Result};
use crate::manager::TaskManager;
use crate::store::row::{json_column, parse_column, time_column};
use crate::store::{
    LeaseRow, WorkerListParams, WorkerRow, WORKER_ACTIVE, WORKER_DEAD, WORKER_STOPPED,
    WORKER_SUPERSEDED,
};

/// Where a registered worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Holds its lease: it renews it, claims tasks, and owns what it runs.
    Active,
    /// A newer worker of the same pod started; it may not claim, and its
    /// running tasks were taken back.
    Superseded,
    /// Its lease lapsed (the process died or stalled); its running tasks
    /// were taken back.
    Dead,
    /// It stopped gracefully (`stop()`), after releasing its tasks.
    Stopped,
}

impl WorkerStatus {
    /// Every status.
    pub const ALL: [WorkerStatus; 4] = [
        WorkerStatus::Active,
        WorkerStatus::Superseded,
        WorkerStatus::Dead,
        WorkerStatus::Stopped,
    ];

    /// The stored name (`active`, `superseded`, `dead`, `stopped`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Active => WORKER_ACTIVE,
            WorkerStatus::Superseded => WORKER_SUPERSEDED,
            WorkerStatus::Dead => WORKER_DEAD,
            WorkerStatus::Stopped => WORKER_STOPPED,
        }
    }

    /// The `recovery_reason` of a task taken back from a worker in this
    /// status (`None` for an active worker, whose tasks are its own).
    pub fn recovery_reason(self) -> Option<&'static str> {
        match self {
            WorkerStatus::Active => None,
            WorkerStatus::Superseded => Some("worker_superseded"),
            WorkerStatus::Dead => Some("worker_dead"),
            WorkerStatus::Stopped => Some("worker_stopped"),
        }
    }
}

impl fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkerStatus {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        WorkerStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| Error::InvalidInput {
                field: "status",
                reason: format!(
                    "unknown worker status {value:?}; expected active, superseded, dead or stopped"
                ),
            })
    }
}

/// One registered worker (a process started with a `pod_id`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRecord {
    /// Unique per process start.
    pub worker_id: String,
    /// The stable node identity it registered under.
    pub pod_id: String,
    /// Where it is in its life.
    pub status: WorkerStatus,
    /// When it registered.
    pub registered_at: DateTime<Utc>,
    /// Its newest registration or lease renewal.
    pub last_seen_at: DateTime<Utc>,
    /// When its lease ends unless renewed (a past time with status
    /// `active` means it is about to be reaped).
    pub expires_at: DateTime<Utc>,
    /// When a newer worker of its pod superseded it.
    pub superseded_at: Option<DateTime<Utc>>,
    /// The worker that superseded it.
    pub superseded_by: Option<String>,
    /// When it was reaped as dead.
    pub dead_at: Option<DateTime<Utc>>,
    /// When it stopped gracefully.
    pub stopped_at: Option<DateTime<Utc>>,
    /// What it recorded about itself: `pid`, `host`, `version`.
    pub meta: serde_json::Value,
    /// How many tasks are `running` under its worker id now.
    pub running_tasks: u64,
}

impl TryFrom<WorkerRow> for WorkerRecord {
    type Error = Error;

    fn try_from(row: WorkerRow) -> Result<Self> {
        let optional_time =
            |column, value: Option<i64>| value.map(|ms| time_column(column, ms)).transpose();
        Ok(WorkerRecord {
            status: parse_column("status", &row.status)?,
            registered_at: time_column("registered_at", row.registered_at)?,
            last_seen_at: time_column("last_seen_at", row.last_seen_at)?,
            expires_at: time_column("expires_at", row.expires_at)?,
            superseded_at: optional_time("superseded_at", row.superseded_at)?,
            dead_at: optional_time("dead_at", row.dead_at)?,
            stopped_at: optional_time("stopped_at", row.stopped_at)?,
            meta: json_column("meta", row.meta)?.unwrap_or(serde_json::Value::Null),
            running_tasks: u64::try_from(row.running_tasks).unwrap_or(0),
            worker_id: row.worker_id,
            pod_id: row.pod_id,
            superseded_by: row.superseded_by,
        })
    }
}

/// Which workers [`TaskManager::workers`](crate::TaskManager::workers)
/// lists; every filter defaults to "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerFilter {
    /// Only workers of this pod.
    pub pod_id: Option<String>,
    /// Only workers in this status.
    pub status: Option<WorkerStatus>,
}

impl WorkerFilter {
    /// Every worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only workers of `pod_id`.
    pub fn pod_id(mut self, pod_id: impl Into<String>) -> Self {
        self.pod_id = Some(pod_id.into());
        self
    }

    /// Only workers in `status`.
    pub fn status(mut self, status: WorkerStatus) -> Self {
        self.status = Some(status);
        self
    }
}

/// The node currently running maintenance (reaping workers, recovering
/// their tasks, timing out lapsed tasks, retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceLeader {
    /// The worker id holding the maintenance lease.
    pub worker_id: String,
    /// When it took the lease.
    pub acquired_at: DateTime<Utc>,
    /// Its newest renewal.
    pub renewed_at: DateTime<Utc>,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl TryFrom<LeaseRow> for MaintenanceLeader {
    type Error = Error;

    fn try_from(row: LeaseRow) -> Result<Self> {
        Ok(MaintenanceLeader {
            acquired_at: time_column("acquired_at", row.acquired_at)?,
            renewed_at: time_column("renewed_at", row.renewed_at)?,
            expires_at: time_column("expires_at", row.expires_at)?,
            worker_id: row.holder,
        })
    }
}

impl TaskManager {
    /// This process's pod id (see [`Config::pod_id`](crate::Config::pod_id)),
    /// if the worker registry is on.
    pub fn pod_id(&self) -> Option<&str> {
        self.config().pod_id.as_deref()
    }

    /// The registered workers matching `filter`, oldest registration
    /// first, each with how many tasks it runs now. Only processes started
    /// with a `pod_id` register.
    pub async fn workers(&self, filter: WorkerFilter) -> Result<Vec<WorkerRecord>> {
        if let Some(pod_id) = &filter.pod_id {
            check_identifier(pod_id).map_err(|reason| Error::InvalidInput {
                field: "pod_id",
                reason,
            })?;
        }
        let params = WorkerListParams {
            pod_id: filter.pod_id,
            status: filter.status.map(|s| s.as_str().to_owned()),
        };
        self.store()?
            .worker_list(&params)
            .await?
            .into_iter()
            .map(WorkerRecord::try_from)
            .collect()
    }

    /// One registered worker by id, or `None`.
    pub async fn worker(&self, worker_id: &str) -> Result<Option<WorkerRecord>> {
        self.store()?
            .worker_get(worker_id)
            .await?
            .map(WorkerRecord::try_from)
            .transpose()
    }

    /// The node running maintenance now, or `None` when its lease lapsed
    /// (or no manager has started yet).
    pub async fn maintenance_leader(&self) -> Result<Option<MaintenanceLeader>> {
        let store = self.store()?;
        let Some(row) = store.lease_get(MAINTENANCE_LEASE).await? else {
            return Ok(None);
        };
        if row.expires_at < store.now_ms().await? {
            return Ok(None);
        }
        MaintenanceLeader::try_from(row).map(Some)
    }

    /// Whether this worker is fenced: another worker of its pod is active,
    /// so it claims nothing (it still finishes what it runs; writes about
    /// tasks taken back from it are rejected). It checks every
    /// `worker_heartbeat_interval` and registers again once no other
    /// worker of its pod is active.
    pub fn is_fenced(&self) -> bool {
        *self.shared().fenced.borrow()
    }

    /// Whether this process holds the maintenance lease now (by its own
    /// clock; a started manager campaigns every
    /// `worker_heartbeat_interval`).
    pub fn is_maintenance_leader(&self) -> bool {
        self.shared().leadership.is_leader()
    }
}

/// The name of the maintenance lease row.
pub(crate) const MAINTENANCE_LEASE: &str = "maintenance";

/// What a registered worker does after renewing (or failing to renew) its
/// lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// It holds its lease: claim as usual.
    Active,
    /// Another worker of its pod is active: stop claiming (the tasks it
    /// still runs were, or will be, taken back and its writes fenced).
    Fenced,
    /// Its row is gone or not active, and no other worker of its pod is
    /// active (it stalled and was reaped, or its successor died): register
    /// again and go on.
    Reregister,
}

/// The presence rule of SPEC §9.3: `own` is the worker's status after its
/// renewal (`None` when its row is gone), `active_peers` how many other
/// workers of its pod are active.
pub(crate) fn presence(own: Option<WorkerStatus>, active_peers: usize) -> Presence {
    match own {
        Some(WorkerStatus::Active) => Presence::Active,
        _ if active_peers > 0 => Presence::Fenced,
        _ => Presence::Reregister,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in WorkerStatus::ALL {
            assert_eq!(status.as_str().parse::<WorkerStatus>().unwrap(), status);
        }
        assert!(matches!(
            "zombie".parse::<WorkerStatus>(),
            Err(Error::InvalidInput {
                field: "status",
                ..
            })
        ));
    }

    #[test]
    fn an_active_worker_stays_active_whatever_its_peers() {
        assert_eq!(presence(Some(WorkerStatus::Active), 0), Presence::Active);
        assert_eq!(presence(Some(WorkerStatus::Active), 2), Presence::Active);
    }

    #[test]
    fn a_replaced_worker_with_an_active_successor_is_fenced() {
        for own in [
            Some(WorkerStatus::Superseded),
            Some(WorkerStatus::Dead),
            Some(WorkerStatus::Stopped),
            None,
        ] {
            assert_eq!(presence(own, 1), Presence::Fenced, "{own:?}");
        }
    }

    #[test]
    fn a_worker_alone_in_its_pod_registers_again() {
        for own in [
            Some(WorkerStatus::Superseded),
            Some(WorkerStatus::Dead),
            None,
        ] {
            assert_eq!(presence(own, 0), Presence::Reregister, "{own:?}");
        }
    }

    #[test]
    fn only_gone_workers_have_a_recovery_reason() {
        assert_eq!(WorkerStatus::Active.recovery_reason(), None);
        assert_eq!(WorkerStatus::Dead.recovery_reason(), Some("worker_dead"));
    }

    #[test]
    fn rows_become_records() {
        let row = WorkerRow {
            worker_id: "w1".into(),
            pod_id: "p".into(),
            status: "dead".into(),
            registered_at: 1_000,
            last_seen_at: 2_000,
            expires_at: 3_000,
            superseded_at: None,
            superseded_by: None,
            dead_at: Some(4_000),
            stopped_at: None,
            meta: Some(r#"{"pid":7}"#.into()),
            running_tasks: 2,
        };
        let record = WorkerRecord::try_from(row.clone()).unwrap();
        assert_eq!(record.status, WorkerStatus::Dead);
        assert_eq!(record.dead_at.map(|t| t.timestamp_millis()), Some(4_000));
        assert_eq!(record.meta["pid"], 7);
        assert_eq!(record.running_tasks, 2);
        let bad = WorkerRow {
            status: "zombie".into(),
            ..row
        };
        assert!(matches!(
            WorkerRecord::try_from(bad),
            Err(Error::Corrupt {
                column: "status",
                ..
            })
        ));
    }
}
