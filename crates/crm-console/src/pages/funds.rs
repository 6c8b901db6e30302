//! A host's funds page: the stored funds and quota readings of its accounts
//! with their age, source and thresholds (the console face of
//! `GET /api/hosts/{id}/funds` in `crm-api/src/routes/hosts.rs`, through the
//! same use case, `App::stored_funds`), and the readings widget the batch
//! page shares. A reading never carries a key: rows name the host account.

use crate::view::{badge, batch_link, code, facts, host_link, page, provider_link, table};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use crm_app::funds::{AssessedReading, HostFunds};
use crm_domain::funds::{FundsThreshold, FundsValue, ProviderFunds};
use crm_domain::{ReadingKind, ReadingState};
use maud::{Markup, html};

pub async fn host_funds(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(name): Path<String>,
) -> Result<Response> {
    let h = c
        .app
        .stored_funds(&name, None, &FundsThreshold::default())
        .await?;
    let body = html! {
        (facts(&[
            ("Host", host_link(&h.host)),
            ("Providers below a threshold", html! {
                span id="funds-below" { (h.providers.iter().filter(|p| p.is_below()).count()) }
            }),
        ]))
        p {
            "Readings are taken by every reconcile run (the scheduler's too); this page makes no host request. Take fresh ones with "
            (code(&format!("crm provider funds --host {}", h.host)))
            "."
        }
        section aria-labelledby="providers-h" {
            h2 id="providers-h" { "Per provider" }
            (providers_table(&h.providers))
        }
        section aria-labelledby="thresholds-h" {
            h2 id="thresholds-h" { "Thresholds" }
            (thresholds_table(&h))
        }
        section aria-labelledby="readings-h" {
            h2 id="readings-h" { "Readings" }
            (readings_table(&h.readings, true))
        }
    };
    Ok(page(&s, &format!("Funds on {}", h.host), body))
}

/// How long ago, in the unit an operator reads at a glance ("3 min ago").
pub(crate) fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3_600 => format!("{} min ago", secs / 60),
        3_600..86_400 => format!("{} h ago", secs / 3_600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A reading's moment as its age, with the exact time on hover and for
/// machines.
fn taken(at: &DateTime<Utc>, age_secs: i64) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) { (ago(age_secs)) }
    }
}

fn amount(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// What a reading holds, in words.
fn value_text(v: &FundsValue) -> String {
    if v.state != ReadingState::Ok {
        return v.state.to_string();
    }
    match v.kind {
        ReadingKind::Balance => {
            let mut s = v
                .balances
                .iter()
                .map(|m| format!("{} {}", amount(m.amount), m.currency))
                .collect::<Vec<_>>()
                .join(", ");
            if v.available == Some(false) {
                s.push_str(" (not available)");
            }
            s
        }
        ReadingKind::Quota => v
            .quota
            .iter()
            .map(|w| format!("{}: {}% used", w.window, amount(w.used_percent)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Readings as a table; `with_batch` adds the batch column (the host page).
pub(crate) fn readings_table(readings: &[AssessedReading], with_batch: bool) -> Markup {
    let rows: Vec<Vec<Markup>> = readings
        .iter()
        .map(|a| {
            let r = &a.reading;
            let mut row = vec![
                provider_link(&r.provider),
                html! { (code(&r.account_name)) " (" (r.account_id.to_string()) ")" },
                html! { (r.value.kind.as_str()) },
                html! { span.reading-source { (r.source.as_str()) } },
                html! { (value_text(&r.value)) },
                html! { span.funds-status data-status=(a.status.as_str()) { (badge(a.status.as_str())) } },
                html! { (a.status_detail) },
                taken(&r.taken_at, a.age_secs),
            ];
            if with_batch {
                row.push(html! { @if let Some(b) = &r.batch_id { (batch_link(b.as_str())) } });
            }
            row
        })
        .collect();
    let mut headers = vec![
        "Provider", "Account", "Kind", "Source", "Reading", "Status", "Why", "Taken",
    ];
    if with_batch {
        headers.push("Batch");
    }
    table(
        &headers,
        &rows,
        "No readings yet: a reconcile run takes them (Check for drift on the host page).",
    )
}

fn threshold_cells(t: &FundsThreshold) -> [Markup; 2] {
    [
        match &t.low_balance {
            Some(b) => html! { (amount(b.amount)) " " (b.currency.as_str()) },
            None => html! { span.muted { "none" } },
        },
        match t.low_quota_percent {
            Some(p) => html! { (amount(p)) "% left" },
            None => html! { span.muted { "none" } },
        },
    ]
}

/// The thresholds in force per provider (the pack's, with overrides on top).
pub(crate) fn thresholds_table(h: &HostFunds) -> Markup {
    let rows: Vec<Vec<Markup>> = h
        .thresholds
        .iter()
        .map(|(p, t)| {
            let [bal, quota] = threshold_cells(t);
            vec![html! { (p) }, bal, quota]
        })
        .collect();
    table(
        &["Provider", "Low balance below", "Low quota below"],
        &rows,
        "No thresholds: no live batch has readings yet.",
    )
}

fn providers_table(ps: &[ProviderFunds]) -> Markup {
    let rows: Vec<Vec<Markup>> = ps
        .iter()
        .map(|p| {
            vec![
                provider_link(&p.provider),
                badge(p.status.as_str()),
                html! {
                    (p.balances.iter().map(|(c, a)| format!("{} {c}", amount(*a))).collect::<Vec<_>>().join(", "))
                },
                html! {
                    @if let Some(q) = p.quota_remaining_ratio { (amount(q * 100.0)) "% left" }
                },
                html! { (p.accounts_below) " of " (p.accounts) },
            ]
        })
        .collect();
    table(
        &[
            "Provider",
            "Worst status",
            "Balance (sum)",
            "Tightest quota",
            "Accounts below",
        ],
        &rows,
        "No readings yet.",
    )
}

/// The funds section of a batch page: the readings of the batch's accounts
/// and its provider's thresholds.
pub(crate) fn batch_section(h: &HostFunds, batch: &crm_domain::BatchId) -> Markup {
    let mine: Vec<AssessedReading> = h
        .readings
        .iter()
        .filter(|a| a.reading.batch_id.as_ref() == Some(batch))
        .cloned()
        .collect();
    html! {
        section aria-labelledby="funds-h" {
            h2 id="funds-h" { "Funds and quota" }
            (readings_table(&mine, false))
            (thresholds_table(h))
            p { a href={ "/hosts/" (crate::html::seg(&h.host)) "/funds" } { "All funds on " (h.host) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        for (secs, want) in [
            (-5, "0 s ago"),
            (0, "0 s ago"),
            (59, "59 s ago"),
            (60, "1 min ago"),
            (180, "3 min ago"),
            (3_599, "59 min ago"),
            (3_600, "1 h ago"),
            (86_399, "23 h ago"),
            (86_400, "1 d ago"),
            (10 * 86_400, "10 d ago"),
        ] {
            assert_eq!(ago(secs), want, "{secs}");
        }
    }
}
