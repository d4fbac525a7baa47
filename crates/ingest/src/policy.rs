//! When to poll a feed next: pure decisions from what the last fetch taught us.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::config::IngestConfig;
use crate::fetch::CacheHints;

/// Relative spread of the jitter added to a successful poll's interval (±10%).
const SUCCESS_JITTER: f64 = 0.10;

/// The interval a feed's own publishing rate suggests: half the median gap between its items.
///
/// Items sharing one timestamp are ignored (batch imports say nothing about the rate);
/// `None` when fewer than two distinct times are known.
pub fn interval_from_publishing_rate(observed_item_times: &[DateTime<Utc>]) -> Option<Duration> {
    let mut times = observed_item_times.to_vec();
    times.sort_unstable();
    times.dedup();
    let mut gaps: Vec<Duration> = times
        .windows(2)
        .filter_map(|pair| (pair[1] - pair[0]).to_std().ok())
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let middle = gaps.len() / 2;
    let median = if gaps.len().is_multiple_of(2) {
        (gaps[middle - 1] + gaps[middle]) / 2
    } else {
        gaps[middle]
    };
    Some(median / 2)
}

/// When to poll a feed again after a successful fetch (200 or 304).
///
/// The base interval is `source_override` when set, else half the median gap between recent
/// items, else the default interval. RSS `<ttl>`, `max-age`, `Expires` and `Retry-After` are
/// lower bounds; the result is clamped to `[min, max]` and jittered by ±10% (staying in range).
pub fn next_poll_after_success<R: Rng + ?Sized>(
    config: &IngestConfig,
    observed_item_times: &[DateTime<Utc>],
    feed_ttl_minutes: Option<u32>,
    hints: &CacheHints,
    source_override: Option<Duration>,
    now: DateTime<Utc>,
    rng: &mut R,
) -> DateTime<Utc> {
    let base = source_override
        .or_else(|| interval_from_publishing_rate(observed_item_times))
        .unwrap_or_else(|| config.default_interval());

    let lower_bounds = [
        feed_ttl_minutes.map(|minutes| Duration::from_secs(u64::from(minutes) * 60)),
        hints.max_age,
        hints.expires.and_then(|at| (at - now).to_std().ok()),
        hints.retry_after,
    ];
    let interval = lower_bounds.into_iter().flatten().fold(base, Duration::max);

    let (min, max) = (config.min_interval(), config.max_interval());
    let interval = interval.clamp(min, max);
    let factor = rng.random_range((1.0 - SUCCESS_JITTER)..=(1.0 + SUCCESS_JITTER));
    let interval = interval.mul_f64(factor).clamp(min, max);
    add(now, interval)
}

/// When to poll a feed again after `consecutive_errors` failed fetches in a row (counting this one).
///
/// Exponential backoff from the min interval, doubling per error and capped at the max interval,
/// with full jitter over `[min, backoff]`. `retry_after` is a lower bound, itself capped at the
/// max interval so a hostile server cannot park a feed forever. It never gives up.
pub fn next_poll_after_error<R: Rng + ?Sized>(
    config: &IngestConfig,
    consecutive_errors: u32,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
    rng: &mut R,
) -> DateTime<Utc> {
    let (min, max) = (config.min_interval(), config.max_interval());
    let doublings = consecutive_errors.saturating_sub(1).min(63);
    let backoff_seconds = config
        .min_interval_seconds
        .max(1)
        .saturating_mul(1u64 << doublings)
        .min(config.max_interval_seconds);
    let backoff = Duration::from_secs(backoff_seconds).clamp(min, max);

    let jittered = if backoff > min {
        Duration::from_secs_f64(rng.random_range(min.as_secs_f64()..=backoff.as_secs_f64()))
    } else {
        min
    };
    let interval = retry_after
        .map_or(jittered, |after| jittered.max(after))
        .min(max);
    add(now, interval)
}

