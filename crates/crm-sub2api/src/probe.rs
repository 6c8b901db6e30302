//! The capability probe (docs/design.md §2 "Capabilities", docs/sub2api-contract.md §5).
//!
//! Rules, each recorded as a [`CapabilityEvidence`]:
//! - Only paths under `/api/`, `/v1/` and `/health` are probed: builds with
//!   the embedded frontend answer every other unknown path with `index.html`
//!   and a 200, which would look like "route exists".
//! - A verdict needs the status **and** a JSON content type. A JSON answer,
//!   success or enveloped 4xx, means the route exists; gin's plain-text
//!   `404 page not found` means it does not; HTML or anything else is
//!   treated as absent and says so.
//! - Nothing is mutated. The one write-method probe (`PUT /admin/api-keys/0`
//!   with `{}`) targets id 0, which no key has, so it can only be refused.
//! - Verdicts that cannot be observed without a write are inferred from the
//!   version, and the evidence says "inferred".

use crate::admin::ADMIN;
use crate::client::{Auth, Call, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Sub2apiClient, decode};
use crate::envelope::{Page, RawResponse};
use crate::error::{Error, Result};
use crate::wire::{PublicSettings, SystemVersion};
use crm_domain::Platform;
use crm_domain::host::{AdminAuth, Capabilities, CapabilityEvidence};
use reqwest::Method;
use serde_json::{Value, json};

/// First version assumed to honour `Idempotency-Key` (≈v0.1.153, docs/sub2api-contract.md §2.4).
pub const IDEMPOTENCY_SINCE: (u32, u32, u32) = (0, 1, 153);
/// First version assumed to accept the `minimax` platform (docs/sub2api-contract.md §6: "later N").
pub const MINIMAX_SINCE: (u32, u32, u32) = (0, 2, 0);
/// Native CN platforms that arrive together with `/admin/cn-providers` (v0.1.178).
pub const CN_PLATFORMS: &[&str] = &["kimi", "zhipu", "deepseek"];

/// Parses `v0.1.153`, `0.2.7-beta` ... into (major, minor, patch).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let v = v.trim().trim_start_matches(['v', 'V']);
    let mut parts = v.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn at_least(version: Option<&str>, min: (u32, u32, u32)) -> Option<bool> {
    version.and_then(parse_version).map(|v| v >= min)
}

/// Whether an answer shows the route exists, and why.
fn route_verdict(raw: &RawResponse) -> (bool, String) {
    if raw.is_plain_route_404() {
        (
            false,
            "plain-text `404 page not found`: route absent".into(),
        )
    } else if raw.is_html() {
        (
            false,
            format!(
                "HTML page (status {}): the frontend answered, route absent",
                raw.status
            ),
        )
    } else if raw.is_json() && (200..500).contains(&raw.status) {
        (
            true,
            format!("JSON answer with status {}: route exists", raw.status),
        )
    } else {
        (
            false,
            format!(
                "status {} with content type {:?}: cannot tell, assumed absent",
                raw.status, raw.content_type
            ),
        )
    }
}

struct Recorder {
    evidence: Vec<CapabilityEvidence>,
}

impl Recorder {
    fn add(
        &mut self,
        capability: &str,
        verdict: bool,
        request: &str,
        status: Option<u16>,
        detail: impl Into<String>,
    ) {
        self.evidence.push(CapabilityEvidence {
            capability: capability.to_owned(),
            verdict,
            request: request.to_owned(),
            status,
            detail: detail.into(),
        });
    }
}

impl Sub2apiClient {
    async fn probe_send(&self, call: Call<'_>) -> Result<RawResponse> {
        self.send(&call).await
    }

