//! `crm-console`: crm's web console, server-rendered HTML over the
//! application core (`crm-app`).
//!
//! [`router`] returns an axum [`Router`] that `crm-server` mounts at `/`.
//! Every page calls `crm-app` use cases directly and renders the result; no
//! use case is re-implemented here. Long actions run as recorded operations
//! (`crm_app::OperationRunner`) whose page refreshes itself until they finish.
//!
//! Security model, in one place:
//! - sign-in with the admin token or the optional read-only token; the
//!   browser then holds only a random session id in an `HttpOnly`,
//!   `SameSite=Strict` cookie; sessions live in the database (its digest,
//!   with an expiry), so every replica on one database knows them;
//! - every POST carries the session's CSRF token and is refused without it,
//!   and a cross-origin `Origin` header is refused outright;
//! - read-only sessions get no action controls, and every action handler
//!   refuses them with 403 anyway;
//! - no page renders a secret: upstream keys appear only as fingerprints
//!   (HMAC prefix and last four characters), and pasted upstream keys are
//!   kept server-side between the preview and the import, never echoed;
//! - all assets are embedded; there is no script at all (live progress uses
//!   `<meta http-equiv=refresh>`).

mod actions;
pub mod error;
pub mod html;
pub mod ops;
mod pages;
pub mod session;
pub mod view;

pub use error::{ConsoleError, Result};

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crm_app::{App, REQUEST_ID};
use crm_domain::{AccessMode, ProviderRef, SecretString};
use session::{Role, Session, Sessions, TokenCheck};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the console needs from its host process.
#[derive(Debug)]
pub struct ConsoleState {
    /// The application core (its actor is replaced per session).
    pub app: App,
    /// Signs in with full control.
    pub admin_token: SecretString,
    /// Signs in to look only, if configured.
    pub read_only_token: Option<SecretString>,
    /// Mark the session cookie `Secure` (default). Only a loopback
    /// listener may turn it off (`crm-server --insecure-cookies`).
    pub secure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the source that
    /// failed sign-ins are counted against (`--trusted-proxy`).
    pub trusted_proxies: crm_app::source::TrustedProxies,
}

impl ConsoleState {
    pub fn new(app: App, admin_token: SecretString, read_only_token: Option<SecretString>) -> Self {
        ConsoleState {
            app,
            admin_token,
            read_only_token,
            secure_cookies: true,
            trusted_proxies: Default::default(),
        }
    }
}

/// How long pasted upstream keys wait between the preview and the import.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

/// Upstream keys held between a preview and its confirmation, so the
/// confirmation page never has to carry (and echo) them.
pub(crate) struct PendingImport {
    pub session_id: String,
    pub host: String,
    pub provider: ProviderRef,
    pub mode: AccessMode,
    pub keys: Vec<SecretString>,
    /// The preview listed base URL changes: only then does the confirmation
    /// offer (and honour) `accept_url_change`.
    pub url_changes: bool,
    /// The monitor choice the preview was made with (`None`: the pack's).
    pub monitor: Option<bool>,
    pub expires: Instant,
}

/// Shared state behind every handler.
pub(crate) struct Shared {
    pub app: App,
    pub tokens: TokenCheck,
    pub sessions: Sessions,
    pub failures: session::FailureLimiter,
    pub pending: Mutex<HashMap<String, PendingImport>>,
    pub secure_cookies: bool,
    pub trusted_proxies: crm_app::source::TrustedProxies,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Starts a long action as a recorded operation on the app's one runner
    /// (shared with the HTTP API, so one shutdown drains both).
    pub async fn launch<F, Fut>(
        &self,
        app: &App,
        spec: crm_app::OperationSpec,
        work: F,
    ) -> crm_app::Result<crm_domain::ops::Operation>
    where
        F: FnOnce(App, crm_domain::OperationId) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = crm_app::Result<ops::WorkDone>> + Send + 'static,
    {
        app.runner()
            .launch(app, spec, None, move |app, id| async move {
                ops::outcome(work(app, id).await)
            })
            .await
    }

    /// The core acting for a session's principal (for the audit trail).
    pub fn app_for(&self, session: &Session) -> App {
        self.app.with_actor(session.role.actor())
    }

    pub fn hold_import(&self, pending: PendingImport) -> String {
        let id = session::random_token();
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, p| p.expires > now);
        map.insert(id.clone(), pending);
        id
    }

    /// Takes the held import `id` if it belongs to `session`.
    pub fn take_import(&self, id: &str, session: &Session) -> Option<PendingImport> {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(p) if p.session_id == session.id && p.expires > Instant::now() => map.remove(id),
            _ => None,
        }
    }
}

