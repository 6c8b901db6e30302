//! The crm port adapter: drafts become the right bodies for each host
//! generation, observations drop secrets, errors map onto HostError.

use crate::support::*;
use crm_domain::host::{Capabilities, CredentialRef, HostRecord};
use crm_domain::observed::*;
use crm_domain::ports::{HostApi, HostConnector, HostError, UpstreamProbe};
use crm_domain::{GroupBilling, HostObjectId, Platform, SecretString};
use crm_sub2api::{Sub2apiConnector, Sub2apiHost, UpstreamClient, UpstreamRouting};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn caps(legacy: bool) -> Capabilities {
    Capabilities {
        probed_at: chrono::Utc::now(),
        version: Some(if legacy { "0.1.52" } else { "0.2.7" }.into()),
        admin_auth: crm_domain::host::AdminAuth::Ok,
        channels: !legacy,
        chat_completions: !legacy,
        native_platforms: vec![],
        subscriptions: true,
        payment_plans: !legacy,
        admin_key_rebind: !legacy,
        idempotency_key: !legacy,
        credential_redaction: !legacy,
        max_page_size: if legacy { 100 } else { 1000 },
        cn_funds: !legacy,
        channel_monitors: !legacy,
        evidence: vec![],
    }
}

fn draft() -> AccountDraft {
    AccountDraft {
        name: "crm-deepseek-a1b2".into(),
        notes: Some("crm:batch=b-0001".into()),
        platform: Platform::openai(),
        account_type: "apikey".into(),
        base_url: "https://api.deepseek.com".into(),
        api_key: SecretString::from("sk-upstream-port-0001"),
        model_mapping: BTreeMap::from([("deepseek-chat".into(), "deepseek-chat".into())]),
        credential_fields: BTreeMap::new(),
        extra: BTreeMap::from([(
            "openai_responses_mode".into(),
            json!("force_chat_completions"),
        )]),
        group_ids: vec![HostObjectId(3)],
        concurrency: 3,
        priority: 1,
    }
}

fn create_body(notes: bool) -> serde_json::Value {
    let mut b = json!({
        "name": "crm-deepseek-a1b2",
        "platform": "openai",
        "type": "apikey",
        "credentials": {
            "api_key": "sk-upstream-port-0001",
            "base_url": "https://api.deepseek.com",
            "model_mapping": {"deepseek-chat": "deepseek-chat"}
        },
        "extra": {"openai_responses_mode": "force_chat_completions"},
        "group_ids": [3],
        "concurrency": 3,
        "priority": 1
    });
    if notes {
        b["notes"] = json!("crm:batch=b-0001");
    }
    b
}

