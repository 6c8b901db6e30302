//! The harness's direct upstream probe (`App::probe_upstream_keys`) sends a
//! key only to the base URL crm recorded for that key's account on the host
//! (docs/design.md §4 step 5), never to the current pack version's URL, and
//! a key crm recorded no account for is not sent anywhere.

use crm_app::acceptance::KeyProbe;
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::providers::ImportInput;
use crm_app::{App, AppConfig};
use crm_domain::{AccessMode, ProviderRef, SecretString};
use crm_sim::{SimConfig, SimServer};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The bundled pack under `version`, with deepseek's base URLs at `url`.
fn pack_at(version: &str, url: &str) -> String {
    let (_, text) = crm_pack::bundled::cn_official();
    let bundled = crm_pack::parse_pack("b.toml", text)
        .unwrap()
        .manifest
        .version;
    text.replacen(
        &format!("version = \"{bundled}\""),
        &format!("version = \"{version}\""),
        1,
    )
    .replacen(
        "openai_base_url = \"https://api.deepseek.com\"",
        &format!("openai_base_url = \"{url}\""),
        1,
    )
    .replacen(
        "anthropic_base_url = \"https://api.deepseek.com/anthropic\"",
        &format!("anthropic_base_url = \"{url}/anthropic\""),
        1,
    )
}

async fn upstream() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[]}"#))
        .mount(&s)
        .await;
    s
}

#[tokio::test]
async fn the_probe_calls_the_recorded_base_url_and_never_the_current_packs() {
    let recorded = upstream().await;
    let current = upstream().await;
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Direct routing: the probe goes to exactly the URLs it is given.
    let app = App::open_with(
        AppConfig::new(dir.path().join("crm.db")),
        Default::default(),
        std::sync::Arc::new(crm_app::ids::UuidIds),
    )
    .await
    .unwrap();
    app.add_host(NewHost {
        name: "sim".into(),
        base_url: sim.base_url(),
        admin_key: AdminKeySource::Value(SecretString::from(sim.admin_key().to_owned())),
        reconcile_every_secs: None,
    })
    .await
    .unwrap();
    app.probe_host("sim").await.unwrap();
    let deepseek = ProviderRef::new("cn-official", "deepseek");
    app.install_pack_text("v1.toml", &pack_at("2099.1.0", &recorded.uri()), true)
        .await
        .unwrap();
    let key = SecretString::from("sim-ok-deepseek-recorded-0123");
    let report = app
        .import(ImportInput {
            host: "sim".into(),
            provider: deepseek.clone(),
            mode: AccessMode::SelfService,
            upstream_keys: vec![key.clone()],
            user: None,
            starting_balance: None,
            verify: false,
            accept_url_change: false,
            monitor: None,
        })
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    // A newer pack version moves deepseek; nothing was re-imported.
    app.install_pack_text("v2.toml", &pack_at("2099.2.0", &current.uri()), true)
        .await
        .unwrap();

    let stranger = SecretString::from("sim-ok-deepseek-stranger-0123");
    let probes = app
        .probe_upstream_keys("sim", &deepseek, &[key.clone(), stranger.clone()])
        .await
        .unwrap();
    assert_eq!(probes.len(), 2, "{probes:#?}");
    match &probes[0] {
        KeyProbe::Probed(p) => {
            assert_eq!(p.key, app.fingerprint(&key));
            assert_eq!(p.base_url, recorded.uri());
        }
        other => panic!("the recorded key is probed: {other:#?}"),
    }
    match &probes[1] {
        KeyProbe::NotProbed { key, why } => {
            assert_eq!(*key, app.fingerprint(&stranger));
            assert!(
                why.contains("no account") && why.contains("crm provider import"),
                "{why}"
            );
        }
        other => panic!("an unrecorded key is not probed: {other:#?}"),
    }
    let reached = recorded.received_requests().await.unwrap();
    assert!(
        reached.iter().any(|r| r.url.path().ends_with("/models")),
        "{reached:?}"
    );
    assert_eq!(
        current.received_requests().await.unwrap().len(),
        0,
        "the current pack's URL never sees a key"
    );
}
