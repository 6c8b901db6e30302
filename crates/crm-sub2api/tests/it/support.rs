//! Shared helpers: a wiremock host per test, fixtures, a fast-retry client.

use crm_sub2api::{AdminKey, RetryPolicy, SecretString, Sub2apiClient};
use std::time::Duration;
use wiremock::{MockServer, ResponseTemplate};

/// The admin key every test client sends; also a canary for leak checks.
pub const ADMIN_KEY: &str = "admin-CANARYADMIN0123456789abcdef0123456789abcdef0123456789abcdef";

pub const JSON: &str = "application/json; charset=utf-8";

/// A fixture file under `fixtures/sub2api/`.
pub fn fixture(rel: &str) -> String {
    let path = format!(
        "{}/../../fixtures/sub2api/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A JSON answer with a fixture body.
pub fn json(status: u16, rel: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(rel), JSON)
}

/// A JSON answer with an inline body.
pub fn json_value(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), JSON)
}

/// gin's answer for an unknown route.
pub fn plain_404() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_raw(
        fixture("legacy-2025-12/route-missing.txt"),
        "text/plain; charset=utf-8",
    )
}

/// `{"code":0,"message":"success","data":<data>}`.
pub fn ok_envelope(data: serde_json::Value) -> ResponseTemplate {
    json_value(
        200,
        serde_json::json!({"code": 0, "message": "success", "data": data}),
    )
}

pub fn retry_fast() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

pub fn client(server: &MockServer) -> Sub2apiClient {
    Sub2apiClient::builder(server.uri(), AdminKey::new(SecretString::from(ADMIN_KEY)))
        .retry(retry_fast())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

pub fn client_with_timeout(server: &MockServer, timeout: Duration) -> Sub2apiClient {
    Sub2apiClient::builder(server.uri(), AdminKey::new(SecretString::from(ADMIN_KEY)))
        .retry(retry_fast())
        .timeout(timeout)
        .build()
        .expect("client")
}

/// Requests that reached the server, as (method, path?query).
pub async fn requests(server: &MockServer) -> Vec<(String, String)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let q = r.url.query().map(|q| format!("?{q}")).unwrap_or_default();
            (r.method.to_string(), format!("{}{q}", r.url.path()))
        })
        .collect()
}
