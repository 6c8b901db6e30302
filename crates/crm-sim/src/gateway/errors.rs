//! Errors per route family: handler errors and upstream errors as sub2api
//! shapes them (`handleErrorResponse` / `mapUpstreamError`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::reply::{json_response, oai_err};
use crate::upstream::Reply;

/// Which route family answers: OpenAI routes and Anthropic routes shape
/// handler errors differently (docs/sub2api-contract.md §4.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    OpenAi,
    Anthropic,
}

pub(super) fn herr(shape: Shape, status: StatusCode, kind: &str, message: &str) -> Response {
    match shape {
        Shape::OpenAi => oai_err(status, kind, message),
        Shape::Anthropic => json_response(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        ),
    }
}

/// sub2api's `mapUpstreamError` after failover is exhausted (d3e73f1
/// `gateway_handler.go` for the Claude route, `openai_gateway_handler.go` for
/// the OpenAI ones: they differ only in the type of a 529).
pub(super) fn map_upstream_error(shape: Shape, status: u16) -> Response {
    let (code, kind, message) = match status {
        401 => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream authentication failed, please contact administrator",
        ),
        403 => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream access forbidden, please contact administrator",
        ),
        429 => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Upstream rate limit exceeded, please retry later",
        ),
        529 => (
            StatusCode::SERVICE_UNAVAILABLE,
            if shape == Shape::Anthropic {
                "overloaded_error"
            } else {
                "upstream_error"
            },
            "Upstream service overloaded, please retry later",
        ),
        500 | 502 | 503 | 504 => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream service temporarily unavailable",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream request failed",
        ),
    };
    herr(shape, code, kind, message)
}

/// d3e73f1 `gateway_service.go` `shouldFailoverUpstreamError`: these switch to
/// the next account; any other upstream error is answered at once.
pub(super) fn fails_over(status: u16) -> bool {
    matches!(status, 401 | 403 | 429 | 529) || status >= 500
}

/// An upstream error that does not fail over (`handleErrorResponse`): a 400 is
/// passed through, the rest mapped without the upstream's details.
pub(super) fn answer_upstream_error(shape: Shape, reply: &Reply) -> Response {
    if reply.status == 400 {
        return json_response(StatusCode::BAD_REQUEST, reply.body.clone());
    }
    map_upstream_error(shape, reply.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_errors_map_like_the_host() {
        let map = |s| map_upstream_error(Shape::OpenAi, s).status();
        assert_eq!(map(401), StatusCode::BAD_GATEWAY);
        assert_eq!(map(402), StatusCode::BAD_GATEWAY);
        assert_eq!(map(429), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(map(503), StatusCode::BAD_GATEWAY);
        assert_eq!(map(529), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn only_auth_rate_limit_overload_and_server_errors_fail_over() {
        assert!(fails_over(401) && fails_over(429) && fails_over(529) && fails_over(500));
        assert!(!fails_over(400) && !fails_over(402) && !fails_over(404));
        let r = map_upstream_error(Shape::Anthropic, 529);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
