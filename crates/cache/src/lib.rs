//! [`Cache`]: the one bounded, in-memory cache type of the host, for everything it keeps
//! per app version, plugin or component (parsed workflow files, compiled components with
//! their linked instances, backends, plugin kinds).
//!
//! * **Bounded twice**: by entry count and by total weight, the weight of a value coming
//!   from the weigher given to [`Cache::new`] (an estimate of its bytes). A value heavier than
//!   the whole weight budget is handed to its callers but never kept.
//! * **Least recently used** entries are evicted first; a hit makes an entry the most
//!   recently used.
//! * **Single flight**: concurrent [`Cache::get_or_load`] callers for one key share one load.
//!   A **failed load is not cached**: its caller gets the error, and a caller that was
//!   waiting on the same flight then runs its own loader (one at a time), so a transient
//!   failure heals on the next call while a persistent one is paid once per caller, never
//!   by many callers at once. A caller dropped mid-load (its client went away) hands the
//!   flight to the next waiter.
//! * **Invalidation**: [`Cache::invalidate`] and [`Cache::invalidate_where`] drop entries
//!   and loads in flight (whose callers still get their value, which is then not kept).
//!
//! Values are handed out as `Arc`s: evicting or invalidating an entry frees it once its
//! last user (a run in flight, say) drops its `Arc`. Evicted values are dropped after the
//! cache's lock is released, so freeing a large value never blocks other callers.
//!
//! Why not a caching crate: `moka` admits entries by TinyLFU frequency, so a freshly loaded
//! entry (a new app version) may be refused and loaded again on every call, it has one
//! capacity (not entries *and* weight), and settles evictions and counts asynchronously;
//! `quick_cache` evicts by CLOCK/S3-FIFO with one weight capacity. The recency list here is
//! `hashlink`'s `LinkedHashMap` (the same crate rusqlite uses); this module adds the
//! weights, the single flight and the counters, exact and visible at once in
//! [`Cache::stats`].

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashlink::LinkedHashMap;
use serde::Serialize;
use tokio::sync::OnceCell;

/// The bounds of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most entries kept.
    pub max_entries: usize,
    /// Most total weight kept (bytes, as the cache's weigher estimates them).
    pub max_weight: u64,
}

/// What a cache holds and has done, for operators (`GET /api/v1/runtime`) and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// Entries held now.
    pub entries: u64,
    /// Total weight held now.
    pub weight: u64,
    pub max_entries: u64,
    pub max_weight: u64,
    /// Calls answered from memory.
    pub hits: u64,
    /// Calls that found no entry (and joined or started a load).
    pub misses: u64,
    /// Loaders run.
    pub loads: u64,
    /// Loaders that failed (their result is not kept).
    pub load_failures: u64,
    /// Entries dropped to stay within the bounds, and values too heavy to keep at all.
    pub evictions: u64,
    /// Entries dropped by `invalidate` / `invalidate_where`.
    pub invalidations: u64,
}

