//! Field comparisons shared by the checks: one [`FieldChange`](crm_domain::plan::FieldChange) from the
//! observed value to the desired one.

use crate::desired::same_f64;
use crm_domain::HostObjectId;
use crm_domain::observed::ChannelPricing;
use crm_domain::ownership::parse_marker;
use crm_domain::plan::FieldChange;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn change(field: &str, from: Value, to: Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        from,
        to,
    }
}

/// A recorded object whose marker was removed or replaced is no longer
/// provably crm's; report it (repair will refuse to touch it).
pub(super) fn marker_field(
    out: &mut Vec<FieldChange>,
    field: &str,
    want: Option<&str>,
    seen: Option<&str>,
) {
    let Some(want_batch) = want.and_then(parse_marker) else {
        return;
    };
    if seen.and_then(parse_marker) != Some(want_batch) {
        out.push(change(field, json!(seen), json!(want)));
    }
}

/// crm needs its groups bound; other bindings an operator added are theirs.
pub(super) fn binding_change(
    seen: &[HostObjectId],
    expected: &[HostObjectId],
) -> Option<FieldChange> {
    if expected.iter().all(|g| seen.contains(g)) {
        return None;
    }
    let mut want: Vec<HostObjectId> = seen.to_vec();
    want.extend(expected.iter().filter(|g| !seen.contains(g)));
    want.sort();
    want.dedup();
    let mut from = seen.to_vec();
    from.sort();
    Some(change("group_ids", json!(from), json!(want)))
}

/// Stable key of a pricing row: its platform and its sorted models.
pub fn pricing_key(row: &ChannelPricing) -> String {
    let mut models = row.models.clone();
    models.sort();
    format!("{}:{}", row.platform, models.join(","))
}

fn same_price(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => same_f64(x, y),
        _ => false,
    }
}

fn same_row(a: &ChannelPricing, b: &ChannelPricing) -> bool {
    a.billing_mode == b.billing_mode
        && same_price(a.input_price, b.input_price)
        && same_price(a.output_price, b.output_price)
        && same_price(a.cache_read_price, b.cache_read_price)
        && same_price(a.cache_write_price, b.cache_write_price)
}

/// Per-row differences of channel pricing, keyed by platform and models.
pub(super) fn pricing_changes(
    seen: &[ChannelPricing],
    want: &[ChannelPricing],
) -> Vec<FieldChange> {
    let seen: BTreeMap<String, &ChannelPricing> =
        seen.iter().map(|r| (pricing_key(r), r)).collect();
    let want: BTreeMap<String, &ChannelPricing> =
        want.iter().map(|r| (pricing_key(r), r)).collect();
    let keys: BTreeSet<&String> = seen.keys().chain(want.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        let field = format!("model_pricing[{k}]");
        match (seen.get(k), want.get(k)) {
            (Some(s), Some(w)) if !same_row(s, w) => {
                out.push(change(&field, json!(s), json!(w)));
            }
            (Some(s), None) => out.push(change(&field, json!(s), Value::Null)),
            (None, Some(w)) => out.push(change(&field, Value::Null, json!(w))),
            _ => {}
        }
    }
    out
}
