//! Verification (docs/design.md §2 "Access check", §4 step 5): the account
//! probe, the gateway check with the user key, and, when the host blames the
//! upstream, a direct probe of the upstream with the upstream key. Each check
//! is stored with its timings and redacted evidence, and the batch's access
//! status follows it. Also the post-rollback check that a key is refused.
//!
//! Evidence never holds a secret: every text that came from a host or an
//! upstream is scrubbed of the user key and the upstream keys before it is
//! stored (hosts and providers do echo keys back), and no step records a key.

use crate::Result;
use crate::classify::{
    CheckEvidence, GatewayReading, GatewayStep, ListingFacts, UpstreamEvidence, UpstreamReading,
    decide, outcome_from_host_error, read_account_probe, read_gateway, read_upstream,
    read_upstream_key, static_listing, upstream_may_explain,
};
use crate::ports::{AccessPorts, HeldKey};
use crate::recorded::{RecordedAccount, account_for_key};
use crate::status::{REVOKED_KEY_STEP, sync_access_status};
use crm_domain::access::{AccessCheck, CheckStep};
use crm_domain::batch::ImportBatch;
use crm_domain::host::Capabilities;
use crm_domain::observed::{AccountProbe, CallOutcome};
use crm_domain::secret::scrub;
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    AccessCheckId, BatchId, FailureClass, KeyFingerprinter, ResourceState, SecretString, Verdict,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// How many listed model ids a step keeps as evidence.
const MAX_MODEL_IDS: usize = 50;

/// Options of one verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Skip the completion smoke (scheduled re-checks of `quota_limited`
    /// providers): the check then rests on the models listing alone.
    pub skip_completion: bool,
    /// Upstream keys to probe directly when the gateway's answer could be
    /// the upstream's doing. Each is matched to the batch's account by its
    /// fingerprint and probed only at that account's recorded base URL, in
    /// that account's endpoint family. Empty when crm does not hold them
    /// (scheduled re-checks): the host's account test is used instead.
    pub upstream_keys: Vec<SecretString>,
    /// Fingerprints the upstream keys (the installation's pepper), to match
    /// them to accounts. Without it no key is probed directly.
    pub fingerprinter: Option<Arc<KeyFingerprinter>>,
    /// What the host's probe found: the completion route (`/v1/messages`
    /// on hosts without chat completions) and whether `/v1/models` is a
    /// static list. `None`: the host is probed first (read-only).
    pub caps: Option<Capabilities>,
}

impl VerifyOptions {
    /// A scheduled re-check: no upstream keys in hand, and no completion
    /// smoke for providers whose upstream quota is tight (`quota_limited`).
    pub fn scheduled(provider: &ProviderSpec) -> Self {
        VerifyOptions {
            skip_completion: provider.quota_limited,
            ..VerifyOptions::default()
        }
    }
}

struct Evidence<'s> {
    secrets: Vec<&'s SecretString>,
}

impl Evidence<'_> {
    fn text(&self, s: &str) -> String {
        scrub(s, &self.secrets)
    }

    fn opt(&self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.text(s))
    }

    fn outcome(&self, o: &CallOutcome) -> serde_json::Value {
        json!({
            "ok": o.ok,
            "error_type": self.opt(o.error_type.as_deref()),
            "error_code": self.opt(o.error_code.as_deref()),
            "message": self.opt(o.message.as_deref()),
            "body_excerpt": self.text(&o.body_excerpt),
            "transport_error": self.opt(o.transport_error.as_deref()),
        })
    }
}

fn step_verdict(o: &CallOutcome) -> Verdict {
    if o.ok {
        Verdict::Pass
    } else if o.status == Some(429) {
        Verdict::PassWithAdvisories
    } else {
        Verdict::Fail
    }
}

/// A direct upstream answer as a step verdict: a quota 429 is a failure,
/// a plain rate limit an advisory.
fn upstream_verdict(r: &UpstreamReading) -> Verdict {
    match r {
        UpstreamReading::Answers => Verdict::Pass,
        UpstreamReading::RateLimited { .. } => Verdict::PassWithAdvisories,
        _ => Verdict::Fail,
    }
}

fn ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The client-visible smoke model and the name the upstream knows it by.
fn upstream_model(provider: &ProviderSpec) -> String {
    let smoke = &provider.smoke_test_model;
    provider
        .model_mapping
        .get(smoke)
        .cloned()
        .or_else(|| provider.model(smoke).map(|m| m.upstream_name.clone()))
        .unwrap_or_else(|| smoke.clone())
}