/// A bounded, least-recently-used cache with single-flight loads (see the module doc).
pub struct Cache<K, V> {
    limits: CacheLimits,
    weigher: Box<dyn Fn(&V) -> u64 + Send + Sync>,
    state: Mutex<State<K, V>>,
    hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    load_failures: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

/// A load in flight: every caller waiting for the key shares it.
type Flight<V> = Arc<OnceCell<Weighed<V>>>;

/// A loaded value with its weight, weighed once outside the lock.
struct Weighed<V> {
    value: Arc<V>,
    weight: u64,
}

impl<V> Clone for Weighed<V> {
    fn clone(&self) -> Self {
        Weighed { value: self.value.clone(), weight: self.weight }
    }
}

struct State<K, V> {
    /// Least recently used first.
    entries: LinkedHashMap<K, Weighed<V>>,
    weight: u64,
    flights: HashMap<K, Flight<V>>,
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone,
{
    /// An empty cache within `limits`, weighing each value with `weigher`.
    pub fn new(limits: CacheLimits, weigher: impl Fn(&V) -> u64 + Send + Sync + 'static) -> Cache<K, V> {
        Cache {
            limits,
            weigher: Box::new(weigher),
            state: Mutex::new(State { entries: LinkedHashMap::new(), weight: 0, flights: HashMap::new() }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            load_failures: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// The value of `key`: from memory, from a load already in flight, or loaded now by
    /// `load` (and kept, within the bounds). A failed load is not kept.
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let flight = {
            let mut state = self.lock();
            if let Some(entry) = state.entries.to_back(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.value.clone());
            }
            self.misses.fetch_add(1, Ordering::Relaxed);
            state.flights.entry(key.clone()).or_default().clone()
        };
        // Settles the flight however this call ends: loaded, failed or dropped.
        let landing = Landing { cache: self, key, flight: Some(flight) };
        let flight = landing.flight.as_ref().expect("set above");
        let loaded = flight
            .get_or_try_init(|| async {
                self.loads.fetch_add(1, Ordering::Relaxed);
                match load().await {
                    Ok(value) => {
                        let weight = (self.weigher)(&value);
                        Ok(Weighed { value: Arc::new(value), weight })
                    }
                    Err(error) => {
                        self.load_failures.fetch_add(1, Ordering::Relaxed);
                        Err(error)
                    }
                }
            })
            .await?;
        Ok(loaded.value.clone())
    }

    /// Keeps `value` for `key` (replacing any entry, and any load in flight, whose callers
    /// still get their own value) and returns it.
    pub fn insert(&self, key: K, value: V) -> Arc<V> {
        let weight = (self.weigher)(&value);
        let weighed = Weighed { value: Arc::new(value), weight };
        let value = weighed.value.clone();
        let dropped = {
            let mut state = self.lock();
            state.flights.remove(&key);
            self.admit(&mut state, key, weighed)
        };
        drop(dropped);
        value
    }

    /// Drops the entry of `key` and any load of it in flight; returns whether an entry was
    /// dropped. Its users keep their `Arc`s.
    pub fn invalidate(&self, key: &K) -> bool {
        let removed = {
            let mut state = self.lock();
            state.flights.remove(key);
            let removed = state.entries.remove(key);
            if let Some(entry) = &removed {
                state.weight -= entry.weight;
            }
            removed
        };
        let dropped = removed.is_some();
        if dropped {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
        dropped
    }

    /// Drops every entry, and every load in flight, whose key matches; returns how many
    /// entries were dropped.
    pub fn invalidate_where(&self, matches: impl Fn(&K) -> bool) -> usize {
        let mut removed = Vec::new();
        {
            let mut state = self.lock();
            state.flights.retain(|key, _| !matches(key));
            let mut freed = 0;
            state.entries.retain(|key, entry| {
                let keep = !matches(key);
                if !keep {
                    freed += entry.weight;
                    removed.push(entry.value.clone());
                }
                keep
            });
            state.weight -= freed;
        }
        self.invalidations.fetch_add(removed.len() as u64, Ordering::Relaxed);
        removed.len()
    }

    pub fn stats(&self) -> CacheStats {
        let (entries, weight) = {
            let state = self.lock();
            (state.entries.len() as u64, state.weight)
        };
        CacheStats {
            entries,
            weight,
            max_entries: self.limits.max_entries as u64,
            max_weight: self.limits.max_weight,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            load_failures: self.load_failures.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }

    /// Keeps `entry` as the most recently used one and evicts the least recently used ones
    /// past the bounds; returns the values it let go, for the caller to drop unlocked.
    fn admit(&self, state: &mut State<K, V>, key: K, entry: Weighed<V>) -> Vec<Arc<V>> {
        let mut dropped = Vec::new();
        if let Some(previous) = state.entries.remove(&key) {
            state.weight -= previous.weight;
            dropped.push(previous.value);
        }
        if entry.weight > self.limits.max_weight {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            return dropped;
        }
        state.weight += entry.weight;
        state.entries.insert(key, entry);
        while state.entries.len() > self.limits.max_entries || state.weight > self.limits.max_weight {
            let Some((_, evicted)) = state.entries.pop_front() else { break };
            state.weight -= evicted.weight;
            self.evictions.fetch_add(1, Ordering::Relaxed);
            dropped.push(evicted.value);
        }
        dropped
    }

    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        // The state is consistent between statements that do not panic; a poisoned lock
        // (a weigher or hasher that panicked) leaves nothing half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One caller's share of a flight. When the caller is done (or dropped), the first to land
/// keeps the loaded value; the last to give up on a failed flight removes it.
struct Landing<'a, K: Hash + Eq + Clone, V> {
    cache: &'a Cache<K, V>,
    key: K,
    flight: Option<Flight<V>>,
}

impl<K: Hash + Eq + Clone, V> Drop for Landing<'_, K, V> {
    fn drop(&mut self) {
        let Some(flight) = self.flight.take() else { return };
        let mut dropped = Vec::new();
        {
            let mut state = self.cache.lock();
            let current = state.flights.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &flight));
            if current {
                if let Some(loaded) = flight.get() {
                    state.flights.remove(&self.key);
                    dropped = self.cache.admit(&mut state, self.key.clone(), loaded.clone());
                } else {
                    // Every share is dropped under this lock: once only the map holds the
                    // flight, nobody waits on it any more.
                    drop(flight);
                    if state.flights.get(&self.key).is_some_and(|f| Arc::strong_count(f) == 1) {
                        state.flights.remove(&self.key);
                    }
                }
            }
        }
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn cache(max_entries: usize, max_weight: u64) -> Cache<&'static str, u64> {
        // A value weighs as much as it says.
        Cache::new(CacheLimits { max_entries, max_weight }, |value: &u64| *value)
    }

    async fn get(cache: &Cache<&'static str, u64>, key: &'static str, value: u64) -> u64 {
        *cache.get_or_load(key, || async move { Ok::<_, ()>(value) }).await.unwrap()
    }

    fn keys(cache: &Cache<&'static str, u64>) -> Vec<&'static str> {
        cache.lock().entries.keys().copied().collect()
    }

    #[tokio::test]
    async fn evicts_the_least_recently_used_entry_first() {
        let cache = cache(2, 100);
        get(&cache, "a", 1).await;
        get(&cache, "b", 1).await;
        get(&cache, "a", 1).await; // a is now more recent than b
        get(&cache, "c", 1).await;
        assert_eq!(keys(&cache), ["a", "c"]);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.loads, stats.evictions), (1, 3, 3, 1));
        assert_eq!((stats.entries, stats.weight), (2, 2));
    }

