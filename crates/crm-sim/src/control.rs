//! The simulator's control surface: fault injection, latency, the request log and
//! counters, state dump, reset, upstream key behaviours and edits made behind
//! crm's back. Served over HTTP under `/__sim/` and mirrored by `SimHandle`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::MatchedPath;
use axum::extract::{Path, Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::error::{Result, SimError};
use crate::faults::Fault;
pub use crate::faults::{FaultAction, FaultSpec, RequestRecord};
use crate::model::{State, now, ts};
use crate::reply::{HResult, json_response, parse, path_id};
use crate::shared::Shared;
use crate::upstream::Behaviour;

/// Runtime state an operator can force onto an account behind crm's back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountMutation {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub schedulable: Option<bool>,
    /// Parks the account as temporarily unschedulable with this reason.
    #[serde(default)]
    pub temp_unschedulable_reason: Option<String>,
    /// How long the temporary unschedulable state lasts (default one hour); 0 clears it.
    #[serde(default)]
    pub temp_unschedulable_secs: Option<u64>,
    /// Replaces credentials.model_mapping.
    #[serde(default)]
    pub model_mapping: Option<serde_json::Map<String, Value>>,
}

/// How many request records the log keeps.
pub const LOG_CAP: usize = 10_000;

/// Object kinds that `delete_object` can remove behind crm's back.
pub const OBJECT_KINDS: &[&str] = &[
    "accounts",
    "groups",
    "channels",
    "users",
    "api_keys",
    "subscriptions",
];

fn path_matches(pattern: &str, path: &str, route: &str) -> bool {
    if pattern == route || pattern == path {
        return true;
    }
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let a: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| *p == "*" || p == a)
}

impl State {
    /// Counts the request against every fault and returns the action of the first that fires.
    fn take_fault(&mut self, method: &str, path: &str, route: &str) -> Option<FaultAction> {
        let mut hit = None;
        for f in &mut self.faults {
            let method_ok = f
                .spec
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            if !method_ok || !path_matches(&f.spec.path, path, route) {
                continue;
            }
            f.seen += 1;
            let window = f.spec.nth..f.spec.nth.saturating_add(f.spec.times);
            if hit.is_none() && window.contains(&f.seen) {
                f.fired += 1;
                hit = Some(f.spec.action.clone());
            }
        }
        hit
    }

    fn record(
        &mut self,
        method: &str,
        path: &str,
        route: &str,
        status: Option<u16>,
        outcome: &str,
    ) {
        // Paths and route templates carry no secrets; bodies and headers are never logged.
        tracing::debug!(%method, %route, ?status, %outcome, "sim request");
        self.seq += 1;
        let rec = RequestRecord {
            seq: self.seq,
            at: ts(&now()),
            method: method.to_owned(),
            path: path.to_owned(),
            route: route.to_owned(),
            status,
            outcome: outcome.to_owned(),
        };
        *self.counts.entry(rec.counter_key()).or_insert(0) += 1;
        // A long-running simulator (quickstart) must not grow without bound;
        // the counters stay exact, the log keeps the most recent requests.
        if self.log.len() >= LOG_CAP {
            self.log.drain(..LOG_CAP / 10);
        }
        self.log.push(rec);
    }

    pub(crate) fn counters(&self) -> BTreeMap<String, u64> {
        self.counts.clone()
    }

    pub(crate) fn clear_requests(&mut self) {
        self.log.clear();
        self.counts.clear();
    }

