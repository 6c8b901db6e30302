use crm_app::quickstart::{QuickstartImport, QuickstartInput};
use crm_app::{App, AppConfig};
use crm_domain::{AccessMode, ProviderRef, SecretString};
use crm_sim::{Profile, SimConfig, SimServer};

async fn chain(profile: Profile) -> (crm_app::quickstart::QuickstartSummary, tempfile::TempDir) {
    let sim = SimServer::start(SimConfig::with_profile(profile))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AppConfig::new(dir.path().join("crm.db"));
    cfg.upstream_via = Some(sim.upstream_prefix());
    let app = App::open_with(
        cfg,
        Default::default(),
        std::sync::Arc::new(crm_app::ids::UuidIds),
    )
    .await
    .unwrap();
    let summary = app
        .quickstart(QuickstartInput {
            host_name: "sim".into(),
            host_url: sim.base_url(),
            admin_key: SecretString::from(sim.admin_key().to_owned()),
            imports: vec![
                QuickstartImport {
                    provider: ProviderRef::new("cn-official", "deepseek"),
                    mode: AccessMode::Subscription,
                    upstream_keys: vec![SecretString::from("sim-ok-deepseek-1-abcdef0123")],
                },
                QuickstartImport {
                    provider: ProviderRef::new("cn-official", "kimi"),
                    mode: AccessMode::SelfService,
                    upstream_keys: vec![SecretString::from("sim-ok-kimi-1-abcdef0123")],
                },
            ],
        })
        .await
        .unwrap();
    (summary, dir)
}

#[tokio::test]
async fn quickstart_chain_is_ready_on_the_current_profile() {
    let (summary, _dir) = chain(Profile::current()).await;
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert!(summary.all_ready(), "{summary:#?}");
    assert_eq!(summary.drift_items, 0);
}
