//! Unit tests of the parser: one per validation rule, on a small valid pack
//! that each test breaks in one place.

use super::*;

/// A minimal valid pack; tests edit it with `replace`.
pub(crate) const BASE: &str = r#"schema_version = 1
pack_id = "test"
version = "1.0.0"
name = "Test"

[[fx_rates]]
currency = "CNY"
usd_per_unit = 0.14
source = "assumed"
as_of = "2026-11-01"

[[providers]]
id = "deepseek"
display_name = "DeepSeek"
openai_base_url = "https://api.deepseek.com"
anthropic_base_url = "https://api.deepseek.com/anthropic"
platform = { native = "deepseek", fallback = "openai" }
account_mode = "payg"
smoke_test_model = "flash"
model_mapping = { "flash" = "deepseek-flash", "pro" = "deepseek-v4-pro" }

[providers.access]
modes = ["self_service", "subscription"]
group_rate_multiplier = 1.0
daily_limit_usd = 10.0
subscription_validity_days = 30
self_service_starting_balance = 5.0

[providers.error_signals]
invalid_key = [{ status = 401 }]
quota = [{ status = 402, body_contains = "Insufficient Balance" }]

[[providers.models]]
name = "flash"
upstream_name = "deepseek-flash"
price = { currency = "USD", unit = "per_million_tokens", input = 0.30, output = 1.20, cache_read = 0.006, source = "api-docs.deepseek.com", as_of = "2026-10-01" }

[[providers.models]]
name = "pro"
upstream_name = "deepseek-v4-pro"
price = { currency = "CNY", unit = "per_million_tokens", input = 9, output = 27, source = "api-docs.deepseek.com", as_of = "2026-10-01" }
"#;

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "test edit target missing: {from}");
    BASE.replacen(from, to, 1)
}

