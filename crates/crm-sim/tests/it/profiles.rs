//! Differences between the `legacy-2025-12` and `current` profiles.

use crm_sim::Profile;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Http, Resp, start};

fn assert_gin_404(r: &Resp) {
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.content_type, "text/plain");
    assert_eq!(r.text, "404 page not found");
}

#[tokio::test]
async fn legacy_has_no_channels_chat_completions_or_newer_admin_routes() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    assert_gin_404(&http.admin(Method::GET, "/channels", None).await);
    assert_gin_404(
        &http
            .send(
                http.req(Method::POST, "/v1/chat/completions")
                    .bearer_auth("sk-x")
                    .json(&json!({})),
            )
            .await,
    );
    assert_gin_404(
        &http
            .admin(Method::GET, "/cn-providers/accounts/0/quota", None)
            .await,
    );
    assert_gin_404(
        &http
            .admin(Method::PUT, "/api-keys/1", Some(json!({"group_id": 1})))
            .await,
    );
    assert_gin_404(&http.admin(Method::GET, "/payment/plans", None).await);
    assert_eq!(
        http.admin(Method::GET, "/system/version", None)
            .await
            .data(),
        json!({"version": "0.1.1"})
    );
    let kimi = http
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"name": "k", "platform": "kimi"})),
        )
        .await;
    assert_eq!(kimi.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn current_answers_the_probes_legacy_does_not() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let quota = http
        .admin(Method::GET, "/cn-providers/accounts/0/quota", None)
        .await;
    assert_eq!(quota.status, StatusCode::NOT_FOUND);
    assert_eq!(
        quota.json(),
        json!({"code": 404, "message": "account not found", "reason": "CN_QUOTA_ACCOUNT_NOT_FOUND"})
    );
    let chat = http
        .send(
            http.req(Method::POST, "/v1/chat/completions")
                .bearer_auth("sk-x")
                .json(&json!({})),
        )
        .await;
    assert_eq!(
        (chat.status, chat.json()["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("INVALID_API_KEY"))
    );
    assert_eq!(
        http.admin(Method::GET, "/channels", None).await.data()["items"],
        json!([])
    );
    let kimi = http
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"name": "k", "platform": "kimi"})),
        )
        .await;
    assert_eq!(kimi.status, StatusCode::OK);
    let plan = http
        .admin(
            Method::POST,
            "/payment/plans",
            Some(json!({"group_id": kimi.data()["id"], "name": "monthly", "price": 9.9})),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED);
}

#[tokio::test]
async fn page_size_over_the_profile_limit_falls_back_to_the_default() {
    // d3e73f1 / 1f93938 response.go ParsePagination: a page_size above the
    // limit is ignored (default 20), not clamped; `Paginated` answers pages >= 1.
    for (profile, asked, echoed) in [
        (Profile::legacy_2025_12(), 500, 20),
        (Profile::legacy_2025_12(), 100, 100),
        (Profile::current(), 5000, 20),
        (Profile::current(), 1000, 1000),
    ] {
        let sim = start(profile).await;
        let http = Http::new(&sim);
        let r = http
            .admin(Method::GET, &format!("/users?page_size={asked}"), None)
            .await
            .data();
        assert_eq!(r["page_size"], json!(echoed));
        assert_eq!(r["total"], json!(1));
        let d = http.admin(Method::GET, "/groups", None).await.data();
        assert_eq!(
            (
                d["page"].clone(),
                d["page_size"].clone(),
                d["pages"].clone()
            ),
            (json!(1), json!(20), json!(1))
        );
    }
}

#[tokio::test]
async fn legacy_returns_raw_credentials_and_current_redacts_them() {
    let body = json!({"name": "a", "platform": "openai", "type": "apikey", "notes": "n",
                      "credentials": {"api_key": "sk-raw-1234", "base_url": "https://api.deepseek.com"}});
    let legacy = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&legacy);
    let a = http
        .admin(Method::POST, "/accounts", Some(body.clone()))
        .await
        .data();
    assert_eq!(a["credentials"]["api_key"], json!("sk-raw-1234"));
    assert!(a.get("credentials_status").is_none() && a.get("notes").is_none());
    let bad_status = http
        .admin(
            Method::PUT,
            &format!("/accounts/{}", a["id"]),
            Some(json!({"status": "error"})),
        )
        .await;
    assert_eq!(bad_status.status, StatusCode::BAD_REQUEST);

    let current = start(Profile::current()).await;
    let http = Http::new(&current);
    let a = http
        .admin(Method::POST, "/accounts", Some(body))
        .await
        .data();
    assert!(a["credentials"].get("api_key").is_none());
    assert_eq!(
        a["credentials"]["base_url"],
        json!("https://api.deepseek.com")
    );
    assert_eq!(a["credentials_status"], json!({"has_api_key": true}));
    assert_eq!(a["notes"], json!("n"));
    // Updating credentials without the secret keeps it (newer hosts merge).
    let id = a["id"].clone();
    http.admin(
        Method::PUT,
        &format!("/accounts/{id}"),
        Some(json!({"credentials": {"base_url": "https://x.example"}})),
    )
    .await;
    let again = http
        .admin(Method::GET, &format!("/accounts/{id}"), None)
        .await
        .data();
    assert_eq!(again["credentials_status"]["has_api_key"], json!(true));
}

