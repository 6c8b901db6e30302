//! The funds page of a host and the funds section of a batch page: the
//! readings a reconcile run took from crm-sim, with their age, source and
//! thresholds, and never the upstream key.

use crate::support::*;
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::{AccessMode, ProviderRef, SecretString};

const KEY: &str = "sim-ok-CANARYfunds-deepseek-0123456789";

/// The bundled pack under the id `watch`, with a 10 CNY balance threshold
/// on DeepSeek (the bundled pack declares none).
pub fn watch_pack() -> String {
    let (_, text) = crm_pack::bundled::all()[0];
    let text = text.replace("pack_id = \"cn-official\"", "pack_id = \"watch\"");
    let line = "quota_limited = false\n";
    let at = text.find(line).expect("DeepSeek's quota_limited line");
    let mut out = text.clone();
    out.insert_str(
        at + line.len(),
        "low_balance = { amount = 10, currency = \"CNY\" }\n",
    );
    out
}

/// Probes the host, installs [`watch_pack`] and imports `watch/deepseek`
/// with [`KEY`]; returns the batch id.
pub async fn import_watched(w: &World) -> String {
    w.app.probe_host("sim").await.expect("probe");
    w.app
        .install_pack_text("watch.toml", &watch_pack(), false)
        .await
        .expect("pack installs");
    let r = w
        .app
        .import(ImportInput {
            host: "sim".into(),
            provider: ProviderRef::new("watch", "deepseek"),
            mode: AccessMode::SelfService,
            upstream_keys: vec![SecretString::from(KEY)],
            user: None,
            starting_balance: None,
            verify: false,
            accept_url_change: false,
            monitor: None,
        })
        .await
        .expect("import");
    r.batch.id.to_string()
}

#[tokio::test]
async fn the_funds_page_shows_readings_with_age_source_and_thresholds() {
    let w = World::start().await;
    let batch = import_watched(&w).await;
    let cookie = login(&w.router, VIEWER).await;
    let c = Some(cookie.as_str());

    let host = get(&w.router, "/hosts/sim", c).await;
    assert!(
        host.body.contains("href=\"/hosts/sim/funds\""),
        "the host page links its funds page"
    );
    let empty = get(&w.router, "/hosts/sim/funds", c).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("No readings yet"), "{}", empty.body);

    w.sim.set_upstream_balance(KEY, 3.0, None);
    w.app
        .reconcile(ReconcileRequest {
            host: "sim".into(),
            ..Default::default()
        })
        .await
        .expect("reconcile");

    let page = get(&w.router, "/hosts/sim/funds", c).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    for want in [
        "data-status=\"low_funds\"",
        "3 CNY",
        "balance 3 CNY is below the threshold 10 CNY",
        "<span class=\"reading-source\">host</span>",
        "10 CNY",
        " s ago<",
        &format!("href=\"/batches/{batch}\""),
        "id=\"funds-below\">1<",
    ] {
        assert!(b.contains(want), "funds page lacks {want:?}:\n{b}");
    }

    let bp = get(&w.router, &format!("/batches/{batch}"), c).await;
    assert_eq!(bp.status, 200);
    assert!(
        bp.body.contains("id=\"funds-h\"") && bp.body.contains("data-status=\"low_funds\""),
        "the batch page shows its accounts' readings:\n{}",
        bp.body
    );
    assert!(bp.body.contains("href=\"/hosts/sim/funds\""));

    for (path, body) in [("funds", b), ("batch", &bp.body), ("host", &host.body)] {
        assert!(
            !body.contains(KEY) && !body.contains("CANARYfunds"),
            "the {path} page shows the upstream key"
        );
    }

    let missing = get(&w.router, "/hosts/nowhere/funds", c).await;
    assert_eq!(missing.status, 404);
}