/// Verifies a batch's access with a held key and stores the check.
///
/// Order: one account probe per live account of the batch (the host's admin
/// test with the smoke-test model), then `/v1/models`, then a minimal
/// completion (unless skipped) through `/v1/chat/completions`, or through
/// `/v1/messages` on hosts without chat completions. Where the listing is
/// static (see [`static_listing`]) not listing the smoke model is
/// informational and ready rests on the completion. A gateway answer the
/// upstream may explain triggers a direct probe per upstream key (at its
/// account's recorded base URL, in its account's endpoint family), and
/// [`decide`] weighs all of it: what the upstream says outranks what the
/// gateway shows.
pub async fn verify_access(
    p: &AccessPorts<'_>,
    batch_id: &BatchId,
    provider: &ProviderSpec,
    key: &HeldKey,
    opts: &VerifyOptions,
) -> Result<AccessCheck> {
    let batch: ImportBatch = p.batches.get_batch(batch_id).await?;
    let smoke = provider.smoke_test_model.clone();
    let mut secrets: Vec<&SecretString> = vec![&key.secret];
    secrets.extend(opts.upstream_keys.iter());
    let ev = Evidence { secrets };
    let mut steps = Vec::new();
    let signals = &provider.error_signals;
    let caps = match &opts.caps {
        Some(c) => c.clone(),
        None => p.host.probe().await?,
    };

    // 1. Account probes.
    let accounts: Vec<RecordedAccount> = p
        .batches
        .resources(batch_id)
        .await?
        .iter()
        .filter(|r| r.state == ResourceState::Live)
        .filter_map(RecordedAccount::of)
        .collect();
    let mut account_readings = Vec::new();
    for acc in &accounts {
        let id = acc.id;
        let started = Instant::now();
        let probe: std::result::Result<AccountProbe, _> =
            p.host.test_account(id, Some(smoke.clone())).await;
        let latency_ms = ms(started);
        let (reading, verdict, status, detail) = match &probe {
            Ok(pr) => {
                let reading = read_account_probe(pr, signals);
                let verdict = upstream_verdict(&reading);
                let status = pr.error_code.as_deref().and_then(|c| c.parse().ok());
                let detail = json!({
                    "account_id": id,
                    "success": pr.success,
                    "model": pr.model,
                    "error": ev.opt(pr.error.as_deref()),
                    "error_code": pr.error_code,
                    "text": ev.text(&pr.text.chars().take(200).collect::<String>()),
                });
                (reading, verdict, status, detail)
            }
            Err(e) => {
                let said = ev.text(&e.to_string());
                (
                    UpstreamReading::Other {
                        status: 0,
                        said: said.clone(),
                    },
                    Verdict::Fail,
                    None,
                    json!({ "account_id": id, "host_error": said }),
                )
            }
        };
        steps.push(CheckStep {
            name: format!("account_probe:{id}"),
            verdict,
            status,
            latency_ms,
            detail,
        });
        account_readings.push((id.to_string(), reading));
    }

    // 2. Models.
    let started = Instant::now();
    let listing = p.host.gateway_models(&key.secret).await;
    let latency = ms(started);
    let (models_outcome, model_ids) = match listing {
        Ok(l) => (l.outcome, l.model_ids),
        Err(e) => (outcome_from_host_error(&e), Vec::new()),
    };
    let listed = model_ids.contains(&smoke);
    let static_evidence = (models_outcome.ok && !listed)
        .then(|| {
            static_listing(
                &ListingFacts {
                    version: caps.version.clone(),
                    channels: caps.channels,
                    chat_completions: caps.chat_completions,
                },
                &model_ids,
            )
        })
        .flatten();
    let mut detail = ev.outcome(&models_outcome);
    detail["smoke_model"] = json!(smoke);
    detail["smoke_model_listed"] = json!(listed);
    detail["model_ids"] = json!(model_ids.iter().take(MAX_MODEL_IDS).collect::<Vec<_>>());
    if let Some(why) = &static_evidence {
        detail["listing"] = json!("static");
        detail["informational"] = json!(true);
        detail["static_evidence"] = json!(why);
    }
    let models_reading = read_gateway(GatewayStep::Models, &models_outcome, &model_ids, &smoke);
    let mut evidence = CheckEvidence {
        smoke_model: smoke.clone(),
        models: models_reading.clone(),
        static_listing: static_evidence.clone(),
        completion: None,
        upstream: Vec::new(),
        accounts: account_readings,
    };
    steps.push(CheckStep {
        name: "gateway_models".into(),
        verdict: match &models_reading {
            GatewayReading::Ok => Verdict::Pass,
            // Informational: the listing is static, the completion decides.
            GatewayReading::Final(_) if evidence.listing_passes() => Verdict::Pass,
            GatewayReading::Final(d) => d.verdict,
            GatewayReading::AskUpstream { .. } => step_verdict(&models_outcome),
        },
        status: models_outcome.status,
        latency_ms: latency.max(models_outcome.latency_ms),
        detail,
    });

    // 3. The completion, on the route the host serves.
    if evidence.listing_passes() && !opts.skip_completion {
        let (step, name) = if caps.chat_completions {
            (GatewayStep::Chat, "gateway_chat")
        } else {
            (GatewayStep::Messages, "gateway_messages")
        };
        let started = Instant::now();
        let answer = match step {
            GatewayStep::Chat => p.host.gateway_chat(&key.secret, smoke.clone()).await,
            _ => p.host.gateway_messages(&key.secret, smoke.clone()).await,
        };
        let latency = ms(started);
        let outcome = answer.unwrap_or_else(|e| outcome_from_host_error(&e));
        let reading = read_gateway(step, &outcome, &[], &smoke);
        let mut detail = ev.outcome(&outcome);
        detail["model"] = json!(smoke);
        steps.push(CheckStep {
            name: name.into(),
            verdict: match &reading {
                GatewayReading::Ok => Verdict::Pass,
                GatewayReading::Final(d) => d.verdict,
                GatewayReading::AskUpstream { .. } => step_verdict(&outcome),
            },
            status: outcome.status,
            latency_ms: latency.max(outcome.latency_ms),
            detail,
        });
        evidence.completion = Some((step, reading));
    }

    // 4. The upstream directly, when the gateway's answer may be its doing.
    let gateway_failure = match &evidence.completion {
        Some((_, r)) if evidence.listing_passes() => r.clone(),
        _ => evidence.models.clone(),
    };
    if upstream_may_explain(&gateway_failure) {
        let model = upstream_model(provider);
        for (n, upstream_key) in opts.upstream_keys.iter().enumerate() {
            let n = n + 1;
            let fp = opts
                .fingerprinter
                .as_ref()
                .map(|f| f.fingerprint(upstream_key));
            let account = fp.as_ref().and_then(|fp| account_for_key(&accounts, fp));
            let Some((acc, base_url)) = account.map(|(a, b)| (a, b.to_owned())) else {
                // Only the base URL recorded for the account being checked
                // is ever called with its key.
                steps.push(CheckStep {
                    name: format!("upstream_key#{n}"),
                    verdict: Verdict::PassWithAdvisories,
                    status: None,
                    latency_ms: 0,
                    detail: json!({
                        "probed": false,
                        "key": fp.map(|f| f.to_string()),
                        "why": "the key matches no live account of this batch with a recorded base URL",
                    }),
                });
                continue;
            };
            let anthropic = acc.speaks_messages();
            let ident = json!({
                "account_id": acc.id,
                "base_url": base_url,
                "key": fp.map(|f| f.to_string()),
            });
            let mut upstream = UpstreamEvidence {
                models: None,
                chat: None,
            };
            if anthropic {
                let started = Instant::now();
                let o = p
                    .upstream
                    .messages(base_url.clone(), upstream_key, model.clone())
                    .await;
                let mut detail = ev.outcome(&o);
                detail["model"] = json!(model);
                detail["account"] = ident.clone();
                steps.push(CheckStep {
                    name: format!("upstream_messages#{n}"),
                    verdict: upstream_verdict(&read_upstream(&o, signals)),
                    status: o.status,
                    latency_ms: ms(started).max(o.latency_ms),
                    detail,
                });
                upstream.chat = Some(o);
            } else {
                let started = Instant::now();
                let models = p.upstream.models(base_url.clone(), upstream_key).await;
                let mut detail = ev.outcome(&models.outcome);
                detail["account"] = ident.clone();
                steps.push(CheckStep {
                    name: format!("upstream_models#{n}"),
                    verdict: upstream_verdict(&read_upstream(&models.outcome, signals)),
                    status: models.outcome.status,
                    latency_ms: ms(started).max(models.outcome.latency_ms),
                    detail,
                });
                let started = Instant::now();
                let chat = p
                    .upstream
                    .chat(base_url.clone(), upstream_key, model.clone())
                    .await;
                let mut detail = ev.outcome(&chat);
                detail["model"] = json!(model);
                detail["account"] = ident;
                steps.push(CheckStep {
                    name: format!("upstream_chat#{n}"),
                    verdict: upstream_verdict(&read_upstream(&chat, signals)),
                    status: chat.status,
                    latency_ms: ms(started).max(chat.latency_ms),
                    detail,
                });
                upstream.models = Some(models.outcome);
                upstream.chat = Some(chat);
            }
            evidence
                .upstream
                .push(read_upstream_key(&upstream, signals));
        }
    }

    // 5. Decide from all of it.
    let diagnosis = decide(&evidence);
    let check = AccessCheck {
        id: AccessCheckId::new(p.ids.new_id("ac")),
        batch_id: batch.id.clone(),
        mode: batch.mode,
        checked_at: p.clock.now(),
        verdict: diagnosis.verdict,
        failure_class: diagnosis.failure_class,
        summary: ev.text(&diagnosis.summary),
        steps,
    };
    p.checks.record_access_check(check.clone()).await?;
    sync_access_status(p.batches, p.checks, p.funds, &batch.id).await?;
    tracing::info!(
        batch = %batch.id,
        verdict = %check.verdict,
        class = ?check.failure_class.map(|c| c.as_str()),
        "access check recorded"
    );
    Ok(check)
}

