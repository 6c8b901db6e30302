//! The real binaries (`crm-server`, `crm`) for the crash, load, bad-input
//! and canary tests.
//!
//! `env!("CARGO_BIN_EXE_…")` only names binaries of the test's own package,
//! so the suite builds them itself, once per test process, with the cargo
//! that runs the tests (`$CARGO`) into the same target directory and
//! profile as the test executable (`<target>/<profile>/deps/it-…`): a no-op
//! when they are fresh, and never a stale binary. `CRM_SERVER_BIN` /
//! `CRM_CLI_BIN` / `CRM_ACCEPTANCE_BIN` point at prebuilt binaries instead (e.g. a release build).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `<target>/<profile>` of the running test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/<profile>/deps/<test exe>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test executable lives in <target>/<profile>/deps")
}

fn build(package: &str, bin: &str) -> PathBuf {
    let dir = profile_dir();
    let target = dir.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            package,
            "--bin",
            bin,
            "--target-dir",
        ])
        .arg(&target);
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => {}
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let path = dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The `crm-server` binary.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("CRM_SERVER_BIN") {
        Some(p) => PathBuf::from(p),
        None => build("crm-server", "crm-server"),
    })
    .clone()
}

/// The `crm` CLI binary.
pub fn cli_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("CRM_CLI_BIN") {
        Some(p) => PathBuf::from(p),
        None => build("crm", "crm"),
    })
    .clone()
}

/// The `crm-acceptance` evidence harness binary.
pub fn acceptance_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("CRM_ACCEPTANCE_BIN") {
        Some(p) => PathBuf::from(p),
        None => build("crm-acceptance", "crm-acceptance"),
    })
    .clone()
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    pub db: PathBuf,
    pub admin_token: String,
    pub upstream_via: Option<String>,
    pub packs_dir: Option<PathBuf>,
    /// `RUST_LOG` of the server.
    pub rust_log: String,
    /// Run the reconcile scheduler (`--scheduler`); off unless a test is
    /// about the scheduler, so that no background run touches its hosts.
    pub scheduler: bool,
    /// Extra environment of the server: for replicas on PostgreSQL the
    /// pepper and seal key files, `CRM_REPLICA_ID`, a short
    /// `CRM_LEASE_TTL_SECS` or `CRM_SCHEDULER_TICK_SECS`.
    pub env: Vec<(String, String)>,
}

impl ServerOpts {
    pub fn new(db: impl Into<PathBuf>, admin_token: impl Into<String>) -> ServerOpts {
        ServerOpts {
            db: db.into(),
            admin_token: admin_token.into(),
            upstream_via: None,
            packs_dir: None,
            rust_log: "info".into(),
            scheduler: false,
            env: Vec::new(),
        }
    }

    /// Adds one environment variable of the server.
    pub fn with_env(mut self, name: &str, value: impl Into<String>) -> ServerOpts {
        self.env.push((name.to_owned(), value.into()));
        self
    }
}

/// A running `crm-server` child with its stderr captured.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on a free loopback port and returns once it said
    /// where it listens (no sleeping: the port comes from its log line).
    pub fn start(opts: &ServerOpts) -> Server {
        let mut cmd = Command::new(server_bin());
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(&opts.db)
            .arg("--scheduler")
            .arg(opts.scheduler.to_string())
            .args(["--drain-secs", "2"])
            .env("CRM_ADMIN_TOKEN", &opts.admin_token)
            .env("RUST_LOG", &opts.rust_log)
            .env_remove("CRM_CONFIG")
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(v) = &opts.upstream_via {
            cmd.arg("--upstream-via").arg(v);
        }
        if let Some(p) = &opts.packs_dir {
            cmd.arg("--packs-dir").arg(p);
        }
        let mut child = cmd.spawn().expect("crm-server starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("crm-server listening")
                    && let Some(addr) = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v["fields"]["addr"].as_str().map(str::to_owned))
                {
                    let _ = tx.send(addr);
                }
                let mut g = sink.lock().unwrap_or_else(|p| p.into_inner());
                g.push_str(&line);
                g.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Server {
                child,
                base: format!("http://{addr}"),
                log,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
                panic!("crm-server did not start listening:\n{log}");
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGKILL: no drain, no cleanup, exactly like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM via `kill`, then waits for the graceful exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
