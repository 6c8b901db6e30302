//! sub2api's JSON objects (docs/sub2api-contract.md §3), decoded tolerantly: unknown fields
//! are ignored, missing fields and `null`s take defaults, so the December-2025
//! shape and the newer shape both decode into the same structs.
//!
//! Secrets that a host sends back (legacy hosts return raw account
//! credentials; user-side key listings carry the key) are held as
//! [`SecretString`] and never appear in `Debug`.

use crate::scrub::SECRET_FIELDS;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Deserializes `null` as the type's default.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An empty string as `None`.
fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// A secret string field, `null`/absent/empty as `None`.
fn secret_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|s| !s.is_empty())
        .map(SecretString::from))
}

/// An account's `credentials` object, split into its secret and its
/// non-secret fields the moment it is decoded.
#[derive(Clone, Default)]
pub struct Credentials {
    /// `base_url`, `model_mapping`, `account_mode`, `api_protocol`, ...
    pub fields: BTreeMap<String, Value>,
    /// Raw secrets a legacy host returned (`api_key`, ...). Newer hosts strip them.
    pub secrets: BTreeMap<String, SecretString>,
}

impl Credentials {
    /// The upstream base URL.
    pub fn base_url(&self) -> Option<&str> {
        self.fields.get("base_url").and_then(Value::as_str)
    }

    /// `model_mapping` as strings (non-string values are skipped).
    pub fn model_mapping(&self) -> BTreeMap<String, String> {
        self.fields
            .get("model_mapping")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("fields", &self.fields)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
        let mut out = Credentials::default();
        for (k, v) in map {
            if SECRET_FIELDS.contains(&k.as_str()) {
                match v {
                    Value::String(s) if !s.is_empty() => {
                        out.secrets.insert(k, SecretString::from(s));
                    }
                    Value::String(_) | Value::Null => {}
                    other => {
                        out.secrets.insert(k, SecretString::from(other.to_string()));
                    }
                }
            } else {
                out.fields.insert(k, v);
            }
        }
        Ok(out)
    }
}

/// An upstream account (`GET /admin/accounts[/:id]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Newer hosts only.
    #[serde(deserialize_with = "non_empty")]
    pub notes: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub platform: String,
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub account_type: String,
    pub credentials: Credentials,
    /// Newer hosts: `{has_api_key: true, ...}` in place of redacted secrets.
    pub credentials_status: Option<Map<String, Value>>,
    #[serde(deserialize_with = "null_default")]
    pub extra: BTreeMap<String, Value>,
    pub proxy_id: Option<i64>,
    pub concurrency: Option<i64>,
    pub priority: Option<i64>,
    pub rate_multiplier: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    #[serde(deserialize_with = "non_empty")]
    pub error_message: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub schedulable: bool,
    pub temp_unschedulable_until: Option<Value>,
    #[serde(deserialize_with = "non_empty")]
    pub temp_unschedulable_reason: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub group_ids: Vec<i64>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl Account {
    /// Whether the account holds an API key, from `credentials_status` on newer
    /// hosts or from the raw credentials on legacy ones.
    pub fn has_api_key(&self) -> bool {
        if let Some(v) = self
            .credentials_status
            .as_ref()
            .and_then(|s| s.get("has_api_key"))
            .and_then(Value::as_bool)
        {
            return v;
        }
        self.credentials.secrets.contains_key("api_key")
    }
}

/// A group (`GET /admin/groups`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Group {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "non_empty")]
    pub description: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub platform: String,
    pub rate_multiplier: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub is_exclusive: bool,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// `standard` or `subscription`.
    #[serde(deserialize_with = "null_default")]
    pub subscription_type: String,
    pub daily_limit_usd: Option<f64>,
    pub weekly_limit_usd: Option<f64>,
    pub monthly_limit_usd: Option<f64>,
    pub account_count: Option<i64>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// One pricing row of a channel.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct PricingRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub platform: String,
    #[serde(deserialize_with = "null_default")]
    pub models: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub billing_mode: String,
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    pub cache_write_price: Option<f64>,
    pub cache_read_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_output_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_request_price: Option<f64>,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub intervals: Vec<Value>,
}

