//! Use cases the acceptance harness (`crm-acceptance`) needs beyond the
//! chain itself: fingerprinting keys for evidence, probing the upstream
//! directly with each upstream key, and reading back the secrets of a
//! batch's access closure so the harness can prove none of them reached its
//! evidence files.
//!
//! Nothing here mutates a host. A key is probed only at the base URL crm
//! recorded for its account on the host (docs/design.md §4 step 5). The
//! probes go through the same
//! [`UpstreamProbe`] the access check uses (so they honour
//! `AppConfig::upstream_via`), and their outcomes are scrubbed of the key
//! before they leave this module.

use crate::App;
use crate::error::{AppError, Result};
use crm_access::classify::{UpstreamEvidence, UpstreamReading, read_upstream, read_upstream_key};
use crm_access::recorded::{RecordedAccount, account_for_key};
use crm_domain::batch::BatchFilter;
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::observed::CallOutcome;
use crm_domain::ports::{BatchRepo, HostRepo, SecretSealer, UpstreamProbe};
use crm_domain::secret::scrub;
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    BatchId, FailureClass, Fingerprint, HostId, HostObjectId, ProviderRef, ResourceKind,
    ResourceState, SecretString,
};

/// One upstream key probed directly at the base URL crm recorded for its
/// account: `GET {base}/models`, then a minimal completion with the
/// smoke-test model's upstream name (`POST {base}/v1/messages` alone for an
/// account that talks Anthropic Messages upstream).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamKeyProbe {
    /// The key, as crm shows keys: keyed fingerprint and last four characters.
    pub key: Fingerprint,
    /// The host account crm recorded this key for.
    pub account_id: HostObjectId,
    /// The base URL recorded for that account (before any test routing):
    /// the only URL the key was sent to.
    pub base_url: String,
    /// `None` for an Anthropic Messages account: that API has no listing
    /// at the recorded base URL, so none is asked for.
    pub models: Option<CallOutcome>,
    pub model_ids: Vec<String>,
    /// Whether `/models` lists the model the completion asks for.
    pub model_listed: bool,
    /// The upstream model name the completion asked for.
    pub chat_model: String,
    /// The route the completion took: `/chat/completions` or `/v1/messages`.
    pub chat_route: &'static str,
    pub chat: CallOutcome,
    /// How crm-access reads `/models` alone, the completion alone, and the key.
    pub models_reading: Option<UpstreamReading>,
    pub chat_reading: UpstreamReading,
    pub reading: UpstreamReading,
    /// The failure class this key's answers point to (`None` when it works).
    pub failure_class: Option<FailureClass>,
}

/// What became of one key given to [`App::probe_upstream_keys`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum KeyProbe {
    Probed(UpstreamKeyProbe),
    /// No request was made: crm recorded no account with this key (and a
    /// base URL) for the provider on the host, so there is no URL the key
    /// was given for. `why` says what the operator can do.
    NotProbed {
        key: Fingerprint,
        why: String,
    },
}

impl KeyProbe {
    pub fn key(&self) -> &Fingerprint {
        match self {
            KeyProbe::Probed(p) => &p.key,
            KeyProbe::NotProbed { key, .. } => key,
        }
    }
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

    /// Probes the provider's upstream directly with each key, for
    /// classification evidence independent of the host's gateway.
    ///
    /// Each key goes only to the base URL recorded for its account (found
    /// by fingerprint among the accounts crm recorded for `provider` on
    /// `host`, by crm-access's one lookup), never to the current pack
    /// version's URL, which may have moved since (docs/design.md §4 step 5).
    /// Live accounts count first, then rolled-back ones (the harness probes
    /// after its rollback; the URL is still the one the key was given for),
    /// newest batch first. A key with no recorded account is reported as
    /// [`KeyProbe::NotProbed`] and sent nowhere.
    pub async fn probe_upstream_keys(
        &self,
        host: &str,
        provider: &ProviderRef,
        keys: &[SecretString],
    ) -> Result<Vec<KeyProbe>> {
        let host = self.store.get_host(host).await?;
        let spec = self.provider_spec(provider, None).await?;
        let model = smoke_upstream_model(&spec);
        let signals = &spec.error_signals;
        let accounts = self.recorded_accounts(&host.id, provider).await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let fp = self.fingerprint(key);
            let Some((account, base_url)) = account_for_key(&accounts, &fp) else {
                out.push(KeyProbe::NotProbed {
                    key: fp,
                    why: format!(
                        "crm recorded no account with this key for {provider} on host {}, so \
                         there is no base URL it was given for; import it first \
                         (`crm provider import {provider} --host {} --mode self_service`)",
                        host.name, host.name
                    ),
                });
                continue;
            };
            let base_url = base_url.to_owned();
            // The port, not the client's inherent methods: it turns transport
            // failures into outcomes, exactly as the access check sees them.
            let probe: &dyn UpstreamProbe = self.upstream.as_ref();
            let (listing, chat, chat_route) = if account.speaks_messages() {
                let chat = probe.messages(base_url.clone(), key, model.clone()).await;
                (None, chat, "/v1/messages")
            } else {
                let listing = probe.models(base_url.clone(), key).await;
                let chat = probe.chat(base_url.clone(), key, model.clone()).await;
                (Some(listing), chat, "/chat/completions")
            };
            let model_ids = listing
                .as_ref()
                .map(|l| l.model_ids.clone())
                .unwrap_or_default();
            let models = listing.map(|l| scrubbed(l.outcome, key));
            let chat = scrubbed(chat, key);
            let models_reading = models.as_ref().map(|m| read_upstream(m, signals));
            let chat_reading = read_upstream(&chat, signals);
            let reading = read_upstream_key(
                &UpstreamEvidence {
                    models: models.clone(),
                    chat: Some(chat.clone()),
                },
                signals,
            );
            out.push(KeyProbe::Probed(UpstreamKeyProbe {
                key: fp,
                account_id: account.id,
                base_url,
                model_listed: model_ids.contains(&model),
                model_ids,
                chat_model: model.clone(),
                chat_route,
                models,
                chat,
                failure_class: reading_class(&reading),
                models_reading,
                chat_reading,
                reading,
            }));
        }
        Ok(out)
    }

    /// The accounts crm recorded for `provider` on `host`: live ones first,
    /// then the rest, each group newest batch first.
    async fn recorded_accounts(
        &self,
        host: &HostId,
        provider: &ProviderRef,
    ) -> Result<Vec<RecordedAccount>> {
        let mut batches = self
            .store
            .list_batches(BatchFilter {
                host_id: Some(host.clone()),
                provider: Some(provider.clone()),
                status: None,
                limit: None,
            })
            .await?;
        batches.retain(|b| b.provider == *provider);
        batches.sort_by_key(|b| std::cmp::Reverse(b.created_at));
        let mut live = Vec::new();
        let mut rest = Vec::new();
        for b in &batches {
            for r in self.store.resources(&b.id).await? {
                if let Some(a) = RecordedAccount::of(&r) {
                    match r.state {
                        ResourceState::Live => live.push(a),
                        _ => rest.push(a),
                    }
                }
            }
        }
        live.extend(rest);
        Ok(live)
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
