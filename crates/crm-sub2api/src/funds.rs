//! Funds and quota of upstream keys: the host's cn-providers routes (newer
//! sub2api builds) and the providers' own balance APIs.
//!
//! Host routes, read from sub2api's newer source:
//! `backend/internal/server/routes/admin.go` (commit 0035439d) registers
//! `GET /admin/cn-providers/accounts/:id/quota|balance`, answered by
//! `backend/internal/handler/admin/cn_provider_handler.go` (@192e737) with the
//! service results `CNProviderBalanceResult`
//! (`service/cn_provider_balance_service.go` @07b096d: `provider, success,
//! balance, currency, balances[{currency,balance}], available, status_code,
//! fetched_at, persisted, error`) and `CNProviderQuotaProbeResult`
//! (`service/cn_provider_quota_service.go` @4dead04: `provider, source,
//! success, credential_valid, tiers[{window,used_percent,reset_at}],
//! plan_level, status_code, fetched_at, persisted, error`). A provider
//! failure is a 200 with `success=false` and `error`; a wrong platform or
//! mode is an enveloped 400 (`CN_BALANCE_NO_ENDPOINT`,
//! `CN_QUOTA_NOT_CODING_PLAN`, ...).
//!
//! Provider APIs (`../shared/sub2api/cn-providers.md`): DeepSeek
//! `GET {base}/user/balance` answers `{is_available, balance_infos:
//! [{currency, total_balance, ...}]}` with amounts as strings; Moonshot
//! `GET /v1/users/me/balance` answers `{code:0, data:{available_balance,
//! ...}}`, CNY on `.cn`, USD on `.ai`.

use crate::client::{Auth, Call, Sub2apiClient, error_chain, normalize_base_url};
use crate::error::Result;
use crate::gateway::UpstreamRouting;
use crate::scrub::scrub_text;
use async_trait::async_trait;
use crm_domain::ReadingKind;
use crm_domain::funds::{FundsValue, Money, QuotaWindow};
use crm_domain::ports::UpstreamFunds;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use crm_domain::funds::host_route;

/// `data` of `GET /admin/cn-providers/accounts/:id/balance`.
#[derive(Debug, Clone, Deserialize)]
pub struct CnBalance {
    #[serde(default)]
    pub provider: String,
    pub success: bool,
    #[serde(default)]
    pub balance: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub balances: Vec<CnBalanceEntry>,
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub fetched_at: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// One currency of a [`CnBalance`].
#[derive(Debug, Clone, Deserialize)]
pub struct CnBalanceEntry {
    pub currency: String,
    pub balance: f64,
}

/// `data` of `GET /admin/cn-providers/accounts/:id/quota`.
#[derive(Debug, Clone, Deserialize)]
pub struct CnQuota {
    #[serde(default)]
    pub provider: String,
    pub success: bool,
    #[serde(default)]
    pub credential_valid: Option<bool>,
    #[serde(default)]
    pub tiers: Vec<CnQuotaTier>,
    #[serde(default)]
    pub plan_level: Option<String>,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub error: Option<String>,
}

/// One rolling window of a [`CnQuota`].
#[derive(Debug, Clone, Deserialize)]
pub struct CnQuotaTier {
    pub window: String,
    pub used_percent: f64,
    #[serde(default)]
    pub reset_at: Option<String>,
}

fn failed_detail(what: &str, status: Option<u16>, error: Option<&str>) -> String {
    let mut s = format!("the host could not read the {what} from the provider");
    if let Some(st) = status {
        s.push_str(&format!(" (provider answered HTTP {st})"));
    }
    if let Some(e) = error.filter(|e| !e.is_empty()) {
        s.push_str(": ");
        s.push_str(&scrub_text(e, &[]));
    }
    s
}

impl CnBalance {
    /// The reading this answer amounts to.
    pub fn to_value(&self) -> FundsValue {
        if !self.success {
            return FundsValue::unknown(
                ReadingKind::Balance,
                failed_detail("balance", self.status_code, self.error.as_deref()),
            );
        }
        let mut balances: Vec<Money> = self
            .balances
            .iter()
            .map(|b| Money {
                amount: b.balance,
                currency: b.currency.trim().to_ascii_uppercase(),
            })
            .collect();
        if balances.is_empty()
            && let (Some(amount), Some(currency)) = (self.balance, self.currency.as_deref())
        {
            balances.push(Money {
                amount,
                currency: currency.trim().to_ascii_uppercase(),
            });
        }
        if balances.is_empty() {
            return FundsValue::unknown(
                ReadingKind::Balance,
                "the host reported success without any balance",
            );
        }
        FundsValue::balance(balances, self.available)
    }
}

impl CnQuota {
    /// The reading this answer amounts to.
    pub fn to_value(&self) -> FundsValue {
        if !self.success {
            return FundsValue::unknown(
                ReadingKind::Quota,
                failed_detail("quota", self.status_code, self.error.as_deref()),
            );
        }
        if self.tiers.is_empty() {
            return FundsValue::unknown(
                ReadingKind::Quota,
                "the host reported success without any quota window",
            );
        }
        FundsValue::quota(
            self.tiers
                .iter()
                .map(|t| QuotaWindow {
                    window: t.window.clone(),
                    used_percent: t.used_percent,
                    reset_at: t.reset_at.clone().filter(|r| !r.is_empty()),
                })
                .collect(),
        )
    }
}

impl Sub2apiClient {
    /// `GET /admin/cn-providers/accounts/:id/balance` (newer hosts). Not
    /// retried beyond the client's read policy; the host itself calls the
    /// provider, so a slow provider is a slow answer.
    pub async fn cn_account_balance(&self, id: i64) -> Result<CnBalance> {
        self.typed(
            Call::new(
                Method::GET,
                format!("{}/cn-providers/accounts/{id}/balance", crate::admin::ADMIN),
                Auth::Admin,
            ),
            &[],
        )
        .await
    }