    /// Probes one admin route and records the verdict; skipped (absent)
    /// when admin auth failed, since every admin route would then refuse.
    async fn probe_route(
        &self,
        rec: &mut Recorder,
        admin_ok: bool,
        cap: &str,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<bool> {
        let req = format!("{method} {path}");
        if !admin_ok {
            rec.add(
                cap,
                false,
                &req,
                None,
                "not probed: admin auth did not succeed",
            );
            return Ok(false);
        }
        let mut call = Call::new(method, path, Auth::Admin);
        call.body = body;
        let raw = self.probe_send(call).await?;
        let (verdict, detail) = route_verdict(&raw);
        rec.add(cap, verdict, &req, Some(raw.status), detail);
        Ok(verdict)
    }

    /// Probes the host's version and capabilities. Never mutates the host.
    ///
    /// `Err` only when the host cannot be reached or fails (5xx) on a step
    /// the verdicts depend on; a rejected admin key is a verdict
    /// ([`AdminAuth::Rejected`]), not an error.
    ///
    /// ```no_run
    /// # async fn run(client: crm_sub2api::Sub2apiClient) -> crm_sub2api::Result<()> {
    /// let caps = client.probe_capabilities().await?;
    /// client.set_page_size(caps.max_page_size);
    /// for e in &caps.evidence {
    ///     println!("{}: {} ({})", e.capability, e.verdict, e.detail);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn probe_capabilities(&self) -> Result<Capabilities> {
        let mut rec = Recorder {
            evidence: Vec::new(),
        };

        // 1. `/health`: reachable at all (transport errors end the probe).
        let raw = self
            .probe_send(Call::new(Method::GET, "/health", Auth::None))
            .await?;
        let healthy = raw.is_success() && raw.is_json();
        rec.add(
            "health",
            healthy,
            "GET /health",
            Some(raw.status),
            if healthy {
                "JSON health answer".to_owned()
            } else {
                route_verdict(&raw).1
            },
        );

        // 2. Public settings: the version, without auth.
        let raw = self
            .probe_send(Call::new(
                Method::GET,
                "/api/v1/settings/public",
                Auth::None,
            ))
            .await?;
        let status = raw.status;
        let mut version = raw
            .into_data(&[])
            .ok()
            .and_then(|v| decode::<PublicSettings>(v).ok())
            .and_then(|s| s.version);
        rec.add(
            "version",
            version.is_some(),
            "GET /api/v1/settings/public",
            Some(status),
            match &version {
                Some(v) => format!("data.version = {v}"),
                None => "no version in public settings".to_owned(),
            },
        );

        // 3. Admin auth: 200 = ok, 401/403 = rejected, 423 = compliance gate.
        let req = "GET /api/v1/admin/system/version";
        let raw = self
            .probe_send(Call::new(
                Method::GET,
                format!("{ADMIN}/system/version"),
                Auth::Admin,
            ))
            .await?;
        let status = raw.status;
        let admin_auth = match raw.into_data(&[self.admin_secret()]) {
            Ok(v) => {
                if version.is_none() {
                    version = decode::<SystemVersion>(v)
                        .ok()
                        .map(|s| s.version)
                        .filter(|s| !s.is_empty());
                }
                rec.add("admin_auth", true, req, Some(status), "admin key accepted");
                AdminAuth::Ok
            }
            Err(Error::ComplianceGate { document_url, .. }) => {
                rec.add(
                    "admin_auth",
                    false,
                    req,
                    Some(status),
                    "423: an administrator must accept the compliance notice in the web console",
                );
                AdminAuth::ComplianceGate { document_url }
            }
            Err(
                e @ (Error::HostUnavailable { .. } | Error::Timeout { .. } | Error::Connect { .. }),
            ) => {
                return Err(e);
            }
            Err(e) => {
                let reason = e
                    .reason()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string());
                rec.add("admin_auth", false, req, Some(status), e.to_string());
                AdminAuth::Rejected { reason }
            }
        };
        let admin_ok = admin_auth == AdminAuth::Ok;

        // 4. Optional admin routes: a JSON answer means present, a plain 404
        // absent. `/v1/chat/completions` is asked with no key: the auth
        // middleware answers 401 JSON when the route exists.
        let channels = self
            .probe_route(
                &mut rec,
                admin_ok,
                "channels",
                Method::GET,
                format!("{ADMIN}/channels?page=1&page_size=1"),
                None,
            )
            .await?;
        let raw = self
            .probe_send(Call::new(Method::POST, "/v1/chat/completions", Auth::None).json(json!({})))
            .await?;
        let (chat_completions, detail) = route_verdict(&raw);
        rec.add(
            "chat_completions",
            chat_completions,
            "POST /v1/chat/completions (no key)",
            Some(raw.status),
            detail,
        );
        let payment_plans = self
            .probe_route(
                &mut rec,
                admin_ok,
                "payment_plans",
                Method::GET,
                format!("{ADMIN}/payment/plans"),
                None,
            )
            .await?;
        let subscriptions = self
            .probe_route(
                &mut rec,
                admin_ok,
                "subscriptions",
                Method::GET,
                format!("{ADMIN}/subscriptions?page=1&page_size=1"),
                None,
            )
            .await?;
        // Id 0 never exists, so this PUT is refused whatever the body.
        let admin_key_rebind = self
            .probe_route(
                &mut rec,
                admin_ok,
                "admin_key_rebind",
                Method::PUT,
                format!("{ADMIN}/api-keys/0"),
                Some(json!({})),
            )
            .await?;
        // An enveloped error for account 0 means the CN provider routes exist,
        // which came with the kimi/zhipu/deepseek platforms (v0.1.178).
        let cn = self
            .probe_route(
                &mut rec,
                admin_ok,
                "cn_platforms",
                Method::GET,
                format!("{ADMIN}/cn-providers/accounts/0/quota"),
                None,
            )
            .await?;

