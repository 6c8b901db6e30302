//! `StoreOptions::from_env`: key locations and the seal key from the
//! environment. Run in child processes, because the environment is global.

use crate::support::{run_child, temp_db};
use crm_domain::SecretString;
use crm_domain::host::SealContext;
use crm_domain::ports::SecretSealer;
use crm_store::{SealKeySource, Sealer, SqliteStore, StoreOptions, parse_key_text};

const CHILD: &str = "CRM_STORE_TEST_ENV_CHILD";
const SEAL_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

#[tokio::test]
async fn keys_come_from_the_environment_when_set() {
    if std::env::var_os(CHILD).is_some() {
        let db = std::env::var("CRM_STORE_TEST_ENV_DB").unwrap();
        let store = SqliteStore::open(&db, StoreOptions::from_env().unwrap())
            .await
            .unwrap();
        let ctx = SealContext::host_admin_key(&crm_domain::HostId::new("h-1"));
        let sealed = store
            .seal(&ctx, &SecretString::from("admin-key-1234"))
            .unwrap();
        let with_env_key = Sealer::new(SealKeySource::Key(parse_key_text(SEAL_HEX).unwrap()));
        assert!(
            with_env_key.open(&ctx, &sealed).is_ok(),
            "sealed with CRM_SEAL_KEY"
        );
        return;
    }
    let (dir, db) = temp_db();
    let pepper = dir.path().join("elsewhere").join("pepper");
    let status = run_child(
        "env::keys_come_from_the_environment_when_set",
        &[
            (CHILD, "1"),
            ("CRM_STORE_TEST_ENV_DB", db.to_str().unwrap()),
            ("CRM_PEPPER_FILE", pepper.to_str().unwrap()),
            ("CRM_SEAL_KEY", SEAL_HEX),
        ],
    );
    assert!(status.success(), "the child's checks passed");
    assert!(pepper.exists(), "pepper created where CRM_PEPPER_FILE says");
    let default_keys = crm_store::default_keys_dir(&db);
    assert!(!default_keys.join("pepper").exists());
    assert!(
        !default_keys.join("seal.key").exists(),
        "no seal key file when CRM_SEAL_KEY is set"
    );
}

#[test]
fn a_malformed_seal_key_is_refused_without_echoing_it() {
    if std::env::var_os(CHILD).is_some() {
        let err = StoreOptions::from_env().expect_err("a 3-byte key is not a key");
        let message = err.to_string();
        assert!(message.contains("CRM_SEAL_KEY"), "{message}");
        assert!(!message.contains("c2VjcmV0"), "{message}");
        return;
    }
    let status = run_child(
        "env::a_malformed_seal_key_is_refused_without_echoing_it",
        &[(CHILD, "1"), ("CRM_SEAL_KEY", "c2VjcmV0")],
    );
    assert!(status.success());
}
