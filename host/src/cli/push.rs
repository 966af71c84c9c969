//! `stage push DIR [REMOTE_DIR]`: a local folder into a session, then a render.
//!
//! Files go in batches of at most [`BATCH_FILES`] files and about [`BATCH_BYTES`] bytes,
//! each batch one push request (one transaction on the server), so that a large folder
//! stays under the server's request limit and its progress can be shown. A push of more
//! than one batch is therefore not atomic: if a batch fails, the batches before it are
//! written; pushing again writes every file again.
//!
//! Progress (`pushed 200/1000 files`) goes to stderr for pushes of more than one batch:
//! updated in place when stderr is a terminal, or one line per batch with `--progress`
//! when it is not (a log, a test); never with `--quiet`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::PushArgs;
use super::client::{CliError, Client, Reply};
use super::output::{self, Style};
use super::session::{absolute, session_url};
use super::wire::{PushRequest, PushResult, PushedFile, RenderRequest, RenderState};

/// Most files in one push request.
pub const BATCH_FILES: usize = 100;
/// Bytes of file content after which a batch is closed (a larger file goes alone).
pub const BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// Files listed in the human output of a push; past it, a count.
const LISTED_FILES: usize = 20;

/// A local file and where it goes in the session.
struct Planned {
    local: PathBuf,
    remote: String,
    size: u64,
}

/// `push --json`.
#[derive(Serialize)]
struct Pushed<'a> {
    session: &'a str,
    files: Vec<String>,
    count: usize,
    /// The render's `{entry, version}`, or `null` when there was none.
    render: Value,
}

pub async fn push(client: &Client, args: PushArgs) -> Result<(), CliError> {
    let session = args.session.session.as_str();
    let remote_dir = absolute(args.remote_dir.trim_end_matches('/'));
    let files = plan(Path::new(&args.local_dir), &remote_dir)?;
    if files.is_empty() {
        return Err(CliError::Usage(format!("no files to push in {}", args.local_dir)));
    }
    let batches = batches(&files);
    let style = args.output.style();
    let mut progress = Progress::new(files.len(), batches.len() > 1 && style != Style::Quiet, args.progress);
    for batch in batches {
        let mut request = PushRequest::default();
        for file in batch {
            let bytes = std::fs::read(&file.local)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.local.display())))?;
            request.files.insert(file.remote.clone(), PushedFile::new(bytes));
        }
        let pushed: Reply<PushResult> = client.post(session_url(client, session, &["push"]), &request).await?;
        progress.advance(pushed.data.count);
    }
    progress.finish();

    let remote: Vec<String> = files.into_iter().map(|f| f.remote).collect();
    let default_entry = format!("{}/App.tsx", remote_dir.trim_end_matches('/'));
    // Rendered even when the push holds no entry: the render then reports it missing.
    let entry = args.entry.as_deref().map_or(default_entry, absolute);
    let render = if args.no_render {
        None
    } else {
        let request = RenderRequest { entry: Some(&entry) };
        Some(client.post::<_, RenderState>(session_url(client, session, &["render"]), &request).await?)
    };
    match style {
        Style::Json => {
            let render = render.map(|r| r.json).unwrap_or(Value::Null);
            output::json(&Pushed { session, count: remote.len(), files: remote, render });
        }
        Style::Quiet => {}
        Style::Human => {
            println!("✓ Pushed {} to {remote_dir}", output::count(remote.len(), "file"));
            for path in remote.iter().take(LISTED_FILES) {
                println!("  {path}");
            }
            if remote.len() > LISTED_FILES {
                println!("  … and {} more", remote.len() - LISTED_FILES);
            }
            if let Some(render) = render {
                println!("{}", render.data.summary());
            }
        }
    }
    Ok(())
}

