use super::*;
use crate::fixtures::*;
use crm_domain::access::AccessCheck;
use crm_domain::observed::HostGroup;
use crm_domain::ownership::marked_text;
use crm_domain::{
    AccessCheckId, AccessMode, BatchId, BatchStatus, FailureClass, GroupBilling, HostId,
    HostObjectId, Platform, ProviderRef, Verdict,
};
use serde_json::json;

type Mutate = fn(&mut Recorded, &mut HostSnapshot);

fn old_batch_group() -> HostGroup {
    HostGroup {
        id: HostObjectId(50),
        name: "crm-cn-official.deepseek".into(),
        description: Some(marked_text(&BatchId::new("b-old"), "provider group")),
        ..DEEPSEEK.group()
    }
}

fn run(mutate: Mutate) -> Vec<DriftItem> {
    let mut rec = recorded();
    let mut obs = in_sync();
    mutate(&mut rec, &mut obs);
    diff(&rec, &obs, &caps())
}

fn summary(items: &[DriftItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            let fields: Vec<&str> = i.fields.iter().map(|f| f.field.as_str()).collect();
            format!(
                "{} {} #{} [{}]",
                i.category,
                i.kind,
                i.host_object_id.map(|h| h.0).unwrap_or(0),
                fields.join(",")
            )
        })
        .collect()
}

/// (case, mutation, expected "category kind #id [fields]" lines, in order)
const CASES: &[(&str, Mutate, &[&str])] = &[
    ("in sync", |_, _| {}, &[]),
    (
        "deleted account is missing",
        |_, o| o.accounts.retain(|a| a.id.0 != 1),
        &["missing account #1 []"],
    ),
    (
        "deleted group and channel are missing",
        |_, o| {
            o.groups.retain(|g| g.id.0 != 11);
            o.channels.as_mut().unwrap().retain(|c| c.id.0 != 21);
        },
        &["missing group #11 []", "missing channel #21 []"],
    ),
    (
        "channel price change names the row",
        |_, o| o.channels.as_mut().unwrap()[0].model_pricing[0].input_price = Some(5e-7),
        &["changed channel #20 [model_pricing[deepseek:deepseek-chat]]"],
    ),
    (
        "channel mapping, billing source and restriction",
        |_, o| {
            let c = &mut o.channels.as_mut().unwrap()[1];
            c.model_mapping.clear();
            c.billing_model_source = "requested".into();
            c.restrict_models = false;
        },
        &["changed channel #21 [model_mapping,billing_model_source,restrict_models]"],
    ),
    (
        "an extra pricing row is reported as removed",
        |_, o| {
            let c = &mut o.channels.as_mut().unwrap()[0];
            let mut row = c.model_pricing[0].clone();
            row.models = vec!["deepseek-reasoner".into()];
            c.model_pricing.push(row);
        },
        &["changed channel #20 [model_pricing[deepseek:deepseek-reasoner]]"],
    ),
    (
        "group billing type, multiplier and limits",
        |_, o| {
            let g = &mut o.groups[0];
            g.billing = GroupBilling::Subscription;
            g.rate_multiplier = 1.5;
            g.monthly_limit_usd = Some(10.0);
        },
        &["changed group #10 [subscription_type,rate_multiplier,monthly_limit_usd]"],
    ),
    (
        "unlimited as -1 or null is the same",
        |_, o| o.groups[1].weekly_limit_usd = Some(-1.0),
        &[],
    ),
    (
        "account base url, platform, binding, mapping, key presence",
        |_, o| {
            let a = &mut o.accounts[0];
            a.base_url = Some("https://evil.example".into());
            a.platform = Platform::openai();
            a.group_ids.clear();
            a.model_mapping.clear();
            a.has_api_key = false;
        },
        &["changed account #1 [platform,base_url,model_mapping,credentials.has_api_key,group_ids]"],
    ),
    (
        "trailing slash on the base url is not drift",
        |_, o| o.accounts[1].base_url = Some("https://api.moonshot.cn/v1/".into()),
        &[],
    ),
    (
        "extra bindings an operator added are theirs",
        |_, o| o.accounts[0].group_ids.push(HostObjectId(77)),
        &[],
    ),
    (
        "host-written extra keys are not compared",
        |_, o| {
            o.accounts[0]
                .extra
                .insert("openai_responses_supported".into(), json!(true));
        },
        &[],
    ),
    (
        "disabled recorded account is changed",
        |_, o| o.accounts[0].status = "inactive".into(),
        &["changed account #1 [status]"],
    ),
    (
        "removed marker is reported, never silently accepted",
        |_, o| o.groups[0].description = Some("the operator rewrote this".into()),
        &["changed group #10 [description]"],
    ),
    (
        "copy with the same key is a duplicate",
        |_, o| {
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            o.accounts.push(dup);
        },
        &["duplicate account #30 []"],
    ),
    (
        "disabled copies are not duplicates",
        |_, o| {
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            dup.status = "inactive".into();
            o.accounts.push(dup);
        },
        &[],
    ),
    (
        "unrecorded crm account of the provider in its group",
        |_, o| {
            let mut other = DEEPSEEK.account();
            other.id = HostObjectId(31);
            other.name = "crm-cn-official.deepseek-k9".into();
            o.accounts.push(other);
        },
        &["duplicate account #31 []"],
    ),
    (
        "unmarked account in the group is not crm's",
        |_, o| {
            let mut other = DEEPSEEK.account();
            other.id = HostObjectId(32);
            other.name = "crm-cn-official.deepseek-k9".into();
            other.notes = Some("operator's".into());
            o.accounts.push(other);
        },
        &[],
    ),
    (
        "group from an old batch is a leftover",
        |_, o| o.groups.push(old_batch_group()),
        &["unmanaged_leftover group #50 []"],
    ),
    (
        "objects of a rolled back batch are leftovers",
        |r, _| r.batches[1].batch.status = BatchStatus::RolledBack,
        &[
            "unmanaged_leftover account #2 []",
            "unmanaged_leftover group #11 []",
            "unmanaged_leftover channel #21 []",
        ],
    ),
    (
        "crm-named object without a marker on a notes host is not crm's",
        |_, o| {
            let mut g = old_batch_group();
            g.description = None;
            o.groups.push(g);
        },
        &[],
    ),
    (
        "error, temp-unschedulable and unschedulable accounts",
        |_, o| {
            o.accounts[0].status = "error".into();
            o.accounts[0].error_message = Some("API returned 401".into());
            o.accounts[1].temp_unschedulable_reason = Some("429 burst".into());
            o.accounts[1].schedulable = false;
        },
        &[
            "unhealthy account #1 [status]",
            "unhealthy account #2 [temp_unschedulable_reason,schedulable]",
        ],
    ),
    (
        "failed access re-check",
        |r, _| {
            r.access.push(AccessCheck {
                id: AccessCheckId::new("ac-1"),
                batch_id: BatchId::new("b-kimi"),
                mode: AccessMode::SelfService,
                checked_at: t0(),
                verdict: Verdict::Fail,
                failure_class: Some(FailureClass::ModelNotExposed),
                summary: "kimi-k2 is not listed on /v1/models".into(),
                steps: vec![],
            })
        },
        &["access_broken user_api_key #0 [failure_class]"],
    ),
    (
        "batch scope ignores other batches and leftovers",
        |r, o| {
            r.scope.batch_id = Some(BatchId::new("b-ds"));
            o.accounts.retain(|a| a.id.0 != 2);
            o.groups.push(old_batch_group());
            o.channels.as_mut().unwrap()[0].restrict_models = false;
        },
        &["changed channel #20 [restrict_models]"],
    ),
    (
        "provider scope keeps leftovers named for the provider",
        |r, o| {
            r.scope.provider = Some(ProviderRef::parse("cn-official/kimi").unwrap());
            o.groups.push(old_batch_group());
            let mut g = old_batch_group();
            g.id = HostObjectId(51);
            g.name = "crm-cn-official.kimi".into();
            o.groups.push(g);
        },
        &["unmanaged_leftover group #51 []"],
    ),
];

