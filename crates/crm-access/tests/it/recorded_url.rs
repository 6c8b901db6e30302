//! The direct upstream probe sends an upstream key only to the base URL
//! recorded for the account it checks (docs/design.md §4 step 5), even
//! after a newer pack version moved the provider elsewhere: two upstream
//! servers, the recorded one and the new pack's, and only the recorded one
//! is called.

use crate::support::World;
use crm_access::{VerifyOptions, verify_access};
use crm_domain::ports::{BatchRepo, PackRepo};
use crm_domain::spec::InstalledPack;
use crm_domain::{AccessMode, ResourceKind};
use crm_sub2api::{UpstreamClient, UpstreamRouting};
use crm_testkit::sim_key;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn install(w: &World, version: &str, base_url: &str) {
    let mut manifest = w.env.pack.manifest.clone();
    manifest.version = version.into();
    let ds = manifest
        .providers
        .iter_mut()
        .find(|p| p.id.as_str() == "deepseek")
        .unwrap();
    ds.openai_base_url = base_url.into();
    ds.anthropic_base_url = Some(format!("{base_url}/anthropic"));
    w.env
        .store
        .install_pack(InstalledPack {
            manifest,
            checksum: format!("sha256-{version}"),
            installed_at: chrono::Utc::now(),
            origin: "test".into(),
            current: true,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_direct_probe_calls_the_recorded_base_url_not_the_new_packs() {
    let recorded = MockServer::start().await;
    let moved = MockServer::start().await;
    for s in [&recorded, &moved] {
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(503)
                    .set_body_string(r#"{"error":{"message":"overloaded","type":"server_error"}}"#),
            )
            .mount(s)
            .await;
    }
    let w = World::new().await;
    install(&w, "2099.1.0", &recorded.uri()).await;
    // The simulated upstream fails this key, so the gateway's answer sends
    // the check to the upstream directly.
    let key = sim_key("server_error", "recorded");
    let batch = w.import("deepseek", AccessMode::SelfService, &key).await;
    let held = w.close(&batch, "deepseek", None).await;

    // A newer pack moves deepseek; an unconfirmed re-import is refused and
    // leaves the recorded URL where it was.
    install(&w, "2099.2.0", &moved.uri()).await;
    let refused = w
        .provisioner
        .import(crm_provision::ImportRequest {
            provider: w.env.provider_ref("deepseek"),
            pack_version: None,
            mode: AccessMode::SelfService,
            upstream_keys: vec![],
            accept_url_change: false,
            monitor: None,
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(crm_provision::ProvisionError::UrlChangeUnconfirmed { .. })
        ),
        "{refused:?}"
    );
    let res = w.env.store.resources(&batch).await.unwrap();
    let account = res
        .iter()
        .find(|r| r.kind == ResourceKind::Account)
        .unwrap();
    assert_eq!(account.desired["base_url"], recorded.uri().as_str());

    // The probe goes straight to the URLs it is given (no simulator prefix).
    let direct = UpstreamClient::new(UpstreamRouting::Direct).unwrap();
    let mut ports = w.ports();
    ports.upstream = &direct;
    let check = verify_access(
        &ports,
        &batch,
        &w.provider("deepseek"),
        &held,
        &VerifyOptions {
            upstream_keys: vec![key],
            ..w.verify_options()
        },
    )
    .await
    .unwrap();
    let probed: Vec<_> = check
        .steps
        .iter()
        .filter(|s| s.name.starts_with("upstream_"))
        .collect();
    assert!(!probed.is_empty(), "the upstream was probed: {check:#?}");
    for s in &probed {
        assert_eq!(
            s.detail["account"]["base_url"],
            recorded.uri().as_str(),
            "{s:#?}"
        );
    }
    let reached = recorded.received_requests().await.unwrap();
    assert!(
        reached.iter().any(|r| r.url.path().ends_with("/models")),
        "{reached:?}"
    );
    assert!(
        moved.received_requests().await.unwrap().is_empty(),
        "the new pack's URL never sees the key"
    );
}
