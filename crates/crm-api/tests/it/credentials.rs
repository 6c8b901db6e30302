//! Over HTTP a host's admin key travels in the body: references to the
//! server's own environment or files are refused before anything is stored
//! or sent (issue 19, item 1).

use super::{spawn_server, spawn_server_with};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A listener that counts the connections made to it (a probe of a
/// registered host would connect here).
async fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    (url, n)
}

#[tokio::test]
async fn a_reference_to_the_servers_environment_or_files_is_refused_and_nothing_is_sent() {
    let srv = spawn_server().await;
    let (listener, connections) = counting_listener().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pepper");
    std::fs::write(&file, "admin-CANARYFILE0123456789\n").unwrap();
    for (name, reference, named) in [
        (
            "env-seal",
            json!({"admin_key_env": "CRM_SEAL_KEY"}),
            "admin_key_env",
        ),
        (
            "env-home",
            json!({"admin_key_env": "HOME"}),
            "admin_key_env",
        ),
        (
            "file",
            json!({"admin_key_file": file.to_str().unwrap()}),
            "admin_key_file",
        ),
    ] {
        let mut body = json!({"name": name, "base_url": listener});
        body.as_object_mut()
            .unwrap()
            .extend(reference.as_object().unwrap().clone());
        let (s, problem) = srv.post("/api/hosts", body).await;
        assert_eq!(s, 422, "{name}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{detail}");
        assert!(
            detail.contains("admin_key"),
            "names the alternative: {detail}"
        );
        assert!(!detail.contains("CANARYFILE"), "{detail}");
        let (s, _) = srv
            .post(&format!("/api/hosts/{name}/probe"), json!({}))
            .await;
        assert_eq!(s, 404, "{name} was not registered");
    }
    let (s, hosts) = srv.get("/api/hosts").await;
    assert_eq!((s, hosts), (200, json!([])));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "no request reached the listener"
    );
}

#[tokio::test]
async fn a_credential_dir_allows_file_references_under_it_only() {
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let inside = allowed.path().join("relay.key");
    std::fs::write(&inside, "admin-0123456789abcdef\n").unwrap();
    let stranger = outside.path().join("other.key");
    std::fs::write(&stranger, "admin-0123456789abcdef\n").unwrap();
    let dir = allowed.path().to_path_buf();
    let srv = spawn_server_with(move |c| c.credential_dir = Some(dir)).await;
    let (listener, connections) = counting_listener().await;
    let escape = format!("{}/../{}", allowed.path().display(), {
        let p = stranger
            .strip_prefix(outside.path().parent().unwrap())
            .unwrap();
        format!("{}", p.display())
    });
    for (name, path) in [
        ("outside", stranger.to_str().unwrap().to_owned()),
        ("dotdot", escape),
    ] {
        let (s, problem) = srv
            .post(
                "/api/hosts",
                json!({"name": name, "base_url": listener, "admin_key_file": path}),
            )
            .await;
        assert_eq!(s, 422, "{name}: {problem}");
    }
    let (s, body) = srv
        .post(
            "/api/hosts",
            json!({"name": "inside", "base_url": listener, "admin_key_file": inside.to_str().unwrap()}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    // Environment references stay refused whatever the directory.
    let (s, _) = srv
        .post(
            "/api/hosts",
            json!({"name": "env", "base_url": listener, "admin_key_env": "HOME"}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

/// A plain-http host outside loopback is registered, with a warning in the
/// host view (the admin key would cross the network in clear); https and
/// loopback hosts carry none.
#[tokio::test]
async fn a_plain_http_host_is_accepted_with_a_warning() {
    let srv = spawn_server().await;
    let (s, host) = srv
        .post(
            "/api/hosts",
            json!({"name": "relay", "base_url": "http://relay.example.com:8080", "admin_key": "admin-0123456789abcdef"}),
        )
        .await;
    assert_eq!(s, 201, "{host}");
    let _: crm_api::schemas::Host = serde_json::from_value(host.clone()).unwrap();
    let w = host["warnings"][0].as_str().unwrap_or_default();
    assert!(
        w.contains("relay.example.com") && w.contains("plain http"),
        "{host:#}"
    );
    let (s, shown) = srv.get("/api/hosts/relay").await;
    assert_eq!(s, 200);
    assert_eq!(shown["warnings"], host["warnings"]);
    for (name, url) in [
        ("tls", "https://relay.example.com"),
        ("local", "http://127.0.0.1:9"),
    ] {
        let (s, host) = srv
            .post(
                "/api/hosts",
                json!({"name": name, "base_url": url, "admin_key": "admin-0123456789abcdef"}),
            )
            .await;
        assert_eq!(s, 201, "{host}");
        assert!(host.get("warnings").is_none(), "{name}: {host:#}");
    }
}
