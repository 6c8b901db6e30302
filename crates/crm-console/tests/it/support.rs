//! One isolated world per test: its own simulator, database, App and console.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::{App, AppConfig};
use crm_console::ConsoleState;
use crm_domain::SecretString;
use crm_sim::{Profile, SimConfig, SimHandle, SimServer};
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token-console-tests-7f3a";
pub const VIEWER: &str = "viewer-token-console-tests-91c2";
/// An upstream key that must never appear on any page.
pub const CANARY: &str = "sim-ok-CANARYconsole-0123456789abcdef";

pub struct World {
    pub sim: SimHandle,
    pub app: App,
    pub router: Router,
    pub launcher: crm_app::OperationRunner,
    _dir: tempfile::TempDir,
}

impl World {
    /// A simulator with the `current` profile, a registered (not yet probed)
    /// host `sim` and the bundled pack installed.
    pub async fn start() -> World {
        let sim = SimServer::start(SimConfig::with_profile(Profile::current()))
            .await
            .expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = AppConfig::new(dir.path().join("crm.db"));
        cfg.upstream_via = Some(sim.upstream_prefix());
        let app = App::open_with(cfg, Default::default(), Arc::new(crm_app::ids::UuidIds))
            .await
            .expect("app opens");
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
            .expect("pack installs");
        let launcher = app.runner().clone();
        let state = ConsoleState::new(
            app.clone(),
            SecretString::from(ADMIN),
            Some(SecretString::from(VIEWER)),
        );
        let router = crm_console::router(state);
        World {
            sim,
            app,
            router,
            launcher,
            _dir: dir,
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        let end = self.body[start..].find('"').expect("field ends") + start;
        self.body[start..end].to_owned()
    }

    /// The value of the hidden field `name` in the page.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).expect("page has the field") + marker.len();
        let end = self.body[start..].find('"').expect("field ends") + start;
        self.body[start..end].to_owned()
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 4 << 20)
        .await
        .expect("body reads");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(router, b.body(Body::empty()).unwrap()).await
}

/// Percent-encodes a form value.
pub fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn post(
    router: &Router,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Reply {
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(router, b.body(Body::from(body)).unwrap()).await
}

/// Signs in and returns the `name=value` cookie pair to send back.
pub async fn login(router: &Router, token: &str) -> String {
    let r = post(router, "/login", None, &[("token", token)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("login sets a cookie")
        .to_owned();
    set.split(';').next().unwrap().to_owned()
}
