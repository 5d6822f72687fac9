//! Cron schedules: parsing (by the `croner` crate) and next-run
//! computation in a time zone. Pure: no I/O, no clock.
//!
//! Expressions have 5 fields (`minute hour day-of-month month day-of-week`)
//! or 6 with a leading seconds field, and accept ranges, steps, lists,
//! month and weekday names, `L`, `W`, `#`, `?` and the aliases `@yearly`,
//! `@annually`, `@monthly`, `@weekly`, `@daily` and `@hourly`. Occurrences
//! are computed in the schedule's IANA time zone (UTC by default); across
//! daylight-saving changes croner's rules apply: a wall-clock time that
//! does not exist (spring forward) runs at the first instant after the gap,
//! and one that exists twice (fall back) fires once, at its first instance.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a cron task does about occurrences missed while no worker ran it
/// (all workers down for a while).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Run once for all the missed occurrences, then go on with the next
    /// one after that run. The default.
    #[default]
    RunOnce,
    /// Do not run late: when at least one later occurrence has also passed,
    /// re-arm at the next occurrence without running.
    Skip,
}

impl Misfire {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Misfire::RunOnce => "run_once",
            Misfire::Skip => "skip",
        }
    }
}

impl FromStr for Misfire {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "run_once" => Ok(Misfire::RunOnce),
            "skip" => Ok(Misfire::Skip),
            _ => Err(Error::invalid(
                "misfire",
                format!("unknown misfire policy {s:?}; expected run_once or skip"),
            )),
        }
    }
}

/// A parsed cron expression in a time zone.
#[derive(Clone)]
pub struct CronSchedule {
    expr: String,
    tz: Tz,
    cron: Cron,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expr", &self.expr)
            .field("tz", &self.tz.name())
            .finish()
    }
}

impl CronSchedule {
    /// Parses `expr` for the IANA time zone `tz` (`None`: UTC). A bad
    /// expression is [`Error::InvalidInput`] on `cron_expr` quoting the
    /// expression and the parser's reason; a bad zone names `time_zone`.
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<Self> {
        let tz = parse_time_zone(tz)?;
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expr).map_err(|e| {
            Error::invalid(
                "cron_expr",
                format!("invalid cron expression {expr:?}: {e}"),
            )
        })?;
        Ok(CronSchedule {
            expr: expr.to_owned(),
            tz,
            cron,
        })
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone's IANA name.
    pub fn time_zone(&self) -> &'static str {
        self.tz.name()
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .map(|next| next.with_timezone(&Utc))
            .map_err(|e| {
                Error::invalid(
                    "cron_expr",
                    format!(
                        "cron expression {:?} has no occurrence after {after}: {e}",
                        self.expr
                    ),
                )
            })
    }

    /// Whether a run due at `scheduled` should be skipped at `now` under
    /// `policy`: only [`Misfire::Skip`] skips, and only when the next
    /// occurrence after `scheduled` has passed too.
    pub fn skips(
        &self,
        policy: Misfire,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(match policy {
            Misfire::RunOnce => false,
            Misfire::Skip => self.next_after(scheduled)? <= now,
        })
    }
}

/// Options of `TaskManager::cron_with`. Task options fall back to the
/// handler's, then the manager's, as for async tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CronOptions {
    pub(crate) time_zone: Option<String>,
    pub(crate) misfire: Misfire,
    pub(crate) key: Option<String>,
    pub(crate) task: crate::task::TaskOptions,
}

impl CronOptions {
    /// No options set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The IANA time zone the expression is read in (`Europe/Berlin`).
    /// Defaults to UTC.
    pub fn time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = Some(tz.into());
        self
    }

    /// What to do about occurrences missed while no worker ran. Defaults to
    /// [`Misfire::RunOnce`].
    pub fn misfire(mut self, policy: Misfire) -> Self {
        self.misfire = policy;
        self
    }

    /// A caller-chosen key (1 to 255 bytes) that makes `cron_with` an
    /// upsert: submitting again with the same key updates that schedule
    /// instead of creating a second one. Defaults to none (always insert).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Per-run task options (priority, tag, timeout, max attempts, retry
    /// interval; a delay or run-at is ignored: the schedule decides).
    pub fn task(mut self, options: crate::task::TaskOptions) -> Self {
        self.task = options;
        self
    }
}

