//! No secret appears in `Debug`/`Display` of any request, config, response
//! or error type: each is built around canary values and printed.

use crate::support::*;
use crm_domain::host::{CredentialRef, HostRecord};
use crm_domain::ports::HostConnector;
use crm_sub2api::port::{HostProfile, host_error};
use crm_sub2api::*;
use serde_json::json;
use std::collections::BTreeMap;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const UPSTREAM: &str = "CANARY-UPSTREAM-plainvalue-1";
const PASSWORD: &str = "CANARY-PASSWORD-plainvalue-2";
const USER_KEY: &str = "sk-CANARYUSERKEY0123456789abcdef";

fn assert_clean(what: &str, shown: &str) {
    for canary in ["CANARY", ADMIN_KEY, UPSTREAM, PASSWORD, USER_KEY] {
        assert!(!shown.contains(canary), "{what} leaked {canary:?}: {shown}");
    }
}

fn new_account() -> NewAccount {
    NewAccount {
        name: "a".into(),
        notes: None,
        platform: "deepseek".into(),
        account_type: "apikey".into(),
        api_key: SecretString::from(UPSTREAM),
        base_url: "https://api.deepseek.com".into(),
        model_mapping: BTreeMap::new(),
        credential_fields: BTreeMap::new(),
        extra: BTreeMap::new(),
        group_ids: vec![],
        concurrency: None,
        priority: None,
        proxy_id: None,
        confirm_mixed_channel_risk: false,
    }
}

#[tokio::test]
async fn configs_and_requests_never_print_secrets() {
    let server = MockServer::start().await;
    let key = AdminKey::new(SecretString::from(ADMIN_KEY));
    let builder = Sub2apiClient::builder(server.uri(), key.clone());
    let c = client(&server);
    let mut creds = Credentials::default();
    creds
        .secrets
        .insert("api_key".into(), SecretString::from(UPSTREAM));
    creds.fields.insert("base_url".into(), json!("https://x"));
    let update = AccountUpdate {
        credentials: Some(creds.clone()),
        ..Default::default()
    };
    let user = NewUser {
        email: "u@example.com".into(),
        password: SecretString::from(PASSWORD),
        username: None,
        notes: None,
        balance: None,
        concurrency: None,
        allowed_groups: vec![],
    };
    let host = Sub2apiHost::new(c.clone());
    let connector = Sub2apiConnector::default();
    let upstream = UpstreamClient::new(UpstreamRouting::Direct).unwrap();
    let shown = [
        ("AdminKey", format!("{key:?}")),
        ("ClientBuilder", format!("{builder:?}")),
        ("Sub2apiClient", format!("{c:?}")),
        ("NewAccount", format!("{:?}", new_account())),
        ("AccountUpdate", format!("{update:?}")),
        ("Credentials", format!("{creds:?}")),
        ("NewUser", format!("{user:?}")),
        ("Sub2apiHost", format!("{host:?}")),
        ("Sub2apiConnector", format!("{connector:?}")),
        ("HostProfile", format!("{:?}", HostProfile::unknown())),
        ("UpstreamClient", format!("{upstream:?}")),
    ];
    for (what, s) in shown {
        assert_clean(what, &s);
    }

    // A connector built from a host record never shows the key either.
    let record = HostRecord {
        id: crm_domain::HostId::new("h-1"),
        name: "relay".into(),
        base_url: server.uri(),
        admin_credential: CredentialRef::Env {
            var: "RELAY_KEY".into(),
        },
        capabilities: None,
        reconcile_every_secs: None,
        funds_thresholds: Default::default(),
        created_at: chrono::Utc::now(),
    };
    let api = connector
        .connect(&record, SecretString::from(ADMIN_KEY))
        .await
        .unwrap();
    assert_eq!(api.request_count(), 0);
}

#[tokio::test]
async fn decoded_responses_never_print_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/1"))
        .respond_with(ok_envelope(json!({
            "id": 1, "name": "legacy", "platform": "openai", "type": "apikey",
            "credentials": {"api_key": UPSTREAM, "base_url": "https://x", "session_key": UPSTREAM}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/users/1/api-keys"))
        .respond_with(ok_envelope(json!({"items": [{"id": 1, "user_id": 1, "key": USER_KEY, "name": "k"}], "total": 1, "page": 1, "page_size": 100, "pages": 1})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/login"))
        .respond_with(ok_envelope(json!({"access_token": "CANARY-JWT-token"})))
        .mount(&server)
        .await;
    let c = client(&server);
    let account = c.get_account(1).await.unwrap();
    assert!(account.has_api_key());
    assert_clean("Account", &format!("{account:?}"));
    let observed = crm_sub2api::port::account_from_wire(account);
    assert_clean(
        "HostAccount",
        &format!("{observed:?} {}", serde_json::to_string(&observed).unwrap()),
    );
    let keys = c.user_api_keys(1).await.unwrap();
    assert_eq!(keys[0].key_last4(), "cdef");
    assert_clean("ApiKey", &format!("{keys:?}"));
    let session = c
        .login("u@example.com", &SecretString::from(PASSWORD))
        .await
        .unwrap();
    assert_clean("UserSession", &format!("{session:?}"));
}

#[tokio::test]
async fn errors_never_print_secrets_even_when_the_host_echoes_them() {
    let server = MockServer::start().await;
    // The host echoes the upstream key and the admin key back in errors.
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts"))
        .respond_with(json_value(400, json!({"code": 400, "message": format!("invalid key {UPSTREAM} for admin {ADMIN_KEY}")})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/2"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_raw(format!("panic: key={ADMIN_KEY}"), "text/plain"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/3"))
        .respond_with(ok_envelope(
            json!({"id": "bad", "credentials": {"api_key": UPSTREAM}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/login"))
        .respond_with(json_value(401, json!({"code": 401, "message": format!("wrong password {PASSWORD}"), "reason": "INVALID_CREDENTIALS"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(json_value(401, json!({"error": {"type": "authentication_error", "message": format!("bad key {USER_KEY}")}})))
        .mount(&server)
        .await;
    let c = client(&server);
    let mut errors = vec![
        c.create_account(&new_account(), None).await.unwrap_err(),
        c.get_account(2).await.unwrap_err(),
        c.get_account(3).await.unwrap_err(),
        c.login("u@example.com", &SecretString::from(PASSWORD))
            .await
            .unwrap_err(),
    ];
    assert!(matches!(errors[2], Error::Decode { .. }), "{:?}", errors[2]);
    errors.push(Error::Timeout {
        method: "GET".into(),
        path: "/x".into(),
        after: std::time::Duration::from_secs(1),
    });
    for e in errors {
        assert_clean("Error", &format!("{e:?} / {e}"));
        let h = host_error(e, "thing");
        assert_clean("HostError", &format!("{h:?} / {h}"));
    }
    let outcome = c
        .gateway_chat(&SecretString::from(USER_KEY), "m")
        .await
        .unwrap();
    assert!(!outcome.ok);
    assert_clean("CallOutcome", &format!("{outcome:?}"));
}
