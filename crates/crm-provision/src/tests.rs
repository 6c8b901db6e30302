//! Use-case tests against the in-memory fake host and store: import, no-op
//! re-import, the fault matrix with resume and rollback, rotation, upgrade,
//! leases and pack-scoped rollback.

use crate::fakehost::{FakeHost, Fault};
use crate::fakes::*;
use crate::fixtures::{self, installed, key};
use crate::*;
use crm_domain::ports::{BatchRepo, LeaseRepo, PackRepo};
use crm_domain::{AccessMode, BatchStatus, JournalOp, JournalState, ProviderRef, ResourceKind};
use std::sync::Arc;
use std::time::Duration;

struct Env {
    host: Arc<FakeHost>,
    store: Arc<FakeStore>,
    prov: Provisioner,
}

async fn env(current: bool) -> Env {
    let caps = fixtures::caps(current);
    let host = Arc::new(FakeHost::new(caps.clone()));
    let store = Arc::new(FakeStore::default());
    store
        .install_pack(installed("cn-official", "1.0.0", 2.0))
        .await
        .unwrap();
    let prov = Provisioner {
        host_id: "h1".into(),
        host: host.clone(),
        caps,
        batches: store.clone(),
        leases: store.clone(),
        packs: store.clone(),
        clock: Arc::new(FixedClock),
        ids: Arc::new(SeqIds::default()),
        sealer: Arc::new(FakeSealer),
        fingerprinter: Arc::new(fixtures::fingerprinter()),
        holder: "test".into(),
        lease_ttl: Duration::from_secs(60),
        // Sequential: these tests check the exact journal order (the
        // simulator suite covers concurrency).
        max_concurrency: 1,
    };
    Env { host, store, prov }
}

fn req(keys: &[u32]) -> ImportRequest {
    ImportRequest {
        provider: ProviderRef::new("cn-official", "deepseek"),
        pack_version: None,
        mode: AccessMode::SelfService,
        upstream_keys: keys.iter().map(|n| key(*n)).collect(),
        accept_url_change: false,
        monitor: None,
    }
}

fn journal_states(store: &FakeStore) -> Vec<(JournalOp, ResourceKind, JournalState)> {
    store
        .journal
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.op, e.kind, e.state))
        .collect()
}

