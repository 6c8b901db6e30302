//! Opening rules: keys must be named, every replica must share the pepper
//! and the seal key, migrations run once even when replicas start together,
//! and no password or secret reaches the database in clear.

use crate::support::{fresh_schema, open, options, target};
use crm_domain::SecretString;
use crm_domain::ports::SecretSealer;
use crm_store::StoreOptions;
use crm_store_postgres::{Error, PostgresStore};

#[tokio::test]
async fn keys_must_be_named_for_a_shared_database() {
    let Some(t) = target("keys_must_be_named_for_a_shared_database") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let err = PostgresStore::open(&t, StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeysNotNamed { .. }), "{err}");
    assert!(err.to_string().contains("CRM_PEPPER_FILE"), "{err}");
}

#[tokio::test]
async fn a_replica_with_another_pepper_is_refused() {
    let Some(t) = target("a_replica_with_another_pepper_is_refused") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = open(&t, first.path(), None).await;
    // The same pepper file opens again (a second replica sharing it).
    let _b = open(&t, first.path(), None).await;
    let err = PostgresStore::open(&t, options(second.path(), None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PepperMismatch { .. }), "{err}");
    drop(a);
}

/// Before the check, a replica with another seal key started, sealed new
/// admin keys nobody else could open and failed on everyone else's.
#[tokio::test]
async fn a_replica_with_another_seal_key_is_refused() {
    let Some(base) = target("a_replica_with_another_seal_key_is_refused") else {
        return;
    };
    let t = fresh_schema(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let key_b = "b2".repeat(32);
    let with_key_b = || {
        options(dir.path(), None).with_seal_key(crm_store::SealKeySource::Key(
            crm_store::parse_key_text(&key_b).unwrap(),
        ))
    };
    let a = open(&t, dir.path(), None).await;
    let err = PostgresStore::open(&t, with_key_b()).await.unwrap_err();
    assert!(matches!(err, Error::SealKeyMismatch { .. }), "{err}");
    let msg = err.to_string();
    for fix in ["another seal key", "CRM_SEAL_KEY", "CRM_SEAL_KEY_FILE"] {
        assert!(msg.contains(fix), "the error names the fix ({fix}): {msg}");
    }
    for key in [crate::support::SEAL_KEY_HEX, key_b.as_str()] {
        assert!(!msg.contains(&key[..16]), "no key in the error: {msg}");
    }
    // The key every replica shares still opens (a second replica).
    let _b = open(&t, dir.path(), None).await;
    drop(a);
    // Replicas starting together on a fresh database record one check
    // value between them, and both hold the same key.
    let t2 = fresh_schema(&base).await;
    let (x, y) = tokio::join!(
        PostgresStore::open(&t2, options(dir.path(), None)),
        PostgresStore::open(&t2, with_key_b()),
    );
    assert!(
        x.is_ok() != y.is_ok(),
        "exactly one of two replicas with different keys starts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some(t) = target("replicas_starting_together_migrate_once") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = tokio::join!(
        PostgresStore::open(&t, options(dir.path(), None)),
        PostgresStore::open(&t, options(dir.path(), None)),
        PostgresStore::open(&t, options(dir.path(), None)),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
}

#[tokio::test]
async fn sealed_secrets_round_trip_and_an_unreachable_database_names_no_password() {
    let Some(t) = target("sealed_secrets_round_trip") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&t, dir.path(), None).await;
    let ctx = crm_domain::host::SealContext::host_admin_key(&crm_domain::HostId::new("h-1"));
    let sealed = store
        .seal(&ctx, &SecretString::from("sk-canary-admin-key".to_owned()))
        .unwrap();
    assert!(!sealed.0.contains("canary"));
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&store.open(&ctx, &sealed).unwrap()),
        "sk-canary-admin-key"
    );

    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw-canary-123\n").unwrap();
    // Port 1 on loopback: nothing listens there.
    let bad =
        crm_store_postgres::PgTarget::parse("postgres://crm@127.0.0.1:1/crm", Some(&pw)).unwrap();
    let err = PostgresStore::open(&bad, options(dir.path(), None))
        .await
        .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("pw-canary"), "{msg}");
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
}
