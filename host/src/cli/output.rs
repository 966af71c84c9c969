//! How the client commands print: short text for people by default, JSON with `--json`,
//! the bare minimum with `--quiet`. Results go to stdout; errors and progress to stderr.

use clap::Args;
use serde::Serialize;

/// `--json` and `--quiet`, on every client command.
#[derive(Debug, Args)]
pub struct OutputFlags {
    /// Print the result as JSON (pretty-printed; the shape of each command is in the README).
    #[arg(long)]
    pub json: bool,
    /// Print only what a script needs (an id, a file's content), or nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What a command prints; `--json` wins over `--quiet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Human,
    Json,
    Quiet,
}

impl OutputFlags {
    pub fn style(&self) -> Style {
        match (self.json, self.quiet) {
            (true, _) => Style::Json,
            (false, true) => Style::Quiet,
            (false, false) => Style::Human,
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Values here are built from JSON, so this cannot happen; say so if it does.
        Err(e) => eprintln!("error: cannot print the result as JSON: {e}"),
    }
}

/// `1 file`, `2 files`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// How long ago a Unix-millisecond time was: `5s ago`, `3m ago`, `2h ago`, `4d ago`.
pub fn ago(unix_ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(unix_ms);
    let seconds = (now - unix_ms).max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86_400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// A byte count for people: `512 B`, `2.0 KiB`, `1.5 MiB`.
pub fn bytes(n: i64) -> String {
    const KIB: f64 = 1024.0;
    let n = n.max(0) as f64;
    if n < KIB {
        format!("{n} B")
    } else if n < KIB * KIB {
        format!("{:.1} KiB", n / KIB)
    } else {
        format!("{:.1} MiB", n / (KIB * KIB))
    }
}
