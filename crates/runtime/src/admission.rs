//! Fair sharing of the wasm runtime between tenants.
//!
//! The unit of work a tenant is charged for is a *slot*: a workflow run while it executes
//! (its steps and templates run one at a time), or a backend request while it is served
//! (with the workflow or step it may start through `compute`, which runs inside the
//! request's slot). A tenant may hold at most `per_tenant` slots; further work waits for one
//! in arrival order, at most `max_queued` items per tenant, each no longer than its own
//! deadline, and past that is refused with [`Busy`] (answered 429 with `Retry-After`).
//!
//! Slots also come from one pool shared by all tenants, sized so that every slot's
//! instances (a backend and the step it starts: two at most) fit the pooling allocator:
//! one tenant can never take the instances other tenants need, and no invocation fails for
//! want of an instance slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How many slots tenants may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Slots one tenant may hold at once.
    pub per_tenant: usize,
    /// Items of one tenant that may wait for a slot (0: none wait, a tenant without a free
    /// slot is refused at once).
    pub max_queued: usize,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas { per_tenant: 32, max_queued: 256 }
    }
}

/// A tenant had no slot to give: at its concurrency limit with a full queue, or past the
/// deadline of the waiting work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tenant {tenant} has {per_tenant} runs and backend requests in progress and {queued} waiting; try again shortly"
)]
pub struct Busy {
    pub tenant: String,
    pub per_tenant: usize,
    pub queued: usize,
    /// When trying again is worth it.
    pub retry_after: Duration,
}

/// How long a refused caller should wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hands out slots. One per runtime.
pub struct Admission {
    quotas: Quotas,
    pool: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Arc<TenantSlots>>>,
}

struct TenantSlots {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// A place in a tenant's queue; [`Ticket::admit`] turns it into a slot.
pub struct Ticket {
    tenant: String,
    slots: Arc<TenantSlots>,
    pool: Arc<Semaphore>,
    quotas: Quotas,
}

/// A slot, held until dropped.
#[derive(Debug)]
pub struct Slot {
    _tenant: OwnedSemaphorePermit,
    _pool: OwnedSemaphorePermit,
}

impl Admission {
    /// Slots for `pool` units of work in all, shared under `quotas`.
    pub fn new(quotas: Quotas, pool: usize) -> Admission {
        Admission { quotas, pool: Arc::new(Semaphore::new(pool)), tenants: Mutex::default() }
    }

    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Joins `tenant`'s queue, or is refused when the queue is full.
    pub fn enqueue(&self, tenant: &str) -> Result<Ticket, Busy> {
        let slots = self
            .tenants
            .lock()
            .expect("admission poisoned")
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(TenantSlots {
                    slots: Arc::new(Semaphore::new(self.quotas.per_tenant)),
                    queued: AtomicUsize::new(0),
                })
            })
            .clone();
        let ahead = slots.queued.fetch_add(1, Ordering::AcqRel);
        // Those ahead that will get a free slot at once are not waiting.
        let free = slots.slots.available_permits();
        let ticket = Ticket { tenant: tenant.to_owned(), slots, pool: self.pool.clone(), quotas: self.quotas };
        if ahead >= self.quotas.max_queued + free {
            return Err(ticket.busy());
        }
        Ok(ticket)
    }

    /// A slot for `tenant`, waiting no later than `deadline`.
    pub async fn admit(&self, tenant: &str, deadline: Instant) -> Result<Slot, Busy> {
        self.enqueue(tenant)?.admit(deadline).await
    }
}

impl Ticket {
    /// Waits for the tenant's slot and then the pool's, no later than `deadline`.
    pub async fn admit(self, deadline: Instant) -> Result<Slot, Busy> {
        let acquire = async {
            let tenant = self.slots.slots.clone().acquire_owned().await.ok()?;
            let pool = self.pool.clone().acquire_owned().await.ok()?;
            Some(Slot { _tenant: tenant, _pool: pool })
        };
        match tokio::time::timeout_at(deadline, acquire).await {
            Ok(Some(slot)) => Ok(slot),
            _ => Err(self.busy()),
        }
    }

    fn busy(&self) -> Busy {
        Busy {
            tenant: self.tenant.clone(),
            per_tenant: self.quotas.per_tenant,
            queued: self.slots.queued.load(Ordering::Acquire).saturating_sub(1),
            retry_after: RETRY_AFTER,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.slots.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(20)
    }

    #[tokio::test]
    async fn a_tenant_holds_at_most_its_share_and_others_keep_theirs() {
        let admission = Admission::new(Quotas { per_tenant: 2, max_queued: 8 }, 10);
        let first = admission.admit("a", soon()).await.unwrap();
        let _second = admission.admit("a", soon()).await.unwrap();
        let busy = admission.admit("a", soon()).await.unwrap_err();
        assert_eq!((busy.tenant.as_str(), busy.per_tenant, busy.retry_after), ("a", 2, RETRY_AFTER));
        assert!(admission.admit("b", soon()).await.is_ok(), "another tenant is not affected");
        drop(first);
        assert!(admission.admit("a", soon()).await.is_ok(), "a freed slot is given again");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let admission = Admission::new(Quotas { per_tenant: 1, max_queued: 2 }, 10);
        let _held = admission.admit("a", soon()).await.unwrap();
        let _waiting = [admission.enqueue("a").unwrap(), admission.enqueue("a").unwrap()];
        let refused = admission.enqueue("a").err().expect("the queue is full");
        assert_eq!(refused.queued, 2);
        drop(_waiting);
        assert!(admission.enqueue("a").is_ok(), "leaving the queue frees its place");
    }

    #[tokio::test]
    async fn without_a_queue_only_free_slots_are_given() {
        let admission = Admission::new(Quotas { per_tenant: 1, max_queued: 0 }, 10);
        let held = admission.admit("a", soon()).await.unwrap();
        assert!(admission.enqueue("a").is_err());
        drop(held);
        assert!(admission.admit("a", soon()).await.is_ok());
    }

    #[tokio::test]
    async fn waiters_are_served_in_order_when_slots_free_up() {
        let admission = Arc::new(Admission::new(Quotas { per_tenant: 1, max_queued: 8 }, 10));
        let held = admission.admit("a", soon()).await.unwrap();
        let later = Instant::now() + Duration::from_secs(10);
        let (first, second) = (admission.enqueue("a").unwrap(), admission.enqueue("a").unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, ticket) in [("first", first), ("second", second)] {
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let slot = ticket.admit(later).await.unwrap();
                order.lock().unwrap().push(name);
                drop(slot);
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["first", "second"]);
    }

    #[tokio::test]
    async fn the_shared_pool_bounds_every_tenant_together() {
        let admission = Admission::new(Quotas { per_tenant: 2, max_queued: 8 }, 3);
        let _slots = [
            admission.admit("a", soon()).await.unwrap(),
            admission.admit("a", soon()).await.unwrap(),
            admission.admit("b", soon()).await.unwrap(),
        ];
        assert!(admission.admit("c", soon()).await.is_err());
    }
}
