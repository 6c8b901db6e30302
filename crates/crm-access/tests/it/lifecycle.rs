//! Lifecycle against the simulator: re-running, both modes, preview,
//! extra subscriptions, crash recovery, rollback and the refused key.

use crate::support::World;
use crm_access::{
    AssignHow, ClosureRequest, KeyRefusal, UserRef, VerifyOptions, assign_subscriptions,
    check_key_refused, close_access, preview_access, recover_closure_intents, verify_access,
    verify_batch,
};
use crm_domain::batch::NewJournalEntry;
use crm_domain::observed::UserDraft;
use crm_domain::ports::{AccessCheckRepo, BatchRepo, HostApi, SecretSealer};
use crm_domain::{
    AccessMode, AccessStatus, BatchStatus, JournalOp, JournalState, PlanAction, ResourceKind,
    SecretString, Verdict,
};
use crm_testkit::sim_key;

#[tokio::test]
async fn closing_twice_changes_nothing_and_never_duplicates() {
    let w = World::new().await;
    let batch = w
        .import("deepseek", AccessMode::SelfService, &sim_key("ok", "twice"))
        .await;
    let first = close_access(
        &w.ports(),
        w.caps(),
        &batch,
        &w.provider("deepseek"),
        &ClosureRequest::probe(),
    )
    .await
    .unwrap();
    assert!(!first.plan.is_noop());
    let journal_len = w.env.store.journal(&batch).await.unwrap().len();

    let second = close_access(
        &w.ports(),
        w.caps(),
        &batch,
        &w.provider("deepseek"),
        &ClosureRequest::probe(),
    )
    .await
    .unwrap();
    assert!(second.plan.is_noop(), "{:?}", second.plan.to_plan());
    assert_eq!(
        w.env.store.journal(&batch).await.unwrap().len(),
        journal_len
    );
    assert_eq!(second.key.key_id, first.key.key_id);
    use crm_domain::secret::ExposeSecret;
    assert_eq!(
        second.key.secret.expose_secret(),
        first.key.secret.expose_secret(),
        "read back, same key"
    );

    let email = crm_access::closure::probe_email(&batch, &w.env.provider_ref("deepseek"));
    let users = w.env.host.list_users(Some(email.clone())).await.unwrap();
    assert_eq!(users.iter().filter(|u| u.email == email).count(), 1);
    assert_eq!(users[0].balance, 5.0, "pack's starting balance");
    assert_eq!(
        w.env
            .host
            .list_user_api_keys(users[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
    let kinds: Vec<ResourceKind> = w
        .env
        .store
        .resources(&batch)
        .await
        .unwrap()
        .iter()
        .map(|r| r.kind)
        .filter(|k| k.apply_rank() >= ResourceKind::User.apply_rank())
        .collect();
    assert_eq!(
        kinds,
        [
            ResourceKind::User,
            ResourceKind::BalanceGrant,
            ResourceKind::UserApiKey
        ]
    );
    // Not verified yet: closed but not ready.
    assert_eq!(w.access_status(&batch).await, AccessStatus::NotConfigured);
}

#[tokio::test]
async fn fully_ready_after_closing_both_modes() {
    let w = World::new().await;
    let key = sim_key("ok", "both");
    let ss = w.import("deepseek", AccessMode::SelfService, &key).await;
    let sub = w.import("deepseek", AccessMode::Subscription, &key).await;
    assert_ne!(ss, sub);
    let provider = w.provider("deepseek");

    let k1 = w.close(&ss, "deepseek", None).await;
    verify_access(&w.ports(), &ss, &provider, &k1, &VerifyOptions::default())
        .await
        .unwrap();
    assert_eq!(w.access_status(&ss).await, AccessStatus::SelfServiceReady);

    let k2 = w.close(&sub, "deepseek", None).await;
    let check = verify_access(&w.ports(), &sub, &provider, &k2, &VerifyOptions::default())
        .await
        .unwrap();
    assert_eq!(check.verdict, Verdict::Pass, "{}", check.summary);
    assert_eq!(w.access_status(&ss).await, AccessStatus::FullyReady);
    assert_eq!(w.access_status(&sub).await, AccessStatus::FullyReady);

    // A scheduled re-check (key read back from the host, no completion) keeps it.
    let again = verify_batch(
        &w.ports(),
        &sub,
        &provider,
        &VerifyOptions {
            skip_completion: true,
            upstream_keys: vec![],
            ..w.verify_options()
        },
    )
    .await
    .unwrap();
    assert_eq!(again.verdict, Verdict::Pass);
    assert!(!again.steps.iter().any(|s| s.name == "gateway_chat"));
    assert_eq!(w.access_status(&sub).await, AccessStatus::FullyReady);

    // One mode breaking takes fully_ready away from both.
    let email = crm_access::closure::probe_email(&ss, &w.env.provider_ref("deepseek"));
    let user = w.env.host.list_users(Some(email)).await.unwrap().remove(0);
    w.env
        .host
        .update_user_balance(
            user.id,
            user.balance,
            crm_domain::observed::BalanceOp::Subtract,
            None,
        )
        .await
        .unwrap();
    verify_access(&w.ports(), &ss, &provider, &k1, &VerifyOptions::default())
        .await
        .unwrap();
    assert_eq!(w.access_status(&ss).await, AccessStatus::Broken);
    assert_eq!(w.access_status(&sub).await, AccessStatus::SubscriptionReady);
}

#[tokio::test]
async fn preview_says_what_is_missing_for_the_target_mode() {
    let w = World::new().await;
    let batch = w
        .import(
            "deepseek",
            AccessMode::SelfService,
            &sim_key("ok", "preview"),
        )
        .await;
    let provider = w.provider("deepseek");
    let req = ClosureRequest::probe();
    let before = preview_access(
        &w.ports(),
        w.caps(),
        &batch,
        &provider,
        AccessMode::SelfService,
        &req,
    )
    .await
    .unwrap();
    let actions: Vec<_> = before
        .items
        .iter()
        .map(|i| (i.item.kind, i.item.action))
        .collect();
    assert_eq!(
        actions,
        [
            (ResourceKind::Group, PlanAction::NoOp),
            (ResourceKind::User, PlanAction::Create),
            (ResourceKind::BalanceGrant, PlanAction::Create),
            (ResourceKind::UserApiKey, PlanAction::Create),
        ]
    );
    let other = preview_access(
        &w.ports(),
        w.caps(),
        &batch,
        &provider,
        AccessMode::Subscription,
        &req,
    )
    .await
    .unwrap();
    assert_eq!(other.items[0].item.action, PlanAction::Blocked);
    assert!(
        other
            .items
            .iter()
            .any(|i| i.item.kind == ResourceKind::Subscription)
    );
    // Read-only: nothing was journaled.
    let journal = w.env.store.journal(&batch).await.unwrap();
    assert!(
        journal
            .iter()
            .all(|e| e.kind.apply_rank() < ResourceKind::User.apply_rank())
    );

    w.close(&batch, "deepseek", None).await;
    let after = preview_access(
        &w.ports(),
        w.caps(),
        &batch,
        &provider,
        AccessMode::SelfService,
        &req,
    )
    .await
    .unwrap();
    assert!(after.is_noop());
}

#[tokio::test]
async fn extra_subscriptions_are_assigned_once_and_reused() {
    let w = World::new().await;
    let batch = w
        .import("deepseek", AccessMode::Subscription, &sim_key("ok", "subs"))
        .await;
    w.close(&batch, "deepseek", None).await;
    let provider = w.provider("deepseek");
    let bob = w
        .env
        .host
        .create_user(&UserDraft {
            email: "bob@example.com".into(),
            password: SecretString::from("bob-password-123"),
            username: None,
            notes: None,
            balance: None,
            allowed_groups: vec![],
        })
        .await
        .unwrap();
    let users = [UserRef::Email("bob@example.com".into())];
    let first = assign_subscriptions(&w.ports(), w.caps(), &batch, &provider, &users, Some(7))
        .await
        .unwrap();
    assert_eq!(first[0].how, AssignHow::Created);
    assert_eq!(first[0].user_id, bob.id);
    let again = assign_subscriptions(
        &w.ports(),
        w.caps(),
        &batch,
        &provider,
        &[UserRef::Id(bob.id)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(again[0].how, AssignHow::AlreadyRecorded);
    assert_eq!(again[0].subscription_id, first[0].subscription_id);
    let subs = w.env.host.list_user_subscriptions(bob.id).await.unwrap();
    assert_eq!(subs.len(), 1, "assign never duplicates");

    // A subscription assigned outside crm is reused, not extended.
    let carol = w
        .env
        .host
        .create_user(&UserDraft {
            email: "carol@example.com".into(),
            password: SecretString::from("carol-password-123"),
            username: None,
            notes: None,
            balance: None,
            allowed_groups: vec![],
        })
        .await
        .unwrap();
    let group = subs[0].group_id;
    let theirs = w
        .env
        .host
        .assign_subscription(carol.id, group, 90, None)
        .await
        .unwrap();
    let reused = assign_subscriptions(
        &w.ports(),
        w.caps(),
        &batch,
        &provider,
        &[UserRef::Id(carol.id)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(reused[0].how, AssignHow::Reused);
    assert_eq!(reused[0].subscription_id, theirs.id);
    assert_eq!(
        w.env.host.list_user_subscriptions(carol.id).await.unwrap()[0].expires_at,
        theirs.expires_at
    );

    let unknown = assign_subscriptions(
        &w.ports(),
        w.caps(),
        &batch,
        &provider,
        &[UserRef::Email("nobody@example.com".into())],
        None,
    )
    .await
    .unwrap_err();
    assert!(
        unknown.to_string().contains("nobody@example.com"),
        "{unknown}"
    );
    let wrong_mode = w
        .import("deepseek", AccessMode::SelfService, &sim_key("ok", "subs"))
        .await;
    assert!(
        assign_subscriptions(&w.ports(), w.caps(), &wrong_mode, &provider, &users, None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_user_create_interrupted_by_a_crash_is_found_and_adopted() {
    let w = World::new().await;
    let batch = w
        .import("deepseek", AccessMode::SelfService, &sim_key("ok", "crash"))
        .await;
    let email = crm_access::closure::probe_email(&batch, &w.env.provider_ref("deepseek"));
    // What close_access commits before its first host call, then the host
    // applies it, then the process dies before recording the result.
    let password = SecretString::from("crashed-run-password-0001");
    let ctx = crm_domain::host::SealContext::batch_login_password(&batch, &email);
    let sealed = w.env.store.seal(&ctx, &password).unwrap();
    let entry = w
        .env
        .store
        .record_intent(NewJournalEntry {
            batch_id: batch.clone(),
            intent_key: format!("{batch}/create/user/{email}"),
            op: JournalOp::Create,
            kind: ResourceKind::User,
            natural_key: email.clone(),
            name: email.clone(),
            host_object_id: None,
            spec_digest: String::new(),
            desired: serde_json::json!({"email": email, "probe": true, "login_password_sealed": sealed}),
        })
        .await
        .unwrap();
    let created = w
        .env
        .host
        .create_user(&UserDraft {
            email: email.clone(),
            password,
            username: None,
            notes: None,
            balance: None,
            allowed_groups: vec![],
        })
        .await
        .unwrap();

    let held = w.close(&batch, "deepseek", None).await;
    let journal = w.env.store.journal(&batch).await.unwrap();
    let resolved = journal.iter().find(|e| e.seq == entry.seq).unwrap();
    assert_eq!(resolved.state, JournalState::Applied);
    assert_eq!(resolved.host_object_id, Some(created.id));
    assert_eq!(
        w.env
            .host
            .list_users(Some(email.clone()))
            .await
            .unwrap()
            .iter()
            .filter(|u| u.email == email)
            .count(),
        1,
        "no second user"
    );
    // The crashed run's password still logs in: the key was created with it.
    let check = verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(check.verdict, Verdict::Pass, "{}", check.summary);
    assert_eq!(
        recover_closure_intents(&w.ports(), w.caps(), &batch)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_rolled_back_batch_key_is_refused_and_recorded() {
    let w = World::new().await;
    let batch = w
        .import(
            "deepseek",
            AccessMode::SelfService,
            &sim_key("ok", "rollback"),
        )
        .await;
    let held = w.close(&batch, "deepseek", None).await;
    verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        w.access_status(&batch).await,
        AccessStatus::SelfServiceReady
    );

    let report = w.rollback(&batch).await;
    assert_eq!(report.status, BatchStatus::RolledBack, "{:?}", report.left);
    let (refusal, check) = check_key_refused(&w.ports(), &batch, &held).await.unwrap();
    assert_eq!(refusal, KeyRefusal::Refused, "{}", check.summary);
    assert_eq!(check.verdict, Verdict::Pass);
    let stored = w.env.store.access_checks(&batch).await.unwrap();
    assert!(stored.iter().any(|c| c.id == check.id));
    assert_eq!(w.access_status(&batch).await, AccessStatus::NotConfigured);
    let reclose = close_access(
        &w.ports(),
        w.caps(),
        &batch,
        &w.provider("deepseek"),
        &ClosureRequest::probe(),
    )
    .await
    .unwrap_err();
    assert!(reclose.to_string().contains("rolled_back"), "{reclose}");
    let email = crm_access::closure::probe_email(&batch, &w.env.provider_ref("deepseek"));
    assert!(
        !w.env
            .host
            .list_users(Some(email.clone()))
            .await
            .unwrap()
            .iter()
            .any(|u| u.email == email),
        "the probe user went with the batch"
    );
}

#[tokio::test]
async fn a_key_the_host_still_serves_is_reported() {
    // Legacy hosts keep a key working after its group is deleted.
    let env = crm_testkit::TestEnv::legacy().await;
    let w = World::from_env(env);
    let batch = w
        .import("deepseek", AccessMode::SelfService, &sim_key("ok", "alive"))
        .await;
    let held = w.close(&batch, "deepseek", None).await;
    let group = w
        .env
        .store
        .resources(&batch)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == ResourceKind::Group)
        .unwrap();
    w.env.host.delete_group(group.host_object_id).await.unwrap();
    let (refusal, check) = check_key_refused(&w.ports(), &batch, &held).await.unwrap();
    assert_eq!(refusal, KeyRefusal::StillServed);
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(check.summary.contains("still served"), "{}", check.summary);
}

#[tokio::test]
async fn legacy_host_without_chat_completions_is_checked_through_messages() {
    let w = World::from_env(crm_testkit::TestEnv::legacy().await);
    let batch = w
        .import(
            "deepseek",
            AccessMode::SelfService,
            &sim_key("ok", "legacy"),
        )
        .await;
    let held = w.close(&batch, "deepseek", None).await;
    // No capabilities given: the check probes the host and learns it has
    // no /v1/chat/completions.
    let check = verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    let names: Vec<&str> = check.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"gateway_messages"), "{names:?}");
    assert!(!names.contains(&"gateway_chat"), "{names:?}");
    assert_ne!(
        check.failure_class,
        Some(crm_domain::FailureClass::RouteMissing),
        "{}",
        check.summary
    );
}

#[tokio::test]
async fn one_bad_account_of_two_is_an_advisory() {
    let w = World::new().await;
    let good = sim_key("ok", "pair");
    let bad = sim_key("invalid_key", "pair");
    let report = w
        .provisioner
        .import(crm_provision::ImportRequest {
            provider: w.env.provider_ref("deepseek"),
            pack_version: None,
            mode: AccessMode::SelfService,
            upstream_keys: vec![good, bad],
            accept_url_change: false,
            monitor: None,
        })
        .await
        .unwrap();
    let batch = report.batch.id;
    let held = w.close(&batch, "deepseek", None).await;
    let check = verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        check.verdict,
        Verdict::PassWithAdvisories,
        "{}",
        check.summary
    );
    assert_eq!(
        check.failure_class,
        Some(crm_domain::FailureClass::UpstreamKeyInvalid)
    );
    assert!(
        check.summary.contains("failed the host's account test"),
        "{}",
        check.summary
    );
    assert_eq!(w.access_status(&batch).await, AccessStatus::Degraded);
}

#[tokio::test]
async fn a_gateway_that_drops_connections_is_unreachable() {
    let w = World::new().await;
    let batch = w
        .import("deepseek", AccessMode::SelfService, &sim_key("ok", "drop"))
        .await;
    let held = w.close(&batch, "deepseek", None).await;
    w.env.sim.inject_fault(crm_testkit::crm_sim::FaultSpec {
        method: Some("GET".into()),
        path: "/v1/models".into(),
        nth: 1,
        times: 10,
        action: crm_testkit::crm_sim::FaultAction::Drop,
    });
    let check = verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        check.failure_class,
        Some(crm_domain::FailureClass::HostUnreachable),
        "{}",
        check.summary
    );
    assert_eq!(w.access_status(&batch).await, AccessStatus::Broken);
}

#[tokio::test]
async fn a_key_create_whose_answer_is_lost_is_found_not_duplicated() {
    let w = World::new().await;
    let batch = w
        .import("deepseek", AccessMode::Subscription, &sim_key("ok", "lost"))
        .await;
    for (method, path) in [
        ("POST", "/api/v1/keys"),
        ("POST", "/api/v1/admin/subscriptions/assign"),
    ] {
        w.env.sim.inject_fault(crm_testkit::crm_sim::FaultSpec {
            method: Some(method.into()),
            path: path.into(),
            nth: 1,
            times: 1,
            action: crm_testkit::crm_sim::FaultAction::CommitThenDrop,
        });
    }
    let held = w.close(&batch, "deepseek", None).await;
    let lost = w
        .env
        .sim
        .requests()
        .iter()
        .filter(|r| r.outcome == "committed_then_dropped")
        .count();
    assert_eq!(lost, 2, "both answers were lost after the host committed");
    let email = crm_access::closure::probe_email(&batch, &w.env.provider_ref("deepseek"));
    let user = w.env.host.list_users(Some(email)).await.unwrap().remove(0);
    assert_eq!(
        w.env.host.list_user_api_keys(user.id).await.unwrap().len(),
        1
    );
    assert_eq!(
        w.env
            .host
            .list_user_subscriptions(user.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let journal = w.env.store.journal(&batch).await.unwrap();
    let adopted: Vec<_> = journal
        .iter()
        .filter(|e| e.kind == ResourceKind::UserApiKey || e.kind == ResourceKind::Subscription)
        .map(|e| (e.kind, e.state, e.host_object_id.is_some()))
        .collect();
    assert_eq!(
        adopted,
        [
            (ResourceKind::Subscription, JournalState::Applied, true),
            (ResourceKind::UserApiKey, JournalState::Applied, true),
        ]
    );
    let check = verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(check.verdict, Verdict::Pass, "{}", check.summary);
}

/// An operator's host user (1 USD balance) with one key of theirs, made on
/// the host directly as the operator would, not through crm.
async fn operator_with_key(
    w: &World,
    email: &str,
    password: &SecretString,
    key_name: &str,
    group: Option<crm_domain::HostObjectId>,
) -> (
    crm_domain::observed::HostUser,
    crm_domain::observed::CreatedApiKey,
) {
    let user = w
        .env
        .host
        .create_user(&UserDraft {
            email: email.into(),
            password: password.clone(),
            username: None,
            notes: None,
            balance: Some(1.0),
            allowed_groups: vec![],
        })
        .await
        .unwrap();
    let login = crm_domain::observed::UserLogin {
        email: email.into(),
        password: password.clone(),
    };
    let key = w
        .env
        .host
        .create_user_api_key(
            &login,
            &crm_domain::observed::ApiKeyDraft {
                name: key_name.into(),
                group_id: group,
            },
        )
        .await
        .unwrap();
    (user, key)
}

#[tokio::test]
async fn an_operator_user_and_key_are_adopted_and_rebound() {
    let w = World::new().await;
    let batch = w
        .import(
            "deepseek",
            AccessMode::SelfService,
            &sim_key("ok", "operator"),
        )
        .await;
    let password = SecretString::from("operator-password-123");
    let (alice, laptop) =
        operator_with_key(&w, "alice@example.com", &password, "alice-laptop", None).await;
    let req = ClosureRequest {
        user: crm_access::UserChoice::Existing {
            email: "alice@example.com".into(),
            password,
        },
        key: crm_access::KeyChoice::Rebind {
            key_id: laptop.key.id,
        },
        starting_balance: Some(2.0),
        validity_days: None,
    };
    let out = close_access(&w.ports(), w.caps(), &batch, &w.provider("deepseek"), &req)
        .await
        .unwrap();
    let actions: Vec<_> = out
        .plan
        .items
        .iter()
        .map(|i| (i.item.kind, i.item.action))
        .collect();
    assert_eq!(
        actions,
        [
            (ResourceKind::Group, PlanAction::NoOp),
            (ResourceKind::User, PlanAction::Adopt),
            (ResourceKind::BalanceGrant, PlanAction::Create),
            (ResourceKind::UserApiKey, PlanAction::Adopt),
            (ResourceKind::UserApiKey, PlanAction::Update),
        ]
    );
    assert_eq!(out.key.key_id, laptop.key.id);
    let keys = w.env.host.list_user_api_keys(alice.id).await.unwrap();
    assert_eq!(keys.len(), 1);
    let group = w
        .env
        .store
        .resources(&batch)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == ResourceKind::Group)
        .unwrap();
    assert_eq!(keys[0].group_id, Some(group.host_object_id));
    let user = w
        .env
        .host
        .list_users(Some("alice@example.com".into()))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(user.balance, 3.0, "2 USD added to her 1 USD");
    let check = verify_access(
        &w.ports(),
        &batch,
        &w.provider("deepseek"),
        &out.key,
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(check.verdict, Verdict::Pass, "{}", check.summary);
    // The rebound key's desired spec names the new group and the sealed login.
    let key_res = w
        .env
        .store
        .resources(&batch)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == ResourceKind::UserApiKey)
        .unwrap();
    assert_eq!(key_res.origin, JournalOp::Adopt);
    assert_eq!(
        key_res.desired["group_id"],
        serde_json::json!(group.host_object_id)
    );
    assert!(key_res.desired["login_password_sealed"].is_string());
    assert!(
        !key_res
            .desired
            .to_string()
            .contains("operator-password-123"),
        "sealed, never clear"
    );
}

#[tokio::test]
async fn an_operator_key_moved_from_its_group_goes_back_there_on_rollback() {
    use crm_domain::observed::GroupDraft;
    let w = World::new().await;
    let batch = w
        .import("deepseek", AccessMode::SelfService, &sim_key("ok", "ops"))
        .await;
    // The operator's own group, and a key of theirs in it.
    let ops = w
        .env
        .host
        .create_group(&GroupDraft {
            name: "operator-team".into(),
            description: Some("hand-made".into()),
            platform: crm_domain::Platform::openai(),
            billing: crm_domain::GroupBilling::Standard,
            rate_multiplier: 1.0,
            daily_limit_usd: None,
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            is_exclusive: false,
        })
        .await
        .unwrap();
    let password = SecretString::from("operator-password-456");
    let (bob, key) =
        operator_with_key(&w, "bob@example.com", &password, "bob-ci", Some(ops.id)).await;
    let req = ClosureRequest {
        user: crm_access::UserChoice::Existing {
            email: "bob@example.com".into(),
            password,
        },
        key: crm_access::KeyChoice::Rebind { key_id: key.key.id },
        starting_balance: None,
        validity_days: None,
    };
    close_access(&w.ports(), w.caps(), &batch, &w.provider("deepseek"), &req)
        .await
        .unwrap();
    let recorded = w
        .env
        .store
        .resources(&batch)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == ResourceKind::UserApiKey)
        .unwrap();
    assert_eq!(
        recorded.desired["original_group_id"],
        serde_json::json!(ops.id),
        "the group it came from is recorded"
    );
    let keys = w.env.host.list_user_api_keys(bob.id).await.unwrap();
    assert_ne!(keys[0].group_id, Some(ops.id), "bound to crm's group");
    // A second closure (e.g. a resume) keeps the record of where it came from.
    close_access(&w.ports(), w.caps(), &batch, &w.provider("deepseek"), &req)
        .await
        .unwrap();
    let again = w
        .env
        .store
        .resources(&batch)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == ResourceKind::UserApiKey)
        .unwrap();
    assert_eq!(
        again.desired["original_group_id"],
        serde_json::json!(ops.id)
    );

    let rb = w.rollback(&batch).await;
    assert_eq!(rb.status, crm_domain::BatchStatus::RolledBack, "{rb:?}");
    let keys = w.env.host.list_user_api_keys(bob.id).await.unwrap();
    assert_eq!(keys.len(), 1, "the operator's key is kept");
    assert_eq!(keys[0].group_id, Some(ops.id), "and back in its own group");
}
