//! Upgrades: a database an older crm left with v1 sealed values (no
//! associated data) is re-sealed for each value's row when the store opens.

use crate::support::{SEAL_KEY_HEX, fresh_schema_with_client, open, options, target};
use crm_store::contract::v1_fixture::{self, *};
use crm_store_postgres::{PostgresStore, migrations};

fn seal_key() -> [u8; 32] {
    hex::decode(SEAL_KEY_HEX).unwrap().try_into().unwrap()
}

async fn sealed_columns(c: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT admin_credential FROM hosts ORDER BY id",
        "SELECT desired FROM journal ORDER BY batch_id, seq",
        "SELECT desired FROM managed_resources ORDER BY batch_id, kind, host_object_id",
    ] {
        out.extend(c.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)));
    }
    out
}

async fn recorded(c: &tokio_postgres::Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM data_upgrades WHERE name = $1",
        &[&crm_store::reseal::NAME],
    )
    .await
    .unwrap()
    .get(0)
}

/// A version-3 schema (before V4, the re-seal step) holding v1 values: a
/// host's sealed admin key, and a batch's login password in journal entries
/// and managed resources.
async fn write_v1_fixture(c: &mut tokio_postgres::Client) {
    migrations::run(c, Some(3)).await.unwrap();
    let key = seal_key();
    let at = "2026-10-01T00:00:00.000000000Z";
    c.execute(
        "INSERT INTO hosts (id, name, base_url, admin_credential, created_at)
         VALUES ($1, $2, 'https://relay.example.com', $3, $4)",
        &[
            &HOST_ID,
            &HOST_NAME,
            &v1_fixture::admin_credential(&key),
            &at,
        ],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO batches (id, host_id, pack_id, provider_key, mode, pack_version,
             pack_checksum, status, access_status, plan, upstream_keys, created_at, updated_at)
         VALUES ($1, $2, 'cn-official', 'deepseek', 'self_service', '1.0.0', 'sum-1',
             'applied', 'self_service_ready', '{\"items\":[],\"notes\":[]}', '[]', $3, $3)",
        &[&BATCH_ID, &HOST_ID, &at],
    )
    .await
    .unwrap();
    for (seq, kind, nk, desired) in [
        (1i64, "user", EMAIL.to_owned(), user_desired(&key)),
        (
            2,
            "user_api_key",
            format!("key:{EMAIL}:crm-key"),
            key_desired(&key),
        ),
    ] {
        c.execute(
            "INSERT INTO journal (batch_id, seq, intent_key, op, kind, natural_key, name,
                 host_object_id, spec_digest, desired, state, created_at, resolved_at)
             VALUES ($1, $2, $3, 'create', $4, $5, $5, $2, 'digest', $6, 'applied', $7, $7)",
            &[
                &BATCH_ID,
                &seq,
                &format!("{BATCH_ID}/{seq}"),
                &kind,
                &nk,
                &desired,
                &at,
            ],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO managed_resources (batch_id, kind, host_object_id, name, natural_key,
                 origin, spec_digest, desired, state, journal_seq, updated_at)
             VALUES ($1, $2, $3, $4, $4, 'create', 'digest', $5, 'live', $3, $6)",
            &[&BATCH_ID, &kind, &seq, &nk, &desired, &at],
        )
        .await
        .unwrap();
    }
}

/// Before the fix there was no v2 and no re-seal step: these values opened
/// in any row. Now they are re-sealed for their row once, at open.
#[tokio::test]
async fn v1_sealed_values_are_resealed_for_their_row_once() {
    let Some(t) = target("v1_sealed_values_are_resealed_for_their_row_once") else {
        return;
    };
    let (t, mut c, _task) = fresh_schema_with_client(&t).await;
    write_v1_fixture(&mut c).await;
    let dir = tempfile::tempdir().unwrap();
    // With another seal key the pass cannot open the values: it writes
    // nothing and is not recorded, and the store opens anyway.
    let mut wrong = options(dir.path(), None);
    wrong.seal_key = Some(crm_store::SealKeySource::Key(
        crm_store::parse_key_text(&"77".repeat(32)).unwrap(),
    ));
    let before = sealed_columns(&c).await;
    drop(PostgresStore::open(&t, wrong).await.expect("opens anyway"));
    assert_eq!(
        sealed_columns(&c).await,
        before,
        "nothing re-sealed in part"
    );
    assert_eq!(recorded(&c).await, 0);

    let store = open(&t, dir.path(), None).await;
    crm_store::contract::check_v1_fixture_resealed(&store).await;
    drop(store);
    let after = sealed_columns(&c).await;
    assert!(after.iter().all(|v| !v.contains("\"v1:")), "{after:?}");
    assert!(
        after
            .iter()
            .all(|v| !v.contains(ADMIN_KEY) && !v.contains(PASSWORD))
    );
    assert_eq!(recorded(&c).await, 1);

    drop(open(&t, dir.path(), None).await);
    assert_eq!(sealed_columns(&c).await, after, "recorded, so it runs once");
}

