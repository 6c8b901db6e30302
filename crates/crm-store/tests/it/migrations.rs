//! Schema upgrades: a database created by the first migration set opens with
//! the latest store, its data intact; a newer database is refused.

use crate::support::{open, temp_db};
use crm_domain::ports::{BatchRepo, HostRepo, PackRepo};
use crm_domain::{BatchId, HostId, JournalState, PackId};
use crm_store::contract::{capabilities, manifest};
use crm_store::{SqliteStore, StoreOptions, migrations};
use rusqlite::{Connection, params};

#[tokio::test]
async fn a_version_1_database_upgrades_with_its_data() {
    let (_dir, db) = temp_db();
    {
        let mut conn = Connection::open(&db).unwrap();
        migrations::run(&mut conn, Some(1)).unwrap();
        let caps = serde_json::to_string(&capabilities("0.1.104")).unwrap();
        conn.execute(
            "INSERT INTO packs VALUES ('cn-official', '1.0.0', 'sum-1', ?1, 'bundled', 1,
                                       '2026-10-01T00:00:00.000000000Z')",
            [serde_json::to_string(&manifest("cn-official", "1.0.0")).unwrap()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO hosts VALUES ('h1', 'relay-one', 'https://relay.example.com',
                 '{\"kind\":\"env\",\"var\":\"CRM_ADMIN_KEY\"}', ?1, 600,
                 '2026-10-01T00:00:00.000000000Z')",
            [caps],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO batches VALUES ('b-1', 'h1', 'cn-official', 'deepseek', 'self_service',
                 '1.0.0', 'sum-1', 'applying', NULL, 'not_configured', '{\"items\":[],\"notes\":[]}',
                 '[]', '2026-10-01T00:00:00.000000000Z', '2026-10-01T00:00:00.000000000Z')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO journal VALUES ('b-1', 1, 'b-1/acct', 'create', 'account', 'nk', 'crm-acct',
                 NULL, 'digest', '{}', 'pending', NULL, '2026-10-01T00:00:00.000000000Z', NULL)",
            [],
        )
        .unwrap();
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('hosts')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !cols.contains(&"host_version".to_owned()),
            "really version 1"
        );
    }

    let store = open(&db).await;
    let host = store.get_host("relay-one").await.unwrap();
    assert_eq!(host.capabilities, Some(capabilities("0.1.104")));
    assert_eq!(host.reconcile_every_secs, Some(600));
    let pack = store
        .get_pack(&PackId::new("cn-official"), None)
        .await
        .unwrap();
    assert_eq!(pack.manifest, manifest("cn-official", "1.0.0"));
    let pending = store
        .pending_intents(Some(BatchId::new("b-1")))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, JournalState::Pending);
    assert_eq!(
        store.get_batch(&BatchId::new("b-1")).await.unwrap().host_id,
        HostId::new("h1")
    );
    drop(store);

    let conn = Connection::open(&db).unwrap();
    let (version, probed): (Option<String>, Option<String>) = conn
        .query_row(
            "SELECT host_version, probed_at FROM hosts WHERE id = 'h1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        version.as_deref(),
        Some("0.1.104"),
        "V2 backfilled the probe columns"
    );
    assert!(probed.is_some());
    let applied: i32 = conn
        .query_row(
            "SELECT max(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(applied, migrations::latest_version());
    assert!(applied >= 2);
}

#[tokio::test]
async fn a_database_from_a_newer_crm_is_refused() {
    let (_dir, db) = temp_db();
    drop(open(&db).await);
    let conn = Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         VALUES (?1, 'from_the_future', '2027-01-01T00:00:00Z', '1')",
        params![migrations::latest_version() + 1],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&db, StoreOptions::default())
        .await
        .expect_err("an unknown migration must stop the store");
    let message = err.to_string();
    assert!(message.contains("cannot migrate"), "{message}");
}

#[tokio::test]
async fn a_damaged_migration_history_is_an_open_error_not_a_crash() {
    let (_dir, db) = temp_db();
    drop(open(&db).await);
    let conn = Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE refinery_schema_history SET applied_on = 'not a time'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&db, StoreOptions::default())
        .await
        .expect_err("a damaged history must stop the store");
    assert!(err.to_string().contains("damaged"), "{err}");
}

