//! Shared helpers: a fresh simulator per test and a thin reqwest wrapper.

use std::time::Duration;

use crm_sim::{Profile, SimConfig, SimHandle, SimServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub async fn start(profile: Profile) -> SimHandle {
    SimServer::start(SimConfig::with_profile(profile))
        .await
        .expect("simulator starts")
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn data(&self) -> Value {
        let v = self.json();
        assert_eq!(v["code"], json!(0), "not a success envelope: {v}");
        v["data"].clone()
    }
}

pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
    pub admin_key: String,
}

impl Http {
    pub fn new(sim: &SimHandle) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            base: sim.base_url(),
            admin_key: sim.admin_key().to_owned(),
        }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request answered");
        let status = r.status();
        let headers = r.headers().clone();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = r.text().await.expect("body");
        Resp {
            status,
            content_type,
            headers,
            text,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .req(method, &format!("/api/v1/admin{path}"))
            .header("x-api-key", &self.admin_key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .send(
                self.req(Method::POST, "/api/v1/auth/login")
                    .json(&json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.data()["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn user(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut rb = self.req(method, path).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn gateway(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.req(method, path).bearer_auth(key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn chat(&self, key: &str, model: &str) -> Resp {
        let body = json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]});
        self.gateway(Method::POST, "/v1/chat/completions", key, Some(body))
            .await
    }
}

/// Objects of one access chain, created through the admin and user APIs.
pub struct Chain {
    pub account_id: i64,
    pub group_id: i64,
    pub user_id: i64,
    pub token: String,
    pub key: String,
    pub key_id: i64,
}

/// account → group (bound via account update) → user with `balance` → login → key.
/// A standard group when `subscription` is false, else a subscription group with an assigned subscription.
pub async fn chain(
    http: &Http,
    sim: &SimHandle,
    platform: &str,
    real_base: &str,
    upstream_key: &str,
    subscription: bool,
    balance: f64,
) -> Chain {
    let n = crm_sim_unique();
    let acc = http
        .admin(
            Method::POST,
            "/accounts",
            Some(json!({
                "name": format!("acc-{n}"), "platform": platform, "type": "apikey",
                "credentials": {"api_key": upstream_key, "base_url": sim.upstream_url(real_base),
                                "model_mapping": {"chat-model": "upstream-model"}},
            })),
        )
        .await;
    assert_eq!(acc.status, StatusCode::OK, "{}", acc.text);
    let account_id = acc.data()["id"].as_i64().expect("account id");
    let group = http
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"name": format!("grp-{n}"), "platform": platform,
                        "subscription_type": if subscription { "subscription" } else { "standard" }})),
        )
        .await;
    assert_eq!(group.status, StatusCode::OK, "{}", group.text);
    let group_id = group.data()["id"].as_i64().expect("group id");
    let bound = http
        .admin(
            Method::PUT,
            &format!("/accounts/{account_id}"),
            Some(json!({"group_ids": [group_id]})),
        )
        .await;
    assert_eq!(bound.data()["group_ids"], json!([group_id]));
    let email = format!("u{n}@example.com");
    let user = http
        .admin(
            Method::POST,
            "/users",
            Some(json!({"email": email, "password": "secret-pw", "balance": balance})),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    let user_id = user.data()["id"].as_i64().expect("user id");
    if subscription {
        let s = http
            .admin(
                Method::POST,
                "/subscriptions/assign",
                Some(json!({"user_id": user_id, "group_id": group_id, "validity_days": 30})),
            )
            .await;
        assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    }
    let token = http.login(&email, "secret-pw").await;
    let k = http
        .user(
            Method::POST,
            "/api/v1/keys",
            &token,
            Some(json!({"name": "k", "group_id": group_id})),
        )
        .await;
    assert_eq!(k.status, StatusCode::OK, "{}", k.text);
    let key = k.data()["key"].as_str().expect("key").to_owned();
    let key_id = k.data()["id"].as_i64().expect("key id");
    Chain {
        account_id,
        group_id,
        user_id,
        token,
        key,
        key_id,
    }
}

fn crm_sim_unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}
