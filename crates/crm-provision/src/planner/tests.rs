//! Table and snapshot tests of the pure planner.

use super::*;
use crate::fixtures::*;
use crate::monitor::MonitorSpec;
use crm_domain::host::AdminAuth;
use serde_json::json;

fn run(
    pp: &PackProvider,
    caps: &Capabilities,
    snap: &HostSnapshot,
    mode: AccessMode,
    keys: &[u32],
) -> Plan {
    let keys: Vec<Fingerprint> = keys.iter().map(|n| fp(*n)).collect();
    plan(PlanInput {
        pack: pp,
        caps,
        snapshot: snap,
        mode,
        keys: &keys,
        resources: &[],
        monitor: false,
    })
}

fn actions(p: &Plan) -> Vec<(ResourceKind, PlanAction)> {
    p.items.iter().map(|i| (i.kind, i.action)).collect()
}

#[test]
fn fresh_current_host_plan() {
    let p = run(
        &deepseek("1.0.0", 2.0),
        &caps(true),
        &HostSnapshot::default(),
        AccessMode::SelfService,
        &[2, 1],
    );
    insta::assert_json_snapshot!("fresh_current_host", p);
}

#[test]
fn fresh_legacy_host_plan_falls_back_and_says_what_is_lost() {
    let p = run(
        &deepseek("1.0.0", 2.0),
        &caps(false),
        &HostSnapshot::default(),
        AccessMode::Subscription,
        &[1],
    );
    insta::assert_json_snapshot!("fresh_legacy_host", p);
    assert_eq!(p.notes.len(), 2);
    assert!(p.items.iter().all(|i| i.kind != ResourceKind::Channel));
}

#[test]
fn legacy_host_plan_uses_the_anthropic_endpoint_for_accounts_and_group() {
    let pp = deepseek("1.0.0", 2.0);
    let keys = [fp(1)];
    let planned = plan_detailed(PlanInput {
        pack: &pp,
        caps: &caps(false),
        snapshot: &HostSnapshot::default(),
        mode: AccessMode::SelfService,
        keys: &keys,
        resources: &[],
        monitor: false,
    });
    let choice = planned.choice.clone().unwrap();
    assert_eq!(choice.platform.as_str(), "anthropic");
    let spec = &planned.accounts[0];
    assert_eq!(spec.base_url, "https://api.deepseek.com/anthropic");
    assert!(
        planned.plan.items[0]
            .natural_key
            .starts_with("anthropic|https://api.deepseek.com/anthropic|")
    );
    // The group's platform must match its accounts'.
    let g = group_draft(&pp, &choice, AccessMode::SelfService, &BatchId::new("b"));
    assert_eq!(g.platform.as_str(), "anthropic");
    // An account crm made earlier with the old fallback (openai at the
    // OpenAI base URL) is not this key's account on this host.
    let mut old = caps(true);
    old.native_platforms.clear();
    let snap = applied_snapshot(&pp, &old, AccessMode::SelfService, &[1], &"b-0".into());
    let p = run(&pp, &caps(false), &snap, AccessMode::SelfService, &[1]);
    assert_eq!(p.items[0].action, PlanAction::Create, "{p:#?}");
}

#[test]
fn legacy_host_blocks_a_provider_without_an_anthropic_endpoint() {
    let mut pp = deepseek("1.0.0", 2.0);
    pp.spec.anthropic_base_url = None;
    for mode in [AccessMode::SelfService, AccessMode::Subscription] {
        let p = run(&pp, &caps(false), &HostSnapshot::default(), mode, &[1]);
        assert!(p.items.iter().all(|i| i.action == PlanAction::Blocked));
        insta::assert_json_snapshot!(format!("legacy_no_anthropic_endpoint-{mode}"), p);
    }
    // The current host still takes it natively.
    let p = run(
        &pp,
        &caps(true),
        &HostSnapshot::default(),
        AccessMode::SelfService,
        &[1],
    );
    assert_eq!(p.count(PlanAction::Blocked), 0);
}

