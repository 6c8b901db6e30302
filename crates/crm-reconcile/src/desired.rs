//! Reading the `desired` JSON that `crm-provision` records on every managed
//! resource.
//!
//! Provisioning owns that shape; reconcile only reads it. Every field is
//! optional here on purpose: reconcile compares the fields a desired spec
//! states and ignores the ones it does not, so an older batch whose desired
//! spec lacks a field is never reported as drifted on it. The field names are
//! those of the domain drafts (`GroupDraft`, `ChannelDraft`, and the
//! account draft minus its secret).

use crm_domain::observed::ChannelPricing;
use crm_domain::{GroupBilling, HostObjectId, Platform};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One rule for upstream base URLs, crm-domain's (re-exported for the
/// modules here that compare them).
pub use crm_domain::spec::normalize_url;

/// What a recorded account should look like.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredAccount {
    pub name: Option<String>,
    pub notes: Option<String>,
    pub platform: Option<Platform>,
    #[serde(alias = "type")]
    pub account_type: Option<String>,
    pub base_url: Option<String>,
    pub model_mapping: Option<BTreeMap<String, String>>,
    /// Non-secret credential fields; only the keys listed are compared.
    pub credential_fields: Option<BTreeMap<String, serde_json::Value>>,
    /// Only the keys listed are compared (the host writes probe results here).
    pub extra: Option<BTreeMap<String, serde_json::Value>>,
    pub group_ids: Option<Vec<HostObjectId>>,
    pub concurrency: Option<u32>,
    pub priority: Option<i32>,
}

/// What a recorded group should look like.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredGroup {
    pub name: Option<String>,
    pub description: Option<String>,
    pub platform: Option<Platform>,
    #[serde(alias = "subscription_type")]
    pub billing: Option<GroupBilling>,
    pub rate_multiplier: Option<f64>,
    pub daily_limit_usd: Option<f64>,
    pub weekly_limit_usd: Option<f64>,
    pub monthly_limit_usd: Option<f64>,
    pub is_exclusive: Option<bool>,
}

/// What a recorded channel should look like.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredChannel {
    pub name: Option<String>,
    pub description: Option<String>,
    pub group_ids: Option<Vec<HostObjectId>>,
    pub model_pricing: Option<Vec<ChannelPricing>>,
    pub model_mapping: Option<BTreeMap<String, BTreeMap<String, String>>>,
    pub billing_model_source: Option<String>,
    pub restrict_models: Option<bool>,
}

/// What a recorded user should look like (balance is consumed by use and is
/// never compared).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredUser {
    pub email: Option<String>,
    pub username: Option<String>,
    pub notes: Option<String>,
    pub allowed_groups: Option<Vec<HostObjectId>>,
}

/// What a recorded gateway key should look like.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredApiKey {
    pub name: Option<String>,
    pub user_id: Option<HostObjectId>,
    pub group_id: Option<HostObjectId>,
}

/// What a recorded subscription should look like.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredSubscription {
    pub user_id: Option<HostObjectId>,
    pub group_id: Option<HostObjectId>,
    pub validity_days: Option<u32>,
    pub notes: Option<String>,
}

/// What a recorded channel monitor should look like
/// (`crm_provision::monitor::MonitorSpec::desired`; the key is recorded as
/// its fingerprint only, and never compared: the host shows no form of it
/// crm could match).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DesiredMonitor {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub api_mode: Option<String>,
    pub endpoint: Option<String>,
    pub primary_model: Option<String>,
    pub group_name: Option<String>,
    pub enabled: Option<bool>,
    pub interval_seconds: Option<u32>,
}

/// Reads a desired spec, tolerating wrappers: provisioning may store the
/// draft itself or an object with the draft under `spec` or `draft`.
pub fn read<T: for<'de> Deserialize<'de> + Default>(value: &serde_json::Value) -> T {
    let inner = value
        .get("spec")
        .or_else(|| value.get("draft"))
        .filter(|v| v.is_object())
        .unwrap_or(value);
    serde_json::from_value(inner.clone()).unwrap_or_default()
}

/// Whether a desired spec states `field` (even as `null`).
pub fn states(value: &serde_json::Value, field: &str) -> bool {
    let inner = value
        .get("spec")
        .or_else(|| value.get("draft"))
        .filter(|v| v.is_object())
        .unwrap_or(value);
    inner.get(field).is_some()
}

/// Prices are per token (about 1e-7), so equality needs a relative tolerance.
pub fn same_f64(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a - b).abs() < 1e-15
}

/// sub2api stores "no limit" as `null` or `-1`; both mean unlimited.
pub fn normalize_limit(v: Option<f64>) -> Option<f64> {
    v.filter(|x| *x >= 0.0)
}

pub fn same_limit(a: Option<f64>, b: Option<f64>) -> bool {
    match (normalize_limit(a), normalize_limit(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => same_f64(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_plain_and_wrapped_specs_and_ignores_unknown_fields() {
        let plain: DesiredGroup = read(&json!({"name": "crm-g", "billing": "standard", "x": 1}));
        assert_eq!(plain.name.as_deref(), Some("crm-g"));
        assert_eq!(plain.billing, Some(GroupBilling::Standard));
        let wrapped: DesiredGroup =
            read(&json!({"spec": {"name": "crm-g", "subscription_type": "subscription"}}));
        assert_eq!(wrapped.billing, Some(GroupBilling::Subscription));
        let junk: DesiredGroup = read(&json!("not an object"));
        assert_eq!(junk, DesiredGroup::default());
    }

    #[test]
    fn limits_treat_null_and_negative_as_unlimited() {
        assert!(same_limit(None, Some(-1.0)));
        assert!(same_limit(Some(5.0), Some(5.0)));
        assert!(!same_limit(Some(5.0), None));
        assert!(same_f64(2e-7, 2.0000000000001e-7));
        assert!(!same_f64(2e-7, 3e-7));
    }
}
