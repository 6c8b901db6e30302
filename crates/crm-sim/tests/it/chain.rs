//! The access chain over HTTP: account → group → channel → user → subscription →
//! key, then `/v1/models` and a chat completion; billing gates and auth errors.

use crm_sim::Profile;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Http, chain, start};

#[tokio::test]
async fn full_chain_with_channel_and_subscription_serves_models_and_chat() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let acc = http
        .admin(
            Method::POST,
            "/accounts",
            Some(json!({
                "name": "deepseek-1", "platform": "deepseek", "type": "apikey", "notes": "crm:batch-1",
                "credentials": {"api_key": "sk-upstream-ok-1", "base_url": sim.upstream_url("https://api.deepseek.com"),
                                "model_mapping": {"deepseek-chat": "deepseek-v4-flash"}},
            })),
        )
        .await;
    assert_eq!(acc.status, StatusCode::OK);
    let account = acc.data();
    assert_eq!(account["credentials_status"]["has_api_key"], json!(true));
    assert!(account["credentials"].get("api_key").is_none());
    assert_eq!(account["notes"], json!("crm:batch-1"));
    let account_id = account["id"].as_i64().unwrap();

    let group = http
        .admin(Method::POST, "/groups", Some(json!({"name": "deepseek-sub", "platform": "deepseek", "subscription_type": "subscription"})))
        .await
        .data();
    let group_id = group["id"].as_i64().unwrap();
    let bound = http
        .admin(
            Method::PUT,
            &format!("/accounts/{account_id}"),
            Some(json!({"group_ids": [group_id]})),
        )
        .await;
    assert_eq!(bound.data()["group_ids"], json!([group_id]));

    let channel = http
        .admin(
            Method::POST,
            "/channels",
            Some(json!({
                "name": "deepseek", "group_ids": [group_id], "billing_model_source": "channel_mapped",
                "restrict_models": true,
                "model_pricing": [{"platform": "deepseek", "models": ["deepseek-chat"], "input_price": 0.000002, "output_price": 0.000008}],
            })),
        )
        .await;
    assert_eq!(channel.status, StatusCode::OK, "{}", channel.text);
    assert_eq!(
        channel.data()["model_pricing"][0]["billing_mode"],
        json!("token")
    );
    // A group belongs to at most one channel.
    let second = http
        .admin(
            Method::POST,
            "/channels",
            Some(json!({"name": "other", "group_ids": [group_id]})),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.json()["reason"], json!("GROUP_ALREADY_IN_CHANNEL"));
    assert_eq!(second.json()["code"], json!(409));

    let user = http
        .admin(
            Method::POST,
            "/users",
            Some(json!({"email": "buyer@example.com", "password": "hunter22"})),
        )
        .await
        .data();
    let user_id = user["id"].as_i64().unwrap();
    let token = http.login("buyer@example.com", "hunter22").await;

    // No subscription yet: the key cannot be bound to the subscription group.
    let refused = http
        .user(
            Method::POST,
            "/api/v1/keys",
            &token,
            Some(json!({"name": "k", "group_id": group_id})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["reason"], json!("GROUP_NOT_ALLOWED"));

    let sub = http
        .admin(
            Method::POST,
            "/subscriptions/assign",
            Some(json!({"user_id": user_id, "group_id": group_id, "validity_days": 0})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::OK);
    let sub = sub.data();
    assert_eq!(sub["status"], json!("active"));
    // Assign never extends.
    let again = http
        .admin(
            Method::POST,
            "/subscriptions/assign",
            Some(json!({"user_id": user_id, "group_id": group_id, "validity_days": 30})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["reason"], json!("SUBSCRIPTION_ALREADY_EXISTS"));

    let key = http
        .user(
            Method::POST,
            "/api/v1/keys",
            &token,
            Some(json!({"name": "k", "group_id": group_id})),
        )
        .await
        .data();
    let key_str = key["key"].as_str().unwrap().to_owned();
    assert!(
        key_str.starts_with("sk-") && key_str.len() == 35,
        "{key_str}"
    );
    let listed = http
        .user(Method::GET, "/api/v1/keys", &token, None)
        .await
        .data();
    assert_eq!(listed["items"][0]["key"], json!(key_str));

    let models = http
        .gateway(Method::GET, "/v1/models", &key_str, None)
        .await;
    assert_eq!(models.status, StatusCode::OK);
    assert_eq!(
        models.json(),
        json!({"object": "list", "data": [{"id": "deepseek-chat", "type": "model", "display_name": "deepseek-chat", "created_at": "2024-01-01T00:00:00Z"}]})
    );

    let chat = http.chat(&key_str, "deepseek-chat").await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.text);
    let body = chat.json();
    assert_eq!(body["object"], json!("chat.completion"));
    assert_eq!(body["model"], json!("deepseek-chat"));
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // restrict_models: a model outside the channel's pricing is refused.
    let restricted = http.chat(&key_str, "deepseek-reasoner").await;
    assert_eq!(restricted.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        restricted.json()["error"]["type"],
        json!("invalid_request_error")
    );

    // Revoking the subscription closes the gateway.
    let sub_id = sub["id"].as_i64().unwrap();
    assert_eq!(
        http.admin(Method::DELETE, &format!("/subscriptions/{sub_id}"), None)
            .await
            .status,
        StatusCode::OK
    );
    let closed = http.chat(&key_str, "deepseek-chat").await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN);
    assert_eq!(
        closed.json(),
        json!({"code": "SUBSCRIPTION_NOT_FOUND", "message": "No active subscription found for this group"})
    );
}