#[tokio::test]
async fn legacy_create_omits_notes_and_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts"))
        .and(body_json(create_body(false)))
        .respond_with(json(200, "legacy-2025-12/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    let host = Sub2apiHost::with_capabilities(client(&server), caps(true));
    let a = host
        .create_account(&draft(), Some("intent-1".into()))
        .await
        .unwrap();
    assert!(a.has_api_key);
    assert_eq!(a.id, HostObjectId(11));
    let r = &server.received_requests().await.unwrap()[0];
    assert!(r.headers.get("idempotency-key").is_none());
    assert_eq!(host.request_count(), 1);
}

#[tokio::test]
async fn current_create_sends_notes_and_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts"))
        .and(header("Idempotency-Key", "intent-1"))
        .and(body_json(create_body(true)))
        .respond_with(json(200, "current/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    let host = Sub2apiHost::with_capabilities(client(&server), caps(false));
    let a = host
        .create_account(&draft(), Some("intent-1".into()))
        .await
        .unwrap();
    assert_eq!(a.notes.as_deref(), Some("crm:batch=b-0001"));
}

#[tokio::test]
async fn credential_updates_carry_the_current_credentials_on_legacy_hosts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/11"))
        .respond_with(json(200, "legacy-2025-12/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/admin/accounts/11"))
        .and(body_json(json!({
            "credentials": {
                "api_key": "sk-LEGACY-RAW-UPSTREAM-KEY-0001",
                "base_url": "https://api.deepseek.com/v1",
                "model_mapping": {"deepseek-chat": "deepseek-chat"}
            },
            "group_ids": [3, 4]
        })))
        .respond_with(json(200, "legacy-2025-12/account.json"))
        .expect(1)
        .mount(&server)
        .await;
    let host = Sub2apiHost::with_capabilities(client(&server), caps(true));
    let patch = AccountPatch {
        base_url: Some("https://api.deepseek.com/v1".into()),
        group_ids: Some(vec![HostObjectId(3), HostObjectId(4)]),
        ..Default::default()
    };
    host.update_account(HostObjectId(11), &patch).await.unwrap();
    assert_eq!(host.request_count(), 2);
}

#[tokio::test]
async fn errors_map_onto_host_errors() {
    let server = MockServer::start().await;
    let get = |p: &str| Mock::given(method("GET")).and(path(format!("/api/v1/admin{p}")));
    get("/accounts/9")
        .respond_with(json(404, "current/error-not-found-404.json"))
        .mount(&server)
        .await;
    get("/channels")
        .respond_with(plain_404())
        .mount(&server)
        .await;
    get("/groups")
        .respond_with(json(423, "current/error-compliance-423.json"))
        .mount(&server)
        .await;
    get("/users")
        .respond_with(json(401, "legacy-2025-12/error-invalid-admin-key.json"))
        .mount(&server)
        .await;
    get("/accounts/8")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("legacy-2025-12/frontend.html"), "text/html"),
        )
        .mount(&server)
        .await;
    get("/accounts/7")
        .respond_with(json(500, "current/error-internal-500.json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/subscriptions/assign"))
        .respond_with(json(409, "current/error-conflict-409.json"))
        .mount(&server)
        .await;
    let host = Sub2apiHost::new(client(&server));
    assert_eq!(
        host.get_account(HostObjectId(9)).await.unwrap_err(),
        HostError::NotFound {
            what: "account 9".into()
        }
    );
    assert_eq!(
        host.list_channels().await.unwrap_err(),
        HostError::RouteMissing {
            route: "GET /api/v1/admin/channels".into()
        }
    );
    assert_eq!(
        host.list_groups().await.unwrap_err(),
        HostError::ComplianceGate {
            document_url: Some("https://relay.example.com/legal/compliance.en.md".into())
        }
    );
    assert_eq!(
        host.list_users(None).await.unwrap_err(),
        HostError::Unauthorized {
            reason: "INVALID_ADMIN_KEY".into()
        }
    );
    assert!(matches!(
        host.get_account(HostObjectId(8)).await.unwrap_err(),
        HostError::Decode { .. }
    ));
    let e = host.get_account(HostObjectId(7)).await.unwrap_err();
    assert_eq!(
        e,
        HostError::Unavailable {
            status: 500,
            message: "internal error".into()
        }
    );
    let e = host
        .assign_subscription(HostObjectId(8), HostObjectId(22), 30, None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        HostError::Conflict {
            reason: "SUBSCRIPTION_ALREADY_EXISTS".into(),
            message: "subscription already exists".into()
        }
    );
    assert!(e.is_refusal());
}

#[tokio::test]
async fn timeouts_map_to_timeout_and_mean_outcome_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, "current/user.json").set_delay(Duration::from_millis(600)))
        .mount(&server)
        .await;
    let host = Sub2apiHost::new(client_with_timeout(&server, Duration::from_millis(100)));
    let draft = UserDraft {
        email: "crm-probe@crm.invalid".into(),
        password: SecretString::from("pw-123456"),
        username: None,
        notes: None,
        balance: None,
        allowed_groups: vec![],
    };
    let e = host.create_user(&draft).await.unwrap_err();
    assert_eq!(
        e,
        HostError::Timeout {
            operation: "POST /api/v1/admin/users".into()
        }
    );
    assert!(e.outcome_unknown());
    assert_eq!(host.request_count(), 1);
}

#[tokio::test]
async fn observations_convert_to_domain_types() {
    let server = MockServer::start().await;
    let get = |p: &str| Mock::given(method("GET")).and(path(format!("/api/v1/admin{p}")));
    get("/groups")
        .respond_with(json(200, "current/groups-page.json"))
        .mount(&server)
        .await;
    get("/channels")
        .respond_with(json(200, "current/channels-page.json"))
        .mount(&server)
        .await;
    get("/users/8/api-keys")
        .respond_with(json(200, "current/user-api-keys-page.json"))
        .mount(&server)
        .await;
    get("/groups/22/subscriptions")
        .respond_with(json(200, "current/group-subscriptions-page.json"))
        .mount(&server)
        .await;
    get("/users/7/subscriptions")
        .respond_with(json(200, "legacy-2025-12/user-subscriptions.json"))
        .mount(&server)
        .await;
    let host = Sub2apiHost::with_capabilities(client(&server), caps(false));

    let groups = host.list_groups().await.unwrap();
    assert_eq!(groups[1].billing, GroupBilling::Subscription);
    assert_eq!(groups[1].status, "inactive");
    let channels = host.list_channels().await.unwrap();
    assert_eq!(channels[0].billing_model_source, "channel_mapped");
    assert_eq!(
        channels[0].model_mapping["deepseek"]["ds-chat"],
        "deepseek-chat"
    );
    assert_eq!(channels[0].model_pricing[0].input_price, Some(0.00000027));
    let keys = host.list_user_api_keys(HostObjectId(8)).await.unwrap();
    assert_eq!(keys[0].key_last4, "3210");
    assert_eq!(keys[0].group_id, Some(HostObjectId(21)));
    assert_eq!(keys[1].group_id, None);
    let subs = host
        .list_group_subscriptions(HostObjectId(22))
        .await
        .unwrap();
    assert!(subs[0].is_active() && !subs[1].is_active());
    let subs = host.list_user_subscriptions(HostObjectId(7)).await.unwrap();
    assert_eq!(subs[0].notes.as_deref(), Some("crm:b-1"));
    // Page size 1000 from the capabilities.
    for (_, p) in requests(&server)
        .await
        .iter()
        .filter(|(_, p)| p.contains("page_size"))
    {
        assert!(p.contains("page_size=1000"), "{p}");
    }
    assert_eq!(host.request_count(), 5);
}

