//! Use cases the acceptance harness (`crm-acceptance`) needs beyond the
//! chain itself: fingerprinting keys for evidence, probing the upstream
//! directly with each upstream key, and reading back the secrets of a
//! batch's access closure so the harness can prove none of them reached its
//! evidence files.
//!
//! Nothing here mutates a host. The probes go through the same
//! [`UpstreamProbe`] the access check uses (so they honour
//! `AppConfig::upstream_via`), and their outcomes are scrubbed of the key
//! before they leave this module.

use crate::App;
use crate::error::{AppError, Result};
use crm_access::classify::{UpstreamEvidence, UpstreamReading, read_upstream, read_upstream_key};
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::observed::CallOutcome;
use crm_domain::ports::{BatchRepo, SecretSealer, UpstreamProbe};
use crm_domain::secret::scrub;
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    BatchId, FailureClass, Fingerprint, ProviderRef, ResourceKind, ResourceState, SecretString,
};

/// One upstream key probed directly: `GET {base}/models`, then a minimal
/// completion with the smoke-test model's upstream name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamKeyProbe {
    /// The key, as crm shows keys: keyed fingerprint and last four characters.
    pub key: Fingerprint,
    /// The provider's OpenAI-compatible base URL (before any test routing).
    pub base_url: String,
    pub models: CallOutcome,
    pub model_ids: Vec<String>,
    /// Whether `/models` lists the model the completion asks for.
    pub model_listed: bool,
    /// The upstream model name the completion asked for.
    pub chat_model: String,
    pub chat: CallOutcome,
    /// How crm-access reads `/models` alone, the completion alone, and the key.
    pub models_reading: UpstreamReading,
    pub chat_reading: UpstreamReading,
    pub reading: UpstreamReading,
    /// The failure class this key's answers point to (`None` when it works).
    pub failure_class: Option<FailureClass>,
}

/// The secrets of one batch's access closure, held in memory only (for leak
/// scans). Every field prints as `[REDACTED]`.
#[derive(Debug)]
pub struct ClosureSecrets {
    pub batch: BatchId,
    pub user_password: SecretString,
    pub user_key: SecretString,
}

/// The name the upstream knows the smoke-test model by.
pub fn smoke_upstream_model(spec: &ProviderSpec) -> String {
    let smoke = &spec.smoke_test_model;
    spec.model_mapping
        .get(smoke)
        .cloned()
        .or_else(|| spec.model(smoke).map(|m| m.upstream_name.clone()))
        .unwrap_or_else(|| smoke.clone())
}

/// The failure class a direct upstream reading points to.
pub fn reading_class(r: &UpstreamReading) -> Option<FailureClass> {
    match r {
        UpstreamReading::Answers => None,
        UpstreamReading::KeyInvalid { .. } => Some(FailureClass::UpstreamKeyInvalid),
        UpstreamReading::Quota { .. } => Some(FailureClass::UpstreamKeyQuotaIssue),
        UpstreamReading::ModelUnknown { .. } => Some(FailureClass::ModelNotExposed),
        UpstreamReading::RateLimited { .. } => Some(FailureClass::TransientRateLimited),
        UpstreamReading::ServerError { .. } => Some(FailureClass::UpstreamUnavailable),
        UpstreamReading::Unreachable { .. } => Some(FailureClass::HostUnreachable),
        UpstreamReading::Other { .. } => None,
    }
}

fn scrubbed(mut o: CallOutcome, key: &SecretString) -> CallOutcome {
    let s = |t: &str| scrub(t, &[key]);
    o.error_type = o.error_type.as_deref().map(s);
    o.error_code = o.error_code.as_deref().map(s);
    o.message = o.message.as_deref().map(s);
    o.body_excerpt = s(&o.body_excerpt);
    o.transport_error = o.transport_error.as_deref().map(s);
    o
}

impl App {
    /// The fingerprint crm records for a secret under this installation's pepper.
    pub fn fingerprint(&self, secret: &SecretString) -> Fingerprint {
        self.fingerprinter.fingerprint(secret)
    }