#[tokio::test]
async fn standard_group_needs_balance_and_chat_spends_it() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sk-a",
        false,
        0.0,
    )
    .await;
    let broke = http.chat(&c.key, "chat-model").await;
    assert_eq!(broke.status, StatusCode::FORBIDDEN);
    assert_eq!(
        broke.json(),
        json!({"code": "INSUFFICIENT_BALANCE", "message": "Insufficient account balance"})
    );
    let models = http.gateway(Method::GET, "/v1/models", &c.key, None).await;
    assert_eq!(models.status, StatusCode::FORBIDDEN);

    let topped = http
        .admin(
            Method::POST,
            &format!("/users/{}/balance", c.user_id),
            Some(json!({"balance": 5, "operation": "add"})),
        )
        .await;
    assert_eq!(topped.data()["balance"], json!(5.0));
    let ok = http.chat(&c.key, "chat-model").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let after = http
        .admin(Method::GET, &format!("/users/{}", c.user_id), None)
        .await
        .data();
    let balance = after["balance"].as_f64().unwrap();
    assert!(balance < 5.0 && balance > 4.9, "{balance}");

    // Not exposed by any account of the group.
    let unknown = http.chat(&c.key, "nope-model").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json()["error"]["type"],
        json!("invalid_request_error")
    );

    // No schedulable account left: 503 api_error.
    let off = http
        .admin(
            Method::POST,
            &format!("/accounts/{}/schedulable", c.account_id),
            Some(json!({"schedulable": false})),
        )
        .await;
    assert_eq!(off.data()["schedulable"], json!(false));
    let none = http.chat(&c.key, "chat-model").await;
    assert_eq!(none.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(none.json()["error"]["type"], json!("api_error"));
    assert!(
        none.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("No available accounts")
    );
}

