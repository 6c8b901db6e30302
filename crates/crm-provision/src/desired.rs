//! What a provider should look like on a host: deterministic names, natural
//! keys, the platform choice, prices in the host's unit, and the drafts and
//! desired specs of accounts, the batch group and its channel.
//!
//! Pure functions of (pack provider, capabilities, mode, key fingerprints).
//! The desired JSON written to the journal uses the field names of the domain
//! drafts (that is what crm-reconcile reads) plus, for accounts, the key's
//! fingerprint. Upstream keys are stored only as fingerprints: nothing that
//! could give the key back (not even a sealed copy) is written, so resume,
//! rotation and repair get keys from their caller.

use crate::error::{ProvisionError, Result};
use crm_domain::host::Capabilities;
use crm_domain::observed::{AccountDraft, ChannelDraft, ChannelPricing, GroupDraft, HostAccount};
use crm_domain::ownership::{self, NAME_PREFIX};
use crm_domain::spec::{InstalledPack, ModelPrice, ProviderSpec};
use crm_domain::{
    AccessMode, BatchId, Currency, Fingerprint, GroupBilling, HostObjectId, Platform, ProviderKey,
    ProviderRef, SecretString,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One rule for upstream base URLs, crm-domain's (re-exported for the
/// modules here that compare them).
pub use crm_domain::spec::normalize_url;

/// One provider of one installed pack version: what a batch is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct PackProvider {
    pub provider: ProviderRef,
    pub spec: ProviderSpec,
    pub pack_version: String,
    pub pack_checksum: String,
    /// USD per unit of each currency the pack declares (USD is 1).
    pub usd_per: BTreeMap<Currency, f64>,
}

impl PackProvider {
    /// The provider `key` of an installed pack version.
    pub fn from_pack(pack: &InstalledPack, key: &ProviderKey) -> Result<Self> {
        let m = &pack.manifest;
        let spec = m.provider(key.as_str()).ok_or_else(|| {
            ProvisionError::Invalid(format!(
                "pack {} {} has no provider '{key}' (it has: {})",
                m.pack_id,
                m.version,
                m.providers
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let usd_per = Currency::ALL
            .iter()
            .filter_map(|c| m.usd_per(*c).map(|r| (*c, r)))
            .collect();
        Ok(PackProvider {
            provider: m.provider_ref(spec),
            spec: spec.clone(),
            pack_version: m.version.clone(),
            pack_checksum: pack.checksum.clone(),
            usd_per,
        })
    }
}

// ------------------------------------------------------------------ names and keys

/// `crm-<pack>.<provider>-<fingerprint short>`: one account per upstream key.
pub fn account_name(provider: &ProviderRef, key: &Fingerprint) -> String {
    format!(
        "{NAME_PREFIX}{}-{}",
        ownership::provider_slug(provider),
        key.short()
    )
}

/// `crm-<pack>.<provider>-<mode>`: the batch's group (and its channel).
pub fn group_name(provider: &ProviderRef, mode: AccessMode) -> String {
    format!("{NAME_PREFIX}{}-{mode}", ownership::provider_slug(provider))
}

/// Generation `n` (2, 3, ...) of a group name: `<name>-g<n>`, the name a
/// batch group takes on a host that keeps the names of deleted groups
/// (see `Provisioner::create_group_generation`).
pub fn group_generation_name(name: &str, n: u32) -> String {
    format!("{name}-g{n}")
}

/// Whether `candidate` is `name` itself or one of its later generations.
pub fn is_group_generation(candidate: &str, name: &str) -> bool {
    candidate == name
        || candidate
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix("-g"))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 2 && candidate == group_generation_name(name, n))
}

/// The channel of a batch group has the group's name.
pub fn channel_name(provider: &ProviderRef, mode: AccessMode) -> String {
    group_name(provider, mode)
}

/// `platform|base_url|fingerprint hmac`. Computed locally; the fingerprint
/// never leaves crm.
pub fn account_natural_key(platform: &Platform, base_url: &str, key: &Fingerprint) -> String {
    format!("{platform}|{}|{}", normalize_url(base_url), key.hmac)
}

/// Whether the host keeps account `notes` (newer hosts). The capability
/// probe has no field of its own for it; notes arrived with credential
/// redaction and channels (docs/sub2api-contract.md §5), so those verdicts stand in for it
/// (the same rule crm-sub2api uses to decide whether to send notes).
pub fn account_notes_supported(caps: &Capabilities) -> bool {
    caps.credential_redaction || caps.channels
}

/// The natural key of an account (docs/design.md §5 "No duplicates":
/// platform + base URL + key fingerprint), the one rule by which
/// provisioning, rollback and reconcile tell which account is which.
/// An observation carries no key, but crm's name ends in the key's short
/// fingerprint ([`account_name`]), so an account has a key when it carries
/// crm's name, whichever provider's slug the name holds: two providers
/// given the same key at the same platform and base URL share one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    platform: Platform,
    /// Normalized ([`normalize_url`]); `None` for an account without one.
    base_url: Option<String>,
    /// The short fingerprint that ends crm's name.
    key: String,
}

impl AccountKey {
    /// The key of the account crm makes of `key` for `platform` at `base_url`.
    pub fn new(platform: &Platform, base_url: &str, key: &Fingerprint) -> Self {
        AccountKey {
            platform: platform.clone(),
            base_url: Some(normalize_url(base_url)),
            key: key.short().to_owned(),
        }
    }

