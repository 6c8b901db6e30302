//! `crm provider funds`.

use crm_app::funds::{FundsReport, FundsRequest};
use crm_domain::funds::{FundsThreshold, Threshold};
use crm_domain::{Currency, ReadingKind, ReadingState};

use super::{Ctx, Outcome, provider_ref};
use crate::cli::{ThresholdArgs, UpstreamKeyArgs};
use crate::render::{emit, table};

/// `20CNY`, `20 CNY` or `5.5usd`.
pub fn parse_amount(s: &str) -> crm_app::Result<Threshold> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| bad_amount(s))?;
    let (num, cur) = t.split_at(split);
    let amount: f64 = num.trim().parse().map_err(|_| bad_amount(s))?;
    if !amount.is_finite() || amount < 0.0 {
        return Err(bad_amount(s));
    }
    let currency: Currency = cur
        .trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|e: crm_domain::UnknownWord| crm_app::AppError::invalid(e.to_string()))?;
    Ok(Threshold { amount, currency })
}

fn bad_amount(s: &str) -> crm_app::AppError {
    crm_app::AppError::invalid(format!(
        "--low-balance {s:?}: expected an amount and a currency, e.g. 20CNY or 5USD"
    ))
}

/// The thresholds the flags set, checked as `crm host set` and the API
/// check theirs.
pub fn thresholds(args: &ThresholdArgs) -> crm_app::Result<FundsThreshold> {
    let t = FundsThreshold {
        low_balance: args.low_balance.as_deref().map(parse_amount).transpose()?,
        low_quota_percent: args.low_quota_percent,
    };
    crm_app::hosts::validate_threshold(&t)?;
    Ok(t)
}

pub async fn run(
    ctx: &Ctx,
    host: Option<String>,
    provider: Option<String>,
    thresholds: &ThresholdArgs,
    stored: bool,
    keys: UpstreamKeyArgs,
) -> anyhow::Result<Outcome> {
    let overrides = self::thresholds(thresholds)?;
    let provider = provider.as_deref().map(provider_ref).transpose()?;
    let keys = crate::secrets::upstream_keys(&keys)?;
    let pb = ctx.progress("reading funds");
    let report = ctx
        .app
        .funds(
            FundsRequest {
                host,
                provider,
                overrides,
                refresh: !stored,
            },
            keys,
        )
        .await;
    pb.finish_and_clear();
    let report = report?;
    emit(ctx.output, &report, render);
    Ok(if report.below() {
        Outcome::Changed
    } else {
        Outcome::Unchanged
    })
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn value(r: &crm_app::funds::AssessedReading) -> String {
    let v = &r.reading.value;
    match (v.state, v.kind) {
        (ReadingState::Ok, ReadingKind::Balance) => v
            .balances
            .iter()
            .map(|m| format!("{:.2} {}", m.amount, m.currency))
            .collect::<Vec<_>>()
            .join(", "),
        (ReadingState::Ok, ReadingKind::Quota) => v
            .quota
            .iter()
            .map(|w| format!("{} {:.0}% used", w.window, w.used_percent))
            .collect::<Vec<_>>()
            .join(", "),
        (state, _) => state.to_string(),
    }
}

fn threshold(t: &FundsThreshold) -> String {
    let mut parts = Vec::new();
    if let Some(b) = &t.low_balance {
        parts.push(format!("balance < {} {}", b.amount, b.currency));
    }
    if let Some(p) = t.low_quota_percent {
        parts.push(format!("quota left < {p}%"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

pub fn render(report: &FundsReport) -> String {
    let mut out = Vec::new();
    for h in &report.hosts {
        let mut head = format!("host {}", h.host);
        if let Some(id) = &h.run_id {
            head.push_str(&format!(" (read in reconcile run {id})"));
        }
        out.push(head);
        if let Some(e) = &h.error {
            out.push(format!("fresh readings failed: {e}; showing stored ones"));
        }
        if h.readings.is_empty() {
            out.push("no readings (nothing imported, or never read)".into());
            continue;
        }
        out.push(table(
            &[
                "Provider",
                "Status",
                "Below",
                "Balances",
                "Quota left",
                "Thresholds",
            ],
            h.providers
                .iter()
                .map(|p| {
                    vec![
                        p.provider.to_string(),
                        p.status.to_string(),
                        format!("{}/{}", p.accounts_below, p.accounts),
                        p.balances
                            .iter()
                            .map(|(c, a)| format!("{a:.2} {c}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        p.quota_remaining_ratio
                            .map(|r| format!("{:.0}%", r * 100.0))
                            .unwrap_or_else(|| "-".into()),
                        h.thresholds
                            .get(&p.provider.to_string())
                            .map(threshold)
                            .unwrap_or_else(|| "none".into()),
                    ]
                })
                .collect(),
        ));
        out.push(table(
            &[
                "Account", "Source", "Kind", "Reading", "Status", "Age", "Detail",
            ],
            h.readings
                .iter()
                .map(|r| {
                    vec![
                        r.reading.account_name.clone(),
                        r.reading.source.to_string(),
                        r.reading.value.kind.to_string(),
                        value(r),
                        r.status.to_string(),
                        age(r.age_secs),
                        r.status_detail.clone(),
                    ]
                })
                .collect(),
        ));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_or_say_how_to_write_them() {
        let t = parse_amount("20CNY").unwrap();
        assert_eq!((t.amount, t.currency), (20.0, Currency::Cny));
        let t = parse_amount("5.5 usd").unwrap();
        assert_eq!((t.amount, t.currency), (5.5, Currency::Usd));
        for bad in ["20", "CNY", "-3CNY", "20EUR", "x1CNY"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert!(
            parse_amount("20")
                .unwrap_err()
                .to_string()
                .contains("20CNY")
        );
    }
}
