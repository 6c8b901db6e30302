//! `Idempotency-Key`: byte-identical replay, 422 on another body, 409 while
//! the first request still runs.

use super::{ADMIN, spawn_server};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn same_key_replays_and_another_body_is_refused() {
    let srv = spawn_server().await;
    let body =
        json!({"name": "sim", "base_url": srv.sim.base_url(), "admin_key": srv.sim.admin_key()});
    let send = |b: serde_json::Value, key: &'static str| {
        srv.http
            .post(srv.url("/api/hosts"))
            .bearer_auth(ADMIN)
            .header("idempotency-key", key)
            .json(&b)
            .send()
    };
    let first = send(body.clone(), "k-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first_location = first.headers()["location"].clone();
    let first_bytes = first.bytes().await.unwrap();

    let again = send(body.clone(), "k-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(
        again.bytes().await.unwrap(),
        first_bytes,
        "replay is byte-identical"
    );

    let mut other = body.clone();
    other["name"] = json!("sim-2");
    let r = send(other.clone(), "k-1").await.unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["type"], "/problems/idempotency-key-reused");

    // Without a key the same body is a new request: the name is taken now.
    let r = srv
        .http
        .post(srv.url("/api/hosts"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // A refused request records nothing, so its key can be used again.
    let r = send(body.clone(), "k-2").await.unwrap();
    assert_eq!(r.status(), 409);
    let r = send(other, "k-2").await.unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn same_key_while_the_first_runs_is_a_conflict() {
    let srv = spawn_server().await;
    srv.setup_host_and_pack().await;
    // Every host request now takes 300 ms, so a probe takes seconds.
    srv.sim.set_latency(Duration::from_millis(300));
    srv.sim.clear_requests();
    let first = {
        let req = srv
            .http
            .post(srv.url("/api/hosts/sim/probe"))
            .bearer_auth(ADMIN)
            .header("idempotency-key", "probe-1")
            .json(&json!({}));
        tokio::spawn(async move { req.send().await.unwrap() })
    };
    // The first request is executing once the host sees a request from it.
    for _ in 0..500 {
        if !srv.sim.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !srv.sim.requests().is_empty(),
        "the first probe never reached the host"
    );
    let second = srv
        .http
        .post(srv.url("/api/hosts/sim/probe"))
        .bearer_auth(ADMIN)
        .header("idempotency-key", "probe-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    let p: serde_json::Value = second.json().await.unwrap();
    assert_eq!(p["type"], "/problems/idempotency-in-progress");
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    let first_bytes = first.bytes().await.unwrap();
    let third = srv
        .http
        .post(srv.url("/api/hosts/sim/probe"))
        .bearer_auth(ADMIN)
        .header("idempotency-key", "probe-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    assert_eq!(third.bytes().await.unwrap(), first_bytes);
}