    /// Requests for `METHOD route-template` (exact), or else for a concrete path (from the log).
    pub(crate) fn count(&self, method: &str, route: &str) -> u64 {
        let key = format!("{} {route}", method.to_ascii_uppercase());
        match self.counts.get(&key) {
            Some(n) => *n,
            None => self
                .log
                .iter()
                .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == route)
                .count() as u64,
        }
    }

    pub(crate) fn mutate_account(&mut self, id: i64, m: &AccountMutation) -> Result<()> {
        let a = self.accounts.get_mut(&id).ok_or(SimError::NotFound {
            kind: "account",
            id,
        })?;
        if let Some(s) = &m.status {
            a.status.clone_from(s);
        }
        if let Some(e) = &m.error_message {
            a.error_message.clone_from(e);
        }
        if let Some(s) = m.schedulable {
            a.schedulable = s;
        }
        if let Some(r) = &m.temp_unschedulable_reason {
            a.temp_unschedulable_reason.clone_from(r);
            let secs = m.temp_unschedulable_secs.unwrap_or(3600);
            a.temp_unschedulable_until = (secs > 0).then(|| {
                now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
            });
            if secs == 0 {
                a.temp_unschedulable_reason.clear();
            }
        }
        if let Some(mm) = &m.model_mapping {
            a.credentials
                .insert("model_mapping".into(), Value::Object(mm.clone()));
        }
        a.updated_at = now();
        Ok(())
    }

    pub(crate) fn delete_object(&mut self, kind: &str, id: i64) -> Result<()> {
        let found = match kind {
            "accounts" => self.accounts.remove(&id).is_some(),
            "groups" => self.delete_group(id),
            "channels" => self.channels.remove(&id).is_some(),
            "users" => self.delete_user(id),
            "api_keys" => self.keys.remove(&id).is_some(),
            "subscriptions" => self.subscriptions.remove(&id).is_some(),
            other => return Err(SimError::UnknownKind(other.to_owned())),
        };
        if found {
            Ok(())
        } else {
            Err(SimError::NotFound { kind: "object", id })
        }
    }

    /// Deleting a group unbinds accounts and channels; keys keep pointing at it.
    pub(crate) fn delete_group(&mut self, id: i64) -> bool {
        if self.groups.remove(&id).is_none() {
            return false;
        }
        self.deleted_groups.insert(id);
        for a in self.accounts.values_mut() {
            a.group_ids.retain(|g| *g != id);
        }
        for c in self.channels.values_mut() {
            c.group_ids.retain(|g| *g != id);
        }
        true
    }

    pub(crate) fn delete_user(&mut self, id: i64) -> bool {
        if self.users.remove(&id).is_none() {
            return false;
        }
        self.keys.retain(|_, k| k.user_id != id);
        self.subscriptions.retain(|_, s| s.user_id != id);
        self.sessions.retain(|_, u| *u != id);
        true
    }
}

impl Shared {
    pub(crate) fn inject_fault(&self, spec: FaultSpec) -> u64 {
        let mut st = self.lock();
        st.seq += 1;
        let id = st.seq;
        st.faults.push(Fault {
            id,
            spec,
            seen: 0,
            fired: 0,
        });
        id
    }

    pub(crate) fn reset(&self) {
        let mut st = self.lock();
        *st = State::new(
            st.profile.clone(),
            st.admin_key.clone(),
            &self.admin_email,
            &self.admin_password,
        );
    }
}

/// Fixed latency, fault injection and the request log, around every host route.
pub(crate) async fn sim_layer(
    AxState(app): AxState<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |m| m.as_str().to_owned());
    let kill = req.extensions().get::<ConnKill>().cloned();
    let (latency, fault) = {
        let mut st = app.lock();
        (st.latency, st.take_fault(&method, &path, &route))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let record = |status: Option<u16>, outcome: &str| {
        app.lock().record(&method, &path, &route, status, outcome)
    };
    match fault {
        None => {
            let resp = next.run(req).await;
            record(Some(resp.status().as_u16()), "answered");
            resp
        }
        Some(FaultAction::Status { status, body }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            record(Some(code.as_u16()), "fault_status");
            match body {
                Value::Null => json_response(
                    code,
                    json!({"code": code.as_u16(), "message": "injected fault"}),
                ),
                Value::String(s) => (code, s).into_response(),
                other => json_response(code, other),
            }
        }
        Some(FaultAction::Delay { ms }) => {
            // A task of its own: the host still processes the request late even
            // when the client has given up and the connection is gone.
            let (app, method, path, route) =
                (app.clone(), method.clone(), path.clone(), route.clone());
            let task = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let resp = next.run(req).await;
                app.lock().record(
                    &method,
                    &path,
                    &route,
                    Some(resp.status().as_u16()),
                    "delayed",
                );
                resp
            });
            task.await.unwrap_or_else(|_| {
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"code": 500, "message": "internal error"}),
                )
            })
        }
        Some(FaultAction::Drop) => {
            record(None, "dropped");
            drop_connection(kill).await
        }
        Some(FaultAction::CommitThenDrop) => {
            let resp = next.run(req).await;
            record(Some(resp.status().as_u16()), "committed_then_dropped");
            drop(resp);
            drop_connection(kill).await
        }
        Some(FaultAction::CommitThenDelay { ms }) => {
            let resp = next.run(req).await;
            record(Some(resp.status().as_u16()), "committed_then_delayed");
            tokio::time::sleep(Duration::from_millis(ms)).await;
            resp
        }
    }
}

