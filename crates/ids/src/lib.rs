//! Identifiers every layer of Stage makes the same way: time-ordered ids (`run_0mx6…`),
//! random tokens, content hashes, and the clock they read.
//!
//! ```
//! let id = stage_ids::new_id("run_");
//! assert!(id.starts_with("run_") && id.len() == 24);
//! assert_eq!(stage_ids::sha256_hex(b"").len(), 64);
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Current time in Unix milliseconds, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A new identifier: `prefix`, then 9 base-36 characters of the current Unix millisecond
/// and 11 random ones (~57 bits). Identifiers created later sort later, so rows keyed by
/// them are appended at the end of their B-trees instead of dirtying random pages.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 20);
    id.push_str(prefix);
    let mut time = [b'0'; 9];
    let mut ms = now_ms().max(0) as u64;
    for digit in time.iter_mut().rev() {
        *digit = BASE36[(ms % 36) as usize];
        ms /= 36;
    }
    id.push_str(std::str::from_utf8(&time).expect("base-36 digits"));
    id.push_str(&random_token(11));
    id
}

/// `length` random base-36 characters, for secrets and unique names.
pub fn random_token(length: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..length).map(|_| BASE36[rng.random_range(0..BASE36.len())] as char).collect()
}

/// Lowercase hex SHA-256 of `bytes`: the address of a blob and the stored form of API keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod id_tests {
    #[test]
    fn ids_are_prefixed_unique_and_ordered_by_time() {
        let first = super::new_id("run_");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = super::new_id("run_");
        assert!(first.starts_with("run_") && first.len() == 24, "{first}");
        assert!(first < second, "{first} {second}");
        assert_ne!(super::new_id("x"), super::new_id("x"));
    }
}
