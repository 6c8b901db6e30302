//! The simulated upstream endpoints under `/__upstream/{authority}/...`.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::auth::App;
use crate::providers;
use crate::reply::{bearer, json_response};

/// A simulated provider endpoint: OpenAI-compatible `…/models` and
/// `…/chat/completions`, the Anthropic `<anthropic base>/v1/messages`, and the
/// DeepSeek / Moonshot balance APIs. The key is read from `Authorization:
/// Bearer` or `x-api-key` (sub2api sends `x-api-key` to Anthropic bases of
/// apikey accounts: d3e73f1 `gateway_service.go` `buildUpstreamRequest`).
pub(super) async fn upstream_endpoint(
    AxState(app): App,
    Path((authority, path)): Path<(String, String)>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut st = app.lock();
        let key =
            bearer(&headers).or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        providers::call(
            &mut st,
            &authority,
            &format!("/{path}"),
            method.as_str(),
            key,
            &body,
        )
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, reply.body)
}
