//! Secrets canary across everything: one run with a canary upstream key, a
//! canary host admin key, a canary server admin token and a canary user
//! password, every process at `RUST_LOG=trace`: the real server (import,
//! access check, reconcile, funds readings, rollback), the real CLI (reads,
//! an import and `provider funds` with the key)
//! and the real acceptance harness (evidence files). Scanned: server logs,
//! every API answer, `/metrics`, the OpenAPI document, CLI and harness
//! output, every evidence file, and the raw bytes of `crm.db`, `crm.db-wal`
//! and `crm.db-shm`. Zero hits; the upstream key's fingerprint and last four
//! characters are present where crm records keys.

use crate::served::Served;
use crm_domain::SecretString;
use crm_reliability::{Tally, bins};
use crm_sim::SimConfig;
use rand::Rng;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

struct Canaries {
    upstream: String,
    admin_key: String,
    token: String,
    password: String,
}

impl Canaries {
    fn new() -> Canaries {
        let hex: String = (0..12)
            .map(|_| format!("{:x}", rand::rng().random_range(0..16u8)))
            .collect();
        Canaries {
            // `sim-ok-` makes the simulator answer like a working provider key.
            upstream: format!("sim-ok-CANARYup{hex}-9f3e"),
            admin_key: format!("admin-CANARYadm{hex}"),
            token: format!("CANARYtok{hex}-server-admin-token"),
            password: format!("CANARYpw{hex}-Passw0rd"),
        }
    }

    /// What must never appear: each secret whole, and the upstream key
    /// without its last four characters (crm may show those).
    fn needles(&self) -> Vec<(&'static str, String)> {
        vec![
            ("upstream key", self.upstream.clone()),
            (
                "upstream key (all but last 4)",
                self.upstream[..self.upstream.len() - 4].to_owned(),
            ),
            ("host admin key", self.admin_key.clone()),
            ("server admin token", self.token.clone()),
            ("user password", self.password.clone()),
        ]
    }
}

