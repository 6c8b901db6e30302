//! Acceptance runs against both simulator profiles and both modes: the
//! folder's file list, the verdict, and zero secret hits across every file.

use crm_domain::secret::ExposeSecret;
use crm_domain::{AccessMode, BatchStatus, FailureClass, SecretString, Verdict};
use crm_evidence::folder::SecretKind;
use crm_evidence::verdict::StepVerdict;
use crm_evidence::{Modes, PackSource, RunOutcome, RunSpec, Step, Target, UpstreamKeys};
use std::path::Path;

/// Every file a full run writes, in chain order.
const FULL_RUN: &[&str] = &[
    "01-probe.json",
    "02-pack.json",
    "03-preview.json",
    "05-import.json",
    "07-access-status.json",
    "09-reconcile.json",
    "11-rollback.json",
    "13-post-rollback-access.json",
    "17-upstream-models.json",
    "19-upstream-completion.json",
    "21-summary.json",
    "21-summary.md",
];

fn spec(profile: &str, modes: Modes, keys: UpstreamKeys, out: &Path) -> RunSpec {
    RunSpec {
        target: Target::Sim {
            profile: profile.into(),
        },
        pack: PackSource::Bundled("cn-official".into()),
        provider: "deepseek".into(),
        modes,
        upstream_keys: keys,
        user: None,
        out: out.to_owned(),
        keep: false,
        db: None,
        label: None,
    }
}

fn canary() -> String {
    format!("sim-ok-CANARY{}", uuid::Uuid::new_v4().simple())
}

