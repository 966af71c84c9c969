//! The outbox dispatcher: a background task that delivers queued messages, retries them
//! with exponential backoff and jitter (at least the receiver's `Retry-After`), caps the
//! attempts, and records each attempt.
//!
//! It works only from the database: at start it requeues messages a previous process was
//! sending, then claims due messages in batches, so nothing acknowledged is lost across a
//! crash. A retried delivery keeps its message id, so receivers can drop duplicates.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;

use super::super::ServiceState;
use super::deliver::{Outcome, deliver};
use stage_store::communication::{AttemptEnd, Delivery};
use stage_store::now_ms;

/// Most deliveries in flight at once.
const CONCURRENCY: usize = 16;
/// Longest wait between attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// How long the dispatcher sleeps with nothing due (it is woken when a message is queued).
const IDLE_POLL: Duration = Duration::from_secs(30);

/// How persistent delivery is.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// Attempts per message before it is marked failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per attempt.
    pub retry_base: Duration,
}

impl DeliveryPolicy {
    /// Backoff before attempt `attempt + 1`: `base × 2^(attempt-1)`, capped, with "equal
    /// jitter" (half fixed, half random), and never earlier than the receiver asked.
    fn delay_after(&self, attempt: i64, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
        let backoff = self.retry_base.saturating_mul(1 << exponent).min(MAX_RETRY_DELAY);
        let half = backoff / 2;
        let jittered = half + half.mul_f64(rng.random::<f64>());
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// Starts the dispatcher on the current tokio runtime.
pub fn spawn(state: ServiceState, policy: DeliveryPolicy) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match state.store.requeue_interrupted_messages().await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(count, "requeued messages whose delivery the previous process cut short"),
            Err(error) => tracing::error!(%error, "could not requeue interrupted messages"),
        }
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                state.store.claim_due_messages(free).await.unwrap_or_else(|error| {
                    tracing::error!(%error, "could not claim due messages");
                    Vec::new()
                })
            };
            let full_batch = free > 0 && claimed.len() == free;
            for delivery in claimed {
                let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                let state = state.clone();
                tokio::spawn(async move {
                    attempt(&state, delivery, policy).await;
                    drop(permit);
                    state.outbox.notify_one();
                });
            }
            if full_batch {
                continue;
            }
            let wait = match state.store.next_message_due().await {
                Ok(Some(due)) => Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0)).min(IDLE_POLL),
                Ok(None) => IDLE_POLL,
                Err(error) => {
                    tracing::error!(%error, "could not read the outbox");
                    Duration::from_secs(1)
                }
            };
            if !wait.is_zero() || free == 0 {
                let _ = tokio::time::timeout(wait.max(Duration::from_millis(1)), state.outbox.notified()).await;
            }
        }
    })
}

/// One attempt of one message, recorded whatever happens.
async fn attempt(state: &ServiceState, delivery: Delivery, policy: DeliveryPolicy) {
    let outcome = match &delivery.registration {
        Some(registration) => deliver(&delivery, registration, &state.outbound, state.tenant_egress()).await,
        None => Outcome::Failed {
            status: None,
            error: format!(
                "the registration of app {} for channel {} was deleted or disabled",
                delivery.message.app_sid, delivery.message.channel_id
            ),
        },
    };
    let end = match outcome {
        Outcome::Delivered { status } => AttemptEnd::Delivered { status_code: status },
        Outcome::Failed { status, error } => AttemptEnd::Failed { status_code: status, error },
        Outcome::Retry { status, error, .. } if delivery.attempt >= i64::from(policy.max_attempts) => {
            AttemptEnd::Failed {
                status_code: status,
                error: format!("{error} (gave up after {} attempts)", delivery.attempt),
            }
        }
        Outcome::Retry { status, error, after } => {
            let delay = policy.delay_after(delivery.attempt, after, &mut rand::rng());
            AttemptEnd::Retry { status_code: status, error, at: now_ms() + delay.as_millis() as i64 }
        }
    };
    tracing::info!(message = %delivery.message_id, attempt = delivery.attempt, end = ?end, "delivery attempt");
    if let Err(error) = state.store.finish_attempt(&delivery.message_id, delivery.attempt, end).await {
        // The message stays `sending`; the next start requeues it.
        tracing::error!(%error, message = %delivery.message_id, "could not record a delivery attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_with_jitter_and_honours_retry_after() {
        let policy = DeliveryPolicy { max_attempts: 5, retry_base: Duration::from_millis(1000) };
        let mut rng = rand::rng();
        for _ in 0..100 {
            let first = policy.delay_after(1, None, &mut rng);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_millis(1000), "{first:?}");
            let third = policy.delay_after(3, None, &mut rng);
            assert!(third >= Duration::from_millis(2000) && third <= Duration::from_millis(4000), "{third:?}");
            assert!(policy.delay_after(1, Some(Duration::from_secs(7)), &mut rng) >= Duration::from_secs(7));
            assert!(policy.delay_after(60, None, &mut rng) <= MAX_RETRY_DELAY);
        }
    }
}
