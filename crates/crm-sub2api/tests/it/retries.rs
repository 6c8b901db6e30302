//! Reads and deletes are retried on transient failures; creates never are.

use crate::support::*;
use crm_sub2api::{Error, NewAccount, SecretString};
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn new_account() -> NewAccount {
    NewAccount {
        name: "a".into(),
        notes: None,
        platform: "openai".into(),
        account_type: "apikey".into(),
        api_key: SecretString::from("sk-upstream-retry-test-0001"),
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
async fn get_is_retried_after_503_and_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/101"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/101"))
        .respond_with(json(200, "current/account.json"))
        .with_priority(2)
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(c.get_account(101).await.unwrap().id, 101);
    assert_eq!(requests(&server).await.len(), 2);
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn get_gives_up_after_the_retry_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .mount(&server)
        .await;
    let e = client(&server).get_account(1).await.unwrap_err();
    assert_eq!(
        e,
        Error::HostUnavailable {
            status: 502,
            message: "Bad Gateway".into()
        }
    );
    assert_eq!(
        requests(&server).await.len(),
        4,
        "first attempt + 3 retries"
    );
}

#[tokio::test]
async fn delete_is_retried_on_504() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(504))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ok_envelope(serde_json::json!({"message": "deleted"})))
        .with_priority(2)
        .mount(&server)
        .await;
    client(&server).delete_account(5).await.unwrap();
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn create_is_not_retried_on_503() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .mount(&server)
        .await;
    let e = client(&server)
        .create_account(&new_account(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::HostUnavailable { status: 503, .. }),
        "{e:?}"
    );
    assert_eq!(
        requests(&server).await.len(),
        1,
        "exactly one create reached the host"
    );
}

#[tokio::test]
async fn create_is_not_retried_on_timeout_though_the_host_recorded_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts"))
        .respond_with(json(200, "current/account.json").set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts/1"))
        .respond_with(json(200, "current/account.json").set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let c = client_with_timeout(&server, Duration::from_millis(150));
    let e = c.create_account(&new_account(), None).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(requests(&server).await.len(), 1);
    // A timed-out GET, by contrast, is retried.
    let e = c.get_account(1).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(requests(&server).await.len(), 1 + 4);
}

#[tokio::test]
async fn connection_refused_is_connect_error_after_retries() {
    // Bind a port, then free it, so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = crm_sub2api::Sub2apiClient::builder(
        format!("http://{addr}"),
        crm_sub2api::AdminKey::new(SecretString::from(ADMIN_KEY)),
    )
    .retry(retry_fast())
    .build()
    .unwrap();
    let e = c.get_account(1).await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert_eq!(c.request_count(), 4);
}
