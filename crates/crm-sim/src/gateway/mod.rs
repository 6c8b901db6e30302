//! The gateway (`/v1/models`, `/v1/messages`, `/v1/chat/completions`,
//! `/v1/responses`) and the simulated upstream endpoints under
//! `/__upstream/{authority}/...`.
//!
//! Forwarding is in-process: the host picks an account, builds the URL it would
//! call from the account's `base_url`, and asks `providers::call` what the
//! provider there answers for the account's key; failures are mapped like
//! sub2api's `handleErrorResponse` / `mapUpstreamError`.
//!
//! `auth` is the key, user, group and billing middleware; `models` answers
//! `/v1/models`; `plan` turns a request into the accounts to try; `forward`
//! tries them with failover and bills the call; `errors` shapes handler and
//! upstream errors per route family; `upstream_endpoint` is a simulated
//! provider. This module only routes; its parts import one way: `forward`
//! -> `plan` -> `auth`, `errors`.

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::profile::Profile;
use crate::shared::Shared;

mod auth;
mod errors;
mod forward;
mod models;
mod plan;
mod upstream_endpoint;

use forward::{chat_completions, messages, responses};
use models::models;
use upstream_endpoint::upstream_endpoint;

pub(crate) fn routes(p: &Profile) -> Router<Arc<Shared>> {
    let mut r = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/messages", post(messages))
        .route("/__upstream/{authority}/{*path}", any(upstream_endpoint));
    if p.chat_completions {
        r = r
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions));
    }
    if p.responses_route {
        // d3e73f1 routes/gateway.go: `/v1/responses` and the bare `/responses` alias.
        r = r
            .route("/v1/responses", post(responses))
            .route("/responses", post(responses));
    }
    r
}
