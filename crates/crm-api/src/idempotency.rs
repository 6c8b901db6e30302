//! `Idempotency-Key` on mutating routes (draft-ietf-httpapi-idempotency-key-header,
//! Stripe's semantics): the first request with a key runs and its response
//! is recorded; a repeat with the same body gets the recorded response back
//! byte for byte; a repeat with a different body gets 422; a repeat while
//! the first still runs gets 409. Keys are scoped to the token and kept at
//! least 24 hours. Nothing is recorded when the request was refused before
//! it did anything (invalid input, not found, conflict), so it can be retried.

use crate::ApiState;
use crate::auth::Principal;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_domain::ops::{IdempotencyBegin, StoredResponse};
use crm_domain::ports::IdempotencyRepo;
use sha2::{Digest, Sha256};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed response.
pub static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// Largest request body the server reads (packs are the biggest bodies).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long keys are kept.
pub const RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Statuses that mean "refused before doing anything": not recorded.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 404 | 409 | 413 | 415 | 422 | 429)
}

/// SHA-256 of the body; JSON bodies are hashed in a canonical form (keys
/// sorted, no whitespace) so formatting does not make a "different" request.
pub fn body_hash(bytes: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok());
    hex::encode(Sha256::digest(canonical.as_deref().unwrap_or(bytes)))
}

fn replay(stored: StoredResponse) -> Response {
    let mut resp = Response::new(Body::from(stored.body));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (k, v) in stored.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp.headers_mut()
        .insert(REPLAYED.clone(), HeaderValue::from_static("true"));
    resp
}

/// Middleware of every `/api` route (after authentication).
pub async fn idempotent(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    // Only documented mutating operations; any other method goes on to the
    // router, which answers 405.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if !st
        .inner
        .mutating
        .contains(&(req.method().as_str().to_owned(), route))
    {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= MAX_KEY_LEN => k.trim().to_owned(),
        _ => {
            return ApiError::bad_request(format!(
                "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"
            ))
            .into_response();
        }
    };
    let principal = req
        .extensions()
        .get::<Principal>()
        .copied()
        .unwrap_or(Principal::Admin)
        .actor();
    let route = format!(
        "{} {}",
        req.method(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
            .into_response();
        }
    };
    let hash = body_hash(&bytes);
    let store = st.app().store().clone();
    let now = st.app().now();
    // Purging on the write path keeps the table bounded without a timer.
    if let Err(e) = store.purge_idempotency_before(now - RETENTION).await {
        tracing::warn!(error = %e, "could not purge old idempotency keys");
    }
    match store.begin_idempotent(principal, &key, &route, &hash).await {
        Err(e) => return ApiError::from(crm_app::AppError::from(e)).into_response(),
        Ok(IdempotencyBegin::Replay(stored)) => return replay(stored),
        Ok(IdempotencyBegin::InProgress) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-in-progress",
                "A request with this Idempotency-Key is still running",
                "wait for the first request to finish, then repeat it to get its response",
            )
            .into_response();
        }
        Ok(IdempotencyBegin::Mismatch) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
                "this key was used for a different route or body; use a new key for a new request",
            )
            .into_response();
        }
        Ok(IdempotencyBegin::Started) => {}
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    // The rest runs in its own task so that a client that disconnects does
    // not leave the key "in progress" forever.
    let request_id = crate::telemetry::current_request_id().unwrap_or_default();
    let task = tokio::spawn(crm_app::REQUEST_ID.scope(request_id, async move {
        let resp = next.run(req).await;
        let status = resp.status();
        let (parts, body) = resp.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                let _ = store.abandon_idempotent(principal, &key).await;
                return ApiError::internal(format!("could not read the response body: {e}"))
                    .into_response();
            }
        };
        if retryable(status) {
            if let Err(e) = store.abandon_idempotent(principal, &key).await {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
        } else {
            let headers = [header::CONTENT_TYPE, header::LOCATION]
                .iter()
                .filter_map(|h| {
                    parts
                        .headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| (h.as_str().to_owned(), v.to_owned()))
                })
                .collect();
            let stored = StoredResponse {
                status: status.as_u16(),
                headers,
                body: body.to_vec(),
            };
            if let Err(e) = store.complete_idempotent(principal, &key, stored).await {
                tracing::error!(error = %e, "could not record an idempotent response");
            }
        }
        Response::from_parts(parts, Body::from(body))
    }));
    match task.await {
        Ok(resp) => resp,
        Err(e) => ApiError::internal(format!("the request task failed: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_hash_the_same_whatever_their_formatting() {
        assert_eq!(
            body_hash(br#"{"a":1,"b":[1,2]}"#),
            body_hash(b"{ \"b\": [1, 2],\n \"a\": 1 }")
        );
        assert_ne!(body_hash(br#"{"a":1}"#), body_hash(br#"{"a":2}"#));
        assert_eq!(body_hash(b"not json"), body_hash(b"not json"));
    }
}
