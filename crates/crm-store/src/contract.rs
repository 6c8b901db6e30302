//! The storage contract: one "story" of calls against the ports of
//! [`crm_domain::ports::Storage`], with the answers every adapter must give.
//!
//! It is written only against the ports, so a second adapter (PostgreSQL,
//! say) proves itself by running [`run_story`] on a fresh, empty store. It
//! panics with a message naming the broken promise; call it from a test.
//! Behaviour that needs a controllable clock or two connections (lease
//! expiry, races) is adapter-specific and tested beside the adapter.

use chrono::{DateTime, TimeDelta, Utc};
use crm_domain::access::{AccessCheck, CheckStep};
use crm_domain::batch::{BatchFilter, ImportBatch, JournalResolution, NewJournalEntry};
use crm_domain::host::{
    AdminAuth, Capabilities, CredentialRef, HostRecord, SealContext, SealedSecret,
};
use crm_domain::ops::{
    ConsoleSession, IdempotencyBegin, Lease, NewAuditEvent, Operation, SessionRole, StoredResponse,
};
use crm_domain::plan::{FieldChange, Plan, PlanItem};
use crm_domain::ports::{SecretSealer, Storage, StoreError};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::secret::ExposeSecret;
use crm_domain::spec::{
    AccessDefaults, InstalledPack, ModelPrice, ModelSpec, PackManifest, PlatformPreference,
    ProviderSpec,
};
use crm_domain::*;
use serde_json::json;
use std::time::Duration;

/// Runs the whole story on an empty store.
pub async fn run_story<S: Storage + ?Sized>(store: &S) {
    packs(store).await;
    hosts(store).await;
    batches(store).await;
    journal(store).await;
    access_checks(store).await;
    reconcile_runs(store).await;
    operations(store).await;
    idempotency(store).await;
    leases(store).await;
    sessions(store).await;
    audit(store).await;
}

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

fn resolved(state: JournalState, id: Option<i64>) -> JournalResolution {
    JournalResolution {
        state,
        host_object_id: id.map(HostObjectId),
        detail: None,
    }
}

async fn packs<S: Storage + ?Sized>(s: &S) {
    let id = PackId::new("cn-official");
    let v1 = s
        .install_pack(installed("cn-official", "1.0.0", "sum-1", 0))
        .await
        .expect("install v1");
    assert!(v1.current, "a freshly installed version is current");
    let again = s
        .install_pack(installed("cn-official", "1.0.0", "sum-1", 99))
        .await
        .expect("reinstalling the same version and checksum is a no-op");
    assert_eq!(again, v1, "the no-op returns the stored record unchanged");
    let clash = s
        .install_pack(installed("cn-official", "1.0.0", "sum-other", 1))
        .await;
    assert!(
        matches!(clash, Err(StoreError::AlreadyExists { .. })),
        "same version, different checksum must be AlreadyExists, got {clash:?}"
    );
    s.install_pack(installed("cn-official", "1.1.0", "sum-2", 10))
        .await
        .expect("install v2");
    s.install_pack(installed("other-pack", "1.0.0", "sum-x", 11))
        .await
        .expect("another pack");
    let current = s.get_pack(&id, None).await.expect("current version");
    assert_eq!(current.manifest.version, "1.1.0");
    assert!(current.current);
    let old = s
        .get_pack(&id, Some("1.0.0".into()))
        .await
        .expect("named version");
    assert!(!old.current, "installing v2 made v1 not current");
    assert_eq!(old.manifest, manifest("cn-official", "1.0.0"));
    assert_eq!(old.installed_at, at(0));
    let other = s.get_pack(&PackId::new("other-pack"), None).await.unwrap();
    assert!(other.current, "packs do not share a current version");
    assert!(matches!(
        s.get_pack(&id, Some("9.9.9".into())).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_pack(&PackId::new("nope"), None).await,
        Err(StoreError::NotFound { .. })
    ));
    let all = s.list_packs().await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|p| p.current).count(), 2);
}