/// Names of crm objects on the host, sorted (ids stripped).
fn names(host: &FakeHost) -> Vec<String> {
    let mut v: Vec<String> = host
        .crm_objects()
        .into_iter()
        .map(|o| o.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn import_creates_exactly_the_plan_marked_and_reimport_is_a_noop() {
    for current in [true, false] {
        let e = env(current).await;
        let preview = e.prov.preview(&req(&[1, 2])).await.unwrap();
        assert_eq!(e.host.mutations(), 0, "preview never mutates");
        let r = e.prov.import(req(&[1, 2])).await.unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied, "{:?}", r.error);
        assert_eq!(r.plan, preview.plan);
        {
            let s = e.host.state.lock().unwrap();
            assert_eq!(s.accounts.len(), 2);
            assert_eq!(s.groups.len(), 1);
            assert_eq!(s.channels.len(), usize::from(current));
            let marker = crm_domain::ownership::marker(&r.batch.id);
            for a in &s.accounts {
                assert_eq!(a.group_ids, vec![s.groups[0].id]);
                if current {
                    assert!(a.notes.as_deref().unwrap().contains(&marker));
                    assert_eq!(a.platform.as_str(), "deepseek");
                    assert_eq!(a.credential_fields["api_protocol"], "chat_completions");
                } else {
                    // No chat completions on this host: the provider's
                    // Anthropic endpoint, not openai (which speaks Responses).
                    assert_eq!(a.platform.as_str(), "anthropic");
                    assert_eq!(
                        a.base_url.as_deref(),
                        Some("https://api.deepseek.com/anthropic")
                    );
                    assert!(a.extra.is_empty());
                }
            }
            assert!(
                s.groups[0]
                    .description
                    .as_deref()
                    .unwrap()
                    .contains(&marker)
            );
            for c in &s.channels {
                assert!(c.description.as_deref().unwrap().contains(&marker));
                assert_eq!(c.group_ids, vec![s.groups[0].id]);
                assert!(c.restrict_models);
                assert_eq!(c.billing_model_source, "channel_mapped");
            }
        }
        let before = names(&e.host);
        let mutations = e.host.mutations();
        let again = e.prov.import(req(&[1, 2])).await.unwrap();
        assert!(again.noop && again.plan.is_noop(), "{:#?}", again.plan);
        assert_eq!(again.batch.id, r.batch.id, "the live batch is reused");
        assert_eq!(e.host.mutations(), mutations);
        assert_eq!(names(&e.host), before);
        // Adding a key creates exactly one account.
        let more = e.prov.import(req(&[3])).await.unwrap();
        assert_eq!(more.batch.status, BatchStatus::Applied);
        assert_eq!(more.plan.count(crm_domain::PlanAction::Create), 1);
        assert_eq!(e.host.state.lock().unwrap().accounts.len(), 3);
        assert_eq!(e.host.mutations(), mutations + 1, "created already bound");
    }
}

#[tokio::test]
async fn fault_matrix_resume_and_rollback_end_clean() {
    let (mut cases, mut violations) = (0, Vec::new());
    // With a monitor: on `current` its create is faulted too.
    let req = |keys: &[u32]| ImportRequest {
        monitor: Some(true),
        ..req(keys)
    };
    for current in [true, false] {
        // A clean run tells how many mutating calls an import makes and what it leaves.
        let clean = env(current).await;
        clean.prov.import(req(&[1, 2])).await.unwrap();
        let expected = names(&clean.host);
        let n = clean.host.mutations();
        for k in 1..=n {
            for fault in Fault::ALL {
                for then_rollback in [false, true] {
                    cases += 1;
                    let e = env(current).await;
                    e.host.fail_mutation(k, fault);
                    let r = e.prov.import(req(&[1, 2])).await.unwrap();
                    let case =
                        format!("current={current} k={k} {fault:?} rollback={then_rollback}");
                    let status = r.batch.status;
                    if !matches!(
                        status,
                        BatchStatus::PartiallyApplied
                            | BatchStatus::Failed
                            | BatchStatus::NeedsOperator
                    ) {
                        violations.push(format!("{case}: import ended {status}"));
                        continue;
                    }
                    // Exact journal: k-1 applied entries, then the faulted one.
                    let j = journal_states(&e.store);
                    let faulted_state = j.get(k as usize - 1).map(|x| x.2);
                    let want = match fault {
                        // The create happened: found and adopted, but the run still stops.
                        Fault::CommitThenLost => JournalState::Applied,
                        _ => JournalState::Failed,
                    };
                    if j.len() != k as usize
                        || j[..k as usize - 1]
                            .iter()
                            .any(|x| x.2 != JournalState::Applied)
                        || (faulted_state != Some(want)
                            // an update's unknown outcome is "failed, re-issue"
                            && !(fault == Fault::CommitThenLost && faulted_state == Some(JournalState::Failed)))
                    {
                        violations.push(format!("{case}: journal {j:?}"));
                    }
                    let applied_before = j.iter().any(|x| x.2 == JournalState::Applied);
                    let want_status = if applied_before {
                        BatchStatus::PartiallyApplied
                    } else {
                        BatchStatus::Failed
                    };
                    if status != want_status {
                        violations.push(format!("{case}: status {status}, want {want_status}"));
                    }
                    if then_rollback {
                        let rb = e.prov.rollback(&r.batch.id).await.unwrap();
                        if rb.status != BatchStatus::RolledBack || !e.host.crm_objects().is_empty()
                        {
                            violations.push(format!(
                                "{case}: rollback {rb:?} left {:?}",
                                e.host.crm_objects()
                            ));
                        }
                    } else {
                        let rs = e
                            .prov
                            .resume(&r.batch.id, vec![key(1), key(2)])
                            .await
                            .unwrap();
                        if rs.batch.status != BatchStatus::Applied || names(&e.host) != expected {
                            violations.push(format!(
                                "{case}: resume {} {:?} left {:?}",
                                rs.batch.status,
                                rs.error,
                                names(&e.host)
                            ));
                        }
                    }
                }
            }
        }
    }
    println!(
        "fault matrix (fake host): {cases} cases, {} violations",
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    // Group + channel + 2 accounts + monitor on `current`, no channel and
    // no monitor on legacy: every mutation of both imports is faulted with
    // every fault.
    assert_eq!(cases, (5 + 3) * Fault::ALL.len() * 2);
}

#[tokio::test]
async fn a_monitor_is_created_last_marked_adopted_after_a_lost_answer_and_rolled_back() {
    let e = env(true).await;
    let with = |keys: &[u32]| ImportRequest {
        monitor: Some(true),
        ..req(keys)
    };
    // Group, channel, account, then the monitor: its answer is lost after
    // the host made it.
    e.host.fail_mutation(4, Fault::CommitThenLost);
    let r = e.prov.import(with(&[1])).await.unwrap();
    let monitors = |e: &Env| e.host.state.lock().unwrap().monitors.clone();
    assert_eq!(monitors(&e).len(), 1);
    let m = &monitors(&e)[0];
    assert_eq!(
        crm_domain::ownership::parse_marker(&m.group_name),
        Some(r.batch.id.clone())
    );
    assert_eq!(
        (m.provider.as_str(), m.api_mode.as_str()),
        ("openai", "chat_completions")
    );
    let j = journal_states(&e.store);
    assert_eq!(
        j.last(),
        Some(&(
            JournalOp::Create,
            ResourceKind::Monitor,
            JournalState::Applied
        )),
        "found by name and recorded: {j:?}"
    );
    // Resume with no key: the monitor exists, nothing is created twice.
    let rs = e.prov.resume(&r.batch.id, vec![]).await.unwrap();
    assert_eq!(rs.batch.status, BatchStatus::Applied, "{:?}", rs.error);
    assert_eq!(monitors(&e).len(), 1);
    // Re-import without --monitor keeps it (an import never deletes one).
    let again = e.prov.import(req(&[1])).await.unwrap();
    assert!(again.noop, "{:?}", again.plan);
    let rb = e.prov.rollback(&r.batch.id).await.unwrap();
    assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
    assert!(monitors(&e).is_empty());
    assert!(
        rb.deleted.iter().any(|d| d.starts_with("monitor ")),
        "{rb:?}"
    );
    // A legacy host has no monitors: a note, and the import applies.
    let e = env(false).await;
    let r = e.prov.import(with(&[1])).await.unwrap();
    assert_eq!(r.batch.status, BatchStatus::Applied);
    assert!(
        r.plan
            .notes
            .iter()
            .any(|n| n.contains("no channel monitors"))
    );
}

#[tokio::test]
async fn a_monitor_to_create_without_any_given_key_is_blocked_and_the_rest_applies() {
    let e = env(true).await;
    let r = e.prov.import(req(&[1])).await.unwrap();
    assert_eq!(r.batch.status, BatchStatus::Applied);
    // The monitor is asked for later, with no key at hand.
    let r = e
        .prov
        .import(ImportRequest {
            monitor: Some(true),
            ..req(&[])
        })
        .await
        .unwrap();
    assert_eq!(r.batch.status, BatchStatus::PartiallyApplied);
    let why = r.error.unwrap();
    assert!(why.contains("--upstream-keys-file"), "{why}");
    assert!(e.host.state.lock().unwrap().monitors.is_empty());
    // Resumed with the key, it is created.
    let rs = e.prov.resume(&r.batch.id, vec![key(1)]).await.unwrap();
    assert_eq!(rs.batch.status, BatchStatus::Applied, "{:?}", rs.error);
    assert_eq!(e.host.state.lock().unwrap().monitors.len(), 1);
}

#[tokio::test]
async fn a_held_lease_refuses_with_the_holder() {
    let e = env(true).await;
    let lease = e
        .store
        .acquire_lease(
            &crm_domain::ops::Lease::provider_scope(&"h1".into(), &req(&[]).provider),
            "cli:42@vm",
            "import",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let err = e.prov.import(req(&[1])).await.unwrap_err();
    assert!(err.to_string().contains("cli:42@vm"), "{err}");
    assert!(e.store.batches.lock().unwrap().is_empty());
    e.store.release_lease(&lease.id).await.unwrap();
    assert!(e.prov.import(req(&[1])).await.is_ok());
}

#[tokio::test]
async fn rotation_replaces_the_key_in_place_and_upgrade_records_the_version() {
    let e = env(true).await;
    let r = e.prov.import(req(&[1])).await.unwrap();
    let old = fixtures::fp(1);
    let account_id = e.host.state.lock().unwrap().accounts[0].id;
    let b = e
        .prov
        .rotate_key(&r.batch.id, &old.hmac[..8], key(9))
        .await
        .unwrap();
    assert_eq!(b.upstream_keys, vec![fixtures::fp(9)]);
    let s = e.host.state.lock().unwrap().accounts.clone();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].id, account_id, "same account, no downtime");
    assert_eq!(
        s[0].name,
        desired::account_name(&r.batch.provider, &fixtures::fp(9))
    );
    let last = e.store.journal.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (last.op, last.state),
        (JournalOp::RotateKey, JournalState::Applied)
    );
    // Re-import with no key is still a no-op (the rotated key is the batch's key).
    let again = e.prov.import(req(&[])).await.unwrap();
    assert!(again.noop, "{:#?}", again.plan);

    // Pack upgrade: cheaper input price.
    e.store
        .install_pack(installed("cn-official", "1.1.0", 1.0))
        .await
        .unwrap();
    let p = e.prov.preview_upgrade(&r.batch.id, None).await.unwrap();
    assert_eq!(
        p.plan.count(crm_domain::PlanAction::Update),
        1,
        "{:#?}",
        p.plan
    );
    let up = e.prov.upgrade(&r.batch.id, None, false).await.unwrap();
    assert_eq!(up.batch.status, BatchStatus::Applied);
    assert_eq!(up.batch.pack_version, "1.1.0");
    assert_eq!(up.batch.pack_checksum, "sha256-cn-official-1.1.0");
    let price = e.host.state.lock().unwrap().channels[0].model_pricing[0]
        .input_price
        .unwrap();
    assert!((price - 1.4e-7).abs() < 1e-15, "{price}");
    assert!(
        e.prov
            .preview_upgrade(&r.batch.id, None)
            .await
            .unwrap()
            .plan
            .is_noop()
    );
}