    /// The key an account named `name` shows, when the name is crm's.
    pub fn of_name(name: &str, platform: &Platform, base_url: Option<&str>) -> Option<Self> {
        if !ownership::has_crm_name(name) {
            return None;
        }
        let (_, key) = name.rsplit_once('-')?;
        Some(AccountKey {
            platform: platform.clone(),
            base_url: base_url.map(normalize_url),
            key: key.to_owned(),
        })
    }

    /// The key an observed account shows, when it carries crm's name.
    pub fn of(a: &HostAccount) -> Option<Self> {
        AccountKey::of_name(&a.name, &a.platform, a.base_url.as_deref())
    }

    /// Whether the observed account `a` has this key.
    pub fn matches(&self, a: &HostAccount) -> bool {
        AccountKey::of(a).as_ref() == Some(self)
    }
}

// ------------------------------------------------------------------ platform

/// The API an account speaks to its upstream, which decides the base URL it
/// is given and the gateway route users call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamApi {
    /// OpenAI Chat Completions at the pack's `openai_base_url` (a native CN
    /// account with `api_protocol=chat_completions`, or an `openai` account
    /// in `force_chat_completions` mode); users call `/v1/chat/completions`.
    ChatCompletions,
    /// Anthropic Messages at the pack's `anthropic_base_url` (an `anthropic`
    /// apikey account; the host sends `base_url + /v1/messages`); users call
    /// `/v1/messages`.
    AnthropicMessages,
}

/// The platform accounts and the group use on this host, where the accounts
/// send their requests, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformChoice {
    pub platform: Platform,
    pub native: bool,
    /// The upstream base URL the accounts get (normalized).
    pub base_url: String,
    pub api: UpstreamApi,
    pub reason: String,
}

/// Why no platform of a provider can work on a host; the plan blocks every
/// item with [`PlatformBlocked::reason`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformBlocked {
    pub reason: String,
}