#[test]
fn drift_table() {
    for (case, mutate, want) in CASES {
        let got = summary(&run(*mutate));
        assert_eq!(got, *want, "case: {case}");
    }
}

#[test]
fn diff_is_deterministic() {
    let m: Mutate = |_, o| {
        o.accounts.retain(|a| a.id.0 != 1);
        o.groups.push(old_batch_group());
        o.accounts.reverse();
        o.groups.reverse();
    };
    assert_eq!(run(m), run(m));
}

#[test]
fn name_is_the_only_mark_on_hosts_without_account_notes() {
    let mut rec = recorded();
    let mut obs = in_sync();
    let mut c = caps();
    c.credential_redaction = false;
    c.channels = false;
    obs.channels = None;
    for rb in &mut rec.batches {
        rb.resources.retain(|r| r.kind != ResourceKind::Channel);
    }
    for a in &mut obs.accounts {
        a.notes = None;
    }
    let mut stray = KIMI.account();
    stray.id = HostObjectId(40);
    stray.name = "crm-cn-official.kimi-k7".into();
    stray.notes = None;
    obs.accounts.push(stray);
    let got = summary(&diff(&rec, &obs, &c));
    assert_eq!(got, ["unmanaged_leftover account #40 []"]);
}

#[test]
fn a_copy_of_a_recorded_account_is_a_duplicate_on_hosts_without_notes() {
    let mut rec = recorded();
    let mut obs = in_sync();
    let mut c = caps();
    c.credential_redaction = false;
    c.channels = false;
    obs.channels = None;
    for rb in &mut rec.batches {
        rb.resources.retain(|r| r.kind != ResourceKind::Channel);
    }
    for a in &mut obs.accounts {
        a.notes = None;
    }
    // Same natural key (platform, base URL, name with the key's
    // fingerprint) as the recorded DeepSeek account, recorded by no batch.
    let mut copy = DEEPSEEK.account();
    copy.id = HostObjectId(31);
    copy.notes = None;
    obs.accounts.push(copy);
    let items = diff(&rec, &obs, &c);
    assert_eq!(summary(&items), ["duplicate account #31 []"]);
    let d = &items[0];
    // Without a marker it is reported, never touched.
    assert_eq!(d.batch_id, None);
    assert!(
        d.detail.contains("same natural key as recorded account #"),
        "{}",
        d.detail
    );
    assert!(d.detail.contains("keeps no account notes"), "{}", d.detail);
}