#[tokio::test]
async fn two_packs_with_deepseek_are_disjoint_and_roll_back_separately() {
    let e = env(true).await;
    e.store
        .install_pack(installed("my-pack", "0.1.0", 3.0))
        .await
        .unwrap();
    let a = e.prov.import(req(&[1])).await.unwrap();
    let mut other = req(&[2]);
    other.provider = ProviderRef::new("my-pack", "deepseek");
    let b = e.prov.import(other).await.unwrap();
    assert_ne!(a.batch.id, b.batch.id);
    assert_eq!(b.batch.status, BatchStatus::Applied);
    let all = names(&e.host);
    assert_eq!(all.len(), 6);
    let reports = e
        .prov
        .rollback_provider(&ProviderRef::new("my-pack", "deepseek"))
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, BatchStatus::RolledBack);
    let left = names(&e.host);
    assert_eq!(left.len(), 3);
    assert!(
        left.iter().all(|n| n.contains("crm-cn-official.deepseek")),
        "{left:?}"
    );
    assert_eq!(
        e.store.get_batch(&a.batch.id).await.unwrap().status,
        BatchStatus::Applied
    );
}

#[tokio::test]
async fn blocked_plans_write_nothing() {
    let e = env(true).await;
    let mut r = req(&[1]);
    r.mode = AccessMode::Subscription;
    let mut pack = installed("cn-official", "2.0.0", 2.0);
    pack.manifest.providers[0].access.modes = vec![AccessMode::SelfService];
    e.store.install_pack(pack).await.unwrap();
    let err = e.prov.import(r).await.unwrap_err();
    assert!(matches!(err, ProvisionError::Blocked { .. }), "{err}");
    assert_eq!(e.host.mutations(), 0);
    assert!(e.store.batches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn both_modes_share_one_account_per_key_and_roll_back_independently() {
    let e = env(true).await;
    let a = e.prov.import(req(&[1])).await.unwrap();
    let mut sub = req(&[1]);
    sub.mode = AccessMode::Subscription;
    let b = e.prov.import(sub).await.unwrap();
    assert_eq!(b.batch.status, BatchStatus::Applied, "{:?}", b.error);
    assert_eq!(
        b.plan.items[0].action,
        crm_domain::PlanAction::Adopt,
        "same key, same natural key: adopted, never duplicated"
    );
    {
        let s = e.host.state.lock().unwrap();
        assert_eq!(s.accounts.len(), 1);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.accounts[0].group_ids.len(), 2);
    }
    // B recorded the account as it is: notes still name A (crm never rewrites them).
    let shared = e.store.resources(&b.batch.id).await.unwrap();
    let acct = shared
        .iter()
        .find(|r| r.kind == ResourceKind::Account)
        .unwrap();
    let a_marker = crm_domain::ownership::marker(&a.batch.id);
    assert!(acct.desired["notes"].as_str().unwrap().contains(&a_marker));
    let rb = e.prov.rollback(&a.batch.id).await.unwrap();
    assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
    assert_eq!(rb.kept.len(), 1, "{rb:?}");
    {
        let s = e.host.state.lock().unwrap();
        assert_eq!(s.accounts.len(), 1, "still used by the subscription batch");
        assert_eq!(s.accounts[0].group_ids, vec![s.groups[0].id]);
    }
    let again = e.prov.import({
        let mut r = req(&[]);
        r.mode = AccessMode::Subscription;
        r
    });
    assert!(again.await.unwrap().noop);
    let rb = e.prov.rollback(&b.batch.id).await.unwrap();
    assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
    assert!(
        e.host.crm_objects().is_empty(),
        "{:?}",
        e.host.crm_objects()
    );
}

#[tokio::test]
async fn several_matches_need_an_operator_and_resume_adopts_after_the_fix() {
    for current in [true, false] {
        let e = env(current).await;
        // The group is created first, then the channel (hosts with
        // channels) and the account: fault the account's create.
        e.host
            .fail_mutation(if current { 3 } else { 2 }, Fault::CommitTwiceThenLost);
        let r = e.prov.import(req(&[1])).await.unwrap();
        assert_eq!(r.batch.status, BatchStatus::NeedsOperator, "{:?}", r.error);
        assert!(
            r.error.as_deref().unwrap().contains("2 objects match"),
            "{:?}",
            r.error
        );
        let mut want = vec![(
            JournalOp::Create,
            ResourceKind::Group,
            JournalState::Applied,
        )];
        if current {
            want.push((
                JournalOp::Create,
                ResourceKind::Channel,
                JournalState::Applied,
            ));
        }
        want.push((
            JournalOp::Create,
            ResourceKind::Account,
            JournalState::NeedsOperator,
        ));
        assert_eq!(journal_states(&e.store), want);
        // Resume without a fix changes nothing on the host.
        let m = e.host.mutations();
        let stuck = e.prov.resume(&r.batch.id, vec![key(1)]).await.unwrap();
        assert_eq!(stuck.batch.status, BatchStatus::NeedsOperator);
        assert_eq!(e.host.mutations(), m);
        // The operator deletes one copy; resume adopts the other and finishes.
        e.host.state.lock().unwrap().accounts.pop();
        let done = e.prov.resume(&r.batch.id, vec![]).await.unwrap();
        assert_eq!(done.batch.status, BatchStatus::Applied, "{:?}", done.error);
        let s = e.host.state.lock().unwrap();
        assert_eq!(s.accounts.len(), 1);
        assert_eq!(s.accounts[0].group_ids, vec![s.groups[0].id]);
        drop(s);
        let j = e.store.journal.lock().unwrap();
        let account = j.iter().find(|x| x.kind == ResourceKind::Account).unwrap();
        assert_eq!(account.state, JournalState::Applied);
        assert!(
            account
                .detail
                .as_deref()
                .unwrap()
                .contains("adopted the single object")
        );
    }
}

/// A group of a later generation (`<name>-g2`, made on a host that keeps
/// deleted names) is found by name like the base name, so a crm without the
/// batch's records adopts it instead of failing on the name conflict.
#[tokio::test]
async fn a_group_of_a_later_generation_is_found_by_name() {
    let e = env(false).await;
    let base = crate::desired::group_name(&req(&[1]).provider, AccessMode::SelfService);
    {
        let mut s = e.host.state.lock().unwrap();
        let old = crm_domain::BatchId::new("b-old");
        let mut g = crate::fixtures::group_from(
            &crate::desired::group_draft(
                &crate::fixtures::deepseek("1.0.0", 2.0),
                &crate::desired::choose_platform(
                    &crate::fixtures::deepseek("1.0.0", 2.0).spec,
                    &e.prov.caps,
                )
                .unwrap(),
                AccessMode::SelfService,
                &old,
            ),
            40,
        );
        g.name = crate::desired::group_generation_name(&base, 2);
        s.groups.push(g);
    }
    let p = e.prov.preview(&req(&[1])).await.unwrap();
    let item = p
        .plan
        .items
        .iter()
        .find(|i| i.kind == ResourceKind::Group)
        .unwrap();
    assert_eq!(item.action, crm_domain::PlanAction::Adopt, "{item:?}");
    assert_eq!(item.host_object_id, Some(crm_domain::HostObjectId(40)));
    // Adopting it re-marks it for the new batch and keeps its name: renaming
    // it to the base name would hit the deleted group that holds it.
    let r = e.prov.import(req(&[1])).await.unwrap();
    assert_eq!(r.batch.status, BatchStatus::Applied, "{:?}", r.error);
    {
        let s = e.host.state.lock().unwrap();
        assert_eq!(s.groups.len(), 1);
        assert_eq!(s.groups[0].name, format!("{base}-g2"));
        let marker = crm_domain::ownership::marker(&r.batch.id);
        assert!(
            s.groups[0]
                .description
                .as_deref()
                .unwrap()
                .contains(&marker)
        );
    }
    // Not a generation: a longer name that only starts like it.
    assert!(!crate::desired::is_group_generation(
        &format!("{base}-gx"),
        &base
    ));
    assert!(!crate::desired::is_group_generation(
        &format!("{base}-g1"),
        &base
    ));
}