const SEAL_KEY: [u8; 32] = [0x5e; 32];

fn seal_key() -> crm_store::SealKeySource {
    crm_store::SealKeySource::Key(crm_store::parse_key_text(&hex::encode(SEAL_KEY)).unwrap())
}

/// A version-5 database (before V6, the re-seal step) holding v1 values: a
/// host's sealed admin key, and a batch's login password in a journal entry
/// and a managed resource.
fn write_v1_fixture(db: &std::path::Path) {
    use crm_store::contract::v1_fixture::{self, *};
    let mut conn = Connection::open(db).unwrap();
    migrations::run(&mut conn, Some(5)).unwrap();
    let t = "2026-10-01T00:00:00.000000000Z";
    conn.execute(
        "INSERT INTO hosts (id, name, base_url, admin_credential, created_at)
         VALUES (?1, ?2, 'https://relay.example.com', ?3, ?4)",
        params![
            HOST_ID,
            HOST_NAME,
            v1_fixture::admin_credential(&SEAL_KEY),
            t
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO batches VALUES (?1, ?2, 'cn-official', 'deepseek', 'self_service',
             '1.0.0', 'sum-1', 'applied', NULL, 'self_service_ready', '{\"items\":[],\"notes\":[]}',
             '[]', ?3, ?3)",
        params![BATCH_ID, HOST_ID, t],
    )
    .unwrap();
    for (seq, kind, nk, desired) in [
        (1, "user", EMAIL.to_owned(), user_desired(&SEAL_KEY)),
        (
            2,
            "user_api_key",
            format!("key:{EMAIL}:crm-key"),
            key_desired(&SEAL_KEY),
        ),
    ] {
        conn.execute(
            "INSERT INTO journal VALUES (?1, ?2, ?3, 'create', ?4, ?5, ?5, ?2, 'digest', ?6,
                 'applied', NULL, ?7, ?7)",
            params![
                BATCH_ID,
                seq,
                format!("{BATCH_ID}/{seq}"),
                kind,
                nk,
                desired,
                t
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO managed_resources VALUES (?1, ?2, ?3, ?4, ?4, 'create', 'digest', ?5,
                 'live', ?3, ?6)",
            params![BATCH_ID, kind, seq, nk, desired, t],
        )
        .unwrap();
    }
}

/// Every sealed value in the database's tables, as text.
fn sealed_columns(db: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT admin_credential FROM hosts",
        "SELECT desired FROM journal",
        "SELECT desired FROM managed_resources",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

fn upgrades_recorded(db: &std::path::Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM data_upgrades WHERE name = ?1",
            [crm_store::reseal::NAME],
            |r| r.get(0),
        )
        .unwrap()
}

/// Before the fix there was no v2 and no re-seal: this database's values
/// opened anywhere. Now they are re-sealed for their row once, at open.
#[tokio::test]
async fn v1_sealed_values_are_resealed_for_their_row_once() {
    let (_dir, db) = temp_db();
    write_v1_fixture(&db);
    assert!(sealed_columns(&db).iter().all(|c| !c.contains("\"v2:")));

    let store = SqliteStore::open(&db, StoreOptions::default().with_seal_key(seal_key()))
        .await
        .unwrap();
    crm_store::contract::check_v1_fixture_resealed(&store).await;
    drop(store);
    let after = sealed_columns(&db);
    assert!(
        after.iter().all(|c| !c.contains("\"v1:")),
        "no v1 value left: {after:?}"
    );
    assert_eq!(upgrades_recorded(&db), 1);

    // Recorded, so it runs once: opening again rewrites nothing.
    drop(
        SqliteStore::open(&db, StoreOptions::default().with_seal_key(seal_key()))
            .await
            .unwrap(),
    );
    assert_eq!(sealed_columns(&db), after);
    assert_eq!(upgrades_recorded(&db), 1);

    // The canary rule still holds: neither secret is in the files.
    use crm_store::contract::v1_fixture::{ADMIN_KEY, PASSWORD};
    for (name, bytes) in crate::support::db_files(&db) {
        for secret in [ADMIN_KEY, PASSWORD] {
            assert!(
                !crate::support::contains(&bytes, secret.as_bytes()),
                "{name} holds a secret"
            );
        }
    }
}

/// With the wrong seal key nothing is written (no partial re-seal, no
/// record), the store still opens, a v1 value is refused with a reason,
/// and the next open with the right key re-seals everything.
#[tokio::test]
async fn a_reseal_that_cannot_open_a_value_writes_nothing_and_is_retried() {
    use crm_domain::host::{CredentialRef, SealContext};
    use crm_domain::ports::SecretSealer;
    let (_dir, db) = temp_db();
    write_v1_fixture(&db);
    let before = sealed_columns(&db);
    let wrong = crm_store::SealKeySource::Key(crm_store::parse_key_text(&"77".repeat(32)).unwrap());
    let store = SqliteStore::open(&db, StoreOptions::default().with_seal_key(wrong))
        .await
        .expect("the store opens even when the re-seal cannot run");
    let host = store
        .get_host(crm_store::contract::v1_fixture::HOST_NAME)
        .await
        .unwrap();
    let CredentialRef::Sealed { sealed } = &host.admin_credential else {
        panic!("sealed");
    };
    let err = store
        .open(&SealContext::host_admin_key(&host.id), sealed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("v1"), "{err}");
    drop(store);
    assert_eq!(sealed_columns(&db), before, "nothing re-sealed in part");
    assert_eq!(upgrades_recorded(&db), 0);
    assert!(
        !seal_check_recorded(&db),
        "a key that opened none of the old values is not recorded as the database's"
    );

    let store = SqliteStore::open(&db, StoreOptions::default().with_seal_key(seal_key()))
        .await
        .unwrap();
    crm_store::contract::check_v1_fixture_resealed(&store).await;
    assert_eq!(upgrades_recorded(&db), 1);
    assert!(seal_check_recorded(&db), "the key that opened them is");
}

fn seal_check_recorded(db: &std::path::Path) -> bool {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM installation WHERE name = ?1",
            [crm_store::seal_check::NAME],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

/// The decision of docs/design.md §5 "Secrets": a v1 value that does not
/// open (here: sealed under another key, as an altered value would be)
/// does not stop the store from opening. It is left as it is with a
/// warning naming its table, row and field (never the value), the values
/// that do open are re-sealed, the pass is not recorded (so the next open
/// tries again), and the value fails at use with what to do.
#[tokio::test]
async fn a_v1_value_that_does_not_open_is_left_named_and_fails_at_use() {
    use crm_domain::host::{CredentialRef, SealContext};
    use crm_domain::ports::SecretSealer;
    use crm_store::contract::v1_fixture::{self, HOST_ID, HOST_NAME};
    let logs = crate::support::logs();
    let (_dir, db) = temp_db();
    write_v1_fixture(&db);
    let foreign = v1_fixture::admin_credential(&[0x77; 32]);
    Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE hosts SET admin_credential = ?1 WHERE id = ?2",
            params![foreign, HOST_ID],
        )
        .unwrap();

    let store = SqliteStore::open(&db, StoreOptions::default().with_seal_key(seal_key()))
        .await
        .expect("a value that does not open does not stop the store");
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
    assert!(
        logs.lines_with(&ciphertext[3..40]).is_empty(),
        "no log line holds the value"
    );
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
        assert!(
            err.contains(hint),
            "the error at use says what to do: {err}"
        );
    }
    drop(store);
    let after = sealed_columns(&db);
    assert_eq!(
        after.iter().filter(|c| c.contains("\"v1:")).count(),
        1,
        "the login passwords that open are re-sealed: {after:?}"
    );
    assert_eq!(
        upgrades_recorded(&db),
        0,
        "not recorded while a value is left"
    );

    // The next open tries the value again, and still leaves it.
    drop(
        SqliteStore::open(&db, StoreOptions::default().with_seal_key(seal_key()))
            .await
            .unwrap(),
    );
    assert_eq!(sealed_columns(&db), after);
    assert_eq!(upgrades_recorded(&db), 0);
}