/// The files to push, sorted by their path in the session: `local` itself when it is a
/// file, else every file under it.
fn plan(local: &Path, remote_dir: &str) -> Result<Vec<Planned>, CliError> {
    let cannot = |path: &Path, e: std::io::Error| CliError::Usage(format!("cannot read {}: {e}", path.display()));
    let metadata = std::fs::metadata(local).map_err(|e| cannot(local, e))?;
    let base = remote_dir.trim_end_matches('/');
    let mut files = Vec::new();
    if metadata.is_file() {
        let name = utf8_name(local)?;
        files.push(Planned { local: local.to_owned(), remote: format!("{base}/{name}"), size: metadata.len() });
    } else {
        walk(local, base, &mut files)?;
    }
    files.sort_by(|a, b| a.remote.cmp(&b.remote));
    Ok(files)
}

/// Adds the files under `folder`, skipping `node_modules` and dot entries. Symbolic links
/// to files are followed; links to folders are skipped (they could loop).
fn walk(folder: &Path, remote: &str, files: &mut Vec<Planned>) -> Result<(), CliError> {
    let cannot = |e: std::io::Error| CliError::Usage(format!("cannot read {}: {e}", folder.display()));
    for entry in std::fs::read_dir(folder).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        let name = utf8_name(&path)?;
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        let link = std::fs::symlink_metadata(&path).map_err(cannot)?;
        let metadata = std::fs::metadata(&path).map_err(cannot)?;
        let remote = format!("{remote}/{name}");
        if metadata.is_dir() && !link.file_type().is_symlink() {
            walk(&path, &remote, files)?;
        } else if metadata.is_file() {
            files.push(Planned { local: path, remote, size: metadata.len() });
        }
    }
    Ok(())
}

fn utf8_name(path: &Path) -> Result<&str, CliError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::Usage(format!("{} has no UTF-8 file name; session paths are text", path.display())))
}

/// Consecutive runs of files of at most [`BATCH_FILES`] files and about [`BATCH_BYTES`].
fn batches(files: &[Planned]) -> Vec<&[Planned]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (index, file) in files.iter().enumerate() {
        let full = index - start == BATCH_FILES || (index > start && bytes + file.size > BATCH_BYTES);
        if full {
            batches.push(&files[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += file.size;
    }
    if start < files.len() {
        batches.push(&files[start..]);
    }
    batches
}

/// The progress of a push on stderr.
struct Progress {
    total: usize,
    done: usize,
    shown: Option<Shown>,
}

enum Shown {
    /// One line rewritten in place.
    InPlace,
    /// One line per batch.
    Lines,
}

impl Progress {
    fn new(total: usize, wanted: bool, forced: bool) -> Progress {
        let shown = match (wanted, std::io::stderr().is_terminal(), forced) {
            (false, _, _) => None,
            (true, true, _) => Some(Shown::InPlace),
            (true, false, true) => Some(Shown::Lines),
            (true, false, false) => None,
        };
        Progress { total, done: 0, shown }
    }

    fn advance(&mut self, files: usize) {
        self.done += files;
        let mut stderr = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not fail the push.
        let _ = match self.shown {
            Some(Shown::InPlace) => write!(stderr, "\rpushed {}/{} files", self.done, self.total),
            Some(Shown::Lines) => writeln!(stderr, "pushed {}/{} files", self.done, self.total),
            None => Ok(()),
        };
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if let Some(Shown::InPlace) = self.shown {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<Planned> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Planned { local: PathBuf::new(), remote: format!("/f{i}"), size })
            .collect()
    }

    #[test]
    fn batches_hold_at_most_batch_files() {
        let files = files(&[1; 250]);
        let lengths: Vec<usize> = batches(&files).iter().map(|b| b.len()).collect();
        assert_eq!(lengths, [100, 100, 50]);
    }

    #[test]
    fn a_batch_closes_before_it_passes_batch_bytes_and_a_large_file_goes_alone() {
        let files = files(&[BATCH_BYTES / 2, BATCH_BYTES / 2, 1, BATCH_BYTES * 2, 1]);
        let lengths: Vec<usize> = batches(&files).iter().map(|b| b.len()).collect();
        assert_eq!(lengths, [2, 1, 1, 1]);
    }
}
