//! Which devices an alert holds back, and why: the one statement of the per-device rules,
//! used by the fan-out when it sends and by the newsroom's audience estimate before it does.
//!
//! In order: the daily cap (counted in the device's local day), then quiet hours (which `high`
//! urgency passes when `push.high_urgency_bypasses_quiet_hours` says so). Once-per-story is
//! the third rule; it is a claim in the database (`queue::claim_story`), which the fan-out
//! takes and the estimate only reads.

use chrono::{DateTime, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use herald_store::devices::Target;
use herald_store::preferences::local_day_start;

use crate::config::PushConfig;
use crate::fanout::parse_urgency;
use crate::webpush::Urgency;

/// Why a device does not get an alert now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// It has had its `max_alerts_per_day` today.
    DailyCap,
    /// It is in its quiet hours.
    QuietHours,
}

/// The rules for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRules {
    default_cap: u32,
    bypass_quiet: bool,
}

impl AlertRules {
    /// The rules for an alert of `urgency` (`very-low`, `low`, `normal`, `high`).
    pub fn new(config: &PushConfig, urgency: &str) -> Self {
        Self {
            default_cap: config.default_max_alerts_per_day,
            bypass_quiet: parse_urgency(urgency) == Urgency::High
                && config.high_urgency_bypasses_quiet_hours,
        }
    }

    /// Whether `target` is held back at `now`, given when it was sent alerts lately
    /// (`sent`: the last two days are enough for any time zone's local day).
    pub fn hold(
        &self,
        target: &Target,
        sent: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Option<Hold> {
        let preferences = target.preferences.as_ref();
        let tz = timezone(target);
        let cap = preferences.map_or(self.default_cap, |p| u32::from(p.max_alerts_per_day));
        let day_start = local_day_start(tz, now);
        let today = sent.iter().filter(|at| **at >= day_start).count();
        let quiet = preferences
            .and_then(|p| p.quiet_hours)
            .is_some_and(|q| q.contains(tz, now));
        if today >= cap as usize {
            Some(Hold::DailyCap)
        } else if quiet && !self.bypass_quiet {
            Some(Hold::QuietHours)
        } else {
            None
        }
    }
}

/// The device's time zone: its owner's preference, else the device's own, else UTC.
pub fn timezone(target: &Target) -> Tz {
    target
        .preferences
        .as_ref()
        .map(|p| p.timezone)
        .or_else(|| {
            target
                .device
                .timezone
                .as_deref()
                .and_then(|t| t.parse::<Tz>().ok())
        })
        .unwrap_or(Tz::UTC)
}

/// The first moment at or after `from` when the device's local clock reads `time` (within a
/// day; on a day the clock skips that time, the first moment after the gap).
pub fn next_local_time(target: &Target, time: NaiveTime, from: DateTime<Utc>) -> DateTime<Utc> {
    let tz = timezone(target);
    let local_from = from.with_timezone(&tz);
    for day in 0..=2 {
        let date = local_from.date_naive() + chrono::Days::new(day);
        let wanted = date.and_time(time);
        let at = match tz.from_local_datetime(&wanted) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at,
            // A gap (daylight saving): the wall clock jumps over `time`; an hour later exists.
            LocalResult::None => {
                match tz.from_local_datetime(&(wanted + chrono::Duration::hours(1))) {
                    LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at,
                    LocalResult::None => continue,
                }
            }
        };
        let at = at.with_timezone(&Utc);
        if at >= from {
            return at;
        }
    }
    from
}
