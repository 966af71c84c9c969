//! Secrets at rest: a [`Sealer`] seals a secret into the text stored in its column, and
//! opens it again, with XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`, a random
//! 24-byte nonce per value).
//!
//! Stored form: `sealed:v1:<key id>:<base64url(nonce | ciphertext and tag)>`. The key id
//! ([`SecretKey::id`]) names the key without revealing it, so that a value sealed under a
//! previous key is recognised and re-sealed under the current one at startup. The
//! associated data is the value's [`Slot`] (table, column, tenant, row): a sealed value
//! copied to another row, column or tenant does not open.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// What every sealed value starts with; the version names the format and the cipher.
pub const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 24;
/// Bytes of SHA-256 (as hex) in a key id: enough to tell a handful of keys apart.
const KEY_ID_BYTES: usize = 8;

/// A 256-bit secrets key. Its `Debug` shows only its id.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> SecretKey {
        SecretKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// Reads a key given as 64 hex digits or as base64 (standard or URL-safe, padded or
    /// not) of 32 bytes; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or("is neither 64 hex digits nor base64")?
        };
        let key: [u8; 32] =
            bytes.try_into().map_err(|bytes: Vec<u8>| format!("is {} bytes long, not 32", bytes.len()))?;
        Ok(SecretKey(key))
    }

    /// The key as standard base64, the form the key file holds and [`SecretKey::parse`] reads.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A short public name of the key: hex of the first bytes of SHA-256 over a label and
    /// the key (one-way, so it says nothing about the key).
    pub fn id(&self) -> String {
        let digest = Sha256::new().chain_update(b"stage secrets key id\0").chain_update(self.0).finalize();
        hex::encode(&digest[..KEY_ID_BYTES])
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

/// Where a sealed value lives: bound into its ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub tenant_id: &'a str,
    /// The row's key within the table (an app sid, a registration id).
    pub row: &'a str,
}

impl Slot<'_> {
    fn associated_data(&self) -> Vec<u8> {
        // A JSON array: unambiguous whatever characters the parts hold.
        serde_json::to_vec(&[PREFIX, self.table, self.column, self.tenant_id, self.row]).expect("strings serialize")
    }
}

impl fmt::Display for Slot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} of row {} (tenant {})", self.table, self.column, self.row, self.tenant_id)
    }
}

/// Why a stored value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("is stored in plain text, not sealed")]
    NotSealed,
    #[error("is not a well-formed sealed value ({0})")]
    Malformed(&'static str),
    #[error(
        "was sealed under secrets key {key_id}, which is neither the current key ({current}) nor one of the \
         previous keys: start with the key it was sealed under as --secrets-key, or add it to --secrets-previous-keys"
    )]
    UnknownKey { key_id: String, current: String },
    #[error("does not open under secrets key {key_id}: it was altered, or copied from another row")]
    Rejected { key_id: String },
}

/// What the startup sweep does with one stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reseal {
    /// Sealed under the current key, and it opens: nothing to do.
    Current,
    /// Was plain text (written before values were sealed); here it is sealed.
    Legacy(String),
    /// Was sealed under a previous key; here it is sealed under the current one.
    Rotated(String),
}

/// Seals under the current key; opens under the current key or any previous one.
pub struct Sealer {
    current: Keyed,
    previous: Vec<Keyed>,
}

