//! The batch list and one batch's page.

use super::*;
use crate::html::{self, action_button, action_link, badge, esc, facts, link, seg, table, time};
use crate::session::{Role, Session};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use crm_app::batches::BatchQuery;
use crm_domain::ports::ReconcileRepo;

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
    let body = format!(
        "{}{}",
        if what.is_empty() {
            String::new()
        } else {
            format!(
                "<p>Showing batches with {}. {}</p>",
                esc(&what),
                link("/batches", "Show all")
            )
        },
        batches_table(&list, &names).into_string()
    );
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
    let keys = b
        .upstream_keys
        .iter()
        .map(|f| format!("<code>{}</code>", esc(&f.to_string())))
        .collect::<Vec<_>>()
        .join(", ");
    let actions = if s.role == Role::Admin {
        let mut a = String::new();
        if b.status.is_live() {
            a.push_str(&action_link(
                &format!("/batches/{}/rollback", seg(b.id.as_str())),
                "Roll back…",
            ));
            a.push(' ');
            a.push_str(&action_link(
                &format!(
                    "/providers/{}/{}/verify?host={}",
                    seg(b.provider.pack.as_str()),
                    seg(b.provider.provider.as_str()),
                    seg(&d.host_name)
                ),
                "Verify access…",
            ));
            a.push(' ');
            a.push_str(&action_button(
                &s,
                &format!("/hosts/{}/reconcile", seg(&d.host_name)),
                "Check this batch for drift",
                &format!(
                    "<input type=\"hidden\" name=\"batch\" value=\"{}\">",
                    esc(b.id.as_str())
                ),
            ));
        }
        if b.status.is_resumable() {
            a.push_str(&resume_form(&s, b.id.as_str()));
        }
        if a.is_empty() {
            String::new()
        } else {
            format!(
                "<section aria-labelledby=\"actions-h\" class=\"actions\"><h2 id=\"actions-h\">Actions</h2>{a}</section>"
            )
        }
    } else {
        String::new()
    };
    let resources: Vec<Vec<String>> = d
        .resources
        .iter()
        .map(|r| {
            vec![
                esc(r.kind.as_str()),
                r.host_object_id.to_string(),
                format!("<code>{}</code>", esc(&r.name)),
                format!("<code>{}</code>", esc(&r.natural_key)),
                esc(r.origin.as_str()),
                badge(r.state.as_str()),
                r.journal_seq.to_string(),
            ]
        })
        .collect();
    let journal: Vec<Vec<String>> = d
        .journal
        .iter()
        .map(|j| {
            vec![
                j.seq.to_string(),
                esc(j.op.as_str()),
                esc(j.kind.as_str()),
                format!("<code>{}</code>", esc(&j.name)),
                j.host_object_id.map(|i| i.to_string()).unwrap_or_default(),
                badge(j.state.as_str()),
                esc(j.detail.as_deref().unwrap_or("")),
                time(&j.created_at),
            ]
        })
        .collect();
    let body = format!(
        "{}{actions}\
         <section aria-labelledby=\"plan-h\"><h2 id=\"plan-h\">Plan</h2>{}</section>\
         <section aria-labelledby=\"res-h\"><h2 id=\"res-h\">Managed resources</h2>\
         <p>Objects carry the ownership marker <code>{}</code> where the host has a notes field.</p>{}</section>\
         <section aria-labelledby=\"journal-h\"><h2 id=\"journal-h\">Journal</h2>{}</section>\
         <section aria-labelledby=\"checks-h\"><h2 id=\"checks-h\">Access checks</h2>{}</section>\
         <section aria-labelledby=\"runs-h\"><h2 id=\"runs-h\">Reconcile runs</h2>{}</section>",
        facts(&[
            ("Provider", provider_link(&b.provider)),
            ("Host", host_link(&d.host_name)),
            ("Mode", esc(b.mode.as_str())),
            (
                "Status",
                format!(
                    "<span id=\"batch-status\">{}</span>{}",
                    badge(b.status.as_str()),
                    b.status_reason
                        .as_deref()
                        .map(|r| format!(" {}", esc(r)))
                        .unwrap_or_default()
                )
            ),
            (
                "Access",
                format!(
                    "<span id=\"access-status\">{}</span>",
                    badge(b.access_status.as_str())
                )
            ),
            (
                "Pack",
                format!(
                    "{} <code>{}</code>",
                    esc(&b.pack_version),
                    esc(short(&b.pack_checksum))
                )
            ),
            ("Upstream keys", keys),
            ("Created", time(&b.created_at)),
            ("Updated", time(&b.updated_at)),
        ]),
        plan_table(&b.plan).into_string(),
        esc(&crm_domain::ownership::marker(&b.id)),
        table(
            &[
                "Kind",
                "Host id",
                "Name",
                "Natural key",
                "Origin",
                "State",
                "Journal seq"
            ],
            &resources,
            "No resources."
        ),
        table(
            &[
                "Seq",
                "Operation",
                "Kind",
                "Name",
                "Host id",
                "State",
                "Detail",
                "Written"
            ],
            &journal,
            "The journal is empty."
        ),
        checks_table(&d.access_checks).into_string(),
        runs_table(&runs).into_string(),
    );
    Ok(page(&s, &format!("Batch {}", b.id), body))
}

/// Finishing a batch that stopped part-way. Upstream keys are never stored,
/// so accounts still to be created need their keys again.
pub(crate) fn resume_form(s: &Session, batch: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/batches/{}/resume\" class=\"stack resume\">{}\
         <p>This batch stopped before it finished. Resuming adopts what the journal shows was created \
         (looked up by natural key, never duplicated) and carries on from there.</p>\
         <label for=\"resume-keys\">Upstream keys again, one per line (needed only for accounts not created yet)</label>\
         <textarea id=\"resume-keys\" name=\"keys\" rows=\"3\" autocomplete=\"off\" spellcheck=\"false\"></textarea>\
         <button type=\"submit\" class=\"action\" id=\"resume\">Resume batch</button></form>",
        seg(batch),
        html::csrf_field(s)
    )
}
