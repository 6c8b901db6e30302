//! The checksum follows content, not formatting.

use crm_pack::parse_pack;

const STANDARD: &str = r#"
# The original layout: sections, comments, one key per line.
schema_version = 1
pack_id = "sample"
version = "1.2.3"
name = "Sample"

[[fx_rates]]
currency = "CNY"
usd_per_unit = 0.14
source = "assumed"
as_of = "2026-11-01"

[[providers]]
id = "deepseek"
display_name = "DeepSeek"
openai_base_url = "https://api.deepseek.com"
platform = { native = "deepseek", fallback = "openai" }
account_mode = "payg"
smoke_test_model = "flash"

[providers.access]
modes = ["self_service", "subscription"]
group_rate_multiplier = 1.0
subscription_validity_days = 30
self_service_starting_balance = 5.0

[providers.error_signals]
quota = [{ status = 402, body_contains = "Insufficient Balance" }]

[[providers.models]]
name = "flash"
upstream_name = "deepseek-flash"
price = { currency = "USD", unit = "per_million_tokens", input = 0.30, output = 1.20, source = "docs", as_of = "2026-10-01" }

[[providers.models]]
name = "pro"
price = { currency = "CNY", unit = "per_million_tokens", input = 9, output = 27, source = "docs", as_of = "2026-10-01" }

[[providers]]
id = "kimi"
display_name = "Kimi"
openai_base_url = "https://api.moonshot.cn/v1"
platform = { native = "kimi", fallback = "openai" }
account_mode = "payg"
smoke_test_model = "kimi-k2.6"

[providers.access]
modes = ["self_service"]
group_rate_multiplier = 1.5
subscription_validity_days = 30
self_service_starting_balance = 5.0

[[providers.models]]
name = "kimi-k2.6"
price = { currency = "USD", unit = "per_million_tokens", input = 0.95, output = 4.0, source = "docs", as_of = "2026-07-02" }
"#;

/// The same content: providers and models in another order, keys reordered,
/// inline tables turned into sections and back, explicit defaults, other
/// whitespace and comments, `2.0e-1`-style numbers written differently.
const REWRITTEN: &str = r#"name="Sample"
version="1.2.3"
pack_id="sample"
schema_version=1
description = ""   # the default, written out
fx_rates=[{as_of="2026-11-01",source="assumed",usd_per_unit=1.4e-1,currency="CNY"}]

[[providers]]
smoke_test_model   =   "kimi-k2.6"
account_mode = "payg"
id = "kimi"
platform.native = "kimi"
platform.fallback = "openai"
display_name = "Kimi"
openai_base_url = "https://api.moonshot.cn/v1"
quota_limited = false
model_mapping = { "kimi-k2.6" = "kimi-k2.6" }
access = { self_service_starting_balance = 5, subscription_validity_days = 30, group_rate_multiplier = 1.50, modes = ["self_service"] }
models = [
  { price = { as_of = "2026-07-02", source = "docs", output = 4, input = 0.95, unit = "per_million_tokens", currency = "USD" }, upstream_name = "kimi-k2.6", name = "kimi-k2.6" },
]

[[providers]]
id="deepseek"
models = [
    { name = "pro", price = { currency = "CNY", unit = "per_million_tokens", input = 9.0, output = 27.0, source = "docs", as_of = "2026-10-01" } },
    { name = "flash", upstream_name = "deepseek-flash", price = { currency = "USD", unit = "per_million_tokens", input = 0.3, output = 1.2, source = "docs", as_of = "2026-10-01" } },
]
smoke_test_model="flash"
display_name="DeepSeek"
account_mode="payg"
openai_base_url="https://api.deepseek.com"
[providers.platform]
fallback="openai"
native="deepseek"
[providers.access]
subscription_validity_days=30
modes=["subscription","self_service"]
self_service_starting_balance=5.0
group_rate_multiplier=1.0
[providers.error_signals]
invalid_key = []
[[providers.error_signals.quota]]
body_contains = "Insufficient Balance"
status = 402
"#;