#[tokio::test]
async fn admin_and_gateway_auth_errors_use_string_codes() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let missing = http
        .send(http.req(Method::GET, "/api/v1/admin/accounts"))
        .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json(),
        json!({"code": "UNAUTHORIZED", "message": "Authorization required"})
    );
    let wrong = http
        .send(
            http.req(Method::GET, "/api/v1/admin/accounts")
                .header("x-api-key", "sk-user-key"),
        )
        .await;
    assert_eq!(
        wrong.json(),
        json!({"code": "INVALID_ADMIN_KEY", "message": "Invalid admin API key"})
    );
    let version = http.admin(Method::GET, "/system/version", None).await;
    assert_eq!(version.data(), json!({"version": "0.2.7"}));
    let absent = http.admin(Method::GET, "/accounts/999", None).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_eq!(
        absent.json(),
        json!({"code": 404, "message": "account not found", "reason": "ACCOUNT_NOT_FOUND"})
    );

    let no_key = http.send(http.req(Method::GET, "/v1/models")).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_key.json()["code"], json!("API_KEY_REQUIRED"));
    let bad_key = http
        .gateway(Method::GET, "/v1/models", "sk-nope", None)
        .await;
    assert_eq!(
        bad_key.json(),
        json!({"code": "INVALID_API_KEY", "message": "Invalid API key"})
    );

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
    let via_x_api_key = http
        .send(
            http.req(Method::GET, "/v1/models")
                .header("x-api-key", &c.key),
        )
        .await;
    assert_eq!(via_x_api_key.status, StatusCode::OK);
    let off = http
        .user(
            Method::PUT,
            &format!("/api/v1/keys/{}", c.key_id),
            &c.token,
            Some(json!({"status": "inactive"})),
        )
        .await;
    assert_eq!(off.data()["status"], json!("inactive"));
    let disabled = http.gateway(Method::GET, "/v1/models", &c.key, None).await;
    assert_eq!(
        disabled.json(),
        json!({"code": "API_KEY_DISABLED", "message": "API key is disabled"})
    );

    let bad_login = http
        .send(
            http.req(Method::POST, "/api/v1/auth/login")
                .json(&json!({"email": "admin@sim.local", "password": "wrong"})),
        )
        .await;
    assert_eq!(bad_login.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad_login.json()["code"], json!(401));
    let no_jwt = http
        .send(
            http.req(Method::GET, "/api/v1/keys")
                .header("x-api-key", &http.admin_key),
        )
        .await;
    assert_eq!(no_jwt.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleted_group_keys_differ_by_profile() {
    // Current: the middleware refuses the key.
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "openai",
        "https://api.deepseek.com",
        "sk-a",
        false,
        1.0,
    )
    .await;
    let deleted = http
        .admin(Method::DELETE, &format!("/groups/{}", c.group_id), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let r = http.chat(&c.key, "chat-model").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json(),
        json!({"code": "GROUP_DELETED", "message": "Group has been deleted"})
    );

    // Legacy: the key still authenticates but reaches no account.
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "anthropic",
        "https://api.deepseek.com/anthropic",
        "sk-a",
        false,
        1.0,
    )
    .await;
    let body = json!({"model": "chat-model", "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]});
    let before = http
        .gateway(Method::POST, "/v1/messages", &c.key, Some(body.clone()))
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert_eq!(before.json()["type"], json!("message"));
    let deleted = http
        .admin(Method::DELETE, &format!("/groups/{}", c.group_id), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let r = http
        .gateway(Method::POST, "/v1/messages", &c.key, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "api_error", "message": "No available accounts: no group"}})
    );
    // d3e73f1 gateway_handler.go Models: a key without a group gets the Claude defaults.
    let models = http.gateway(Method::GET, "/v1/models", &c.key, None).await;
    assert_eq!(models.status, StatusCode::OK);
    assert_eq!(
        models.json()["data"][0]["id"],
        json!("claude-opus-4-5-20251101")
    );
}

#[tokio::test]
async fn account_test_streams_sse_and_marks_401_accounts() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let good = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sk-good",
        false,
        1.0,
    )
    .await;
    let r = http
        .admin(
            Method::POST,
            &format!("/accounts/{}/test", good.account_id),
            Some(json!({"model_id": "chat-model"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "text/event-stream");
    let events: Vec<serde_json::Value> = r
        .text
        .split("\n\n")
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events.first().unwrap(),
        &json!({"type": "test_start", "model": "upstream-model"})
    );
    assert_eq!(
        events.last().unwrap(),
        &json!({"type": "test_complete", "success": true})
    );

    let bad = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sim-invalid_key-1",
        false,
        1.0,
    )
    .await;
    let r = http
        .admin(
            Method::POST,
            &format!("/accounts/{}/test", bad.account_id),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let last: serde_json::Value =
        serde_json::from_str(r.text.trim_end().rsplit("data: ").next().unwrap()).unwrap();
    assert_eq!(last["type"], json!("error"));
    assert_eq!(last["code"], json!("401"));
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .starts_with("API returned 401: "),
        "{last}"
    );
    let acc = http
        .admin(Method::GET, &format!("/accounts/{}", bad.account_id), None)
        .await
        .data();
    assert_eq!(acc["status"], json!("error"));
    let cleared = http
        .admin(
            Method::POST,
            &format!("/accounts/{}/clear-error", bad.account_id),
            None,
        )
        .await
        .data();
    assert_eq!(cleared["status"], json!("active"));

    let missing = http.admin(Method::POST, "/accounts/4242/test", None).await;
    assert_eq!(missing.status, StatusCode::OK);
    assert!(!missing.content_type.starts_with("text/event-stream"));
    assert_eq!(
        missing.text,
        "data: {\"error\":\"Account not found\",\"type\":\"error\"}\n\n"
    );
}