async fn hosts<S: Storage + ?Sized>(s: &S) {
    let h = s.add_host(host("h1", "relay-one")).await.expect("add host");
    assert_eq!(h, host("h1", "relay-one"));
    s.add_host(host("h2", "relay-two")).await.unwrap();
    for dup in [host("h1", "other-name"), host("h9", "relay-one")] {
        assert!(
            matches!(s.add_host(dup).await, Err(StoreError::AlreadyExists { .. })),
            "host ids and names are unique"
        );
    }
    assert_eq!(s.get_host("h1").await.unwrap().name, "relay-one");
    assert_eq!(s.get_host("relay-two").await.unwrap().id, HostId::new("h2"));
    assert!(matches!(
        s.get_host("relay-nine").await,
        Err(StoreError::NotFound { .. })
    ));
    s.save_capabilities(&HostId::new("h1"), capabilities("0.1.104"))
        .await
        .unwrap();
    s.set_reconcile_interval(&HostId::new("h1"), Some(900))
        .await
        .unwrap();
    let h1 = s.get_host("h1").await.unwrap();
    assert_eq!(h1.capabilities, Some(capabilities("0.1.104")));
    assert_eq!(h1.reconcile_every_secs, Some(900));
    s.set_reconcile_interval(&HostId::new("h1"), None)
        .await
        .unwrap();
    assert_eq!(s.get_host("h1").await.unwrap().reconcile_every_secs, None);
    assert!(matches!(
        s.save_capabilities(&HostId::new("zz"), capabilities("x"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    s.add_host(host("h3", "relay-three")).await.unwrap();
    s.remove_host(&HostId::new("h3"))
        .await
        .expect("remove host");
    assert!(matches!(
        s.remove_host(&HostId::new("h3")).await,
        Err(StoreError::NotFound { .. })
    ));
    let names: Vec<_> = s
        .list_hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["relay-one", "relay-two"]);
}

async fn batches<S: Storage + ?Sized>(s: &S) {
    let b1 = batch(
        "b-1",
        "h1",
        "cn-official/deepseek",
        BatchStatus::Planned,
        100,
    );
    assert_eq!(s.create_batch(b1.clone()).await.unwrap(), b1);
    assert!(matches!(
        s.create_batch(b1.clone()).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(
        s.create_batch(batch("b-x", "no-host", "a/b", BatchStatus::Planned, 1))
            .await
            .is_err(),
        "a batch needs a registered host"
    );
    s.create_batch(batch(
        "b-2",
        "h1",
        "cn-official/kimi",
        BatchStatus::Applied,
        200,
    ))
    .await
    .unwrap();
    s.create_batch(batch(
        "b-3",
        "h2",
        "cn-official/deepseek",
        BatchStatus::Applied,
        300,
    ))
    .await
    .unwrap();
    s.create_batch(batch(
        "b-4",
        "h2",
        "my-pack/deepseek",
        BatchStatus::Failed,
        400,
    ))
    .await
    .unwrap();
    assert_eq!(s.get_batch(&BatchId::new("b-1")).await.unwrap(), b1);
    assert!(matches!(
        s.get_batch(&BatchId::new("b-404")).await,
        Err(StoreError::NotFound { .. })
    ));

    let ids = |v: Vec<ImportBatch>| v.into_iter().map(|b| b.id.0).collect::<Vec<_>>();
    let all = s.list_batches(BatchFilter::default()).await.unwrap();
    assert_eq!(ids(all), ["b-4", "b-3", "b-2", "b-1"], "newest first");
    let on_h1 = BatchFilter {
        host_id: Some(HostId::new("h1")),
        ..Default::default()
    };
    assert_eq!(ids(s.list_batches(on_h1).await.unwrap()), ["b-2", "b-1"]);
    let deepseek = BatchFilter {
        provider: Some(ProviderRef::new("cn-official", "deepseek")),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_batches(deepseek).await.unwrap()),
        ["b-3", "b-1"],
        "provider identity is pack-scoped"
    );
    let applied = BatchFilter {
        status: Some(BatchStatus::Applied),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(s.list_batches(applied).await.unwrap()), ["b-3"]);

    let id = BatchId::new("b-1");
    s.set_batch_status(&id, BatchStatus::Applying, Some("started".into()))
        .await
        .unwrap();
    s.set_access_status(&id, AccessStatus::SelfServiceReady)
        .await
        .unwrap();
    let got = s.get_batch(&id).await.unwrap();
    assert_eq!(got.status, BatchStatus::Applying);
    assert_eq!(got.status_reason.as_deref(), Some("started"));
    assert_eq!(got.access_status, AccessStatus::SelfServiceReady);
    let mut upgraded = got.clone();
    upgraded.pack_version = "1.1.0".into();
    upgraded.plan.notes.push("upgraded".into());
    s.update_batch(&upgraded).await.unwrap();
    assert_eq!(s.get_batch(&id).await.unwrap(), upgraded);
    assert!(matches!(
        s.set_batch_status(&BatchId::new("b-404"), BatchStatus::Failed, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        s.remove_host(&HostId::new("h1")).await.is_err(),
        "a host with batches keeps its history"
    );
    assert!(s.get_host("h1").await.is_ok());
}

async fn journal<S: Storage + ?Sized>(s: &S) {
    let b1 = BatchId::new("b-1");
    let e1 = s
        .record_intent(intent(
            "b-1",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!((e1.seq, e1.state), (1, JournalState::Pending));
    let replay = s
        .record_intent(intent(
            "b-1",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!(
        replay, e1,
        "an existing intent_key returns the entry unchanged"
    );
    let e2 = s
        .record_intent(intent(
            "b-1",
            "group",
            JournalOp::Create,
            ResourceKind::Group,
        ))
        .await
        .unwrap();
    let mut adopt = intent("b-1", "chan", JournalOp::Adopt, ResourceKind::Channel);
    adopt.host_object_id = Some(HostObjectId(77));
    let e3 = s.record_intent(adopt).await.unwrap();
    assert_eq!((e2.seq, e3.seq), (2, 3), "seq is gapless per batch");
    let other = s
        .record_intent(intent(
            "b-2",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!(other.seq, 1, "each batch numbers its own journal");
    assert!(matches!(
        s.record_intent(intent(
            "b-404",
            "x",
            JournalOp::Create,
            ResourceKind::Account
        ))
        .await,
        Err(StoreError::NotFound { .. })
    ));

    let pending = s.pending_intents(Some(b1.clone())).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(s.pending_intents(None).await.unwrap().len(), 4);

    // Resolve out of order: the resources still come back in journal order.
    let r2 = s
        .resolve_intent(&b1, 2, resolved(JournalState::Applied, Some(20)))
        .await
        .unwrap();
    assert_eq!(r2.state, JournalState::Applied);
    assert_eq!(r2.host_object_id, Some(HostObjectId(20)));
    assert!(r2.resolved_at.is_some());
    s.resolve_intent(&b1, 1, resolved(JournalState::Applied, Some(10)))
        .await
        .unwrap();
    let r3 = s
        .resolve_intent(&b1, 3, resolved(JournalState::Applied, None))
        .await
        .unwrap();
    assert_eq!(
        r3.host_object_id,
        Some(HostObjectId(77)),
        "an adopt keeps the target id it was recorded with"
    );
    assert!(matches!(
        s.resolve_intent(&b1, 99, resolved(JournalState::Failed, None))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let mut failing = s
        .record_intent(intent("b-1", "user", JournalOp::Create, ResourceKind::User))
        .await
        .unwrap();
    assert_eq!(failing.seq, 4);
    failing = s
        .resolve_intent(
            &b1,
            4,
            JournalResolution {
                state: JournalState::Failed,
                host_object_id: None,
                detail: Some("host refused: 400".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(failing.detail.as_deref(), Some("host refused: 400"));
    assert!(
        s.pending_intents(Some(b1.clone()))
            .await
            .unwrap()
            .is_empty()
    );

    let journal = s.journal(&b1).await.unwrap();
    assert_eq!(journal.len(), 4);
    assert_eq!(
        journal[0].desired,
        json!({"name": "crm-acct", "priority": 1})
    );
    let res = s.resources(&b1).await.unwrap();
    let seen: Vec<_> = res
        .iter()
        .map(|r| (r.journal_seq, r.kind, r.host_object_id.0, r.origin, r.state))
        .collect();
    assert_eq!(
        seen,
        [
            (
                1,
                ResourceKind::Account,
                10,
                JournalOp::Create,
                ResourceState::Live
            ),
            (
                2,
                ResourceKind::Group,
                20,
                JournalOp::Create,
                ResourceState::Live
            ),
            (
                3,
                ResourceKind::Channel,
                77,
                JournalOp::Adopt,
                ResourceState::Live
            ),
        ],
        "applied creates/adopts become live managed resources, in journal order"
    );
    assert_eq!(res[0].name, "crm-acct");
    assert_eq!(res[0].natural_key, "nk-acct");
    assert_eq!(res[0].spec_digest, "digest-acct");

    // b-1 is `applying` (live): its resources are desired state on h1.
    let live = s.live_resources_on_host(&HostId::new("h1")).await.unwrap();
    assert_eq!(live.len(), 3);
    assert!(
        s.live_resources_on_host(&HostId::new("h2"))
            .await
            .unwrap()
            .is_empty()
    );

    s.update_resource_desired(
        &b1,
        ResourceKind::Group,
        HostObjectId(20),
        "digest-group-2".into(),
        json!({"rate": 1.5}),
    )
    .await
    .unwrap();
    s.set_resource_state(
        &b1,
        ResourceKind::Channel,
        HostObjectId(77),
        ResourceState::Disabled,
    )
    .await
    .unwrap();
    assert!(matches!(
        s.set_resource_state(
            &b1,
            ResourceKind::Channel,
            HostObjectId(5),
            ResourceState::Live
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));

    // Rolling back: a delete applied marks the resource deleted.
    let mut del = intent("b-1", "del-acct", JournalOp::Delete, ResourceKind::Account);
    del.host_object_id = Some(HostObjectId(10));
    let d = s.record_intent(del).await.unwrap();
    s.resolve_intent(&b1, d.seq, resolved(JournalState::Applied, None))
        .await
        .unwrap();
    let res = s.resources(&b1).await.unwrap();
    assert_eq!(res[0].state, ResourceState::Deleted);
    assert_eq!(res[1].spec_digest, "digest-group-2");
    assert_eq!(res[1].desired, json!({"rate": 1.5}));
    assert_eq!(res[2].state, ResourceState::Disabled);
    let live = s.live_resources_on_host(&HostId::new("h1")).await.unwrap();
    assert_eq!(
        live.iter().map(|r| r.host_object_id.0).collect::<Vec<_>>(),
        [20],
        "only live resources are listed"
    );
    s.set_batch_status(&b1, BatchStatus::RolledBack, None)
        .await
        .unwrap();
    assert!(
        s.live_resources_on_host(&HostId::new("h1"))
            .await
            .unwrap()
            .is_empty(),
        "resources of a batch that is not live are not desired state"
    );

    // Attempts of one intent: the key and its numbered retries, nothing
    // that merely starts with it, nothing of another batch.
    for key in ["acct#2", "acctx", "acct#x", "acct#10"] {
        s.record_intent(intent("b-2", key, JournalOp::Create, ResourceKind::Account))
            .await
            .unwrap();
    }
    let b2 = BatchId::new("b-2");
    let attempts = s.intent_attempts(&b2, "b-2/acct").await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|e| (e.seq, e.intent_key.as_str()))
            .collect::<Vec<_>>(),
        [(1, "b-2/acct"), (2, "b-2/acct#2"), (5, "b-2/acct#10")]
    );
    assert!(s.intent_attempts(&b1, "b-2/acct").await.unwrap().is_empty());
    assert!(s.intent_attempts(&b2, "b-2/ac").await.unwrap().is_empty());
}

async fn access_checks<S: Storage + ?Sized>(s: &S) {
    let check = |id: &str, secs: i64, verdict: Verdict| AccessCheck {
        id: AccessCheckId::new(id),
        batch_id: BatchId::new("b-2"),
        mode: AccessMode::SelfService,
        checked_at: at(secs),
        verdict,
        failure_class: (verdict == Verdict::Fail).then_some(FailureClass::BillingGate),
        summary: "checked".into(),
        steps: vec![CheckStep {
            name: "models".into(),
            verdict,
            status: Some(200),
            latency_ms: 12,
            detail: json!({"models": ["deepseek-chat"]}),
        }],
    };
    s.record_access_check(check("c-2", 600, Verdict::Pass))
        .await
        .unwrap();
    s.record_access_check(check("c-1", 500, Verdict::Fail))
        .await
        .unwrap();
    assert!(matches!(
        s.record_access_check(check("c-1", 500, Verdict::Fail))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let got = s.access_checks(&BatchId::new("b-2")).await.unwrap();
    assert_eq!(
        got,
        [
            check("c-1", 500, Verdict::Fail),
            check("c-2", 600, Verdict::Pass)
        ]
    );
    assert!(
        s.access_checks(&BatchId::new("b-3"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reconcile_runs<S: Storage + ?Sized>(s: &S) {
    let run = |id: &str, batch: Option<&str>, secs: i64, items: usize| ReconcileRun {
        id: ReconcileRunId::new(id),
        scope: ReconcileScope {
            host_id: HostId::new("h2"),
            batch_id: batch.map(BatchId::new),
            provider: batch.map(|_| ProviderRef::new("cn-official", "deepseek")),
        },
        status: if items == 0 {
            ReconcileStatus::InSync
        } else {
            ReconcileStatus::Drifted
        },
        started_at: at(secs),
        finished_at: at(secs + 3),
        host_requests: 6,
        items: (0..items)
            .map(|i| DriftItem {
                category: DriftCategory::Changed,
                reason: None,
                kind: ResourceKind::Channel,
                name: format!("crm-chan-{i}"),
                host_object_id: Some(HostObjectId(i as i64)),
                batch_id: batch.map(BatchId::new),
                fields: vec![FieldChange {
                    field: "model_pricing".into(),
                    from: json!(1),
                    to: json!(2),
                }],
                detail: "price changed".into(),
            })
            .collect(),
        repaired: false,
        error: None,
    };
    assert_eq!(s.latest_for_host(&HostId::new("h2")).await.unwrap(), None);
    s.save_run(run("r-1", Some("b-3"), 1000, 2)).await.unwrap();
    s.save_run(run("r-2", None, 2000, 0)).await.unwrap();
    s.save_run(run("r-3", Some("b-3"), 1500, 0)).await.unwrap();
    assert_eq!(
        s.get_run(&ReconcileRunId::new("r-1")).await.unwrap(),
        run("r-1", Some("b-3"), 1000, 2),
        "a run reads back with its drift items in order"
    );
    let mut repaired = run("r-1", Some("b-3"), 1000, 1);
    repaired.repaired = true;
    s.save_run(repaired.clone()).await.unwrap();
    assert_eq!(
        s.get_run(&ReconcileRunId::new("r-1")).await.unwrap(),
        repaired
    );
    let host_runs = s.runs_for_host(&HostId::new("h2"), 10).await.unwrap();
    assert_eq!(
        host_runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r-2", "r-3", "r-1"],
        "newest first"
    );
    assert_eq!(
        s.runs_for_host(&HostId::new("h2"), 1).await.unwrap().len(),
        1
    );
    let latest = s
        .latest_for_host(&HostId::new("h2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id.as_str(), "r-2");
    let latest_b = s
        .latest_for_batch(&BatchId::new("b-3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest_b.id.as_str(), "r-3");
    assert_eq!(
        s.runs_for_batch(&BatchId::new("b-3"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.latest_for_batch(&BatchId::new("b-2")).await.unwrap(),
        None
    );
    assert!(matches!(
        s.get_run(&ReconcileRunId::new("r-404")).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn operations<S: Storage + ?Sized>(s: &S) {
    let op = |id: &str, status: OperationStatus, secs: i64| Operation {
        id: OperationId::new(id),
        kind: OperationKind::Import,
        status,
        target: "host:h1/provider:cn-official/deepseek".into(),
        request: json!({"host": "h1", "provider": "cn-official/deepseek"}),
        progress: vec![],
        result: None,
        error: None,
        idempotency_key: Some("idem-1".into()),
        created_at: at(secs),
        updated_at: at(secs),
    };
    let o1 = s
        .create_operation(op("op-1", OperationStatus::Queued, 10))
        .await
        .unwrap();
    assert!(matches!(
        s.create_operation(o1.clone()).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    s.create_operation(op("op-2", OperationStatus::Succeeded, 5))
        .await
        .unwrap();
    s.create_operation(op("op-3", OperationStatus::Running, 1))
        .await
        .unwrap();
    let unfinished = s.unfinished_operations().await.unwrap();
    assert_eq!(
        unfinished.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["op-3", "op-1"]
    );
    let mut done = o1.clone();
    done.status = OperationStatus::Succeeded;
    done.progress = vec!["accounts: 1 created".into(), "done".into()];
    done.result = Some(json!({"batch": "b-1"}));
    done.updated_at = at(20);
    s.update_operation(&done).await.unwrap();
    assert_eq!(
        s.get_operation(&OperationId::new("op-1")).await.unwrap(),
        done
    );
    assert_eq!(s.unfinished_operations().await.unwrap().len(), 1);
    assert!(matches!(
        s.update_operation(&op("op-404", OperationStatus::Failed, 0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn idempotency<S: Storage + ?Sized>(s: &S) {
    let route = "POST /api/v1/imports";
    let begin = |p: &'static str, k: &'static str, r: &'static str, h: &'static str| async move {
        s.begin_idempotent(p, k, r, h).await.unwrap()
    };
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::Started
    );
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin("alice", "k1", route, "h2").await,
        IdempotencyBegin::Mismatch
    );
    assert_eq!(
        begin("alice", "k1", "POST /api/v1/rollback", "h1").await,
        IdempotencyBegin::Mismatch,
        "a key reused on another route is another request"
    );
    assert_eq!(
        begin("bob", "k1", route, "h2").await,
        IdempotencyBegin::Started,
        "keys are scoped by principal"
    );
    let response = StoredResponse {
        status: 202,
        headers: vec![("location".into(), "/api/v1/operations/op-1".into())],
        body: b"{\"operation\":\"op-1\"}".to_vec(),
    };
    s.complete_idempotent("alice", "k1", response.clone())
        .await
        .unwrap();
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::Replay(response.clone())
    );
    assert_eq!(
        begin("alice", "k1", route, "h2").await,
        IdempotencyBegin::Mismatch
    );
    assert!(matches!(
        s.complete_idempotent("carol", "k1", response.clone()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Abandon forgets an unfinished record only.
    s.abandon_idempotent("bob", "k1").await.unwrap();
    assert_eq!(
        begin("bob", "k1", route, "h3").await,
        IdempotencyBegin::Started
    );
    s.abandon_idempotent("alice", "k1").await.unwrap();
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::Replay(response),
        "a completed response survives abandon"
    );
    s.abandon_idempotent("nobody", "k1").await.unwrap();

    // Every record so far was created "now"; purging before the far past
    // removes none, purging before the far future removes them all.
    assert_eq!(
        s.purge_idempotency_before(at(-10 * 365 * 86_400))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.purge_idempotency_before(Utc::now() + TimeDelta::days(3650))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        begin("alice", "k1", route, "h9").await,
        IdempotencyBegin::Started
    );
}

async fn leases<S: Storage + ?Sized>(s: &S) {
    let ttl = Duration::from_secs(3600);
    let scope = Lease::provider_scope(
        &HostId::new("h1"),
        &ProviderRef::new("cn-official", "deepseek"),
    );
    let lease = s
        .acquire_lease(&scope, "cli@ops-vm pid 41", "import", ttl)
        .await
        .unwrap();
    assert_eq!(lease.scope, scope);
    assert!(lease.expires_at > lease.acquired_at);
    match s.acquire_lease(&scope, "server", "reconcile", ttl).await {
        Err(StoreError::LeaseHeld {
            holder,
            operation,
            lease_id,
            scope: held_scope,
            expires_at,
        }) => {
            assert_eq!(holder, "cli@ops-vm pid 41");
            assert_eq!(operation, "import");
            assert_eq!(lease_id, lease.id);
            assert_eq!(held_scope, scope);
            assert_eq!(expires_at, lease.expires_at);
        }
        other => panic!("a held lease must refuse with LeaseHeld, got {other:?}"),
    }
    let host_lease = s
        .acquire_lease(
            &Lease::host_scope(&HostId::new("h2")),
            "server",
            "reconcile",
            ttl,
        )
        .await
        .expect("another scope is free");
    let beat = s
        .heartbeat_lease(&lease.id, Duration::from_secs(7200))
        .await
        .unwrap();
    assert_eq!(beat.id, lease.id);
    assert!(beat.expires_at > lease.expires_at);
    let active = s.active_leases("host:h1").await.unwrap();
    assert_eq!(active, [beat]);
    assert_eq!(s.active_leases("host:").await.unwrap().len(), 2);
    assert!(s.active_leases("host:h9").await.unwrap().is_empty());

    let stranger = LeaseId::new("l-not-mine");
    assert!(matches!(
        s.release_lease(&stranger).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(
        s.acquire_lease(&scope, "server", "import", ttl)
            .await
            .is_err(),
        "a release with the wrong id frees nothing"
    );
    s.release_lease(&lease.id).await.unwrap();
    assert!(matches!(
        s.heartbeat_lease(&lease.id, ttl).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        s.release_lease(&lease.id).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let next = s
        .acquire_lease(&scope, "server", "import", ttl)
        .await
        .expect("a released scope is free");
    assert_ne!(next.id, lease.id, "every acquisition gets a fresh id");
    s.release_lease(&next.id).await.unwrap();
    s.release_lease(&host_lease.id).await.unwrap();
    assert!(s.active_leases("").await.unwrap().is_empty());
}

/// The store's "now" (its clock is not reachable through the ports), as
/// the acquisition time of a throwaway lease records it.
async fn store_now<S: Storage + ?Sized>(s: &S) -> DateTime<Utc> {
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

fn session(
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

async fn sessions<S: Storage + ?Sized>(s: &S) {
    let now = store_now(s).await;
    let admin = session("d-admin", SessionRole::Admin, now, 3600);
    let viewer = session("d-viewer", SessionRole::ReadOnly, now, 3600);
    let stale = session(
        "d-stale",
        SessionRole::Admin,
        now - TimeDelta::hours(9),
        3600,
    );
    s.create_session(stale.clone()).await.unwrap();
    assert_eq!(
        s.get_session("d-stale").await.unwrap(),
        None,
        "an expired session signs nobody in"
    );
    s.create_session(admin.clone()).await.unwrap();
    s.create_session(viewer.clone()).await.unwrap();
    assert_eq!(s.get_session("d-admin").await.unwrap(), Some(admin));
    assert_eq!(
        s.get_session("d-viewer").await.unwrap(),
        Some(viewer.clone())
    );
    assert_eq!(s.get_session("d-unknown").await.unwrap(), None);
    s.delete_session("d-admin").await.unwrap();
    assert_eq!(
        s.get_session("d-admin").await.unwrap(),
        None,
        "logout ends it"
    );
    s.delete_session("d-admin")
        .await
        .expect("ending an ended session is not an error");
    assert_eq!(
        s.get_session("d-viewer").await.unwrap(),
        Some(viewer),
        "ending one session leaves the others"
    );
    s.delete_session("d-viewer").await.unwrap();
}

async fn audit<S: Storage + ?Sized>(s: &S) {
    let event = |action: &str| NewAuditEvent {
        actor: "admin".into(),
        action: action.into(),
        target: "batch:b-1".into(),
        request_id: Some("req-1".into()),
        outcome: "ok".into(),
        detail: None,
    };
    let first = s.append_audit(event("import")).await.unwrap();
    let second = s.append_audit(event("rollback")).await.unwrap();
    assert!(second.id > first.id);
    assert_eq!(first.action, "import");
    let listed = s.list_audit(10).await.unwrap();
    assert_eq!(listed, [second.clone(), first], "newest first");
    assert_eq!(s.list_audit(1).await.unwrap(), [second]);
}

/// The replica contract: `a` and `b` are two stores on one database (two
/// connections or pools, as two crm-server replicas have), sharing a clock
/// that `advance` moves. Whatever one replica wrote, the other must see and
/// respect: exactly one winner of every lease race, takeover only after
/// expiry, one shared answer per idempotency key, operations visible from
/// both, and a gapless journal when both write one batch.
pub async fn run_replica_story<S: Storage + ?Sized>(a: &S, b: &S, advance: &dyn Fn(Duration)) {
    replica_lease_races(a, b).await;
    replica_lease_expiry(a, b, advance).await;
    replica_idempotency(a, b).await;
    replica_operations(a, b).await;
    replica_journal(a, b).await;
    replica_sessions(a, b, advance).await;
}

fn expect_one_winner(
    round: &str,
    results: Vec<(&'static str, Result<Lease, StoreError>)>,
) -> (&'static str, Lease) {
    let mut winners = Vec::new();
    let mut refusals = Vec::new();
    for (who, r) in results {
        match r {
            Ok(l) => winners.push((who, l)),
            Err(StoreError::LeaseHeld {
                lease_id, holder, ..
            }) => refusals.push((lease_id, holder)),
            Err(other) => panic!("{round}: {who} failed with {other:?}, not LeaseHeld"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{round}: exactly one of the racers must win, got {winners:?}"
    );
    let (who, won) = winners.pop().expect("one winner");
    for (id, holder) in refusals {
        assert_eq!(
            id, won.id,
            "{round}: the losers are told the winner's lease"
        );
        assert_eq!(
            holder, won.holder,
            "{round}: the losers are told the winner"
        );
    }
    (who, won)
}

async fn replica_lease_races<S: Storage + ?Sized>(a: &S, b: &S) {
    let ttl = Duration::from_secs(60);
    let mut wins = [0u32; 2];
    for round in 0..20 {
        let scope = format!("host:race-{round}/provider:cn-official/deepseek");
        // Four racers on each replica at once.
        let (a1, a2, a3, a4, b1, b2, b3, b4) = tokio::join!(
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
        );
        let (who, won) = expect_one_winner(
            &format!("race {round}"),
            vec![
                ("a", a1),
                ("a", a2),
                ("a", a3),
                ("a", a4),
                ("b", b1),
                ("b", b2),
                ("b", b3),
                ("b", b4),
            ],
        );
        wins[usize::from(who == "b")] += 1;
        assert_eq!(
            b.active_leases(&scope).await.unwrap(),
            std::slice::from_ref(&won),
            "one lease row per scope, seen alike from both replicas"
        );
        assert_eq!(
            a.active_leases(&scope).await.unwrap(),
            std::slice::from_ref(&won)
        );
        let (ra, rb) = tokio::join!(a.release_lease(&won.id), b.release_lease(&won.id));
        assert!(
            ra.is_ok() != rb.is_ok(),
            "a lease is released once: {ra:?} {rb:?}"
        );
    }
    assert_eq!(wins[0] + wins[1], 20);
}

async fn replica_lease_expiry<S: Storage + ?Sized>(a: &S, b: &S, advance: &dyn Fn(Duration)) {
    let ttl = Duration::from_secs(60);
    let scope = "host:expiry/provider:cn-official/deepseek";
    let first = a
        .acquire_lease(scope, "replica-a (pid 1@a)", "import", ttl)
        .await
        .unwrap();
    advance(Duration::from_secs(59));
    assert!(
        matches!(
            b.acquire_lease(scope, "replica-b (pid 2@b)", "import", ttl)
                .await,
            Err(StoreError::LeaseHeld { .. })
        ),
        "never taken over before expiry"
    );
    // The holder dies (stops heartbeating); once expired, both survivors
    // try to take it over at once: exactly one does.
    advance(Duration::from_secs(2));
    let (b1, b2, a1) = tokio::join!(
        b.acquire_lease(scope, "replica-b (pid 2@b)", "resume", ttl),
        b.acquire_lease(scope, "replica-b (pid 2@b)", "resume", ttl),
        a.acquire_lease(scope, "replica-c (pid 3@c)", "resume", ttl),
    );
    let (_, second) = expect_one_winner("takeover", vec![("b", b1), ("b", b2), ("a", a1)]);
    assert_ne!(second.id, first.id);
    assert!(matches!(
        a.heartbeat_lease(&first.id, ttl).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        a.release_lease(&first.id).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(
        a.active_leases(scope).await.unwrap(),
        std::slice::from_ref(&second),
        "the dead holder's release did not free the new holder's lease"
    );
    let beat = b.heartbeat_lease(&second.id, ttl).await.unwrap();
    assert_eq!(beat.id, second.id);
    a.release_lease(&second.id).await.unwrap();
    assert!(b.active_leases(scope).await.unwrap().is_empty());
}

async fn replica_idempotency<S: Storage + ?Sized>(a: &S, b: &S) {
    let route = "POST /api/v1/imports";
    for round in 0..10 {
        let key = format!("race-{round}");
        let (x, y, z) = tokio::join!(
            a.begin_idempotent("admin", &key, route, "h1"),
            b.begin_idempotent("admin", &key, route, "h1"),
            b.begin_idempotent("admin", &key, route, "h1"),
        );
        let answers = [x.unwrap(), y.unwrap(), z.unwrap()];
        assert_eq!(
            answers
                .iter()
                .filter(|r| **r == IdempotencyBegin::Started)
                .count(),
            1,
            "round {round}: one request executes, the others are in flight: {answers:?}"
        );
        assert!(
            answers
                .iter()
                .all(|r| matches!(r, IdempotencyBegin::Started | IdempotencyBegin::InProgress)),
            "{answers:?}"
        );
    }
    let response = StoredResponse {
        status: 202,
        headers: vec![("location".into(), "/api/v1/operations/op-r".into())],
        body: b"{\"operation\":\"op-r\"}".to_vec(),
    };
    a.complete_idempotent("admin", "race-0", response.clone())
        .await
        .unwrap();
    assert_eq!(
        b.begin_idempotent("admin", "race-0", route, "h1")
            .await
            .unwrap(),
        IdempotencyBegin::Replay(response),
        "a retry on the other replica replays the stored response"
    );
    assert_eq!(
        b.begin_idempotent("admin", "race-0", route, "h2")
            .await
            .unwrap(),
        IdempotencyBegin::Mismatch
    );
    b.abandon_idempotent("admin", "race-1").await.unwrap();
    assert_eq!(
        a.begin_idempotent("admin", "race-1", route, "h1")
            .await
            .unwrap(),
        IdempotencyBegin::Started,
        "abandoned on one replica, free on the other"
    );
}

async fn replica_operations<S: Storage + ?Sized>(a: &S, b: &S) {
    let mut op = Operation {
        id: OperationId::new("op-replica"),
        kind: OperationKind::Import,
        status: OperationStatus::Running,
        target: "host:h1/provider:cn-official/deepseek".into(),
        request: json!({ "host": "h1" }),
        progress: vec!["started on a".into()],
        result: None,
        error: None,
        idempotency_key: Some("race-0".into()),
        created_at: at(0),
        updated_at: at(0),
    };
    a.create_operation(op.clone()).await.unwrap();
    assert_eq!(b.get_operation(&op.id).await.unwrap(), op, "polled from b");
    assert!(
        b.unfinished_operations()
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == op.id),
        "a surviving replica finds the unfinished operation"
    );
    op.progress.push("resumed on b".into());
    op.status = OperationStatus::Succeeded;
    op.result = Some(json!({ "batch": "b-1" }));
    op.updated_at = at(5);
    b.update_operation(&op).await.unwrap();
    assert_eq!(a.get_operation(&op.id).await.unwrap(), op);
    assert!(
        !a.unfinished_operations()
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == op.id)
    );
}

async fn replica_journal<S: Storage + ?Sized>(a: &S, b: &S) {
    a.add_host(host("h-rep", "replica-host")).await.unwrap();
    b.create_batch(batch(
        "b-rep",
        "h-rep",
        "cn-official/deepseek",
        BatchStatus::Applying,
        0,
    ))
    .await
    .unwrap();
    let i = |k: &str| intent("b-rep", k, JournalOp::Create, ResourceKind::Account);
    let (r1, r2, r3, r4, r5, r6) = tokio::join!(
        a.record_intent(i("acct-1")),
        b.record_intent(i("acct-2")),
        a.record_intent(i("acct-3")),
        b.record_intent(i("acct-4")),
        a.record_intent(i("acct-1")),
        b.record_intent(i("acct-1")),
    );
    let entries = [r1, r2, r3, r4, r5, r6].map(|r| r.expect("record intent"));
    assert_eq!(entries[0], entries[4], "the same intent is recorded once");
    assert_eq!(entries[0], entries[5], "from either replica");
    let journal = a.journal(&BatchId::new("b-rep")).await.unwrap();
    let seqs: Vec<u32> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "gapless, one entry per intent key");
    let b_rep = BatchId::new("b-rep");
    let (x, y) = tokio::join!(
        a.resolve_intent(&b_rep, 1, resolved(JournalState::Applied, Some(501))),
        b.resolve_intent(&b_rep, 2, resolved(JournalState::Applied, Some(502))),
    );
    x.unwrap();
    y.unwrap();
    let resources = b.resources(&BatchId::new("b-rep")).await.unwrap();
    assert_eq!(
        resources
            .iter()
            .map(|r| r.host_object_id.0)
            .collect::<Vec<_>>(),
        [501, 502]
    );
}

/// A browser signed in through one replica is signed in on the other; a
/// logout on either ends it on both; expiry holds on both.
async fn replica_sessions<S: Storage + ?Sized>(a: &S, b: &S, advance: &dyn Fn(Duration)) {
    let now = store_now(a).await;
    a.create_session(session("r-1", SessionRole::Admin, now, 60))
        .await
        .unwrap();
    b.create_session(session("r-2", SessionRole::ReadOnly, now, 600))
        .await
        .unwrap();
    assert_eq!(
        b.get_session("r-1").await.unwrap().map(|s| s.role),
        Some(SessionRole::Admin),
        "a session made on one replica is known on the other"
    );
    assert!(a.get_session("r-2").await.unwrap().is_some());
    b.delete_session("r-1").await.unwrap();
    assert_eq!(
        a.get_session("r-1").await.unwrap(),
        None,
        "a logout on one replica is a logout on all"
    );
    advance(Duration::from_secs(601));
    assert_eq!(a.get_session("r-2").await.unwrap(), None);
    assert_eq!(b.get_session("r-2").await.unwrap(), None);
}

/// The sealing contract: a sealed value stored through the ports opens only
/// in its own row and field (docs/design.md §5 "Secrets"). Copying a host's
/// sealed admin key into another host row, or a batch's sealed login
/// password into another batch's journal, gives a value that does not open
/// there; each still opens where it was sealed. Run it on an empty store.
pub async fn run_sealing_story<S: Storage + SecretSealer + ?Sized>(s: &S) {
    let secret = "admin-key-of-host-a-0001";
    let ctx_a = SealContext::host_admin_key(&HostId::new("h-seal-a"));
    let sealed = s
        .seal(&ctx_a, &SecretString::from(secret.to_owned()))
        .unwrap();
    for (id, name) in [("h-seal-a", "seal-a"), ("h-seal-b", "seal-b")] {
        let mut h = host(id, name);
        h.admin_credential = CredentialRef::Sealed {
            sealed: sealed.clone(),
        };
        s.add_host(h).await.unwrap();
    }
    let stored = |h: HostRecord| match h.admin_credential {
        CredentialRef::Sealed { sealed } => (h.id, sealed),
        other => panic!("credential kind changed: {other:?}"),
    };
    let (a_id, a_sealed) = stored(s.get_host("seal-a").await.unwrap());
    let (b_id, b_sealed) = stored(s.get_host("seal-b").await.unwrap());
    assert_eq!(
        s.open(&SealContext::host_admin_key(&a_id), &a_sealed)
            .unwrap()
            .expose_secret(),
        secret,
        "a sealed admin key opens in its own host row"
    );
    let moved = s
        .open(&SealContext::host_admin_key(&b_id), &b_sealed)
        .expect_err("host A's ciphertext copied into host B's row must not open there");
    assert!(matches!(moved, StoreError::Sealing { .. }), "{moved}");
    assert!(!moved.to_string().contains(secret), "{moved}");

    // Same ciphertext, same row id, another field: refused.
    let as_password = SealContext::batch_login_password(&BatchId::new("h-seal-a"), "x@y");
    assert!(s.open(&as_password, &a_sealed).is_err());

    // A login password moved between batches (journal and resources).
    let email = "crm-probe-seal@crm.invalid";
    let password = "probe-password-of-batch-1";
    for b in ["b-seal-1", "b-seal-2"] {
        s.create_batch(batch(
            b,
            "h-seal-a",
            "cn-official/deepseek",
            BatchStatus::Applying,
            0,
        ))
        .await
        .unwrap();
    }
    let b1 = BatchId::new("b-seal-1");
    let pw_sealed = s
        .seal(
            &SealContext::batch_login_password(&b1, email),
            &SecretString::from(password.to_owned()),
        )
        .unwrap();
    for b in ["b-seal-1", "b-seal-2"] {
        let mut user = intent(b, "user", JournalOp::Create, ResourceKind::User);
        user.desired = json!({ "email": email, "probe": true, "login_password_sealed": pw_sealed });
        let e = s.record_intent(user).await.unwrap();
        s.resolve_intent(
            &BatchId::new(b),
            e.seq,
            resolved(JournalState::Applied, Some(900)),
        )
        .await
        .unwrap();
    }
    for (b, opens) in [("b-seal-1", true), ("b-seal-2", false)] {
        let batch = BatchId::new(b);
        let entry = &s.journal(&batch).await.unwrap()[0];
        let resource = &s.resources(&batch).await.unwrap()[0];
        for desired in [&entry.desired, &resource.desired] {
            let ctx = SealContext::login_password_in(&batch, desired).expect("names its login");
            let sealed: SealedSecret =
                serde_json::from_value(desired["login_password_sealed"].clone()).unwrap();
            let opened = s.open(&ctx, &sealed);
            assert_eq!(
                opened.is_ok(),
                opens,
                "batch {b}: a login password opens only in the batch it was sealed for"
            );
            if let Ok(pw) = opened {
                assert_eq!(pw.expose_secret(), password);
            }
        }
    }
}

/// A database as an older crm left it: sealed values in the `v1` form (no
/// associated data). Each adapter's upgrade test writes these rows with
/// raw SQL at its schema version before the re-seal step existed, then
/// opens the store and calls [`check_v1_fixture_resealed`].
pub mod v1_fixture {
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};

    pub const HOST_ID: &str = "h-v1";
    pub const HOST_NAME: &str = "relay-v1";
    pub const ADMIN_KEY: &str = "admin-key-sealed-by-v1";
    pub const BATCH_ID: &str = "b-v1";
    pub const EMAIL: &str = "crm-probe-v1@crm.invalid";
    pub const PASSWORD: &str = "probe-password-sealed-by-v1";

    /// `secret` sealed as crm sealed before v2: `v1:<nonce>:<ct>` without
    /// associated data. Written out here because the sealer no longer
    /// produces it.
    pub fn seal_v1(key: &[u8; 32], secret: &str) -> String {
        let cipher = XChaCha20Poly1305::new(key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(&nonce, secret.as_bytes())
            .expect("encryption of a short value");
        format!("v1:{}:{}", hex::encode(nonce), hex::encode(ct))
    }

    /// The host's `admin_credential` column.
    pub fn admin_credential(key: &[u8; 32]) -> String {
        serde_json::json!({ "kind": "sealed", "sealed": seal_v1(key, ADMIN_KEY) }).to_string()
    }

    /// The `desired` columns of the closure user's journal entry and of the
    /// key's managed resource (each sealed separately, as copies were).
    pub fn user_desired(key: &[u8; 32]) -> String {
        serde_json::json!({
            "email": EMAIL, "probe": true, "login_password_sealed": seal_v1(key, PASSWORD)
        })
        .to_string()
    }

    pub fn key_desired(key: &[u8; 32]) -> String {
        serde_json::json!({
            "name": "crm-key", "user_id": 7, "group_id": 3,
            "login_email": EMAIL, "login_password_sealed": seal_v1(key, PASSWORD)
        })
        .to_string()
    }
}

/// After the re-seal step: every sealed value of [`v1_fixture`] is `v2`
/// and opens in its own row to the value sealed in `v1`.
pub async fn check_v1_fixture_resealed<S: Storage + SecretSealer + ?Sized>(s: &S) {
    use v1_fixture::*;
    let host = s.get_host(HOST_NAME).await.unwrap();
    let CredentialRef::Sealed { sealed } = &host.admin_credential else {
        panic!("the admin credential is still sealed");
    };
    assert!(sealed.0.starts_with("v2:"), "admin key re-sealed as v2");
    assert_eq!(
        s.open(&SealContext::host_admin_key(&host.id), sealed)
            .unwrap()
            .expose_secret(),
        ADMIN_KEY
    );
    let batch = BatchId::new(BATCH_ID);
    let mut specs: Vec<serde_json::Value> = s
        .journal(&batch)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.desired)
        .collect();
    specs.extend(
        s.resources(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.desired),
    );
    let with_password: Vec<_> = specs
        .iter()
        .filter(|d| d.get("login_password_sealed").is_some())
        .collect();
    assert!(
        with_password.len() >= 2,
        "the fixture's specs are all there"
    );
    for desired in with_password {
        let sealed: SealedSecret =
            serde_json::from_value(desired["login_password_sealed"].clone()).unwrap();
        assert!(
            sealed.0.starts_with("v2:"),
            "login password re-sealed as v2"
        );
        let ctx = SealContext::login_password_in(&batch, desired).unwrap();
        assert_eq!(s.open(&ctx, &sealed).unwrap().expose_secret(), PASSWORD);
    }
}
