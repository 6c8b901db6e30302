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