#[tokio::test]
async fn admin_rebind_and_listings() {
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
    let g2 = http
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"name": "exclusive", "platform": "deepseek", "is_exclusive": true})),
        )
        .await
        .data();
    let g2_id = g2["id"].as_i64().unwrap();
    let r = http
        .admin(
            Method::PUT,
            &format!("/api-keys/{}", c.key_id),
            Some(json!({"group_id": g2_id})),
        )
        .await
        .data();
    assert_eq!(r["api_key"]["group_id"], json!(g2_id));
    assert_eq!(r["auto_granted_group_access"], json!(true));
    assert_eq!(r["granted_group_id"], json!(g2_id));
    let keys = http
        .admin(Method::GET, &format!("/groups/{g2_id}/api-keys"), None)
        .await
        .data();
    assert_eq!(keys["total"], json!(1));
    let subs = http
        .admin(
            Method::GET,
            &format!("/users/{}/subscriptions", c.user_id),
            None,
        )
        .await
        .data();
    assert_eq!(subs, json!([]));
    let all = http
        .admin(Method::GET, "/groups/all?platform=deepseek", None)
        .await
        .data();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let filtered = http
        .admin(Method::GET, &format!("/accounts?group={g2_id}"), None)
        .await
        .data();
    assert_eq!(filtered["total"], json!(0));
    let bad_platform = http
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"name": "x", "platform": "moonshot"})),
        )
        .await;
    assert_eq!(bad_platform.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_platform.json()["code"], json!(400));
    let std_assign = http
        .admin(
            Method::POST,
            "/subscriptions/assign",
            Some(json!({"user_id": c.user_id, "group_id": c.group_id})),
        )
        .await;
    assert_eq!(
        std_assign.json()["reason"],
        json!("GROUP_NOT_SUBSCRIPTION_TYPE")
    );
    let health = http.send(http.req(Method::GET, "/health")).await;
    assert_eq!(health.json(), json!({"status": "ok"}));
    let settings = http
        .send(http.req(Method::GET, "/api/v1/settings/public"))
        .await;
    assert_eq!(settings.data()["version"], json!("0.2.7"));
}

#[tokio::test]
async fn admin_jwt_bootstraps_a_new_admin_key() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    // An ordinary user's JWT is not an admin credential.
    http.admin(
        Method::POST,
        "/users",
        Some(json!({"email": "u@example.com", "password": "hunter22"})),
    )
    .await;
    let old = sim.admin_key();
    let (email, password) = sim.admin_login();
    let token = http.login(email, password).await;
    let status = http
        .user(
            Method::GET,
            "/api/v1/admin/settings/admin-api-key",
            &token,
            None,
        )
        .await
        .data();
    assert_eq!(status["exists"], json!(true));
    assert!(
        !status["masked_key"]
            .as_str()
            .unwrap()
            .contains(&old[10..old.len() - 4])
    );
    let new = http
        .user(
            Method::POST,
            "/api/v1/admin/settings/admin-api-key/regenerate",
            &token,
            None,
        )
        .await
        .data();
    let new = new["key"].as_str().unwrap().to_owned();
    assert!(new.starts_with("admin-") && new.len() == 70 && new != old);
    assert_eq!(sim.admin_key(), new);
    let stale = http
        .send(
            http.req(Method::GET, "/api/v1/admin/system/version")
                .header("x-api-key", &old),
        )
        .await;
    assert_eq!(stale.json()["code"], json!("INVALID_ADMIN_KEY"));
    let fresh = http
        .send(
            http.req(Method::GET, "/api/v1/admin/system/version")
                .header("x-api-key", &new),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    let user_token = http.login("u@example.com", "hunter22").await;
    let forbidden = http
        .user(
            Method::GET,
            "/api/v1/admin/system/version",
            &user_token,
            None,
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json(),
        json!({"code": "FORBIDDEN", "message": "Admin access required"})
    );
}
