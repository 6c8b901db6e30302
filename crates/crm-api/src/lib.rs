//! `crm-api`: crm's HTTP API as a library, so `crm-server` stays a thin
//! composition root and tests can run the whole server on port 0.
//!
//! - [`router`] builds the axum app: `/api/...` routes (bearer auth,
//!   `Idempotency-Key`, problem+json errors), `/healthz`, `/readyz`,
//!   `/metrics`, `/api/openapi.json` and an offline docs UI at `/api/docs`.
//! - [`serve`] runs it with graceful shutdown: stop accepting, finish
//!   in-flight requests, drain running operations (bounded), stop the scheduler.
//! - [`scheduler`] runs the reconcile scheduler for hosts with an interval.
//!
//! Only this crate knows HTTP; every use case is a call into [`crm_app::App`].

pub mod auth;
pub mod error;
pub mod idempotency;
pub mod openapi;
pub mod ops;
pub mod routes;
pub mod scheduler;
pub mod schemas;
pub mod telemetry;

pub use error::{ApiError, Error, Problem, Result};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use crm_app::App;
use crm_domain::SecretString;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

/// What the API needs besides the application core.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub admin_token: SecretString,
    pub read_only_token: Option<SecretString>,
    /// The only directory `POST /api/packs/from-path` may read from.
    pub packs_dir: Option<PathBuf>,
    /// Longest a client may ask to wait for an operation.
    pub max_wait: Duration,
    /// Wrong tokens a client address may send per minute before 429.
    pub auth_failures_per_minute: u32,
    /// The only directory `admin_key_file` references may point into
    /// (`crm-server --credential-dir`); without it, references are refused
    /// over HTTP and the key travels in the body.
    pub credential_dir: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` names the source that
    /// failed authentications are counted against (`--trusted-proxy`).
    pub trusted_proxies: crm_app::source::TrustedProxies,
    /// Serve `/metrics` without a token (`--public-metrics`); otherwise it
    /// needs the admin or read-only token (host names are in its labels).
    pub public_metrics: bool,
    /// Longest a request may take before 408 (operations run on; a client
    /// waits for them with `wait`, bounded by `max_wait`).
    pub request_timeout: Duration,
}

impl ApiConfig {
    pub fn new(admin_token: SecretString) -> Self {
        ApiConfig {
            admin_token,
            read_only_token: None,
            packs_dir: None,
            max_wait: Duration::from_secs(300),
            auth_failures_per_minute: 20,
            credential_dir: None,
            trusted_proxies: Default::default(),
            public_metrics: false,
            request_timeout: Duration::from_secs(330),
        }
    }
}

pub(crate) struct Inner {
    pub app: App,
    pub config: ApiConfig,
    pub tokens: auth::Tokens,
    pub limiter: auth::FailureLimiter,
    pub metrics: PrometheusHandle,
    /// Cancelled when a graceful shutdown begins: clients waiting for an
    /// operation get their 202 at once instead of holding the shutdown up.
    pub stopping: CancellationToken,
    /// `(METHOD, route template)` of every documented mutating operation.
    pub mutating: std::collections::HashSet<(String, String)>,
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("app", &self.inner.app)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Checks the configuration and marks operations a previous process
    /// left running as `interrupted`.
    pub async fn new(app: App, config: ApiConfig) -> Result<ApiState> {
        let tokens = auth::Tokens::new(&config.admin_token, config.read_only_token.as_ref())?;
        let interrupted = app
            .with_actor("crm-server")
            .interrupt_unfinished_operations()
            .await?;
        for op in &interrupted {
            tracing::warn!(operation = %op.id, kind = %op.kind, target = %op.target, "operation interrupted by the previous shutdown");
        }
        Ok(ApiState {
            inner: Arc::new(Inner {
                limiter: auth::FailureLimiter::new(config.auth_failures_per_minute),
                app,
                config,
                tokens,
                metrics: telemetry::prometheus(),
                mutating: openapi::mutating_operations(),
                stopping: CancellationToken::new(),
            }),
        })
    }

    pub fn app(&self) -> &App {
        &self.inner.app
    }

    /// The application core acting for a principal.
    pub(crate) fn app_for(&self, p: auth::Principal) -> App {
        self.inner.app.with_actor(p.actor())
    }

    /// The running operations (for draining at shutdown): the app's one
    /// runner, shared with the console.
    pub fn operations(&self) -> &crm_app::OperationRunner {
        self.inner.app.runner()
    }
}

async fn not_found(req: Request) -> Response {
    ApiError::not_found(format!(
        "no route {} {}; the API is described at /api/openapi.json",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

/// Longest a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole HTTP app.
pub fn router(state: ApiState) -> Router {
    router_with(state, Router::new())
}

/// The HTTP app with more routes (the web console) merged in, under the same
/// request-id, tracing and sensitive-header layers. They must not overlap
/// `/api`, `/healthz`, `/readyz` or `/metrics`.
pub fn router_with(state: ApiState, extra: Router) -> Router {
    let timeout = state.inner.config.request_timeout;
    let (api, doc) = openapi::api_router().split_for_parts();
    let doc = openapi::finish(doc);
    // Route layers run only for matched routes (so they see the route
    // template); the last one added runs first.
    let api = api
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotent))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token))
        .route_layer(from_fn(telemetry::access_log))
        .with_state(state.clone());
    let public = routes::health::router().with_state(state);
    let docs: Router = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .url("/api/openapi.json", doc)
        .into();
    let sensitive: Arc<[HeaderName]> = Arc::from([header::AUTHORIZATION, header::COOKIE]);
    api.merge(public)
        .merge(docs)
        .merge(extra)
        .fallback(not_found)
        // One body limit for every extractor, the idempotency layer and the
        // console alike (axum's own default is 2 MiB, the layer's 4 MiB).
        .layer(axum::extract::DefaultBodyLimit::max(idempotency::MAX_BODY))
        // A request (and a slow body) cannot hold a connection for ever.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_TIMEOUT.min(timeout),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(from_fn(telemetry::scope_request_id))
        .layer(PropagateRequestIdLayer::new(
            telemetry::REQUEST_ID_HEADER.clone(),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::from_shared(sensitive))
        .layer(SetRequestIdLayer::new(
            telemetry::REQUEST_ID_HEADER.clone(),
            telemetry::MakeUuid,
        ))
}

/// Serves until `shutdown` is cancelled, then stops accepting, lets
/// in-flight requests finish and waits at most `drain` for running
/// operations.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
    drain: Duration,
) -> Result<()> {
    serve_with(listener, state, Router::new(), shutdown, drain).await
}

/// [`serve`] with more routes merged in (see [`router_with`]).
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    extra: Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> Result<()> {
    let app = router_with(state.clone(), extra);
    let stopping = state.inner.stopping.clone();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        signal.cancelled().await;
        stopping.cancel();
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .map_err(Error::Serve)?;
    let running = state.operations().running();
    if running > 0 {
        tracing::info!(running, "waiting for running operations to finish");
    }
    if !state.operations().drain(drain).await {
        tracing::warn!(
            "operations still running after the drain time; they will be marked interrupted on the next start"
        );
    }
    Ok(())
}

/// Binds an address (`127.0.0.1:0` picks a free port).
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_owned(),
        source,
    })
}
