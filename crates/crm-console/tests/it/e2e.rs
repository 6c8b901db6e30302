//! The console in a real headless Chromium, against a console server backed
//! by crm-app and an in-process crm-sim: sign in, probe the host, import a
//! provider, watch the batch become applied with access ready, check for
//! drift, see the funds reading that run took, roll back; then sign in read-only and find no action control.
//!
//! Gated by `CRM_CONSOLE_E2E=1` (`.ci/run` sets it after installing Debian's
//! `chromium` and `chromium-driver`); with the variable set, a missing
//! browser fails the test instead of skipping it. Screenshots of the
//! overview and a batch page go to `target/tmp/console-e2e/` and, when
//! `CRM_CONSOLE_SCREENSHOTS=<dir>` is set, also to that directory (the
//! committed ones in `docs/screenshots/` come from there).

use crate::support::{ADMIN, CANARY, VIEWER, World};
use crate::webdriver::{Browser, Driver};
use std::path::{Path, PathBuf};
use std::time::Duration;

const OP_TIMEOUT: Duration = Duration::from_secs(90);
const NAV: Duration = Duration::from_secs(20);

fn save(name: &str, png: &[u8]) {
    save_in(name, png, true);
}

/// A screenshot kept as a test artifact only (not for the README).
fn artifact(name: &str, png: &[u8]) {
    save_in(name, png, false);
}

fn save_in(name: &str, png: &[u8], for_docs: bool) {
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-e2e")];
    if let Some(extra) = std::env::var("CRM_CONSOLE_SCREENSHOTS")
        .ok()
        .filter(|_| for_docs)
    {
        dirs.push(PathBuf::from(extra));
    }
    for d in dirs {
        std::fs::create_dir_all(&d).expect("screenshot dir");
        std::fs::write(d.join(name), png).expect("screenshot written");
        eprintln!("screenshot: {}", d.join(name).display());
    }
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
}

/// Waits for the operation page the browser is on to finish; returns the status word.
async fn finish_operation(b: &Browser) -> String {
    b.wait_url(NAV, |u| u.contains("/operations/")).await;
    b.wait_text("#op-status", OP_TIMEOUT, |t| {
        !t.is_empty() && t != "running" && t != "queued"
    })
    .await
}

struct Pages(Vec<(String, String)>);