fn add(now: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(interval)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn secs_until(at: DateTime<Utc>) -> f64 {
        (at - now()).num_milliseconds() as f64 / 1000.0
    }

    fn within(at: DateTime<Utc>, expected_seconds: f64) -> bool {
        let got = secs_until(at);
        got >= expected_seconds * 0.9 - 0.001 && got <= expected_seconds * 1.1 + 0.001
    }

    fn every(minutes: i64, count: i64) -> Vec<DateTime<Utc>> {
        (0..count)
            .map(|i| now() - chrono::Duration::minutes(minutes * i))
            .collect()
    }

    #[test]
    fn publishing_rate_is_half_the_median_gap() {
        assert_eq!(interval_from_publishing_rate(&[]), None);
        assert_eq!(interval_from_publishing_rate(&every(10, 1)), None);
        assert_eq!(interval_from_publishing_rate(&[now(), now()]), None);
        assert_eq!(
            interval_from_publishing_rate(&every(10, 5)),
            Some(Duration::from_secs(300))
        );
        // One long silence does not move the median; order does not matter.
        let mut times = every(20, 6);
        times.push(now() - chrono::Duration::days(3));
        times.reverse();
        assert_eq!(
            interval_from_publishing_rate(&times),
            Some(Duration::from_secs(600))
        );
        // Even count: mean of the two middle gaps (10 and 30 minutes), halved.
        let times = [
            now(),
            now() - chrono::Duration::minutes(10),
            now() - chrono::Duration::minutes(40),
        ];
        assert_eq!(
            interval_from_publishing_rate(&times),
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn busy_feeds_poll_often_quiet_feeds_rarely() {
        let config = IngestConfig::default();
        let hints = CacheHints::default();
        let busy = next_poll_after_success(
            &config,
            &every(4, 20),
            None,
            &hints,
            None,
            now(),
            &mut rng(),
        );
        assert!(within(busy, 120.0), "busy feed: {}", secs_until(busy));

        let quiet = every(60 * 12, 10);
        let quiet = next_poll_after_success(&config, &quiet, None, &hints, None, now(), &mut rng());
        assert!(
            within(quiet, 6.0 * 3600.0),
            "quiet feed: {}",
            secs_until(quiet)
        );

        let unknown = next_poll_after_success(&config, &[], None, &hints, None, now(), &mut rng());
        assert!(within(unknown, 900.0));
    }

    #[test]
    fn clamped_to_min_and_max() {
        let config = IngestConfig::default();
        let hints = CacheHints::default();
        let burst = every(1, 30);
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let at = next_poll_after_success(&config, &burst, None, &hints, None, now(), &mut rng);
            assert!(
                (60.0..=66.0).contains(&secs_until(at)),
                "{}",
                secs_until(at)
            );
        }
        let rare = every(60 * 24 * 7, 5);
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let at = next_poll_after_success(&config, &rare, None, &hints, None, now(), &mut rng);
            assert!(
                (77_760.0..=86_400.0).contains(&secs_until(at)),
                "{}",
                secs_until(at)
            );
        }
    }

    #[test]
    fn ttl_and_cache_hints_are_lower_bounds() {
        let config = IngestConfig::default();
        let busy = every(4, 20);
        let none = CacheHints::default();

        let ttl = next_poll_after_success(&config, &busy, Some(60), &none, None, now(), &mut rng());
        assert!(within(ttl, 3600.0));

        let max_age = CacheHints {
            max_age: Some(Duration::from_secs(1800)),
            ..CacheHints::default()
        };
        let at = next_poll_after_success(&config, &busy, None, &max_age, None, now(), &mut rng());
        assert!(within(at, 1800.0));

        let expires = CacheHints {
            expires: Some(now() + chrono::Duration::minutes(45)),
            ..CacheHints::default()
        };
        let at = next_poll_after_success(&config, &busy, None, &expires, None, now(), &mut rng());
        assert!(within(at, 2700.0));

        let retry = CacheHints {
            retry_after: Some(Duration::from_secs(7200)),
            ..CacheHints::default()
        };
        let at = next_poll_after_success(&config, &busy, None, &retry, None, now(), &mut rng());
        assert!(within(at, 7200.0));

        // A lower bound never lowers a longer interval, and an expired date is no bound.
        let past = CacheHints {
            max_age: Some(Duration::from_secs(10)),
            expires: Some(now() - chrono::Duration::hours(1)),
            ..CacheHints::default()
        };
        let quiet = every(120, 10);
        let at = next_poll_after_success(&config, &quiet, Some(1), &past, None, now(), &mut rng());
        assert!(within(at, 3600.0));

        // Lower bounds are still capped at the max interval.
        let huge = CacheHints {
            max_age: Some(Duration::from_secs(30 * 86_400)),
            ..CacheHints::default()
        };
        let at = next_poll_after_success(&config, &busy, None, &huge, None, now(), &mut rng());
        assert!(secs_until(at) <= 86_400.0);
    }

    #[test]
    fn source_override_replaces_the_adaptive_interval() {
        let config = IngestConfig::default();
        let hints = CacheHints::default();
        let busy = every(4, 20);
        let two_hours = Some(Duration::from_secs(7200));
        let at =
            next_poll_after_success(&config, &busy, None, &hints, two_hours, now(), &mut rng());
        assert!(within(at, 7200.0));
        let tiny = Some(Duration::from_secs(5));
        let at = next_poll_after_success(&config, &busy, None, &hints, tiny, now(), &mut rng());
        assert!(secs_until(at) >= 60.0);
    }

    #[test]
    fn success_is_deterministic_for_a_seed_and_jittered_across_seeds() {
        let config = IngestConfig::default();
        let hints = CacheHints::default();
        let a = next_poll_after_success(&config, &[], None, &hints, None, now(), &mut rng());
        let b = next_poll_after_success(&config, &[], None, &hints, None, now(), &mut rng());
        assert_eq!(a, b);
        let distinct: std::collections::BTreeSet<_> = (0..20)
            .map(|seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                next_poll_after_success(&config, &[], None, &hints, None, now(), &mut rng)
            })
            .collect();
        assert!(distinct.len() > 10);
    }

    #[test]
    fn error_backoff_doubles_within_bounds_and_never_gives_up() {
        let config = IngestConfig::default();
        for errors in 0..200u32 {
            let ceiling = 60.0 * 2f64.powi(errors.saturating_sub(1).min(40) as i32);
            let ceiling = ceiling.min(86_400.0);
            for seed in 0..20 {
                let mut rng = StdRng::seed_from_u64(seed);
                let at = next_poll_after_error(&config, errors, None, now(), &mut rng);
                let got = secs_until(at);
                assert!(got >= 60.0 - 0.001, "errors {errors}: {got}");
                assert!(got <= ceiling + 0.001, "errors {errors}: {got} > {ceiling}");
            }
        }
        assert_eq!(
            next_poll_after_error(&config, 1, None, now(), &mut rng()),
            now() + chrono::Duration::seconds(60)
        );
        // Late errors spread over the whole range, reaching toward the cap.
        let latest = (0..50)
            .map(|seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                secs_until(next_poll_after_error(&config, 30, None, now(), &mut rng))
            })
            .fold(0.0, f64::max);
        assert!(latest > 70_000.0, "{latest}");
    }

    #[test]
    fn error_backoff_respects_retry_after() {
        let config = IngestConfig::default();
        let hour = Some(Duration::from_secs(3600));
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            let at = next_poll_after_error(&config, 1, hour, now(), &mut rng);
            assert_eq!(secs_until(at), 3600.0);
        }
        let year = Some(Duration::from_secs(365 * 86_400));
        let at = next_poll_after_error(&config, 1, year, now(), &mut rng());
        assert_eq!(secs_until(at), 86_400.0);
    }

    #[test]
    fn error_backoff_is_deterministic_for_a_seed() {
        let config = IngestConfig::default();
        let a = next_poll_after_error(&config, 5, None, now(), &mut rng());
        let b = next_poll_after_error(&config, 5, None, now(), &mut rng());
        assert_eq!(a, b);
    }
}
