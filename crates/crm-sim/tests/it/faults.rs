//! Fault injection, latency, request counters and edits behind crm's back.

use std::time::{Duration, Instant};

use crm_sim::{AccountMutation, FaultAction, FaultSpec, Profile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Http, chain, start};

fn account_body(name: &str) -> Value {
    json!({"name": name, "platform": "deepseek", "type": "apikey",
           "credentials": {"api_key": "sk-secret-0001", "base_url": "https://api.deepseek.com"}})
}

fn dump_names(dump: &Value) -> Vec<String> {
    dump["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

fn fault(method: &str, path: &str, action: FaultAction) -> FaultSpec {
    FaultSpec {
        method: Some(method.into()),
        path: path.into(),
        nth: 1,
        times: 1,
        action,
    }
}

#[tokio::test]
async fn commit_then_drop_keeps_the_account_but_the_client_sees_a_connection_error() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    sim.inject_fault(fault(
        "POST",
        "/api/v1/admin/accounts",
        FaultAction::CommitThenDrop,
    ));
    let err = http
        .req(Method::POST, "/api/v1/admin/accounts")
        .header("x-api-key", sim.admin_key())
        .json(&account_body("lost-response"))
        .send()
        .await
        .expect_err("the connection is dropped, no response");
    assert!(err.status().is_none(), "{err}");
    assert!(!err.is_timeout(), "{err}");
    assert_eq!(
        dump_names(&sim.state_dump()),
        vec!["lost-response".to_owned()]
    );
    let rec = sim.requests().pop().unwrap();
    assert_eq!(
        (rec.status, rec.outcome.as_str()),
        (Some(200), "committed_then_dropped")
    );
    // The fault fired once; the next create answers normally.
    let ok = http
        .admin(Method::POST, "/accounts", Some(account_body("second")))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn commit_then_delay_times_out_and_an_idempotent_retry_replays() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    sim.inject_fault(fault(
        "POST",
        "/api/v1/admin/accounts",
        FaultAction::CommitThenDelay { ms: 3_000 },
    ));
    let err = http
        .req(Method::POST, "/api/v1/admin/accounts")
        .header("x-api-key", sim.admin_key())
        .header("Idempotency-Key", "import-1-account-1")
        .timeout(Duration::from_millis(300))
        .json(&account_body("timed-out"))
        .send()
        .await
        .expect_err("client timeout");
    assert!(err.is_timeout(), "{err}");
    let dump = sim.state_dump();
    assert_eq!(dump_names(&dump), vec!["timed-out".to_owned()]);
    let id = dump["accounts"][0]["id"].clone();
    let retry = http
        .send(
            http.req(Method::POST, "/api/v1/admin/accounts")
                .header("x-api-key", sim.admin_key())
                .header("Idempotency-Key", "import-1-account-1")
                .json(&account_body("timed-out")),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.headers.get("x-idempotency-replayed").unwrap(), "true");
    assert_eq!(retry.data()["id"], id);
    assert_eq!(sim.state_dump()["accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn drop_without_commit_leaves_nothing_and_status_faults_answer_instead() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    sim.inject_fault(fault("POST", "/api/v1/admin/accounts", FaultAction::Drop));
    let err = http
        .req(Method::POST, "/api/v1/admin/accounts")
        .header("x-api-key", sim.admin_key())
        .json(&account_body("never"))
        .send()
        .await
        .expect_err("dropped");
    assert!(err.status().is_none());
    assert!(dump_names(&sim.state_dump()).is_empty());

    // Over HTTP: the 2nd GET of any account answers 503 with the given body.
    let r = http
        .send(http.req(Method::POST, "/__sim/faults").json(&json!({
            "method": "GET", "path": "/api/v1/admin/accounts/*", "nth": 2,
            "action": {"kind": "status", "status": 503, "body": {"code": 503, "message": "busy"}}
        })))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let created = http
        .admin(Method::POST, "/accounts", Some(account_body("a")))
        .await
        .data();
    let path = format!("/accounts/{}", created["id"]);
    assert_eq!(
        http.admin(Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    let hit = http.admin(Method::GET, &path, None).await;
    assert_eq!(
        (hit.status, hit.json()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"code": 503, "message": "busy"})
        )
    );
    assert_eq!(
        http.admin(Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    let faults = http
        .send(http.req(Method::GET, "/__sim/faults"))
        .await
        .json();
    assert_eq!(faults[1]["fired"], json!(1));
}

#[tokio::test]
async fn latency_and_delay_faults_hold_requests() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    sim.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(
        http.send(http.req(Method::GET, "/health")).await.status,
        StatusCode::OK
    );
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.set_latency(Duration::ZERO);
    sim.inject_fault(fault("GET", "/health", FaultAction::Delay { ms: 2_000 }));
    let err = http
        .req(Method::GET, "/health")
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .expect_err("timeout");
    assert!(err.is_timeout());
}

#[tokio::test]
async fn counters_tell_how_many_host_requests_an_operation_made() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sk-a",
        false,
        1.0,
    )
    .await;
    assert_eq!(sim.count("POST", "/api/v1/admin/accounts"), 1);
    assert_eq!(sim.count("PUT", "/api/v1/admin/accounts/{id}"), 1);
    assert_eq!(sim.count("POST", "/api/v1/keys"), 1);
    let counters = sim.counters();
    assert_eq!(counters.get("POST /api/v1/admin/groups"), Some(&1));
    assert_eq!(counters.get("POST /api/v1/auth/login"), Some(&1));
    assert_eq!(counters.values().sum::<u64>(), 6);

    sim.clear_requests();
    http.chat(&c.key, "chat-model").await;
    http.chat(&c.key, "chat-model").await;
    let _ = http.send(http.req(Method::GET, "/no/such/route")).await;
    let over_http = http
        .send(http.req(Method::GET, "/__sim/counters"))
        .await
        .json();
    assert_eq!(
        over_http,
        json!({"POST /v1/chat/completions": 2, "GET <unmatched>": 1}),
        "control requests are not counted"
    );
    let log = http
        .send(http.req(Method::GET, "/__sim/requests"))
        .await
        .json();
    assert_eq!(log[2]["status"], json!(404));
}

#[tokio::test]
async fn edits_behind_crms_back_show_up_in_the_api() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sk-a",
        false,
        1.0,
    )
    .await;
    sim.mutate_account(
        c.account_id,
        &AccountMutation {
            temp_unschedulable_reason: Some("429 from upstream".into()),
            ..AccountMutation::default()
        },
    )
    .unwrap();
    let acc = http
        .admin(Method::GET, &format!("/accounts/{}", c.account_id), None)
        .await
        .data();
    assert_eq!(acc["temp_unschedulable_reason"], json!("429 from upstream"));
    let temp = http
        .admin(
            Method::GET,
            &format!("/accounts/{}/temp-unschedulable", c.account_id),
            None,
        )
        .await
        .data();
    assert_eq!(temp["active"], json!(true));
    assert_eq!(temp["state"]["error_message"], json!("429 from upstream"));
    assert_eq!(
        http.chat(&c.key, "chat-model").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let r = http
        .send(http.req(Method::POST, &format!("/__sim/accounts/{}/mutate", c.account_id)).json(&json!({
            "temp_unschedulable_reason": "", "temp_unschedulable_secs": 0, "status": "error", "error_message": "boom"
        })))
        .await;
    assert_eq!(r.json()["status"], json!("error"));
    assert_eq!(
        http.chat(&c.key, "chat-model").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let gone = http
        .send(http.req(
            Method::DELETE,
            &format!("/__sim/objects/accounts/{}", c.account_id),
        ))
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(
        http.admin(Method::GET, &format!("/accounts/{}", c.account_id), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(sim.delete_object("widgets", 1).is_err());

    sim.reset();
    let dump = sim.state_dump();
    assert_eq!(dump["accounts"], json!([]));
    assert_eq!(
        dump["users"].as_array().unwrap().len(),
        1,
        "only the admin user survives a reset"
    );
}

#[tokio::test]
async fn the_state_dump_never_holds_secrets_in_clear() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let canary = "sk-CANARY-7f3e9a0c";
    let c = chain(
        &http,
        &sim,
        "openai",
        "https://api.deepseek.com",
        canary,
        false,
        1.0,
    )
    .await;
    let dump = http.send(http.req(Method::GET, "/__sim/state")).await.text;
    for secret in [canary, c.key.as_str(), "secret-pw", &sim.admin_key()] {
        assert!(!dump.contains(secret), "dump leaks a secret");
    }
    assert!(dump.contains("****9a0c"));
}

#[tokio::test]
async fn a_delayed_request_is_processed_late_even_after_the_client_gave_up() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    sim.inject_fault(fault(
        "POST",
        "/api/v1/admin/accounts",
        FaultAction::Delay { ms: 300 },
    ));
    let err = http
        .req(Method::POST, "/api/v1/admin/accounts")
        .header("x-api-key", sim.admin_key())
        .timeout(Duration::from_millis(50))
        .json(&account_body("late"))
        .send()
        .await
        .expect_err("client timeout");
    assert!(err.is_timeout(), "{err}");
    assert!(
        dump_names(&sim.state_dump()).is_empty(),
        "not yet processed"
    );
    // Poll the simulator's own state (no network) until the late create lands.
    let landed = tokio::time::timeout(Duration::from_secs(5), async {
        while dump_names(&sim.state_dump()).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(landed.is_ok(), "the delayed create never landed");
    assert_eq!(
        sim.requests().last().map(|r| r.outcome.clone()),
        Some("delayed".to_owned())
    );
}