#[test]
fn checksum_ignores_layout_order_and_comments() {
    let a = parse_pack("a.toml", STANDARD).expect("standard layout is valid");
    let b = match parse_pack("b.toml", REWRITTEN) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(a.checksum, b.checksum);
    assert_eq!(
        crm_pack::canonical_json(&a.manifest),
        crm_pack::canonical_json(&b.manifest)
    );
    assert_eq!(a.checksum.len(), 64);
    assert!(
        a.checksum
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn checksum_changes_with_content() {
    let a = parse_pack("a.toml", STANDARD).expect("valid");
    let cheaper = STANDARD.replace("input = 0.30", "input = 0.29");
    let b = parse_pack("b.toml", &cheaper).expect("valid");
    assert_ne!(a.checksum, b.checksum);
    let renamed = STANDARD.replace("display_name = \"Kimi\"", "display_name = \"Kimi AI\"");
    assert_ne!(
        a.checksum,
        parse_pack("c.toml", &renamed).expect("valid").checksum
    );
    let limited = STANDARD.replace(
        "smoke_test_model = \"kimi-k2.6\"",
        "smoke_test_model = \"kimi-k2.6\"\nquota_limited = true",
    );
    assert_ne!(
        a.checksum,
        parse_pack("d.toml", &limited).expect("valid").checksum
    );
}

#[test]
fn canonical_json_is_sorted_and_compact() {
    let a = parse_pack("a.toml", STANDARD).expect("valid");
    insta::assert_snapshot!(crm_pack::canonical_json(&a.manifest));
}

#[test]
fn funds_fields_parse_and_change_the_checksum_only_when_set() {
    let a = parse_pack("a.toml", STANDARD).expect("valid");
    let ds = a.manifest.provider("deepseek").unwrap();
    assert!(ds.funds.is_unset(), "absent fields are unset");
    let with = STANDARD.replace(
        "smoke_test_model = \"flash\"",
        "smoke_test_model = \"flash\"\nlow_balance = { amount = 20, currency = \"CNY\" }\nlow_quota_percent = 15\nmonitor = true",
    );
    let b = parse_pack("b.toml", &with).expect("valid");
    assert_ne!(a.checksum, b.checksum);
    let f = &b.manifest.provider("deepseek").unwrap().funds;
    let lb = f.threshold.low_balance.as_ref().unwrap();
    assert_eq!((lb.amount, lb.currency.as_str()), (20.0, "CNY"));
    assert_eq!(f.threshold.low_quota_percent, Some(15.0));
    assert!(f.monitor);

    let bad = STANDARD.replace(
        "smoke_test_model = \"flash\"",
        "smoke_test_model = \"flash\"\nlow_balance = { amount = -1, currency = \"EUR\" }\nlow_quota_percent = 150",
    );
    let err = match parse_pack("bad.toml", &bad) {
        Ok(_) => panic!("a negative EUR threshold and 150% must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("low_balance.amount"), "{err}");
    assert!(err.contains("low_balance.currency"), "{err}");
    assert!(err.contains("low_quota_percent"), "{err}");
}

#[test]
fn a_monitor_that_is_not_a_boolean_is_refused_at_its_line() {
    let bad = STANDARD.replace(
        "smoke_test_model = \"flash\"",
        "smoke_test_model = \"flash\"\nmonitor = \"yes\"",
    );
    let line = bad
        .lines()
        .position(|l| l.starts_with("monitor ="))
        .map(|n| n + 1)
        .unwrap();
    let err = match parse_pack("m.toml", &bad) {
        Ok(_) => panic!("monitor = \"yes\" must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("m.toml:{line}:")), "{err}");
    assert!(err.contains("monitor"), "{err}");
    assert!(err.contains("true or false"), "{err}");
}