/// Changes to a cron task (`TaskManager::update_cron`); unset fields stay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CronUpdate {
    pub(crate) expr: Option<String>,
    pub(crate) time_zone: Option<String>,
    pub(crate) misfire: Option<Misfire>,
    pub(crate) payload: Option<serde_json::Value>,
}

impl CronUpdate {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new cron expression.
    pub fn expr(mut self, expr: impl Into<String>) -> Self {
        self.expr = Some(expr.into());
        self
    }

    /// A new time zone.
    pub fn time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = Some(tz.into());
        self
    }

    /// A new misfire policy.
    pub fn misfire(mut self, policy: Misfire) -> Self {
        self.misfire = Some(policy);
        self
    }

    /// A new payload for the next runs.
    pub fn payload<P: Serialize + ?Sized>(mut self, payload: &P) -> Result<Self> {
        self.payload =
            Some(
                serde_json::to_value(payload).map_err(|source| Error::Serialization {
                    field: "payload",
                    source,
                })?,
            );
        Ok(self)
    }
}

/// Parses an IANA time zone name (`None`: UTC).
pub fn parse_time_zone(tz: Option<&str>) -> Result<Tz> {
    match tz {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| Error::invalid("time_zone", format!("unknown IANA time zone {name:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, tz: Option<&str>, after: &str) -> String {
        CronSchedule::parse(expr, tz)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn five_fields_fire_on_the_minute_strictly_after() {
        assert_eq!(
            next("*/15 * * * *", None, "2026-01-01T10:00:00Z"),
            "2026-01-01T10:15:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", None, "2026-01-01T10:07:31Z"),
            "2026-01-01T10:15:00+00:00"
        );
        assert_eq!(
            next("0 2 * * *", None, "2026-01-01T02:00:00Z"),
            "2026-01-02T02:00:00+00:00"
        );
    }

    #[test]
    fn an_optional_seconds_field_is_honoured() {
        assert_eq!(
            next("*/5 * * * * *", None, "2026-01-01T10:00:02Z"),
            "2026-01-01T10:00:05+00:00"
        );
        assert_eq!(
            next("30 0 12 * * *", None, "2026-01-01T00:00:00Z"),
            "2026-01-01T12:00:30+00:00"
        );
    }

    #[test]
    fn names_lists_ranges_and_steps() {
        assert_eq!(
            next("0 9 * JAN,MAR MON-FRI", None, "2026-01-30T10:00:00Z"),
            "2026-03-02T09:00:00+00:00"
        );
        assert_eq!(
            next("0 8-18/4 * * *", None, "2026-01-01T09:00:00Z"),
            "2026-01-01T12:00:00+00:00"
        );
        assert_eq!(
            next("0 0 ? * SUN", None, "2026-01-01T00:00:00Z"),
            "2026-01-04T00:00:00+00:00"
        );
    }

    #[test]
    fn last_day_nearest_weekday_and_nth_weekday() {
        // Last day of February 2026.
        assert_eq!(
            next("0 0 L * *", None, "2026-02-01T00:00:00Z"),
            "2026-02-28T00:00:00+00:00"
        );
        // Nearest weekday to the 15th of August 2026 (a Saturday): Friday 14th.
        assert_eq!(
            next("0 0 15W * *", None, "2026-08-01T00:00:00Z"),
            "2026-08-14T00:00:00+00:00"
        );
        // Second Tuesday of March 2026.
        assert_eq!(
            next("0 0 * * 2#2", None, "2026-03-01T00:00:00Z"),
            "2026-03-10T00:00:00+00:00"
        );
        // Last Friday of January 2026.
        assert_eq!(
            next("0 0 * * 5L", None, "2026-01-01T00:00:00Z"),
            "2026-01-30T00:00:00+00:00"
        );
    }

    #[test]
    fn aliases() {
        assert_eq!(
            next("@hourly", None, "2026-01-01T10:20:00Z"),
            "2026-01-01T11:00:00+00:00"
        );
        assert_eq!(
            next("@daily", None, "2026-01-01T10:20:00Z"),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(
            next("@monthly", None, "2026-01-01T10:20:00Z"),
            "2026-02-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@yearly", None, "2026-01-01T10:20:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@annually", None, "2026-01-01T10:20:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn occurrences_follow_the_time_zone() {
        // 09:00 in New York in January is 14:00 UTC (EST, -5).
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2026-01-05T00:00:00Z"
            ),
            "2026-01-05T14:00:00+00:00"
        );
        // ... and 13:00 UTC in July (EDT, -4).
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2026-07-06T00:00:00Z"
            ),
            "2026-07-06T13:00:00+00:00"
        );
    }

    /// Pins croner's daylight-saving behaviour in Europe/Berlin, where
    /// 2026-03-29 02:00 local does not exist (clocks jump 02:00 -> 03:00)
    /// and 2026-10-25 02:30 local happens twice (03:00 -> 02:00).
    #[test]
    fn daylight_saving_gaps_run_late_and_overlaps_fire_once() {
        let berlin = Some("Europe/Berlin");
        // 02:30 does not exist on the day of the gap: croner runs it at the
        // first instant after the gap, 03:00 CEST (01:00 UTC) ...
        let shifted = next("30 2 * * *", berlin, "2026-03-28T23:00:00Z");
        assert_eq!(shifted, "2026-03-29T01:00:00+00:00");
        // ... and the day after at 02:30 CEST again (00:30 UTC).
        assert_eq!(
            next("30 2 * * *", berlin, &shifted),
            "2026-03-30T00:30:00+00:00"
        );
        // On the day of the overlap 02:30 local fires once, at its first
        // (CEST, +2) instance, 00:30 UTC ...
        let first = next("30 2 * * *", berlin, "2026-10-24T23:00:00Z");
        assert_eq!(first, "2026-10-25T00:30:00+00:00");
        // ... and not again at the second instance (01:30 UTC): the next
        // run is the following day (CET, +1).
        assert_eq!(
            next("30 2 * * *", berlin, &first),
            "2026-10-26T01:30:00+00:00"
        );
    }

    #[test]
    fn invalid_expressions_quote_the_expression_and_the_reason() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * *",
            "0 0 32 * *",
            "bogus",
            "*/0 * * * *",
        ] {
            match CronSchedule::parse(bad, None) {
                Err(Error::InvalidInput {
                    field: "cron_expr",
                    reason,
                }) => {
                    assert!(reason.contains(&format!("{bad:?}")), "{reason}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_time_zones_are_rejected() {
        assert!(matches!(
            CronSchedule::parse("* * * * *", Some("Mars/Olympus")),
            Err(Error::InvalidInput {
                field: "time_zone",
                ..
            })
        ));
        assert_eq!(
            CronSchedule::parse("* * * * *", None).unwrap().time_zone(),
            "UTC"
        );
    }

    #[test]
    fn skip_policy_skips_only_when_a_later_occurrence_passed_too() {
        let schedule = CronSchedule::parse("0 * * * *", None).unwrap();
        let scheduled = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let slightly_late = Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap();
        let hours_late = Utc.with_ymd_and_hms(2026, 1, 1, 13, 5, 0).unwrap();
        assert!(!schedule
            .skips(Misfire::Skip, scheduled, slightly_late)
            .unwrap());
        assert!(schedule
            .skips(Misfire::Skip, scheduled, hours_late)
            .unwrap());
        assert!(!schedule
            .skips(Misfire::RunOnce, scheduled, hours_late)
            .unwrap());
    }

    #[test]
    fn misfire_policies_round_trip() {
        for policy in [Misfire::RunOnce, Misfire::Skip] {
            assert_eq!(policy.as_str().parse::<Misfire>().ok(), Some(policy));
        }
        assert!("later".parse::<Misfire>().is_err());
    }
}
