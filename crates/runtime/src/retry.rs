//! Retry waits with AWS Step Functions semantics, shared by workflow steps and the
//! backends' retrying fetch.

use std::time::Duration;

use rand::Rng;
use serde::Serialize;

/// The longest wait before any retry (one hour), whatever the backoff.
pub const MAX_DURATION_MS: u64 = 3_600_000;

/// The most retries a policy may ask for.
pub const MAX_ATTEMPTS: u32 = 10;

/// How a failing step is retried, with AWS Step Functions semantics: the wait before retry
/// `n` is `intervalMs × backoffRate^(n−1)`, capped by `maxDelayMs`, then jittered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 never retries.
    pub max_attempts: u32,
    pub interval_ms: u64,
    /// At least 1.0.
    pub backoff_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { max_attempts: 3, interval_ms: 1000, backoff_rate: 2.0, max_delay_ms: None, jitter: Jitter::None }
    }
}

/// Randomization of retry waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// Wait exactly the computed delay.
    #[default]
    None,
    /// Wait a uniformly random time between zero and the computed delay.
    Full,
}

impl RetryPolicy {
    /// Whether retry number `retry_number` (1 for the first retry) may happen.
    pub fn allows_retry(&self, retry_number: u32) -> bool {
        retry_number >= 1 && retry_number <= self.max_attempts
    }

    /// The wait before retry `retry_number` (1-based) without jitter: interval × rate^(n−1),
    /// capped by `maxDelayMs` and by [`MAX_DURATION_MS`].
    pub fn base_delay(&self, retry_number: u32) -> Duration {
        let cap = self.max_delay_ms.unwrap_or(MAX_DURATION_MS).min(MAX_DURATION_MS);
        if self.interval_ms == 0 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry_number.saturating_sub(1)).unwrap_or(i32::MAX);
        let uncapped = self.interval_ms as f64 * self.backoff_rate.max(1.0).powi(exponent);
        Duration::from_millis((uncapped.round().min(cap as f64)) as u64)
    }

    /// The wait before retry `retry_number` (1-based): [`base_delay`](Self::base_delay), then,
    /// with full jitter, a uniformly random duration between zero and it.
    pub fn delay_before_retry<R: Rng + ?Sized>(&self, retry_number: u32, rng: &mut R) -> Duration {
        let delay = self.base_delay(retry_number);
        match self.jitter {
            Jitter::None => delay,
            Jitter::Full => Duration::from_millis(rng.random_range(0..=delay.as_millis() as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn retry_delays_follow_step_functions() {
        let policy = RetryPolicy::default();
        assert_eq!((policy.max_attempts, policy.interval_ms, policy.backoff_rate), (3, 1000, 2.0));
        assert_eq!((policy.max_delay_ms, policy.jitter), (None, Jitter::None));
        assert!(!policy.allows_retry(0));
        assert!(policy.allows_retry(1) && policy.allows_retry(3));
        assert!(!policy.allows_retry(4));
        assert!(!RetryPolicy { max_attempts: 0, ..policy }.allows_retry(1));

        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<u64> = (1..=4).map(|n| policy.delay_before_retry(n, &mut rng).as_millis() as u64).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000]);

        let capped = RetryPolicy { max_delay_ms: Some(3000), ..policy };
        let delays: Vec<u64> = (1..=4).map(|n| capped.delay_before_retry(n, &mut rng).as_millis() as u64).collect();
        assert_eq!(delays, [1000, 2000, 3000, 3000]);

        let gentle = RetryPolicy { interval_ms: 100, backoff_rate: 1.5, ..policy };
        assert_eq!(gentle.base_delay(3), Duration::from_millis(225));
        assert_eq!(RetryPolicy { interval_ms: 0, ..policy }.base_delay(5), Duration::ZERO);
        let huge = RetryPolicy { interval_ms: MAX_DURATION_MS, backoff_rate: 1e300, max_attempts: 10, ..policy };
        assert_eq!(huge.base_delay(10), Duration::from_millis(MAX_DURATION_MS));

        let jittered = RetryPolicy { jitter: Jitter::Full, ..capped };
        let samples: Vec<Duration> = (0..200).map(|_| jittered.delay_before_retry(4, &mut rng)).collect();
        assert!(samples.iter().all(|delay| *delay <= Duration::from_millis(3000)));
        assert!(samples.iter().any(|delay| *delay < Duration::from_millis(1500)));
        assert!(samples.iter().any(|delay| *delay > Duration::from_millis(1500)));
    }
}
