//! Test fixtures: a host with two imported providers, as recorded and as
//! observed when nothing drifted. Unit tests mutate the observation.

use crate::diff::{Recorded, RecordedBatch};
use chrono::{DateTime, TimeZone, Utc};
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::observed::*;
use crm_domain::ownership::marked_text;
use crm_domain::plan::Plan;
use crm_domain::reconcile::ReconcileScope;
use crm_domain::*;
use serde_json::json;
use std::collections::BTreeMap;

/// The test installation's key fingerprinter.
pub fn fingerprinter() -> std::sync::Arc<KeyFingerprinter> {
    std::sync::Arc::new(KeyFingerprinter::new(b"fixture-pepper".to_vec()))
}

/// The upstream key of the account with host id `acct`.
pub fn upstream_key(acct: i64) -> SecretString {
    SecretString::from(format!("sk-fixture-{acct}-abcd"))
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

pub fn caps() -> Capabilities {
    Capabilities {
        probed_at: t0(),
        version: Some("0.2.7".into()),
        admin_auth: AdminAuth::Ok,
        channels: true,
        chat_completions: true,
        native_platforms: vec![Platform::new("deepseek"), Platform::new("kimi")],
        subscriptions: true,
        payment_plans: false,
        admin_key_rebind: true,
        idempotency_key: true,
        credential_redaction: true,
        max_page_size: 1000,
        cn_funds: true,
        channel_monitors: true,
        evidence: vec![],
    }
}

pub fn batch(id: &str, provider: &str) -> ImportBatch {
    ImportBatch {
        id: BatchId::new(id),
        host_id: HostId::new("h1"),
        provider: ProviderRef::parse(provider).unwrap(),
        mode: AccessMode::SelfService,
        pack_version: "1.0.0".into(),
        pack_checksum: "c".into(),
        status: BatchStatus::Applied,
        status_reason: None,
        access_status: AccessStatus::SelfServiceReady,
        plan: Plan::default(),
        upstream_keys: vec![],
        created_at: t0(),
        updated_at: t0(),
    }
}

pub fn resource(
    batch: &str,
    kind: ResourceKind,
    id: i64,
    name: &str,
    desired: serde_json::Value,
) -> ManagedResource {
    ManagedResource {
        batch_id: BatchId::new(batch),
        kind,
        host_object_id: HostObjectId(id),
        name: name.into(),
        natural_key: format!("{kind}:{name}"),
        origin: JournalOp::Create,
        spec_digest: "d".into(),
        desired,
        state: ResourceState::Live,
        journal_seq: 1,
        updated_at: t0(),
    }
}

/// One provider: an account (#acct), a group (#group), a channel (#chan).
pub struct Provider {
    pub batch: &'static str,
    pub provider: &'static str,
    pub platform: &'static str,
    pub base_url: &'static str,
    pub model: &'static str,
    pub acct: i64,
    pub group: i64,
    pub chan: i64,
}

pub const DEEPSEEK: Provider = Provider {
    batch: "b-ds",
    provider: "cn-official/deepseek",
    platform: "deepseek",
    base_url: "https://api.deepseek.com",
    model: "deepseek-chat",
    acct: 1,
    group: 10,
    chan: 20,
};

pub const KIMI: Provider = Provider {
    batch: "b-kimi",
    provider: "cn-official/kimi",
    platform: "kimi",
    base_url: "https://api.moonshot.cn/v1",
    model: "kimi-k2",
    acct: 2,
    group: 11,
    chan: 21,
};

impl Provider {
    pub fn slug(&self) -> String {
        self.provider.replace('/', ".")
    }
    pub fn acct_name(&self) -> String {
        format!("crm-{}-k{}", self.slug(), self.acct)
    }
    pub fn group_name(&self) -> String {
        format!("crm-{}", self.slug())
    }
    pub fn notes(&self, what: &str) -> String {
        marked_text(&BatchId::new(self.batch), what)
    }
    pub fn mapping(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(self.model.to_owned(), self.model.to_owned())])
    }
    pub fn pricing(&self) -> Vec<ChannelPricing> {
        vec![ChannelPricing {
            platform: self.platform.into(),
            models: vec![self.model.into()],
            billing_mode: "token".into(),
            input_price: Some(2.7e-7),
            output_price: Some(1.1e-6),
            cache_write_price: None,
            cache_read_price: Some(7e-8),
        }]
    }
    pub fn group_draft(&self) -> GroupDraftJson {
        GroupDraftJson(json!({
            "name": self.group_name(),
            "description": self.notes("provider group"),
            "platform": self.platform,
            "billing": "standard",
            "rate_multiplier": 1.0,
            "daily_limit_usd": null,
            "weekly_limit_usd": null,
            "monthly_limit_usd": null,
            "is_exclusive": false,
        }))
    }
    pub fn channel_desired(&self) -> serde_json::Value {
        json!({
            "name": self.group_name(),
            "description": self.notes("provider channel"),
            "group_ids": [self.group],
            "model_pricing": self.pricing(),
            "model_mapping": {self.platform: self.mapping()},
            "billing_model_source": "channel_mapped",
            "restrict_models": true,
        })
    }
    pub fn account_desired(&self) -> serde_json::Value {
        json!({
            "name": self.acct_name(),
            "notes": self.notes("upstream account"),
            "platform": self.platform,
            "account_type": "apikey",
            "base_url": self.base_url,
            "model_mapping": self.mapping(),
            "credential_fields": {"account_mode": "payg"},
            "group_ids": [],
            "upstream_key": fingerprinter().fingerprint(&upstream_key(self.acct)),
        })
    }

    pub fn recorded(&self) -> RecordedBatch {
        RecordedBatch {
            provider_spec: None,
            batch: batch(self.batch, self.provider),
            resources: vec![
                resource(
                    self.batch,
                    ResourceKind::Account,
                    self.acct,
                    &self.acct_name(),
                    self.account_desired(),
                ),
                resource(
                    self.batch,
                    ResourceKind::Group,
                    self.group,
                    &self.group_name(),
                    self.group_draft().0,
                ),
                resource(
                    self.batch,
                    ResourceKind::Channel,
                    self.chan,
                    &self.group_name(),
                    self.channel_desired(),
                ),
            ],
        }
    }

    pub fn account(&self) -> HostAccount {
        HostAccount {
            id: HostObjectId(self.acct),
            name: self.acct_name(),
            notes: Some(self.notes("upstream account")),
            platform: Platform::new(self.platform),
            account_type: "apikey".into(),
            base_url: Some(self.base_url.into()),
            model_mapping: self.mapping(),
            credential_fields: BTreeMap::from([("account_mode".to_owned(), json!("payg"))]),
            has_api_key: true,
            extra: BTreeMap::from([("openai_responses_supported".to_owned(), json!(false))]),
            status: "active".into(),
            error_message: None,
            schedulable: true,
            temp_unschedulable_reason: None,
            group_ids: vec![HostObjectId(self.group)],
            created_at: Some(format!("2026-11-22T09:00:0{}Z", self.acct % 10)),
        }
    }

    pub fn group(&self) -> HostGroup {
        HostGroup {
            id: HostObjectId(self.group),
            name: self.group_name(),
            description: Some(self.notes("provider group")),
            platform: Platform::new(self.platform),
            billing: GroupBilling::Standard,
            rate_multiplier: 1.0,
            daily_limit_usd: Some(-1.0),
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            is_exclusive: false,
            status: "active".into(),
        }
    }

    pub fn channel(&self) -> HostChannel {
        HostChannel {
            id: HostObjectId(self.chan),
            name: self.group_name(),
            description: Some(self.notes("provider channel")),
            status: "active".into(),
            group_ids: vec![HostObjectId(self.group)],
            model_pricing: self.pricing(),
            model_mapping: BTreeMap::from([(self.platform.to_owned(), self.mapping())]),
            billing_model_source: "channel_mapped".into(),
            restrict_models: true,
        }
    }
}