/// Lets a handler ask the connection task to close its socket without answering.
#[derive(Clone)]
pub(crate) struct ConnKill(pub Arc<Notify>);

async fn drop_connection(kill: Option<ConnKill>) -> Response {
    match kill {
        Some(k) => {
            k.0.notify_one();
            // The connection task drops this future together with the socket.
            std::future::pending::<Response>().await
        }
        // Not served by our accept loop (e.g. `Router::oneshot` in a unit test):
        // a body that fails at once is the closest thing to a dropped connection.
        None => Response::new(Body::from_stream(futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by fault"))
        }))),
    }
}

#[derive(Deserialize)]
struct Millis {
    ms: u64,
}

#[derive(Deserialize)]
struct UpstreamBalance {
    key: String,
    balance: f64,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
struct UpstreamKey {
    key: String,
    behaviour: Behaviour,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sim/state", get(|AxState(app): AxState<Arc<Shared>>| async move { axum::Json(app.lock().dump()) }))
        .route(
            "/__sim/reset",
            post(|AxState(app): AxState<Arc<Shared>>| async move {
                app.reset();
                axum::Json(json!({"reset": true}))
            }),
        )
        .route(
            "/__sim/requests",
            get(|AxState(app): AxState<Arc<Shared>>| async move { axum::Json(json!(app.lock().log)) })
                .delete(|AxState(app): AxState<Arc<Shared>>| async move {
                    app.lock().clear_requests();
                    axum::Json(json!({"cleared": true}))
                }),
        )
        .route(
            "/__sim/counters",
            get(|AxState(app): AxState<Arc<Shared>>| async move { axum::Json(json!(app.lock().counters())) }),
        )
        .route(
            "/__sim/faults",
            get(|AxState(app): AxState<Arc<Shared>>| async move { axum::Json(json!(app.lock().faults)) })
                .post(add_fault)
                .delete(|AxState(app): AxState<Arc<Shared>>| async move {
                    app.lock().faults.clear();
                    axum::Json(json!({"cleared": true}))
                }),
        )
        .route("/__sim/latency", put(set_latency))
        .route("/__sim/slow-delay", put(set_slow_delay))
        .route("/__sim/upstream-keys", put(set_upstream_key))
        .route(
            "/__sim/upstream-balances",
            put(set_upstream_balance).get(|AxState(app): AxState<Arc<Shared>>| async move {
                axum::Json(app.lock().dump()["upstream_funds"].clone())
            }),
        )
        .route("/__sim/accounts/{id}/mutate", post(mutate_account))
        .route("/__sim/objects/{kind}/{id}", delete(delete_object))
}

async fn add_fault(AxState(app): AxState<Arc<Shared>>, body: Bytes) -> HResult {
    let spec: FaultSpec = parse(&body)?;
    let id = app.inject_fault(spec);
    Ok(axum::Json(json!({"id": id})).into_response())
}

async fn set_latency(AxState(app): AxState<Arc<Shared>>, body: Bytes) -> HResult {
    let m: Millis = parse(&body)?;
    app.lock().latency = Duration::from_millis(m.ms);
    Ok(axum::Json(json!({"latency_ms": m.ms})).into_response())
}

async fn set_slow_delay(AxState(app): AxState<Arc<Shared>>, body: Bytes) -> HResult {
    let m: Millis = parse(&body)?;
    app.lock().slow_delay = Duration::from_millis(m.ms);
    Ok(axum::Json(json!({"slow_delay_ms": m.ms})).into_response())
}

async fn set_upstream_key(AxState(app): AxState<Arc<Shared>>, body: Bytes) -> HResult {
    let k: UpstreamKey = parse(&body)?;
    app.lock().upstream_keys.insert(k.key, k.behaviour);
    Ok(axum::Json(json!({"behaviour": k.behaviour})).into_response())
}

async fn set_upstream_balance(AxState(app): AxState<Arc<Shared>>, body: Bytes) -> HResult {
    let b: UpstreamBalance = parse(&body)?;
    if !b.balance.is_finite() {
        return Err(json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "balance must be a finite number"}),
        ));
    }
    let currency = b.currency.unwrap_or_else(|| "CNY".into()).to_uppercase();
    app.lock().upstream_funds.insert(
        b.key,
        crate::upstream::Funds {
            amount: b.balance,
            currency: currency.clone(),
        },
    );
    Ok(axum::Json(json!({"balance": b.balance, "currency": currency})).into_response())
}

