//! A1 notation for the Sheets emulator: parsing Google's range dialect, resolving a parsed
//! range against a spreadsheet's sheets, clipping open ranges to a sheet's grid, and printing
//! ranges back the way Google echoes them (`Sheet1!A1:B2`, `'My Sheet'!A5`).
//!
//! The parser is written by hand on purpose. A1 notation is a tiny grammar — an optional sheet
//! title (quoted with doubled inner quotes, or bare), then one or two references that are a
//! cell, a column or a row — and what matters here is Google's exact dialect: open-ended
//! `A5:B`, reversed `B2:A1`, a bare text that is either a sheet title or a range of the first
//! sheet, and Google's error texts (`Unable to parse range: …`). No maintained crate parses
//! that dialect, and a general formula parser would accept far more than the API does.
//!
//! Accepted references: `A1`, `$A$1` (the `$` markers are ignored), whole columns `A:C`, whole
//! rows `1:3`, a cell with a column or row (`A5:B` = from A5 down to the end of column B,
//! `A5:7` = rows 5..7 from column A rightwards), and R1C1 cells (`R1C1`, `R2C3:R4C5`). Columns
//! go up to `ZZZ` ([`MAX_COLUMNS`]) and rows up to [`MAX_ROWS`]; anything beyond is unparsable.
//! A column range with a row range (`A:1`) is rejected, as is a lone column or row without a
//! colon (`Sheet1!A`).

/// Columns addressable in A1 notation here: `A`..=`ZZZ`.
pub const MAX_COLUMNS: u32 = 18_278;
/// Rows addressable in A1 notation here (1-based `1..=MAX_ROWS`).
pub const MAX_ROWS: u32 = 10_000_000;

/// 0-based, inclusive bounds; `None` = open in that direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub start_row: Option<u32>,
    pub start_col: Option<u32>,
    pub end_row: Option<u32>,
    pub end_col: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum A1 {
    /// `Sheet!area` or `'Sheet'` (quoted name alone); area None = whole sheet.
    Qualified { sheet: String, area: Option<Area> },
    /// No `!`: either a sheet title (whole sheet) or an area of the first sheet; `text` is the raw input.
    Unqualified { text: String, area: Option<Area> },
}

/// Google's 400 message for a range it cannot use, e.g. `Unable to parse range: Sheet 1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RangeError(pub String);

impl RangeError {
    /// `Unable to parse range: <original>`.
    pub fn unparsable(original: &str) -> RangeError {
        RangeError(format!("Unable to parse range: {original}"))
    }
}

/// A sheet as resolution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetGrid {
    pub title: String,
    pub row_count: u32,
    pub column_count: u32,
}

/// A closed rectangle on one sheet, 0-based inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub row0: u32,
    pub col0: u32,
    pub row1: u32,
    pub col1: u32,
}

impl Rect {
    /// The one-cell rectangle at (`row`, `col`).
    pub fn cell(row: u32, col: u32) -> Rect {
        Rect { row0: row, col0: col, row1: row, col1: col }
    }

    /// Whether the start lies after the end in either direction (such a rectangle holds no cell).
    pub fn is_inverted(&self) -> bool {
        self.row0 > self.row1 || self.col0 > self.col1
    }
}

/// Parses A1 (or R1C1-cell) notation. Never panics; the error carries Google's text.
pub fn parse(text: &str) -> Result<A1, RangeError> {
    let unparsable = || RangeError::unparsable(text);
    if text.is_empty() {
        return Err(unparsable());
    }
    if let Some(quoted) = text.strip_prefix('\'') {
        let (sheet, rest) = split_quoted_title(quoted).ok_or_else(unparsable)?;
        if sheet.is_empty() {
            return Err(unparsable());
        }
        if rest.is_empty() {
            return Ok(A1::Qualified { sheet, area: None });
        }
        let area = rest.strip_prefix('!').and_then(parse_area).ok_or_else(unparsable)?;
        return Ok(A1::Qualified { sheet, area: Some(area) });
    }
    match text.split_once('!') {
        Some((sheet, area_text)) => {
            if sheet.is_empty() {
                return Err(unparsable());
            }
            let area = parse_area(area_text).ok_or_else(unparsable)?;
            Ok(A1::Qualified { sheet: sheet.to_owned(), area: Some(area) })
        }
        None => Ok(A1::Unqualified { text: text.to_owned(), area: parse_area(text) }),
    }
}