#[test]
fn same_inputs_give_byte_identical_plans() {
    let pp = deepseek("1.0.0", 2.0);
    let snap = applied_snapshot(
        &pp,
        &caps(true),
        AccessMode::SelfService,
        &[1],
        &"b-1".into(),
    );
    let a = serde_json::to_string(&run(
        &pp,
        &caps(true),
        &snap,
        AccessMode::SelfService,
        &[1, 2],
    ))
    .unwrap();
    let b = serde_json::to_string(&run(
        &pp,
        &caps(true),
        &snap,
        AccessMode::SelfService,
        &[2, 1],
    ))
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn applied_state_is_a_noop_and_a_new_key_creates_only_its_account() {
    for current in [true, false] {
        let pp = deepseek("1.0.0", 2.0);
        let c = caps(current);
        let snap = applied_snapshot(&pp, &c, AccessMode::SelfService, &[1], &"b-1".into());
        // Unrecorded but marked (crash before the journal): adopt; the host
        // objects exactly match, so nothing else changes.
        let p = run(&pp, &c, &snap, AccessMode::SelfService, &[1]);
        assert!(
            p.items
                .iter()
                .all(|i| i.action == PlanAction::Adopt && i.changes.is_empty()),
            "{p:#?}"
        );
        let p = run(&pp, &c, &snap, AccessMode::SelfService, &[1, 7]);
        assert_eq!(p.count(PlanAction::Create), 1);
        let created = p
            .items
            .iter()
            .find(|i| i.action == PlanAction::Create)
            .unwrap();
        assert_eq!(
            created.name,
            crate::desired::account_name(&pp.provider, &fp(7))
        );
    }
}

#[test]
fn recorded_resources_make_a_noop_plan() {
    let pp = deepseek("1.0.0", 2.0);
    let c = caps(true);
    let b = BatchId::new("b-1");
    let snap = applied_snapshot(&pp, &c, AccessMode::SelfService, &[1], &b);
    let res = vec![
        resource(&b, ResourceKind::Account, 1, json!({"upstream_key": fp(1)})),
        resource(&b, ResourceKind::Group, 100, json!({})),
        resource(&b, ResourceKind::Channel, 200, json!({})),
    ];
    let p = plan(PlanInput {
        pack: &pp,
        caps: &c,
        snapshot: &snap,
        mode: AccessMode::SelfService,
        keys: &[fp(1)],
        resources: &res,
        monitor: false,
    });
    assert!(p.is_noop(), "{p:#?}");
}

fn resource(b: &BatchId, kind: ResourceKind, id: i64, desired: Value) -> ManagedResource {
    ManagedResource {
        batch_id: b.clone(),
        kind,
        host_object_id: HostObjectId(id),
        name: String::new(),
        natural_key: String::new(),
        origin: crm_domain::JournalOp::Create,
        spec_digest: String::new(),
        desired,
        state: ResourceState::Live,
        journal_seq: 1,
        updated_at: crate::fakes::t0(),
    }
}

#[test]
fn a_newer_pack_shows_price_and_mapping_changes_as_updates() {
    let old = deepseek("1.0.0", 2.0);
    let mut new = deepseek("1.1.0", 1.0);
    new.spec
        .model_mapping
        .insert("deepseek-v4".into(), "deepseek-v4-flash".into());
    let c = caps(true);
    let b = BatchId::new("b-1");
    let snap = applied_snapshot(&old, &c, AccessMode::SelfService, &[1], &b);
    let res = vec![
        resource(&b, ResourceKind::Account, 1, json!({"upstream_key": fp(1)})),
        resource(&b, ResourceKind::Group, 100, json!({})),
        resource(&b, ResourceKind::Channel, 200, json!({})),
    ];
    let p = plan(PlanInput {
        pack: &new,
        caps: &c,
        snapshot: &snap,
        mode: AccessMode::SelfService,
        keys: &[fp(1)],
        resources: &res,
        monitor: false,
    });
    insta::assert_json_snapshot!("pack_upgrade", p);
    assert_eq!(
        actions(&p),
        vec![
            (ResourceKind::Account, PlanAction::Update),
            (ResourceKind::Group, PlanAction::NoOp),
            (ResourceKind::Channel, PlanAction::Update),
        ]
    );
}

#[test]
fn a_moved_base_url_is_a_url_change_even_for_an_account_created_again() {
    let old = deepseek("1.0.0", 2.0);
    let mut new = deepseek("1.1.0", 2.0);
    new.spec.openai_base_url = "https://moved.example/v1/".into();
    let c = caps(true);
    let b = BatchId::new("b-1");
    let mut snap = applied_snapshot(&old, &c, AccessMode::SelfService, &[1], &b);
    let recorded_url = snap.accounts[0].base_url.clone().unwrap();
    let res = vec![
        resource(
            &b,
            ResourceKind::Account,
            1,
            json!({"upstream_key": fp(1), "base_url": recorded_url, "platform": snap.accounts[0].platform}),
        ),
        resource(&b, ResourceKind::Group, 100, json!({})),
        resource(&b, ResourceKind::Channel, 200, json!({})),
    ];
    let keys = [fp(1)];
    let run = |pack: &PackProvider, snap: &HostSnapshot| {
        plan(PlanInput {
            pack,
            caps: &c,
            snapshot: snap,
            mode: AccessMode::SelfService,
            keys: &keys,
            resources: &res,
            monitor: false,
        })
    };
    let p = run(&new, &snap);
    let urls = p.url_changes();
    assert_eq!(urls.len(), 1, "{p:#?}");
    assert_eq!(
        (urls[0].from.as_str(), urls[0].to.as_str()),
        (recorded_url.as_str(), "https://moved.example/v1")
    );
    assert_eq!(urls[0].host_object_id, Some(HostObjectId(1)));
    // Gone from the host: created again at the new URL, the same change.
    snap.accounts.clear();
    let p = run(&new, &snap);
    assert_eq!(p.items[0].action, PlanAction::Create);
    assert_eq!(p.url_changes().len(), 1, "{p:#?}");
    // The same URL (up to a trailing slash) is no change.
    let p = run(&old, &snap);
    assert!(p.url_changes().is_empty(), "{p:#?}");
}

#[test]
fn blocked_for_mode_gate_and_foreign_objects() {
    let mut pp = deepseek("1.0.0", 2.0);
    pp.spec.access.modes = vec![AccessMode::SelfService];
    let p = run(
        &pp,
        &caps(true),
        &HostSnapshot::default(),
        AccessMode::Subscription,
        &[1],
    );
    assert_eq!(p.count(PlanAction::Blocked), 3);
    assert!(
        p.items[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("mode subscription is not one of")
    );

    let mut c = caps(true);
    c.admin_auth = AdminAuth::ComplianceGate { document_url: None };
    let p = run(
        &deepseek("1.0.0", 2.0),
        &c,
        &HostSnapshot::default(),
        AccessMode::SelfService,
        &[1],
    );
    assert!(
        p.blocked()
            .all(|i| i.reason.as_deref().unwrap().contains("compliance gate"))
    );
    assert_eq!(p.count(PlanAction::Blocked), 3);

    // An operator's group with crm's name but no marker, and duplicate accounts.
    let pp = deepseek("1.0.0", 2.0);
    let mut snap = applied_snapshot(
        &pp,
        &caps(true),
        AccessMode::SelfService,
        &[1],
        &"b-1".into(),
    );
    snap.groups[0].description = Some("mine".into());
    let mut dup = snap.accounts[0].clone();
    dup.id = HostObjectId(9);
    snap.accounts.push(dup);
    let p = run(&pp, &caps(true), &snap, AccessMode::SelfService, &[1]);
    assert_eq!(
        actions(&p),
        vec![
            (ResourceKind::Account, PlanAction::Blocked),
            (ResourceKind::Group, PlanAction::Blocked),
            (ResourceKind::Channel, PlanAction::Adopt),
        ]
    );
    assert!(p.items[0].reason.as_deref().unwrap().contains("ids 1, 9"));
}

// ---------------------------------------------------------------- monitors

/// A plan of deepseek with key 1 on a current host whose observed monitors
/// are `monitors`, recording `resources`, wanting a monitor or not.
fn monitor_plan(
    pp: &PackProvider,
    c: &Capabilities,
    monitors: Option<Vec<crm_domain::observed::HostMonitor>>,
    resources: &[ManagedResource],
    wanted: bool,
) -> Plan {
    let b = BatchId::new("b-1");
    let mut snap = applied_snapshot(pp, c, AccessMode::SelfService, &[1], &b);
    snap.monitors = monitors;
    plan(PlanInput {
        pack: pp,
        caps: c,
        snapshot: &snap,
        mode: AccessMode::SelfService,
        keys: &[fp(1)],
        resources,
        monitor: wanted,
    })
}

fn observed_monitor(pp: &PackProvider, b: &str, id: i64) -> crm_domain::observed::HostMonitor {
    let spec = MonitorSpec::new(pp, AccessMode::SelfService, &fp(1)).unwrap();
    crate::fakehost::monitor_from(&spec.draft(&BatchId::new(b), "DeepSeek", key(1)), id)
}

#[test]
fn the_monitor_item_follows_the_request_the_host_and_what_is_recorded() {
    let pp = deepseek("1.0.0", 2.0);
    let c = caps(true);
    let b = BatchId::new("b-1");
    let monitor_of = |p: &Plan| {
        p.items
            .iter()
            .find(|i| i.kind == ResourceKind::Monitor)
            .map(|i| {
                (
                    i.action,
                    i.changes
                        .iter()
                        .map(|c| c.field.clone())
                        .collect::<Vec<_>>(),
                )
            })
    };
    let recorded = vec![resource(
        &b,
        ResourceKind::Monitor,
        300,
        json!({"upstream_key": fp(1)}),
    )];
    let mut slow = observed_monitor(&pp, "b-1", 300);
    slow.interval_seconds = 60;
    slow.primary_model = "other".into();
    let mut foreign = observed_monitor(&pp, "b-1", 300);
    foreign.group_name = "the operator's".into();
    let mut no_monitors = c.clone();
    no_monitors.channel_monitors = false;
    let mut zhipu = pp.clone();
    zhipu.spec.openai_base_url = "https://open.bigmodel.cn/api/paas/v4".into();
    type Want = Option<(PlanAction, Vec<String>)>;
    let cases: Vec<(&str, Plan, Want, usize)> = vec![
        (
            "not asked",
            monitor_plan(&pp, &c, Some(vec![]), &[], false),
            None,
            0,
        ),
        (
            "asked, none on the host",
            monitor_plan(&pp, &c, Some(vec![]), &[], true),
            Some((PlanAction::Create, vec![])),
            0,
        ),
        (
            "asked, the batch's own found by name (crash before the journal)",
            monitor_plan(
                &pp,
                &c,
                Some(vec![observed_monitor(&pp, "b-1", 300)]),
                &[],
                true,
            ),
            Some((PlanAction::Adopt, vec![])),
            0,
        ),
        (
            "recorded and as wanted, even unasked",
            monitor_plan(
                &pp,
                &c,
                Some(vec![observed_monitor(&pp, "b-1", 300)]),
                &recorded,
                false,
            ),
            Some((PlanAction::NoOp, vec![])),
            0,
        ),
        (
            "recorded, interval and model changed on the host",
            monitor_plan(&pp, &c, Some(vec![slow]), &recorded, false),
            Some((
                PlanAction::Update,
                vec!["primary_model".into(), "interval_seconds".into()],
            )),
            0,
        ),
        (
            "recorded, gone from the host",
            monitor_plan(&pp, &c, Some(vec![]), &recorded, false),
            Some((PlanAction::Create, vec![])),
            0,
        ),
        (
            "an unmarked monitor with crm's name",
            monitor_plan(&pp, &c, Some(vec![foreign]), &[], true),
            Some((PlanAction::Blocked, vec![])),
            0,
        ),
        (
            "a host without monitors: a note",
            monitor_plan(&pp, &no_monitors, None, &[], true),
            None,
            1,
        ),
        (
            "a base URL the monitor cannot call: a note",
            monitor_plan(&zhipu, &c, Some(vec![]), &[], true),
            None,
            1,
        ),
    ];
    for (case, p, want, notes) in cases {
        assert_eq!(monitor_of(&p), want, "{case}: {p:#?}");
        assert_eq!(p.notes.len(), notes, "{case}: {:?}", p.notes);
        if want.is_some() {
            assert_eq!(
                p.items.last().map(|i| i.kind),
                Some(ResourceKind::Monitor),
                "{case}: the monitor comes last"
            );
        }
    }
}

#[test]
fn a_new_monitor_checks_the_smoke_model_upstream_and_names_only_the_keys_fingerprint() {
    let pp = deepseek("1.0.0", 2.0);
    let c = caps(true);
    let keys = [fp(2), fp(1)];
    let planned = plan_detailed(PlanInput {
        pack: &pp,
        caps: &c,
        snapshot: &HostSnapshot {
            monitors: Some(vec![]),
            ..HostSnapshot::default()
        },
        mode: AccessMode::SelfService,
        keys: &keys,
        resources: &[],
        monitor: true,
    });
    let spec = planned.monitor.clone().unwrap();
    assert_eq!(spec.endpoint, "https://api.deepseek.com");
    assert_eq!(spec.interval_seconds, crate::monitor::MONITOR_INTERVAL_SECS);
    assert!((15..=3600).contains(&spec.interval_seconds));
    // The first account's key, in plan order.
    assert_eq!(spec.key, planned.accounts[0].key);
    let item = planned.item(ResourceKind::Monitor).unwrap();
    assert_eq!(item.natural_key, spec.name);
    let text = serde_json::to_string(&planned.plan).unwrap();
    assert!(
        !text.contains(crm_domain::secret::ExposeSecret::expose_secret(&key(1))),
        "no key in a plan"
    );
    assert!(
        !text.contains(crm_domain::secret::ExposeSecret::expose_secret(&key(2))),
        "no key in a plan"
    );
}
