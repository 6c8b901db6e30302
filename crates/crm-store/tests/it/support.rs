//! Shared helpers: temp databases and child processes.
//!
//! Some tests need a second process (a crash, a competing lease holder).
//! They re-run this test binary on one test (`--exact`) with an environment
//! variable telling that test to play the child's part.

use crm_store::{SqliteStore, StoreOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// A fresh directory and a database path inside it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    (dir, db)
}

pub async fn open(db: &Path) -> SqliteStore {
    SqliteStore::open(db, StoreOptions::default())
        .await
        .expect("open store")
}

/// Runs the test named `test` (module path inside this binary) in a child
/// process with `env` set, and returns how it ended.
pub fn run_child(test: &str, env: &[(&str, &str)]) -> ExitStatus {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    // The child's test-harness chatter would interleave with ours; its
    // panics (stderr) still show.
    cmd.stdout(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.status().expect("run child test process")
}

/// The bytes of the database and its `-wal` and `-shm` files.
pub fn db_files(db: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_os_string();
            p.push(suffix);
            let p = PathBuf::from(p);
            std::fs::read(&p)
                .ok()
                .map(|bytes| (p.display().to_string(), bytes))
        })
        .collect()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether a child process died of `abort()` (SIGABRT), i.e. crashed where
/// the test meant it to, rather than failing an assertion earlier.
pub fn aborted(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal() == Some(6)
}

/// Everything this test binary logs, for tests that check what a warning
/// names (and that it never holds a secret). One global subscriber: the
/// store logs from its own threads, where a scoped one would not see it.
pub fn logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        logs
    })
}

#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// The lines logged so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
