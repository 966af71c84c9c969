//! Per-invocation limits and the memory limiter that enforces them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one invocation of a component may use. Breaching a limit ends that invocation
/// with a clear error; the host and other invocations carry on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time from instantiation to the answer, host calls included.
    pub wall_time_ms: u64,
    /// Linear memory, in bytes, across the instance's memories.
    pub memory_bytes: usize,
    /// Outbound HTTP requests.
    pub outbound_requests: u32,
    /// Bytes sent in outbound request bodies plus bytes received in response bodies.
    pub outbound_bytes: u64,
    /// The step's JSON output, or a backend's response body.
    pub output_bytes: usize,
    /// A backend's request body.
    pub input_bytes: usize,
    /// Captured stdout, stderr and log lines, each.
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_time_ms: 10_000,
            memory_bytes: 64 * 1024 * 1024,
            outbound_requests: 32,
            outbound_bytes: 16 * 1024 * 1024,
            output_bytes: 1024 * 1024,
            input_bytes: 1024 * 1024,
            log_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }
}

/// Caps linear memory and remembers a refused growth, so that the resulting trap can be
/// reported as "memory limit exceeded" rather than as a bare `unreachable`.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    /// The size a refused growth asked for.
    pub refused: Option<usize>,
}

impl MemoryLimiter {
    pub fn new(max_bytes: usize) -> MemoryLimiter {
        MemoryLimiter { max_bytes, refused: None }
    }
}

/// Tables hold function references; a step needs few.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, memories and tables per store (a component holds a few of each).
const MAX_PARTS: usize = 32;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_PARTS
    }

    fn tables(&self) -> usize {
        MAX_PARTS
    }

    fn memories(&self) -> usize {
        MAX_PARTS
    }
}

/// Epoch ticks between a guest's cooperative yields (one tick is [`super::TICK`]).
const YIELD_TICKS: u64 = 5;

/// Marks the trap raised when the wall-time deadline passes inside guest code.
#[derive(Debug, thiserror::Error)]
#[error("wall-time deadline passed")]
pub(crate) struct DeadlinePassed;

/// Makes guest code in `store` yield to the host every few epoch ticks and trap with
/// [`DeadlinePassed`] once `wall` has passed.
pub(crate) fn arm_deadline<T>(store: &mut wasmtime::Store<T>, wall: Duration) {
    let deadline = std::time::Instant::now() + wall;
    store.set_epoch_deadline(YIELD_TICKS);
    store.epoch_deadline_callback(move |_| {
        if std::time::Instant::now() >= deadline {
            return Err(DeadlinePassed.into());
        }
        Ok(wasmtime::UpdateDeadline::Yield(YIELD_TICKS))
    });
}
