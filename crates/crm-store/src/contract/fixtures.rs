//! The values the stories store: fixed instants, small valid records.

use chrono::{DateTime, TimeDelta, Utc};
use crm_domain::batch::{ImportBatch, JournalResolution, NewJournalEntry};
use crm_domain::host::{AdminAuth, Capabilities, CredentialRef, HostRecord};
use crm_domain::ops::{ConsoleSession, SessionRole};
use crm_domain::plan::{Plan, PlanItem};
use crm_domain::ports::Storage;
use crm_domain::spec::{
    AccessDefaults, InstalledPack, ModelPrice, ModelSpec, PackManifest, PlatformPreference,
    ProviderSpec,
};
use crm_domain::*;
use serde_json::json;
use std::time::Duration;

/// A fixed instant plus `secs` seconds, so orderings are deterministic.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T08:00:00.123456789Z")
        .expect("a valid fixed instant")
        .with_timezone(&Utc)
        + TimeDelta::seconds(secs)
}

/// A small valid pack manifest.
pub fn manifest(pack: &str, version: &str) -> PackManifest {
    PackManifest {
        schema_version: 1,
        pack_id: PackId::new(pack),
        version: version.into(),
        name: format!("{pack} pack"),
        description: String::new(),
        fx_rates: vec![],
        providers: vec![ProviderSpec {
            id: ProviderKey::new("deepseek"),
            display_name: "DeepSeek".into(),
            openai_base_url: "https://api.deepseek.com/v1".into(),
            anthropic_base_url: None,
            platform: PlatformPreference {
                native: Platform::new("deepseek"),
                fallback: Platform::openai(),
            },
            account_mode: AccountMode::Payg,
            models: vec![ModelSpec {
                name: "deepseek-chat".into(),
                upstream_name: "deepseek-chat".into(),
                price: ModelPrice {
                    currency: Currency::Cny,
                    unit: PriceUnit::PerMillionTokens,
                    input: 2.0,
                    output: 8.0,
                    cache_read: None,
                    cache_write: None,
                    source: "https://api-docs.deepseek.com/quick_start/pricing".into(),
                    as_of: "2026-11-01".into(),
                },
            }],
            model_mapping: [("deepseek-chat".to_owned(), "deepseek-chat".to_owned())].into(),
            smoke_test_model: "deepseek-chat".into(),
            access: AccessDefaults {
                modes: vec![AccessMode::SelfService],
                group_rate_multiplier: 1.0,
                daily_limit_usd: None,
                weekly_limit_usd: None,
                monthly_limit_usd: None,
                subscription_validity_days: 30,
                self_service_starting_balance: 5.0,
            },
            quota_limited: false,
            error_signals: Default::default(),
            funds: Default::default(),
        }],
    }
}

pub fn installed(pack: &str, version: &str, checksum: &str, secs: i64) -> InstalledPack {
    InstalledPack {
        manifest: manifest(pack, version),
        checksum: checksum.into(),
        installed_at: at(secs),
        origin: "bundled".into(),
        current: false,
    }
}

pub fn host(id: &str, name: &str) -> HostRecord {
    HostRecord {
        id: HostId::new(id),
        name: name.into(),
        base_url: format!("https://{name}.example.com"),
        admin_credential: CredentialRef::Env {
            var: "CRM_ADMIN_KEY".into(),
        },
        capabilities: None,
        reconcile_every_secs: None,
        funds_thresholds: Default::default(),
        created_at: at(0),
    }
}

pub fn capabilities(version: &str) -> Capabilities {
    Capabilities {
        probed_at: at(5),
        version: Some(version.into()),
        admin_auth: AdminAuth::Ok,
        channels: true,
        chat_completions: true,
        native_platforms: vec![Platform::new("deepseek")],
        subscriptions: true,
        payment_plans: false,
        admin_key_rebind: true,
        idempotency_key: false,
        credential_redaction: true,
        max_page_size: 100,
        cn_funds: false,
        channel_monitors: false,
        evidence: vec![],
    }
}

pub fn batch(id: &str, host: &str, provider: &str, status: BatchStatus, secs: i64) -> ImportBatch {
    ImportBatch {
        id: BatchId::new(id),
        host_id: HostId::new(host),
        provider: ProviderRef::parse(provider).expect("fixture provider is pack/provider"),
        mode: AccessMode::SelfService,
        pack_version: "1.0.0".into(),
        pack_checksum: "sum-1".into(),
        status,
        status_reason: None,
        access_status: AccessStatus::NotConfigured,
        plan: Plan {
            items: vec![PlanItem {
                kind: ResourceKind::Account,
                action: PlanAction::Create,
                name: format!("crm-{id}-account"),
                natural_key: "deepseek|https://api.deepseek.com|fp".into(),
                host_object_id: None,
                changes: vec![],
                reason: None,
            }],
            notes: vec!["host has channels".into()],
        },
        upstream_keys: vec![Fingerprint {
            hmac: "ab".repeat(32),
            last4: "wxyz".into(),
        }],
        created_at: at(secs),
        updated_at: at(secs),
    }
}

pub fn intent(batch: &str, key: &str, op: JournalOp, kind: ResourceKind) -> NewJournalEntry {
    NewJournalEntry {
        batch_id: BatchId::new(batch),
        intent_key: format!("{batch}/{key}"),
        op,
        kind,
        natural_key: format!("nk-{key}"),
        name: format!("crm-{key}"),
        host_object_id: None,
        spec_digest: format!("digest-{key}"),
        desired: json!({ "name": format!("crm-{key}"), "priority": 1 }),
    }
}

pub(super) fn resolved(state: JournalState, id: Option<i64>) -> JournalResolution {
    JournalResolution {
        state,
        host_object_id: id.map(HostObjectId),
        detail: None,
    }
}

/// The store's "now" (its clock is not reachable through the ports), as
/// the acquisition time of a throwaway lease records it.
pub(super) async fn store_now<S: Storage + ?Sized>(s: &S) -> DateTime<Utc> {
    let l = s
        .acquire_lease(
            "contract:clock",
            "contract",
            "clock",
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    s.release_lease(&l.id).await.unwrap();
    l.acquired_at
}

pub(super) fn session(
    digest: &str,
    role: SessionRole,
    created: DateTime<Utc>,
    ttl_secs: i64,
) -> ConsoleSession {
    ConsoleSession {
        id_digest: digest.to_owned(),
        role,
        created_at: created,
        expires_at: created + TimeDelta::seconds(ttl_secs),
    }
}