pub(crate) type Console = Arc<Shared>;

/// The console's routes, ready to be mounted at `/`.
pub fn router(state: ConsoleState) -> Router {
    let shared: Console = Arc::new(Shared {
        tokens: TokenCheck::new(&state.admin_token, state.read_only_token.as_ref()),
        sessions: Sessions::new(state.app.clone()),
        app: state.app,
        failures: session::FailureLimiter::default(),
        pending: Mutex::new(HashMap::new()),
        secure_cookies: state.secure_cookies,
        trusted_proxies: state.trusted_proxies,
    });
    Router::new()
        .route("/", get(pages::overview))
        .route(
            "/login",
            get(pages::login_form).post(actions::sign_in::login),
        )
        .route("/logout", post(actions::sign_in::logout))
        .route("/assets/console.css", get(css))
        .route("/hosts/{host}", get(pages::host))
        .route(
            "/hosts/{host}/probe",
            get(actions::hosts::probe_confirm).post(actions::hosts::probe),
        )
        .route("/hosts/{host}/funds", get(pages::host_funds))
        .route(
            "/hosts/{host}/reconcile",
            post(actions::hosts::reconcile_check),
        )
        .route("/hosts/{host}/repair", post(actions::hosts::repair))
        .route("/reconcile-runs/{id}", get(pages::reconcile_run))
        .route("/providers/{pack}/{provider}", get(pages::provider))
        .route(
            "/providers/{pack}/{provider}/preview",
            post(actions::providers::import_preview),
        )
        .route(
            "/providers/{pack}/{provider}/import",
            post(actions::providers::import),
        )
        .route(
            "/providers/{pack}/{provider}/verify",
            get(actions::providers::verify_confirm).post(actions::providers::verify),
        )
        .route("/batches", get(pages::batches))
        .route("/batches/{id}", get(pages::batch))
        .route(
            "/batches/{id}/rollback",
            get(actions::batches::rollback_confirm).post(actions::batches::rollback),
        )
        .route("/batches/{id}/resume", post(actions::batches::resume))
        .route("/packs", get(pages::packs))
        .route("/packs/{pack}", get(pages::pack))
        .route("/audit", get(pages::audit))
        .route("/operations/{id}", get(pages::operation))
        .layer(middleware::from_fn(guard))
        .with_state(shared)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        html::CSS,
    )
        .into_response()
}

/// Per request: a request id for the audit trail, refusal of cross-site
/// POSTs, and headers that keep pages out of caches and frames.
async fn guard(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !same_origin(&req) {
        return ConsoleError::Csrf.into_response();
    }
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("console-{}", uuid::Uuid::new_v4().simple()));
    let mut res = REQUEST_ID.scope(request_id, next.run(req)).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: with `no-referrer` browsers send
    // `Origin: null` on form POSTs and the origin check above refuses them.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A POST whose `Origin` names another site is refused; browsers send
/// `Origin` on every form POST, non-browser clients may omit it.
fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    authority.eq_ignore_ascii_case(host)
}

/// Any signed-in session (pages). Without one, the browser goes to the login page.
#[derive(Debug, Clone)]
pub(crate) struct Viewer(pub Session);

/// A signed-in admin session (actions). A read-only session gets 403.
#[derive(Debug, Clone)]
pub(crate) struct Admin(pub Session);

async fn session_of(parts: &Parts, state: &Console) -> Result<Option<Session>> {
    let ids: Vec<String> = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(session::session_id_from_cookie)
        .map(str::to_owned)
        .collect();
    for id in ids {
        if let Some(s) = state.sessions.get(&id).await? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self> {
        session_of(parts, state)
            .await?
            .map(Viewer)
            .ok_or(ConsoleError::SignIn)
    }
}

impl FromRequestParts<Console> for Admin {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self> {
        let s = session_of(parts, state)
            .await?
            .ok_or(ConsoleError::SignIn)?;
        match s.role {
            Role::Admin => Ok(Admin(s)),
            Role::ReadOnly => Err(ConsoleError::Forbidden),
        }
    }
}

/// Refuses a POST whose CSRF field does not match the session's token.
pub(crate) fn check_csrf(session: &Session, presented: &str) -> Result<()> {
    if session::same_secret(&session.csrf, presented) {
        Ok(())
    } else {
        Err(ConsoleError::Csrf)
    }
}
