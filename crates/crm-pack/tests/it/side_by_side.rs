//! Two packs that both declare `deepseek` never collide.

use crm_domain::ProviderRef;
use crm_pack::{PackError, PackSet, bundled, load_pack_file, parse_pack};

#[test]
fn same_provider_id_in_two_packs_resolves_to_two_refs() {
    let (name, text) = bundled::cn_official();
    let official = parse_pack(name, text).expect("bundled pack is valid");
    let community = match load_pack_file(crate::repo_path("fixtures/packs/community.toml")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let mut set = PackSet::new();
    set.insert(official).expect("first pack");
    set.insert(community).expect("second pack");

    // Packs are kept in pack-id order: "cn-official" sorts before "community".
    let refs = set.refs_for("deepseek");
    assert_eq!(
        refs,
        [
            ProviderRef::new("cn-official", "deepseek"),
            ProviderRef::new("community", "deepseek"),
        ]
    );
    let names: Vec<String> = refs.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["cn-official/deepseek", "community/deepseek"]);

    let (_, a) = set
        .resolve(&ProviderRef::new("cn-official", "deepseek"))
        .expect("official");
    let (_, b) = set
        .resolve(&ProviderRef::new("community", "deepseek"))
        .expect("community");
    assert_eq!(a.openai_base_url, "https://api.deepseek.com");
    assert_ne!(a, b, "each ref resolves to its own pack's entry");
    assert!(
        set.resolve(&ProviderRef::new("community", "kimi"))
            .is_none()
    );
}

#[test]
fn the_same_pack_id_twice_is_refused() {
    let (name, text) = bundled::cn_official();
    let pack = parse_pack(name, text).expect("valid");
    let mut set = PackSet::new();
    set.insert(pack.clone()).expect("first");
    let err = set.insert(pack).expect_err("duplicate");
    assert!(matches!(err, PackError::DuplicatePack { .. }));
    assert!(
        err.to_string()
            .contains("pack `cn-official` is loaded twice"),
        "{err}"
    );
}