impl std::fmt::Display for PlatformBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Where an import decides the platform. In order:
/// 1. the native CN platform when the host accepts it (chat completions at
///    the OpenAI-compatible base URL, CN credential fields);
/// 2. else, on a host with `/v1/chat/completions`, the pack's fallback
///    (normally `openai`) at the OpenAI-compatible base URL in
///    chat-completions mode (`extra.openai_responses_mode`, contract §3.1);
/// 3. else (older hosts: their gateway speaks only Anthropic Messages and
///    OpenAI Responses, and an `openai` account there talks Responses
///    upstream, which the CN providers do not serve; contract §4.1, §6)
///    `anthropic` at the provider's Anthropic endpoint, with the model
///    mapping in the account's credentials;
/// 4. else blocked, with what the operator can change. A provider is never
///    imported on a route its upstream cannot answer.
pub fn choose_platform(
    spec: &ProviderSpec,
    caps: &Capabilities,
) -> std::result::Result<PlatformChoice, PlatformBlocked> {
    let pref = &spec.platform;
    let openai_url = normalize_url(&spec.openai_base_url);
    let native_cn = !pref.native.is_baseline();
    if native_cn && caps.accepts_platform(&pref.native) {
        return Ok(PlatformChoice {
            platform: pref.native.clone(),
            native: true,
            base_url: openai_url,
            api: UpstreamApi::ChatCompletions,
            reason: format!("host accepts the native platform '{}'", pref.native),
        });
    }
    // The baseline platform the pack asks for: a baseline "native" value
    // (openai for an OpenAI-compatible provider) or the fallback.
    let baseline = if native_cn {
        &pref.fallback
    } else {
        &pref.native
    };
    let not_native = if native_cn {
        format!("host does not accept the native platform '{}'", pref.native)
    } else {
        format!(
            "the provider has no native platform (it declares '{}')",
            pref.native
        )
    };
    let anthropic = |why: String| match spec.anthropic_base_url.as_deref() {
        Some(url) => Ok(PlatformChoice {
            platform: Platform::new(Platform::ANTHROPIC),
            native: false,
            base_url: normalize_url(url),
            api: UpstreamApi::AnthropicMessages,
            reason: format!(
                "{why}: using 'anthropic' with base URL {} (the provider's Anthropic endpoint), the model mapping in the account's credentials; users call /v1/messages",
                normalize_url(url)
            ),
        }),
        None => Err(PlatformBlocked {
            reason: format!(
                "platform unavailable: {why}; {} declares no Anthropic endpoint (anthropic_base_url) for an 'anthropic' account instead. Upgrade the host to a sub2api with /v1/chat/completions{}, or use a pack that gives the provider's anthropic_base_url",
                spec.display_name,
                if native_cn {
                    format!(" or the native platform '{}'", pref.native)
                } else {
                    String::new()
                }
            ),
        }),
    };
    if baseline.as_str() == Platform::ANTHROPIC {
        return anthropic(if native_cn {
            format!("{not_native}; the pack's fallback is 'anthropic'")
        } else {
            "the provider's platform is 'anthropic'".to_owned()
        });
    }
    if baseline.as_str() == Platform::OPENAI && !caps.chat_completions {
        return anthropic(format!(
            "{not_native}, and the host has no /v1/chat/completions (an older sub2api: an 'openai' account there speaks the Responses API upstream, which {} does not serve)",
            spec.display_name
        ));
    }
    if !native_cn {
        return Ok(PlatformChoice {
            platform: pref.native.clone(),
            // A baseline "native" value gets the chat-completions
            // treatment, not CN fields.
            native: false,
            base_url: openai_url,
            api: UpstreamApi::ChatCompletions,
            reason: format!("host accepts the native platform '{}'", pref.native),
        });
    }
    Ok(PlatformChoice {
        platform: pref.fallback.clone(),
        native: false,
        base_url: openai_url.clone(),
        api: UpstreamApi::ChatCompletions,
        reason: format!(
            "{not_native}: using '{}' with base URL {openai_url} in chat-completions mode",
            pref.fallback
        ),
    })
}

// ------------------------------------------------------------------ prices

/// A pack price amount in the host's unit (USD per token).
pub fn usd_per_token(
    amount: f64,
    price: &ModelPrice,
    usd_per: &BTreeMap<Currency, f64>,
) -> Option<f64> {
    usd_per
        .get(&price.currency)
        .map(|rate| amount * rate / price.unit.tokens())
}