/// Reads the batch's key back from the host and verifies with it.
pub async fn verify_batch(
    p: &AccessPorts<'_>,
    batch_id: &BatchId,
    provider: &ProviderSpec,
    opts: &VerifyOptions,
) -> Result<AccessCheck> {
    let key = crate::apply::reveal_batch_key(p, batch_id).await?;
    verify_access(p, batch_id, provider, &key, opts).await
}

/// What the host did with a key that should be dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRefusal {
    /// 401/403: the key no longer works.
    Refused,
    /// The host still accepts the key (sub2api keeps some keys alive after
    /// their group is deleted): an operator must delete it by hand.
    StillServed,
    /// No verdict (host unreachable, or an answer that says neither).
    Inconclusive,
}

/// After a rollback: checks that the (previously revealed, held in memory)
/// key is refused by the gateway and records the check on the batch.
pub async fn check_key_refused(
    p: &AccessPorts<'_>,
    batch_id: &BatchId,
    key: &HeldKey,
) -> Result<(KeyRefusal, AccessCheck)> {
    let batch = p.batches.get_batch(batch_id).await?;
    let ev = Evidence {
        secrets: vec![&key.secret],
    };
    let started = Instant::now();
    let listing = p.host.gateway_models(&key.secret).await;
    let latency = ms(started);
    let outcome = match listing {
        Ok(l) => l.outcome,
        Err(e) => outcome_from_host_error(&e),
    };
    let refusal = match outcome.status {
        _ if outcome.ok => KeyRefusal::StillServed,
        Some(401 | 403) => KeyRefusal::Refused,
        _ => KeyRefusal::Inconclusive,
    };
    let key_ref = format!("key {}", key.key_id);
    let (verdict, class, summary) = match refusal {
        KeyRefusal::Refused => (
            Verdict::Pass,
            None,
            format!(
                "{key_ref} is refused after rollback (HTTP {})",
                outcome.status.unwrap_or_default()
            ),
        ),
        KeyRefusal::StillServed => (
            Verdict::Fail,
            None,
            format!(
                "{key_ref} is still served by the host after rollback; delete the key on the host by hand (sub2api keeps some keys alive after their group is deleted)"
            ),
        ),
        KeyRefusal::Inconclusive => (
            Verdict::Fail,
            outcome
                .transport_error
                .is_some()
                .then_some(FailureClass::HostUnreachable),
            format!(
                "could not tell whether {key_ref} is refused: {}",
                ev.text(&crate_said(&outcome))
            ),
        ),
    };
    let check = AccessCheck {
        id: AccessCheckId::new(p.ids.new_id("ac")),
        batch_id: batch.id.clone(),
        mode: batch.mode,
        checked_at: p.clock.now(),
        verdict,
        failure_class: class,
        summary,
        steps: vec![CheckStep {
            name: REVOKED_KEY_STEP.into(),
            verdict,
            status: outcome.status,
            latency_ms: latency.max(outcome.latency_ms),
            detail: {
                let mut d = ev.outcome(&outcome);
                d["key_id"] = json!(key.key_id);
                d["refusal"] = json!(refusal);
                d
            },
        }],
    };
    p.checks.record_access_check(check.clone()).await?;
    // A rolled-back batch is no longer ready, and its sibling loses fully_ready.
    sync_access_status(p.batches, p.checks, p.funds, &batch.id).await?;
    match refusal {
        KeyRefusal::StillServed => {
            tracing::warn!(batch = %batch.id, key = %key.key_id, "rolled-back key is still served")
        }
        _ => {
            tracing::info!(batch = %batch.id, key = %key.key_id, ?refusal, "post-rollback key check")
        }
    }
    Ok((refusal, check))
}

fn crate_said(o: &CallOutcome) -> String {
    match (&o.transport_error, o.status) {
        (Some(t), _) => t.clone(),
        (None, Some(s)) => format!("HTTP {s} {}", o.error_type.as_deref().unwrap_or_default())
            .trim_end()
            .to_owned(),
        (None, None) => "no answer".into(),
    }
}
