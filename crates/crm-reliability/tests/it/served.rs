//! A real `crm-server` child process over a temp database next to an
//! in-process simulator, and a small JSON client for its API.

use crm_app::{App, AppConfig};
use crm_reliability::bins::{Server, ServerOpts};
use crm_reliability::invariants::Recorded;
use crm_sim::{SimConfig, SimHandle, SimServer};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN: &str = "reliability-admin-token-0123456789";

pub struct Served {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub opts: ServerOpts,
    pub http: reqwest::Client,
}

impl Served {
    pub async fn start(tune: impl FnOnce(&mut ServerOpts, &tempfile::TempDir)) -> Served {
        Self::start_with(SimConfig::default(), tune).await
    }

    pub async fn start_with(
        sim: SimConfig,
        tune: impl FnOnce(&mut ServerOpts, &tempfile::TempDir),
    ) -> Served {
        let sim = SimServer::start(sim).await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut opts = ServerOpts::new(dir.path().join("crm.db"), TOKEN);
        opts.upstream_via = Some(sim.upstream_prefix());
        tune(&mut opts, &dir);
        let server = tokio::task::block_in_place(|| Server::start(&opts));
        Served {
            sim,
            dir,
            server,
            opts,
            // No idle pool: a server that refused an oversized body closes
            // that connection, and a pooled client would send the next
            // request down it and see a transport error instead of an answer.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.opts.db.clone()
    }

    /// SIGKILLs the server and starts a new one on the same database.
    pub fn crash_and_restart(&mut self) {
        self.server.kill();
        self.server = tokio::task::block_in_place(|| Server::start(&self.opts));
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, TOKEN, None).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().expect("method"), self.server.url(path))
            .bearer_auth(token);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(format!("transport: {e}"))),
        }
    }

    /// Registers the simulator as host `sim` and installs the bundled pack.
    pub async fn setup(&self) {
        let (s, b) = self
            .call(
                "POST",
                "/api/hosts",
                Some(json!({"name": "sim", "base_url": self.sim.base_url(),
                    "admin_key": self.sim.admin_key()})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (_, text) = crm_pack::bundled::all()[0];
        let r = self
            .http
            .post(self.server.url("/api/packs?file_name=cn-official.toml"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/plain")
            .body(text)
            .send()
            .await
            .expect("pack upload");
        assert_eq!(r.status().as_u16(), 201);
    }

    /// Polls an operation until it is no longer running (or 120 s pass).
    pub async fn finish(&self, location: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (s, op) = self.call("GET", location, None).await;
            if s == 200 && op["status"] != "running" && op["status"] != "queued" {
                return op;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{location} still running: {op}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the database records, read through crm-app beside the server.
    pub async fn recorded(&self) -> Vec<Recorded> {
        recorded(&self.db(), &self.sim).await
    }
}

/// Every batch with its journal and resources, read from `db`.
pub async fn recorded(db: &std::path::Path, sim: &SimHandle) -> Vec<Recorded> {
    let mut cfg = AppConfig::new(db);
    cfg.upstream_via = Some(sim.upstream_prefix());
    let app = App::open_with(cfg, Default::default(), Arc::new(crm_app::ids::UuidIds))
        .await
        .expect("app opens beside the server");
    let mut out = Vec::new();
    for b in app.list_batches(Default::default()).await.expect("batches") {
        let d = app.batch_detail(b.id.as_str()).await.expect("detail");
        out.push(Recorded {
            batch: d.batch,
            journal: d.journal,
            resources: d.resources,
        });
    }
    out
}

/// Runs the real `crm` CLI on `db` (the operator's recovery tool).
pub fn cli(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crm_reliability::bins::cli_bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CRM_CONFIG")
        .output()
        .expect("crm runs")
}
