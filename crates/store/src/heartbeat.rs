//! A background loop's sign of life, read by `/readyz`.
//!
//! The ingest scheduler and each notifier worker beat after every step that reached the
//! database, so "ready" for such a process means "the database answered and my loop moved
//! recently", not only "the process is up". It lives beside the database because every role
//! depends on this crate; it holds no SQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a loop last made progress; cheap to clone and to beat from many tasks.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    name: &'static str,
    started: Instant,
    /// Milliseconds after `started` of the last beat, plus one; 0 means never.
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat for the loop called `name` (`ingest`, `notifier`) that has not beaten yet.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            started: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The loop's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Records progress now.
    pub fn beat(&self) {
        let millis = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last.store(millis + 1, Ordering::Relaxed);
    }

    /// How long ago the loop last made progress; `None` if it never has.
    pub fn since_last(&self) -> Option<Duration> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            stamp => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(stamp - 1)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_tells_when_it_last_beat() {
        let beat = Heartbeat::new("notifier");
        assert_eq!(beat.since_last(), None);
        let clone = beat.clone();
        clone.beat();
        let since = beat.since_last().expect("beaten");
        assert!(since < Duration::from_secs(1), "{since:?}");
        assert_eq!(beat.name(), "notifier");
    }
}
