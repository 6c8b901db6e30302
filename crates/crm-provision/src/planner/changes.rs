//! Field comparisons of desired drafts with observed objects, in a fixed
//! order, one [`FieldChange`] per differing field.

use crate::desired::AccountSpec;
use crm_domain::HostObjectId;
use crm_domain::observed::{ChannelPricing, HostAccount, HostChannel, HostGroup};
use crm_domain::plan::FieldChange;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(super) fn change(field: impl Into<String>, from: Value, to: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        from,
        to,
    }
}

/// Map differences, one change per key (in key order).
pub(super) fn map_changes<V: serde::Serialize + PartialEq>(
    prefix: &str,
    observed: &BTreeMap<String, V>,
    desired: &BTreeMap<String, V>,
    out: &mut Vec<FieldChange>,
) {
    let mut keys: Vec<&String> = observed.keys().chain(desired.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (o, d) = (observed.get(k), desired.get(k));
        if o != d {
            out.push(change(format!("{prefix}.{k}"), json!(o), json!(d)));
        }
    }
}

pub(super) fn account_changes(
    spec: &AccountSpec,
    a: &HostAccount,
    group: Option<HostObjectId>,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    map_changes(
        "model_mapping",
        &a.model_mapping,
        &spec.model_mapping,
        &mut out,
    );
    for (k, v) in &spec.credential_fields {
        if a.credential_fields.get(k) != Some(v) {
            out.push(change(
                format!("credential_fields.{k}"),
                json!(a.credential_fields.get(k)),
                v.clone(),
            ));
        }
    }
    for (k, v) in &spec.extra {
        if a.extra.get(k) != Some(v) {
            out.push(change(
                format!("extra.{k}"),
                json!(a.extra.get(k)),
                v.clone(),
            ));
        }
    }
    if let Some(g) = group
        && !a.group_ids.contains(&g)
    {
        let mut to = a.group_ids.clone();
        to.push(g);
        out.push(change("group_ids", json!(a.group_ids), json!(to)));
    }
    out
}

/// Float equality for prices (~1e-7) and multipliers.
pub fn same_f64(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a - b).abs() < 1e-15
}

fn same_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => same_f64(x, y),
        _ => false,
    }
}

/// sub2api stores "no limit" as `null` or `-1`.
fn limit(v: Option<f64>) -> Option<f64> {
    v.filter(|x| *x >= 0.0)
}

pub(super) fn group_changes(
    d: &crm_domain::observed::GroupDraft,
    g: &HostGroup,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if g.platform != d.platform {
        out.push(change("platform", json!(g.platform), json!(d.platform)));
    }
    if g.billing != d.billing {
        out.push(change("billing", json!(g.billing), json!(d.billing)));
    }
    if !same_f64(g.rate_multiplier, d.rate_multiplier) {
        out.push(change(
            "rate_multiplier",
            json!(g.rate_multiplier),
            json!(d.rate_multiplier),
        ));
    }
    for (f, o, w) in [
        ("daily_limit_usd", g.daily_limit_usd, d.daily_limit_usd),
        ("weekly_limit_usd", g.weekly_limit_usd, d.weekly_limit_usd),
        (
            "monthly_limit_usd",
            g.monthly_limit_usd,
            d.monthly_limit_usd,
        ),
    ] {
        if !same_opt(limit(o), limit(w)) {
            out.push(change(f, json!(limit(o)), json!(limit(w))));
        }
    }
    if g.is_exclusive != d.is_exclusive {
        out.push(change(
            "is_exclusive",
            json!(g.is_exclusive),
            json!(d.is_exclusive),
        ));
    }
    out
}

/// Pricing rows flattened per model name.
fn per_model(rows: &[ChannelPricing]) -> BTreeMap<String, &ChannelPricing> {
    rows.iter()
        .flat_map(|r| r.models.iter().map(move |m| (m.clone(), r)))
        .collect()
}

pub(super) fn channel_changes(
    d: &crm_domain::observed::ChannelDraft,
    group: Option<HostObjectId>,
    c: &HostChannel,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let (have, want) = (per_model(&c.model_pricing), per_model(&d.model_pricing));
    let mut models: Vec<&String> = have.keys().chain(want.keys()).collect();
    models.sort();
    models.dedup();
    for m in models {
        match (have.get(m), want.get(m)) {
            (Some(h), Some(w)) => {
                for (f, o, n) in [
                    ("input_price", h.input_price, w.input_price),
                    ("output_price", h.output_price, w.output_price),
                    (
                        "cache_write_price",
                        h.cache_write_price,
                        w.cache_write_price,
                    ),
                    ("cache_read_price", h.cache_read_price, w.cache_read_price),
                ] {
                    if !same_opt(o, n) {
                        out.push(change(format!("model_pricing.{m}.{f}"), json!(o), json!(n)));
                    }
                }
                if h.platform != w.platform || h.billing_mode != w.billing_mode {
                    out.push(change(
                        format!("model_pricing.{m}.platform"),
                        json!(format!("{}/{}", h.platform, h.billing_mode)),
                        json!(format!("{}/{}", w.platform, w.billing_mode)),
                    ));
                }
            }
            (h, w) => out.push(change(format!("model_pricing.{m}"), json!(h), json!(w))),
        }
    }
    let mut platforms: Vec<&String> = c
        .model_mapping
        .keys()
        .chain(d.model_mapping.keys())
        .collect();
    platforms.sort();
    platforms.dedup();
    let empty = BTreeMap::new();
    for p in platforms {
        map_changes(
            &format!("model_mapping.{p}"),
            c.model_mapping.get(p).unwrap_or(&empty),
            d.model_mapping.get(p).unwrap_or(&empty),
            &mut out,
        );
    }
    if c.billing_model_source != d.billing_model_source {
        out.push(change(
            "billing_model_source",
            json!(c.billing_model_source),
            json!(d.billing_model_source),
        ));
    }
    if c.restrict_models != d.restrict_models {
        out.push(change(
            "restrict_models",
            json!(c.restrict_models),
            json!(d.restrict_models),
        ));
    }
    if let Some(g) = group
        && c.group_ids != vec![g]
    {
        out.push(change("group_ids", json!(c.group_ids), json!([g])));
    }
    out
}
