//! Output: JSON on stdout for machines, tables that fit 100 columns for people.

use comfy_table::{ColumnConstraint, ContentArrangement, Table, TableComponent, presets};
use serde::Serialize;
use std::io::IsTerminal;

use crate::cli::OutputFormat;

/// Prints `value` as pretty JSON, or calls `table` to render it for people.
pub fn emit<T: Serialize>(format: OutputFormat, value: &T, table: impl FnOnce(&T) -> String) {
    match format {
        OutputFormat::Json => match serde_json::to_string_pretty(value) {
            Ok(s) => out(&s),
            Err(e) => eprintln!("error: cannot render JSON output: {e}"),
        },
        OutputFormat::Table => {
            let s = table(value);
            if !s.is_empty() {
                out(s.trim_end());
            }
        }
    }
}

/// Writes one block to stdout. A closed pipe (`crm ... | head`) is the
/// reader's choice, not an error worth a panic.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{text}").and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to standard output: {e}");
    }
}

/// Columns whose values are ids or vocabulary words: wrapping them would make
/// them impossible to copy, so free-text columns give way instead.
const KEEP_WHOLE: &[&str] = &[
    "Batch",
    "Run",
    "Lease",
    "Provider",
    "Status",
    "Access",
    "Verdict",
    "Drift",
    "Action",
    "Kind",
    "Reconcile",
    "Outcome",
    "At",
];

/// A table of at most 100 columns.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    // No vertical rules and one space between columns: the 100 columns go
    // to content, so ids and statuses rarely wrap.
    t.load_preset(presets::NOTHING)
        .set_style(TableComponent::HeaderLines, '─')
        .set_style(TableComponent::MiddleHeaderIntersections, '─')
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(100)
        .set_header(headers.iter().copied());
    for r in rows {
        t.add_row(r);
    }
    for (c, h) in t.column_iter_mut().zip(headers) {
        c.set_padding((0, 1));
        if KEEP_WHOLE.contains(h) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key: value` lines for one object.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            // Continuation lines line up under the first value.
            let v = v.replace('\n', &format!("\n{:w$}  ", ""));
            format!("{k:>w$}: {v}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

/// Whether to decorate stderr (progress, colour): only on a terminal.
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner on stderr that shows only on a terminal and in table mode.
pub fn progress(format: OutputFormat, quiet: bool, msg: &str) -> indicatif::ProgressBar {
    if format == OutputFormat::Json || quiet || !stderr_is_tty() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(msg.to_owned());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// The serialized word of a value (`still_served`), or its JSON text.
pub fn word<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}
