//! Every `/api` route (read from the served OpenAPI document, so none is
//! forgotten) refuses a missing or wrong token with 401, and every mutating
//! one refuses the read-only token with 403; the probes need no token.

use super::{ADMIN, READ_ONLY, spawn_server, spawn_server_with};
use reqwest::Method;

fn concrete(path: &str) -> String {
    // Any value will do: authentication happens before the lookup.
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_needs_a_token_and_the_read_only_token_only_reads() {
    let srv = spawn_server_with(|c| c.auth_failures_per_minute = 10_000).await;
    let doc: serde_json::Value = srv
        .http
        .get(srv.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/"), "{path}");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = srv.url(&concrete(path));
            let none = srv.http.request(m.clone(), &url).send().await.unwrap();
            assert_eq!(none.status(), 401, "{method} {path} without a token");
            assert_eq!(
                none.headers()["content-type"],
                "application/problem+json",
                "{method} {path}"
            );
            let wrong = srv
                .http
                .request(m.clone(), &url)
                .bearer_auth("not-the-token-0123456789")
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
            let ro = srv
                .http
                .request(m.clone(), &url)
                .bearer_auth(READ_ONLY)
                .send()
                .await
                .unwrap();
            if m == Method::GET {
                assert!(
                    ![401, 403].contains(&ro.status().as_u16()),
                    "{method} {path} refused the read-only token: {}",
                    ro.status()
                );
            } else {
                assert_eq!(ro.status(), 403, "{method} {path} with the read-only token");
            }
            let admin = srv
                .http
                .request(m, &url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert!(
                ![401, 403].contains(&admin.status().as_u16()),
                "{method} {path} refused the admin token"
            );
            checked += 1;
        }
    }
    assert!(checked >= 27, "only {checked} operations in the document");
    for open in ["/healthz", "/readyz"] {
        let r = srv.http.get(srv.url(open)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{open}");
    }
}

fn challenge(r: &reqwest::Response) -> Option<&str> {
    r.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_401_carries_a_bearer_challenge() {
    let srv = spawn_server().await;
    for token in [None, Some("not-the-token-0123456789abcdefgh")] {
        let mut rb = srv.http.get(srv.url("/api/hosts"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            challenge(&r).is_some_and(|c| c.starts_with("Bearer")),
            "{:?}",
            r.headers()
        );
    }
}

/// `/metrics` names hosts in its labels: it needs a token unless the
/// operator opens it (`--public-metrics`).
#[tokio::test]
async fn metrics_need_a_token_unless_public() {
    let srv = spawn_server().await;
    let r = srv.http.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).is_some());
    for t in [ADMIN, READ_ONLY] {
        let r = srv
            .http
            .get(srv.url("/metrics"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let open = spawn_server_with(|c| c.public_metrics = true).await;
    let r = open.http.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Strangers' wrong tokens used to lock the admin out of its own server
/// (the limiter refused before looking at the token).
#[tokio::test]
async fn the_right_token_passes_even_from_a_blocked_source() {
    let srv = spawn_server_with(|c| c.auth_failures_per_minute = 2).await;
    let wrong = |xff: &'static str| {
        srv.http
            .get(srv.url("/api/hosts"))
            .bearer_auth("wrong-token-0123456789abcdefghij")
            .header("x-forwarded-for", xff)
    };
    let mut statuses = vec![];
    for xff in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        statuses.push(wrong(xff).send().await.unwrap().status().as_u16());
    }
    // No trusted proxy: X-Forwarded-For is the client's to forge, ignored.
    assert_eq!(statuses, [401, 401, 429]);
    let (s, _) = srv.get("/api/hosts").await;
    assert_eq!(s, 200, "the admin token passes from the same address");
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let srv = spawn_server_with(|c| {
        c.auth_failures_per_minute = 2;
        c.trusted_proxies = crm_app::source::TrustedProxies(vec!["127.0.0.1".parse().unwrap()]);
    })
    .await;
    let attempt = |xff: &'static str| {
        srv.http
            .get(srv.url("/api/hosts"))
            .bearer_auth("wrong-token-0123456789abcdefghij")
            .header("x-forwarded-for", xff)
            .send()
    };
    let mut statuses = vec![];
    for xff in ["6.6.6.6", "6.6.6.6", "6.6.6.6", "7.7.7.7"] {
        statuses.push(attempt(xff).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 401], "7.7.7.7 is someone else");
}

#[tokio::test]
async fn repeated_wrong_tokens_are_rate_limited() {
    let srv = spawn_server_with(|c| c.auth_failures_per_minute = 3).await;
    let mut statuses = vec![];
    for _ in 0..5 {
        let r = srv
            .http
            .get(srv.url("/api/hosts"))
            .bearer_auth("wrong-token-0123456789xx")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let _ = spawn_server; // the default-config helper is used by other modules
}