/// Every diagnostic of `text` as `line:column: message`.
fn diags(text: &str) -> Vec<String> {
    match parse_pack("t.toml", text) {
        Ok(_) => Vec::new(),
        Err(PackError::Invalid { diagnostics, .. }) => diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Asserts exactly one diagnostic, containing `needle`, and returns it.
#[track_caller]
fn one(text: &str, needle: &str) -> String {
    let d = diags(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got {d:#?}");
    assert!(
        d[0].contains(needle),
        "{:?} does not contain {needle:?}",
        d[0]
    );
    d[0].clone()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn base_pack_is_valid() {
    let p = parse_pack("t.toml", BASE).expect("valid");
    assert_eq!(p.manifest.providers.len(), 1);
    let spec = &p.manifest.providers[0];
    assert_eq!(
        spec.model("pro").map(|m| m.upstream_name.as_str()),
        Some("deepseek-v4-pro")
    );
    assert_eq!(spec.access.modes.len(), 2);
    assert_eq!(p.manifest.usd_per(crm_domain::Currency::Cny), Some(0.14));
    // Integers are accepted where amounts are expected.
    assert_eq!(spec.model("pro").map(|m| m.price.input), Some(9.0));
}

#[test]
fn syntax_error_has_its_position() {
    let text = edit("name = \"Test\"", "name = \"Test");
    let d = one(&text, "TOML syntax error");
    assert!(
        d.starts_with(&format!("{}:", line_of(&text, "name = \"Test"))),
        "{d}"
    );
}

#[test]
fn unknown_field_names_its_place_and_the_choices() {
    let text = edit(
        "display_name = \"DeepSeek\"",
        "display_name = \"DeepSeek\"\ncolor = 1",
    );
    let d = one(
        &text,
        "unknown field `color` in `providers[0]`; expected one of `id`, `display_name`",
    );
    assert!(
        d.starts_with(&format!("{}:1:", line_of(&text, "color"))),
        "{d}"
    );

    let text = edit(
        "cache_read = 0.006,",
        "cache_read = 0.006, cahce_write = 1,",
    );
    one(
        &text,
        "unknown field `cahce_write` in `providers[0].models[0].price`",
    );

    let text = edit("name = \"Test\"", "name = \"Test\"\nextra = true");
    one(&text, "unknown field `extra` in the top level");
}

#[test]
fn missing_required_field() {
    let text = edit("account_mode = \"payg\"\n", "");
    one(
        &text,
        "missing required field `account_mode` in `providers[0]`",
    );
    let text = edit("version = \"1.0.0\"\n", "");
    let d = one(&text, "missing required field `version` in the top level");
    assert!(d.starts_with("1:1:"), "{d}");
}

#[test]
fn wrong_type() {
    let text = edit(
        "group_rate_multiplier = 1.0",
        "group_rate_multiplier = \"1.0\"",
    );
    one(
        &text,
        "`providers[0].access.group_rate_multiplier` must be a number, found a string",
    );
    let text = edit("as_of = \"2026-11-01\"", "as_of = 2026-11-01");
    one(&text, "must be a string, found a date/time (quote dates");
    let text = edit(
        "modes = [\"self_service\", \"subscription\"]",
        "modes = \"self_service\"",
    );
    one(&text, "must be an array of strings, found a string");
    let text = edit(
        "subscription_validity_days = 30",
        "subscription_validity_days = 0",
    );
    one(&text, "must be between 1 and 36500, found 0");
}

#[test]
fn duplicate_provider_id_points_at_the_first() {
    let provider = &BASE[BASE.find("[[providers]]").unwrap_or(0)..];
    let text = format!("{BASE}\n{provider}");
    let d = one(&text, "duplicate provider id `deepseek`");
    assert!(
        d.contains(&format!(
            "already declared on line {}",
            line_of(BASE, "id = \"deepseek\"")
        )),
        "{d}"
    );
}

#[test]
fn duplicate_model_name() {
    let text = edit("name = \"pro\"", "name = \"flash\"");
    let d = diags(&text);
    assert!(
        d.iter()
            .any(|d| d.contains("duplicate model name `flash` in provider `deepseek`")),
        "{d:#?}"
    );
}

#[test]
fn smoke_test_model_must_be_a_model_and_listed() {
    one(
        &edit(
            "smoke_test_model = \"flash\"",
            "smoke_test_model = \"turbo\"",
        ),
        "smoke_test_model `turbo` is not one of provider `deepseek`'s models (`flash`, `pro`)",
    );
    one(
        &edit("\"flash\" = \"deepseek-flash\", ", ""),
        "smoke_test_model `flash` is not a key of `providers[0].model_mapping`",
    );
}

#[test]
fn model_mapping_keys_and_values_must_exist() {
    let text = edit(
        "\"pro\" = \"deepseek-v4-pro\"",
        "\"max\" = \"deepseek-v4-pro\"",
    );
    let d = one(
        &text,
        "model_mapping key `max` is not one of provider `deepseek`'s models",
    );
    // Points at the key itself.
    let col = text
        .lines()
        .nth(line_of(&text, "\"max\"") - 1)
        .and_then(|l| l.find("\"max\""))
        .unwrap_or(0)
        + 1;
    assert!(
        d.starts_with(&format!("{}:{col}:", line_of(&text, "\"max\""))),
        "{d}"
    );
    one(
        &edit("\"pro\" = \"deepseek-v4-pro\"", "\"pro\" = \"deepseek-v5\""),
        "model_mapping `pro` maps to `deepseek-v5`, which is no model's upstream_name",
    );
}

#[test]
fn omitted_mapping_maps_every_model_to_its_upstream_name() {
    let text = edit(
        "model_mapping = { \"flash\" = \"deepseek-flash\", \"pro\" = \"deepseek-v4-pro\" }\n",
        "",
    );
    let p = parse_pack("t.toml", &text).expect("valid");
    let explicit = parse_pack("t.toml", BASE).expect("valid");
    assert_eq!(
        p.manifest.providers[0].model_mapping,
        explicit.manifest.providers[0].model_mapping
    );
    assert_eq!(p.checksum, explicit.checksum);
}

#[test]
fn prices_must_be_finite_and_not_negative() {
    one(
        &edit("input = 0.30", "input = -0.30"),
        "`providers[0].models[0].price.input` must be a finite number ≥ 0, found -0.3",
    );
    one(&edit("output = 1.20", "output = inf"), "found inf");
    one(&edit("cache_read = 0.006", "cache_read = nan"), "found NaN");
}

#[test]
fn urls_must_be_http_with_a_host() {
    one(
        &edit(
            "openai_base_url = \"https://api.deepseek.com\"",
            "openai_base_url = \"ftp://api.deepseek.com\"",
        ),
        "must use http or https, not `ftp`",
    );
    one(
        &edit(
            "openai_base_url = \"https://api.deepseek.com\"",
            "openai_base_url = \"api.deepseek.com\"",
        ),
        "is not a URL",
    );
    one(
        &edit("\"https://api.deepseek.com/anthropic\"", "\"https://\""),
        "`providers[0].anthropic_base_url`",
    );
}

#[test]
fn plain_http_is_only_for_loopback_hosts() {
    // An upstream key travels to this URL in clear over plain http.
    let line = "openai_base_url = \"https://api.deepseek.com\"";
    let d = diags(&edit(line, "openai_base_url = \"http://api.deepseek.com\""));
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("15:19:"), "file:line:column: {d:?}");
    assert!(
        d[0].contains(
            "`providers[0].openai_base_url`: \"http://api.deepseek.com\" uses plain http"
        ) && d[0].contains("use https"),
        "{d:?}"
    );
    one(
        &edit(
            "\"https://api.deepseek.com/anthropic\"",
            "\"http://10.0.0.7/anthropic\"",
        ),
        "`providers[0].anthropic_base_url`: \"http://10.0.0.7/anthropic\" uses plain http",
    );
    for loopback in [
        "http://127.0.0.1:8080/v1",
        "http://127.3.4.5",
        "http://[::1]:9000",
        "http://localhost:8080",
        "http://LOCALHOST",
    ] {
        let text = edit(line, &format!("openai_base_url = \"{loopback}\""));
        assert!(diags(&text).is_empty(), "{loopback}: {:?}", diags(&text));
    }
    // A name that only starts like loopback is not loopback.
    one(
        &edit(line, "openai_base_url = \"http://localhost.evil.example\""),
        "uses plain http",
    );
}

#[test]
fn vocabulary_words_are_checked() {
    one(
        &edit("currency = \"USD\"", "currency = \"EUR\""),
        "unknown currency 'EUR'; expected one of: CNY, USD",
    );
    one(
        &edit("unit = \"per_million_tokens\"", "unit = \"per_mtok\""),
        "unknown price unit 'per_mtok'",
    );
    one(
        &edit("account_mode = \"payg\"", "account_mode = \"prepaid\""),
        "unknown account mode 'prepaid'; expected one of: payg, coding, token_plan",
    );
    one(
        &edit(
            "\"self_service\", \"subscription\"",
            "\"self_service\", \"gift\"",
        ),
        "unknown access mode 'gift'",
    );
    one(
        &edit(
            "\"self_service\", \"subscription\"",
            "\"self_service\", \"self_service\"",
        ),
        "access mode `self_service` is listed twice",
    );
}

#[test]
fn currency_needs_an_fx_rate() {
    let text = edit(
        "currency = \"CNY\"\nusd_per_unit = 0.14\nsource = \"assumed\"\nas_of = \"2026-11-01\"\n",
        "",
    );
    let text = text.replace("[[fx_rates]]\n", "");
    one(
        &text,
        "price currency CNY has no exchange rate; add a [[fx_rates]] entry with currency = \"CNY\"",
    );
    // Turning the CNY rate into a USD one is refused, and leaves CNY unrated.
    let d = diags(&edit(
        "currency = \"CNY\"\nusd_per_unit",
        "currency = \"USD\"\nusd_per_unit",
    ));
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(d[0].contains("USD is the base currency"), "{d:#?}");
    assert!(
        d[1].contains("price currency CNY has no exchange rate"),
        "{d:#?}"
    );
    one(
        &edit("usd_per_unit = 0.14", "usd_per_unit = 0"),
        "`fx_rates[0].usd_per_unit` must be a finite number > 0",
    );
}

#[test]
fn dates_must_be_calendar_dates() {
    one(
        &edit("as_of = \"2026-10-01\"", "as_of = \"2026-10-32\""),
        "is not a calendar date",
    );
    one(
        &edit("as_of = \"2026-10-01\"", "as_of = \"2026-1-1\""),
        "write it as YYYY-MM-DD",
    );
    one(
        &edit("as_of = \"2026-11-01\"", "as_of = \"Nov 2026\""),
        "`fx_rates[0].as_of`",
    );
}

#[test]
fn version_must_be_semver() {
    one(
        &edit("version = \"1.0.0\"", "version = \"1.0\""),
        "`version` \"1.0\" is not a semantic version",
    );
    assert!(diags(&edit("version = \"1.0.0\"", "version = \"2026.11.1-rc.1\"")).is_empty());
}

#[test]
fn providers_must_not_be_empty() {
    let head = &BASE[..BASE.find("[[providers]]").unwrap_or(0)];
    let text = head.replace("name = \"Test\"", "name = \"Test\"\nproviders = []");
    one(&text, "the pack declares no providers");
    one(head, "missing required field `providers`");
}

#[test]
fn models_must_not_be_empty() {
    let cut = BASE.find("[[providers.models]]").unwrap_or(BASE.len());
    let text = format!("{}models = []\n", &BASE[..cut])
        .replace("[providers.error_signals]", "[providers.error_signals]");
    // `models = []` lands inside the error_signals table, so write it inline.
    let text = text.replace("models = []\n", "").replace(
        "smoke_test_model = \"flash\"",
        "smoke_test_model = \"flash\"\nmodels = []",
    );
    let d = diags(&text);
    assert!(
        d.iter()
            .any(|d| d.contains("provider `deepseek` declares no models")),
        "{d:#?}"
    );
}

#[test]
fn schema_version_must_be_supported() {
    one(
        &edit("schema_version = 1", "schema_version = 2"),
        "unsupported schema_version 2; this version of crm reads schema_version 1",
    );
}

#[test]
fn ids_are_lower_case_words() {
    one(
        &edit("pack_id = \"test\"", "pack_id = \"Test Pack\""),
        "`pack_id` \"Test Pack\" is not a valid id",
    );
    one(
        &edit("id = \"deepseek\"", "id = \"-deepseek\""),
        "provider id \"-deepseek\" is not a valid id",
    );
    assert!(!validate::is_id(""));
    assert!(validate::is_id("0-a"));
}

#[test]
fn fallback_platform_must_be_baseline() {
    one(
        &edit("fallback = \"openai\"", "fallback = \"kimi\""),
        "\"kimi\" is not a platform every sub2api accepts; use `openai`, `anthropic` or `gemini`",
    );
    one(
        &edit("native = \"deepseek\"", "native = \"Deep Seek\""),
        "is not a sub2api platform value",
    );
}

#[test]
fn access_modes_must_not_be_empty() {
    one(
        &edit("modes = [\"self_service\", \"subscription\"]", "modes = []"),
        "`providers[0].access.modes` is empty",
    );
}

#[test]
fn rate_multiplier_must_be_positive() {
    one(
        &edit("group_rate_multiplier = 1.0", "group_rate_multiplier = 0.0"),
        "`providers[0].access.group_rate_multiplier` must be a finite number > 0, found 0",
    );
    one(
        &edit("daily_limit_usd = 10.0", "daily_limit_usd = -1"),
        "daily_limit_usd` must be a finite number > 0",
    );
    one(
        &edit(
            "self_service_starting_balance = 5.0",
            "self_service_starting_balance = -5.0",
        ),
        "must be a finite number ≥ 0",
    );
}

#[test]
fn error_signals_must_match_something() {
    one(
        &edit("invalid_key = [{ status = 401 }]", "invalid_key = [{}]"),
        "`providers[0].error_signals.invalid_key[0]` matches nothing",
    );
    one(
        &edit(
            "invalid_key = [{ status = 401 }]",
            "invalid_key = [{ status = 99 }]",
        ),
        "must be between 100 and 599, found 99",
    );
}

#[test]
fn unreadable_models_do_not_cause_spurious_reference_errors() {
    // The `flash` model loses its price: only that is reported, not that the
    // smoke-test model or the mapping key is missing.
    let text = edit(
        "price = { currency = \"USD\"",
        "prize = { currency = \"USD\"",
    );
    let d = diags(&text);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(
        d[0].contains("missing required field `price` in `providers[0].models[0]`"),
        "{d:#?}"
    );
    assert!(d[1].contains("unknown field `prize`"), "{d:#?}");
}

#[test]
fn invalid_error_lists_every_diagnostic() {
    let text = edit("schema_version = 1", "schema_version = 9")
        .replace("account_mode = \"payg\"", "account_mode = \"x\"");
    let err = parse_pack("p.toml", &text).expect_err("invalid");
    let shown = err.to_string();
    assert!(
        shown.starts_with("pack file p.toml is invalid (2 problems):"),
        "{shown}"
    );
    assert!(
        shown.contains("\n  p.toml:1:18: unsupported schema_version 9"),
        "{shown}"
    );
    assert!(shown.contains("unknown account mode 'x'"), "{shown}");
}

/// The reader's field lists and the JSON Schema describe the same format.
#[test]
fn schema_properties_match_the_reader() {
    let schema = json_schema();
    for (def, fields) in read::KNOWN_FIELDS {
        let props = if *def == "PackFile" {
            &schema["properties"]
        } else {
            &schema["$defs"][def]["properties"]
        };
        let mut in_schema: Vec<&str> = props
            .as_object()
            .unwrap_or_else(|| panic!("no properties for {def} in the schema"))
            .keys()
            .map(String::as_str)
            .collect();
        let mut read: Vec<&str> = fields.to_vec();
        in_schema.sort_unstable();
        read.sort_unstable();
        assert_eq!(in_schema, read, "{def}");
        let closed = if *def == "PackFile" {
            &schema["additionalProperties"]
        } else {
            &schema["$defs"][def]["additionalProperties"]
        };
        assert_eq!(
            closed,
            &serde_json::Value::Bool(false),
            "{def} must reject unknown fields"
        );
    }
}

/// An independent serde reading of the bundled pack agrees with the
/// span-keeping reader, so the file types mean what the reader reads.
#[test]
fn serde_and_the_reader_agree_on_the_bundled_pack() {
    let (name, text) = bundled::cn_official();
    let via_serde: file::PackFile = toml::from_str(text).expect("serde reads the bundled pack");
    let doc = toml_edit::Document::parse(text).expect("toml");
    let loc = diagnostic::Locator::new(name, text);
    let mut d = Vec::new();
    let read = read::read(&doc, &loc, &mut d);
    assert!(d.is_empty(), "{d:#?}");
    assert_eq!(read.file, via_serde);
}

/// Damaged input never panics, and a refusal always says where: every
/// truncation and every single-character deletion of a valid pack.
#[test]
fn damaged_packs_are_refused_with_positions_never_a_panic() {
    let lines = BASE.lines().count() + 1;
    let mut texts = Vec::new();
    for (i, c) in BASE.char_indices() {
        texts.push(BASE[..i].to_owned());
        texts.push(format!("{}{}", &BASE[..i], &BASE[i + c.len_utf8()..]));
    }
    for text in texts {
        match parse_pack("t.toml", &text) {
            Ok(_) => {}
            Err(PackError::Invalid { diagnostics, .. }) => {
                assert!(!diagnostics.is_empty(), "refused without a reason:\n{text}");
                for d in diagnostics {
                    assert!(
                        d.line >= 1 && d.line <= lines && d.column >= 1,
                        "{d} in\n{text}"
                    );
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_bad_list_item_is_reported_once() {
    let d = diags(&edit(
        "modes = [\"self_service\", \"subscription\"]",
        "modes = [\"self_service\", 2]",
    ));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].contains("`providers[0].access.modes[1]` must be a string, found an integer"),
        "{d:#?}"
    );
    let d = diags(&edit("\"pro\" = \"deepseek-v4-pro\"", "\"pro\" = 4"));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].contains("must be a string, found an integer"),
        "{d:#?}"
    );
}

#[test]
fn an_empty_provider_lists_its_missing_fields_and_nothing_else() {
    let text =
        "schema_version = 1\npack_id = \"p\"\nversion = \"1.0.0\"\nname = \"P\"\n\n[[providers]]\n";
    let d = diags(text);
    // Same position, so ordered by path.
    let missing: Vec<&str> = d.iter().filter_map(|d| d.split('`').nth(1)).collect();
    assert_eq!(
        missing,
        [
            "access",
            "account_mode",
            "display_name",
            "id",
            "models",
            "openai_base_url",
            "platform",
            "smoke_test_model"
        ],
        "{d:#?}"
    );
    assert!(
        d.iter()
            .all(|d| d.starts_with("6:1: missing required field")),
        "{d:#?}"
    );
}

#[test]
fn input_that_panics_the_toml_parser_is_a_diagnostic_not_a_crash() {
    // Found by `cargo fuzz run pack` (fuzz/corpus-regressions/pack/).
    let bytes =
        include_bytes!("../../../fuzz/corpus-regressions/pack/toml-edit-all-items-have-spans.toml");
    let text = String::from_utf8_lossy(bytes);
    match crate::parse_pack("fuzz.toml", &text) {
        Err(crate::PackError::Invalid { diagnostics, .. }) => {
            assert!(
                diagnostics
                    .iter()
                    .any(|d| d.message.contains("TOML syntax error")),
                "{diagnostics:#?}"
            );
        }
        other => panic!("expected diagnostics, got {other:?}"),
    }
}
