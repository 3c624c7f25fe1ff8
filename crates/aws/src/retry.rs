//! Exponential backoff with full jitter, bounded by the function's remaining time.
//!
//! A Lambda invocation has a deadline. Waiting past it wastes the retry that Lambda itself
//! would make (with the event kept for the dead-letter path), so every retry loop here asks
//! [`Backoff::next_delay`] for a pause and stops as soon as the pause would not leave
//! `reserve` of the budget for the attempt itself and the bookkeeping after it.

use std::time::{Duration, Instant};

/// Retry schedule: `base * 2^attempt` capped at `max`, a uniformly random fraction of it
/// ("full jitter", so many instances retrying together spread out).
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First pause ceiling.
    pub base: Duration,
    /// Largest pause ceiling.
    pub max: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Time kept free before the deadline for the last attempt and what follows it.
    pub reserve: Duration,
    deadline: Option<Instant>,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A schedule with the given shape, no deadline yet.
    pub fn new(base: Duration, max: Duration, max_attempts: u32) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Backoff {
            base,
            max,
            max_attempts: max_attempts.max(1),
            reserve: Duration::from_millis(500),
            deadline: None,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// Bounds every pause by a deadline (the invocation's).
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the time kept free before the deadline.
    pub fn with_reserve(mut self, reserve: Duration) -> Self {
        self.reserve = reserve;
        self
    }

    /// Makes the jitter reproducible (tests, benchmarks).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = seed | 1;
        self
    }

    /// Attempts made so far (calls to `next_delay`).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The pause before the next attempt, or `None` when no attempt is left or the
    /// pause would not leave `reserve` before the deadline.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.attempt += 1;
        if self.attempt >= self.max_attempts {
            return None;
        }
        let exponent = (self.attempt - 1).min(20);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.max);
        let delay = ceiling.mul_f64(self.random_unit());
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if delay + self.reserve > left {
                return None;
            }
        }
        Some(delay)
    }

    /// xorshift64*: plenty for jitter, no dependency.
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let value = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (value >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_their_ceiling_and_stop_after_max_attempts() {
        let mut backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 6).with_seed(7);
        let ceilings = [100, 200, 400, 800, 1000];
        for ceiling in ceilings {
            let delay = backoff.next_delay().expect("attempts left");
            assert!(
                delay <= Duration::from_millis(ceiling),
                "{delay:?} > {ceiling} ms"
            );
        }
        assert_eq!(backoff.next_delay(), None);
        assert_eq!(backoff.attempts(), 6);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut backoff =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 1000).with_seed(3);
        let delays: Vec<Duration> = (0..200).filter_map(|_| backoff.next_delay()).collect();
        let min = delays.iter().min().expect("some");
        let max = delays.iter().max().expect("some");
        assert!(*min < Duration::from_millis(100) && *max > Duration::from_millis(900));
    }

    #[test]
    fn never_pauses_past_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(10), 100)
            .with_deadline(Some(deadline))
            .with_reserve(Duration::from_millis(100))
            .with_seed(11);
        while let Some(delay) = backoff.next_delay() {
            assert!(delay + Duration::from_millis(100) <= Duration::from_millis(300));
        }
        // A pause of up to 10 s never fits into 300 ms minus the reserve for long.
        assert!(backoff.attempts() < 100);
    }

    #[test]
    fn a_single_attempt_never_retries() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 1);
        assert_eq!(backoff.next_delay(), None);
    }
}