/// One pricing row per model, in pack order.
pub fn channel_pricing(pp: &PackProvider, platform: &Platform) -> Result<Vec<ChannelPricing>> {
    pp.spec
        .models
        .iter()
        .map(|m| {
            let conv = |amount: f64| {
                usd_per_token(amount, &m.price, &pp.usd_per).ok_or_else(|| {
                    ProvisionError::Invalid(format!(
                        "model {} is priced in {} but pack {} {} declares no exchange rate to USD",
                        m.name, m.price.currency, pp.provider.pack, pp.pack_version
                    ))
                })
            };
            Ok(ChannelPricing {
                platform: platform.to_string(),
                models: vec![m.name.clone()],
                billing_mode: "token".into(),
                input_price: Some(conv(m.price.input)?),
                output_price: Some(conv(m.price.output)?),
                cache_write_price: m.price.cache_write.map(conv).transpose()?,
                cache_read_price: m.price.cache_read.map(conv).transpose()?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ desired resources

/// What one upstream account should be (everything but the key).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSpec {
    pub key: Fingerprint,
    pub name: String,
    pub natural_key: String,
    pub platform: Platform,
    pub base_url: String,
    pub model_mapping: BTreeMap<String, String>,
    pub credential_fields: BTreeMap<String, Value>,
    pub extra: BTreeMap<String, Value>,
    pub notes_supported: bool,
}

pub const ACCOUNT_TYPE: &str = "apikey";
pub const ACCOUNT_CONCURRENCY: u32 = 3;
pub const ACCOUNT_PRIORITY: i32 = 1;

impl AccountSpec {
    pub fn new(
        pp: &PackProvider,
        choice: &PlatformChoice,
        caps: &Capabilities,
        key: &Fingerprint,
    ) -> Self {
        let mut credential_fields = BTreeMap::new();
        let mut extra = BTreeMap::new();
        if choice.native {
            credential_fields.insert("account_mode".into(), json!(pp.spec.account_mode.as_str()));
            credential_fields.insert("api_protocol".into(), json!("chat_completions"));
        } else if choice.platform.as_str() == Platform::OPENAI {
            extra.insert(
                "openai_responses_mode".into(),
                json!("force_chat_completions"),
            );
        }
        AccountSpec {
            key: key.clone(),
            name: account_name(&pp.provider, key),
            natural_key: account_natural_key(&choice.platform, &choice.base_url, key),
            platform: choice.platform.clone(),
            base_url: choice.base_url.clone(),
            model_mapping: pp.spec.model_mapping.clone(),
            credential_fields,
            extra,
            notes_supported: account_notes_supported(caps),
        }
    }

    pub fn notes(&self, batch: &BatchId, display: &str) -> Option<String> {
        self.notes_supported.then(|| {
            ownership::marked_text(
                batch,
                &format!("{display} upstream key …{}", self.key.last4),
            )
        })
    }

    /// The desired spec recorded in the journal (no secret in clear).
    pub fn desired(&self, batch: &BatchId, display: &str, group_ids: &[HostObjectId]) -> Value {
        let mut v = json!({
            "name": self.name,
            "platform": self.platform,
            "account_type": ACCOUNT_TYPE,
            "base_url": self.base_url,
            "model_mapping": self.model_mapping,
            "credential_fields": self.credential_fields,
            "extra": self.extra,
            "group_ids": group_ids,
            "concurrency": ACCOUNT_CONCURRENCY,
            "priority": ACCOUNT_PRIORITY,
            "upstream_key": self.key,
        });
        if let Some(n) = self.notes(batch, display) {
            v["notes"] = json!(n);
        }
        v
    }

    pub fn draft(
        &self,
        batch: &BatchId,
        display: &str,
        api_key: SecretString,
        group_ids: Vec<HostObjectId>,
    ) -> AccountDraft {
        AccountDraft {
            name: self.name.clone(),
            notes: self.notes(batch, display),
            platform: self.platform.clone(),
            account_type: ACCOUNT_TYPE.into(),
            base_url: self.base_url.clone(),
            api_key,
            model_mapping: self.model_mapping.clone(),
            credential_fields: self.credential_fields.clone(),
            extra: self.extra.clone(),
            group_ids,
            concurrency: ACCOUNT_CONCURRENCY,
            priority: ACCOUNT_PRIORITY,
        }
    }
}

/// The batch group: billing by mode, the pack's multiplier and limits.
pub fn group_draft(
    pp: &PackProvider,
    choice: &PlatformChoice,
    mode: AccessMode,
    batch: &BatchId,
) -> GroupDraft {
    let a = &pp.spec.access;
    GroupDraft {
        name: group_name(&pp.provider, mode),
        description: Some(ownership::marked_text(
            batch,
            &format!("{} ({mode})", pp.spec.display_name),
        )),
        platform: choice.platform.clone(),
        billing: match mode {
            AccessMode::SelfService => GroupBilling::Standard,
            AccessMode::Subscription => GroupBilling::Subscription,
        },
        rate_multiplier: a.group_rate_multiplier,
        daily_limit_usd: a.daily_limit_usd,
        weekly_limit_usd: a.weekly_limit_usd,
        monthly_limit_usd: a.monthly_limit_usd,
        is_exclusive: false,
    }
}

/// The channel of the batch group: pack prices, mapping, restricted models.
pub fn channel_draft(
    pp: &PackProvider,
    choice: &PlatformChoice,
    mode: AccessMode,
    batch: &BatchId,
    group: Option<HostObjectId>,
) -> Result<ChannelDraft> {
    Ok(ChannelDraft {
        name: channel_name(&pp.provider, mode),
        description: Some(ownership::marked_text(
            batch,
            &format!("{} ({mode}) prices and models", pp.spec.display_name),
        )),
        group_ids: group.into_iter().collect(),
        model_pricing: channel_pricing(pp, &choice.platform)?,
        model_mapping: BTreeMap::from([(
            choice.platform.to_string(),
            pp.spec.model_mapping.clone(),
        )]),
        billing_model_source: "channel_mapped".into(),
        restrict_models: true,
    })
}

/// A serialized draft as a desired spec.
pub fn to_desired<T: serde::Serialize>(draft: &T) -> Value {
    serde_json::to_value(draft).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::PriceUnit;

    fn price(currency: Currency, unit: PriceUnit) -> ModelPrice {
        ModelPrice {
            currency,
            unit,
            input: 2.0,
            output: 8.0,
            cache_read: None,
            cache_write: None,
            source: "s".into(),
            as_of: "2026-11-01".into(),
        }
    }

    #[test]
    fn prices_convert_to_usd_per_token() {
        let fx = BTreeMap::from([(Currency::Usd, 1.0), (Currency::Cny, 0.14)]);
        let p = price(Currency::Cny, PriceUnit::PerMillionTokens);
        let got = usd_per_token(2.0, &p, &fx).unwrap();
        assert!((got - 2.8e-7).abs() < 1e-18, "{got}");
        let p = price(Currency::Usd, PriceUnit::PerThousandTokens);
        assert!((usd_per_token(8.0, &p, &fx).unwrap() - 8e-3).abs() < 1e-15);
        let p = price(Currency::Usd, PriceUnit::PerToken);
        assert_eq!(usd_per_token(3.0, &p, &fx), Some(3.0));
        let only_usd = BTreeMap::from([(Currency::Usd, 1.0)]);
        assert_eq!(
            usd_per_token(1.0, &price(Currency::Cny, PriceUnit::PerToken), &only_usd),
            None
        );
    }

    use crate::fixtures::{caps, deepseek, fp};

    /// A host with chat completions but no native CN platform.
    fn chat_only_caps() -> Capabilities {
        Capabilities {
            native_platforms: vec![],
            ..caps(true)
        }
    }

    #[test]
    fn native_platform_when_the_host_accepts_it() {
        let pp = deepseek("1.0.0", 2.0);
        let c = choose_platform(&pp.spec, &caps(true)).unwrap();
        assert_eq!(c.platform.as_str(), "deepseek");
        assert!(c.native);
        assert_eq!(c.base_url, "https://api.deepseek.com");
        assert_eq!(c.api, UpstreamApi::ChatCompletions);
        let a = AccountSpec::new(&pp, &c, &caps(true), &fp(1));
        assert_eq!(
            a.credential_fields["api_protocol"],
            json!("chat_completions")
        );
        assert!(a.extra.is_empty());
    }

    #[test]
    fn openai_in_chat_completions_mode_on_a_host_with_chat_completions() {
        let pp = deepseek("1.0.0", 2.0);
        let c = choose_platform(&pp.spec, &chat_only_caps()).unwrap();
        assert_eq!(c.platform, Platform::openai());
        assert!(!c.native);
        assert_eq!(c.base_url, "https://api.deepseek.com");
        assert_eq!(c.api, UpstreamApi::ChatCompletions);
        assert!(c.reason.contains("chat-completions mode"), "{}", c.reason);
        let a = AccountSpec::new(&pp, &c, &chat_only_caps(), &fp(1));
        assert_eq!(
            a.extra["openai_responses_mode"],
            json!("force_chat_completions")
        );
        assert!(
            a.natural_key
                .starts_with("openai|https://api.deepseek.com|")
        );
    }

    #[test]
    fn anthropic_at_the_providers_anthropic_endpoint_on_a_host_without_chat_completions() {
        let pp = deepseek("1.0.0", 2.0);
        let legacy = caps(false);
        assert!(!legacy.chat_completions);
        let c = choose_platform(&pp.spec, &legacy).unwrap();
        assert_eq!(c.platform.as_str(), Platform::ANTHROPIC);
        assert!(!c.native);
        assert_eq!(c.base_url, "https://api.deepseek.com/anthropic");
        assert_eq!(c.api, UpstreamApi::AnthropicMessages);
        for says in [
            "no /v1/chat/completions",
            "Responses API",
            "https://api.deepseek.com/anthropic",
            "/v1/messages",
        ] {
            assert!(c.reason.contains(says), "{says}: {}", c.reason);
        }
        let a = AccountSpec::new(&pp, &c, &legacy, &fp(1));
        assert_eq!(a.platform.as_str(), "anthropic");
        assert_eq!(a.base_url, "https://api.deepseek.com/anthropic");
        // The model mapping travels in the account's credentials; no OpenAI
        // or CN fields on an anthropic account.
        assert_eq!(a.model_mapping, pp.spec.model_mapping);
        assert!(a.credential_fields.is_empty() && a.extra.is_empty());
        assert_eq!(
            a.natural_key,
            account_natural_key(&c.platform, "https://api.deepseek.com/anthropic/", &fp(1))
        );
    }

    #[test]
    fn a_provider_without_an_anthropic_endpoint_is_blocked_without_chat_completions() {
        let mut pp = deepseek("1.0.0", 2.0);
        pp.spec.anthropic_base_url = None;
        let why = choose_platform(&pp.spec, &caps(false)).unwrap_err();
        for says in [
            "platform unavailable",
            "no /v1/chat/completions",
            "anthropic_base_url",
            "native platform 'deepseek'",
        ] {
            assert!(why.reason.contains(says), "{says}: {why}");
        }
        // The same provider is fine where the host has chat completions.
        assert_eq!(
            choose_platform(&pp.spec, &chat_only_caps())
                .unwrap()
                .platform,
            Platform::openai()
        );
    }

    #[test]
    fn an_openai_compatible_provider_follows_the_same_rule() {
        // doubao-like: its "native" platform is the baseline openai.
        let mut pp = deepseek("1.0.0", 2.0);
        pp.spec.platform.native = Platform::openai();
        let c = choose_platform(&pp.spec, &caps(true)).unwrap();
        assert_eq!((c.platform.clone(), c.native), (Platform::openai(), false));
        assert_eq!(c.api, UpstreamApi::ChatCompletions);
        let c = choose_platform(&pp.spec, &caps(false)).unwrap();
        assert_eq!(c.api, UpstreamApi::AnthropicMessages);
        pp.spec.anthropic_base_url = None;
        let why = choose_platform(&pp.spec, &caps(false)).unwrap_err();
        assert!(why.reason.contains("no /v1/chat/completions"), "{why}");
        assert!(!why.reason.contains("native platform 'openai'"), "{why}");
    }

    #[test]
    fn names_are_deterministic_prefixed_and_pack_scoped() {
        let fp = Fingerprint {
            hmac: "0123456789abcdef".into(),
            last4: "wxyz".into(),
        };
        let a = ProviderRef::new("cn-official", "deepseek");
        let b = ProviderRef::new("my-pack", "deepseek");
        assert_eq!(account_name(&a, &fp), "crm-cn-official.deepseek-01234567");
        assert_ne!(account_name(&a, &fp), account_name(&b, &fp));
        assert_eq!(
            group_name(&a, AccessMode::Subscription),
            "crm-cn-official.deepseek-subscription"
        );
        assert!(!account_name(&a, &fp).contains("wxyz"));
        assert_eq!(
            account_natural_key(&Platform::openai(), "https://api.deepseek.com/", &fp),
            "openai|https://api.deepseek.com|0123456789abcdef"
        );
    }
}