/// A channel (`GET /admin/channels`, newer hosts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Channel {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "non_empty")]
    pub description: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    #[serde(deserialize_with = "null_default")]
    pub group_ids: Vec<i64>,
    #[serde(deserialize_with = "null_default")]
    pub model_pricing: Vec<PricingRow>,
    #[serde(deserialize_with = "null_default")]
    pub model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_default")]
    pub billing_model_source: String,
    #[serde(deserialize_with = "null_default")]
    pub restrict_models: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// A user (`GET /admin/users`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub email: String,
    #[serde(deserialize_with = "non_empty")]
    pub username: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    pub notes: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub role: String,
    #[serde(deserialize_with = "null_default")]
    pub balance: f64,
    pub concurrency: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    #[serde(deserialize_with = "null_default")]
    pub allowed_groups: Vec<i64>,
    pub created_at: Option<String>,
}

/// A gateway key. User-side listings carry the full key; it is held as a secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiKey {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub user_id: i64,
    #[serde(deserialize_with = "secret_opt")]
    pub key: Option<SecretString>,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub group_id: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    pub quota: Option<f64>,
    pub quota_used: Option<f64>,
    pub expires_at: Option<String>,
    pub created_at: Option<String>,
}

impl ApiKey {
    /// The last four characters of the key, when the host sent it.
    pub fn key_last4(&self) -> String {
        use secrecy::ExposeSecret;
        self.key
            .as_ref()
            .map(|k| {
                let chars: Vec<char> = k.expose_secret().chars().collect();
                chars[chars.len().saturating_sub(4)..].iter().collect()
            })
            .unwrap_or_default()
    }
}

/// Answer of the admin rebind `PUT /admin/api-keys/:id` (newer hosts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RebindResult {
    pub api_key: ApiKey,
    #[serde(deserialize_with = "null_default")]
    pub auto_granted_group_access: bool,
    pub granted_group_id: Option<i64>,
    pub granted_group_name: Option<String>,
}

/// A subscription of a user to a subscription-type group.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subscription {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub user_id: i64,
    #[serde(deserialize_with = "null_default")]
    pub group_id: i64,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    pub starts_at: Option<String>,
    pub expires_at: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    pub notes: Option<String>,
    pub assigned_by: Option<i64>,
    pub assigned_at: Option<String>,
}

/// `GET /admin/system/version`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SystemVersion {
    #[serde(deserialize_with = "null_default")]
    pub version: String,
}

/// `GET /api/v1/settings/public` (only the fields crm reads; the rest is kept raw).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PublicSettings {
    #[serde(deserialize_with = "non_empty")]
    pub version: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    pub site_name: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `GET /health` (no envelope).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Health {
    #[serde(deserialize_with = "null_default")]
    pub status: String,
}

/// `POST /api/v1/auth/login` data (the user object is not kept).
#[derive(Deserialize)]
pub(crate) struct LoginData {
    #[serde(deserialize_with = "secret_opt", default)]
    pub access_token: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_raw_credentials_are_split_off_as_secrets() {
        let a: Account = serde_json::from_str(
            r#"{"id":1,"name":"a","notes":null,"credentials":{"api_key":"sk-RAW-CANARY-1","base_url":"https://api.deepseek.com","model_mapping":{"x":"y"}},"group_ids":null}"#,
        )
        .unwrap();
        assert!(a.has_api_key());
        assert_eq!(a.credentials.base_url(), Some("https://api.deepseek.com"));
        assert_eq!(a.credentials.model_mapping()["x"], "y");
        assert!(!format!("{a:?}").contains("CANARY"));
    }

    #[test]
    fn nulls_and_unknown_fields_are_tolerated() {
        let u: User = serde_json::from_str(
            r#"{"id":1,"email":null,"balance":null,"allowed_groups":null,"status":"active","brand_new_field":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(u.balance, 0.0);
        assert!(u.allowed_groups.is_empty());
        let a: Account =
            serde_json::from_str(r#"{"id":2,"schedulable":null,"extra":null,"credentials":null}"#)
                .unwrap();
        assert!(!a.schedulable && a.extra.is_empty() && !a.has_api_key());
    }

    #[test]
    fn redacted_credentials_use_the_status() {
        let a: Account = serde_json::from_str(
            r#"{"id":1,"credentials":{"base_url":"b"},"credentials_status":{"has_api_key":true}}"#,
        )
        .unwrap();
        assert!(a.has_api_key());
        assert!(a.credentials.secrets.is_empty());
    }
}
