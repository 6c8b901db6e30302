//! The real `crm-acceptance` binary: exit codes follow the verdict, the
//! real-host flags work (against a simulator this test starts), matrices
//! write one folder per cell, and no secret reaches stdout, stderr (at
//! `RUST_LOG=trace`) or any evidence file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crm-acceptance"));
    c.env("RUST_LOG", "trace");
    c
}

/// The single evidence folder a run created under `out`.
fn only_folder(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every file under `dir`, recursively, with its text.
fn all_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            let text = std::fs::read_to_string(&p).unwrap();
            out.push((p, text));
        }
    }
    out
}

fn assert_absent(secret: &str, out: &Output, folder: &Path) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(secret), "secret on stdout");
    assert!(!stderr.contains(secret), "secret on stderr");
    let files = all_files(folder);
    assert!(!files.is_empty());
    for (path, text) in files {
        assert!(!text.contains(secret), "secret in {}", path.display());
    }
}

#[test]
fn an_exhausted_upstream_key_exits_1_with_the_quota_class() {
    let dir = tempfile::tempdir().unwrap();
    let canary = format!(
        "sim-quota_exhausted-CANARY{}",
        uuid::Uuid::new_v4().simple()
    );
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, format!("# one key\n{canary}\n")).unwrap();
    let out_dir = dir.path().join("out");
    let out = bin()
        .args([
            "run",
            "--sim",
            "--profile",
            "current",
            "--provider",
            "deepseek",
        ])
        .args(["--mode", "self_service", "--upstream-keys-file"])
        .arg(&keys)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("verdict: fail (upstream_key_quota_issue)"),
        "{stdout}"
    );
    let folder = only_folder(&out_dir);
    let summary = json(&folder.join("21-summary.json"));
    assert_eq!(summary["verdict"], "fail");
    assert_eq!(summary["failure_class"], "upstream_key_quota_issue");
    assert_eq!(summary["exit_code"], 1);
    assert_absent(&canary, &out, &folder);
}

#[test]
fn a_passing_simulated_run_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "run",
            "--sim",
            "--provider",
            "kimi",
            "--mode",
            "both",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = only_folder(dir.path());
    assert!(
        folder
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-sim-current-kimi-both")
    );
    let summary = json(&folder.join("21-summary.json"));
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["provider"], "kimi");
}

/// The real-host flags, against a simulator this test runs: the admin key
/// comes from an environment variable and upstream probes go through the
/// simulator's upstream prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_host_flags_read_the_admin_key_from_the_environment() {
    let sim = crm_sim::SimServer::start(crm_sim::SimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let canary = format!("sim-ok-CANARY{}", uuid::Uuid::new_v4().simple());
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, &canary).unwrap();
    let out_dir = dir.path().join("out");
    let mut cmd = bin();
    cmd.args(["run", "--host-url", &sim.base_url()])
        .args(["--admin-key-env", "CRM_TEST_ADMIN_KEY"])
        .env("CRM_TEST_ADMIN_KEY", sim.admin_key())
        .args(["--upstream-via", &sim.upstream_prefix()])
        .args(["--pack", "cn-official", "--provider", "cn-official/zhipu"])
        .args(["--mode", "subscription", "--upstream-keys-file"])
        .arg(&keys)
        .arg("--out")
        .arg(&out_dir);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = only_folder(&out_dir);
    let probe = json(&folder.join("01-probe.json"));
    assert_eq!(probe["host"]["url"], sim.base_url());
    assert_eq!(probe["host"]["simulator_profile"], serde_json::Value::Null);
    assert_absent(&canary, &out, &folder);
    assert_absent(&sim.admin_key(), &out, &folder);
    // The run cleaned up after itself: no crm-owned account is left.
    let state = sim.state_dump();
    assert_eq!(state["accounts"], serde_json::json!([]), "{state}");
}

#[test]
fn a_real_host_without_the_admin_key_variable_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "--host-url", "http://127.0.0.1:9"])
        .args(["--admin-key-env", "CRM_TEST_SURELY_UNSET_VAR"])
        .args([
            "--provider",
            "deepseek",
            "--mode",
            "both",
            "--upstream-keys-file",
            "-",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable CRM_TEST_SURELY_UNSET_VAR is not set"),
        "{stderr}"
    );
}

#[test]
fn a_matrix_writes_a_folder_per_cell_and_fails_when_one_cell_fails() {
    let dir = tempfile::tempdir().unwrap();
    let matrix = dir.path().join("matrix.toml");
    std::fs::write(
        &matrix,
        r#"
[[cells]]
name = "deepseek-ok"
provider = "deepseek"
mode = "self_service"
simulated = "ok"

[[cells]]
name = "kimi-quota"
provider = "kimi"
mode = "subscription"
simulated = "quota_exhausted"

[[cells]]
name = "zhipu-legacy"
provider = "zhipu"
mode = "self_service"
profile = "legacy-2025-12"
"#,
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = bin()
        .args(["run", "--sim", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = only_folder(&out_dir);
    let summary = json(&folder.join("matrix-summary.json"));
    assert_eq!(summary["verdict"], "fail");
    assert_eq!(summary["failed_cells"], 1);
    let cells: Vec<(String, String, String)> = summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["verdict"].as_str().unwrap().to_owned(),
                c["failure_class"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("deepseek-ok".into(), "pass".into(), "".into()),
            (
                "kimi-quota".into(),
                "fail".into(),
                "upstream_key_quota_issue".into()
            ),
            // An older host is checked through /v1/messages and is ready.
            ("zhipu-legacy".into(), "pass".into(), "".into()),
        ]
    );
    for name in ["deepseek-ok", "kimi-quota", "zhipu-legacy"] {
        assert!(
            folder.join(name).join("21-summary.json").is_file(),
            "{name}"
        );
    }
    let md = std::fs::read_to_string(folder.join("matrix-summary.md")).unwrap();
    assert!(md.contains("| kimi-quota | kimi | subscription | sim:current | fail | upstream_key_quota_issue | kimi-quota |"), "{md}");
}
