//! A problem found while compiling: where (file, line, column) and what, and how it reads
//! for a person (with a code frame of the lines around it).

use serde::{Deserialize, Serialize};

/// One problem; `line` and `column` (1-based, columns in characters) are `None` when the
/// problem is about a whole file (a missing entry, a file that is not text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl Problem {
    /// A problem about the whole of `file`.
    pub fn file(file: &str, message: impl Into<String>) -> Problem {
        Problem { file: file.to_owned(), line: None, column: None, message: message.into() }
    }

    /// A problem at byte `offset` of `source`.
    pub fn at(file: &str, source: &str, offset: u32, message: impl Into<String>) -> Problem {
        let (line, column) = line_column(source, offset as usize);
        Problem { file: file.to_owned(), line: Some(line), column: Some(column), message: message.into() }
    }

    /// `file:line:column: message`, then the lines around it with a caret under the column
    /// when `source` is the file's text.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}: {}", self.file, self.message),
            _ => format!("{}: {}", self.file, self.message),
        };
        if let (Some(source), Some(line), Some(column)) = (source, self.line, self.column) {
            out.push('\n');
            out.push_str(&code_frame(source, line, column));
        }
        out
    }
}

/// How many lines a code frame shows before and after the problem's line.
const FRAME_CONTEXT: u32 = 2;
/// Longest line a code frame shows (in characters); longer ones are cut with `…`.
const FRAME_WIDTH: usize = 160;

fn code_frame(source: &str, line: u32, column: u32) -> String {
    let first = line.saturating_sub(FRAME_CONTEXT).max(1);
    let last = line + FRAME_CONTEXT;
    let width = last.to_string().len();
    let mut out = String::new();
    for (number, text) in source.lines().enumerate().map(|(i, t)| (i as u32 + 1, t)) {
        if number < first {
            continue;
        }
        if number > last {
            break;
        }
        let marker = if number == line { '>' } else { ' ' };
        let shown: String = text.chars().take(FRAME_WIDTH).collect();
        let cut = if text.chars().count() > FRAME_WIDTH { "…" } else { "" };
        out.push_str(&format!("{marker} {number:>width$} | {shown}{cut}\n"));
        if number == line {
            let pad: String = text
                .chars()
                .take(column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("  {:>width$} | {pad}^\n", ""));
        }
    }
    out.trim_end().to_owned()
}

/// The 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() as u32 + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::{Problem, line_column};

    #[test]
    fn positions_are_one_based_in_characters() {
        let source = "ab\nçd\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 3), (2, 1));
        assert_eq!(line_column(source, 5), (2, 2));
        assert_eq!(line_column(source, 99), (3, 1));
    }

    #[test]
    fn renders_a_code_frame_with_a_caret() {
        let source = "one\ntwo\nthree x\nfour\nfive\nsix\n";
        let problem = Problem::at("/app/A.tsx", source, 14, "bad x");
        assert_eq!((problem.line, problem.column), (Some(3), Some(7)));
        assert_eq!(
            problem.render(Some(source)),
            "/app/A.tsx:3:7: bad x\n  1 | one\n  2 | two\n> 3 | three x\n    |       ^\n  4 | four\n  5 | five"
        );
        assert_eq!(Problem::file("/app/A.tsx", "missing").render(None), "/app/A.tsx: missing");
    }
}