/// An unrecorded account holding DeepSeek's recorded key (#1) at its
/// platform and base URL, named for another pack: the same natural key.
pub fn same_key_other_pack() -> HostAccount {
    HostAccount {
        id: HostObjectId(33),
        name: "crm-other-pack.deepseek-k1".into(),
        notes: None,
        group_ids: vec![],
        ..DEEPSEEK.account()
    }
}

/// A desired group spec as provisioning writes it (a serialized draft).
pub struct GroupDraftJson(pub serde_json::Value);

/// Both providers recorded, host scope.
pub fn recorded() -> Recorded {
    Recorded {
        scope: ReconcileScope {
            host_id: HostId::new("h1"),
            batch_id: None,
            provider: None,
        },
        batches: vec![DEEPSEEK.recorded(), KIMI.recorded()],
        access: vec![],
    }
}

/// The host exactly as recorded, plus one object the operator owns.
pub fn in_sync() -> HostSnapshot {
    let mut operator = DEEPSEEK.account();
    operator.id = HostObjectId(99);
    operator.name = "operator-own".into();
    operator.notes = Some("my account".into());
    operator.group_ids = vec![];
    HostSnapshot {
        accounts: vec![DEEPSEEK.account(), KIMI.account(), operator],
        groups: vec![DEEPSEEK.group(), KIMI.group()],
        channels: Some(vec![DEEPSEEK.channel(), KIMI.channel()]),
        users: vec![],
        subscriptions: vec![],
        api_keys: vec![],
        monitors: None,
        requests: 4,
    }
}

/// A monitor of DeepSeek's batch (#40): its recorded resource (the desired
/// spec crm-provision records) and the host's monitor as recorded.
pub fn deepseek_monitor() -> (ManagedResource, crm_domain::observed::HostMonitor) {
    let name = DEEPSEEK.group_name();
    let group_name = crm_domain::ownership::marked_text(&BatchId::new(DEEPSEEK.batch), "DeepSeek");
    let desired = serde_json::json!({
        "name": name,
        "provider": "openai",
        "api_mode": "chat_completions",
        "endpoint": "https://api.deepseek.com",
        "primary_model": "deepseek-chat",
        "group_name": group_name,
        "enabled": true,
        "interval_seconds": 300,
        "upstream_key": fingerprinter().fingerprint(&upstream_key(DEEPSEEK.acct)),
    });
    let observed = crm_domain::observed::HostMonitor {
        id: HostObjectId(40),
        name: name.clone(),
        provider: "openai".into(),
        api_mode: "chat_completions".into(),
        endpoint: "https://api.deepseek.com".into(),
        primary_model: "deepseek-chat".into(),
        extra_models: vec![],
        group_name,
        enabled: true,
        interval_seconds: 300,
        has_api_key: true,
        last_checked_at: None,
        primary_status: None,
        availability_7d: None,
    };
    (
        resource(DEEPSEEK.batch, ResourceKind::Monitor, 40, &name, desired),
        observed,
    )
}