impl Pages {
    async fn keep(&mut self, b: &Browser) {
        self.0.push((b.url().await, b.source().await));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_probes_imports_rolls_back_and_read_only_sees_no_actions() {
    if std::env::var("CRM_CONSOLE_E2E").as_deref() != Ok("1") {
        eprintln!(
            "browser test not run: set CRM_CONSOLE_E2E=1 with chromium and chromedriver installed (.ci/run does)"
        );
        return;
    }
    let chromium = std::env::var("CRM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromedriver =
        std::env::var("CRM_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    for bin in [&chromium, &chromedriver] {
        assert!(
            Path::new(bin).exists(),
            "CRM_CONSOLE_E2E=1 but {bin} is missing: apt-get install -y chromium chromium-driver"
        );
    }

    let w = World::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = w.router.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let b = driver.session(&chromium, profile.path()).await;
    b.set_window(1366, 1000).await;
    let mut pages = Pages(Vec::new());

    // Sign in as admin.
    b.goto(&format!("{base}/")).await;
    assert!(
        b.url().await.ends_with("/login"),
        "anonymous visitors go to the login page"
    );
    b.type_into("#token", ADMIN).await;
    b.click("#sign-in").await;
    let home = format!("{base}/");
    b.wait_url(NAV, |u| u == home).await;
    assert!(b.text(".role").await.contains("admin"));
    pages.keep(&b).await;

    // Keyboard: the first Tab reaches the skip link, the next ones the navigation.
    const TAB: &str = "\u{E004}";
    b.press(TAB).await;
    assert_eq!(b.focused_text().await, "Skip to content");
    b.press(TAB).await;
    b.press(TAB).await;
    assert_eq!(b.focused_text().await, "Overview");

    // Probe the host from its page, through the confirmation page.
    b.click_link("sim").await;
    b.wait_url(NAV, |u| u.ends_with("/hosts/sim")).await;
    b.click_link("Probe host…").await;
    b.wait_url(NAV, |u| u.ends_with("/probe")).await;
    assert!(b.source().await.contains("Probe host sim?"));
    b.click("#confirm").await;
    assert_eq!(finish_operation(&b).await, "succeeded");
    pages.keep(&b).await;

    // Preview and import a provider with a pasted upstream key.
    b.goto(&format!("{base}/")).await;
    b.click_link("cn-official/deepseek").await;
    b.wait_url(NAV, |u| u.ends_with("/providers/cn-official/deepseek"))
        .await;
    artifact("provider.png", &b.screenshot().await);
    b.type_into("#import-keys", CANARY).await;
    b.click("#preview").await;
    b.wait_url(NAV, |u| u.ends_with("/preview")).await;
    let preview = b.source().await;
    assert!(preview.contains("Import cn-official/deepseek onto sim?"));
    assert!(preview.contains(">create<"));
    artifact("preview.png", &b.screenshot().await);
    pages.keep(&b).await;
    b.click("#confirm").await;
    assert_eq!(finish_operation(&b).await, "succeeded");
    pages.keep(&b).await;

    // The batch is applied and access is ready.
    b.click("main a[href^='/batches/']").await;
    b.wait_url(NAV, |u| u.contains("/batches/")).await;
    assert_eq!(b.text("#batch-status").await, "applied");
    assert_eq!(b.text("#access-status").await, "self_service_ready");
    // A tall window so the screenshot shows the journal and the access check too.
    b.set_window(1366, 2300).await;
    save("batch.png", &b.screenshot().await);
    b.set_window(1366, 1000).await;
    pages.keep(&b).await;
    let batch_url = b.url().await;

    // Check the host for drift; the overview then shows it at a glance.
    b.goto(&format!("{base}/hosts/sim")).await;
    b.click("form[action='/hosts/sim/reconcile'] button").await;
    assert_eq!(finish_operation(&b).await, "succeeded");
    assert!(b.source().await.contains(">in_sync<"));
    // The run took a funds reading of the imported account; the host page
    // links the funds page that shows it, with its age and source.
    b.goto(&format!("{base}/hosts/sim")).await;
    b.click_link("Funds and quota readings").await;
    b.wait_url(NAV, |u| u.ends_with("/hosts/sim/funds")).await;
    let funds = b.source().await;
    assert!(
        funds.contains("data-status=\"ok\"") && funds.contains(" s ago<"),
        "the funds page shows the reading: {funds}"
    );
    assert!(funds.contains("class=\"reading-source\">host<"), "{funds}");
    artifact("funds.png", &b.screenshot().await);
    pages.keep(&b).await;
    b.goto(&format!("{base}/")).await;
    let overview = b.source().await;
    assert!(overview.contains(">in_sync<") && overview.contains(">applied<"));
    save("overview.png", &b.screenshot().await);
    pages.keep(&b).await;

    // Roll the batch back.
    b.goto(&batch_url).await;
    b.click_link("Roll back…").await;
    b.wait_url(NAV, |u| u.ends_with("/rollback")).await;
    b.click("#confirm").await;
    assert_eq!(finish_operation(&b).await, "succeeded");
    assert!(b.source().await.contains(">rolled_back<"));
    artifact("rollback-operation.png", &b.screenshot().await);
    pages.keep(&b).await;
    b.goto(&batch_url).await;
    assert_eq!(b.text("#batch-status").await, "rolled_back");
    pages.keep(&b).await;

    // Sign out, sign in read-only: no action controls anywhere.
    b.click("#logout").await;
    b.wait_url(NAV, |u| u.ends_with("/login")).await;
    b.type_into("#token", VIEWER).await;
    b.click("#sign-in").await;
    b.wait_url(NAV, |u| u == home).await;
    assert!(b.text(".role").await.contains("read-only"));
    for path in [
        "/".to_owned(),
        "/hosts/sim".to_owned(),
        "/hosts/sim/funds".to_owned(),
        "/providers/cn-official/deepseek".to_owned(),
        batch_url.trim_start_matches(&base).to_owned(),
    ] {
        b.goto(&format!("{base}{path}")).await;
        artifact(
            &format!(
                "read-only-{}.png",
                match path.trim_matches('/') {
                    "" => "overview".to_owned(),
                    p if p.starts_with("batches/") => "batches".to_owned(),
                    p => p.replace('/', "-"),
                }
            ),
            &b.screenshot().await,
        );
        assert!(
            b.find_all(".action").await.is_empty(),
            "{path} shows an action control"
        );
        assert_eq!(
            b.find_all("form").await.len(),
            1,
            "{path}: only the sign-out form"
        );
        pages.keep(&b).await;
    }
    b.quit().await;

    for (url, html) in &pages.0 {
        assert!(
            !html.contains(CANARY) && !html.contains("CANARYconsole"),
            "{url} shows the upstream key"
        );
        assert!(
            !html.contains(ADMIN) && !html.contains(VIEWER),
            "{url} shows a token"
        );
    }
}
