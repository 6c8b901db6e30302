//! Starting, addressing and stopping a simulator, and the Rust mirror of the
//! HTTP control API.
//!
//! The accept loop is our own (hyper http1 per connection) so that a fault can
//! close one connection without answering, which `axum::serve` cannot do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::control::{AccountMutation, ConnKill, FaultSpec, RequestRecord, sim_layer};
use crate::error::{Result, SimError};
use crate::model::{State, random_hex};
use crate::profile::Profile;
use crate::shared::Shared;
use crate::upstream::Behaviour;

/// How to start a simulator.
#[derive(Clone)]
pub struct SimConfig {
    /// Which host version to simulate.
    pub profile: Profile,
    /// Address to bind, e.g. `127.0.0.1:0`.
    pub listen: String,
    /// The admin API key (`admin-` + 64 hex); generated when absent.
    pub admin_key: Option<String>,
    /// Email of the first admin user (for JWT login).
    pub admin_email: String,
    /// Password of the first admin user.
    pub admin_password: String,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("profile", &self.profile.name)
            .field("listen", &self.listen)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "[redacted]"))
            .field("admin_email", &self.admin_email)
            .finish_non_exhaustive()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            profile: Profile::current(),
            listen: "127.0.0.1:0".into(),
            admin_key: None,
            admin_email: "admin@sim.local".into(),
            admin_password: "admin-password".into(),
        }
    }
}

impl SimConfig {
    /// Defaults with this profile.
    pub fn with_profile(profile: Profile) -> Self {
        Self {
            profile,
            ..Self::default()
        }
    }
}

/// Entry point: `SimServer::start(config).await`.
#[derive(Debug)]
pub struct SimServer;

impl SimServer {
    /// Binds, spawns the server on the current runtime and returns its handle.
    pub async fn start(config: SimConfig) -> Result<SimHandle> {
        let admin_key = config
            .admin_key
            .clone()
            .unwrap_or_else(|| format!("admin-{}", random_hex(32)));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(
                config.profile.clone(),
                Some(admin_key),
                &config.admin_email,
                &config.admin_password,
            )),
            profile: config.profile.clone(),
            admin_email: config.admin_email.clone(),
            admin_password: config.admin_password.clone(),
        });
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| SimError::Bind {
                    addr: config.listen.clone(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let router = build_router(shared.clone());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, rx));
        Ok(SimHandle {
            shared,
            addr,
            shutdown: tx,
            task: Some(task),
        })
    }
}

pub(crate) fn build_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(crate::admin::routes(shared.clone()))
        .merge(crate::user::routes())
        .merge(crate::gateway::routes(&shared.profile))
        .merge(crate::control::routes())
        .fallback(|| async { crate::reply::gin_404() })
        .method_not_allowed_fallback(|| async { crate::reply::gin_404() })
        .layer(from_fn_with_state(shared.clone(), sim_layer))
        .with_state(shared)
}

async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "crm-sim: accept failed");
                        continue;
                    }
                };
                conns.spawn(serve_connection(stream, router.clone(), shutdown.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // In-flight requests get a moment to finish; held or dropped ones are aborted.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.shutdown().await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let kill = Arc::new(Notify::new());
    let handle = ConnKill(kill.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(handle.clone());
        router.clone().oneshot(req)
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Dropping `conn` closes the socket without writing a response.
        () = kill.notified() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("profile", &self.shared.profile.name)
            .field("admin_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current admin API key (`admin-` + 64 hex); it changes when a client
    /// regenerates it through the API, and is empty once deleted.
    pub fn admin_key(&self) -> String {
        self.shared.lock().admin_key.clone().unwrap_or_default()
    }

    /// Email and password of the first admin user.
    pub fn admin_login(&self) -> (&str, &str) {
        (&self.shared.admin_email, &self.shared.admin_password)
    }

    /// The simulated profile.
    pub fn profile(&self) -> &Profile {
        &self.shared.profile
    }

    /// `{base}/__upstream`: prefix of the simulated upstream providers.
    pub fn upstream_prefix(&self) -> String {
        format!("{}/__upstream", self.base_url())
    }

    /// The simulated stand-in for a real provider base URL:
    /// `https://api.moonshot.cn/v1` → `{base}/__upstream/api.moonshot.cn/v1`.
    pub fn upstream_url(&self, real_base_url: &str) -> String {
        match crate::upstream::split_base_url(real_base_url) {
            Some((authority, path)) => format!("{}/{authority}{path}", self.upstream_prefix()),
            None => self.upstream_prefix(),
        }
    }

    /// Installs a fault; returns its id.
    pub fn inject_fault(&self, spec: FaultSpec) -> u64 {
        self.shared.inject_fault(spec)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Fixed latency added before every host request.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// How long a `slow` upstream key waits before answering.
    pub fn set_slow_delay(&self, delay: Duration) {
        self.shared.lock().slow_delay = delay;
    }

    /// Makes an upstream key behave this way (overrides the `sim-<behaviour>-…` convention).
    pub fn set_upstream_behaviour(&self, key: &str, behaviour: Behaviour) {
        self.shared
            .lock()
            .upstream_keys
            .insert(key.to_owned(), behaviour);
    }

    /// Sets what an upstream key has left to spend (`currency` defaults to CNY);
    /// each successful completion costs it 0.01, and at zero or below it
    /// answers like a key out of money.
    pub fn set_upstream_balance(&self, key: &str, balance: f64, currency: Option<&str>) {
        self.shared.lock().upstream_funds.insert(
            key.to_owned(),
            crate::upstream::Funds {
                amount: balance,
                currency: currency.unwrap_or("CNY").to_uppercase(),
            },
        );
    }

    /// What an upstream key has left (the default 100 until spent or set).
    pub fn upstream_balance(&self, key: &str) -> f64 {
        let st = self.shared.lock();
        st.upstream_funds
            .get(key)
            .map_or(crate::providers::DEFAULT_BALANCE, |f| f.amount)
    }

    /// Every object, secrets reduced to their last four characters.
    pub fn state_dump(&self) -> Value {
        self.shared.lock().dump()
    }

    /// The host requests seen so far (control requests excluded).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().clear_requests();
    }

    /// Request counts keyed `METHOD /route/{template}`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.lock().counters()
    }

    /// How many requests hit `method` + route template (exact), or else a
    /// concrete path (counted from the log, which keeps the latest [`crate::LOG_CAP`]).
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.shared.lock().count(method, route)
    }

    /// Accepts the compliance notice as an admin would (profiles with `compliance_gate`).
    pub fn accept_compliance(&self) {
        self.shared.lock().compliance_accepted = true;
    }

    /// Back to the empty host (the admin user and admin key stay).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Changes an account's runtime state behind crm's back.
    pub fn mutate_account(&self, id: i64, mutation: &AccountMutation) -> Result<()> {
        self.shared.lock().mutate_account(id, mutation)
    }

    /// Deletes an object behind crm's back; `kind` is one of [`crate::OBJECT_KINDS`].
    pub fn delete_object(&self, kind: &str, id: i64) -> Result<()> {
        self.shared.lock().delete_object(kind, id)
    }

    /// Stops accepting, lets in-flight requests finish briefly, then stops.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