fn listing(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// Every file of the folder, raw.
fn contents(dir: &Path) -> Vec<(String, String)> {
    listing(dir)
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

fn json(dir: &Path, file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
}

/// The canary and every secret the run knew (the closure users' keys and
/// passwords included) appear in no file; the canary's fingerprint does.
fn assert_no_secrets(o: &RunOutcome, canary: &str) {
    let kinds: Vec<SecretKind> = o.secrets.kinds().into_iter().map(|(k, _)| k).collect();
    for kind in [
        SecretKind::AdminKey,
        SecretKind::UpstreamKey,
        SecretKind::UserKey,
        SecretKind::UserPassword,
    ] {
        assert!(kinds.contains(&kind), "the run did not learn its {kind:?}");
    }
    let files = contents(&o.folder);
    assert_eq!(files.len(), FULL_RUN.len());
    for (file, text) in &files {
        assert!(!text.contains(canary), "canary in {file}");
        assert!(!text.contains("CANARY"), "canary fragment in {file}");
        for kind in [
            SecretKind::AdminKey,
            SecretKind::UpstreamKey,
            SecretKind::UserKey,
            SecretKind::UserPassword,
        ] {
            for s in o.secrets.of_kind(kind) {
                assert!(
                    !text.contains(s.expose_secret()),
                    "a {kind:?} appears in {file}"
                );
            }
        }
    }
    let last4 = &canary[canary.len() - 4..];
    let summary = json(&o.folder, "21-summary.json");
    let keys = summary["upstream_keys"].as_array().unwrap();
    assert!(
        keys.iter()
            .any(|k| k.as_str().unwrap().ends_with(&format!("…{last4}"))),
        "the canary's fingerprint is listed: {keys:?}"
    );
    assert_eq!(
        summary["secret_scan"]["scan"]["hits"],
        serde_json::json!([])
    );
}

fn step_verdict(o: &RunOutcome, step: Step) -> StepVerdict {
    o.summary
        .steps
        .iter()
        .find(|s| s.step == step)
        .unwrap()
        .verdict
}

/// Every file carries the run's identity.
fn assert_headers(o: &RunOutcome, version: &str) {
    let pack_checksum = o.summary.header.pack.as_ref().unwrap().checksum.clone();
    for file in FULL_RUN.iter().filter(|f| f.ends_with(".json")) {
        let v = json(&o.folder, file);
        assert_eq!(v["host"]["version"], version, "{file}");
        assert_eq!(v["pack"]["version"], "2026.11.1", "{file}");
        assert_eq!(v["pack"]["checksum"], pack_checksum.as_str(), "{file}");
        assert!(v["run_started_at"].is_string(), "{file}");
        assert_eq!(v["file"], *file);
    }
}

#[tokio::test]
async fn current_profile_passes_in_each_mode_without_leaking_a_secret() {
    let out = tempfile::tempdir().unwrap();
    for modes in [Modes::SelfService, Modes::Subscription] {
        let canary = canary();
        let o = crm_evidence::run(spec(
            "current",
            modes,
            UpstreamKeys::Given(vec![SecretString::from(canary.clone())]),
            out.path(),
        ))
        .await
        .unwrap();
        assert_eq!(listing(&o.folder), FULL_RUN, "{modes:?}");
        assert_eq!(
            o.summary.verdict,
            Verdict::Pass,
            "{modes:?}: {:#?}",
            o.summary.steps
        );
        assert_eq!(o.summary.failure_class, None);
        assert_eq!(o.exit_code(), 0);
        assert_headers(&o, "0.2.7");
        assert_no_secrets(&o, &canary);
        let batch = &o.summary.batches[0];
        assert_eq!(batch.mode, modes.list()[0]);
        assert_eq!(batch.batch_status, BatchStatus::RolledBack);
        let post = json(&o.folder, "13-post-rollback-access.json");
        assert_eq!(post["data"]["batches"][0]["key_refusal"], "refused");
    }
}

#[tokio::test]
async fn legacy_profile_passes_through_v1_messages_in_both_modes() {
    let out = tempfile::tempdir().unwrap();
    for modes in [Modes::SelfService, Modes::Subscription] {
        let canary = canary();
        let o = crm_evidence::run(spec(
            "legacy-2025-12",
            modes,
            UpstreamKeys::Given(vec![SecretString::from(canary.clone())]),
            out.path(),
        ))
        .await
        .unwrap();
        assert_eq!(listing(&o.folder), FULL_RUN, "{modes:?}");
        // The host has no /v1/chat/completions: the access check completes
        // through /v1/messages and the host is ready.
        assert_eq!(o.summary.verdict, Verdict::Pass, "{modes:?}");
        assert_eq!(o.summary.failure_class, None);
        assert_eq!(o.exit_code(), 0);
        assert_eq!(step_verdict(&o, Step::Import), StepVerdict::Pass);
        assert_eq!(step_verdict(&o, Step::Probe), StepVerdict::Pass);
        let access = std::fs::read_to_string(o.folder.join("07-access-status.json")).unwrap();
        assert!(access.contains("gateway_messages"), "{access}");
        assert!(!access.contains("\"gateway_chat\""), "{access}");
        assert_eq!(
            step_verdict(&o, Step::UpstreamCompletion),
            StepVerdict::Pass
        );
        assert_eq!(step_verdict(&o, Step::Rollback), StepVerdict::Pass);
        assert_headers(&o, "0.1.1");
        assert_no_secrets(&o, &canary);
    }
}

#[tokio::test]
async fn both_modes_in_one_run_pass_with_a_simulated_key_per_mode() {
    let out = tempfile::tempdir().unwrap();
    let o = crm_evidence::run(spec(
        "current",
        Modes::Both,
        UpstreamKeys::Simulated {
            behaviour: "ok".into(),
        },
        out.path(),
    ))
    .await
    .unwrap();
    assert_eq!(listing(&o.folder), FULL_RUN);
    assert_eq!(o.summary.verdict, Verdict::Pass, "{:#?}", o.summary.steps);
    let modes: Vec<AccessMode> = o.summary.batches.iter().map(|b| b.mode).collect();
    assert_eq!(modes, [AccessMode::SelfService, AccessMode::Subscription]);
    assert_eq!(o.summary.upstream_keys.len(), 2);
    let access = json(&o.folder, "07-access-status.json");
    for check in access["data"]["checks"].as_array().unwrap() {
        assert_eq!(check["access_status"], "fully_ready");
    }
}

#[tokio::test]
async fn keep_leaves_the_host_provisioned_and_says_so() {
    let out = tempfile::tempdir().unwrap();
    let mut s = spec(
        "current",
        Modes::SelfService,
        UpstreamKeys::Simulated {
            behaviour: "ok".into(),
        },
        out.path(),
    );
    s.keep = true;
    let o = crm_evidence::run(s).await.unwrap();
    assert_eq!(listing(&o.folder), FULL_RUN);
    assert_eq!(o.summary.verdict, Verdict::Pass);
    assert_eq!(step_verdict(&o, Step::Rollback), StepVerdict::Skipped);
    assert_eq!(
        step_verdict(&o, Step::PostRollbackAccess),
        StepVerdict::Skipped
    );
    assert_eq!(o.summary.batches[0].batch_status, BatchStatus::Applied);
    let rollback = json(&o.folder, "11-rollback.json");
    assert_eq!(rollback["verdict"], "skipped");
    assert!(
        rollback["summary"].as_str().unwrap().contains("--keep"),
        "{rollback}"
    );
}

#[tokio::test]
async fn an_exhausted_upstream_key_fails_with_the_quota_class() {
    let out = tempfile::tempdir().unwrap();
    let o = crm_evidence::run(spec(
        "current",
        Modes::SelfService,
        UpstreamKeys::Simulated {
            behaviour: "quota_exhausted".into(),
        },
        out.path(),
    ))
    .await
    .unwrap();
    assert_eq!(listing(&o.folder), FULL_RUN);
    assert_eq!(o.summary.verdict, Verdict::Fail);
    assert_eq!(
        o.summary.failure_class,
        Some(FailureClass::UpstreamKeyQuotaIssue),
        "{:#?}",
        o.summary.steps
    );
    assert_eq!(o.exit_code(), 1);
    let access = json(&o.folder, "07-access-status.json");
    assert_eq!(access["failure_class"], "upstream_key_quota_issue");
    // The direct probe is the classification evidence: status and error type per key.
    let completion = json(&o.folder, "19-upstream-completion.json");
    let probe = &completion["data"]["probes"][0];
    assert_eq!(probe["status"], 429);
    assert_eq!(probe["failure_class"], "upstream_key_quota_issue");
    assert!(probe["key"]["last4"].is_string());
    // Everything was still cleaned up.
    assert_eq!(step_verdict(&o, Step::Rollback), StepVerdict::Pass);
}

#[tokio::test]
async fn an_unknown_provider_fails_at_the_pack_and_touches_nothing() {
    let out = tempfile::tempdir().unwrap();
    let mut s = spec(
        "current",
        Modes::SelfService,
        UpstreamKeys::Simulated {
            behaviour: "ok".into(),
        },
        out.path(),
    );
    s.provider = "nonesuch".into();
    let o = crm_evidence::run(s).await.unwrap();
    assert_eq!(listing(&o.folder), FULL_RUN);
    assert_eq!(o.summary.verdict, Verdict::Fail);
    assert_eq!(o.summary.failing_steps, vec!["02-pack.json"]);
    for step in [
        Step::Preview,
        Step::Import,
        Step::Rollback,
        Step::UpstreamModels,
    ] {
        assert_eq!(step_verdict(&o, step), StepVerdict::Skipped, "{step:?}");
    }
    assert!(o.summary.batches.is_empty());
}

/// `--keep` with `--db`: the kept batch is in a database `crm` can open,
/// and a later run on the same database finds it, re-checks it (no changes)
/// and rolls it back.
#[tokio::test]
async fn a_kept_run_with_a_database_is_managed_by_the_next_run() {
    let sim = crm_sim::SimServer::start(crm_sim::SimConfig::default())
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = out.path().join("state").join("crm.db");
    let key = format!("sim-ok-{}", uuid::Uuid::new_v4().simple());
    let host_spec = |keep: bool| RunSpec {
        target: Target::Host {
            url: sim.base_url(),
            admin_key: SecretString::from(sim.admin_key()),
            upstream_via: Some(sim.upstream_prefix()),
        },
        pack: PackSource::Bundled("cn-official".into()),
        provider: "cn-official/minimax".into(),
        modes: Modes::SelfService,
        upstream_keys: UpstreamKeys::Given(vec![SecretString::from(key.clone())]),
        user: None,
        out: out.path().join("evidence"),
        keep,
        db: Some(db.clone()),
        label: None,
    };
    let first = crm_evidence::run(host_spec(true)).await.unwrap();
    assert_eq!(
        first.summary.verdict,
        Verdict::Pass,
        "{:#?}",
        first.summary.steps
    );
    let kept_batch = first.summary.batches[0].batch_id.clone();

    let app = crm_app::App::open(crm_app::AppConfig::new(&db))
        .await
        .unwrap();
    let live = app.batch(&kept_batch).await.unwrap();
    assert_eq!(live.status, BatchStatus::Applied);
    drop(app);

    let second = crm_evidence::run(host_spec(false)).await.unwrap();
    assert_eq!(
        second.summary.verdict,
        Verdict::Pass,
        "{:#?}",
        second.summary.steps
    );
    let import = json(&second.folder, "05-import.json");
    assert_eq!(import["data"]["imports"][0]["report"]["noop"], true);
    assert_eq!(second.summary.batches[0].batch_id, kept_batch);
    assert_eq!(
        second.summary.batches[0].batch_status,
        BatchStatus::RolledBack
    );
    assert_eq!(sim.state_dump()["accounts"], serde_json::json!([]));
}

/// What the harness concludes for each simulated upstream behaviour: the
/// run's verdict and class, and what the direct completion (19) saw.
#[tokio::test]
async fn each_upstream_behaviour_gets_its_verdict_and_class() {
    let cases: &[(&str, Verdict, Option<FailureClass>, StepVerdict)] = &[
        ("ok", Verdict::Pass, None, StepVerdict::Pass),
        (
            "invalid_key",
            Verdict::Fail,
            Some(FailureClass::UpstreamKeyInvalid),
            StepVerdict::Fail,
        ),
        (
            "insufficient_balance",
            Verdict::Fail,
            Some(FailureClass::UpstreamKeyQuotaIssue),
            StepVerdict::Fail,
        ),
        (
            "host_incompatible",
            Verdict::Fail,
            Some(FailureClass::HostCompatibilityGap),
            StepVerdict::Pass,
        ),
        (
            "rate_limited",
            Verdict::PassWithAdvisories,
            None,
            StepVerdict::PassWithAdvisories,
        ),
    ];
    let out = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for (behaviour, _, _, _) in cases {
        let o = crm_evidence::run(spec(
            "current",
            Modes::SelfService,
            UpstreamKeys::Simulated {
                behaviour: (*behaviour).into(),
            },
            out.path(),
        ))
        .await
        .unwrap();
        assert_eq!(
            o.exit_code(),
            crm_evidence::exit_code_for(o.summary.verdict)
        );
        seen.push((
            *behaviour,
            o.summary.verdict,
            o.summary.failure_class,
            step_verdict(&o, Step::UpstreamCompletion),
        ));
    }
    assert_eq!(seen, cases);
}

/// `--user-email/--user-password-env`: access is closed for an operator's
/// existing user, whose password is scanned for like every other secret.
#[tokio::test]
async fn an_existing_user_gets_access_and_its_password_never_reaches_a_file() {
    use crm_domain::ports::HostApi;
    let env = crm_testkit::TestEnv::current().await;
    let password = format!("CANARY-pass-{}", uuid::Uuid::new_v4().simple());
    env.host
        .create_user(&crm_domain::observed::UserDraft {
            email: "alice@example.com".into(),
            password: SecretString::from(password.clone()),
            username: None,
            notes: None,
            balance: Some(1.0),
            allowed_groups: vec![],
        })
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = crm_evidence::run(RunSpec {
        target: Target::Host {
            url: env.sim.base_url(),
            admin_key: SecretString::from(env.sim.admin_key()),
            upstream_via: Some(env.sim.upstream_prefix()),
        },
        pack: PackSource::Bundled("cn-official".into()),
        provider: "qwen".into(),
        modes: Modes::Subscription,
        upstream_keys: UpstreamKeys::Given(vec![SecretString::from(format!(
            "sim-ok-{}",
            uuid::Uuid::new_v4().simple()
        ))]),
        user: Some(crm_evidence::ExistingUser {
            email: "alice@example.com".into(),
            password: SecretString::from(password.clone()),
        }),
        out: out.path().to_owned(),
        keep: false,
        db: None,
        label: None,
    })
    .await
    .unwrap();
    // Not the run's verdict: crm's host observation lists only users with
    // crm's name prefix, so reconcile (09) reports an adopted operator user
    // as missing. That gap belongs to crm-provision's observation; the
    // harness reports it as it is. Every other step must pass.
    for r in &o.summary.steps {
        if r.step != Step::Reconcile {
            assert_eq!(r.verdict, StepVerdict::Pass, "{}: {}", r.file, r.summary);
        }
    }
    let import = json(&o.folder, "05-import.json");
    assert!(
        import.to_string().contains("alice@example.com"),
        "the closure names the operator's user"
    );
    for (file, text) in contents(&o.folder) {
        assert!(!text.contains(&password), "password in {file}");
        assert!(!text.contains("CANARY"), "canary fragment in {file}");
    }
    // Rollback keeps a user crm did not create.
    let users = env.dump()["users"].to_string();
    assert!(users.contains("alice@example.com"), "{users}");
}

/// A wrong admin key stops the run at the probe with `auth_issue`; nothing
/// is imported, so no key has a recorded base URL and none is sent upstream
/// (docs/design.md §4 step 5).
#[tokio::test]
async fn a_rejected_admin_key_fails_at_the_probe_with_auth_issue() {
    let sim = crm_sim::SimServer::start(crm_sim::SimConfig::default())
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let wrong = format!("admin-{}", "0".repeat(64));
    let o = crm_evidence::run(RunSpec {
        target: Target::Host {
            url: sim.base_url(),
            admin_key: SecretString::from(wrong.clone()),
            upstream_via: Some(sim.upstream_prefix()),
        },
        pack: PackSource::Bundled("cn-official".into()),
        provider: "deepseek".into(),
        modes: Modes::Both,
        upstream_keys: UpstreamKeys::Given(vec![SecretString::from("sim-ok-k1-abcdef")]),
        user: None,
        out: out.path().to_owned(),
        keep: false,
        db: None,
        label: None,
    })
    .await
    .unwrap();
    assert_eq!(listing(&o.folder), FULL_RUN);
    assert_eq!(o.summary.verdict, Verdict::Fail);
    assert_eq!(o.summary.failure_class, Some(FailureClass::AuthIssue));
    assert_eq!(o.summary.failing_steps, vec!["01-probe.json"]);
    for step in [
        Step::Preview,
        Step::Import,
        Step::AccessStatus,
        Step::Rollback,
    ] {
        assert_eq!(step_verdict(&o, step), StepVerdict::Skipped, "{step:?}");
    }
    for step in [Step::UpstreamModels, Step::UpstreamCompletion] {
        assert_eq!(step_verdict(&o, step), StepVerdict::Skipped, "{step:?}");
    }
    let completion = json(&o.folder, "19-upstream-completion.json");
    assert_eq!(
        completion["data"]["probes"][0]["probed"], false,
        "{completion:#}"
    );
    let why = completion["data"]["probes"][0]["why"].as_str().unwrap();
    assert!(why.contains("crm provider import"), "{why}");
    for (file, text) in contents(&o.folder) {
        assert!(!text.contains(&wrong), "admin key in {file}");
    }
    assert_eq!(sim.state_dump()["accounts"], serde_json::json!([]));
}

/// A mode the pack does not sell fails at the pack; nothing is imported,
/// so no key is sent upstream.
#[tokio::test]
async fn a_mode_the_pack_does_not_sell_fails_at_the_pack() {
    let out = tempfile::tempdir().unwrap();
    let mut s = spec(
        "current",
        Modes::SelfService,
        UpstreamKeys::Simulated {
            behaviour: "ok".into(),
        },
        out.path(),
    );
    s.provider = "zhipu-coding".into();
    let o = crm_evidence::run(s).await.unwrap();
    assert_eq!(o.summary.failing_steps, vec!["02-pack.json"]);
    let pack = &o.summary.steps[1];
    assert!(
        pack.summary.contains("not sold in self_service mode"),
        "{}",
        pack.summary
    );
    assert_eq!(step_verdict(&o, Step::Import), StepVerdict::Skipped);
    assert_eq!(step_verdict(&o, Step::UpstreamModels), StepVerdict::Skipped);
}
