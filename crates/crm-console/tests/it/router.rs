//! The console router in-process: what each kind of visitor gets, and the
//! whole admin chain (probe, preview, import, verify, drift check, rollback)
//! with a canary upstream key that no page may ever show.

use crate::support::{ADMIN, CANARY, Reply, VIEWER, World, get, login, post};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};

/// Every secret the world knows; none may appear in any rendered page.
fn assert_no_secret(w: &World, path: &str, r: &Reply) {
    for secret in [CANARY, "CANARYconsole", ADMIN, VIEWER, &w.sim.admin_key()] {
        assert!(
            !r.body.contains(secret),
            "{path} renders a secret ({} chars)",
            secret.len()
        );
    }
}

fn batch_id_in(body: &str) -> String {
    let start =
        body.find("href=\"/batches/").expect("page links a batch") + "href=\"/batches/".len();
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_owned()
}

#[tokio::test]
async fn anonymous_visitors_get_the_login_form_and_assets_only() {
    let w = World::start().await;
    for path in [
        "/",
        "/hosts/sim",
        "/batches",
        "/audit",
        "/packs",
        "/operations/x",
    ] {
        let r = get(&w.router, path, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location(), "/login", "{path}");
    }
    let r = post(&w.router, "/hosts/sim/probe", None, &[("csrf", "x")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let login_page = get(&w.router, "/login", None).await;
    assert_eq!(login_page.status, StatusCode::OK);
    assert!(login_page.body.contains("<label for=\"token\">"));
    let css = get(&w.router, "/assets/console.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.body.contains(":focus-visible"));
}

#[tokio::test]
async fn login_sets_a_session_cookie_that_is_not_the_token_and_logout_ends_it() {
    let w = World::start().await;
    let bad = post(&w.router, "/login", None, &[("token", "not-a-token")]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.headers.get(header::SET_COOKIE).is_none());

    let r = post(&w.router, "/login", None, &[("token", ADMIN)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");
    let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    // Secure is on by default (it was off unless asked for).
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(
            set.contains(attr),
            "cookie lacks {attr}: attributes {:?}",
            set.split("; ").skip(1).collect::<Vec<_>>()
        );
    }
    assert!(!set.contains(ADMIN), "the cookie must not carry the token");
    let cookie = set.split(';').next().unwrap().to_owned();

    let home = get(&w.router, "/", Some(&cookie)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("signed in: admin"));
    assert_eq!(home.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        home.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    // Logout needs the CSRF token too.
    let refused = post(&w.router, "/logout", Some(&cookie), &[("csrf", "wrong")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = post(
        &w.router,
        "/logout",
        Some(&cookie),
        &[("csrf", &home.csrf())],
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = get(&w.router, "/", Some(&cookie)).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old session id no longer works"
    );
}

#[tokio::test]
async fn repeated_wrong_tokens_are_slowed_down_with_429() {
    let w = World::start().await;
    for _ in 0..crm_console::session::FAILURES_PER_MINUTE {
        let r = post(&w.router, "/login", None, &[("token", "guess")]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = post(&w.router, "/login", None, &[("token", "guess")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // Strangers' guesses never lock the operator out (they used to).
    let r = post(&w.router, "/login", None, &[("token", ADMIN)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the right token passes");
    assert!(r.headers.get(header::SET_COOKIE).is_some());
}

#[tokio::test]
async fn posts_without_the_session_csrf_token_or_from_another_origin_are_refused() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let csrf = get(&w.router, "/", Some(&cookie)).await.csrf();

    let missing = post(&w.router, "/hosts/sim/probe", Some(&cookie), &[]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = post(
        &w.router,
        "/hosts/sim/probe",
        Some(&cookie),
        &[("csrf", "0000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Another session's token does not work either.
    let other = login(&w.router, ADMIN).await;
    let other_csrf = get(&w.router, "/", Some(&other)).await.csrf();
    assert_ne!(other_csrf, csrf);
    let swapped = post(
        &w.router,
        "/hosts/sim/probe",
        Some(&cookie),
        &[("csrf", &other_csrf)],
    )
    .await;
    assert_eq!(swapped.status, StatusCode::FORBIDDEN);

    let cross = Request::post("/hosts/sim/probe")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &cookie)
        .header(header::HOST, "console.local:8080")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    let r = crate::support::send(&w.router, cross).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // `Origin: null` (sandboxed frames, data: pages) is refused too.
    let null_origin = Request::post("/hosts/sim/probe")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &cookie)
        .header(header::HOST, "console.local:8080")
        .header(header::ORIGIN, "null")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    let r = crate::support::send(&w.router, null_origin).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Nothing was started by any refused request.
    w.launcher.wait_idle().await;
    let host = w.app.show_host("sim").await.unwrap();
    assert!(host.probed_at.is_none());
}

#[tokio::test]
async fn read_only_sessions_see_no_action_controls_and_actions_answer_403() {
    let w = World::start().await;
    // Give the pages something to show: an applied batch.
    let admin = login(&w.router, ADMIN).await;
    let csrf = get(&w.router, "/", Some(&admin)).await.csrf();
    let preview = post(
        &w.router,
        "/providers/cn-official/kimi/preview",
        Some(&admin),
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", "sim-ok-kimi-ro-0123456789"),
        ],
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    let r = post(
        &w.router,
        "/providers/cn-official/kimi/import",
        Some(&admin),
        &[("csrf", &csrf), ("pending", &preview.hidden("pending"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), Some(&admin)).await;
    let batch = batch_id_in(&op.body);

    let viewer = login(&w.router, VIEWER).await;
    let pages = [
        "/".to_owned(),
        "/hosts/sim".to_owned(),
        "/providers/cn-official/kimi".to_owned(),
        format!("/batches/{batch}"),
        "/batches".to_owned(),
        "/packs".to_owned(),
        "/audit".to_owned(),
        r.location().to_owned(),
    ];
    let mut viewer_csrf = String::new();
    for p in &pages {
        let page = get(&w.router, p, Some(&viewer)).await;
        assert_eq!(page.status, StatusCode::OK, "{p}");
        assert!(page.body.contains("signed in: read-only"), "{p}");
        assert!(
            !page.body.contains("class=\"action"),
            "{p} shows an action control"
        );
        // The only form a viewer gets is sign-out.
        assert_eq!(page.body.matches("<form").count(), 1, "{p}");
        viewer_csrf = page.csrf();
    }
    let gets = [
        "/hosts/sim/probe".to_owned(),
        format!("/batches/{batch}/rollback"),
        "/providers/cn-official/kimi/verify?host=sim".to_owned(),
    ];
    for p in &gets {
        assert_eq!(
            get(&w.router, p, Some(&viewer)).await.status,
            StatusCode::FORBIDDEN,
            "{p}"
        );
    }
    let posts: [(String, Vec<(&str, &str)>); 7] = [
        ("/hosts/sim/probe".into(), vec![]),
        (
            format!("/batches/{batch}/resume"),
            vec![("keys", "sim-ok-x-1234")],
        ),
        ("/hosts/sim/reconcile".into(), vec![]),
        ("/hosts/sim/repair".into(), vec![("prune", "on")]),
        (format!("/batches/{batch}/rollback"), vec![]),
        (
            "/providers/cn-official/kimi/verify".into(),
            vec![("host", "sim")],
        ),
        (
            "/providers/cn-official/kimi/preview".into(),
            vec![
                ("host", "sim"),
                ("mode", "self_service"),
                ("keys", "sim-ok-x-1234"),
            ],
        ),
    ];
    for (path, fields) in &posts {
        let mut form = vec![("csrf", viewer_csrf.as_str())];
        form.extend(fields.iter().copied());
        let r = post(&w.router, path, Some(&viewer), &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    w.launcher.wait_idle().await;
    let b = w.app.batch(&batch).await.unwrap();
    assert_eq!(
        b.status.as_str(),
        "applied",
        "the refused rollback did nothing"
    );
}

#[tokio::test]
async fn admin_chain_probe_import_verify_reconcile_rollback_never_renders_a_secret() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    let mut visited: Vec<(String, Reply)> = Vec::new();

    let home = get(&w.router, "/", c).await;
    assert!(home.body.contains("not probed"));
    let csrf = home.csrf();

    // Probe, with its confirmation page first.
    let confirm = get(&w.router, "/hosts/sim/probe", c).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Probe now"));
    let r = post(&w.router, "/hosts/sim/probe", c, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/operations/"));
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(
        op.body
            .contains("<span id=\"op-status\"><span class=\"badge good\">succeeded</span>"),
        "{}",
        op.body
    );
    assert!(
        !op.body.contains("http-equiv=\"refresh\""),
        "a finished operation stops refreshing"
    );
    visited.push((r.location().to_owned(), op));

    // Preview: read-only, shows the plan, holds the keys server-side.
    let preview = post(
        &w.router,
        "/providers/cn-official/deepseek/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", CANARY),
        ],
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("badge good\">create<"));
    assert!(
        preview.body.contains("…cdef"),
        "the preview names keys by their last four characters"
    );
    let pending = preview.hidden("pending");
    visited.push(("preview".into(), preview));
    assert!(
        w.app
            .list_batches(Default::default())
            .await
            .unwrap()
            .is_empty(),
        "preview changed nothing"
    );

    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        c,
        &[("csrf", &csrf), ("pending", &pending)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let import_op = r.location().to_owned();
    // A held preview is used once.
    let again = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        c,
        &[("csrf", &csrf), ("pending", &pending)],
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    w.launcher.wait_idle().await;
    let op = get(&w.router, &import_op, c).await;
    assert!(op.body.contains(">succeeded<"), "{}", op.body);
    let batch = batch_id_in(&op.body);
    visited.push((import_op, op));

    let page = get(&w.router, &format!("/batches/{batch}"), c).await;
    assert!(
        page.body
            .contains("<span id=\"batch-status\"><span class=\"badge good\">applied</span>")
    );
    assert!(page.body.contains(
        "<span id=\"access-status\"><span class=\"badge good\">self_service_ready</span>"
    ));
    assert!(
        page.body.contains(&format!("[crm:batch={batch}]")),
        "the ownership marker is shown"
    );
    assert!(page.body.contains("Roll back…"));

    // Verify access.
    let confirm = get(
        &w.router,
        "/providers/cn-official/deepseek/verify?host=sim",
        c,
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK);
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/verify",
        c,
        &[("csrf", &csrf), ("host", "sim")],
    )
    .await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(
        op.body.contains(">succeeded<") && op.body.contains(">pass<"),
        "{}",
        op.body
    );
    visited.push((r.location().to_owned(), op));

    // Drift check: the host matches.
    let r = post(&w.router, "/hosts/sim/reconcile", c, &[("csrf", &csrf)]).await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(op.body.contains(">in_sync<"), "{}", op.body);
    visited.push((r.location().to_owned(), op));

    // Roll back.
    let confirm = get(&w.router, &format!("/batches/{batch}/rollback"), c).await;
    assert!(confirm.body.contains("Roll back") && confirm.body.contains("channel"));
    let r = post(
        &w.router,
        &format!("/batches/{batch}/rollback"),
        c,
        &[("csrf", &csrf)],
    )
    .await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(
        op.body.contains(">rolled_back<") && op.body.contains(">refused<"),
        "{}",
        op.body
    );
    visited.push((r.location().to_owned(), op));
    let page = get(&w.router, &format!("/batches/{batch}"), c).await;
    assert!(page.body.contains("badge good\">rolled_back<"));
    assert!(
        !page.body.contains("Roll back…"),
        "a rolled-back batch offers no rollback"
    );

    for p in [
        "/".to_owned(),
        "/hosts/sim".to_owned(),
        "/providers/cn-official/deepseek".to_owned(),
        format!("/batches/{batch}"),
        "/batches".to_owned(),
        "/packs".to_owned(),
        "/packs/cn-official".to_owned(),
        "/audit".to_owned(),
    ] {
        let r = get(&w.router, &p, c).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        visited.push((p, r));
    }
    let audit = &visited.last().unwrap().1;
    for action in [
        "host.probe",
        "provider.import",
        "provider.access_check",
        "batch.rollback",
    ] {
        assert!(audit.body.contains(action), "audit log lists {action}");
    }
    assert!(
        audit.body.contains("console:admin"),
        "the audit names the console principal"
    );
    for (path, r) in &visited {
        assert_no_secret(&w, path, r);
    }
}

#[tokio::test]
async fn unknown_things_are_404_pages_and_bad_input_is_400() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    for p in [
        "/hosts/nope",
        "/batches/nope",
        "/operations/nope",
        "/providers/cn-official/nope",
    ] {
        let r = get(&w.router, p, c).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
        assert!(r.body.contains("not found"), "{p}");
    }
    let csrf = get(&w.router, "/", c).await.csrf();
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "sideways"),
            ("keys", "k"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("self_service, subscription"));
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", "  \n "),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Markup in a name is shown as text, never interpreted.
    let r = get(&w.router, "/hosts/%3Cscript%3Ex", c).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.body.contains("<script>"));
}

#[tokio::test]
async fn drift_check_previews_the_repair_and_repair_restores_the_channel() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    let csrf = get(&w.router, "/", c).await.csrf();
    let preview = post(
        &w.router,
        "/providers/cn-official/kimi/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", "sim-ok-kimi-drift-0123456789"),
        ],
    )
    .await;
    post(
        &w.router,
        "/providers/cn-official/kimi/import",
        c,
        &[("csrf", &csrf), ("pending", &preview.hidden("pending"))],
    )
    .await;
    w.launcher.wait_idle().await;
    let batch = w
        .app
        .list_batches(Default::default())
        .await
        .unwrap()
        .remove(0);
    let detail = w.app.batch_detail(batch.id.as_str()).await.unwrap();
    let channel = detail
        .resources
        .iter()
        .find(|r| r.kind == crm_domain::ResourceKind::Channel)
        .expect("the batch made a channel");
    w.sim
        .delete_object("channels", channel.host_object_id.0)
        .unwrap();

    // The read-only check finds the drift and offers the repair.
    let r = post(&w.router, "/hosts/sim/reconcile", c, &[("csrf", &csrf)]).await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(
        op.body.contains(">drifted<") && op.body.contains(">missing<"),
        "{}",
        op.body
    );
    assert!(op.body.contains("Apply repair"));
    // Nothing was repaired by looking.
    assert!(
        w.sim
            .delete_object("channels", channel.host_object_id.0)
            .is_err()
    );

    let r = post(&w.router, "/hosts/sim/repair", c, &[("csrf", &csrf)]).await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(
        op.body.contains(">succeeded<") && op.body.contains("Repair plan"),
        "{}",
        op.body
    );
    assert!(
        !op.body.contains("Apply repair"),
        "a repaired run offers no second repair"
    );

    let r = post(&w.router, "/hosts/sim/reconcile", c, &[("csrf", &csrf)]).await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(op.body.contains(">in_sync<"), "{}", op.body);
    let host = get(&w.router, "/hosts/sim", c).await;
    assert!(
        host.body.matches("/reconcile-runs/").count() >= 3,
        "three runs in the history"
    );
}

#[tokio::test]
async fn a_batch_that_stopped_part_way_is_resumed_with_its_keys_pasted_again() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    let csrf = get(&w.router, "/", c).await.csrf();
    // The host refuses the channel once: the import stops after the account and group.
    w.sim.inject_fault(crm_sim::FaultSpec {
        method: Some("POST".into()),
        path: "/api/v1/admin/channels".into(),
        nth: 1,
        times: 1,
        action: crm_sim::FaultAction::Status {
            status: 400,
            body: serde_json::Value::Null,
        },
    });
    let key = "sim-ok-resume-0123456789";
    let preview = post(
        &w.router,
        "/providers/cn-official/kimi/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", key),
        ],
    )
    .await;
    let r = post(
        &w.router,
        "/providers/cn-official/kimi/import",
        c,
        &[("csrf", &csrf), ("pending", &preview.hidden("pending"))],
    )
    .await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(
        op.body
            .contains("<span id=\"op-status\"><span class=\"badge bad\">failed</span>"),
        "{}",
        op.body
    );
    let batch = batch_id_in(&op.body);
    let page = get(&w.router, &format!("/batches/{batch}"), c).await;
    assert!(page.body.contains("Resume batch"), "{}", page.body);

    let r = post(
        &w.router,
        &format!("/batches/{batch}/resume"),
        c,
        &[("csrf", &csrf), ("keys", key)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(op.body.contains(">succeeded<"), "{}", op.body);
    let page = get(&w.router, &format!("/batches/{batch}"), c).await;
    assert!(
        page.body
            .contains("<span id=\"batch-status\"><span class=\"badge good\">applied</span>")
    );
    assert!(
        !page.body.contains("Resume batch"),
        "an applied batch offers no resume"
    );
    let again = post(
        &w.router,
        &format!("/batches/{batch}/resume"),
        c,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_no_secret(&w, "resume", &op);
    assert!(!op.body.contains(key) && !page.body.contains(key));
}

#[tokio::test]
async fn a_base_url_change_is_shown_and_applied_only_when_ticked() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    let csrf = get(&w.router, "/", c).await.csrf();
    let key = "sim-ok-moved-0123456789";
    let preview = |csrf: String| {
        let router = w.router.clone();
        async move {
            post(
                &router,
                "/providers/cn-official/deepseek/preview",
                c,
                &[
                    ("csrf", &csrf),
                    ("host", "sim"),
                    ("mode", "self_service"),
                    ("keys", key),
                ],
            )
            .await
        }
    };
    let first = preview(csrf.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first.body.contains("<code>https://api.deepseek.com</code>"),
        "the preview shows the base URL: {}",
        first.body
    );
    assert!(
        !first.body.contains("accept_url_change"),
        "nothing to confirm yet"
    );
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        c,
        &[("csrf", &csrf), ("pending", &first.hidden("pending"))],
    )
    .await;
    w.launcher.wait_idle().await;
    assert!(
        get(&w.router, r.location(), c)
            .await
            .body
            .contains(">succeeded<")
    );

    // A newer cn-official that moves deepseek, taken on purpose.
    let (_, text) = crm_pack::bundled::all()[0];
    let moved = text
        .replacen("version = \"2026.11.1\"", "version = \"2026.11.9\"", 1)
        .replace("https://api.deepseek.com", "https://api.deepseek.example");
    w.app
        .install_pack_text("moved.toml", &moved, true)
        .await
        .unwrap();

    let second = preview(csrf.clone()).await;
    assert!(second.body.contains("Base URL changes"), "{}", second.body);
    assert!(second.body.contains("base_url_change"));
    assert!(
        second
            .body
            .contains("<code>https://api.deepseek.example</code>")
    );
    assert!(second.body.contains("name=\"accept_url_change\""));
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        c,
        &[("csrf", &csrf), ("pending", &second.hidden("pending"))],
    )
    .await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(op.body.contains(">failed<"), "not ticked: {}", op.body);
    assert!(op.body.contains("accept_url_change"), "{}", op.body);

    let third = preview(csrf.clone()).await;
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        c,
        &[
            ("csrf", &csrf),
            ("pending", &third.hidden("pending")),
            ("accept_url_change", "true"),
        ],
    )
    .await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(op.body.contains(">succeeded<"), "ticked: {}", op.body);
    let after = preview(csrf).await;
    assert!(!after.body.contains("Base URL changes"), "{}", after.body);
}

#[tokio::test]
async fn the_import_form_asks_for_a_monitor_and_the_import_makes_the_one_previewed() {
    let w = World::start().await;
    let admin = login(&w.router, ADMIN).await;
    let page = get(&w.router, "/providers/cn-official/deepseek", Some(&admin)).await;
    assert!(
        page.body.contains("name=\"monitor\"") && page.body.contains("the pack's default (off)"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let preview = |monitor: &'static str| {
        let (router, admin, csrf) = (&w.router, &admin, &csrf);
        async move {
            post(
                router,
                "/providers/cn-official/deepseek/preview",
                Some(admin),
                &[
                    ("csrf", csrf),
                    ("host", "sim"),
                    ("mode", "self_service"),
                    ("keys", "sim-ok-deepseek-mon-0123456789"),
                    ("monitor", monitor),
                ],
            )
            .await
        }
    };
    let bad = preview("maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("expected true, false"), "{}", bad.body);
    let none = preview("").await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert!(
        !none.body.contains(">monitor<"),
        "the pack's default is off"
    );

    let with = preview("true").await;
    assert_eq!(with.status, StatusCode::OK, "{}", with.body);
    assert!(
        with.body.contains(">monitor<"),
        "the plan shows the monitor: {}",
        with.body
    );
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        Some(&admin),
        &[("csrf", &csrf), ("pending", &with.hidden("pending"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), Some(&admin)).await;
    assert!(op.body.contains("succeeded"), "{}", op.body);
    assert_eq!(
        w.sim.count("POST", "/api/v1/admin/channel-monitors"),
        1,
        "the import made the monitor it previewed"
    );
}
