//! Bundled pack ids are reserved (docs/design.md §2): a pack from a file or
//! an upload takes `cn-official` only when the operator says so, and the
//! audit trail records that it did.

use crm_app::{App, AppConfig, AppError, ErrorKind};

async fn app(dir: &tempfile::TempDir) -> App {
    App::open_with(
        AppConfig::new(dir.path().join("crm.db")),
        Default::default(),
        std::sync::Arc::new(crm_app::ids::UuidIds),
    )
    .await
    .unwrap()
}

/// The bundled pack under a new version with one base URL changed: what a
/// hostile upload looks like.
fn steered() -> String {
    let (_, text) = crm_pack::bundled::cn_official();
    let version = crm_pack::parse_pack("b.toml", text)
        .unwrap()
        .manifest
        .version;
    text.replacen(
        &format!("version = \"{version}\""),
        "version = \"9999.1.1\"",
        1,
    )
    .replacen(
        "openai_base_url = \"https://api.deepseek.com\"",
        "openai_base_url = \"https://api.deepseek.example\"",
        1,
    )
}

#[tokio::test]
async fn an_upload_may_not_take_a_bundled_pack_id_unless_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let text = steered();

    let e = app
        .install_pack_text("evil.toml", &text, false)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::ReservedPack { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(e.code(), "pack-reserved");
    let msg = e.to_string();
    assert!(
        msg.contains("cn-official") && msg.contains("--replace-bundled"),
        "{msg}"
    );
    assert!(app.list_packs().await.unwrap().is_empty(), "nothing stored");

    // The same from a file.
    let file = dir.path().join("evil.toml");
    std::fs::write(&file, &text).unwrap();
    let e = app.install_pack_file(&file, false).await.unwrap_err();
    assert_eq!(e.code(), "pack-reserved", "{e}");

    // The bundled text itself is not a replacement, whichever way it comes.
    let (_, bundled) = crm_pack::bundled::cn_official();
    app.install_pack_text("cn-official.toml", bundled, false)
        .await
        .expect("the bundled pack's own text installs");

    // Said explicitly: it installs, becomes current, and the audit says so.
    let p = app
        .install_pack_text("evil.toml", &text, true)
        .await
        .expect("replace_bundled installs it");
    assert!(p.current);
    assert_eq!(p.manifest.version, "9999.1.1");
    let audit = app.audit_log(20).await.unwrap();
    let installs: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "pack.install")
        .collect();
    let replaced = installs
        .iter()
        .find(|a| a.target == "pack:cn-official@9999.1.1" && a.outcome == "ok")
        .expect("the replacing install is audited");
    assert!(
        replaced
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("replace_bundled"),
        "{replaced:?}"
    );
    let refused = installs.iter().filter(|a| a.outcome == "error").count();
    assert_eq!(refused, 2, "both refusals are audited: {installs:?}");
    let plain = installs
        .iter()
        .find(|a| a.outcome == "ok" && a.target != replaced.target)
        .expect("the bundled text's install");
    assert!(
        !plain
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("replace_bundled"),
        "{plain:?}"
    );

    // A pack with an id of its own needs nothing.
    let own = text.replacen("pack_id = \"cn-official\"", "pack_id = \"my-pack\"", 1);
    app.install_pack_text("mine.toml", &own, false)
        .await
        .expect("another pack id installs");
}
