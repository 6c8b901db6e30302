//! The test server: a crm-api server on port 0 over a temp database,
//! with its own crm-sim host.

use crm_api::{ApiConfig, ApiState};
use crm_app::{App, AppConfig};
use crm_domain::SecretString;
use crm_sim::{SimConfig, SimHandle, SimServer};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token-for-tests-0123456789";
pub const READ_ONLY: &str = "read-only-token-for-tests-0123456789";

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub sim: SimHandle,
    pub shutdown: CancellationToken,
    /// The `serve` task: it ends after a graceful shutdown has drained.
    pub served: Option<tokio::task::JoinHandle<crm_api::Result<()>>>,
    pub _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A simulator and an application core over a fresh database in `dir`.
pub async fn open_app(dir: &tempfile::TempDir) -> (SimHandle, App) {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let mut cfg = AppConfig::new(dir.path().join("crm.db"));
    cfg.upstream_via = Some(sim.upstream_prefix());
    cfg.actor = "crm-server".into();
    let app = App::open_with(
        cfg,
        Default::default(),
        std::sync::Arc::new(crm_app::ids::UuidIds),
    )
    .await
    .unwrap();
    (sim, app)
}

/// Serves `app` on port 0 (and runs the scheduler when given a config).
pub async fn start(
    dir: tempfile::TempDir,
    sim: SimHandle,
    app: App,
    tune: impl FnOnce(&mut ApiConfig),
    scheduler: Option<crm_api::scheduler::SchedulerConfig>,
) -> TestServer {
    let mut api = ApiConfig::new(SecretString::from(ADMIN));
    api.read_only_token = Some(SecretString::from(READ_ONLY));
    tune(&mut api);
    let state = ApiState::new(app.clone(), api).await.unwrap();
    let listener = crm_api::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    if let Some(cfg) = scheduler {
        tokio::spawn(crm_api::scheduler::run(app, cfg, shutdown.clone()));
    }
    let served = tokio::spawn(crm_api::serve(
        listener,
        state,
        shutdown.clone(),
        Duration::from_secs(30),
    ));
    TestServer {
        base,
        http: reqwest::Client::new(),
        sim,
        shutdown,
        served: Some(served),
        _dir: dir,
    }
}

pub async fn spawn_server_with(tune: impl FnOnce(&mut ApiConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    start(dir, sim, app, tune, None).await
}

pub async fn spawn_server() -> TestServer {
    spawn_server_with(|_| {}).await
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers the simulator as host `sim` and installs the bundled pack.
    pub async fn setup_host_and_pack(&self) {
        self.setup_host_and_pack_every(None).await
    }

    /// The same, with a reconcile interval for the scheduler.
    pub async fn setup_host_and_pack_every(&self, reconcile_every_secs: Option<u64>) {
        let (s, body) = self
            .post(
                "/api/hosts",
                json!({"name": "sim", "base_url": self.sim.base_url(), "admin_key": self.sim.admin_key(),
                    "reconcile_every_secs": reconcile_every_secs}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        let (_, text) = crm_pack::bundled::all()[0];
        let r = self
            .http
            .post(self.url("/api/packs?file_name=cn-official.toml"))
            .bearer_auth(ADMIN)
            .header("content-type", "text/plain")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    }

    /// Polls an operation until it is no longer running.
    pub async fn finish(&self, location: &str) -> Value {
        for _ in 0..1200 {
            let (s, op) = self.get(location).await;
            assert_eq!(s, 200, "{op}");
            if op["status"] != "running" && op["status"] != "queued" {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation {location} did not finish in 60 s");
    }
}
