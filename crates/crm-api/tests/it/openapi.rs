//! The committed OpenAPI document is the one the code generates.

use std::path::PathBuf;

#[test]
fn committed_openapi_document_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let generated = crm_api::openapi::document_json();
    if std::env::var_os("CRM_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date; regenerate it with \
         `CRM_UPDATE_OPENAPI=1 cargo test -p crm-api committed_openapi` \
         (or `cargo run -p crm-server -- --print-openapi > docs/openapi.json`) and commit it"
    );
}

#[tokio::test]
async fn served_document_is_the_generated_one_and_needs_no_token() {
    let srv = super::spawn_server().await;
    let r = srv
        .http
        .get(srv.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: serde_json::Value = r.json().await.unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&crm_api::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
    let ui = srv.http.get(srv.url("/api/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}
