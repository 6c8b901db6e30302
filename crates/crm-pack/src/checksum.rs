//! The canonical checksum of a validated pack.
//!
//! Installs record it so that "the same pack" means the same content, not
//! the same bytes: reformatting, reordering keys or providers, comments and
//! inline-vs-section tables do not change it; any changed value does.
//!
//! Canonical form: the manifest as JSON, with providers sorted by id, models
//! by name, exchange rates by currency, access modes and error signals
//! sorted; objects written with keys sorted by their UTF-8 bytes at every
//! level (done here, so a `preserve_order` feature enabled elsewhere in the
//! build cannot change it); compact, no whitespace; numbers as serde_json
//! prints an `f64` (`1.0`, `0.3`, `1e-7`).

use crm_domain::secret::sha256_hex;
use crm_domain::spec::PackManifest;
use serde_json::Value;

/// sha256 (lower-case hex) of the canonical JSON form of `manifest`.
pub fn checksum(manifest: &PackManifest) -> String {
    sha256_hex(canonical_json(manifest).as_bytes())
}

/// The canonical JSON text the checksum is taken over.
pub fn canonical_json(manifest: &PackManifest) -> String {
    let mut m = manifest.clone();
    m.fx_rates.sort_by_key(|a| a.currency);
    m.providers.sort_by(|a, b| a.id.cmp(&b.id));
    for p in &mut m.providers {
        p.models.sort_by(|a, b| a.name.cmp(&b.name));
        p.access.modes.sort();
        for list in [&mut p.error_signals.invalid_key, &mut p.error_signals.quota] {
            list.sort_by(|a, b| (a.status, &a.body_contains).cmp(&(b.status, &b.body_contains)));
        }
    }
    // The domain types serialize plain data (strings, numbers, maps), so
    // this cannot fail; fall back to Null rather than panic regardless.
    let value = serde_json::to_value(&m).unwrap_or(Value::Null);
    let mut out = String::new();
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is deterministic; a `&str` always serializes.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_level_and_output_is_compact() {
        let v = json!({"b": 1.5, "a": {"z": [1, {"y": null, "x": "é\""}], "c": true}});
        let mut out = String::new();
        write_canonical(&v, &mut out);
        assert_eq!(
            out,
            r#"{"a":{"c":true,"z":[1,{"x":"é\"","y":null}]},"b":1.5}"#
        );
    }

    #[test]
    fn floats_print_as_serde_json_prints_f64() {
        let mut out = String::new();
        write_canonical(&json!([1.0, 0.3, 0.0000001, 2]), &mut out);
        assert_eq!(out, "[1.0,0.3,1e-7,2]");
    }
}
