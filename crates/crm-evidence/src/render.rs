//! Markdown renderings for humans: `21-summary.md` of one run and
//! `matrix-summary.md` of a matrix. The JSON files are the record; these
//! say the same thing in a form to paste into a ticket.

use crate::summary::{MatrixSummary, Summary};
use std::fmt::Write;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `21-summary.md`.
pub fn summary_markdown(s: &Summary) -> String {
    let mut out = String::new();
    let h = &s.header;
    let _ = writeln!(out, "# Acceptance: {} on {}", h.provider, h.host.url);
    let _ = writeln!(out);
    let verdict = match s.failure_class {
        Some(c) => format!("**{}** ({c})", s.verdict),
        None => format!("**{}**", s.verdict),
    };
    let _ = writeln!(out, "Verdict: {verdict}, exit code {}", s.exit_code);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Host: {} (sub2api {}{})",
        h.host.url,
        h.host.version.as_deref().unwrap_or("version unknown"),
        h.host
            .simulator_profile
            .as_deref()
            .map(|p| format!(", simulator profile `{p}`"))
            .unwrap_or_default()
    );
    match &h.pack {
        Some(p) => {
            let _ = writeln!(
                out,
                "- Pack: {} {} (checksum `{}`, from {})",
                p.id, p.version, p.checksum, p.source
            );
        }
        None => {
            let _ = writeln!(out, "- Pack: not installed");
        }
    }
    let modes: Vec<&str> = h.modes.iter().map(|m| m.as_str()).collect();
    let _ = writeln!(out, "- Modes: {}", modes.join(", "));
    let _ = writeln!(
        out,
        "- Run: {} from {} to {}{}",
        h.run_id,
        h.run_started_at.to_rfc3339(),
        s.finished_at.to_rfc3339(),
        if h.keep {
            " (--keep: not rolled back)"
        } else {
            ""
        }
    );
    if !s.upstream_keys.is_empty() {
        let _ = writeln!(out, "- Upstream keys: {}", s.upstream_keys.join(", "));
    }
    if !s.advisories.is_empty() {
        let adv: Vec<&str> = s.advisories.iter().map(|c| c.as_str()).collect();
        let _ = writeln!(out, "- Advisories: {}", adv.join(", "));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "## Steps");
    let _ = writeln!(out);
    let _ = writeln!(out, "| File | Verdict | Class | Summary |");
    let _ = writeln!(out, "|---|---|---|---|");
    for r in &s.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.file,
            r.verdict,
            r.failure_class.map(|c| c.as_str()).unwrap_or(""),
            cell(&r.summary)
        );
    }
    if !s.batches.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "## Batches");
        let _ = writeln!(out);
        let _ = writeln!(out, "| Mode | Batch | Status | Access |");
        let _ = writeln!(out, "|---|---|---|---|");
        for b in &s.batches {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                b.mode, b.batch_id, b.batch_status, b.access_status
            );
        }
    }
    let scan = &s.secret_scan;
    let _ = writeln!(out);
    let _ = writeln!(out, "## Secrets");
    let _ = writeln!(out);
    let checked: Vec<String> = scan
        .checked
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let _ = writeln!(
        out,
        "Checked {} across {} file(s): {} hit(s). Redacted on the way to disk: {}.",
        checked.join(", "),
        scan.scan.files_scanned,
        scan.scan.total_hits(),
        scan.redacted_before_write
    );
    for u in &scan.unchecked {
        let _ = writeln!(out, "- not checked: {}", cell(u));
    }
    out
}

/// `matrix-summary.md`.
pub fn matrix_markdown(m: &MatrixSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Acceptance matrix");
    let _ = writeln!(out);
    let verdict = match m.failed_cells {
        0 => format!("**{}**", m.verdict),
        n => format!("**{}** ({n} of {} cells failed)", m.verdict, m.cells.len()),
    };
    let _ = writeln!(out, "Verdict: {verdict}, exit code {}", m.exit_code);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Cell | Provider | Mode | Host | Verdict | Class | Folder |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for c in &m.cells {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&c.name),
            cell(&c.provider),
            c.mode.as_str(),
            cell(&c.host),
            c.verdict.map(|v| v.as_str()).unwrap_or("error"),
            c.failure_class.map(|f| f.as_str()).unwrap_or(""),
            cell(
                c.folder
                    .as_deref()
                    .unwrap_or(c.error.as_deref().unwrap_or(""))
            )
        );
    }
    out
}
