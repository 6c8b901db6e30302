//! The batch list and one batch's page.

use super::{batches_table, checks_table, host_names, plan_table, runs_table, short};
use crate::html::seg;
use crate::session::{Role, Session};
use crate::view::{
    action_button, action_link, badge, code, csrf_field, facts, host_link, link, page,
    provider_link, provider_path, table, time,
};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use crm_app::batches::BatchQuery;
use crm_domain::ports::ReconcileRepo;
use maud::{Markup, html};

#[derive(Debug, serde::Deserialize)]
pub struct BatchListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    provider: Option<String>,
}

pub async fn batches(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Query(q): Query<BatchListQuery>,
) -> Result<Response> {
    let nonempty = |v: Option<String>| v.filter(|x| !x.is_empty());
    let filter = BatchQuery {
        status: nonempty(q.status),
        host: nonempty(q.host),
        provider: nonempty(q.provider),
        limit: Some(500),
    };
    let what = [
        filter.status.as_ref().map(|v| format!("status {v}")),
        filter.host.as_ref().map(|v| format!("host {v}")),
        filter.provider.as_ref().map(|v| format!("provider {v}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let list = c.app.list_batches(filter).await?;
    let names = host_names(&c).await?;
    let body = html! {
        @if !what.is_empty() {
            p { "Showing batches with " (what) ". " (link("/batches", "Show all")) }
        }
        (batches_table(&list, &names))
    };
    Ok(page(&s, "Batches", body))
}

pub async fn batch(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = c.app.batch_detail(&id).await?;
    let b = &d.batch;
    let runs = c
        .app
        .store()
        .runs_for_batch(&b.id, 20)
        .await
        .map_err(crm_app::AppError::from)?;
    // The readings of this batch's accounts, with its provider's thresholds.
    let funds = c
        .app
        .stored_funds(
            &d.host_name,
            Some(&b.provider),
            &crm_domain::funds::FundsThreshold::default(),
        )
        .await?;
    let keys = html! {
        @for (n, f) in b.upstream_keys.iter().enumerate() {
            @if n > 0 { ", " }
            (code(&f.to_string()))
        }
    };
    let admin = s.role == Role::Admin;
    let live = admin && b.status.is_live();
    let resumable = admin && b.status.is_resumable();
    let actions = html! {
        @if live || resumable {
            section aria-labelledby="actions-h" class="actions" {
                h2 id="actions-h" { "Actions" }
                @if live {
                    (action_link(&format!("/batches/{}/rollback", seg(b.id.as_str())), "Roll back…"))
                    " "
                    (action_link(
                        &format!(
                            "{}/verify?host={}",
                            provider_path(&b.provider),
                            seg(&d.host_name)
                        ),
                        "Verify access…",
                    ))
                    " "
                    (action_button(
                        &s,
                        &format!("/hosts/{}/reconcile", seg(&d.host_name)),
                        "Check this batch for drift",
                        html! { input type="hidden" name="batch" value=(b.id.as_str()); },
                    ))
                }
                @if resumable { (resume_form(&s, b.id.as_str())) }
            }
        }
    };
    let resources: Vec<Vec<Markup>> = d
        .resources
        .iter()
        .map(|r| {
            vec![
                html! { (r.kind.as_str()) },
                html! { (r.host_object_id.to_string()) },
                code(&r.name),
                code(&r.natural_key),
                html! { (r.origin.as_str()) },
                badge(r.state.as_str()),
                html! { (r.journal_seq) },
            ]
        })
        .collect();
    let journal: Vec<Vec<Markup>> = d
        .journal
        .iter()
        .map(|j| {
            vec![
                html! { (j.seq) },
                html! { (j.op.as_str()) },
                html! { (j.kind.as_str()) },
                code(&j.name),
                html! { @if let Some(i) = j.host_object_id { (i.to_string()) } },
                badge(j.state.as_str()),
                html! { (j.detail.as_deref().unwrap_or("")) },
                time(&j.created_at),
            ]
        })
        .collect();
    let body = html! {
        (facts(&[
            ("Provider", provider_link(&b.provider)),
            ("Host", host_link(&d.host_name)),
            ("Mode", html! { (b.mode.as_str()) }),
            ("Status", html! {
                span id="batch-status" { (badge(b.status.as_str())) }
                @if let Some(r) = &b.status_reason { " " (r) }
            }),
            ("Access", html! {
                span id="access-status" { (badge(b.access_status.as_str())) }
                @for a in &d.funds_advisories {
                    br; span.funds-advisory { (badge(a.class.as_str())) " " (a.detail) }
                }
            }),
            ("Pack", html! { (b.pack_version) " " (code(short(&b.pack_checksum))) }),
            ("Upstream keys", keys),
            ("Created", time(&b.created_at)),
            ("Updated", time(&b.updated_at)),
        ]))
        (actions)
        section aria-labelledby="plan-h" { h2 id="plan-h" { "Plan" } (plan_table(&b.plan)) }
        section aria-labelledby="res-h" {
            h2 id="res-h" { "Managed resources" }
            p { "Objects carry the ownership marker " (code(&crm_domain::ownership::marker(&b.id))) " where the host has a notes field." }
            (table(
                &["Kind", "Host id", "Name", "Natural key", "Origin", "State", "Journal seq"],
                &resources,
                "No resources.",
            ))
        }
        section aria-labelledby="journal-h" {
            h2 id="journal-h" { "Journal" }
            (table(
                &["Seq", "Operation", "Kind", "Name", "Host id", "State", "Detail", "Written"],
                &journal,
                "The journal is empty.",
            ))
        }
        section aria-labelledby="checks-h" { h2 id="checks-h" { "Access checks" } (checks_table(&d.access_checks)) }
        (super::funds::batch_section(&funds, &b.id))
        section aria-labelledby="runs-h" { h2 id="runs-h" { "Reconcile runs" } (runs_table(&runs)) }
    };
    Ok(page(&s, &format!("Batch {}", b.id), body))
}

/// Finishing a batch that stopped part-way. Upstream keys are never stored,
/// so accounts still to be created need their keys again.
pub(crate) fn resume_form(s: &Session, batch: &str) -> Markup {
    html! {
        form method="post" action={ "/batches/" (seg(batch)) "/resume" } class="stack resume" {
            (csrf_field(s))
            p { "This batch stopped before it finished. Resuming adopts what the journal shows was created (looked up by natural key, never duplicated) and carries on from there." }
            label for="resume-keys" { "Upstream keys again, one per line (needed only for accounts not created yet)" }
            textarea id="resume-keys" name="keys" rows="3" autocomplete="off" spellcheck="false" {}
            button type="submit" class="action" id="resume" { "Resume batch" }
        }
    }
}
