//! The audit log.

use crate::view::{badge, code, page, table, time};
use crate::{Console, Result, Viewer};
use axum::extract::State;
use axum::response::Response;
use maud::html;

pub async fn audit(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let rows: Vec<Vec<maud::Markup>> = c
        .app
        .audit_log(300)
        .await?
        .iter()
        .map(|e| {
            vec![
                time(&e.at),
                html! { (e.actor) },
                html! { (e.action) },
                html! { (e.target) },
                badge(&e.outcome),
                code(e.request_id.as_deref().unwrap_or("")),
                html! { (e.detail.as_deref().unwrap_or("")) },
            ]
        })
        .collect();
    let body = table(
        &[
            "When", "Who", "Action", "Target", "Outcome", "Request", "Detail",
        ],
        &rows,
        "Nothing recorded yet.",
    );
    Ok(page(&s, "Audit log", body))
}
