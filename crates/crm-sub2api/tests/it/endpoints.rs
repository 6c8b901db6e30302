//! Every endpoint the client uses: exact method, path, auth header and JSON
//! body sent. Each mock expects exactly one matching request; wiremock
//! verifies the expectations when the server drops.

use crate::support::*;
use crm_sub2api::*;
use serde_json::json;
use std::collections::BTreeMap;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

fn admin(m: &str, p: &str) -> MockBuilder {
    Mock::given(method(m))
        .and(path(format!("/api/v1/admin{p}")))
        .and(header("x-api-key", ADMIN_KEY))
}

fn deleted() -> ResponseTemplate {
    ok_envelope(json!({"message": "deleted"}))
}

#[tokio::test]
async fn account_endpoints() {
    let server = MockServer::start().await;
    let c = client(&server);

    admin("GET", "/accounts")
        .and(query_param("platform", "deepseek"))
        .and(query_param("group", "21"))
        .and(query_param("page", "1"))
        .and(query_param("page_size", "100"))
        .respond_with(json(200, "current/accounts-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/accounts/101")
        .respond_with(json(200, "current/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/accounts")
        .and(header("Idempotency-Key", "crm-b-0001-3"))
        .and(body_json(json!({
            "name": "crm-deepseek-a1b2",
            "notes": "crm:batch=b-0001",
            "platform": "deepseek",
            "type": "apikey",
            "credentials": {
                "api_key": "sk-upstream-test-key-0001",
                "base_url": "https://api.deepseek.com",
                "model_mapping": {"deepseek-chat": "deepseek-chat"},
                "account_mode": "payg"
            },
            "extra": {},
            "group_ids": [21],
            "concurrency": 3,
            "priority": 1
        })))
        .respond_with(json(200, "current/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("PUT", "/accounts/101")
        .and(body_json(
            json!({"name": "renamed", "group_ids": [21, 22], "status": "inactive"}),
        ))
        .respond_with(json(200, "current/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("DELETE", "/accounts/101")
        .respond_with(deleted())
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/accounts/101/schedulable")
        .and(body_json(json!({"schedulable": false})))
        .respond_with(json(200, "current/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/accounts/101/clear-error")
        .respond_with(json(200, "current/account.json"))
        .expect(1)
        .mount(&server)
        .await;

    let filter = AccountFilter {
        platform: Some("deepseek".into()),
        group: Some(21),
        ..Default::default()
    };
    assert_eq!(c.list_accounts(&filter).await.unwrap().len(), 2);
    assert_eq!(c.get_account(101).await.unwrap().id, 101);
    let new = NewAccount {
        name: "crm-deepseek-a1b2".into(),
        notes: Some("crm:batch=b-0001".into()),
        platform: "deepseek".into(),
        account_type: "apikey".into(),
        api_key: SecretString::from("sk-upstream-test-key-0001"),
        base_url: "https://api.deepseek.com".into(),
        model_mapping: BTreeMap::from([("deepseek-chat".into(), "deepseek-chat".into())]),
        credential_fields: BTreeMap::from([("account_mode".into(), json!("payg"))]),
        extra: BTreeMap::new(),
        group_ids: vec![21],
        concurrency: Some(3),
        priority: Some(1),
        proxy_id: None,
        confirm_mixed_channel_risk: false,
    };
    let created = c.create_account(&new, Some("crm-b-0001-3")).await.unwrap();
    assert_eq!(created.name, "crm-deepseek-a1b2");
    let update = AccountUpdate {
        name: Some("renamed".into()),
        group_ids: Some(vec![21, 22]),
        status: Some("inactive".into()),
        ..Default::default()
    };
    c.update_account(101, &update).await.unwrap();
    c.delete_account(101).await.unwrap();
    c.set_account_schedulable(101, false).await.unwrap();
    assert_eq!(c.clear_account_error(101).await.unwrap().status, "active");
}

#[tokio::test]
async fn group_endpoints() {
    let server = MockServer::start().await;
    let c = client(&server);
    let group = json!({"code":0,"message":"success","data":{"id":21,"name":"crm-deepseek","platform":"deepseek","subscription_type":"standard","status":"active"}});

    admin("GET", "/groups")
        .and(query_param("page", "1"))
        .respond_with(json(200, "current/groups-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/groups/all")
        .and(query_param("platform", "deepseek"))
        .respond_with(ok_envelope(json!([{"id": 21, "name": "crm-deepseek"}])))
        .expect(1)
        .mount(&server)
        .await;
    let body = json!({
        "name": "crm-deepseek-sub",
        "description": "crm:batch=b-0001",
        "platform": "deepseek",
        "rate_multiplier": 1.0,
        "is_exclusive": true,
        "subscription_type": "subscription",
        "monthly_limit_usd": 150.0
    });
    admin("POST", "/groups")
        .and(body_json(body.clone()))
        .respond_with(json_value(200, group.clone()))
        .expect(1)
        .mount(&server)
        .await;
    let mut update_body = body.clone();
    update_body["status"] = json!("inactive");
    admin("PUT", "/groups/21")
        .and(body_json(update_body))
        .respond_with(json_value(200, group))
        .expect(1)
        .mount(&server)
        .await;
    admin("DELETE", "/groups/21")
        .respond_with(deleted())
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/groups/21/api-keys")
        .and(query_param("page_size", "100"))
        .respond_with(json(200, "current/user-api-keys-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/groups/22/subscriptions")
        .respond_with(json(200, "current/group-subscriptions-page.json"))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(c.list_groups().await.unwrap().len(), 2);
    assert_eq!(c.all_groups(Some("deepseek")).await.unwrap()[0].id, 21);
    let mut input = GroupInput {
        name: "crm-deepseek-sub".into(),
        description: Some("crm:batch=b-0001".into()),
        platform: "deepseek".into(),
        rate_multiplier: Some(1.0),
        is_exclusive: true,
        subscription_type: "subscription".into(),
        monthly_limit_usd: Some(150.0),
        ..Default::default()
    };
    c.create_group(&input).await.unwrap();
    input.status = Some("inactive".into());
    c.update_group(21, &input).await.unwrap();
    c.delete_group(21).await.unwrap();
    assert_eq!(c.group_api_keys(21).await.unwrap().len(), 2);
    assert_eq!(c.group_subscriptions(22).await.unwrap().len(), 2);
}

#[tokio::test]
async fn channel_endpoints() {
    let server = MockServer::start().await;
    let c = client(&server);
    let input = ChannelInput {
        name: "crm-deepseek".into(),
        description: Some("crm:batch=b-0001".into()),
        group_ids: vec![21],
        model_pricing: vec![PricingRow {
            platform: "deepseek".into(),
            models: vec!["deepseek-chat".into()],
            billing_mode: "token".into(),
            input_price: Some(0.00000027),
            output_price: Some(0.0000011),
            ..Default::default()
        }],
        model_mapping: BTreeMap::new(),
        billing_model_source: "channel_mapped".into(),
        restrict_models: true,
        status: None,
    };
    let body = json!({
        "name": "crm-deepseek",
        "description": "crm:batch=b-0001",
        "group_ids": [21],
        "model_pricing": [{
            "platform": "deepseek", "models": ["deepseek-chat"], "billing_mode": "token",
            "input_price": 0.00000027, "output_price": 0.0000011,
            "cache_write_price": null, "cache_read_price": null
        }],
        "model_mapping": {},
        "billing_model_source": "channel_mapped",
        "restrict_models": true
    });
    admin("GET", "/channels")
        .respond_with(json(200, "current/channels-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/channels/5")
        .respond_with(json(200, "current/channel.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/channels")
        .and(body_json(body.clone()))
        .respond_with(json(200, "current/channel.json"))
        .expect(1)
        .mount(&server)
        .await;
    let mut update_body = body;
    update_body["status"] = json!("disabled");
    admin("PUT", "/channels/5")
        .and(body_json(update_body))
        .respond_with(json(200, "current/channel.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("DELETE", "/channels/5")
        .respond_with(deleted())
        .expect(1)
        .mount(&server)
        .await;

    let list = c.list_channels().await.unwrap();
    assert_eq!(list[0].model_pricing[0].models.len(), 2);
    assert_eq!(
        c.get_channel(5).await.unwrap().billing_model_source,
        "channel_mapped"
    );
    c.create_channel(&input).await.unwrap();
    let mut update = input.clone();
    update.status = Some("disabled".into());
    c.update_channel(5, &update).await.unwrap();
    c.delete_channel(5).await.unwrap();
}

#[tokio::test]
async fn user_key_and_subscription_endpoints() {
    let server = MockServer::start().await;
    let c = client(&server);

    admin("GET", "/users")
        .and(query_param("search", "crm-probe"))
        .respond_with(json(200, "current/users-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/users")
        .and(body_json(json!({
            "email": "crm-probe-b0001@crm.invalid",
            "password": "probe-password-1",
            "username": "crm-probe",
            "notes": "crm:batch=b-0001",
            "balance": 5.0,
            "allowed_groups": [21]
        })))
        .respond_with(json(200, "current/user.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("PUT", "/users/8")
        .and(body_json(json!({"allowed_groups": [21, 22]})))
        .respond_with(json(200, "current/user.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("DELETE", "/users/8")
        .respond_with(deleted())
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/users/8/balance")
        .and(body_json(
            json!({"balance": 5.0, "operation": "add", "notes": "crm:batch=b-0001"}),
        ))
        .respond_with(json(200, "current/user.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/users/8/api-keys")
        .respond_with(json(200, "current/user-api-keys-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/users/7/subscriptions")
        .respond_with(json(200, "legacy-2025-12/user-subscriptions.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("PUT", "/api-keys/51")
        .and(body_json(json!({"group_id": 22})))
        .respond_with(json(200, "current/rebind-api-key.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("GET", "/subscriptions")
        .and(query_param("user_id", "8"))
        .and(query_param("group_id", "22"))
        .respond_with(json(200, "current/group-subscriptions-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("POST", "/subscriptions/assign")
        .and(body_json(
            json!({"user_id": 8, "group_id": 22, "validity_days": 30, "notes": "crm:batch=b-0001"}),
        ))
        .respond_with(json(200, "current/subscription.json"))
        .expect(1)
        .mount(&server)
        .await;
    admin("DELETE", "/subscriptions/61")
        .respond_with(deleted())
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(c.list_users(Some("crm-probe")).await.unwrap()[0].id, 8);
    let user = NewUser {
        email: "crm-probe-b0001@crm.invalid".into(),
        password: SecretString::from("probe-password-1"),
        username: Some("crm-probe".into()),
        notes: Some("crm:batch=b-0001".into()),
        balance: Some(5.0),
        concurrency: None,
        allowed_groups: vec![21],
    };
    c.create_user(&user).await.unwrap();
    let update = UserUpdate {
        allowed_groups: Some(vec![21, 22]),
        ..Default::default()
    };
    assert_eq!(
        c.update_user(8, &update).await.unwrap().allowed_groups,
        vec![21, 22]
    );
    c.delete_user(8).await.unwrap();
    let change = BalanceChange {
        amount: 5.0,
        operation: BalanceOperation::Add,
        notes: "crm:batch=b-0001".into(),
    };
    assert_eq!(c.update_balance(8, &change).await.unwrap().balance, 5.0);
    assert_eq!(c.user_api_keys(8).await.unwrap().len(), 2);
    assert_eq!(c.user_subscriptions(7).await.unwrap()[0].group_id, 4);
    let rebound = c.rebind_api_key(51, Some(22)).await.unwrap();
    assert_eq!(rebound.api_key.group_id, Some(22));
    assert!(rebound.auto_granted_group_access);
    assert_eq!(
        c.list_subscriptions(Some(8), Some(22)).await.unwrap().len(),
        2
    );
    let assign = AssignSubscription {
        user_id: 8,
        group_id: 22,
        validity_days: 30,
        notes: "crm:batch=b-0001".into(),
    };
    assert_eq!(c.assign_subscription(&assign).await.unwrap().id, 61);
    c.revoke_subscription(61).await.unwrap();
}

#[tokio::test]
async fn system_endpoints_need_no_admin_key_except_version() {
    let server = MockServer::start().await;
    let c = client(&server);
    admin("GET", "/system/version")
        .respond_with(json(200, "current/system-version.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/settings/public"))
        .respond_with(json(200, "current/settings-public.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(json(200, "legacy-2025-12/health.json"))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(c.system_version().await.unwrap().version, "0.2.7");
    assert_eq!(
        c.public_settings().await.unwrap().version.as_deref(),
        Some("0.2.7")
    );
    assert_eq!(c.health().await.unwrap().status, "ok");
    let received = server.received_requests().await.unwrap();
    for r in received
        .iter()
        .filter(|r| !r.url.path().contains("/admin/"))
    {
        assert!(
            r.headers.get("x-api-key").is_none(),
            "{} sent the admin key",
            r.url
        );
    }
}

#[tokio::test]
async fn user_side_login_and_keys_use_the_jwt() {
    let server = MockServer::start().await;
    let c = client(&server);
    let jwt = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjo4fQ.ZmFrZS1zaWduYXR1cmU";

    Mock::given(method("POST"))
        .and(path("/api/v1/auth/login"))
        .and(body_json(
            json!({"email": "crm-probe-b0001@crm.invalid", "password": "probe-password-1"}),
        ))
        .respond_with(json(200, "current/login.json"))
        .expect(1)
        .mount(&server)
        .await;
    let keys = |m: &str, p: &str| {
        Mock::given(method(m))
            .and(path(format!("/api/v1{p}")))
            .and(header("authorization", jwt))
    };
    keys("GET", "/keys")
        .and(query_param("page", "1"))
        .respond_with(json(200, "current/user-keys-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    keys("POST", "/keys")
        .and(body_json(
            json!({"name": "crm-probe-b0001", "group_id": 21}),
        ))
        .respond_with(json(200, "current/user-key-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    keys("GET", "/keys/53")
        .respond_with(json(200, "current/user-key-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    keys("PUT", "/keys/53")
        .and(body_json(json!({"group_id": 22})))
        .respond_with(json(200, "current/user-key-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    keys("DELETE", "/keys/53")
        .respond_with(deleted())
        .expect(1)
        .mount(&server)
        .await;

    let session = c
        .login(
            "crm-probe-b0001@crm.invalid",
            &SecretString::from("probe-password-1"),
        )
        .await
        .unwrap();
    assert_eq!(session.list_keys().await.unwrap().len(), 1);
    let created = session
        .create_key(&NewKey {
            name: "crm-probe-b0001".into(),
            group_id: Some(21),
        })
        .await
        .unwrap();
    assert_eq!(created.key_last4(), "1234");
    assert!(session.get_key(53).await.unwrap().key.is_some());
    session
        .update_key(
            53,
            &KeyUpdate {
                group_id: Some(22),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    session.delete_key(53).await.unwrap();
    // The user side never sees the admin key.
    for r in server.received_requests().await.unwrap() {
        assert!(r.headers.get("x-api-key").is_none(), "{}", r.url);
    }
}
