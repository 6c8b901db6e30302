//! Test environments for crm's cross-crate tests.
//!
//! [`TestEnv::start`] gives each test its own in-process `crm-sim` on a
//! loopback port, the real `crm-sub2api` host adapter connected to it and
//! already probed, and a fresh `crm-store` database in a temporary directory.
//! Nothing here is used by product code: use it from `[dev-dependencies]` only.

use chrono::{DateTime, Utc};
use crm_domain::host::{Capabilities, CredentialRef, HostRecord};
use crm_domain::ports::{Clock, HostApi, HostRepo, IdSource, PackRepo};
use crm_domain::spec::{InstalledPack, PackManifest, ProviderSpec};
use crm_domain::{HostId, KeyFingerprinter, ProviderRef, SecretString};
use crm_sim::{Profile, SimConfig, SimHandle, SimServer};
use crm_store::{SqliteStore, StoreOptions};
use crm_sub2api::{Sub2apiConnector, Sub2apiHost, UpstreamClient, UpstreamRouting};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crm_sim;

/// Deterministic ids (`<prefix>-1`, `<prefix>-2`, ...) so snapshots are stable.
#[derive(Debug, Default)]
pub struct SeqIds(AtomicU64);

impl IdSource for SeqIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// A clock fixed at a given instant (advance it by replacing the env's clock).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// One isolated test world: simulator, probed host adapter, temp store.
pub struct TestEnv {
    pub sim: SimHandle,
    pub store: SqliteStore,
    pub host: Arc<Sub2apiHost>,
    pub host_record: HostRecord,
    pub caps: Capabilities,
    pub upstream: Arc<UpstreamClient>,
    pub ids: Arc<SeqIds>,
    pub pack: InstalledPack,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("sim", &self.sim.base_url())
            .field("profile", &self.sim.profile().name)
            .finish_non_exhaustive()
    }
}

impl TestEnv {
    /// The `current` profile.
    pub async fn current() -> TestEnv {
        Self::start(Profile::current()).await
    }

    /// The `legacy-2025-12` profile.
    pub async fn legacy() -> TestEnv {
        Self::start(Profile::legacy_2025_12()).await
    }

    /// A profile by name (`current`, `legacy-2025-12`).
    pub async fn named(profile: &str) -> TestEnv {
        let p =
            Profile::by_name(profile).unwrap_or_else(|| panic!("no simulator profile {profile}"));
        Self::start(p).await
    }

    /// Starts a simulator with `profile`, opens a temp store, registers and
    /// probes the host, and installs the bundled `cn-official` pack.
    pub async fn start(profile: Profile) -> TestEnv {
        let sim = SimServer::start(SimConfig::with_profile(profile))
            .await
            .expect("simulator starts on loopback");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("crm.db"), StoreOptions::default())
            .await
            .expect("store opens");

        let mut host_record = HostRecord {
            id: HostId::new("h-sim"),
            name: "sim".into(),
            base_url: sim.base_url(),
            admin_credential: CredentialRef::Env {
                var: "CRM_TEST_UNUSED".into(),
            },
            capabilities: None,
            reconcile_every_secs: None,
            funds_thresholds: Default::default(),
            created_at: Utc::now(),
        };
        let connector = Sub2apiConnector::default();
        let host = connector
            .open(&host_record, admin_key(&sim))
            .expect("client builds");
        let caps = host
            .probe()
            .await
            .expect("probe succeeds against the simulator");
        host.set_capabilities(caps.clone());
        host_record.capabilities = Some(caps.clone());
        store
            .add_host(host_record.clone())
            .await
            .expect("host stored");

        let (name, text) = crm_pack::bundled::cn_official();
        let parsed = crm_pack::parse_pack(name, text).expect("bundled pack is valid");
        let pack = store
            .install_pack(InstalledPack {
                manifest: parsed.manifest,
                checksum: parsed.checksum,
                installed_at: Utc::now(),
                origin: "bundled".into(),
                current: true,
            })
            .await
            .expect("pack installs");

        let upstream = UpstreamClient::new(UpstreamRouting::ViaPrefix(sim.upstream_prefix()))
            .expect("upstream client builds");

        TestEnv {
            sim,
            store,
            host: Arc::new(host),
            host_record,
            caps,
            upstream: Arc::new(upstream),
            ids: Arc::new(SeqIds::default()),
            pack,
            dir,
        }
    }

    /// The host as the port use cases take.
    pub fn host_api(&self) -> Arc<dyn HostApi> {
        self.host.clone()
    }

    /// A second, independent handle on the same host (own request counter).
    pub fn new_host_handle(&self) -> Arc<Sub2apiHost> {
        let h = Sub2apiConnector::default()
            .open(&self.host_record, admin_key(&self.sim))
            .expect("client builds");
        Arc::new(h)
    }

    /// The installation's fingerprinter (keyed by this store's pepper).
    pub fn fingerprinter(&self) -> KeyFingerprinter {
        self.store.fingerprinter()
    }

    /// The bundled pack manifest.
    pub fn manifest(&self) -> &PackManifest {
        &self.pack.manifest
    }

    /// A provider of the bundled pack, e.g. `deepseek`.
    pub fn provider(&self, id: &str) -> &ProviderSpec {
        self.pack
            .manifest
            .provider(id)
            .unwrap_or_else(|| panic!("bundled pack has no provider {id}"))
    }

    /// `cn-official/<id>`.
    pub fn provider_ref(&self, id: &str) -> ProviderRef {
        self.pack.manifest.provider_ref(self.provider(id))
    }

    /// Temp directory of this env (the database lives in it).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The simulator's state dump.
    pub fn dump(&self) -> serde_json::Value {
        self.sim.state_dump()
    }
}

/// The simulator's admin key as a secret.
pub fn admin_key(sim: &SimHandle) -> SecretString {
    SecretString::from(sim.admin_key().to_owned())
}

/// An upstream key the simulator treats with `behaviour` (`ok`, `invalid_key`,
/// `insufficient_balance`, `quota_exhausted`, `rate_limited`, `server_error`,
/// `slow`, `host_incompatible`); `tag` keeps keys distinct.
pub fn sim_key(behaviour: &str, tag: &str) -> SecretString {
    SecretString::from(format!("sim-{behaviour}-{tag}-0123456789abcdef"))
}