#[tokio::test]
async fn user_side_key_operations_log_in_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/login"))
        .respond_with(json(200, "current/login.json"))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/keys"))
        .and(body_json(
            json!({"name": "crm-probe-b0001", "group_id": 21}),
        ))
        .respond_with(json(200, "current/user-key-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/keys/53"))
        .respond_with(json(200, "current/user-key-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/keys/53"))
        .and(body_json(json!({"group_id": 22})))
        .respond_with(json(200, "current/user-key-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    let host = Sub2apiHost::new(client(&server));
    let login = UserLogin {
        email: "crm-probe-b0001@crm.invalid".into(),
        password: SecretString::from("probe-password-1"),
    };
    let created = host
        .create_user_api_key(
            &login,
            &ApiKeyDraft {
                name: "crm-probe-b0001".into(),
                group_id: Some(HostObjectId(21)),
            },
        )
        .await
        .unwrap();
    use crm_domain::secret::ExposeSecret;
    assert_eq!(
        created.secret.expose_secret(),
        "sk-aaaabbbbccccddddeeeeffff00001234"
    );
    assert_eq!(created.key.key_last4, "1234");
    let revealed = host
        .reveal_user_api_key(&login, HostObjectId(53))
        .await
        .unwrap();
    assert_eq!(revealed.key.id, HostObjectId(53));
    host.rebind_user_api_key(&login, HostObjectId(53), HostObjectId(22))
        .await
        .unwrap();
}

#[tokio::test]
async fn connector_uses_stored_capabilities_and_probe_updates_them() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .and(query_param("page_size", "1000"))
        .respond_with(json(200, "current/accounts-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    let record = HostRecord {
        id: crm_domain::HostId::new("h-1"),
        name: "relay".into(),
        base_url: format!("{}/", server.uri()),
        admin_credential: CredentialRef::Env {
            var: "RELAY_KEY".into(),
        },
        capabilities: Some(caps(false)),
        reconcile_every_secs: None,
        funds_thresholds: Default::default(),
        created_at: chrono::Utc::now(),
    };
    let api = Sub2apiConnector::default()
        .connect(&record, SecretString::from(ADMIN_KEY))
        .await
        .unwrap();
    assert_eq!(api.list_accounts().await.unwrap().len(), 2);
    assert_eq!(api.request_count(), 1);

    let bad = HostRecord {
        base_url: "not a url".into(),
        ..record
    };
    assert!(matches!(
        Sub2apiConnector::default()
            .connect(&bad, SecretString::from(ADMIN_KEY))
            .await,
        Err(HostError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn upstream_probe_port_never_fails() {
    let sim = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/__upstream/api.moonshot.cn/v1/models"))
        .respond_with(json(401, "current/upstream-error-openai.json"))
        .mount(&sim)
        .await;
    let probe: Box<dyn UpstreamProbe> = Box::new(
        UpstreamClient::new(UpstreamRouting::ViaPrefix(format!(
            "{}/__upstream",
            sim.uri()
        )))
        .unwrap(),
    );
    let key = SecretString::from("sk-upstream-abcdefgh");
    let l = probe
        .models("https://api.moonshot.cn/v1".into(), &key)
        .await;
    assert!(!l.outcome.ok);
    assert_eq!(l.outcome.status, Some(401));
    assert_eq!(
        l.outcome.error_type.as_deref(),
        Some("authentication_error")
    );
    let o = probe.chat("::bad::".into(), &key, "m".into()).await;
    assert!(!o.ok);
    assert!(o.transport_error.is_some());
}