/// As on SQLite: a v1 value that does not open is left as it is, named by
/// table, row and field in a warning, the rest re-sealed, the pass not
/// recorded, and the value fails at use with what to do.
#[tokio::test]
async fn a_v1_value_that_does_not_open_is_left_named_and_fails_at_use() {
    use crm_domain::host::{CredentialRef, SealContext};
    use crm_domain::ports::{HostRepo, SecretSealer};
    let Some(t) = target("a_v1_value_that_does_not_open_is_left_named_and_fails_at_use") else {
        return;
    };
    let logs = crate::support::logs();
    let (t, mut c, _task) = fresh_schema_with_client(&t).await;
    write_v1_fixture(&mut c).await;
    let foreign = v1_fixture::admin_credential(&[0x77; 32]);
    c.execute(
        "UPDATE hosts SET admin_credential = $1 WHERE id = $2",
        &[&foreign, &HOST_ID],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(&t, dir.path(), None).await;
    let warned = logs.lines_with(HOST_ID);
    assert!(
        warned
            .iter()
            .any(|l| l.contains("WARN") && l.contains("hosts") && l.contains("admin_credential")),
        "the warning names table, row and field: {warned:?}"
    );
    let ciphertext = serde_json::from_str::<serde_json::Value>(&foreign).unwrap()["sealed"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(logs.lines_with(&ciphertext[3..40]).is_empty());
    let host = store.get_host(HOST_NAME).await.unwrap();
    let CredentialRef::Sealed { sealed } = &host.admin_credential else {
        panic!("sealed");
    };
    assert_eq!(sealed.0, ciphertext, "left as it is");
    let err = store
        .open(&SealContext::host_admin_key(&host.id), sealed)
        .unwrap_err()
        .to_string();
    for hint in ["v1", "CRM_SEAL_KEY", "crm host remove"] {
        assert!(err.contains(hint), "{err}");
    }
    drop(store);
    let after = sealed_columns(&c).await;
    assert_eq!(
        after.iter().filter(|v| v.contains("\"v1:")).count(),
        1,
        "{after:?}"
    );
    assert_eq!(recorded(&c).await, 0);
    drop(open(&t, dir.path(), None).await);
    assert_eq!(sealed_columns(&c).await, after);
    assert_eq!(recorded(&c).await, 0);
}

/// A replica whose key opens none of the old values does not make its key
/// the database's: the seal key check is recorded by the first open whose
/// key opens them.
#[tokio::test]
async fn a_key_that_opens_no_old_value_is_not_recorded_as_the_databases() {
    let Some(t) = target("a_key_that_opens_no_old_value_is_not_recorded_as_the_databases") else {
        return;
    };
    let (t, mut c, _task) = fresh_schema_with_client(&t).await;
    write_v1_fixture(&mut c).await;
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = options(dir.path(), None);
    wrong.seal_key = Some(crm_store::SealKeySource::Key(
        crm_store::parse_key_text(&"77".repeat(32)).unwrap(),
    ));
    drop(PostgresStore::open(&t, wrong).await.expect("opens"));
    assert_eq!(checks(&c).await, 0);
    drop(open(&t, dir.path(), None).await);
    assert_eq!(checks(&c).await, 1, "the key that opened them is recorded");
}

async fn checks(c: &tokio_postgres::Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM installation WHERE name = $1",
        &[&crm_store::seal_check::NAME],
    )
    .await
    .unwrap()
    .get(0)
}