struct Keyed {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Keyed {
    fn new(key: &SecretKey) -> Keyed {
        Keyed { id: key.id(), cipher: XChaCha20Poly1305::new(&key.0.into()) }
    }
}

impl Sealer {
    /// A sealer sealing under `current`; `previous` keys only open (for rotation).
    pub fn new(current: &SecretKey, previous: &[SecretKey]) -> Sealer {
        let current = Keyed::new(current);
        let mut keys: Vec<Keyed> = Vec::new();
        for key in previous.iter().map(Keyed::new) {
            if key.id != current.id && !keys.iter().any(|known| known.id == key.id) {
                keys.push(key);
            }
        }
        Sealer { current, previous: keys }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// The stored form of `secret` in `slot`, under the current key with a fresh nonce.
    pub fn seal(&self, slot: &Slot<'_>, secret: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = slot.associated_data();
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: &aad })
            .expect("XChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current.id, URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The secret sealed in `stored`, which must be a sealed value of `slot`.
    pub fn open(&self, slot: &Slot<'_>, stored: &str) -> Result<String, SealError> {
        self.open_with_key(slot, stored).map(|(secret, _)| secret)
    }

    /// Checks one stored value at startup: plain text and values under a previous key come
    /// back sealed under the current key; a value that opens with no known key is an error.
    pub fn reseal(&self, slot: &Slot<'_>, stored: &str) -> Result<Reseal, SealError> {
        match self.open_with_key(slot, stored) {
            Ok((_, true)) => Ok(Reseal::Current),
            Ok((secret, false)) => Ok(Reseal::Rotated(self.seal(slot, &secret))),
            Err(SealError::NotSealed) => Ok(Reseal::Legacy(self.seal(slot, stored))),
            Err(error) => Err(error),
        }
    }

    /// The secret, and whether it was sealed under the current key.
    fn open_with_key(&self, slot: &Slot<'_>, stored: &str) -> Result<(String, bool), SealError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(if stored.starts_with("sealed:") {
            SealError::Malformed("unknown version")
        } else {
            SealError::NotSealed
        })?;
        let (key_id, payload) = rest.split_once(':').ok_or(SealError::Malformed("no key id"))?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| SealError::UnknownKey { key_id: key_id.to_owned(), current: self.current.id.clone() })?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| SealError::Malformed("not base64url"))?;
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Malformed("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let aad = slot.associated_data();
        let opened = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| SealError::Rejected { key_id: key.id.clone() })?;
        let secret = String::from_utf8(opened).map_err(|_| SealError::Malformed("not UTF-8"))?;
        Ok((secret, std::ptr::eq(key, &self.current)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOT: Slot<'static> =
        Slot { table: "comm_registrations", column: "settings", tenant_id: "ten_a", row: "reg_1" };

    fn sealer() -> (SecretKey, Sealer) {
        let key = SecretKey::generate();
        let sealer = Sealer::new(&key, &[]);
        (key, sealer)
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_does_not_show() {
        let (key, sealer) = sealer();
        let stored = sealer.seal(&SLOT, "smtp://mailer:hunter22@mail.example.com");
        assert!(stored.starts_with(&format!("sealed:v1:{}:", key.id())), "{stored}");
        assert!(!stored.contains("hunter22"));
        assert_eq!(sealer.open(&SLOT, &stored).unwrap(), "smtp://mailer:hunter22@mail.example.com");
        assert_ne!(sealer.seal(&SLOT, "same"), sealer.seal(&SLOT, "same"), "every seal has its own nonce");
        assert_eq!(sealer.open(&SLOT, &sealer.seal(&SLOT, "")).unwrap(), "");
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let (key, sealer) = sealer();
        let stored = sealer.seal(&SLOT, "whsec_0123456789abcdef");
        let (head, payload) = stored.rsplit_once(':').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        for index in [0, NONCE_BYTES, bytes.len() - 1] {
            bytes[index] ^= 1;
            let tampered = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(sealer.open(&SLOT, &tampered), Err(SealError::Rejected { key_id: key.id() }));
            bytes[index] ^= 1;
        }
        let truncated = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes[..NONCE_BYTES + 3]));
        assert_eq!(sealer.open(&SLOT, &truncated), Err(SealError::Rejected { key_id: key.id() }));
        assert_eq!(sealer.open(&SLOT, &format!("{head}:AAAA")), Err(SealError::Malformed("too short")));
        assert_eq!(sealer.open(&SLOT, &format!("{head}:!!")), Err(SealError::Malformed("not base64url")));
        assert_eq!(sealer.open(&SLOT, "sealed:v9:x:y"), Err(SealError::Malformed("unknown version")));
        assert_eq!(sealer.open(&SLOT, "plain secret"), Err(SealError::NotSealed));
    }

    #[test]
    fn a_value_moved_to_another_row_column_or_tenant_does_not_open() {
        let (key, sealer) = sealer();
        let stored = sealer.seal(&SLOT, "whsec_0123456789abcdef");
        for elsewhere in [
            Slot { row: "reg_2", ..SLOT },
            Slot { tenant_id: "ten_b", ..SLOT },
            Slot { column: "secret", ..SLOT },
            Slot { table: "app_google_credentials", ..SLOT },
        ] {
            assert_eq!(sealer.open(&elsewhere, &stored), Err(SealError::Rejected { key_id: key.id() }), "{elsewhere}");
        }
    }

    #[test]
    fn a_value_under_an_unknown_key_does_not_open_and_names_both_keys() {
        let (old_key, old) = sealer();
        let stored = old.seal(&SLOT, "1//refresh-me");
        let (new_key, new) = sealer();
        let error = new.open(&SLOT, &stored).unwrap_err();
        assert_eq!(error, SealError::UnknownKey { key_id: old_key.id(), current: new_key.id() });
        assert!(error.to_string().contains(&old_key.id()) && error.to_string().contains(&new_key.id()), "{error}");
        // A wrong key under the right id (a forged id) is rejected, not trusted.
        let forged = stored.replace(&old_key.id(), &new_key.id());
        assert_eq!(new.open(&SLOT, &forged), Err(SealError::Rejected { key_id: new_key.id() }));
    }

    #[test]
    fn rotation_reseals_legacy_and_previous_values_under_the_current_key() {
        let (old_key, old) = sealer();
        let under_old = old.seal(&SLOT, "1//refresh-me");
        let new_key = SecretKey::generate();
        let rotating = Sealer::new(&new_key, &[old_key.clone(), new_key.clone(), old_key]);
        assert_eq!(rotating.previous.len(), 1, "the current key and duplicates are dropped");
        assert_eq!(rotating.open(&SLOT, &under_old).unwrap(), "1//refresh-me");

        let Reseal::Rotated(resealed) = rotating.reseal(&SLOT, &under_old).unwrap() else { panic!("not rotated") };
        assert!(resealed.starts_with(&format!("sealed:v1:{}:", new_key.id())), "{resealed}");
        assert_eq!(Sealer::new(&new_key, &[]).open(&SLOT, &resealed).unwrap(), "1//refresh-me");
        assert_eq!(rotating.reseal(&SLOT, &resealed), Ok(Reseal::Current));

        let Reseal::Legacy(sealed) = rotating.reseal(&SLOT, "1//plain").unwrap() else { panic!("not legacy") };
        assert_eq!(rotating.open(&SLOT, &sealed).unwrap(), "1//plain");
        assert!(matches!(rotating.reseal(&SLOT, "sealed:v1:0011223344556677:AAAA"), Err(SealError::UnknownKey { .. })));
    }

    #[test]
    fn keys_are_read_from_hex_or_base64_and_never_printed() {
        let key = SecretKey::generate();
        assert_eq!(SecretKey::parse(&key.encode()).unwrap(), key);
        assert_eq!(SecretKey::parse(&format!(" {}\n", hex::encode(key.0))).unwrap(), key);
        assert_eq!(SecretKey::parse(&URL_SAFE_NO_PAD.encode(key.0)).unwrap(), key);
        assert_eq!(SecretKey::parse(&STANDARD.encode([7u8; 16])).unwrap_err(), "is 16 bytes long, not 32");
        assert_eq!(SecretKey::parse("not a key!").unwrap_err(), "is neither 64 hex digits nor base64");
        let shown = format!("{key:?}");
        assert_eq!(shown, format!("SecretKey({})", key.id()));
        assert!(!shown.contains(&key.encode()) && key.id().len() == 16);
    }
}