    /// `GET /admin/cn-providers/accounts/:id/quota` (newer hosts).
    pub async fn cn_account_quota(&self, id: i64) -> Result<CnQuota> {
        self.typed(
            Call::new(
                Method::GET,
                format!("{}/cn-providers/accounts/{id}/quota", crate::admin::ADMIN),
                Auth::Admin,
            ),
            &[],
        )
        .await
    }
}

// ------------------------------------------------------------------ upstream

/// Which provider balance API a base URL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceApi {
    /// `GET {openai base}/user/balance`.
    DeepSeek,
    /// `GET {scheme://host}/v1/users/me/balance`; `usd` on the `.ai` site.
    Moonshot { usd: bool },
}

impl BalanceApi {
    /// The API for a provider's OpenAI-compatible base URL, if it has one.
    pub fn for_base_url(base_url: &str) -> Option<BalanceApi> {
        let host = url::Url::parse(base_url)
            .ok()?
            .host_str()?
            .to_ascii_lowercase();
        if host == "api.deepseek.com" {
            Some(BalanceApi::DeepSeek)
        } else if host == "api.moonshot.cn" {
            Some(BalanceApi::Moonshot { usd: false })
        } else if host == "api.moonshot.ai" {
            Some(BalanceApi::Moonshot { usd: true })
        } else {
            None
        }
    }

    /// The balance URL for `base_url`.
    pub fn url(self, base_url: &str) -> Result<String> {
        let base = normalize_base_url(base_url)?;
        Ok(match self {
            // An Anthropic-format base (`.../anthropic`) falls back to the
            // OpenAI-format root, as sub2api's cnBalanceURL does.
            BalanceApi::DeepSeek => format!(
                "{}/user/balance",
                base.trim_end_matches("/anthropic").trim_end_matches("/v1")
            ),
            BalanceApi::Moonshot { .. } => {
                let u = url::Url::parse(&base).map_err(|e| crate::Error::InvalidBaseUrl {
                    url: base.clone(),
                    detail: e.to_string(),
                })?;
                format!(
                    "{}://{}/v1/users/me/balance",
                    u.scheme(),
                    u.host_str().unwrap_or_default()
                )
            }
        })
    }

    /// Reads the provider's answer.
    pub fn parse(self, body: &Value) -> FundsValue {
        match self {
            BalanceApi::DeepSeek => {
                let Some(infos) = body.get("balance_infos").and_then(Value::as_array) else {
                    return FundsValue::unknown(
                        ReadingKind::Balance,
                        "unexpected DeepSeek balance answer: no balance_infos",
                    );
                };
                let balances: Vec<Money> = infos
                    .iter()
                    .filter_map(|i| {
                        let amount = number(i.get("total_balance")?)?;
                        let currency = i
                            .get("currency")
                            .and_then(Value::as_str)
                            .filter(|c| !c.trim().is_empty())
                            .unwrap_or("CNY")
                            .trim()
                            .to_ascii_uppercase();
                        Some(Money { amount, currency })
                    })
                    .collect();
                if balances.is_empty() {
                    return FundsValue::unknown(
                        ReadingKind::Balance,
                        "unexpected DeepSeek balance answer: no readable total_balance",
                    );
                }
                let available = body.get("is_available").and_then(Value::as_bool);
                FundsValue::balance(balances, available)
            }
            BalanceApi::Moonshot { usd } => {
                let amount = body
                    .get("data")
                    .and_then(|d| d.get("available_balance"))
                    .and_then(number);
                match amount {
                    Some(amount) => FundsValue::balance(
                        vec![Money {
                            amount,
                            currency: if usd { "USD" } else { "CNY" }.into(),
                        }],
                        None,
                    ),
                    None => FundsValue::unknown(
                        ReadingKind::Balance,
                        "unexpected Moonshot balance answer: no data.available_balance",
                    ),
                }
            }
        }
    }
}

/// A JSON number or a numeric string (DeepSeek sends amounts as strings).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Largest balance answer read (sub2api reads 256 KiB, cnBalanceMaxBodyBytes).
const MAX_BALANCE_BODY: usize = 256 * 1024;