#[tokio::test]
async fn idempotency_key_replays_or_conflicts_on_current_only() {
    let body = json!({"name": "idem", "platform": "openai", "type": "apikey", "credentials": {"api_key": "k"}});
    let other = json!({"name": "idem-2", "platform": "openai", "type": "apikey", "credentials": {"api_key": "k"}});
    for profile in [Profile::current(), Profile::legacy_2025_12()] {
        let honoured = profile.idempotency;
        let sim = start(profile).await;
        let http = Http::new(&sim);
        let post = |b: &serde_json::Value| {
            http.req(Method::POST, "/api/v1/admin/accounts")
                .header("x-api-key", sim.admin_key())
                .header("Idempotency-Key", "same-key")
                .json(b)
        };
        let first = http.send(post(&body)).await;
        let second = http.send(post(&body)).await;
        let conflict = http.send(post(&other)).await;
        if honoured {
            assert!(first.headers.get("x-idempotency-replayed").is_none());
            assert_eq!(
                second.headers.get("x-idempotency-replayed").unwrap(),
                "true"
            );
            assert_eq!(second.text, first.text);
            assert_eq!(conflict.status, StatusCode::CONFLICT);
            assert_eq!(conflict.json()["reason"], json!("IDEMPOTENCY_KEY_CONFLICT"));
            assert_eq!(sim.state_dump()["accounts"].as_array().unwrap().len(), 1);
        } else {
            assert!(second.headers.get("x-idempotency-replayed").is_none());
            assert_eq!(conflict.status, StatusCode::OK);
            assert_eq!(sim.state_dump()["accounts"].as_array().unwrap().len(), 3);
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_gins_plain_404() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    assert_gin_404(&http.send(http.req(Method::GET, "/api/v1/nothing")).await);
    assert_gin_404(&http.send(http.req(Method::PATCH, "/health")).await);
    let setup = http.send(http.req(Method::GET, "/setup/status")).await;
    assert_eq!(
        setup.json(),
        json!({"code": 0, "data": {"needs_setup": false, "step": "completed"}})
    );
}

#[tokio::test]
async fn current_lists_mapped_models_openai_shaped_for_openai_groups() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = crate::support::chain(
        &http,
        &sim,
        "openai",
        "https://api.deepseek.com",
        "sk-a",
        false,
        1.0,
    )
    .await;
    let item = http
        .gateway(Method::GET, "/v1/models", &c.key, None)
        .await
        .json()["data"][0]
        .clone();
    assert_eq!(item["id"], json!("chat-model"));
    assert!(item.get("object").is_some(), "{item}");
}

#[tokio::test]
async fn a_third_profile_is_a_struct_update_compliance_gate() {
    let sim = start(Profile {
        name: "current-compliance",
        compliance_gate: true,
        ..Profile::current()
    })
    .await;
    let http = Http::new(&sim);
    let locked = http.admin(Method::GET, "/accounts", None).await;
    assert_eq!(locked.status, StatusCode::LOCKED);
    assert_eq!(
        locked.json()["code"],
        json!("ADMIN_COMPLIANCE_ACK_REQUIRED")
    );
    assert!(locked.json()["metadata"]["document_url_en"].is_string());
    let status = http.admin(Method::GET, "/compliance", None).await.data();
    assert_eq!(status["accepted"], json!(false));
    let wrong = http
        .admin(
            Method::POST,
            "/compliance/accept",
            Some(json!({"phrase": "ok"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let phrase = status["phrase"].clone();
    let accepted = http
        .admin(
            Method::POST,
            "/compliance/accept",
            Some(json!({"phrase": phrase, "language": "en"})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(
        http.admin(Method::GET, "/accounts", None).await.status,
        StatusCode::OK
    );
    // Auth still comes first.
    let anon = http
        .send(http.req(Method::GET, "/api/v1/admin/accounts"))
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn subscription_usage_limits_close_the_gateway() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = crate::support::chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sk-a",
        true,
        0.0,
    )
    .await;
    let limited = http
        .admin(
            Method::PUT,
            &format!("/groups/{}", c.group_id),
            Some(json!({"daily_limit_usd": 0.000001})),
        )
        .await;
    assert_eq!(limited.status, StatusCode::OK);
    // A subscription group ignores the (zero) balance; the first call spends past the limit.
    assert_eq!(http.chat(&c.key, "chat-model").await.status, StatusCode::OK);
    let over = http.chat(&c.key, "chat-model").await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.json()["code"], json!("USAGE_LIMIT_EXCEEDED"));
}
