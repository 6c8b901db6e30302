//! [`UpstreamProbe`] on the upstream client: a failed call is an outcome
//! to report, not an error, so the probe never fails.

use super::error::host_error;
use crate::error::Error;
use crate::gateway::{UpstreamClient, UpstreamRouting};
use async_trait::async_trait;
use crm_domain::SecretString;
use crm_domain::observed::{CallOutcome, ModelListing};
use crm_domain::ports::{HostResult, UpstreamProbe};

fn failed_outcome(e: &Error) -> CallOutcome {
    CallOutcome {
        status: None,
        ok: false,
        error_type: Some("invalid_request".into()),
        error_code: None,
        message: Some(e.to_string()),
        body_excerpt: String::new(),
        latency_ms: 0,
        transport_error: Some(e.to_string()),
    }
}

#[async_trait]
impl UpstreamProbe for UpstreamClient {
    async fn models(&self, base_url: String, key: &SecretString) -> ModelListing {
        match UpstreamClient::models(self, &base_url, key).await {
            Ok(l) => l,
            Err(e) => ModelListing {
                outcome: failed_outcome(&e),
                model_ids: Vec::new(),
            },
        }
    }

    async fn chat(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome {
        match UpstreamClient::chat(self, &base_url, key, &model).await {
            Ok(o) => o,
            Err(e) => failed_outcome(&e),
        }
    }

    async fn messages(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome {
        match UpstreamClient::messages(self, &base_url, key, &model).await {
            Ok(o) => o,
            Err(e) => failed_outcome(&e),
        }
    }
}

/// An upstream probe with the given routing (see [`UpstreamRouting`]).
pub fn upstream_probe(routing: UpstreamRouting) -> HostResult<UpstreamClient> {
    UpstreamClient::new(routing).map_err(|e| host_error(e, "upstream"))
}
