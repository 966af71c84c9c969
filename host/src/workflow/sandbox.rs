//! The host's own sandboxes — the template sandbox ([`super::template`]) and the formula
//! sandbox ([`super::formulas`]) — are wasm components embedded in the binary and run like
//! steps: [`HostSandbox`] prepares one once, and [`ended`] says why an evaluation in one
//! gave no answer.

use std::sync::Arc;

use tokio::sync::OnceCell;

use stage_runtime::{Failure, PreparedStep, Runtime};

/// An embedded component, compiled (or loaded from the compiled cache) on first use.
pub struct HostSandbox {
    wasm: &'static [u8],
    prepared: OnceCell<PreparedStep>,
}

impl HostSandbox {
    pub fn new(wasm: &'static [u8]) -> HostSandbox {
        HostSandbox { wasm, prepared: OnceCell::new() }
    }

    pub async fn prepared(&self, runtime: &Runtime) -> anyhow::Result<&PreparedStep> {
        self.prepared
            .get_or_try_init(|| async {
                let hash = stage_store::sha256_hex(self.wasm);
                runtime.prepare_step(&hash, || async { anyhow::Ok(Arc::<[u8]>::from(self.wasm)) }).await
            })
            .await
    }
}

/// Why one of the host's sandboxes (templates, formulas) gave no answer, as the end of a
/// sentence naming what it evaluated: "took longer than 500 ms", "needed more than 64 MiB
/// of memory", "produced more than N bytes" (`budget`), "stopped: …".
pub fn ended(failure: Failure, stderr: &str, budget: usize) -> String {
    match failure {
        Failure::Timeout { limit, .. } => format!("took longer than {} ms", limit.as_millis()),
        Failure::MemoryExceeded { limit, .. } => format!("needed more than {} MiB of memory", limit / (1024 * 1024)),
        Failure::OutputTooLarge { .. } => format!("produced more than {budget} bytes"),
        Failure::Trap { why, .. } if why.contains("call stack exhausted") => {
            "stopped: it recursed too deep (the call stack ran out)".into()
        }
        Failure::Trap { .. } => format!("stopped: {}", panic_message(stderr)),
        other => other.to_string(),
    }
}

/// What a guest's panic said, from its captured stderr.
fn panic_message(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|line| line.split_once("panicked at ").map(|(_, rest)| rest.to_string()))
        .map(|at| {
            let reason = stderr.lines().skip_while(|line| !line.contains("panicked at ")).nth(1).unwrap_or("");
            format!("evaluation panicked ({}) at {at}", reason.trim())
        })
        .unwrap_or_else(|| "evaluation crashed".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_panic_is_described_by_its_message() {
        let stderr = "\nthread '<unnamed>' panicked at library/alloc/src/raw_vec.rs:24:5:\ncapacity overflow\nnote: …";
        assert_eq!(
            panic_message(stderr),
            "evaluation panicked (capacity overflow) at library/alloc/src/raw_vec.rs:24:5:"
        );
        assert_eq!(panic_message(""), "evaluation crashed");
    }
}