    /// Probes the provider's upstream directly with each key (current pack
    /// version), for classification evidence independent of any host.
    pub async fn probe_upstream_keys(
        &self,
        provider: &ProviderRef,
        keys: &[SecretString],
    ) -> Result<Vec<UpstreamKeyProbe>> {
        let spec = self.provider_spec(provider, None).await?;
        let model = smoke_upstream_model(&spec);
        let signals = &spec.error_signals;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            // The port, not the client's inherent methods: it turns transport
            // failures into outcomes, exactly as the access check sees them.
            let probe: &dyn UpstreamProbe = self.upstream.as_ref();
            let listing = probe.models(spec.openai_base_url.clone(), key).await;
            let chat = probe
                .chat(spec.openai_base_url.clone(), key, model.clone())
                .await;
            let models = scrubbed(listing.outcome, key);
            let chat = scrubbed(chat, key);
            let models_reading = read_upstream(&models, signals);
            let chat_reading = read_upstream(&chat, signals);
            let reading = read_upstream_key(
                &UpstreamEvidence {
                    models: Some(models.clone()),
                    chat: Some(chat.clone()),
                },
                signals,
            );
            out.push(UpstreamKeyProbe {
                key: self.fingerprint(key),
                base_url: spec.openai_base_url.clone(),
                model_listed: listing.model_ids.contains(&model),
                model_ids: listing.model_ids,
                chat_model: model.clone(),
                models,
                chat,
                failure_class: reading_class(&reading),
                models_reading,
                chat_reading,
                reading,
            });
        }
        Ok(out)
    }

    /// Reads a batch's closure user password and key back (the password
    /// from its sealed record, the key from the host by logging in as the
    /// user), so a caller can scan its own output for them. `None` when the
    /// batch has no live closure key.
    pub async fn closure_secrets(&self, batch: &BatchId) -> Result<Option<ClosureSecrets>> {
        let record = self.store.get_batch(batch).await?;
        let resources = self.store.resources(batch).await?;
        let Some(key_resource) = resources
            .iter()
            .find(|r| r.kind == ResourceKind::UserApiKey && r.state == ResourceState::Live)
        else {
            return Ok(None);
        };
        let sealed = key_resource
            .desired
            .get("login_password_sealed")
            .and_then(|v| v.as_str())
            .map(|s| SealedSecret(s.to_owned()))
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "the closure key of batch {batch} records no login; was it created by crm?"
                ))
            })?;
        let ctx = SealContext::login_password_in(batch, &key_resource.desired).ok_or_else(|| {
            AppError::invalid(format!(
                "the closure key of batch {batch} records no login email; was it created by crm?"
            ))
        })?;
        let user_password = self.store.sealer().open(&ctx, &sealed)?;
        let ctx = self.host_ctx(record.host_id.as_str()).await?;
        let p = self.access_ports(ctx.api.as_ref());
        let held = crm_access::apply::reveal_batch_key(&p, batch).await?;
        Ok(Some(ClosureSecrets {
            batch: batch.clone(),
            user_password,
            user_key: held.secret,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_map_to_the_briefs_failure_classes() {
        let said = || "x".to_owned();
        assert_eq!(reading_class(&UpstreamReading::Answers), None);
        assert_eq!(
            reading_class(&UpstreamReading::Quota { said: said() }),
            Some(FailureClass::UpstreamKeyQuotaIssue)
        );
        assert_eq!(
            reading_class(&UpstreamReading::KeyInvalid { said: said() }),
            Some(FailureClass::UpstreamKeyInvalid)
        );
        assert_eq!(
            reading_class(&UpstreamReading::RateLimited { said: said() }),
            Some(FailureClass::TransientRateLimited)
        );
    }

    #[test]
    fn outcomes_are_scrubbed_of_the_key() {
        let key = SecretString::from("sk-CANARY-0123456789");
        let o = CallOutcome {
            status: Some(401),
            ok: false,
            error_type: None,
            error_code: None,
            message: Some("bad key sk-CANARY-0123456789".into()),
            body_excerpt: "{\"key\":\"sk-CANARY-0123456789\"}".into(),
            latency_ms: 1,
            transport_error: None,
        };
        let s = serde_json::to_string(&scrubbed(o, &key)).unwrap();
        assert!(!s.contains("CANARY"), "{s}");
    }
}