/// How often each canary appears in `bytes` (only those that do).
fn hits(c: &Canaries, bytes: &[u8]) -> Vec<(&'static str, usize)> {
    c.needles()
        .into_iter()
        .map(|(name, needle)| {
            let n = bytes
                .windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count();
            (name, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn scan(tally: &Tally, c: &Canaries, what: &str, bytes: &[u8]) {
    tally.trial();
    for (name, n) in hits(c, bytes) {
        tally.violation(format!("{what}: the {name} appears {n} times"));
    }
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn scan_db_files(tally: &Tally, c: &Canaries, db: &Path, when: &str) -> usize {
    let mut n = 0;
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&p) {
            n += 1;
            scan(tally, c, &format!("{} ({when})", p.display()), &bytes);
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output_log_evidence_or_database_byte() {
    let tally = Tally::new("secrets_canary");
    let c = Canaries::new();
    let sim_config = SimConfig {
        admin_key: Some(c.admin_key.clone()),
        ..SimConfig::default()
    };
    let mut s = Served::start_with(sim_config, |opts, _| {
        opts.admin_token = c.token.clone();
        opts.rust_log = "trace".into();
    })
    .await;
    let mut outputs: Vec<(String, String)> = Vec::new();
    macro_rules! api {
        ($method:expr, $path:expr, $body:expr) => {{
            let path: String = $path.into();
            let (st, v) = s.call_with($method, &path, $body, &c.token, None).await;
            outputs.push((format!("{} {path}", $method), v.to_string()));
            (st, v)
        }};
    }

    // An operator's own host user, with a canary password.
    let email = "canary-user@example.com";
    let r = s
        .http
        .post(format!("{}/api/v1/admin/users", s.sim.base_url()))
        .header("x-api-key", &c.admin_key)
        .json(&json!({"email": email, "password": c.password, "username": "canary"}))
        .send()
        .await
        .expect("sim user");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );

    let (st, b) = api!(
        "POST",
        "/api/hosts",
        Some(json!({"name": "sim", "base_url": s.sim.base_url(), "admin_key": c.admin_key}))
    );
    assert_eq!(st, 201, "{b}");
    let (_, text) = crm_pack::bundled::all()[0];
    let r = s
        .http
        .post(s.server.url("/api/packs?file_name=cn-official.toml"))
        .bearer_auth(&c.token)
        .header("content-type", "text/plain")
        .body(text)
        .send()
        .await
        .expect("pack");
    assert_eq!(r.status().as_u16(), 201);
    let (st, op) = api!(
        "POST",
        "/api/providers/cn-official/deepseek/import?wait=true",
        Some(
            json!({"host": "sim", "mode": "subscription", "upstream_keys": [c.upstream],
            "user_email": email, "user_password": c.password, "verify": true,
            "monitor": true})
        )
    );
    assert!(matches!(st, 200 | 202), "{op}");
    let op = if st == 202 {
        s.finish(&format!(
            "/api/operations/{}",
            op["id"].as_str().unwrap_or("")
        ))
        .await
    } else {
        op
    };
    outputs.push(("import operation".into(), op.to_string()));
    let batch = op
        .pointer("/result/batch/id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("import made a batch: {op}"))
        .to_owned();
    api!(
        "POST",
        "/api/providers/cn-official/deepseek/access-check",
        Some(json!({"host": "sim"}))
    );
    api!(
        "POST",
        "/api/providers/cn-official/deepseek/reconcile",
        Some(json!({"host": "sim"}))
    );
    // The readings that run took (the host's balance route asked the
    // provider with the key) and the CLI's, with the key given for a direct
    // read of the provider's balance API.
    api!("GET", "/api/hosts/sim/funds", None);
    let (_, detail) = api!("GET", format!("/api/import-batches/{batch}"), None);
    api!("GET", "/api/audit?limit=1000", None);
    api!("GET", "/api/hosts/sim", None);
    // A wrong-token attempt that carries a secret-shaped value.
    let (st, _) = s
        .call_with("GET", "/api/hosts", None, &c.password, None)
        .await;
    assert_eq!(st, 401);

    // The CLI on the same database, at trace level.
    let keys_file = s.dir.path().join("cli-keys");
    std::fs::write(&keys_file, format!("{}\n", c.upstream)).expect("keys file");
    let cli_runs: Vec<Vec<String>> = vec![
        vec!["host".into(), "list".into()],
        vec![
            "--output".into(),
            "json".into(),
            "batch".into(),
            "show".into(),
            batch.clone(),
        ],
        vec![
            "provider".into(),
            "import".into(),
            "cn-official/kimi".into(),
            "--host".into(),
            "sim".into(),
            "--mode".into(),
            "self_service".into(),
            "--upstream-keys-file".into(),
            keys_file.display().to_string(),
            "--monitor".into(),
        ],
        vec![
            "-vvv".into(),
            "--output".into(),
            "json".into(),
            "batch".into(),
            "list".into(),
        ],
        vec!["reconcile".into(), "host".into(), "sim".into()],
        vec![
            "--output".into(),
            "json".into(),
            "provider".into(),
            "funds".into(),
            "--host".into(),
            "sim".into(),
            "--upstream-keys-file".into(),
            keys_file.display().to_string(),
        ],
    ];
    let mut cli_exits: Vec<i32> = Vec::new();
    for args in &cli_runs {
        let out = Command::new(bins::cli_bin())
            .arg("--db")
            .arg(s.db())
            .args(args)
            .env("RUST_LOG", "trace")
            .env("CRM_UPSTREAM_VIA", s.sim.upstream_prefix())
            .env_remove("CRM_CONFIG")
            .output()
            .expect("crm runs");
        cli_exits.push(out.status.code().unwrap_or(-1));
        outputs.push((
            format!("crm {} (stdout)", args.join(" ")),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
        outputs.push((
            format!("crm {} (stderr)", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }

    // Both imports made a host-side channel monitor holding the key, so
    // the scan covers its create body, journal, records and reconcile.
    tally.trial();
    let monitors = s.sim.count("POST", "/api/v1/admin/channel-monitors");
    if monitors != 2 || !detail.to_string().contains("\"kind\":\"monitor\"") {
        tally.violation(format!(
            "the imports made {monitors} monitors (expected 2), batch detail {detail:.300}"
        ));
    }

    // The funds faces carried readings, so the scan above covered them.
    tally.trial();
    let funds_api = outputs
        .iter()
        .find(|(w, _)| w == "GET /api/hosts/sim/funds")
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let funds_cli = outputs
        .iter()
        .find(|(w, _)| w.starts_with("crm --output json provider funds") && w.ends_with("(stdout)"))
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    if !funds_api.contains("\"source\":\"host\"") || !funds_cli.contains("\"source\": \"upstream\"")
    {
        tally.violation(format!(
            "the funds faces showed no readings to scan: API {funds_api:.300} CLI {funds_cli:.300}"
        ));
    }

    // The acceptance harness with the same secrets, keeping its evidence.
    let evidence = s.dir.path().join("evidence");
    let out = Command::new(bins::acceptance_bin())
        .args([
            "run",
            "--host-url",
            &s.sim.base_url(),
            "--admin-key-env",
            "CANARY_ADMIN_KEY",
        ])
        .args([
            "--provider",
            "zhipu",
            "--mode",
            "self_service",
            "--upstream-keys-file",
        ])
        .arg(&keys_file)
        .args([
            "--user-email",
            email,
            "--user-password-env",
            "CANARY_PASSWORD",
        ])
        .args(["--upstream-via", &s.sim.upstream_prefix(), "--out"])
        .arg(&evidence)
        .env("CANARY_ADMIN_KEY", &c.admin_key)
        .env("CANARY_PASSWORD", &c.password)
        .env("RUST_LOG", "trace")
        .output()
        .expect("crm-acceptance runs");
    outputs.push((
        "crm-acceptance stdout".into(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ));
    outputs.push((
        "crm-acceptance stderr".into(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));
    // Show the verdict and where the evidence went.
    eprintln!(
        "crm-acceptance exit {:?}:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A full chain (a pass) writes every evidence file there is to scan.
    if out.status.code() != Some(0) {
        tally.violation(format!(
            "crm-acceptance did not pass ({:?}), so not every evidence file was written",
            out.status
        ));
    }
    let mut evidence_files = Vec::new();
    files_under(&evidence, &mut evidence_files);
    if evidence_files.is_empty() {
        tally.violation(format!(
            "crm-acceptance wrote no evidence ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    for f in &evidence_files {
        scan(
            &tally,
            &c,
            &f.display().to_string(),
            &std::fs::read(f).unwrap_or_default(),
        );
    }

    // Surfaces outside `/api` (`/metrics` needs a token since issue 19).
    for path in ["/metrics", "/api/openapi.json", "/healthz", "/readyz"] {
        let text = s
            .http
            .get(s.server.url(path))
            .bearer_auth(&c.token)
            .send()
            .await
            .expect(path)
            .text()
            .await
            .unwrap_or_default();
        outputs.push((path.to_owned(), text));
    }

    let (_, rb) = api!(
        "POST",
        format!("/api/import-batches/{batch}/rollback?wait=true"),
        Some(json!({}))
    );
    let _ = rb;

    for (what, text) in &outputs {
        scan(&tally, &c, what, text.as_bytes());
    }
    let db_files_live = scan_db_files(&tally, &c, &s.db(), "server running");
    s.server.terminate();
    scan(
        &tally,
        &c,
        "crm-server log (trace)",
        s.server.log().as_bytes(),
    );
    let db_files_after = scan_db_files(&tally, &c, &s.db(), "after shutdown");

    // Fingerprints are where crm records keys.
    let fp = {
        let app = crm_app::App::open_with(
            crm_app::AppConfig::new(s.db()),
            Default::default(),
            std::sync::Arc::new(crm_app::ids::UuidIds),
        )
        .await
        .expect("app");
        app.store()
            .fingerprinter()
            .fingerprint(&SecretString::from(c.upstream.clone()))
    };
    tally.trial();
    let shown = detail.to_string();
    if !shown.contains(&fp.hmac) || !shown.contains(&c.upstream[c.upstream.len() - 4..]) {
        tally.violation(format!(
            "the batch detail does not show the key's fingerprint {} / last4: {shown:.400}",
            fp.hmac
        ));
    }
    // The scanner itself finds a planted canary (the keys file holds one).
    assert!(
        !hits(&c, &std::fs::read(&keys_file).unwrap_or_default()).is_empty(),
        "the scanner missed the canary in the keys file"
    );
    let log_lines = s.server.log().lines().count();
    tally.finish(&format!(
        "outputs={} cli_exits={cli_exits:?} acceptance_exit={:?} evidence_files={} db_files={} server_log_lines={log_lines}",
        outputs.len(),
        out.status.code(),
        evidence_files.len(),
        db_files_live + db_files_after
    ));
}
