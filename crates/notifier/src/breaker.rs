//! Circuit breakers per push-service origin.
//!
//! An origin that keeps failing transiently (timeouts, 429, 5xx) would otherwise take send slots
//! from every other origin, attempt after attempt. After `threshold` such failures in a row its
//! circuit opens: deliveries to it skip the network and go to the retry queue until the circuit's
//! cool-down ends; then one attempt is let through (half-open), and a success closes it while a
//! failure opens it again for twice as long, up to a cap.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Circuit {
    failures: u32,
    opened: u32,
    open_until: Option<Instant>,
}

/// The breakers of one notifier process, shared by its workers.
#[derive(Debug)]
pub struct Breakers {
    circuits: Mutex<HashMap<String, Circuit>>,
    threshold: u32,
    cooldown: Duration,
    max_cooldown: Duration,
}

impl Breakers {
    /// Breakers that open after `threshold` transient failures in a row, for `cooldown` the
    /// first time and doubling up to `max_cooldown`. A zero threshold never opens.
    pub fn new(threshold: u32, cooldown: Duration, max_cooldown: Duration) -> Self {
        Self {
            circuits: Mutex::new(HashMap::new()),
            threshold,
            cooldown,
            max_cooldown: max_cooldown.max(cooldown),
        }
    }

    /// `Err(wait)` while `origin`'s circuit is open: try again after `wait`.
    pub fn check(&self, origin: &str) -> Result<(), Duration> {
        let circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        match circuits.get(origin).and_then(|c| c.open_until) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Records an attempt's result: `true` for an answer that says the service works (sent, or
    /// a device-specific refusal), `false` for a transient failure.
    pub fn record(&self, origin: &str, healthy: bool) {
        let mut circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        if healthy {
            circuits.remove(origin);
            return;
        }
        if self.threshold == 0 {
            return;
        }
        let circuit = circuits.entry(origin.to_owned()).or_default();
        circuit.failures += 1;
        let half_open = circuit.open_until.is_some();
        if circuit.failures >= self.threshold || half_open {
            let factor = 1u32 << circuit.opened.min(16);
            let cooldown = self.cooldown.saturating_mul(factor).min(self.max_cooldown);
            circuit.open_until = Some(Instant::now() + cooldown);
            circuit.opened += 1;
            circuit.failures = 0;
            tracing::warn!(
                origin,
                ?cooldown,
                "push service failing; its circuit is open"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circuit_opens_after_failures_in_a_row_and_closes_on_success() {
        let breakers = Breakers::new(3, Duration::from_millis(40), Duration::from_secs(1));
        for _ in 0..2 {
            breakers.record("https://bad.example", false);
        }
        assert_eq!(breakers.check("https://bad.example"), Ok(()));
        breakers.record("https://bad.example", false);
        assert!(breakers.check("https://bad.example").is_err());
        assert_eq!(breakers.check("https://good.example"), Ok(()));
        std::thread::sleep(Duration::from_millis(50));
        // Half-open: one attempt goes through; its failure opens the circuit for twice as long.
        assert_eq!(breakers.check("https://bad.example"), Ok(()));
        breakers.record("https://bad.example", false);
        let wait = breakers
            .check("https://bad.example")
            .expect_err("open again");
        assert!(wait > Duration::from_millis(45), "{wait:?}");
        breakers.record("https://bad.example", true);
        assert_eq!(breakers.check("https://bad.example"), Ok(()));
    }
}
