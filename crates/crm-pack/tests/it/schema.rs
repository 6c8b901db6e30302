//! The committed JSON Schema is the one the code generates.

#[test]
fn committed_schema_is_up_to_date() {
    let path = crate::repo_path("packs/pack.schema.json");
    let generated = crm_pack::json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write packs/pack.schema.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "packs/pack.schema.json is out of date with the pack file types; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test -p crm-pack --test it schema` and commit it"
    );
}

#[test]
fn schema_rejects_unknown_fields_and_lists_vocabulary_words() {
    let s = crm_pack::json_schema();
    assert_eq!(s["additionalProperties"], serde_json::json!(false));
    assert_eq!(
        s["$defs"]["PriceFile"]["properties"]["currency"]["enum"],
        serde_json::json!(["CNY", "USD"])
    );
    assert_eq!(
        s["$defs"]["ProviderFile"]["properties"]["account_mode"]["enum"],
        serde_json::json!(["payg", "coding", "token_plan"])
    );
    let required = s["required"].as_array().expect("required");
    assert!(required.contains(&serde_json::json!("providers")));
    assert!(!required.contains(&serde_json::json!("description")));
}
