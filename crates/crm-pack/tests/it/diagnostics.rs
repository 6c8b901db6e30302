//! Many mistakes, one parse: every diagnostic with its position.

use crm_pack::{PackError, load_pack_file};

#[test]
fn every_mistake_is_reported_in_one_parse() {
    let path = crate::repo_path("fixtures/packs/eight-mistakes.toml");
    let err = load_pack_file(&path).expect_err("the fixture is invalid");
    let PackError::Invalid { diagnostics, .. } = &err else {
        panic!("expected diagnostics, got {err}");
    };
    assert!(diagnostics.len() >= 8, "{err}");
    // Snapshot `line:column: message [path]`; the file name is machine-specific.
    let shown: Vec<String> = diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}  [{}]", d.line, d.column, d.message, d.path))
        .collect();
    insta::assert_snapshot!(shown.join("\n"));
    // Display uses file:line:column: message.
    let first = &diagnostics[0];
    assert_eq!(
        first.to_string(),
        format!(
            "{}:{}:{}: {}",
            path.display(),
            first.line,
            first.column,
            first.message
        )
    );
}

#[test]
fn syntax_errors_come_with_a_position() {
    let err = crm_pack::parse_pack(
        "broken.toml",
        "schema_version = 1\npack_id = \"x\nname = 1\n",
    )
    .expect_err("invalid TOML");
    insta::assert_snapshot!(err.to_string());
}
