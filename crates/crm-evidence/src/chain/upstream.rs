//! Steps 17 and 19: the upstream, directly, with every key, each at the
//! base URL crm recorded for its account (docs/design.md §4 step 5); a key
//! no account was recorded for is not probed.

use super::runner::{Chain, Concluded, HOST_NAME, Runner};
use crate::verdict::{StepVerdict, worst_of};
use crm_access::classify::UpstreamReading;
use crm_app::acceptance::{KeyProbe, UpstreamKeyProbe, smoke_upstream_model};
use crm_domain::spec::ProviderSpec;
use crm_domain::{ProviderRef, SecretString, Verdict};
use serde_json::{Value, json};

impl Runner {
    pub(super) async fn upstream(
        &mut self,
        r: &ProviderRef,
        spec: &ProviderSpec,
        c: &Chain,
    ) -> (Concluded, Concluded) {
        let mut keys: Vec<SecretString> = Vec::new();
        for (_, ks) in &c.keys_by_mode {
            for k in ks {
                if !keys.iter().any(|x| {
                    secrecy::ExposeSecret::expose_secret(x)
                        == secrecy::ExposeSecret::expose_secret(k)
                }) {
                    keys.push(k.clone());
                }
            }
        }
        let probes = match self.app.probe_upstream_keys(HOST_NAME, r, &keys).await {
            Ok(p) => p,
            Err(e) if e.kind() == crm_app::ErrorKind::NotFound => {
                // No host registered: crm recorded no account, so no key
                // has a base URL it may be sent to.
                let why = format!("skipped: no key was probed ({e})");
                return (Concluded::skipped(why.clone()), Concluded::skipped(why));
            }
            Err(e) => {
                return (
                    Concluded::error(&e, "the upstream probe failed"),
                    Concluded::error(&e, "the upstream probe failed"),
                );
            }
        };
        let model = smoke_upstream_model(spec);
        let models = conclude_upstream(
            &probes,
            |p| {
                let (Some(o), Some(reading)) = (&p.models, &p.models_reading) else {
                    return Err(format!(
                        "account {} talks Anthropic Messages upstream, which has no listing at {}",
                        p.account_id, p.base_url
                    ));
                };
                Ok(Probed {
                    reading,
                    outcome: o,
                    entry: json!({
                        "key": p.key,
                        "account_id": p.account_id,
                        "base_url": p.base_url,
                        "status": o.status,
                        "ok": o.ok,
                        "error_type": o.error_type,
                        "error_code": o.error_code,
                        "message": o.message,
                        "latency_ms": o.latency_ms,
                        "transport_error": o.transport_error,
                        "body_excerpt": o.body_excerpt,
                        "model_ids": p.model_ids,
                        "smoke_model": p.chat_model,
                        "smoke_model_listed": p.model_listed,
                        "reading": reading,
                        "failure_class": crm_app::acceptance::reading_class(reading),
                    }),
                    unlisted: o.ok && !p.model_listed,
                    chat_model: &p.chat_model,
                })
            },
            "GET /models",
        );
        let route = probes
            .iter()
            .find_map(|p| match p {
                KeyProbe::Probed(p) => Some(p.chat_route),
                KeyProbe::NotProbed { .. } => None,
            })
            .unwrap_or("/chat/completions");
        let completion = conclude_upstream(
            &probes,
            |p| {
                Ok(Probed {
                    reading: &p.chat_reading,
                    outcome: &p.chat,
                    entry: json!({
                        "key": p.key,
                        "account_id": p.account_id,
                        "base_url": p.base_url,
                        "route": p.chat_route,
                        "model": p.chat_model,
                        "status": p.chat.status,
                        "ok": p.chat.ok,
                        "error_type": p.chat.error_type,
                        "error_code": p.chat.error_code,
                        "message": p.chat.message,
                        "latency_ms": p.chat.latency_ms,
                        "transport_error": p.chat.transport_error,
                        "body_excerpt": p.chat.body_excerpt,
                        "reading": p.chat_reading,
                        "key_reading": p.reading,
                        "failure_class": p.failure_class,
                    }),
                    unlisted: false,
                    chat_model: &p.chat_model,
                })
            },
            &format!("POST {route} ({model})"),
        );
        (models, completion)
    }
}

/// What one step of the direct probe saw for one key.
struct Probed<'a> {
    reading: &'a UpstreamReading,
    outcome: &'a crm_domain::observed::CallOutcome,
    entry: Value,
    /// The listing answered without the smoke model (informative only).
    unlisted: bool,
    chat_model: &'a str,
}

fn reading_verdict(r: &UpstreamReading) -> Verdict {
    match r {
        UpstreamReading::Answers => Verdict::Pass,
        UpstreamReading::RateLimited { .. } => Verdict::PassWithAdvisories,
        _ => Verdict::Fail,
    }
}

/// One step's verdict over every key: the probed keys decide it; a key
/// that was not probed (`Err` from `probed`, or [`KeyProbe::NotProbed`])
/// is a note, and a step where no key was probed is `skipped`.
fn conclude_upstream(
    probes: &[KeyProbe],
    probed: impl for<'a> Fn(&'a UpstreamKeyProbe) -> std::result::Result<Probed<'a>, String>,
    what: &str,
) -> Concluded {
    let mut verdicts = Vec::new();
    let mut notes = Vec::new();
    let mut classes = Vec::new();
    let mut entries = Vec::new();
    for p in probes {
        let seen = match p {
            KeyProbe::Probed(p) => probed(p),
            KeyProbe::NotProbed { why, .. } => Err(why.clone()),
        };
        let seen = match seen {
            Ok(seen) => seen,
            Err(why) => {
                notes.push(format!("key {}: not probed: {why}", p.key()));
                entries.push(json!({ "key": p.key(), "probed": false, "why": why }));
                continue;
            }
        };
        let r = seen.reading;
        let v = reading_verdict(r);
        verdicts.push(v);
        let class = crm_app::acceptance::reading_class(r);
        if v != Verdict::Pass {
            classes.push((v, class));
        }
        let latency = seen.outcome.latency_ms;
        let status = seen.outcome.status;
        // Informative only: providers accept aliases their listing omits,
        // and the host's own /v1/models (07) is the gate that matters.
        let unlisted = if seen.unlisted {
            format!(", {} not in the listing", seen.chat_model)
        } else {
            String::new()
        };
        notes.push(format!(
            "key {}: {} HTTP {} in {latency} ms{}{unlisted}",
            p.key(),
            v,
            status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            class.map(|c| format!(" ({c})")).unwrap_or_default()
        ));
        entries.push(seen.entry);
    }
    let summary = format!("{what} directly: {}", notes.join("; "));
    let Some(verdict) = worst_of(verdicts.iter().copied()) else {
        return Concluded {
            verdict: StepVerdict::Skipped,
            class: None,
            data: json!({ "skipped": summary, "probes": entries }),
            summary: format!("skipped: {summary}"),
        };
    };
    let class = classes
        .iter()
        .filter(|(v, _)| *v == verdict)
        .find_map(|(_, c)| *c);
    Concluded::new(verdict, summary, json!({ "probes": entries })).class(class)
}
