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