    #[tokio::test]
    async fn stays_within_the_weight_budget() {
        let cache = cache(100, 10);
        get(&cache, "a", 4).await;
        get(&cache, "b", 4).await;
        get(&cache, "c", 4).await;
        assert_eq!(keys(&cache), ["b", "c"]);
        assert_eq!(cache.stats().weight, 8);
        get(&cache, "d", 9).await;
        assert_eq!(keys(&cache), ["d"]);
        assert_eq!((cache.stats().weight, cache.stats().evictions), (9, 3));
    }

    #[tokio::test]
    async fn a_value_heavier_than_the_budget_is_returned_but_not_kept() {
        let cache = cache(100, 10);
        get(&cache, "a", 4).await;
        assert_eq!(get(&cache, "huge", 11).await, 11);
        assert_eq!(keys(&cache), ["a"]);
        assert_eq!(get(&cache, "huge", 11).await, 11);
        assert_eq!((cache.stats().loads, cache.stats().evictions), (3, 2));
    }

    #[tokio::test]
    async fn stays_within_the_entries_bound() {
        let cache = cache(3, u64::MAX);
        for key in ["a", "b", "c", "d", "e"] {
            get(&cache, key, 0).await;
        }
        assert_eq!(keys(&cache), ["c", "d", "e"]);
        assert_eq!((cache.stats().entries, cache.stats().evictions), (3, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_load() {
        let cache = Arc::new(cache(10, 100));
        let release = Arc::new(tokio::sync::Notify::new());
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (cache, release) = (cache.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("k", || async move {
                            release.notified().await;
                            Ok::<_, ()>(7)
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        // Every caller has missed (and so joined the one flight) before the load ends.
        while cache.stats().misses < 16 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        let values: Vec<Arc<u64>> = join_all(callers).await;
        assert!(values.iter().all(|v| Arc::ptr_eq(v, &values[0]) && **v == 7));
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.loads, stats.entries), (16, 1, 1));
        assert!(cache.lock().flights.is_empty());
    }

    async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_failed_load_is_not_kept() {
        let cache = cache(10, 100);
        let failed = cache.get_or_load("k", || async { Err::<u64, _>("store down") }).await;
        assert_eq!(failed, Err("store down"));
        assert!(keys(&cache).is_empty());
        assert!(cache.lock().flights.is_empty());
        assert_eq!(get(&cache, "k", 3).await, 3);
        let stats = cache.stats();
        assert_eq!((stats.loads, stats.load_failures, stats.entries), (2, 1, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_waiter_on_a_failed_load_runs_its_own_loader() {
        let cache = Arc::new(cache(10, 100));
        let release = Arc::new(tokio::sync::Notify::new());
        let failing = {
            let (cache, release) = (cache.clone(), release.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("k", || async move {
                        release.notified().await;
                        Err::<u64, _>("broken")
                    })
                    .await
            })
        };
        while cache.stats().loads < 1 {
            tokio::task::yield_now().await;
        }
        let waiting = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get_or_load("k", || async { Ok::<_, &str>(5) }).await })
        };
        while cache.stats().misses < 2 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        assert_eq!(failing.await.unwrap(), Err("broken"));
        assert_eq!(*waiting.await.unwrap().unwrap(), 5);
        let stats = cache.stats();
        assert_eq!((stats.loads, stats.load_failures, stats.entries), (2, 1, 1));
    }

    #[tokio::test]
    async fn a_caller_dropped_mid_load_leaves_nothing_behind() {
        let cache = cache(10, 100);
        let never = cache.get_or_load("k", std::future::pending::<Result<u64, ()>>);
        assert!(tokio::time::timeout(std::time::Duration::ZERO, never).await.is_err());
        assert!(cache.lock().flights.is_empty());
        assert_eq!(get(&cache, "k", 2).await, 2);
    }

    #[tokio::test]
    async fn invalidating_frees_a_value_once_its_last_user_drops_it() {
        let cache = cache(10, 100);
        let held = cache.get_or_load("a", || async { Ok::<_, ()>(1) }).await.unwrap();
        get(&cache, "b", 2).await;
        let watch = Arc::downgrade(&held);
        assert!(cache.invalidate(&"a"));
        assert!(!cache.invalidate(&"a"));
        assert_eq!((keys(&cache), cache.stats().weight), (vec!["b"], 2));
        assert_eq!(*held, 1, "a user keeps its value");
        drop(held);
        assert!(watch.upgrade().is_none(), "freed with its last user");
        assert_eq!(get(&cache, "a", 3).await, 3, "loaded again");
        assert_eq!(cache.stats().invalidations, 1);
    }

    #[tokio::test]
    async fn invalidate_where_drops_every_matching_key() {
        let cache: Cache<(&str, i64), u64> =
            Cache::new(CacheLimits { max_entries: 10, max_weight: 100 }, |value: &u64| *value);
        for (app, version) in [("x", 1), ("x", 2), ("y", 1), ("x", 3)] {
            cache.get_or_load((app, version), || async { Ok::<_, ()>(1) }).await.unwrap();
        }
        assert_eq!(cache.invalidate_where(|(app, version)| *app == "x" && *version < 3), 2);
        let kept: Vec<(&str, i64)> = cache.lock().entries.keys().copied().collect();
        assert_eq!(kept, [("y", 1), ("x", 3)]);
        assert_eq!((cache.stats().weight, cache.stats().invalidations), (2, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_invalidated_in_flight_answers_but_is_not_kept() {
        let cache = Arc::new(cache(10, 100));
        let release = Arc::new(tokio::sync::Notify::new());
        let loading = {
            let (cache, release) = (cache.clone(), release.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("k", || async move {
                        release.notified().await;
                        Ok::<_, ()>(1)
                    })
                    .await
            })
        };
        while cache.stats().loads < 1 {
            tokio::task::yield_now().await;
        }
        cache.invalidate(&"k");
        release.notify_one();
        assert_eq!(*loading.await.unwrap().unwrap(), 1);
        assert!(keys(&cache).is_empty());
        let calls = AtomicUsize::new(0);
        let again = cache
            .get_or_load("k", || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Ok::<_, ()>(2)
            })
            .await
            .unwrap();
        assert_eq!((*again, calls.load(Ordering::Relaxed)), (2, 1));
    }

    #[tokio::test]
    async fn insert_replaces_an_entry_and_counts_its_weight() {
        let cache = cache(10, 100);
        get(&cache, "a", 5).await;
        assert_eq!(*cache.insert("a", 7), 7);
        assert_eq!(get(&cache, "a", 0).await, 7);
        assert_eq!(cache.stats().weight, 7);
    }
}