/// After an opening quote: the title up to the closing quote (doubled quotes unescaped) and
/// the text after that quote; `None` when the quote is never closed.
fn split_quoted_title(after_open: &str) -> Option<(String, &str)> {
    let mut title = String::new();
    let mut chars = after_open.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if c != '\'' {
            title.push(c);
        } else if chars.next_if(|&(_, next)| next == '\'').is_some() {
            title.push('\'');
        } else {
            return Some((title, &after_open[index + 1..]));
        }
    }
    None
}

/// One side of a range: a cell, a column (row open) or a row (column open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoint {
    row: Option<u32>,
    col: Option<u32>,
}

/// The area part of a range (after `!`, or the whole unqualified text).
fn parse_area(text: &str) -> Option<Area> {
    let Some((first, second)) = text.split_once(':') else {
        let cell = parse_endpoint(text)?;
        let (row, col) = (cell.row?, cell.col?);
        return Some(Area { start_row: Some(row), start_col: Some(col), end_row: Some(row), end_col: Some(col) });
    };
    let (first, second) = (parse_endpoint(first)?, parse_endpoint(second)?);
    let column_only = |e: Endpoint| e.row.is_none();
    let row_only = |e: Endpoint| e.col.is_none();
    if (column_only(first) && row_only(second)) || (row_only(first) && column_only(second)) {
        return None;
    }
    let (start_row, end_row) = span(first.row, second.row);
    let (start_col, end_col) = span(first.col, second.col);
    Some(Area { start_row, start_col, end_row, end_col })
}

