//! Alert preferences: time zone, quiet hours (may cross midnight), daily cap.

use crate::StoreError;
use crate::entity::preference;
use chrono::{DateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::fmt;
use uuid::Uuid;

/// A local time window in which no alert is sent; `22:00`–`07:00` crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u16,
    end: u16,
}

impl QuietHours {
    /// From `"HH:MM"` strings. Start and end must differ.
    pub fn parse(start: &str, end: &str) -> Result<Self, String> {
        let start = minute_of_day(start).ok_or("start must be a time like 22:00")?;
        let end = minute_of_day(end).ok_or("end must be a time like 07:00")?;
        if start == end {
            return Err("start and end must differ".into());
        }
        Ok(Self { start, end })
    }

    /// True when `now` falls inside the window in time zone `tz` (DST included).
    pub fn contains(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&tz);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Start as `HH:MM`.
    pub fn start(&self) -> String {
        hh_mm(self.start)
    }

    /// End as `HH:MM`.
    pub fn end(&self) -> String {
        hh_mm(self.end)
    }
}

fn minute_of_day(text: &str) -> Option<u16> {
    if text.len() != 5 {
        return None;
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M").ok()?;
    Some((time.hour() * 60 + time.minute()) as u16)
}

fn hh_mm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.start(), self.end())
    }
}

/// A reader's alert preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// IANA time zone the quiet hours and the daily cap are counted in.
    pub timezone: Tz,
    /// No alerts in this window.
    pub quiet_hours: Option<QuietHours>,
    /// At most this many alerts per local day (0 turns alerts off).
    pub max_alerts_per_day: u16,
}

/// When the local day containing `now` began, in UTC.
pub fn local_day_start(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let date = now.with_timezone(&tz).date_naive();
    // Midnight may not exist (a DST jump at 00:00): take the first instant of the day.
    (0..=120)
        .step_by(30)
        .find_map(|minutes| {
            let time = NaiveTime::from_num_seconds_from_midnight_opt(minutes * 60, 0)?;
            tz.from_local_datetime(&date.and_time(time)).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

fn to_preferences(m: preference::Model) -> Preferences {
    let quiet_hours = match (m.quiet_start_minute, m.quiet_end_minute) {
        (Some(start), Some(end)) if start != end => Some(QuietHours {
            start: start.clamp(0, 1439) as u16,
            end: end.clamp(0, 1439) as u16,
        }),
        _ => None,
    };
    Preferences {
        timezone: m.timezone.parse().unwrap_or(Tz::UTC),
        quiet_hours,
        max_alerts_per_day: u16::try_from(m.max_alerts_per_day).unwrap_or(0),
    }
}

/// The user's preferences, if they ever set any.
pub async fn get(
    db: &DatabaseConnection,
    user_id: Uuid,
) -> Result<Option<Preferences>, StoreError> {
    Ok(preference::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(to_preferences))
}

/// The preferences of several users at once (the fan-out's batch).
pub async fn for_users(
    db: &DatabaseConnection,
    user_ids: &[Uuid],
) -> Result<Vec<(Uuid, Preferences)>, StoreError> {
    Ok(preference::Entity::find()
        .filter(preference::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.user_id, to_preferences(m)))
        .collect())
}

/// Saves the user's preferences.
pub async fn put(
    db: &DatabaseConnection,
    user_id: Uuid,
    prefs: &Preferences,
) -> Result<(), StoreError> {
    preference::Entity::insert(preference::ActiveModel {
        user_id: Set(user_id),
        timezone: Set(prefs.timezone.name().to_string()),
        quiet_start_minute: Set(prefs.quiet_hours.map(|q| q.start as i16)),
        quiet_end_minute: Set(prefs.quiet_hours.map(|q| q.end as i16)),
        max_alerts_per_day: Set(prefs.max_alerts_per_day as i16),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(preference::Column::UserId)
            .update_columns([
                preference::Column::Timezone,
                preference::Column::QuietStartMinute,
                preference::Column::QuietEndMinute,
                preference::Column::MaxAlertsPerDay,
                preference::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_and_refuses_times() {
        assert!(QuietHours::parse("22:00", "07:00").is_ok());
        assert!(QuietHours::parse("24:00", "07:00").is_err());
        assert!(QuietHours::parse("7:00", "08:00").is_err());
        assert!(QuietHours::parse("07:00", "07:00").is_err());
        assert_eq!(
            QuietHours::parse("22:30", "07:05").unwrap().to_string(),
            "22:30–07:05"
        );
    }

    #[test]
    fn quiet_hours_cross_midnight_in_kolkata() {
        let quiet = QuietHours::parse("22:00", "07:00").unwrap();
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        assert!(!quiet.contains(tz, at("2026-11-26T16:29:00Z")), "21:59 IST");
        assert!(quiet.contains(tz, at("2026-11-26T16:30:00Z")), "22:00 IST");
        assert!(quiet.contains(tz, at("2026-11-26T20:00:00Z")), "01:30 IST");
        assert!(quiet.contains(tz, at("2026-11-27T01:29:00Z")), "06:59 IST");
        assert!(!quiet.contains(tz, at("2026-11-27T01:30:00Z")), "07:00 IST");
    }

    #[test]
    fn quiet_hours_follow_new_york_across_a_dst_change() {
        let quiet = QuietHours::parse("22:00", "07:00").unwrap();
        let tz: Tz = "America/New_York".parse().unwrap();
        // 8 March 2026: clocks jump from 02:00 EST to 03:00 EDT.
        assert!(quiet.contains(tz, at("2026-03-08T10:30:00Z")), "06:30 EDT");
        assert!(
            !quiet.contains(tz, at("2026-03-08T11:30:00Z")),
            "07:30 EDT (06:30 in EST)"
        );
        // The evening before, still EST (UTC-5).
        assert!(quiet.contains(tz, at("2026-03-08T03:00:00Z")), "22:00 EST");
        assert!(!quiet.contains(tz, at("2026-03-08T02:59:00Z")), "21:59 EST");
        // 1 November 2026: back from EDT to EST.
        assert!(!quiet.contains(tz, at("2026-11-01T12:00:00Z")), "07:00 EST");
        assert!(quiet.contains(tz, at("2026-11-01T11:59:00Z")), "06:59 EST");
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            local_day_start(tz, at("2026-11-26T20:00:00Z")),
            at("2026-11-26T18:30:00Z")
        );
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            local_day_start(ny, at("2026-03-08T15:00:00Z")),
            at("2026-03-08T05:00:00Z")
        );
        // Havana's DST starts at midnight: the day begins at 01:00 local.
        let havana: Tz = "America/Havana".parse().unwrap();
        assert_eq!(
            local_day_start(havana, at("2026-03-08T15:00:00Z")),
            at("2026-03-08T05:00:00Z")
        );
    }
}
