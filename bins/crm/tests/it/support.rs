//! Running the real `crm` binary: each test gets its own directory (and
//! database), and optionally its own simulated host in the test process.

use crm_sim::{Profile, SimConfig, SimHandle, SimServer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// What one run of the binary printed and how it exited.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}):\n{}", self.args, self.stdout))
    }

    /// Asserts the exit code, showing everything the run printed otherwise.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "crm {} exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Variables that would leak the developer's environment into a test.
const SCRUBBED: &[&str] = &[
    "CRM_DB",
    "CRM_OUTPUT",
    "CRM_CONFIG",
    "CRM_UPSTREAM_VIA",
    "CRM_HOST_TIMEOUT",
    "CRM_PEPPER_FILE",
    "CRM_SEAL_KEY",
    "CRM_SEAL_KEY_FILE",
    "RUST_LOG",
];

/// A `crm` command with a clean environment, run in `dir` on `dir/crm.db`.
pub fn command(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crm"));
    for v in SCRUBBED {
        cmd.env_remove(v);
    }
    cmd.current_dir(dir)
        .env("CRM_DB", dir.join("crm.db"))
        // The audit actor is `cli:$USER`: the same on every machine.
        .env("USER", "tester")
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    cmd
}

pub fn finish(args: &[&str], out: Output) -> Run {
    Run {
        args: args.join(" "),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn crm(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let out = command(dir, args, envs)
        .output()
        .expect("the crm binary runs");
    finish(args, out)
}

/// A simulated host registered with the real binary: its own directory,
/// database and admin key (in an environment variable, as an operator would).
pub struct HostEnv {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub admin_key: String,
    /// Every run, for the secret scan.
    pub log: std::sync::Mutex<Vec<Run>>,
}

pub const ADMIN_KEY_VAR: &str = "CRM_TEST_SIM_ADMIN_KEY";

impl HostEnv {
    pub async fn start(latency: Duration) -> HostEnv {
        let sim = SimServer::start(SimConfig::with_profile(Profile::current()))
            .await
            .expect("simulator starts");
        sim.set_latency(latency);
        let env = HostEnv {
            admin_key: sim.admin_key(),
            sim,
            dir: tempfile::tempdir().expect("temp dir"),
            log: Default::default(),
        };
        let url = env.sim.base_url();
        env.run(&[
            "host",
            "add",
            "sim",
            "--url",
            &url,
            "--admin-key-env",
            ADMIN_KEY_VAR,
        ])
        .expect(0);
        env.run(&["pack", "install", "--bundled", "cn-official"])
            .expect(0);
        env.run(&["host", "probe", "sim"]).expect(0);
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("crm.db")
    }

    pub fn envs(&self) -> Vec<(&str, String)> {
        vec![
            (ADMIN_KEY_VAR, self.admin_key.clone()),
            ("CRM_UPSTREAM_VIA", self.sim.upstream_prefix()),
        ]
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let envs = self.envs();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        command(self.path(), args, &envs)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("the crm binary runs");
        let run = finish(args, out);
        self.log.lock().unwrap().push(run.clone());
        run
    }

    /// Writes a keys file (one key per line) and returns its path.
    pub fn keys_file(&self, name: &str, keys: &[&str]) -> String {
        let p = self.path().join(name);
        std::fs::write(&p, format!("# upstream keys\n{}\n", keys.join("\n"))).unwrap();
        p.display().to_string()
    }
}

/// Filters that make output stable: ids, times, ports, fingerprints, durations.
pub fn redactions() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\b(b|h|ac|rr|op|l|ls)-[0-9a-f]{32}\b", "$1-[id]"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "[time]",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r#""hmac": "[0-9a-f]{64}""#, r#""hmac": "[hmac]""#),
        (r"\b[0-9a-f]{8}…", "[fp]…"),
        (r"crm-(probe-)?([a-z.-]+)-[0-9a-f]{8,12}\b", "crm-$1$2-[fp]"),
        (r#""(latency_ms|ms|import_ms)": \d+"#, r#""$1": "[ms]""#),
        (r#""([a-z_]*sealed)": "[^"]+""#, r#""$1": "[sealed]""#),
        (r"\|[0-9a-f]{64}\b", "|[hmac]"),
        (r#"\\"created\\":\d+"#, r#"\"created\":[time]"#),
        (r"chatcmpl-sim-[0-9a-f]+", "chatcmpl-sim-[id]"),
        (
            r#""spec_digest": "[0-9a-f]{64}""#,
            r#""spec_digest": "[digest]""#,
        ),
    ]
}

/// Host object ids renumbered `#1`, `#2`, ... in order of first appearance.
///
/// The simulator numbers objects of every kind from one counter, and an
/// import creates its channel and its accounts concurrently, so which of
/// them gets the lower id depends on which request lands first. The output's
/// order does not (it follows the journal), so renumbering by appearance
/// keeps snapshots stable and still shows which ids are the same object.
pub fn renumber_host_ids(text: &str) -> String {
    use std::collections::HashMap;
    let field = regex::Regex::new(
        r#"("(?:host_object_id|account_id|group_id|user_id|key_id)": )(\d+)|("(?:group_ids|allowed_groups)": \[)([\d,\s]*)(\])"#,
    )
    .unwrap();
    let number = regex::Regex::new(r"\d+").unwrap();
    let labels = std::cell::RefCell::new(HashMap::<String, usize>::new());
    let label = |id: &str| {
        let mut l = labels.borrow_mut();
        let next = l.len() + 1;
        format!("#{}", *l.entry(id.to_owned()).or_insert(next))
    };
    field
        .replace_all(text, |c: &regex::Captures<'_>| match (c.get(1), c.get(3)) {
            (Some(key), _) => format!("{}{}", key.as_str(), label(&c[2])),
            (None, Some(open)) => format!(
                "{}{}{}",
                open.as_str(),
                number.replace_all(&c[4], |n: &regex::Captures<'_>| label(&n[0])),
                &c[5]
            ),
            (None, None) => c[0].to_owned(),
        })
        .into_owned()
}

/// Every secret-looking string: sim admin keys, sim user keys.
pub fn secret_shapes(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"admin-[0-9a-f]{64}|sk-[0-9a-f]{32}").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

/// The probe users' passwords crm generated (sealed in the journal), in clear,
/// so a test can look for them in output.
pub async fn probe_passwords(db: &Path) -> Vec<String> {
    use crm_domain::ports::SecretSealer;
    use secrecy::ExposeSecret;
    let app = crm_app::App::open(crm_app::AppConfig::new(db))
        .await
        .expect("db opens");
    let sealer = app.store().sealer();
    let mut out = Vec::new();
    for b in app.list_batches(Default::default()).await.unwrap() {
        for e in app.batch_detail(b.id.as_str()).await.unwrap().journal {
            if let Some(s) = e
                .desired
                .get("login_password_sealed")
                .and_then(|v| v.as_str())
            {
                let ctx = crm_domain::host::SealContext::login_password_in(&b.id, &e.desired)
                    .expect("a sealed password names its login");
                let pw = sealer
                    .open(&ctx, &crm_domain::host::SealedSecret(s.to_owned()))
                    .expect("password unseals");
                out.push(pw.expose_secret().to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Asserts that none of `canaries` (and no secret-shaped string) appears in
/// any output of `runs`.
#[track_caller]
pub fn assert_no_secrets(runs: &[Run], canaries: &[String]) {
    assert!(!canaries.is_empty());
    for r in runs {
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            for c in canaries {
                assert!(
                    !text.contains(c.as_str()),
                    "crm {} printed a secret on {stream}",
                    r.args
                );
            }
            let shapes = secret_shapes(text);
            assert!(
                shapes.is_empty(),
                "crm {} printed a secret-shaped string on {stream}",
                r.args
            );
        }
    }
}