/// Bounds in one direction: both given → ordered; one given → it starts an open-ended span
/// (`A5:B` and `A:B5` both mean "from row 5 down").
fn span(a: Option<u32>, b: Option<u32>) -> (Option<u32>, Option<u32>) {
    match (a, b) {
        (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
        (Some(one), None) | (None, Some(one)) => (Some(one), None),
        (None, None) => (None, None),
    }
}

fn parse_endpoint(text: &str) -> Option<Endpoint> {
    parse_a1_endpoint(text).or_else(|| parse_r1c1_cell(text))
}

/// `[$]letters[$]digits`, `[$]letters` or `[$]digits`.
fn parse_a1_endpoint(text: &str) -> Option<Endpoint> {
    let rest = text.strip_prefix('$').unwrap_or(text);
    let letters_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (letters, rest) = rest.split_at(letters_len);
    let (marked, digits) = match rest.strip_prefix('$') {
        Some(digits) if !letters.is_empty() => (true, digits),
        _ => (false, rest),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || (marked && digits.is_empty()) {
        return None;
    }
    let col = if letters.is_empty() { None } else { Some(column_index(letters).filter(|&c| c < MAX_COLUMNS)?) };
    let row = if digits.is_empty() { None } else { Some(row_index(digits)?) };
    (row.is_some() || col.is_some()).then_some(Endpoint { row, col })
}

/// `R<row>C<col>`, 1-based, either letter in either case.
fn parse_r1c1_cell(text: &str) -> Option<Endpoint> {
    let rest = text.strip_prefix(['R', 'r'])?;
    let (row, col) = rest.split_once(['C', 'c'])?;
    if row.is_empty() || !row.bytes().all(|b| b.is_ascii_digit()) || !col.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let col = u32::try_from(number(col)?).ok().filter(|&c| (1..=MAX_COLUMNS).contains(&c))?;
    Some(Endpoint { row: Some(row_index(row)?), col: Some(col - 1) })
}

/// A 1-based row number in text as a 0-based index, within [`MAX_ROWS`].
fn row_index(digits: &str) -> Option<u32> {
    let row = u32::try_from(number(digits)?).ok().filter(|&r| (1..=MAX_ROWS).contains(&r))?;
    Some(row - 1)
}

/// A non-empty run of ASCII digits as a number, `None` on overflow.
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
}

/// 0-based index of column letters (case-insensitive): "A" → 0, "AA" → 26; `None` when the
/// text is not letters or the index does not fit in a `u32`.
pub fn column_index(letters: &str) -> Option<u32> {
    if letters.is_empty() {
        return None;
    }
    let one_based = letters.bytes().try_fold(0u64, |n, b| {
        let digit = u64::from(b.to_ascii_uppercase().checked_sub(b'A').filter(|d| *d < 26)?) + 1;
        n.checked_mul(26)?.checked_add(digit)
    })?;
    u32::try_from(one_based - 1).ok()
}

/// Column letters of a 0-based column index: 0 → "A", 26 → "AA".
pub fn column_letters(col: u32) -> String {
    let mut remaining = u64::from(col) + 1;
    let mut letters = Vec::new();
    while remaining > 0 {
        let digit = (remaining - 1) % 26;
        letters.push(b'A' + digit as u8);
        remaining = (remaining - 1) / 26;
    }
    letters.reverse();
    letters.into_iter().map(char::from).collect()
}

/// A cell's name: (4, 0) → "A5".
pub fn cell_name(row: u32, col: u32) -> String {
    format!("{}{}", column_letters(col), u64::from(row) + 1)
}

/// The sheet (index into `sheets`) and the area as written (open ends still open).
///
/// Unqualified text equal to a sheet title (exact match) names that whole sheet; otherwise, if
/// it is an area, the area on the first sheet; otherwise a title matched ignoring case. A
/// qualified title is matched exactly, then ignoring case (Google's titles are unique ignoring
/// case, so this never picks between two sheets).
pub fn resolve(a1: &A1, sheets: &[SheetGrid], original: &str) -> Result<(usize, Area), RangeError> {
    let found = match a1 {
        A1::Qualified { sheet, area } => sheet_index(sheets, sheet).map(|index| (index, area.unwrap_or(Area::WHOLE))),
        A1::Unqualified { text, area } => match (sheets.iter().position(|s| s.title == *text), area) {
            (Some(index), _) => Some((index, Area::WHOLE)),
            (None, Some(area)) if !sheets.is_empty() => Some((0, *area)),
            _ => sheet_index(sheets, text).map(|index| (index, Area::WHOLE)),
        },
    };
    found.ok_or_else(|| RangeError::unparsable(original))
}

fn sheet_index(sheets: &[SheetGrid], title: &str) -> Option<usize> {
    sheets.iter().position(|s| s.title == title).or_else(|| {
        let lowered = title.to_lowercase();
        sheets.iter().position(|s| s.title.to_lowercase() == lowered)
    })
}

impl Area {
    /// The whole sheet: open in every direction.
    pub const WHOLE: Area = Area { start_row: None, start_col: None, end_row: None, end_col: None };

    /// Open ends filled from the grid.
    pub fn clip(&self, grid: &SheetGrid) -> Rect {
        self.clip_to(grid.row_count, grid.column_count)
    }

    /// Open ends filled from a grid of `row_count` × `column_count`. The result is never
    /// inverted: an open end before a start that lies beyond the grid becomes that start.
    pub fn clip_to(&self, row_count: u32, column_count: u32) -> Rect {
        let row0 = self.start_row.unwrap_or(0);
        let col0 = self.start_col.unwrap_or(0);
        let row1 = self.end_row.unwrap_or(row_count.saturating_sub(1)).max(row0);
        let col1 = self.end_col.unwrap_or(column_count.saturating_sub(1)).max(col0);
        Rect { row0, col0, row1, col1 }
    }

    /// Whether a closed end lies outside the grid.
    pub fn exceeds(&self, grid: &SheetGrid) -> bool {
        let rows = [self.start_row, self.end_row].into_iter().flatten().any(|row| row >= grid.row_count);
        let cols = [self.start_col, self.end_col].into_iter().flatten().any(|col| col >= grid.column_count);
        rows || cols
    }
}

/// `Range ('Sheet1'!A1:B2000) exceeds grid limits. Max rows: 1000, max columns: 26`
pub fn exceeds_message(grid: &SheetGrid, area: &Area) -> String {
    let area_text = format_area(area);
    let separator = if area_text.is_empty() { "" } else { "!" };
    format!(
        "Range ({}{separator}{area_text}) exceeds grid limits. Max rows: {}, max columns: {}",
        quoted(&grid.title),
        grid.row_count,
        grid.column_count
    )
}

/// An area as written in A1, open ends left out: `A1:B2`, `A5`, `A:C`, `2:4`, `A5:B`; the
/// whole sheet is the empty text.
pub fn format_area(area: &Area) -> String {
    let endpoint = |row: Option<u32>, col: Option<u32>| {
        let mut text = col.map(column_letters).unwrap_or_default();
        if let Some(row) = row {
            text += &(u64::from(row) + 1).to_string();
        }
        text
    };
    let start = endpoint(area.start_row, area.start_col);
    let end = endpoint(area.end_row, area.end_col);
    if start == end && area.start_row.is_some() && area.start_col.is_some() {
        return start;
    }
    if start.is_empty() && end.is_empty() {
        return String::new();
    }
    format!("{start}:{end}")
}

/// `Sheet1!A1:B2`, `'My Sheet'!A5`, with quoting as described.
pub fn format_range(sheet_title: &str, rect: Rect) -> String {
    let cells = if rect.row0 == rect.row1 && rect.col0 == rect.col1 {
        cell_name(rect.row0, rect.col0)
    } else {
        format!("{}:{}", cell_name(rect.row0, rect.col0), cell_name(rect.row1, rect.col1))
    };
    format!("{}!{cells}", sheet_reference(sheet_title))
}

/// A sheet title as it prefixes a range: bare when that cannot be misread, otherwise quoted.
pub fn sheet_reference(title: &str) -> String {
    if needs_quotes(title) { quoted(title) } else { title.to_owned() }
}

/// `'title'` with inner quotes doubled.
fn quoted(title: &str) -> String {
    format!("'{}'", title.replace('\'', "''"))
}

/// Bare titles are ASCII letters, digits and `_`, not starting with a digit, and not
/// readable as a cell (`A1`, `ABC12`) or as an R1C1 reference (`R1C1`, `RC`, `R`, `C2`).
/// Over-quoting is harmless; under-quoting would make the echoed range unparsable.
fn needs_quotes(title: &str) -> bool {
    let bytes = title.as_bytes();
    let Some(first) = bytes.first() else { return true };
    if first.is_ascii_digit() || !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
        return true;
    }
    let letters = bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let rest = &bytes[letters..];
    let looks_like_cell = (1..=3).contains(&letters) && !rest.is_empty() && rest.iter().all(u8::is_ascii_digit);
    looks_like_cell || looks_like_r1c1(bytes)
}

