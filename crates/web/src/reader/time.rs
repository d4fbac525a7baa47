//! "9 hours ago", with the exact time for `title` and `<time datetime>`.

use chrono::{DateTime, SecondsFormat, Utc};

/// A moment as a page shows it.
pub struct Shown {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// "9 hours ago".
    pub relative: String,
    /// "7 Dec 2026, 06:28 UTC", shown on hover.
    pub exact: String,
}

/// `at` as seen at `now`.
pub fn shown(at: DateTime<Utc>, now: DateTime<Utc>) -> Shown {
    Shown {
        iso: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        relative: relative(at, now),
        exact: at.format("%-d %b %Y, %H:%M UTC").to_string(),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// How long before `now` `at` was, in the largest whole unit up to a week; older: the date.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        ..60 => "just now".to_string(),
        60..3_600 => plural(seconds / 60, "minute"),
        3_600..86_400 => plural(seconds / 3_600, "hour"),
        86_400..604_800 => plural(seconds / 86_400, "day"),
        _ => at.format("%-d %b %Y").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn relative_times_read_like_a_news_site() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        assert_eq!(relative(now - Duration::seconds(5), now), "just now");
        assert_eq!(relative(now + Duration::minutes(5), now), "just now");
        assert_eq!(relative(now - Duration::minutes(1), now), "1 minute ago");
        assert_eq!(relative(now - Duration::minutes(10), now), "10 minutes ago");
        assert_eq!(relative(now - Duration::hours(9), now), "9 hours ago");
        assert_eq!(relative(now - Duration::days(2), now), "2 days ago");
        assert_eq!(relative(now - Duration::days(30), now), "7 Nov 2026");
        let s = shown(now - Duration::hours(9), now);
        assert_eq!(s.iso, "2026-12-07T03:00:00Z");
        assert_eq!(s.exact, "7 Dec 2026, 03:00 UTC");
    }
}
