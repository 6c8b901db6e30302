//! One problem found in a pack file, located by file, line and column.
//!
//! Operators fix packs in an editor, so every diagnostic carries the
//! position an editor can jump to, plus the logical path
//! (`providers[2].models[0].price.input`) for tools that work on structure.

use std::fmt;
use std::ops::Range;

/// A problem in a pack file. Displays as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Logical location, e.g. `providers[2].models[0].price.input`; empty
    /// for the whole document.
    pub path: String,
    pub message: String,
    /// Byte offset in the file; orders diagnostics as they appear in the text.
    #[serde(skip)]
    pub(crate) offset: usize,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Turns byte spans into diagnostics for one file.
#[derive(Debug)]
pub(crate) struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Locator { file, text }
    }

    /// A diagnostic at the start of `span` (the start of the file when the
    /// parser kept no span, e.g. for the document root).
    pub(crate) fn at(
        &self,
        span: Option<Range<usize>>,
        path: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        let offset = span.map(|s| s.start).unwrap_or(0).min(self.text.len());
        let (line, column) = line_column(self.text, offset);
        Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
            offset,
        }
    }
}

/// 1-based line and character column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // A span can point into the middle of a multi-byte character only if the
    // parser misbehaves; back off to the character start rather than panic.
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Puts diagnostics in reading order, so output is stable and follows the file.
pub(crate) fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| (a.offset, &a.path, &a.message).cmp(&(b.offset, &b.path, &b.message)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nb = \"é\" x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        let x = text.find('x').unwrap();
        // `é` is two bytes but one column.
        assert_eq!(line_column(text, x), (2, 9));
        assert_eq!(line_column(text, text.len() + 10), (3, 1));
    }

    #[test]
    fn displays_as_file_line_column_message() {
        let loc = Locator::new("p.toml", "x\ny = 2\n");
        let d = loc.at(Some(2..3), "y", "bad y");
        assert_eq!(d.to_string(), "p.toml:2:1: bad y");
        assert_eq!(d.path, "y");
    }
}