/// `R`, `C`, `RC`, with optional digits after each letter, in any case.
fn looks_like_r1c1(bytes: &[u8]) -> bool {
    let skip_digits = |bytes: &[u8]| -> usize { bytes.iter().take_while(|b| b.is_ascii_digit()).count() };
    let mut at = 0;
    if matches!(bytes.first(), Some(b'R' | b'r')) {
        at = 1 + skip_digits(&bytes[1..]);
    }
    if matches!(bytes.get(at), Some(b'C' | b'c')) {
        at += 1 + skip_digits(&bytes[at + 1..]);
    }
    at > 0 && at == bytes.len()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn area(start_row: Option<u32>, start_col: Option<u32>, end_row: Option<u32>, end_col: Option<u32>) -> Area {
        Area { start_row, start_col, end_row, end_col }
    }

    fn closed(row0: u32, col0: u32, row1: u32, col1: u32) -> Area {
        area(Some(row0), Some(col0), Some(row1), Some(col1))
    }

    fn qualified(sheet: &str, area: Option<Area>) -> A1 {
        A1::Qualified { sheet: sheet.into(), area }
    }

    fn grid(title: &str, row_count: u32, column_count: u32) -> SheetGrid {
        SheetGrid { title: title.into(), row_count, column_count }
    }

    fn default_sheets() -> Vec<SheetGrid> {
        vec![grid("Sheet1", 1000, 26), grid("My Sheet", 50, 5), grid("Bob's", 10, 10), grid("A1", 20, 3)]
    }

    #[test]
    fn parses_valid_ranges() {
        let cases: Vec<(&str, A1)> = vec![
            ("Sheet1!A1:B2", qualified("Sheet1", Some(closed(0, 0, 1, 1)))),
            ("Sheet1!A:A", qualified("Sheet1", Some(area(None, Some(0), None, Some(0))))),
            ("Sheet1!1:2", qualified("Sheet1", Some(area(Some(0), None, Some(1), None)))),
            ("Sheet1!A5:A", qualified("Sheet1", Some(area(Some(4), Some(0), None, Some(0))))),
            ("Sheet1!A:B5", qualified("Sheet1", Some(area(Some(4), Some(0), None, Some(1))))),
            ("Sheet1!A5:7", qualified("Sheet1", Some(area(Some(4), Some(0), Some(6), None)))),
            ("Sheet1!A5", qualified("Sheet1", Some(closed(4, 0, 4, 0)))),
            ("Sheet1!B2:A1", qualified("Sheet1", Some(closed(0, 0, 1, 1)))),
            ("Sheet1!A2:B1", qualified("Sheet1", Some(closed(0, 0, 1, 1)))),
            ("Sheet1!a1:b2", qualified("Sheet1", Some(closed(0, 0, 1, 1)))),
            ("Sheet1!$A$1:$B$2", qualified("Sheet1", Some(closed(0, 0, 1, 1)))),
            ("Sheet1!$A:$C", qualified("Sheet1", Some(area(None, Some(0), None, Some(2))))),
            ("Sheet1!$3:$4", qualified("Sheet1", Some(area(Some(2), None, Some(3), None)))),
            ("Sheet1!A$1", qualified("Sheet1", Some(closed(0, 0, 0, 0)))),
            ("Sheet1!ZZZ10000000", qualified("Sheet1", Some(closed(9_999_999, 18_277, 9_999_999, 18_277)))),
            ("Sheet1!AA10:AB11", qualified("Sheet1", Some(closed(9, 26, 10, 27)))),
            ("Sheet1!R1C1", qualified("Sheet1", Some(closed(0, 0, 0, 0)))),
            ("Sheet1!R2C3:R4C5", qualified("Sheet1", Some(closed(1, 2, 3, 4)))),
            ("Sheet1!r2c3", qualified("Sheet1", Some(closed(1, 2, 1, 2)))),
            ("'My Sheet'!A:A", qualified("My Sheet", Some(area(None, Some(0), None, Some(0))))),
            ("'Bob''s'!A1", qualified("Bob's", Some(closed(0, 0, 0, 0)))),
            ("'''quoted'''!B3", qualified("'quoted'", Some(closed(2, 1, 2, 1)))),
            ("'My Sheet'", qualified("My Sheet", None)),
            ("'a!b'!C1", qualified("a!b", Some(closed(0, 2, 0, 2)))),
            ("'é😀'!A1", qualified("é😀", Some(closed(0, 0, 0, 0)))),
            ("My Sheet!A1:B2", qualified("My Sheet", Some(closed(0, 0, 1, 1)))),
            ("Bob's!A1", qualified("Bob's", Some(closed(0, 0, 0, 0)))),
            ("A1:B2", A1::Unqualified { text: "A1:B2".into(), area: Some(closed(0, 0, 1, 1)) }),
            ("A5:B", A1::Unqualified { text: "A5:B".into(), area: Some(area(Some(4), Some(0), None, Some(1))) }),
            ("A:G", A1::Unqualified { text: "A:G".into(), area: Some(area(None, Some(0), None, Some(6))) }),
            ("a1", A1::Unqualified { text: "a1".into(), area: Some(closed(0, 0, 0, 0)) }),
            ("Sheet1", A1::Unqualified { text: "Sheet1".into(), area: None }),
            ("Sheet 1", A1::Unqualified { text: "Sheet 1".into(), area: None }),
            ("A", A1::Unqualified { text: "A".into(), area: None }),
            ("é", A1::Unqualified { text: "é".into(), area: None }),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_invalid_ranges_with_googles_text() {
        let cases = [
            "",
            "'",
            "''",
            "''!A1",
            "'Sheet1",
            "'Sheet1'A1",
            "'Sheet1'!",
            "!A1",
            "Sheet1!",
            "!",
            "Sheet1!A",
            "Sheet1!7",
            "Sheet1!A0",
            "Sheet1!A1:B0",
            "Sheet1!A:1",
            "Sheet1!1:A",
            "Sheet1!A1:B2:C3",
            "Sheet1!A1:",
            "Sheet1!:A1",
            "Sheet1!AAAA1",
            "Sheet1!A10000001",
            "Sheet1!A99999999999999999999999",
            "Sheet1!A1B2",
            "Sheet1!$$A1",
            "Sheet1!A$",
            "Sheet1!A1 ",
            "Sheet1! A1",
            "Sheet1!R0C1",
            "Sheet1!R1C18279",
            "Sheet1!RC",
            "Sheet1!é1",
            "Sheet1!A1!B2",
            "Sheet1!-1:2",
        ];
        for text in cases {
            assert_eq!(parse(text), Err(RangeError(format!("Unable to parse range: {text}"))), "{text:?}");
        }
    }

    #[test]
    fn resolves_qualified_ranges_by_title() {
        let sheets = default_sheets();
        let resolve_text = |text: &str| resolve(&parse(text)?, &sheets, text);
        assert_eq!(resolve_text("Sheet1!A1:B2"), Ok((0, closed(0, 0, 1, 1))));
        assert_eq!(resolve_text("'My Sheet'!A:A"), Ok((1, area(None, Some(0), None, Some(0)))));
        assert_eq!(resolve_text("My Sheet!A1"), Ok((1, closed(0, 0, 0, 0))));
        assert_eq!(resolve_text("'Bob''s'!A1"), Ok((2, closed(0, 0, 0, 0))));
        assert_eq!(resolve_text("'My Sheet'"), Ok((1, Area::WHOLE)));
        assert_eq!(resolve_text("sheet1!A1"), Ok((0, closed(0, 0, 0, 0))), "titles match ignoring case");
        assert_eq!(resolve_text("'A1'!B2"), Ok((3, closed(1, 1, 1, 1))));
        assert_eq!(resolve_text("Nope!A1"), Err(RangeError("Unable to parse range: Nope!A1".into())));
        assert_eq!(resolve_text("'Nope'"), Err(RangeError("Unable to parse range: 'Nope'".into())));
    }

    #[test]
    fn resolves_unqualified_text_as_title_or_first_sheet_area() {
        let sheets = default_sheets();
        let resolve_text = |text: &str| resolve(&parse(text)?, &sheets, text);
        assert_eq!(resolve_text("Sheet1"), Ok((0, Area::WHOLE)));
        assert_eq!(resolve_text("My Sheet"), Ok((1, Area::WHOLE)));
        assert_eq!(resolve_text("my sheet"), Ok((1, Area::WHOLE)));
        assert_eq!(resolve_text("B2:C3"), Ok((0, closed(1, 1, 2, 2))));
        // A title equal to the text wins over reading it as a cell.
        assert_eq!(resolve_text("A1"), Ok((3, Area::WHOLE)));
        assert_eq!(resolve_text("a1"), Ok((0, closed(0, 0, 0, 0))));
        assert_eq!(resolve_text("Sheet 1"), Err(RangeError("Unable to parse range: Sheet 1".into())));
        assert_eq!(resolve(&parse("A1").unwrap(), &[], "A1"), Err(RangeError("Unable to parse range: A1".into())));
    }

    #[test]
    fn resolution_errors_quote_the_original_text() {
        let sheets = default_sheets();
        let parsed = parse("Other!A1").unwrap();
        assert_eq!(
            resolve(&parsed, &sheets, "Other%21A1"),
            Err(RangeError("Unable to parse range: Other%21A1".into()))
        );
    }

    #[test]
    fn clips_open_ends_to_the_grid() {
        let sheet = grid("Sheet1", 1000, 26);
        let rect = |row0, col0, row1, col1| Rect { row0, col0, row1, col1 };
        assert_eq!(area(None, Some(0), None, Some(0)).clip(&sheet), rect(0, 0, 999, 0));
        assert_eq!(Area::WHOLE.clip(&sheet), rect(0, 0, 999, 25));
        assert_eq!(area(Some(4), Some(2), None, Some(3)).clip(&sheet), rect(4, 2, 999, 3));
        assert_eq!(area(Some(1), None, Some(2), None).clip(&sheet), rect(1, 0, 2, 25));
        assert_eq!(closed(0, 0, 1999, 1).clip(&sheet), rect(0, 0, 1999, 1), "closed ends are kept");
        assert_eq!(area(Some(1999), Some(0), None, Some(0)).clip(&sheet), rect(1999, 0, 1999, 0), "never inverted");
        assert_eq!(Area::WHOLE.clip_to(0, 0), rect(0, 0, 0, 0));
    }

    #[test]
    fn detects_areas_beyond_the_grid() {
        let sheet = grid("Sheet1", 1000, 26);
        assert!(!closed(0, 0, 999, 25).exceeds(&sheet));
        assert!(closed(0, 0, 1000, 0).exceeds(&sheet));
        assert!(closed(0, 0, 0, 26).exceeds(&sheet));
        assert!(area(Some(1000), Some(0), None, Some(0)).exceeds(&sheet));
        assert!(!area(None, Some(0), None, Some(25)).exceeds(&sheet));
        assert!(area(None, Some(0), None, Some(26)).exceeds(&sheet));
        assert!(!Area::WHOLE.exceeds(&sheet));
    }

    #[test]
    fn exceeds_message_quotes_the_sheet_like_google() {
        let sheet = grid("Sheet1", 1000, 26);
        assert_eq!(
            exceeds_message(&sheet, &closed(0, 0, 1999, 1)),
            "Range ('Sheet1'!A1:B2000) exceeds grid limits. Max rows: 1000, max columns: 26"
        );
        assert_eq!(
            exceeds_message(&grid("Bob's", 10, 2), &closed(19, 0, 19, 0)),
            "Range ('Bob''s'!A20) exceeds grid limits. Max rows: 10, max columns: 2"
        );
        assert_eq!(
            exceeds_message(&sheet, &area(None, Some(0), None, Some(27))),
            "Range ('Sheet1'!A:AB) exceeds grid limits. Max rows: 1000, max columns: 26"
        );
        assert_eq!(
            exceeds_message(&sheet, &Area::WHOLE),
            "Range ('Sheet1') exceeds grid limits. Max rows: 1000, max columns: 26"
        );
    }

    #[test]
    fn formats_areas_as_written() {
        assert_eq!(format_area(&closed(0, 0, 1, 1)), "A1:B2");
        assert_eq!(format_area(&closed(4, 0, 4, 0)), "A5");
        assert_eq!(format_area(&area(None, Some(0), None, Some(2))), "A:C");
        assert_eq!(format_area(&area(Some(1), None, Some(3), None)), "2:4");
        assert_eq!(format_area(&area(Some(4), Some(0), None, Some(1))), "A5:B");
        assert_eq!(format_area(&area(Some(4), Some(0), None, Some(0))), "A5:A");
        assert_eq!(format_area(&Area::WHOLE), "");
    }

    #[test]
    fn formats_ranges_with_quoting_and_single_cells() {
        let rect = Rect { row0: 0, col0: 0, row1: 1, col1: 1 };
        let cases = [
            ("Sheet1", "Sheet1!A1:B2"),
            ("Data_2024", "Data_2024!A1:B2"),
            ("Sheet", "Sheet!A1:B2"),
            ("ABCD1", "ABCD1!A1:B2"),
            ("My Sheet", "'My Sheet'!A1:B2"),
            ("Bob's", "'Bob''s'!A1:B2"),
            ("A1", "'A1'!A1:B2"),
            ("ab12", "'ab12'!A1:B2"),
            ("ZZZ9", "'ZZZ9'!A1:B2"),
            ("R1C1", "'R1C1'!A1:B2"),
            ("rc", "'rc'!A1:B2"),
            ("R", "'R'!A1:B2"),
            ("C12", "'C12'!A1:B2"),
            ("1st", "'1st'!A1:B2"),
            ("2024", "'2024'!A1:B2"),
            ("é", "'é'!A1:B2"),
            ("a-b", "'a-b'!A1:B2"),
            ("", "''!A1:B2"),
        ];
        for (title, expected) in cases {
            assert_eq!(format_range(title, rect), expected, "{title:?}");
        }
        assert_eq!(format_range("Sheet1", Rect::cell(4, 0)), "Sheet1!A5");
        assert_eq!(format_range("My Sheet", Rect::cell(0, 27)), "'My Sheet'!AB1");
        assert_eq!(format_range("Sheet1", Rect { row0: 0, col0: 0, row1: 999, col1: 0 }), "Sheet1!A1:A1000");
        assert_eq!(format_range("Sheet1", Rect { row0: 0, col0: 0, row1: 999, col1: 25 }), "Sheet1!A1:Z1000");
    }

    #[test]
    fn formatted_ranges_parse_back_to_the_same_place() {
        let titles = ["Sheet1", "My Sheet", "Bob's", "A1", "R1C1", "1st", "é😀", "'", "x!y", "ZZZ"];
        let sheets: Vec<SheetGrid> = titles.iter().map(|t| grid(t, 10_000_000, 18_278)).collect();
        let rects = [Rect::cell(0, 0), Rect { row0: 3, col0: 1, row1: 9, col1: 30 }, Rect::cell(9_999_999, 18_277)];
        for (index, title) in titles.iter().enumerate() {
            for rect in rects {
                let text = format_range(title, rect);
                let (found, area) = resolve(&parse(&text).unwrap(), &sheets, &text).unwrap();
                assert_eq!((found, area.clip(&sheets[found])), (index, rect), "{text}");
            }
        }
    }

    #[test]
    fn column_letters_round_trip() {
        let known = [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB"), (51, "AZ"), (52, "BA"), (701, "ZZ")];
        for (col, letters) in known {
            assert_eq!(column_letters(col), letters);
            assert_eq!(column_index(letters), Some(col));
        }
        assert_eq!(column_letters(702), "AAA");
        assert_eq!(column_letters(MAX_COLUMNS - 1), "ZZZ");
        for col in (0..MAX_COLUMNS).chain([u32::MAX - 1, u32::MAX]) {
            assert_eq!(column_index(&column_letters(col)), Some(col), "{col}");
        }
        assert_eq!(column_index("zz"), Some(701));
        assert_eq!(column_index(""), None);
        assert_eq!(column_index("A1"), None);
        assert_eq!(column_index("ZZZZZZZZ"), None, "overflows u32");
        assert_eq!(cell_name(4, 0), "A5");
    }

    #[test]
    fn never_panics_on_random_input() {
        const ALPHABET: &[char] =
            &['A', 'b', 'Z', 'z', 'R', 'c', '0', '1', '9', '!', '\'', ':', ' ', '$', '_', '-', 'é', '😀', '\u{0}'];
        let sheets = vec![grid("Sheet1", 1000, 26), grid("A1", 5, 5), grid("é 😀", 1, 1), grid("'", 3, 3)];
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let length = rng.random_range(0..14);
            let text: String = (0..length).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect();
            let Ok(a1) = parse(&text) else { continue };
            parsed += 1;
            let Ok((index, area)) = resolve(&a1, &sheets, &text) else { continue };
            let sheet = &sheets[index];
            let rect = area.clip(sheet);
            assert!(!rect.is_inverted(), "{text:?}");
            let _ = (area.exceeds(sheet), exceeds_message(sheet, &area), format_range(&sheet.title, rect));
        }
        assert!(parsed > 1000, "the alphabet should produce many parsable ranges, got {parsed}");
    }
}
