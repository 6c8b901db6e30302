//! Funds over HTTP: `GET /api/hosts/{id}/funds` answers the stored readings
//! a reconcile run took from crm-sim, with their thresholds, as the one
//! crm-app use case (`App::funds`) the CLI prints.

use super::{ADMIN, READ_ONLY, TestServer, open_app, start};
use crm_api::schemas;
use serde_json::{Value, json};

/// The upstream key of the test's DeepSeek account (the simulator's
/// `sim-ok-…` convention: a key that works).
pub const KEY: &str = "sim-ok-deepseek-funds-0123456789";

/// The bundled pack under another id, with a 10 CNY balance threshold on
/// DeepSeek (the bundled pack declares none).
pub fn watch_pack() -> String {
    let (_, text) = crm_pack::bundled::all()[0];
    let text = text.replace("pack_id = \"cn-official\"", "pack_id = \"watch\"");
    let at = text
        .find("quota_limited = false\n")
        .expect("DeepSeek's quota_limited line");
    let mut out = text.clone();
    out.insert_str(
        at + "quota_limited = false\n".len(),
        "low_balance = { amount = 10, currency = \"CNY\" }\n",
    );
    out
}

/// Registers the simulator as `host` (with a reconcile interval when given),
/// installs [`watch_pack`] and imports `watch/deepseek` with [`KEY`].
pub async fn import_watched(srv: &TestServer, host: &str, every: Option<u64>) {
    let (s, body) = srv
        .post(
            "/api/hosts",
            json!({"name": host, "base_url": srv.sim.base_url(), "admin_key": srv.sim.admin_key(),
                "reconcile_every_secs": every}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let r = srv
        .http
        .post(srv.url("/api/packs?file_name=watch.toml"))
        .bearer_auth(ADMIN)
        .header("content-type", "text/plain")
        .body(watch_pack())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let (s, op) = srv
        .post(
            "/api/providers/watch/deepseek/import?wait=true",
            json!({"host": host, "mode": "self_service", "upstream_keys": [KEY]}),
        )
        .await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op["status"], "succeeded", "{op}");
}

async fn get_read_only(srv: &TestServer, path: &str) -> (u16, Value) {
    let r = srv
        .http
        .get(srv.url(path))
        .bearer_auth(READ_ONLY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `at` and the ages move between two calls.
fn without_clock(mut v: Value) -> Value {
    v["at"] = Value::Null;
    for h in v["hosts"].as_array_mut().into_iter().flatten() {
        for r in h["readings"].as_array_mut().into_iter().flatten() {
            r["age_secs"] = Value::Null;
        }
    }
    v
}

#[tokio::test]
async fn host_funds_are_the_stored_readings_with_thresholds_for_the_read_only_token() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let srv = start(dir, sim, app.clone(), |_| {}, None).await;
    import_watched(&srv, "funds-api", None).await;

    // Nothing read yet: an empty report, not an error.
    let (s, empty) = get_read_only(&srv, "/api/hosts/funds-api/funds").await;
    assert_eq!(s, 200, "{empty}");
    assert_eq!(empty["hosts"][0]["readings"], json!([]), "{empty}");

    // The key runs low; a read-only reconcile run takes the readings.
    srv.sim.set_upstream_balance(KEY, 3.0, None);
    let (s, rep) = srv
        .post(
            "/api/providers/watch/deepseek/reconcile",
            json!({"host": "funds-api"}),
        )
        .await;
    assert_eq!(s, 200, "{rep}");
    let items = rep["run"]["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["category"] == "unhealthy" && i["reason"] == "low_funds"),
        "{rep:#}"
    );

    let (s, got) = get_read_only(&srv, "/api/hosts/funds-api/funds").await;
    assert_eq!(s, 200, "{got}");
    let parsed: schemas::FundsReport =
        serde_json::from_value(got.clone()).expect("the answer matches the documented schema");
    assert_eq!(parsed.hosts.len(), 1);
    let h = &parsed.hosts[0];
    assert_eq!(h.host, "funds-api");
    let t = h.thresholds["watch/deepseek"].low_balance.as_ref().unwrap();
    assert_eq!(t.amount, 10.0);
    assert_eq!(h.providers.len(), 1, "{got:#}");
    let p = &h.providers[0];
    assert_eq!(p.provider, "watch/deepseek");
    assert_eq!(p.status.0, crm_domain::FundsStatus::LowFunds);
    assert_eq!(p.balances.get("CNY"), Some(&3.0));
    assert_eq!((p.accounts_below, p.accounts), (1, 1));
    let r = &h.readings[0];
    assert_eq!(r.source.0, crm_domain::ReadingSource::Host);
    assert_eq!(r.status.0, crm_domain::FundsStatus::LowFunds);
    assert!(
        r.status_detail.contains("below the threshold 10 CNY"),
        "{}",
        r.status_detail
    );
    assert!(!got.to_string().contains(KEY), "no key in the answer");

    // The same JSON the CLI prints: one use case.
    let direct = app
        .funds(
            crm_app::funds::FundsRequest {
                host: Some("funds-api".into()),
                refresh: false,
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        without_clock(got),
        without_clock(serde_json::to_value(&direct).unwrap())
    );

    let (s, other) = get_read_only(&srv, "/api/hosts/funds-api/funds?provider=watch/kimi").await;
    assert_eq!(s, 200, "{other}");
    assert_eq!(other["hosts"][0]["readings"], json!([]));
    let (s, bad) = get_read_only(&srv, "/api/hosts/funds-api/funds?provider=deepseek").await;
    assert_eq!(s, 400, "{bad}");
    assert!(bad["detail"].as_str().unwrap().contains("PACK/PROVIDER"));
    let (s, missing) = get_read_only(&srv, "/api/hosts/nowhere/funds").await;
    assert_eq!(s, 404, "{missing}");
}

async fn metrics(srv: &TestServer) -> String {
    srv.http
        .get(srv.url("/metrics"))
        .bearer_auth(READ_ONLY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the one sample whose name and labels are exactly `head`.
fn sample(text: &str, head: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(head)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn balance_and_quota_gauges_aggregate_per_provider_from_the_stored_readings() {
    // The metrics recorder is global to the test process: this host's name
    // is this test's own.
    const HOST: &str = "funds-metrics";
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let srv = start(dir, sim, app, |_| {}, None).await;
    import_watched(&srv, HOST, None).await;
    // A second DeepSeek key (a second account) and a Coding-Plan account.
    let second = "sim-ok-deepseek-funds-second-0123";
    let (s, op) = srv
        .post(
            "/api/providers/watch/deepseek/import?wait=true",
            json!({"host": HOST, "mode": "self_service", "upstream_keys": [KEY, second]}),
        )
        .await;
    assert_eq!(s, 200, "{op}");
    let coding = "sim-ok-zhipu-coding-funds-0123456";
    let (s, op) = srv
        .post(
            "/api/providers/watch/zhipu-coding/import?wait=true",
            json!({"host": HOST, "mode": "subscription", "upstream_keys": [coding]}),
        )
        .await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op["status"], "succeeded", "{op}");
    srv.sim.set_upstream_balance(KEY, 3.0, None);
    srv.sim.set_upstream_balance(second, 40.0, None);
    // The simulated Coding Plan has used as much of its windows as the key's
    // funds fell from 100.
    srv.sim.set_upstream_balance(coding, 75.0, None);
    for p in ["deepseek", "zhipu-coding"] {
        let (s, rep) = srv
            .post(
                &format!("/api/providers/watch/{p}/reconcile"),
                json!({"host": HOST}),
            )
            .await;
        assert_eq!(s, 200, "{rep}");
    }

    let text = metrics(&srv).await;
    let balance = format!(
        "crm_upstream_balance{{host=\"{HOST}\",provider=\"watch/deepseek\",currency=\"CNY\"}}"
    );
    assert_eq!(sample(&text, &balance), Some(43.0), "{text}");
    let quota = format!(
        "crm_upstream_quota_remaining_ratio{{host=\"{HOST}\",provider=\"watch/zhipu-coding\"}}"
    );
    assert_eq!(sample(&text, &quota), Some(0.75), "{text}");
    // Never per account or key.
    for line in text.lines().filter(|l| l.starts_with("crm_upstream_")) {
        for word in ["account", "fingerprint", "key", "crm-watch", "0123"] {
            assert!(!line.contains(word), "{line}");
        }
    }
    assert!(text.contains("# HELP crm_upstream_balance"), "{text}");

    // The next scrape follows the next readings.
    srv.sim.set_upstream_balance(KEY, 20.0, None);
    let (s, _) = srv
        .post(
            "/api/providers/watch/deepseek/reconcile",
            json!({"host": HOST}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(sample(&metrics(&srv).await, &balance), Some(60.0));
}

/// Waits until the scheduler has made `more` host runs beyond `seen`;
/// returns the new count.
async fn wait_runs(srv: &TestServer, host: &str, seen: usize, more: usize) -> usize {
    for _ in 0..400 {
        let (_, runs) = srv
            .get(&format!("/api/hosts/{host}/reconcile-runs?limit=1000"))
            .await;
        let n = runs.as_array().map_or(0, Vec::len);
        if n >= seen + more {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the scheduler made fewer than {more} runs of {host} in 20 s");
}

async fn crossings(hook: &wiremock::MockServer) -> Vec<Value> {
    hook.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|v| v["event"] == "funds_crossing")
        .collect()
}

#[tokio::test]
async fn the_webhook_hears_once_when_funds_go_below_and_once_when_they_recover() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const HOST: &str = "funds-hook";
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let srv = start(dir, sim, app.clone(), |_| {}, None).await;
    import_watched(&srv, HOST, Some(1)).await;
    let cfg = || crm_api::scheduler::SchedulerConfig {
        tick: std::time::Duration::from_millis(100),
        webhook: Some(format!("{}/hook", hook.uri()).parse().unwrap()),
        ..Default::default()
    };
    let first = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(crm_api::scheduler::run(app.clone(), cfg(), first.clone()));

    // Above the threshold: runs, no crossing.
    let mut runs = wait_runs(&srv, HOST, 0, 2).await;
    assert!(crossings(&hook).await.is_empty());

    // Below: told once, over several runs.
    srv.sim.set_upstream_balance(KEY, 3.0, None);
    runs = wait_runs(&srv, HOST, runs, 3).await;
    let got = crossings(&hook).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["crossing"], "below");
    assert_eq!(got[0]["provider"], "watch/deepseek");
    assert_eq!(got[0]["funds"]["status"], "low_funds");
    assert_eq!(got[0]["funds"]["balances"]["CNY"], 3.0);
    assert!(got[0]["run_id"].as_str().is_some(), "{}", got[0]);

    // A restarted scheduler reads the state from the stored readings: no
    // second `below`.
    first.cancel();
    task.await.unwrap();
    let second = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(crm_api::scheduler::run(app.clone(), cfg(), second.clone()));
    runs = wait_runs(&srv, HOST, runs, 2).await;
    assert_eq!(crossings(&hook).await.len(), 1);

    // Topped up: told once more.
    srv.sim.set_upstream_balance(KEY, 50.0, None);
    wait_runs(&srv, HOST, runs, 3).await;
    second.cancel();
    task.await.unwrap();
    let got = crossings(&hook).await;
    assert_eq!(got.len(), 2, "exactly one call per crossing: {got:#?}");
    assert_eq!(got[1]["crossing"], "recovered");
    assert_eq!(got[1]["funds"]["status"], "ok");
    assert_eq!(got[1]["funds"]["balances"]["CNY"], 50.0);

    // The reconcile status changes went to the same receiver; no body
    // carries the key.
    let all = hook.received_requests().await.unwrap_or_default();
    assert!(all.len() > 2, "status changes too: {}", all.len());
    for r in &all {
        assert!(!String::from_utf8_lossy(&r.body).contains(KEY));
    }
}

/// A read-only reconcile run of `watch/deepseek` on `host` (taking readings).
async fn reconcile_watched(srv: &TestServer, host: &str) -> Value {
    let (s, rep) = srv
        .post(
            "/api/providers/watch/deepseek/reconcile",
            json!({"host": host}),
        )
        .await;
    assert_eq!(s, 200, "{rep}");
    rep
}

/// Sets a simulated upstream key's balance through crm-sim's control route.
async fn set_balance(srv: &TestServer, key: &str, balance: f64) {
    let r = srv
        .http
        .put(format!("{}/__sim/upstream-balances", srv.sim.base_url()))
        .json(&json!({"key": key, "balance": balance, "currency": "CNY"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_balance_driven_low_flips_the_provider_status_and_an_empty_key_degrades_access() {
    const HOST: &str = "funds-status";
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let srv = start(dir, sim, app, |_| {}, None).await;
    import_watched(&srv, HOST, None).await;
    let status_path = format!("/api/providers/watch/deepseek/status?host={HOST}");
    let reconcile = || reconcile_watched(&srv, HOST);
    let batch_of = |one: &Value| one[0]["batch_id"].as_str().unwrap().to_owned();

    // Funds above the threshold: in sync, active, access ready.
    let rep = reconcile().await;
    assert_eq!(rep["run"]["status"], "in_sync", "{rep:#}");
    let (_, one) = srv.get(&status_path).await;
    assert_eq!(
        (one[0]["status"].as_str(), one[0]["reason"].as_str()),
        (Some("active"), Some("ready_in_sync")),
        "{one:#}"
    );
    let batch = batch_of(&one);
    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    assert_eq!(detail["batch"]["access_status"], "self_service_ready");
    assert_eq!(detail["funds_advisories"], json!([]));

    // Below the 10 CNY threshold, still paying: unhealthy/low_funds, the
    // status flips on the readings, access is left alone.
    set_balance(&srv, KEY, 3.0).await;
    let rep = reconcile().await;
    assert!(
        rep["run"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["category"] == "unhealthy" && i["reason"] == "low_funds"),
        "{rep:#}"
    );
    let (_, one) = srv.get(&status_path).await;
    assert_eq!(
        (one[0]["status"].as_str(), one[0]["reason"].as_str()),
        (Some("drifted"), Some("funds_low")),
        "{one:#}"
    );
    assert!(
        one[0]["detail"]
            .as_str()
            .unwrap()
            .contains("crm provider funds --host funds-status --provider watch/deepseek"),
        "{one:#}"
    );
    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    assert_eq!(detail["batch"]["access_status"], "self_service_ready");

    // Nothing left: the batch's access is degraded with the advisory.
    set_balance(&srv, KEY, 0.0).await;
    reconcile().await;
    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    let parsed: schemas::BatchDetail =
        serde_json::from_value(detail.clone()).expect("the documented schema");
    assert_eq!(parsed.funds_advisories.len(), 1, "{detail:#}");
    assert_eq!(detail["batch"]["access_status"], "degraded", "{detail:#}");
    assert_eq!(
        detail["funds_advisories"][0]["class"],
        "upstream_key_quota_issue"
    );
    assert!(
        !detail.to_string().contains(KEY),
        "the batch shows the upstream key"
    );
    let (_, one) = srv.get(&status_path).await;
    assert_eq!(one[0]["reason"], "funds_low", "{one:#}");

    // Topped up: the next run clears both.
    set_balance(&srv, KEY, 50.0).await;
    let rep = reconcile().await;
    assert_eq!(rep["run"]["status"], "in_sync", "{rep:#}");
    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    assert_eq!(detail["batch"]["access_status"], "self_service_ready");
    assert_eq!(detail["funds_advisories"], json!([]));
    let (_, one) = srv.get(&status_path).await;
    assert_eq!(one[0]["status"], "active", "{one:#}");
}

async fn put_thresholds(srv: &TestServer, host: &str, token: &str, body: Value) -> (u16, Value) {
    let r = srv
        .http
        .put(srv.url(&format!("/api/hosts/{host}/funds-thresholds")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_hosts_own_thresholds_override_the_packs_in_reconcile_and_the_funds_report() {
    const HOST: &str = "funds-own";
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let srv = start(dir, sim, app, |_| {}, None).await;
    import_watched(&srv, HOST, None).await;
    let reconcile = || reconcile_watched(&srv, HOST);
    let low_funds = |rep: &Value| {
        rep["run"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["category"] == "unhealthy" && i["reason"] == "low_funds")
    };
    let limit = |rep: &Value| rep["hosts"][0]["thresholds"]["watch/deepseek"].clone();

    // 30 CNY is above the pack's 10 CNY.
    set_balance(&srv, KEY, 30.0).await;
    assert!(!low_funds(&reconcile().await));
    let (_, host) = srv.get(&format!("/api/hosts/{HOST}")).await;
    assert_eq!(host["funds_thresholds"], json!({}), "none set: {host:#}");

    // Host-wide 50 CNY: the same balance is now low.
    let (s, host) = put_thresholds(
        &srv,
        HOST,
        ADMIN,
        json!({"low_balance": {"amount": 50, "currency": "CNY"}}),
    )
    .await;
    assert_eq!(s, 200, "{host}");
    let parsed: schemas::Host = serde_json::from_value(host.clone()).expect("documented schema");
    assert_eq!(
        parsed
            .funds_thresholds
            .all
            .unwrap()
            .low_balance
            .unwrap()
            .amount,
        50.0
    );
    assert!(
        low_funds(&reconcile().await),
        "the host's threshold is used"
    );
    let (_, report) = srv.get(&format!("/api/hosts/{HOST}/funds")).await;
    assert_eq!(limit(&report)["low_balance"]["amount"], 50.0, "{report:#}");

    // The provider's own, over the host-wide one.
    let (s, host) = put_thresholds(
        &srv,
        HOST,
        ADMIN,
        json!({"provider": "watch/deepseek", "low_balance": {"amount": 5, "currency": "CNY"}, "low_quota_percent": 15}),
    )
    .await;
    assert_eq!(s, 200, "{host}");
    assert!(!low_funds(&reconcile().await));
    let (_, report) = srv.get(&format!("/api/hosts/{HOST}/funds")).await;
    assert_eq!(limit(&report)["low_balance"]["amount"], 5.0, "{report:#}");
    assert_eq!(limit(&report)["low_quota_percent"], 15.0, "{report:#}");

    // Cleared, both scopes: the pack's 10 CNY again.
    for body in [
        json!({"provider": "watch/deepseek", "clear": true}),
        json!({"clear": true}),
    ] {
        let (s, host) = put_thresholds(&srv, HOST, ADMIN, body).await;
        assert_eq!(s, 200, "{host}");
    }
    let (_, host) = srv.get(&format!("/api/hosts/{HOST}")).await;
    assert_eq!(host["funds_thresholds"], json!({}), "{host:#}");
    reconcile().await;
    let (_, report) = srv.get(&format!("/api/hosts/{HOST}/funds")).await;
    assert_eq!(limit(&report)["low_balance"]["amount"], 10.0, "{report:#}");

    // Refusals: out of range, nothing to set, a provider no pack has, an
    // unknown host, the read-only token; none of them stores anything.
    let refused = [
        (
            ADMIN,
            HOST,
            json!({"low_quota_percent": 150}),
            422,
            "0 to 100",
        ),
        (
            ADMIN,
            HOST,
            json!({"low_balance": {"amount": -1, "currency": "CNY"}}),
            422,
            "at least 0",
        ),
        (ADMIN, HOST, json!({}), 422, "nothing to set"),
        (
            ADMIN,
            HOST,
            json!({"provider": "watch/nosuch", "low_quota_percent": 5}),
            404,
            "nosuch",
        ),
        (
            ADMIN,
            HOST,
            json!({"provider": "deepseek", "low_quota_percent": 5}),
            400,
            "PACK/PROVIDER",
        ),
        (
            ADMIN,
            "nowhere",
            json!({"low_quota_percent": 5}),
            404,
            "nowhere",
        ),
        (READ_ONLY, HOST, json!({"low_quota_percent": 5}), 403, ""),
    ];
    for (token, host, body, want, says) in refused {
        let (s, problem) = put_thresholds(&srv, host, token, body.clone()).await;
        assert_eq!(s, want, "{body}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}: {problem}"
        );
    }
    let (_, host) = srv.get(&format!("/api/hosts/{HOST}")).await;
    assert_eq!(
        host["funds_thresholds"],
        json!({}),
        "refusals stored nothing: {host:#}"
    );

    // Each change is audited, with its scope.
    let (_, audit) = srv.get("/api/audit?limit=100").await;
    let set: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "host.funds_thresholds")
        .collect();
    assert_eq!(set.len(), 4, "{audit:#}");
}
