//! The bundled pack validates and says what issue 2 asks of it.

use crm_domain::{AccountMode, Currency};
use crm_pack::{bundled, load_pack_file, parse_pack};

#[test]
fn bundled_pack_validates() {
    let (name, text) = bundled::cn_official();
    let pack = match parse_pack(name, text) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let m = &pack.manifest;
    assert_eq!(m.pack_id.as_str(), "cn-official");
    for id in ["deepseek", "kimi", "zhipu", "minimax", "qwen", "doubao"] {
        assert!(m.provider(id).is_some(), "bundled pack lacks {id}");
    }
    assert!(m.providers.len() >= 6);
    for p in &m.providers {
        // The smoke-test model is served and listed.
        assert!(p.model(&p.smoke_test_model).is_some(), "{}", p.id);
        assert!(
            p.model_mapping.contains_key(&p.smoke_test_model),
            "{}",
            p.id
        );
        // Every price can be converted to USD.
        for model in &p.models {
            assert!(
                m.usd_per(model.price.currency).is_some(),
                "{}/{}",
                p.id,
                model.name
            );
        }
    }
    // Coding-plan keys are quota-tight.
    for p in m
        .providers
        .iter()
        .filter(|p| p.account_mode == AccountMode::Coding)
    {
        assert!(p.quota_limited, "{}", p.id);
    }
    assert!(m.usd_per(Currency::Cny).is_some());
}

#[test]
fn bundled_pack_error_signals_follow_the_reference() {
    let (name, text) = bundled::cn_official();
    let m = parse_pack(name, text).expect("valid").manifest;
    let quota = |id: &str, status: u16, body: &str| {
        m.provider(id)
            .map(|p| {
                p.error_signals
                    .quota
                    .iter()
                    .any(|s| s.matches(status, body))
            })
            .unwrap_or(false)
    };
    assert!(quota(
        "deepseek",
        402,
        r#"{"error":{"message":"Insufficient Balance"}}"#
    ));
    assert!(quota(
        "kimi",
        429,
        r#"{"error":{"type":"exceeded_current_quota_error"}}"#
    ));
    assert!(quota(
        "zhipu",
        429,
        r#"{"error":{"code":"1113","message":"欠费"}}"#
    ));
    assert!(quota("minimax", 500, "insufficient balance (1008)"));
    assert!(quota("qwen", 400, r#"{"code":"Arrearage"}"#));
    assert!(quota(
        "qwen",
        429,
        r#"{"error":{"code":"insufficient_quota"}}"#
    ));
    assert!(quota(
        "doubao",
        403,
        r#"{"error":{"code":"AccountOverdueError"}}"#
    ));
    // A plain rate limit is not a quota problem.
    assert!(!quota("kimi", 429, "rate limit reached"));
    let invalid = |id: &str, status: u16, body: &str| {
        m.provider(id)
            .map(|p| {
                p.error_signals
                    .invalid_key
                    .iter()
                    .any(|s| s.matches(status, body))
            })
            .unwrap_or(false)
    };
    assert!(invalid("deepseek", 401, "Authentication Fails"));
    assert!(invalid(
        "kimi",
        401,
        r#"{"error":{"type":"invalid_authentication_error"}}"#
    ));
    assert!(invalid("qwen", 401, r#"{"code":"InvalidApiKey"}"#));
    assert!(invalid(
        "doubao",
        401,
        r#"{"error":{"code":"AuthenticationError"}}"#
    ));
}

#[test]
fn the_file_on_disk_is_the_bundled_text() {
    let pack = load_pack_file(crate::repo_path("packs/cn-official/pack.toml")).expect("valid");
    let (name, text) = bundled::cn_official();
    assert_eq!(pack, parse_pack(name, text).expect("valid"));
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let err = load_pack_file(&missing).expect_err("missing file");
    let shown = err.to_string();
    assert!(shown.starts_with("cannot read pack file "), "{shown}");
    assert!(shown.contains("nope.toml"), "{shown}");
}

#[test]
fn bundled_ids_are_reserved_for_other_content() {
    let (name, text) = bundled::cn_official();
    let own = parse_pack(name, text).unwrap();
    assert!(bundled::find("cn-official").is_some());
    assert!(bundled::find("community").is_none());
    assert!(!bundled::replaces_bundled(&own), "the bundled pack itself");
    let other = text.replacen(
        "openai_base_url = \"https://api.deepseek.com\"",
        "openai_base_url = \"https://api.deepseek.example\"",
        1,
    );
    let other = parse_pack("other.toml", &other).unwrap();
    assert!(bundled::replaces_bundled(&other));
}
