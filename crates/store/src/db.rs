//! Connections: one writer thread with group commit, and a pool of read-only connections.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};

use super::sealed::Sealer;
use super::{StoreError, StoreResult, migrations};

/// Most jobs folded into one transaction; bounds the latency a large batch adds.
const MAX_BATCH: usize = 128;
const READERS: usize = 4;
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// WAL size (in 4 KiB pages) past which the checkpointer truncates the WAL.
const WAL_TRUNCATE_PAGES: i64 = 16_384;

/// What the writer thread does with a job once the batch's fate is known.
type Reply = Box<dyn FnOnce(Result<(), &str>) + Send>;
/// A unit of write work. It runs inside the batch transaction (or gets the reason it could
/// not run) and returns the reply to send once the batch commits or fails.
type Job = Box<dyn FnOnce(Result<&Connection, &str>) -> Reply + Send>;

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    readers: Arc<Readers>,
    /// Apps by sid, for the lookups every run makes; the apps module keeps it current.
    pub(super) app_cache: Arc<super::apps::AppCache>,
    /// Seals the secret columns on write and opens them on read.
    pub(super) sealer: Arc<Sealer>,
}

struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Store {
    pub(super) fn open(path: &Path, sealer: Sealer) -> anyhow::Result<Store> {
        let mut writer = connect(path)?;
        let mode: String = writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "could not enable WAL mode (got {mode})");
        migrations::apply(&mut writer)?;
        super::secrets::reseal_all(&mut writer, &sealer)?;
        // Checkpoints run on their own thread (below) so that commits never pay for them.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = connect(path)?;
        std::thread::Builder::new()
            .name("stage-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer))?;

        let mut idle = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = connect(path)?;
            conn.pragma_update(None, "query_only", true)?;
            idle.push(conn);
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread_path: PathBuf = path.to_owned();
        std::thread::Builder::new().name("stage-store-writer".into()).spawn(move || {
            write_loop(writer, queue);
            tracing::debug!(path = %thread_path.display(), "store writer stopped");
        })?;
        Ok(Store {
            jobs,
            readers: Arc::new(Readers { idle: Mutex::new(idle), permits: Arc::new(Semaphore::new(READERS)) }),
            app_cache: Arc::default(),
            sealer: Arc::new(sealer),
        })
    }

    /// Runs `work` in a write transaction and answers once it is durably committed.
    /// If `work` fails (or panics), its changes are rolled back and nothing is written.
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            let outcome = match conn {
                Ok(conn) => in_savepoint(conn, work),
                Err(why) => Err(StoreError::Internal(why.to_owned())),
            };
            Box::new(move |commit| {
                let result = match commit {
                    Ok(()) => outcome,
                    Err(why) => Err(StoreError::Internal(format!("commit failed: {why}"))),
                };
                let _ = done.send(result);
            })
        });
        self.jobs.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `work` on a read-only connection on a blocking thread.
    pub(crate) async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self.readers.permits.clone().acquire_owned().await.map_err(|_| closed())?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = readers.idle.lock().expect("reader pool poisoned").pop().ok_or_else(closed)?;
            let result = catch_unwind(AssertUnwindSafe(|| work(&conn)))
                .unwrap_or_else(|_| Err(StoreError::Internal("read panicked".into())));
            readers.idle.lock().expect("reader pool poisoned").push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

fn closed() -> StoreError {
    StoreError::Internal("the store is shut down".into())
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // FULL: a commit is fsynced before the writer answers, so acknowledged writes survive
    // a crash of the process or of the machine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reads come from the page cache through a memory map rather than pread calls.
    conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024)?;
    Ok(conn)
}

/// Runs one job inside a savepoint of the batch transaction so that its failure undoes
/// only its own changes.
fn in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(StoreError::Internal("write panicked".into())));
    match outcome {
        Ok(value) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(value)
        }
        Err(e) => {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Err(e)
        }
    }
}

/// Copies committed WAL pages into the database file in the background. PASSIVE never
/// blocks the writer or readers; it does what it can and the next round does the rest.
fn checkpoint_loop(conn: Connection) {
    loop {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        let result =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)));
        match result {
            Ok((wal_pages, copied)) => {
                tracing::trace!(wal_pages, copied, "checkpoint");
                // Long-lived readers can keep PASSIVE from finishing; past a bound, wait for
                // them and truncate so the WAL cannot grow without limit.
                if wal_pages > WAL_TRUNCATE_PAGES
                    && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                {
                    tracing::warn!(error = %e, "WAL truncation failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// The writer thread: takes every job waiting, runs them in one transaction, commits once
/// (one fsync for the whole batch), then answers each job.
fn write_loop(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let why = e.to_string();
            for job in batch {
                job(Err(&why))(Err(&why));
            }
            continue;
        }
        let size = batch.len();
        let started = std::time::Instant::now();
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(Ok(&conn))).collect();
        let ran = started.elapsed();
        let committed = conn.execute_batch("COMMIT");
        tracing::debug!(
            jobs = size,
            run_ms = ran.as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - ran).as_secs_f64() * 1e3,
            "write batch"
        );
        match committed {
            Ok(()) => replies.into_iter().for_each(|reply| reply(Ok(()))),
            Err(e) => {
                let why = e.to_string();
                let _ = conn.execute_batch("ROLLBACK");
                replies.into_iter().for_each(|reply| reply(Err(&why)));
            }
        }
    }
}
