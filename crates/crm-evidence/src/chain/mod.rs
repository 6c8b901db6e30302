//! One acceptance run: the chain of docs/design.md §4 through crm's
//! application core (`crm-app`) on a temporary database, each step leaving
//! a numbered evidence file, then the summary with the verdicts.
//!
//! Order of the files (gaps are deliberate, so a later step can slot in):
//! `01-probe`, `02-pack`, `03-preview`, `05-import`, `07-access-status`,
//! `09-reconcile`, `11-rollback`, `13-post-rollback-access`,
//! `17-upstream-models`, `19-upstream-completion`, `21-summary` (+ `.md`).
//! The pack is installed before the host is probed (it touches no host), so
//! that every file, the first included, names the pack version and checksum.
//!
//! A step that fails is evidence, not an error: it gets a `fail` verdict and
//! the steps that depend on it are written as `skipped` with the reason.
//! Whatever was imported is still rolled back (unless `--keep`), and the
//! direct upstream probes (17, 19) run whatever the host did, each key at
//! the base URL crm recorded for its account (a key no account was
//! recorded for is not probed: docs/design.md §4 step 5).
//!
//! `run` opens the run (target, folder, database, secrets) and hands it to
//! the `runner`, which calls the `steps` (and the `upstream` ones) in order and writes each file and
//! the summary; `target` resolves the host or starts the simulator. The
//! records they write are [`crate::summary`]'s.

mod runner;
mod steps;
mod target;
mod upstream;

pub use crate::summary::{
    BatchLine, Header, HostInfo, PackInfo, SUMMARY_JSON, SUMMARY_MD, SecretScanReport, Step,
    StepRecord, Summary, exit_code_for,
};
pub use runner::RunOutcome;

use crate::config::{RunSpec, Target, UpstreamKeys, simulated_key};
use crate::error::{EvidenceError, Result};
use crate::folder::{EvidenceFolder, SecretKind, SecretSet};
use chrono::Utc;
use crm_app::{App, AppConfig};
use crm_domain::{AccessMode, SecretString};
use runner::{Chain, Runner};
use target::{resolve_target, sanitize};

/// Runs the chain once and writes its evidence folder under `spec.out`.
pub async fn run(spec: RunSpec) -> Result<RunOutcome> {
    let modes = spec.modes.list();
    let is_sim = matches!(spec.target, Target::Sim { .. });
    let keys_by_mode: Vec<(AccessMode, Vec<SecretString>)> = match &spec.upstream_keys {
        UpstreamKeys::Given(keys) if keys.is_empty() => {
            return Err(EvidenceError::invalid(
                "the upstream keys file holds no key; put one upstream key per line",
            ));
        }
        UpstreamKeys::Given(keys) => modes.iter().map(|m| (*m, keys.clone())).collect(),
        UpstreamKeys::Simulated { .. } if !is_sim => {
            return Err(EvidenceError::invalid(
                "simulated upstream keys need --sim; give a real host an --upstream-keys-file",
            ));
        }
        UpstreamKeys::Simulated { behaviour } => {
            crate::config::check_behaviour(behaviour)?;
            // One key per mode, as an operator would use one provider
            // account per sold product.
            modes
                .iter()
                .map(|m| (*m, vec![simulated_key(behaviour)]))
                .collect()
        }
    };
    let resolved = resolve_target(spec.target).await?;

    let run_started_at = Utc::now();
    let folder_name = match &spec.label {
        Some(label) => sanitize(label),
        None => {
            let base = format!("{}-{}", spec.provider, spec.modes.as_str());
            let label = match &resolved.profile {
                Some(p) => format!("sim-{p}-{base}"),
                None => base,
            };
            format!(
                "{}-{}",
                run_started_at.format("%Y%m%dT%H%M%SZ"),
                sanitize(&label)
            )
        }
    };
    let folder = EvidenceFolder::create(&spec.out, &folder_name)?;

    let db_dir = tempfile::tempdir().map_err(|e| EvidenceError::Write {
        path: std::env::temp_dir(),
        detail: e.to_string(),
    })?;
    let db_path = spec
        .db
        .clone()
        .unwrap_or_else(|| db_dir.path().join("crm.db"));
    let mut config = AppConfig::new(db_path);
    config.upstream_via = resolved.upstream_via.clone();
    config.actor = "crm-acceptance".into();
    let app = App::open(config).await?;

    let mut secrets = SecretSet::default();
    secrets.add(SecretKind::AdminKey, resolved.admin_key.clone());
    for (_, keys) in &keys_by_mode {
        for k in keys {
            secrets.add(SecretKind::UpstreamKey, k.clone());
        }
    }
    if let Some(u) = &spec.user {
        secrets.add(SecretKind::UserPassword, u.password.clone());
    }

    let header = Header {
        run_id: uuid::Uuid::new_v4().to_string(),
        harness: format!("crm-acceptance {}", env!("CARGO_PKG_VERSION")),
        run_started_at,
        host: HostInfo {
            url: resolved.url.clone(),
            version: None,
            simulator_profile: resolved.profile.clone(),
        },
        pack: None,
        provider: spec.provider.clone(),
        modes: modes.clone(),
        keep: spec.keep,
    };
    let mut r = Runner {
        app,
        folder,
        secrets,
        header,
        records: Vec::new(),
        redactions_seen: 0,
    };
    let chain = Chain {
        url: resolved.url.clone(),
        admin_key: resolved.admin_key.clone(),
        pack: spec.pack.clone(),
        provider: spec.provider.clone(),
        keys_by_mode,
        user: spec.user,
        keep: spec.keep,
    };
    let outcome = r.chain(chain).await;
    if let Some(sim) = resolved.sim {
        sim.shutdown().await;
    }
    drop(db_dir);
    outcome
}
