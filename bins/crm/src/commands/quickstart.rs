//! `crm quickstart`: the whole chain against an in-process simulated sub2api
//! host, in a few seconds and with no network.
//!
//! This is the only place the CLI knows about `crm-sim`: it starts one on
//! loopback and hands its URL and admin key to the same `App::quickstart`
//! chain that would run against a real host.

use anyhow::Context;
use crm_app::quickstart::{QuickstartImport, QuickstartInput, QuickstartSummary};
use crm_app::{App, AppConfig};
use crm_domain::{AccessMode, ProviderRef, SecretString};
use crm_sim::{Profile, SimConfig, SimServer};
use std::path::Path;
use std::time::Duration;

use super::Outcome;
use crate::cli::{GlobalArgs, QuickstartArgs};
use crate::render::{emit, table};

/// The name the simulated host is registered under.
const HOST_NAME: &str = "quickstart";

pub async fn run(args: QuickstartArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let profile = Profile::by_name(&args.profile).with_context(|| {
        let names: Vec<&str> = Profile::all().iter().map(|p| p.name).collect();
        format!(
            "unknown simulator profile '{}'; expected one of: {}",
            args.profile,
            names.join(", ")
        )
    })?;
    let db = args.dir.join("crm.db");
    fresh_database(&args.dir, &db)?;

    let pb = crate::render::progress(global.output, global.quiet, "running the quickstart chain");
    let sim = SimServer::start(SimConfig::with_profile(profile))
        .await
        .context("cannot start the built-in simulator on 127.0.0.1")?;
    let mut cfg = AppConfig::new(&db);
    cfg.upstream_via = Some(sim.upstream_prefix());
    cfg.host_timeout = Duration::from_secs(10);
    cfg.actor = "cli:quickstart".into();
    let app = App::open(cfg).await?;
    let result = app
        .quickstart(QuickstartInput {
            host_name: HOST_NAME.into(),
            host_url: sim.base_url(),
            admin_key: SecretString::from(sim.admin_key()),
            imports: vec![
                QuickstartImport {
                    provider: ProviderRef::new("cn-official", "deepseek"),
                    mode: AccessMode::Subscription,
                    upstream_keys: vec![SecretString::from("sim-ok-deepseek-quickstart-0001")],
                },
                QuickstartImport {
                    provider: ProviderRef::new("cn-official", "kimi"),
                    mode: AccessMode::SelfService,
                    upstream_keys: vec![SecretString::from("sim-ok-kimi-quickstart-0001")],
                },
            ],
        })
        .await;
    sim.shutdown().await;
    pb.finish_and_clear();
    let summary = result?;

    emit(global.output, &summary, |s| {
        format!("{}\n\n{}", render(s), next_steps(&args.dir, s.all_ready()))
    });
    if summary.all_ready() {
        Ok(Outcome::Unchanged)
    } else {
        Ok(Outcome::Failed {
            message: "the quickstart chain did not end with every batch applied, access ready \
                      and the host in sync"
                .into(),
            hint: Some(format!(
                "inspect it with `crm --db {} batch list` and `crm --db {} audit`",
                db.display(),
                db.display()
            )),
        })
    }
}

/// Each run starts from an empty database so it can be repeated in the same
/// directory: the previous run's simulated host is gone, and so is its port.
fn fresh_database(dir: &Path, db: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot replace {}", p.display()));
            }
        }
    }
    Ok(())
}

/// The summary table (and step timings) of a run.
pub fn render(s: &QuickstartSummary) -> String {
    let rows = table(
        &[
            "Host",
            "Provider",
            "Mode",
            "Batch",
            "Access",
            "Reconcile",
            "Import ms",
        ],
        s.rows
            .iter()
            .map(|r| {
                vec![
                    r.host.clone(),
                    r.provider.to_string(),
                    r.mode.to_string(),
                    r.batch_status.to_string(),
                    r.access_status.to_string(),
                    r.reconcile_status.to_string(),
                    r.import_ms.to_string(),
                ]
            })
            .collect(),
    );
    let steps = table(
        &["Step", "ms"],
        s.steps
            .iter()
            .map(|t| vec![t.step.clone(), t.ms.to_string()])
            .collect(),
    );
    let total: u64 = s.steps.iter().map(|t| t.ms).sum();
    format!(
        "crm quickstart: simulated sub2api {} on 127.0.0.1, pack {}\n\n{rows}\n\n{steps}\n\
         total {total} ms, {} drift items after reconcile",
        s.host_version.as_deref().unwrap_or("(unknown version)"),
        s.pack,
        s.drift_items
    )
}

fn next_steps(dir: &Path, ready: bool) -> String {
    let db = dir.join("crm.db");
    let db = db.display();
    let verdict = if ready {
        "Both providers are imported, their access verified and the host is in sync."
    } else {
        "Something did not end ready: the tables above say which step."
    };
    format!(
        "{verdict}\n\
         The simulated host stopped with this command; the database stays in {db}.\n\
         (`crm` below is target/release/crm, or `cargo run --release --bin crm --`.)\n\
         \n\
         See what happened (no host needed):\n\
         \x20 crm --db {db} batch list\n\
         \x20 crm --db {db} batch show BATCH_ID\n\
         \x20 crm --db {db} reconcile --host {HOST_NAME} --history\n\
         \x20 crm --db {db} audit\n\
         \n\
         Drive a host yourself: start a simulator in another terminal,\n\
         \x20 export SIM_ADMIN_KEY=admin-$(openssl rand -hex 32)\n\
         \x20 CRM_SIM_ADMIN_KEY=$SIM_ADMIN_KEY cargo run --release --bin crm-sim -- --listen 127.0.0.1:8090\n\
         then, with SIM_ADMIN_KEY exported here too and a keys file holding one line such as\n\
         sim-ok-deepseek-demo-1 (the simulator reads the key's behaviour from its text):\n\
         \x20 export CRM_DB={db} CRM_UPSTREAM_VIA=http://127.0.0.1:8090/__upstream\n\
         \x20 crm host add sim --url http://127.0.0.1:8090 --admin-key-env SIM_ADMIN_KEY\n\
         \x20 crm host probe sim\n\
         \x20 crm provider preview cn-official/deepseek --host sim --mode self_service --upstream-keys-file keys.txt\n\
         \x20 crm provider import cn-official/deepseek --host sim --mode self_service --upstream-keys-file keys.txt\n\
         \x20 crm provider access cn-official/deepseek --host sim\n\
         \x20 crm reconcile --host sim\n\
         \x20 crm provider rollback cn-official/deepseek --host sim"
    )
}
