//! The audit log.

use super::*;
use crate::html::{badge, esc, table, time};
use crate::{Console, Result, Viewer};
use axum::extract::State;
use axum::response::Response;

pub async fn audit(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let rows: Vec<Vec<String>> = c
        .app
        .audit_log(300)
        .await?
        .iter()
        .map(|e| {
            vec![
                time(&e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.target),
                badge(&e.outcome),
                format!(
                    "<code>{}</code>",
                    esc(e.request_id.as_deref().unwrap_or(""))
                ),
                esc(e.detail.as_deref().unwrap_or("")),
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
