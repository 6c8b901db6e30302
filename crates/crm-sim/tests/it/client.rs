//! The simulator driven through the real `crm-sub2api` client: the probe sees
//! each profile's capabilities, the access chain works end to end, and each
//! failure class is observable (host vs upstream).

use std::collections::BTreeMap;

use crm_domain::host::AdminAuth;
use crm_sim::{Profile, SimHandle};
use crm_sub2api::{
    AdminKey, AssignSubscription, ChannelInput, GroupInput, NewAccount, NewKey, NewUser,
    PricingRow, SecretString, Sub2apiClient, UpstreamClient, UpstreamRouting,
};
use secrecy::ExposeSecret;

use crate::support::start;

fn client(sim: &SimHandle) -> Sub2apiClient {
    Sub2apiClient::new(
        sim.base_url(),
        AdminKey::new(SecretString::from(sim.admin_key().to_owned())),
    )
    .expect("client")
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn new_account(
    name: &str,
    platform: &str,
    key: &str,
    base_url: &str,
    group_ids: Vec<i64>,
) -> NewAccount {
    NewAccount {
        name: name.into(),
        notes: None,
        platform: platform.into(),
        account_type: "apikey".into(),
        api_key: secret(key),
        base_url: base_url.into(),
        model_mapping: BTreeMap::from([(
            "deepseek-chat".to_owned(),
            "deepseek-v4-flash".to_owned(),
        )]),
        credential_fields: BTreeMap::new(),
        extra: BTreeMap::new(),
        group_ids,
        concurrency: None,
        priority: None,
        proxy_id: None,
        confirm_mixed_channel_risk: false,
    }
}

#[tokio::test]
async fn probe_reads_each_profiles_capabilities_in_a_counted_number_of_requests() {
    for profile in [Profile::current(), Profile::legacy_2025_12()] {
        let sim = start(profile.clone()).await;
        let c = client(&sim);
        let caps = c.probe_capabilities().await.expect("probe");
        assert_eq!(caps.version.as_deref(), Some(profile.version));
        assert_eq!(caps.channels, profile.channels, "{}", profile.name);
        assert_eq!(
            caps.chat_completions, profile.chat_completions,
            "{}",
            profile.name
        );
        assert_eq!(
            caps.admin_key_rebind, profile.admin_key_rebind,
            "{}",
            profile.name
        );
        assert_eq!(
            caps.payment_plans, profile.payment_plans,
            "{}",
            profile.name
        );
        assert_eq!(
            caps.native_platforms
                .iter()
                .any(|p| p.as_str() == "deepseek"),
            profile.cn_providers
        );
        // The simulator's counters agree with the client's own count: nothing hidden, nothing extra.
        let host_requests: u64 = sim.counters().values().sum();
        assert_eq!(
            host_requests,
            u64::from(c.request_count()),
            "{:?}",
            sim.counters()
        );
    }
}

#[tokio::test]
async fn probe_reports_the_compliance_gate_until_accepted() {
    let sim = start(Profile {
        compliance_gate: true,
        ..Profile::current()
    })
    .await;
    let c = client(&sim);
    let caps = c.probe_capabilities().await.expect("probe");
    assert!(
        matches!(caps.admin_auth, AdminAuth::ComplianceGate { .. }),
        "{:?}",
        caps.admin_auth
    );
    sim.accept_compliance();
    let caps = c.probe_capabilities().await.expect("probe");
    assert_eq!(caps.admin_auth, AdminAuth::Ok);
}

#[tokio::test]
async fn access_chain_through_the_client_then_models_and_chat_succeed() {
    let sim = start(Profile::current()).await;
    let c = client(&sim);
    let base = sim.upstream_url("https://api.deepseek.com");
    let group = c
        .create_group(&GroupInput {
            name: "deepseek-sub".into(),
            platform: "deepseek".into(),
            subscription_type: "subscription".into(),
            ..GroupInput::default()
        })
        .await
        .expect("group");
    let account = c
        .create_account(
            &new_account("ds-1", "deepseek", "sk-upstream-1", &base, vec![group.id]),
            Some("import-1/account-ds-1"),
        )
        .await
        .expect("account");
    assert_eq!(account.group_ids, vec![group.id]);
    assert!(
        account.credentials.secrets.is_empty(),
        "current hosts redact secrets"
    );
    let channel = c
        .create_channel(&ChannelInput {
            name: "deepseek".into(),
            group_ids: vec![group.id],
            model_pricing: vec![PricingRow {
                platform: "deepseek".into(),
                models: vec!["deepseek-chat".into()],
                billing_mode: "token".into(),
                input_price: Some(0.000_002),
                output_price: Some(0.000_008),
                ..PricingRow::default()
            }],
            billing_model_source: "channel_mapped".into(),
            restrict_models: true,
            ..ChannelInput::default()
        })
        .await
        .expect("channel");
    assert_eq!(channel.group_ids, vec![group.id]);
    let user = c
        .create_user(&NewUser {
            email: "buyer@example.com".into(),
            password: secret("hunter22"),
            username: None,
            notes: None,
            balance: None,
            concurrency: None,
            allowed_groups: vec![],
        })
        .await
        .expect("user");
    let sub = c
        .assign_subscription(&AssignSubscription {
            user_id: user.id,
            group_id: group.id,
            validity_days: 30,
            notes: String::new(),
        })
        .await
        .expect("subscription");
    assert_eq!(sub.status, "active");
    let session = c
        .login("buyer@example.com", &secret("hunter22"))
        .await
        .expect("login");
    let key = session
        .create_key(&NewKey {
            name: "crm".into(),
            group_id: Some(group.id),
        })
        .await
        .expect("key");
    let key = key.key.expect("full key in the DTO");

    let models = c.gateway_models(&key).await.expect("models");
    assert!(models.outcome.ok, "{:?}", models.outcome);
    assert_eq!(models.model_ids, vec!["deepseek-chat".to_owned()]);
    let chat = c.gateway_chat(&key, "deepseek-chat").await.expect("chat");
    assert!(chat.ok, "{chat:?}");
    assert_eq!(chat.status, Some(200));

    let test = c
        .test_account(account.id, Some("deepseek-chat"))
        .await
        .expect("account test");
    assert!(test.success && test.sse_content_type, "{test:?}");
    assert_eq!(test.model.as_deref(), Some("deepseek-v4-flash"));

    // The key never appears in the simulator's dump.
    assert!(!sim.state_dump().to_string().contains(key.expose_secret()));
}

#[tokio::test]
async fn failure_classes_are_observable_through_the_client() {
    let sim = start(Profile::current()).await;
    let c = client(&sim);
    let upstream = UpstreamClient::new(UpstreamRouting::ViaPrefix(sim.upstream_prefix()))
        .expect("upstream client");
    let real_base = "https://api.deepseek.com";
    let mut n = 0;
    for (upstream_key, gateway_status, gateway_type, direct_status) in [
        ("sim-invalid_key-1", 502, "upstream_error", 401),
        ("sim-insufficient_balance-1", 502, "upstream_error", 402),
        ("sim-quota_exhausted-1", 429, "rate_limit_error", 429),
        ("sim-host_incompatible-1", 502, "upstream_error", 200),
    ] {
        n += 1;
        let group = c
            .create_group(&GroupInput {
                name: format!("g{n}"),
                platform: "deepseek".into(),
                subscription_type: "standard".into(),
                ..GroupInput::default()
            })
            .await
            .expect("group");
        c.create_account(
            &new_account(
                &format!("a{n}"),
                "deepseek",
                upstream_key,
                real_base,
                vec![group.id],
            ),
            None,
        )
        .await
        .expect("account");
        let email = format!("u{n}@example.com");
        c.create_user(&NewUser {
            email: email.clone(),
            password: secret("hunter22"),
            username: None,
            notes: None,
            balance: Some(1.0),
            concurrency: None,
            allowed_groups: vec![],
        })
        .await
        .expect("user");
        let session = c.login(&email, &secret("hunter22")).await.expect("login");
        let key = session
            .create_key(&NewKey {
                name: "k".into(),
                group_id: Some(group.id),
            })
            .await
            .expect("key");
        let chat = c
            .gateway_chat(&key.key.expect("key"), "deepseek-chat")
            .await
            .expect("chat");
        assert_eq!(
            chat.status,
            Some(gateway_status),
            "{upstream_key}: {chat:?}"
        );
        assert_eq!(
            chat.error_type.as_deref(),
            Some(gateway_type),
            "{upstream_key}"
        );
        let direct = upstream
            .chat(real_base, &secret(upstream_key), "deepseek-v4-flash")
            .await
            .expect("direct");
        assert_eq!(
            direct.status,
            Some(direct_status),
            "{upstream_key}: {direct:?}"
        );
    }
    let broke = c
        .gateway_chat(&secret("sk-not-a-key"), "deepseek-chat")
        .await
        .expect("chat");
    assert_eq!(
        (broke.status, broke.error_type.as_deref()),
        (Some(401), Some("INVALID_API_KEY"))
    );
}

#[tokio::test]
async fn a_lost_create_answer_is_an_error_for_the_client_but_the_account_exists() {
    let sim = start(Profile::current()).await;
    let c = client(&sim);
    sim.inject_fault(crm_sim::FaultSpec {
        method: Some("POST".into()),
        path: "/api/v1/admin/accounts".into(),
        nth: 1,
        times: 1,
        action: crm_sim::FaultAction::CommitThenDrop,
    });
    let base = sim.upstream_url("https://api.deepseek.com");
    let lost = c
        .create_account(
            &new_account("lost", "deepseek", "sk-1", &base, vec![]),
            None,
        )
        .await;
    assert!(lost.is_err(), "{lost:?}");
    // Exactly one create reached the host, and a lookup by name finds what it committed.
    assert_eq!(sim.count("POST", "/api/v1/admin/accounts"), 1);
    let found = c
        .list_accounts(&crm_sub2api::AccountFilter {
            search: Some("lost".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(found.len(), 1);
}