fn sim_error(e: &SimError) -> Response {
    let status = match e {
        SimError::NotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    json_response(status, json!({"error": e.to_string()}))
}

async fn mutate_account(
    AxState(app): AxState<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "account")?;
    let m: AccountMutation = parse(&body)?;
    let mut st = app.lock();
    st.mutate_account(id, &m).map_err(|e| sim_error(&e))?;
    let v = st.accounts.get(&id).map(|a| st.account_json(a));
    Ok(axum::Json(json!(v)).into_response())
}

async fn delete_object(
    AxState(app): AxState<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
) -> HResult {
    let id = path_id(&id, "object")?;
    app.lock()
        .delete_object(&kind, id)
        .map_err(|e| sim_error(&e))?;
    Ok(axum::Json(json!({"deleted": true})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn faults_fire_on_the_nth_match_only() {
        let mut st = State::new(Profile::current(), Some("k".into()), "a@b", "pw");
        st.faults.push(Fault {
            id: 1,
            spec: FaultSpec {
                method: Some("post".into()),
                path: "/x/*".into(),
                nth: 2,
                times: 1,
                action: FaultAction::Drop,
            },
            seen: 0,
            fired: 0,
        });
        assert_eq!(st.take_fault("POST", "/x/1", "/x/{id}"), None);
        assert_eq!(st.take_fault("GET", "/x/1", "/x/{id}"), None);
        assert_eq!(
            st.take_fault("POST", "/x/2", "/x/{id}"),
            Some(FaultAction::Drop)
        );
        assert_eq!(st.take_fault("POST", "/x/3", "/x/{id}"), None);
    }

    #[test]
    fn counters_stay_exact_when_the_log_is_trimmed() {
        let mut st = State::new(Profile::current(), None, "a@b", "pw");
        for _ in 0..LOG_CAP + 5 {
            st.record("GET", "/health", "/health", Some(200), "answered");
        }
        assert!(st.log.len() <= LOG_CAP);
        assert_eq!(st.count("GET", "/health"), (LOG_CAP + 5) as u64);
        st.clear_requests();
        assert_eq!(st.count("get", "/health"), 0);
    }

    #[test]
    fn fault_paths_match_templates_and_globs() {
        assert!(path_matches("/a/{id}", "/a/3", "/a/{id}"));
        assert!(path_matches("/a/*/b", "/a/3/b", "<unmatched>"));
        assert!(!path_matches("/a/*", "/a/3/b", "/a/{id}/b"));
    }
}
