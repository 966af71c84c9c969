//! The threads guests run on: a tokio runtime of their own, so that a host busy with guests
//! (a tenant's spinning steps, say) still answers HTTP promptly. Guests yield every few
//! milliseconds, but on the server's own workers every runnable guest would still queue in
//! front of every request; on threads of their own, the operating system shares the cores
//! between the server's threads and the guests'.

use std::future::Future;

use tokio::task::JoinError;

pub(crate) struct GuestThreads {
    /// Taken on drop, to shut it down without waiting (dropping a runtime from async code
    /// panics).
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestThreads {
    pub fn new() -> std::io::Result<GuestThreads> {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("stage-guest")
            .enable_all()
            .build()?;
        Ok(GuestThreads { runtime: Some(runtime) })
    }

    /// Runs `work` on the guest threads and waits for it; an error means it panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Result<T, JoinError> {
        self.runtime.as_ref().expect("guest threads are running").spawn(work).await
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
