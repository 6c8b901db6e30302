//! Secrets at rest: canary keys never reach the database files; their
//! fingerprints and sealed forms do.

use crate::support::{contains, db_files, open, temp_db};
use crm_domain::batch::NewJournalEntry;
use crm_domain::host::{CredentialRef, SealContext};
use crm_domain::ports::{BatchRepo, HostRepo, SecretSealer};
use crm_domain::secret::ExposeSecret;
use crm_domain::{BatchId, BatchStatus, JournalOp, ResourceKind, SecretString};
use crm_store::contract::{batch, host};
use std::path::Path;

fn canary() -> String {
    format!("sk-CANARY-{}", uuid::Uuid::new_v4())
}

fn assert_files(db: &Path, canaries: &[&str], fingerprint_hex: &str, when: &str) {
    let files = db_files(db);
    assert!(!files.is_empty());
    for (name, bytes) in &files {
        for c in canaries {
            assert!(
                !contains(bytes, c.as_bytes()),
                "{when}: {name} contains a canary"
            );
        }
        assert!(
            !contains(bytes, b"CANARY"),
            "{when}: {name} contains part of a canary"
        );
    }
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, fingerprint_hex.as_bytes())),
        "{when}: the upstream key's fingerprint is stored"
    );
}

#[tokio::test]
async fn canary_keys_never_reach_the_database_files() {
    let (_dir, db) = temp_db();
    let admin_canary = canary();
    let upstream_canary = canary();
    let store = open(&db).await;

    let admin = SecretString::from(admin_canary.clone());
    let ctx = SealContext::host_admin_key(&crm_domain::HostId::new("h1"));
    let sealed = store.seal(&ctx, &admin).unwrap();
    let mut h = host("h1", "relay-one");
    h.admin_credential = CredentialRef::Sealed {
        sealed: sealed.clone(),
    };
    store.add_host(h).await.unwrap();

    let upstream = SecretString::from(upstream_canary.clone());
    let fp = store.fingerprinter().fingerprint(&upstream);
    let mut b = batch(
        "b-1",
        "h1",
        "cn-official/deepseek",
        BatchStatus::Applying,
        0,
    );
    b.upstream_keys = vec![fp.clone()];
    store.create_batch(b).await.unwrap();
    // Provisioning puts the fingerprint in the account's natural key.
    store
        .record_intent(NewJournalEntry {
            batch_id: BatchId::new("b-1"),
            intent_key: format!("b-1/create/account/{}", fp.hmac),
            op: JournalOp::Create,
            kind: ResourceKind::Account,
            natural_key: format!("deepseek|https://api.deepseek.com|{}", fp.hmac),
            name: format!("crm-deepseek-{}", fp.short()),
            host_object_id: None,
            spec_digest: "d".into(),
            desired: serde_json::json!({"credential_fingerprint": fp}),
        })
        .await
        .unwrap();

    assert_files(
        &db,
        &[&admin_canary, &upstream_canary],
        &fp.hmac,
        "while open",
    );

    // The sealed credential still opens, from what was stored, to the key.
    let stored = store.get_host("h1").await.unwrap();
    let CredentialRef::Sealed {
        sealed: stored_sealed,
    } = stored.admin_credential
    else {
        panic!("credential kind changed");
    };
    assert_eq!(
        store.open(&ctx, &stored_sealed).unwrap().expose_secret(),
        admin_canary
    );
    let stored_fp = store
        .get_batch(&BatchId::new("b-1"))
        .await
        .unwrap()
        .upstream_keys;
    assert_eq!(stored_fp, std::slice::from_ref(&fp));

    // A fresh fingerprinter of this installation recognises the key again.
    let reopened = {
        drop(store);
        open(&db).await
    };
    assert_eq!(reopened.fingerprinter().fingerprint(&upstream), fp);
    drop(reopened);
    assert_files(
        &db,
        &[&admin_canary, &upstream_canary],
        &fp.hmac,
        "after close",
    );
}

#[tokio::test]
async fn keys_live_outside_the_database_and_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, db) = temp_db();
    let store = open(&db).await;
    store
        .seal(
            &SealContext::host_admin_key(&crm_domain::HostId::new("h1")),
            &SecretString::from("x".repeat(8)),
        )
        .unwrap();
    let keys = crm_store::default_keys_dir(&db);
    for name in ["pepper", "seal.key"] {
        let mode = std::fs::metadata(keys.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let pepper = std::fs::read_to_string(keys.join("pepper")).unwrap();
    for (name, bytes) in db_files(&db) {
        assert!(
            !contains(&bytes, pepper.trim().as_bytes()),
            "{name} holds the pepper"
        );
    }

    // Another installation (another pepper) fingerprints the same key differently.
    let (_dir2, db2) = temp_db();
    let other = open(&db2).await;
    let key = SecretString::from("sk-live-same-key-1234");
    assert_ne!(
        store.fingerprinter().fingerprint(&key).hmac,
        other.fingerprinter().fingerprint(&key).hmac
    );
}
