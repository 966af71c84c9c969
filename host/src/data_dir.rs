//! The data folder: private to the server's user, and the secrets key kept in it.
//!
//! [`make_private`] sets the process umask to `077`, so that every folder and file the
//! server creates from then on (the database and SQLite's `-wal`, `-shm` and `-journal`
//! files, compiled components, key files) is `0700`/`0600`, and takes the group and other
//! bits off whatever already exists in the folder, logging each change.
//!
//! [`secrets_sealer`] builds the [`Sealer`] of secrets at rest from `--secrets-key` and
//! `--secrets-previous-keys`, or from the key file `DATA_DIR/secrets-key` (created `0600`
//! at first start when no key is given).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::SecretsSettings;
use stage_store::sealed::{Sealer, SecretKey};

/// Name of the file in the data folder holding the secrets key (mode 0600).
pub const SECRETS_KEY_FILE: &str = "secrets-key";

/// Makes new files private to the server's user (process-wide umask `077`), creates the
/// data folder `0700` if needed, and tightens what it already holds (folders `0700`, files
/// without group or other bits). Symbolic links are left alone, and not followed.
pub fn make_private(data_dir: &Path) -> anyhow::Result<()> {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
    let mut tightened = Vec::new();
    tighten(data_dir, &mut tightened).with_context(|| format!("restricting access to {}", data_dir.display()))?;
    for (path, from, to) in &tightened {
        tracing::warn!(
            path = %path.display(),
            from = format_args!("{from:o}"),
            to = format_args!("{to:o}"),
            "took group and other access off an entry of the data folder"
        );
    }
    Ok(())
}

/// Takes the group and other bits off `path` and, for a folder, everything under it.
fn tighten(path: &Path, tightened: &mut Vec<(PathBuf, u32, u32)>) -> std::io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    let mode = metadata.permissions().mode() & 0o7777;
    let private = mode & 0o700;
    if mode != private {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
        tightened.push((path.to_owned(), mode, private));
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            tighten(&entry?.path(), tightened)?;
        }
    }
    Ok(())
}

/// Where the current secrets key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `--secrets-key` / `STAGE_SECRETS_KEY`.
    Given,
    /// The key file, as it was.
    File,
    /// The key file, created now: there was none.
    Created,
}

/// The sealer of secrets at rest, and where its current key came from.
pub fn secrets_sealer(data_dir: &Path, settings: &SecretsSettings) -> anyhow::Result<(Sealer, KeySource)> {
    let (given, previous) = settings.keys()?;
    let path = data_dir.join(SECRETS_KEY_FILE);
    let (current, source) = match given {
        Some(key) => {
            if path.exists() {
                tracing::warn!(
                    path = %path.display(),
                    "--secrets-key is given, so the key file in the data folder is not used; remove it once no \
                     backup needs it, or it sits next to the data it protects"
                );
            }
            (key, KeySource::Given)
        }
        None if path.exists() => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let key = SecretKey::parse(&text).map_err(|why| anyhow::anyhow!("the key in {} {why}", path.display()))?;
            (key, KeySource::File)
        }
        None => {
            let key = SecretKey::generate();
            write_key_file(&path, &key).with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), key = key.id(), "created the secrets key");
            (key, KeySource::Created)
        }
    };
    Ok((Sealer::new(&current, &previous), source))
}

/// Writes the key atomically with mode 0600.
fn write_key_file(path: &Path, key: &SecretKey) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    writeln!(file, "{}", key.encode())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(folder) = path.parent() {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// Name of the file in the data folder holding the key that signs preview pages' tokens.
pub const PREVIEW_KEY_FILE: &str = "preview-key";

/// The key of preview pages' tokens (`DATA_DIR/preview-key`, made at first start), so that
/// a page's token stays good across restarts.
pub fn preview_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    let path = data_dir.join(PREVIEW_KEY_FILE);
    let key = if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        SecretKey::parse(&text).map_err(|why| anyhow::anyhow!("the key in {} {why}", path.display()))?
    } else {
        let key = SecretKey::generate();
        write_key_file(&path, &key).with_context(|| format!("writing {}", path.display()))?;
        key
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(key.encode())?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the key in {} is not 32 bytes", path.display()))
}
