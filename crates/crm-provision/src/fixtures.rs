//! Test fixtures: a DeepSeek pack, the two host profiles' capabilities, and
//! host objects materialized from drafts (unit tests only).

#![allow(dead_code)]

use crate::desired::*;
use crate::fakes::t0;
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::observed::*;
use crm_domain::spec::*;
use crm_domain::*;
use std::collections::BTreeMap;

pub fn manifest(pack: &str, version: &str, input_cny: f64) -> PackManifest {
    PackManifest {
        schema_version: 1,
        pack_id: PackId::new(pack),
        version: version.into(),
        name: "CN official".into(),
        description: String::new(),
        fx_rates: vec![FxRate {
            currency: Currency::Cny,
            usd_per_unit: 0.14,
            source: "test".into(),
            as_of: "2026-11-01".into(),
        }],
        providers: vec![ProviderSpec {
            id: ProviderKey::new("deepseek"),
            display_name: "DeepSeek".into(),
            openai_base_url: "https://api.deepseek.com".into(),
            anthropic_base_url: Some("https://api.deepseek.com/anthropic".into()),
            platform: PlatformPreference {
                native: Platform::new("deepseek"),
                fallback: Platform::openai(),
            },
            account_mode: AccountMode::Payg,
            models: vec![
                ModelSpec {
                    name: "deepseek-chat".into(),
                    upstream_name: "deepseek-chat".into(),
                    price: ModelPrice {
                        currency: Currency::Cny,
                        unit: PriceUnit::PerMillionTokens,
                        input: input_cny,
                        output: 8.0,
                        cache_read: Some(0.5),
                        cache_write: None,
                        source: "https://api-docs.deepseek.com/quick_start/pricing".into(),
                        as_of: "2026-11-01".into(),
                    },
                },
                ModelSpec {
                    name: "deepseek-reasoner".into(),
                    upstream_name: "deepseek-reasoner".into(),
                    price: ModelPrice {
                        currency: Currency::Usd,
                        unit: PriceUnit::PerMillionTokens,
                        input: 0.55,
                        output: 2.19,
                        cache_read: None,
                        cache_write: None,
                        source: "https://api-docs.deepseek.com/quick_start/pricing".into(),
                        as_of: "2026-11-01".into(),
                    },
                },
            ],
            model_mapping: BTreeMap::from([
                ("deepseek-chat".into(), "deepseek-chat".into()),
                ("deepseek-reasoner".into(), "deepseek-reasoner".into()),
            ]),
            smoke_test_model: "deepseek-chat".into(),
            access: AccessDefaults {
                modes: vec![AccessMode::SelfService, AccessMode::Subscription],
                group_rate_multiplier: 1.2,
                daily_limit_usd: Some(10.0),
                weekly_limit_usd: None,
                monthly_limit_usd: Some(100.0),
                subscription_validity_days: 30,
                self_service_starting_balance: 1.0,
            },
            quota_limited: false,
            error_signals: ErrorSignals::default(),
            funds: Default::default(),
        }],
    }
}

pub fn installed(pack: &str, version: &str, input_cny: f64) -> InstalledPack {
    InstalledPack {
        manifest: manifest(pack, version, input_cny),
        checksum: format!("sha256-{pack}-{version}"),
        installed_at: t0(),
        origin: "test".into(),
        current: true,
    }
}

pub fn deepseek(version: &str, input_cny: f64) -> PackProvider {
    PackProvider::from_pack(
        &installed("cn-official", version, input_cny),
        &ProviderKey::new("deepseek"),
    )
    .unwrap()
}

pub fn caps(current: bool) -> Capabilities {
    Capabilities {
        probed_at: t0(),
        version: Some(if current { "0.2.7" } else { "0.1.40" }.into()),
        admin_auth: AdminAuth::Ok,
        channels: current,
        chat_completions: current,
        native_platforms: if current {
            vec![Platform::new("deepseek"), Platform::new("kimi")]
        } else {
            vec![]
        },
        subscriptions: true,
        payment_plans: current,
        admin_key_rebind: current,
        idempotency_key: current,
        credential_redaction: current,
        max_page_size: if current { 1000 } else { 100 },
        cn_funds: current,
        channel_monitors: current,
        evidence: vec![],
    }
}

pub fn fingerprinter() -> KeyFingerprinter {
    KeyFingerprinter::new(b"test-pepper".to_vec())
}

pub fn key(n: u32) -> SecretString {
    SecretString::from(format!("sk-test-upstream-{n:04}"))
}

pub fn fp(n: u32) -> Fingerprint {
    fingerprinter().fingerprint(&key(n))
}

pub fn account_from(d: &AccountDraft, id: i64) -> HostAccount {
    HostAccount {
        id: HostObjectId(id),
        name: d.name.clone(),
        notes: d.notes.clone(),
        platform: d.platform.clone(),
        account_type: d.account_type.clone(),
        base_url: Some(d.base_url.clone()),
        model_mapping: d.model_mapping.clone(),
        credential_fields: d.credential_fields.clone(),
        has_api_key: true,
        extra: d.extra.clone(),
        status: "active".into(),
        error_message: None,
        schedulable: true,
        temp_unschedulable_reason: None,
        group_ids: d.group_ids.clone(),
        created_at: None,
    }
}

pub fn group_from(d: &GroupDraft, id: i64) -> HostGroup {
    HostGroup {
        id: HostObjectId(id),
        name: d.name.clone(),
        description: d.description.clone(),
        platform: d.platform.clone(),
        billing: d.billing,
        rate_multiplier: d.rate_multiplier,
        daily_limit_usd: d.daily_limit_usd,
        weekly_limit_usd: d.weekly_limit_usd,
        monthly_limit_usd: d.monthly_limit_usd,
        is_exclusive: d.is_exclusive,
        status: "active".into(),
    }
}

pub fn channel_from(d: &ChannelDraft, id: i64) -> HostChannel {
    HostChannel {
        id: HostObjectId(id),
        name: d.name.clone(),
        description: d.description.clone(),
        status: "active".into(),
        group_ids: d.group_ids.clone(),
        model_pricing: d.model_pricing.clone(),
        model_mapping: d.model_mapping.clone(),
        billing_model_source: d.billing_model_source.clone(),
        restrict_models: d.restrict_models,
    }
}

/// A host on which `batch` is fully applied for `keys` (ids: group 100,
/// channel 200, accounts 1..).
pub fn applied_snapshot(
    pp: &PackProvider,
    caps: &Capabilities,
    mode: AccessMode,
    keys: &[u32],
    batch: &BatchId,
) -> HostSnapshot {
    let choice = choose_platform(&pp.spec, caps).unwrap();
    let g = group_from(&group_draft(pp, &choice, mode, batch), 100);
    let accounts = keys
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let spec = AccountSpec::new(pp, &choice, caps, &fp(*n));
            account_from(
                &spec.draft(batch, &pp.spec.display_name, key(*n), vec![g.id]),
                i as i64 + 1,
            )
        })
        .collect();
    let channels = caps.channels.then(|| {
        vec![channel_from(
            &channel_draft(pp, &choice, mode, batch, Some(g.id)).unwrap(),
            200,
        )]
    });
    HostSnapshot {
        accounts,
        groups: vec![g],
        channels,
        ..HostSnapshot::default()
    }
}
