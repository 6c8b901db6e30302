//! One isolated world for the state-machine test: a simulator, a database
//! file in a temp directory and the application core over both, which can
//! be dropped and reopened on the same file (a process restart).

use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::{App, AppConfig};
use crm_domain::SecretString;
use crm_reliability::invariants::{self, Recorded};
use crm_sim::{SimConfig, SimHandle, SimServer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long one host request may take before the client gives up; faults
/// that hold an answer hold it longer than this.
pub const HOST_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct World {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub app: App,
}

impl World {
    pub async fn start() -> World {
        let sim = SimServer::start(SimConfig::default())
            .await
            .expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let app = open(&dir, &sim).await;
        app.add_host(NewHost {
            name: "sim".into(),
            base_url: sim.base_url(),
            admin_key: AdminKeySource::Value(SecretString::from(sim.admin_key().to_owned())),
            reconcile_every_secs: None,
        })
        .await
        .expect("host registers");
        app.install_bundled_pack("cn-official")
            .await
            .expect("bundled pack installs");
        app.probe_host("sim").await.expect("probe");
        World { sim, dir, app }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("crm.db")
    }

    /// Drops the application core and opens a new one on the same files.
    pub async fn restart(&mut self) {
        let fresh = open(&self.dir, &self.sim).await;
        self.app = fresh;
    }

    /// Everything the store recorded about every batch.
    pub async fn recorded(&self) -> Vec<Recorded> {
        let mut out = Vec::new();
        let batches = self
            .app
            .list_batches(Default::default())
            .await
            .expect("batches list");
        for b in batches {
            let d = self
                .app
                .batch_detail(b.id.as_str())
                .await
                .expect("batch detail");
            out.push(Recorded {
                batch: d.batch,
                journal: d.journal,
                resources: d.resources,
            });
        }
        out
    }

    /// Every invariant violated right now (host, store and database file).
    pub async fn violations(&self) -> Vec<String> {
        let mut v = invariants::check(&self.sim.state_dump(), &self.recorded().await);
        v.extend(crm_reliability::db::consistency(&self.db()));
        v
    }
}

async fn open(dir: &tempfile::TempDir, sim: &SimHandle) -> App {
    let mut cfg = AppConfig::new(dir.path().join("crm.db"));
    cfg.upstream_via = Some(sim.upstream_prefix());
    cfg.host_timeout = HOST_TIMEOUT;
    cfg.actor = "reliability".into();
    App::open_with(cfg, Default::default(), Arc::new(crm_app::ids::UuidIds))
        .await
        .expect("app opens")
}
