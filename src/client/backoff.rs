use std::time::Duration;

/// Exponential reconnect backoff with jitter.
///
/// Delay n is `min(cap, base * 2^n)`, then a uniformly random amount up to
/// half of it is taken off ("equal jitter"), so a fleet of agents whose
/// router rebooted does not reconnect in lock-step, yet nobody retries
/// faster than half the nominal delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// Seeds from the clock and process id: good enough to de-synchronise
    /// agents, which is all jitter is for.
    pub fn from_entropy(base: Duration, cap: Duration) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Backoff::new(base, cap, nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// The nominal (un-jittered) delay of the next attempt.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next attempt; advances the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        let half_ms = half.as_millis() as u64;
        let jitter = if half_ms == 0 {
            0
        } else {
            self.next_random() % (half_ms + 1)
        };
        nominal - Duration::from_millis(jitter)
    }

    /// Called after a successful login.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60), 42);
        let nominal: Vec<u64> = (0..7)
            .map(|_| {
                let n = b.nominal().as_secs();
                b.next_delay();
                n
            })
            .collect();
        assert_eq!(nominal, vec![5, 10, 20, 40, 60, 60, 60]);
    }

    #[test]
    fn jitter_stays_within_half_and_varies() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60), 7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            b.reset();
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(2500) && d <= Duration::from_secs(5),
                "{d:?}"
            );
            seen.insert(d);
        }
        assert!(seen.len() > 10, "jitter must vary: {seen:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 1);
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.nominal(), Duration::from_secs(8));
        b.reset();
        assert_eq!(b.nominal(), Duration::from_secs(1));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60), 3);
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(60));
        }
    }
}
