//! Bounded capture of a guest's stdout, stderr and log lines.
//!
//! Writes past the bound are accepted and dropped (the guest never fails because it
//! printed too much); the capture notes that it was truncated.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A bounded text buffer shared between the guest's stream and the host.
#[derive(Debug, Clone)]
pub struct Capture {
    inner: Arc<Mutex<Buffer>>,
}

#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    capacity: usize,
    truncated: bool,
}

impl Capture {
    pub fn new(capacity: usize) -> Capture {
        Capture { inner: Arc::new(Mutex::new(Buffer { bytes: Vec::new(), capacity, truncated: false })) }
    }

    /// Appends what fits.
    pub fn append(&self, bytes: &[u8]) {
        let mut buffer = self.inner.lock().expect("capture poisoned");
        let room = buffer.capacity.saturating_sub(buffer.bytes.len());
        if bytes.len() > room {
            buffer.truncated = true;
        }
        let take = bytes.len().min(room);
        buffer.bytes.extend_from_slice(&bytes[..take]);
    }

    /// The captured text, with a marker when output was dropped.
    pub fn text(&self) -> String {
        let buffer = self.inner.lock().expect("capture poisoned");
        let mut text = String::from_utf8_lossy(&buffer.bytes).into_owned();
        if buffer.truncated {
            text.push_str("\n[output truncated]");
        }
        text
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        self.append(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One log line a guest wrote through the `log` interface.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// The lines a guest logs, up to a byte bound (later lines are dropped).
#[derive(Debug, Clone, Default)]
pub(crate) struct LogBook {
    lines: Vec<LogLine>,
    bytes: usize,
    limit: usize,
}

impl LogBook {
    pub fn new(limit: usize) -> LogBook {
        LogBook { lines: Vec::new(), bytes: 0, limit }
    }

    pub fn push(&mut self, level: &'static str, message: String) {
        if self.bytes + message.len() > self.limit {
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine { level, message });
    }

    pub fn lines(&self) -> &[LogLine] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::Capture;

    #[test]
    fn keeps_what_fits_and_marks_the_rest() {
        let capture = Capture::new(5);
        capture.append(b"abc");
        assert_eq!(capture.text(), "abc");
        capture.append(b"defg");
        assert_eq!(capture.text(), "abcde\n[output truncated]");
    }
}