        // The balance route is registered beside the quota route in one
        // handler (admin.go registerCNProviderRoutes, cn_provider_handler.go),
        // so the quota answer above speaks for both; no extra request.
        rec.add(
            "cn_funds",
            cn,
            "(cn_platforms)",
            None,
            if cn {
                "inferred: GET /admin/cn-providers/accounts/:id/balance and /quota are registered together"
            } else {
                "inferred: no cn-providers routes, so no funds or quota readings through the host"
            },
        );
        // Monitor id 0 is refused by `ParseChannelMonitorID` with an
        // enveloped 400 where the routes exist (channel_monitor_handler.go);
        // nothing is listed or changed.
        let channel_monitors = self
            .probe_route(
                &mut rec,
                admin_ok,
                "channel_monitors",
                Method::GET,
                format!("{ADMIN}/channel-monitors/0"),
                None,
            )
            .await?;
        let mut native_platforms: Vec<Platform> = Vec::new();
        if cn {
            native_platforms.extend(CN_PLATFORMS.iter().map(|p| Platform::new(*p)));
            // minimax has no probe-able route of its own.
            let minimax = at_least(version.as_deref(), MINIMAX_SINCE).unwrap_or(false);
            rec.add(
                "platform_minimax",
                minimax,
                "(version)",
                None,
                format!(
                    "inferred: minimax accepted from version 0.2.0; host version {}",
                    version.as_deref().unwrap_or("unknown")
                ),
            );
            if minimax {
                native_platforms.push(Platform::new("minimax"));
            }
        }

        // 5. Page size and redaction, from one read of the account list.
        let (max_page_size, credential_redaction) = if admin_ok {
            let req = format!("GET {ADMIN}/accounts?page=1&page_size={MAX_PAGE_SIZE}");
            let page: Result<Page<Value>> = self
                .list_page(&format!("{ADMIN}/accounts"), &[], 1, MAX_PAGE_SIZE)
                .await;
            match page {
                Ok(p) => {
                    let echoed = u32::try_from(p.page_size).unwrap_or(0);
                    let size = if (1..=MAX_PAGE_SIZE).contains(&echoed) {
                        echoed
                    } else {
                        DEFAULT_PAGE_SIZE
                    };
                    rec.add(
                        "max_page_size",
                        size >= MAX_PAGE_SIZE,
                        &req,
                        Some(200),
                        format!(
                            "asked for {MAX_PAGE_SIZE}, host answered page_size {}; using {size}",
                            p.page_size
                        ),
                    );
                    let redaction = match p.items.first() {
                        Some(a) => {
                            let has = a.get("credentials_status").is_some();
                            rec.add(
                                "credential_redaction",
                                has,
                                &req,
                                Some(200),
                                if has {
                                    "listed account carries credentials_status"
                                } else {
                                    "listed account has no credentials_status: raw credentials"
                                },
                            );
                            has
                        }
                        None => {
                            rec.add(
                                "credential_redaction",
                                false,
                                &req,
                                Some(200),
                                "inferred: no account to inspect; assuming raw credentials",
                            );
                            false
                        }
                    };
                    (size, redaction)
                }
                Err(
                    e @ (Error::HostUnavailable { .. }
                    | Error::Timeout { .. }
                    | Error::Connect { .. }),
                ) => {
                    return Err(e);
                }
                Err(e) => {
                    rec.add(
                        "max_page_size",
                        false,
                        &req,
                        None,
                        format!("{e}; using {DEFAULT_PAGE_SIZE}"),
                    );
                    rec.add(
                        "credential_redaction",
                        false,
                        &req,
                        None,
                        "inferred: account list unreadable",
                    );
                    (DEFAULT_PAGE_SIZE, false)
                }
            }
        } else {
            rec.add(
                "max_page_size",
                false,
                "(none)",
                None,
                "not probed: admin auth did not succeed",
            );
            rec.add(
                "credential_redaction",
                false,
                "(none)",
                None,
                "not probed: admin auth did not succeed",
            );
            (DEFAULT_PAGE_SIZE, false)
        };

        // 6. Idempotency-Key cannot be observed without a write.
        let idempotency_key = at_least(version.as_deref(), IDEMPOTENCY_SINCE).unwrap_or(false);
        rec.add(
            "idempotency_key",
            idempotency_key,
            "(version)",
            None,
            format!(
                "inferred: Idempotency-Key honoured from version 0.1.153; host version {}",
                version.as_deref().unwrap_or("unknown")
            ),
        );

        Ok(Capabilities {
            probed_at: chrono::Utc::now(),
            version,
            admin_auth,
            channels,
            chat_completions,
            native_platforms,
            subscriptions,
            payment_plans,
            admin_key_rebind,
            idempotency_key,
            credential_redaction,
            max_page_size,
            cn_funds: cn,
            channel_monitors,
            evidence: rec.evidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("v0.1.153"), Some((0, 1, 153)));
        assert_eq!(parse_version("0.2.7-beta"), Some((0, 2, 7)));
        assert_eq!(parse_version("1"), Some((1, 0, 0)));
        assert_eq!(parse_version("dev"), None);
        assert_eq!(at_least(Some("0.1.152"), IDEMPOTENCY_SINCE), Some(false));
        assert_eq!(at_least(Some("0.1.178"), IDEMPOTENCY_SINCE), Some(true));
        assert_eq!(at_least(None, MINIMAX_SINCE), None);
    }
}
