//! What a pack declares: providers, their models and prices, and access
//! defaults. These are validated values; `crm-pack` parses files into them.

use crate::{
    AccessMode, AccountMode, Currency, PackId, Platform, PriceUnit, ProviderKey, ProviderRef,
};
use std::collections::BTreeMap;

/// One version of a pack, as declared.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PackManifest {
    pub schema_version: u32,
    pub pack_id: PackId,
    /// Semantic version of the pack content.
    pub version: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Exchange rates used to convert non-USD prices to the host's USD unit.
    #[serde(default)]
    pub fx_rates: Vec<FxRate>,
    pub providers: Vec<ProviderSpec>,
}

impl PackManifest {
    pub fn provider(&self, key: &str) -> Option<&ProviderSpec> {
        self.providers.iter().find(|p| p.id.as_str() == key)
    }

    pub fn provider_ref(&self, spec: &ProviderSpec) -> ProviderRef {
        ProviderRef {
            pack: self.pack_id.clone(),
            provider: spec.id.clone(),
        }
    }

    /// USD per one unit of `currency`, if the pack declares it (USD is 1).
    pub fn usd_per(&self, currency: Currency) -> Option<f64> {
        match currency {
            Currency::Usd => Some(1.0),
            other => self
                .fx_rates
                .iter()
                .find(|r| r.currency == other)
                .map(|r| r.usd_per_unit),
        }
    }
}

/// A declared exchange rate, dated and sourced like a price.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FxRate {
    pub currency: Currency,
    pub usd_per_unit: f64,
    pub source: String,
    pub as_of: String,
}

/// A provider entry of a pack.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderSpec {
    pub id: ProviderKey,
    pub display_name: String,
    /// OpenAI-compatible base URL (what `/chat/completions` hangs off).
    pub openai_base_url: String,
    /// Anthropic-compatible base URL, where the provider offers one.
    #[serde(default)]
    pub anthropic_base_url: Option<String>,
    pub platform: PlatformPreference,
    pub account_mode: AccountMode,
    pub models: Vec<ModelSpec>,
    /// Client-visible model name -> upstream model name. Its keys are what
    /// sub2api lists on `/v1/models`.
    pub model_mapping: BTreeMap<String, String>,
    pub smoke_test_model: String,
    pub access: AccessDefaults,
    /// Upstream keys of this provider have tight quotas; scheduled access
    /// re-checks skip the completion smoke for it.
    #[serde(default)]
    pub quota_limited: bool,
    /// Provider-specific upstream error signals used by failure classification.
    #[serde(default)]
    pub error_signals: ErrorSignals,
    /// Funds and quota thresholds (`low_balance`, `low_quota_percent`) and
    /// whether imports create a host-side channel monitor (`monitor`).
    /// Not serialized when unset, so packs without it keep their checksum.
    #[serde(default, skip_serializing_if = "crate::funds::FundsPolicy::is_unset")]
    pub funds: crate::funds::FundsPolicy,
}

impl ProviderSpec {
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// Which sub2api platform to use: the native CN value when the host accepts
/// it, else the fallback (normally `openai` with a base URL).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlatformPreference {
    pub native: Platform,
    pub fallback: Platform,
}

/// A model a provider serves.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    /// The name clients ask for.
    pub name: String,
    /// The name the upstream expects.
    pub upstream_name: String,
    pub price: ModelPrice,
}

/// A dated, sourced price. Amounts are in `currency` per `unit`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelPrice {
    pub currency: Currency,
    pub unit: PriceUnit,
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
    pub source: String,
    /// `YYYY-MM-DD` of the page the price was read from.
    pub as_of: String,
}

/// Access defaults of a provider.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccessDefaults {
    /// Modes this provider may be sold in.
    pub modes: Vec<AccessMode>,
    pub group_rate_multiplier: f64,
    #[serde(default)]
    pub daily_limit_usd: Option<f64>,
    #[serde(default)]
    pub weekly_limit_usd: Option<f64>,
    #[serde(default)]
    pub monthly_limit_usd: Option<f64>,
    pub subscription_validity_days: u32,
    /// USD balance given to a self-service user.
    pub self_service_starting_balance: f64,
}

/// How a provider says "bad key" and "out of money" (cn-providers.md).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorSignals {
    #[serde(default)]
    pub invalid_key: Vec<ErrorSignal>,
    #[serde(default)]
    pub quota: Vec<ErrorSignal>,
}

/// One signal: an HTTP status, a text the body contains, or both (both must match).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorSignal {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
}

impl ErrorSignal {
    pub fn matches(&self, status: u16, body: &str) -> bool {
        if self.status.is_none() && self.body_contains.is_none() {
            return false;
        }
        self.status.is_none_or(|s| s == status)
            && self
                .body_contains
                .as_deref()
                .is_none_or(|t| body.contains(t))
    }
}

/// A pack version as installed: the manifest plus its identity.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstalledPack {
    pub manifest: PackManifest,
    /// sha256 of the canonical form (see `crm-pack`).
    pub checksum: String,
    pub installed_at: chrono::DateTime<chrono::Utc>,
    /// Where it was installed from (a path, `bundled`, or `upload`).
    pub origin: String,
    /// The version new imports use.
    pub current: bool,
}

/// An upstream base URL in the one form crm compares and records:
/// `https://x/` and `https://x` are the same upstream (the account natural
/// key of docs/design.md §5 is built from this form).
pub fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_or_padding_is_the_same_upstream() {
        assert_eq!(normalize_url(" https://api.x/v1/ "), "https://api.x/v1");
        assert_eq!(normalize_url("https://api.x/v1"), "https://api.x/v1");
        assert_ne!(
            normalize_url("https://api.x/v1"),
            normalize_url("https://api.x/v2")
        );
    }

    #[test]
    fn error_signal_needs_all_of_its_parts() {
        let s = ErrorSignal {
            status: Some(429),
            body_contains: Some("1113".into()),
        };
        assert!(s.matches(429, r#"{"error":{"code":"1113"}}"#));
        assert!(!s.matches(429, "slow down"));
        assert!(!s.matches(500, "1113"));
        let empty = ErrorSignal {
            status: None,
            body_contains: None,
        };
        assert!(!empty.matches(200, ""));
    }
}
