//! Two console instances over one database, as two crm-server replicas
//! behind a load balancer without stickiness: a session begun on one is
//! honoured by the other (CSRF token included), and a logout on either
//! ends it on both. Runs on a shared SQLite file always, and on PostgreSQL
//! when `CRM_TEST_POSTGRES_URL` names a database.

use crate::support::{ADMIN, VIEWER, get, login, post};
use axum::Router;
use axum::http::StatusCode;
use crm_app::{App, AppConfig};
use crm_domain::SecretString;
use crm_store::{SealKeySource, StoreOptions, parse_key_text};
use std::path::Path;
use std::sync::Arc;

const SEAL_KEY_HEX: &str = "0202020202020202020202020202020202020202020202020202020202020202";

async fn console_on(db: &str, keys: &Path) -> Router {
    let options = StoreOptions::default()
        .with_pepper_file(keys.join("pepper"))
        .with_seal_key(SealKeySource::Key(parse_key_text(SEAL_KEY_HEX).unwrap()));
    let app = App::open_with(AppConfig::new(db), options, Arc::new(crm_app::ids::UuidIds))
        .await
        .expect("app opens");
    crm_console::router(crm_console::ConsoleState::new(
        app,
        SecretString::from(ADMIN),
        Some(SecretString::from(VIEWER)),
    ))
}

async fn sessions_cross_replicas(db: &str, keys: &Path) {
    let one = console_on(db, keys).await;
    let two = console_on(db, keys).await;

    let cookie = login(&one, ADMIN).await;
    let home = get(&two, "/", Some(&cookie)).await;
    assert_eq!(
        home.status,
        StatusCode::OK,
        "a session begun on one replica is honoured by the other"
    );
    assert!(home.body.contains("signed in: admin"));
    let csrf_two = home.csrf();
    let csrf_one = get(&one, "/", Some(&cookie)).await.csrf();
    assert_eq!(csrf_one, csrf_two, "both replicas derive one CSRF token");

    let viewer = login(&two, VIEWER).await;
    let seen = get(&one, "/", Some(&viewer)).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(
        seen.body.contains("signed in: read-only"),
        "the role travels too"
    );

    // A POST checked on the other replica: a wrong token is refused, the
    // session's token accepted (logout on `two` of a login on `one`).
    let refused = post(&two, "/logout", Some(&cookie), &[("csrf", "wrong")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = post(&two, "/logout", Some(&cookie), &[("csrf", &csrf_one)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    for (name, console) in [("one", &one), ("two", &two)] {
        let after = get(console, "/", Some(&cookie)).await;
        assert_eq!(
            (after.status, after.location()),
            (StatusCode::SEE_OTHER, "/login"),
            "after a logout on replica two, replica {name} refuses the cookie"
        );
    }
    assert_eq!(
        get(&two, "/", Some(&viewer)).await.status,
        StatusCode::OK,
        "one logout ends one session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_replica_switch_and_a_logout_ends_it_everywhere_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    sessions_cross_replicas(db.to_str().unwrap(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_replica_switch_and_a_logout_ends_it_everywhere_postgres() {
    let test = "a_session_survives_a_replica_switch_and_a_logout_ends_it_everywhere_postgres";
    let url = match std::env::var("CRM_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: CRM_TEST_POSTGRES_URL is not set (see .ci/run for a throwaway cluster)"
            );
            return;
        }
    };
    let schema = format!("crm_console_{}", uuid::Uuid::new_v4().simple());
    crm_store_postgres::PgTarget::parse(&url, None)
        .expect("a usable test URL")
        .create_schema(&schema)
        .await
        .expect("create a test schema");
    // The URL's `options` give every connection the private schema.
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    sessions_cross_replicas(&db, dir.path()).await;
}
