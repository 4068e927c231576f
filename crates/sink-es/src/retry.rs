//! [`Backoff`]: exponential backoff with jitter between attempts, so many senders that failed
//! together do not come back together.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays that double from `initial` up to `max`, each drawn at random from its upper half.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    state: u64,
}

impl Backoff {
    /// A backoff starting at `initial`, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        // A per-process random seed without a dependency: the std hasher is randomly keyed.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(u64::from(std::process::id()));
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
            state: hasher.finish() | 1,
        }
    }

    /// The attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.initial.saturating_mul(factor).min(self.max);
        // xorshift64: enough randomness for jitter.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let fraction = (self.state % 1_000) as f64 / 1_000.0;
        ceiling.mul_f64(0.5 + fraction / 2.0)
    }

    /// Back to the first delay after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        for (n, delay) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(2));
            assert!(
                *delay >= ceiling / 2 && *delay <= ceiling,
                "attempt {n}: {delay:?} outside {:?}..={ceiling:?}",
                ceiling / 2
            );
        }
        assert_eq!(backoff.attempts(), 8);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn two_backoffs_do_not_move_in_lockstep() {
        let mut a = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let same = (0..6).filter(|_| a.next_delay() == b.next_delay()).count();
        assert!(same < 6, "jitter makes the two sequences differ");
    }
}
