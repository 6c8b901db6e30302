//! The pack file as written: schema version 1 of the TOML format.
//!
//! These types are the file-side shape, with vocabulary words still as text
//! so a misspelt word can be reported at its position instead of losing the
//! whole entry. The validator turns them into `crm_domain::spec` types.
//! They also derive the JSON Schema editors use (`packs/pack.schema.json`),
//! and serde, so a second, independent reader can cross-check the span-keeping reader.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The only schema version this crate reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A pack: a versioned set of providers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "crm provider pack (schema_version 1)")]
pub struct PackFile {
    /// Format version of this file; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// Identity of the pack, e.g. `cn-official`. Lower-case letters, digits and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub pack_id: String,
    /// Semantic version of the pack content, e.g. `2026.11.1`.
    pub version: String,
    /// Human name of the pack.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Exchange rates for every non-USD currency a price uses.
    #[serde(default)]
    pub fx_rates: Vec<FxRateFile>,
    /// The providers this pack declares (at least one).
    pub providers: Vec<ProviderFile>,
}

/// A balance threshold: an amount (≥ 0) in a currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LowBalanceFile {
    pub amount: f64,
    /// `CNY` or `USD`, as the provider reports its balance.
    #[schemars(schema_with = "currency_schema")]
    pub currency: String,
}

/// A dated, sourced exchange rate to USD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FxRateFile {
    /// A non-USD currency word, e.g. `CNY`.
    #[schemars(schema_with = "currency_schema")]
    pub currency: String,
    /// How many USD one unit of `currency` is worth.
    pub usd_per_unit: f64,
    /// Where the rate comes from (or that it is an assumption to review).
    pub source: String,
    /// `YYYY-MM-DD`.
    #[schemars(schema_with = "date_schema")]
    pub as_of: String,
}

/// One provider. Its identity is `pack_id/id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    /// Provider id within the pack, e.g. `deepseek`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub id: String,
    pub display_name: String,
    /// OpenAI-compatible base URL (`{base}/chat/completions`).
    #[schemars(url)]
    pub openai_base_url: String,
    /// Anthropic-compatible base URL (`{base}/v1/messages`), where offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub anthropic_base_url: Option<String>,
    pub platform: PlatformFile,
    /// sub2api `account_mode` of the upstream keys.
    #[schemars(schema_with = "account_mode_schema")]
    pub account_mode: String,
    /// A cheap, fast model the access check calls; must be a model name and
    /// a `model_mapping` key.
    pub smoke_test_model: String,
    /// Upstream keys have tight quotas (coding plans): scheduled re-checks
    /// skip the completion call.
    #[serde(default)]
    pub quota_limited: bool,
    /// Client-visible name -> upstream name. Omitted: every model maps its
    /// `name` to its `upstream_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_mapping: Option<BTreeMap<String, String>>,
    pub access: AccessFile,
    #[serde(default)]
    pub error_signals: ErrorSignalsFile,
    /// Below this balance an upstream key is `low_funds` (reconcile,
    /// `crm provider funds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_balance: Option<LowBalanceFile>,
    /// Below this share (0..100) of a Coding-Plan quota window left an
    /// upstream key is `low_quota`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub low_quota_percent: Option<f64>,
    /// Imports create a host-side channel monitor by default (newer hosts).
    #[serde(default)]
    pub monitor: bool,
    /// The models this provider serves (at least one).
    pub models: Vec<ModelFile>,
}

/// Which sub2api platform to create accounts on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformFile {
    /// Native platform value when the host accepts it (`deepseek`, `kimi`, ...).
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"))]
    pub native: String,
    /// A platform every sub2api accepts: `openai`, `anthropic` or `gemini`.
    #[schemars(schema_with = "baseline_platform_schema")]
    pub fallback: String,
}

/// How ordinary users get access, and the limits they get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    /// Access modes this provider may be sold in (at least one).
    #[schemars(schema_with = "access_modes_schema")]
    pub modes: Vec<String>,
    /// sub2api group rate multiplier; must be > 0.
    pub group_rate_multiplier: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_limit_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_limit_usd: Option<f64>,
    /// Days a subscription lasts; at least 1.
    #[schemars(range(min = 1))]
    pub subscription_validity_days: u32,
    /// USD balance a self-service user starts with; ≥ 0.
    pub self_service_starting_balance: f64,
}

/// How the provider says "bad key" and "out of money".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorSignalsFile {
    #[serde(default)]
    pub invalid_key: Vec<ErrorSignalFile>,
    #[serde(default)]
    pub quota: Vec<ErrorSignalFile>,
}

/// An HTTP status, a body text, or both (both must match).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorSignalFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

/// A model the provider serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The name clients ask for.
    pub name: String,
    /// The name the upstream expects; omitted means the same as `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_name: Option<String>,
    pub price: PriceFile,
}

/// A dated, sourced price in `currency` per `unit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceFile {
    #[schemars(schema_with = "currency_schema")]
    pub currency: String,
    #[schemars(schema_with = "price_unit_schema")]
    pub unit: String,
    #[schemars(range(min = 0.0))]
    pub input: f64,
    #[schemars(range(min = 0.0))]
    pub output: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub cache_read: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub cache_write: Option<f64>,
    /// The page the price was read from.
    pub source: String,
    /// `YYYY-MM-DD` of that page.
    #[schemars(schema_with = "date_schema")]
    pub as_of: String,
}

fn words_schema(words: Vec<&'static str>) -> Schema {
    json_schema!({ "type": "string", "enum": words })
}

fn currency_schema(_: &mut SchemaGenerator) -> Schema {
    words_schema(
        crm_domain::Currency::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    )
}

fn price_unit_schema(_: &mut SchemaGenerator) -> Schema {
    words_schema(
        crm_domain::PriceUnit::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    )
}

fn account_mode_schema(_: &mut SchemaGenerator) -> Schema {
    words_schema(
        crm_domain::AccountMode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    )
}

fn access_modes_schema(_: &mut SchemaGenerator) -> Schema {
    let words: Vec<&str> = crm_domain::AccessMode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    json_schema!({
        "type": "array",
        "minItems": 1,
        "uniqueItems": true,
        "items": { "type": "string", "enum": words }
    })
}

fn baseline_platform_schema(_: &mut SchemaGenerator) -> Schema {
    use crm_domain::Platform;
    words_schema(vec![
        Platform::OPENAI,
        Platform::ANTHROPIC,
        Platform::GEMINI,
    ])
}

fn date_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        "description": "A calendar date, YYYY-MM-DD."
    })
}

/// The JSON Schema of schema version 1, for editors (taplo, Even Better TOML).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(PackFile);
    schema.to_value()
}