#[test]
fn unreachable_reports_unknown_and_nothing_else() {
    let rec = recorded();
    let items = unreachable(&rec, "connection refused");
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i.category == DriftCategory::Unknown));
    assert_eq!(status_of(&items), ReconcileStatus::Unreachable);
    let empty = Recorded {
        batches: vec![],
        ..recorded()
    };
    assert!(unreachable(&empty, "x").is_empty());
    assert_eq!(status_of(&[]), ReconcileStatus::InSync);
    let _ = HostId::new("unused");
}

#[test]
fn five_kinds_of_drift_snapshot() {
    let items = run(|_, o| {
        o.accounts.retain(|a| a.id.0 != 2);
        o.channels.as_mut().unwrap()[0].model_pricing[0].output_price = Some(2.2e-6);
        let mut dup = DEEPSEEK.account();
        dup.id = HostObjectId(30);
        dup.created_at = Some("2026-11-22T09:30:00Z".into());
        o.accounts.push(dup);
        o.groups.push(old_batch_group());
        o.accounts[0].status = "error".into();
        o.accounts[0].error_message = Some("API returned 401: invalid key".into());
    });
    assert_eq!(status_of(&items), ReconcileStatus::Drifted);
    insta::assert_json_snapshot!(items);
}

/// Two providers (here the same provider in two packs) given one upstream
/// key at the same platform and base URL share one natural key
/// (docs/design.md §5 "No duplicates"), and provisioning adopts the account
/// rather than making a second: reconcile agrees, so an unrecorded account
/// named for the other pack with the recorded account's key is a duplicate.
#[test]
fn same_key_named_for_another_pack_is_a_duplicate() {
    let items = run(|_, o| o.accounts.push(same_key_other_pack()));
    assert_eq!(summary(&items), ["duplicate account #33 []"]);
}

/// The fixture with a monitor (#40) recorded for DeepSeek's batch and on
/// the host as recorded.
fn with_monitor() -> (Recorded, HostSnapshot) {
    let mut rec = recorded();
    let mut obs = in_sync();
    let (resource, observed) = deepseek_monitor();
    rec.batches[0].resources.push(resource);
    obs.monitors = Some(vec![observed]);
    (rec, obs)
}

#[test]
fn a_monitor_is_missing_or_changed_in_interval_model_endpoint_or_marker() {
    type M = fn(&mut HostSnapshot);
    let cases: &[(&str, M, &[&str])] = &[
        ("in sync", |_| {}, &[]),
        (
            "deleted on the host",
            |o| o.monitors = Some(vec![]),
            &["missing monitor #40 []"],
        ),
        (
            "the host no longer lists monitors",
            |o| o.monitors = None,
            &["missing monitor #40 []"],
        ),
        (
            "interval and model changed",
            |o| {
                let m = &mut o.monitors.as_mut().unwrap()[0];
                m.interval_seconds = 60;
                m.primary_model = "deepseek-reasoner".into();
            },
            &["changed monitor #40 [primary_model,interval_seconds]"],
        ),
        (
            "pointed elsewhere and disabled",
            |o| {
                let m = &mut o.monitors.as_mut().unwrap()[0];
                m.endpoint = "https://elsewhere.example".into();
                m.enabled = false;
            },
            &["changed monitor #40 [endpoint,enabled]"],
        ),
        (
            "its marker removed",
            |o| o.monitors.as_mut().unwrap()[0].group_name = "ops".into(),
            &["changed monitor #40 [group_name]"],
        ),
    ];
    for (case, mutate, want) in cases {
        let (rec, mut obs) = with_monitor();
        mutate(&mut obs);
        assert_eq!(summary(&diff(&rec, &obs, &caps())), *want, "case: {case}");
    }
}