/// Calls providers' balance APIs with upstream keys the operator supplied.
#[derive(Debug, Clone)]
pub struct UpstreamFundsClient {
    http: reqwest::Client,
    routing: UpstreamRouting,
    timeout: Duration,
    requests: Arc<AtomicU32>,
}

impl UpstreamFundsClient {
    pub fn new(routing: UpstreamRouting, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("crm-sub2api/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(timeout))
            // Like every crm client: a redirect would carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::Error::Transport {
                method: String::new(),
                path: String::new(),
                detail: format!("HTTP client could not be built: {e}"),
            })?;
        Ok(UpstreamFundsClient {
            http,
            routing,
            timeout,
            requests: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Requests sent so far.
    pub fn request_count(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn read(&self, api: BalanceApi, base_url: &str, key: &SecretString) -> FundsValue {
        let unknown = |d: String| FundsValue::unknown(ReadingKind::Balance, scrub_text(&d, &[key]));
        let url = match api.url(base_url).and_then(|u| self.routing.route(&u)) {
            Ok(u) => u,
            Err(e) => return unknown(e.to_string()),
        };
        let Ok(mut auth) = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())) else {
            return unknown("the upstream key cannot be sent in an HTTP header".into());
        };
        auth.set_sensitive(true);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .get(url)
            .timeout(self.timeout)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json")
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return unknown("the provider's balance API did not answer in time".into());
            }
            Err(e) => {
                return unknown(format!(
                    "the provider's balance API is unreachable: {}",
                    error_chain(&e.without_url())
                ));
            }
        };
        let status = resp.status().as_u16();
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    body.extend_from_slice(&c);
                    if body.len() > MAX_BALANCE_BODY {
                        return unknown(format!(
                            "the provider's balance answer is larger than {} KiB",
                            MAX_BALANCE_BODY / 1024
                        ));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    return unknown("the provider's balance answer was cut off".into());
                }
            }
        }
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(200).collect();
            return unknown(format!(
                "the provider's balance API answered HTTP {status}: {}",
                excerpt.trim()
            ));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => api.parse(&v),
            Err(_) => {
                unknown("the provider's balance API answered something that is not JSON".into())
            }
        }
    }
}

#[async_trait]
impl UpstreamFunds for UpstreamFundsClient {
    async fn upstream_balance(&self, base_url: String, key: &SecretString) -> FundsValue {
        match BalanceApi::for_base_url(&base_url) {
            Some(api) => self.read(api, &base_url, key).await,
            None => FundsValue::unsupported(
                ReadingKind::Balance,
                "this provider has no balance API crm can call",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_by_platform_and_mode() {
        for (platform, mode, want) in [
            ("deepseek", Some("payg"), Some(ReadingKind::Balance)),
            ("deepseek", None, Some(ReadingKind::Balance)),
            ("kimi", Some("payg"), Some(ReadingKind::Balance)),
            ("kimi", Some("coding"), Some(ReadingKind::Quota)),
            ("zhipu", Some("coding"), Some(ReadingKind::Quota)),
            ("zhipu", Some("payg"), None),
            ("minimax", None, None),
            ("openai", None, None),
        ] {
            assert_eq!(host_route(platform, mode), want, "{platform} {mode:?}");
        }
    }

    #[test]
    fn balance_urls() {
        let ds = BalanceApi::for_base_url("https://api.deepseek.com").unwrap();
        assert_eq!(
            ds.url("https://api.deepseek.com").unwrap(),
            "https://api.deepseek.com/user/balance"
        );
        assert_eq!(
            ds.url("https://api.deepseek.com/anthropic").unwrap(),
            "https://api.deepseek.com/user/balance"
        );
        let km = BalanceApi::for_base_url("https://api.moonshot.ai/v1").unwrap();
        assert_eq!(km, BalanceApi::Moonshot { usd: true });
        assert_eq!(
            km.url("https://api.moonshot.ai/v1").unwrap(),
            "https://api.moonshot.ai/v1/users/me/balance"
        );
        assert_eq!(
            BalanceApi::for_base_url("https://open.bigmodel.cn/api/paas/v4"),
            None
        );
    }

    #[test]
    fn provider_shapes() {
        let v = BalanceApi::DeepSeek.parse(&json!({
            "is_available": true,
            "balance_infos": [
                {"currency": "CNY", "total_balance": "110.00", "granted_balance": "10.00", "topped_up_balance": "100.00"},
                {"currency": "USD", "total_balance": "2.5"}
            ]
        }));
        assert_eq!(v.balances.len(), 2);
        assert_eq!(v.balances[0].amount, 110.0);
        assert_eq!(v.available, Some(true));
        let v = BalanceApi::Moonshot { usd: false }
            .parse(&json!({"code": 0, "data": {"available_balance": 49.5, "voucher_balance": 0, "cash_balance": 49.5}}));
        assert_eq!(v.balances[0].currency, "CNY");
        assert_eq!(v.balances[0].amount, 49.5);
        let v = BalanceApi::DeepSeek.parse(&json!({"balance": 3}));
        assert_eq!(v.state, crm_domain::ReadingState::Unknown);
    }
}
