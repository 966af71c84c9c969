//! The formula engine of the Sheets emulator: IronCalc (`ironcalc_base`), an open-source
//! spreadsheet engine, evaluates formulas, reads typed numbers (`$1,000`, `2024-03-04`) and
//! shows numbers in a pattern.
//!
//! Formulas are Excel's dialect, which Google Sheets shares for everything the emulator
//! documents: arithmetic and comparisons, `&`, cell and range references across sheets
//! (`A1`, `B2:C9`, `A:A`, `'My Sheet'!A1`), `SUM`, `AVERAGE`, `MIN`, `MAX`, `COUNT`, `COUNTA`,
//! `IF`, `CONCATENATE`, `ROUND`, `TODAY`, `NOW` (in the spreadsheet's time zone) and the
//! hundreds of other functions IronCalc has. Errors are Google's values (`#REF!`,
//! `#DIV/0!`, `#NAME?`, `#VALUE!`, `#N/A`, `#NUM!`, `#ERROR!` for a formula that does not
//! parse); a circular reference is `#REF!` as in Google.
//!
//! An [`Evaluation`] is built per request from every sheet's cells, so formulas see the
//! whole spreadsheet; it is only built when the spreadsheet holds a formula. IronCalc's grid
//! is Excel's (1,048,576 rows × 16,384 columns): cells beyond it are not evaluated (a formula
//! there shows its text). IronCalc's sheet names are stricter than Google's titles (at most 31
//! characters, none of `/\?*[]:`): a sheet whose title it refuses cannot be referenced by
//! formulas (`#REF!`), though its own formulas are evaluated.

use std::cell::RefCell;
use std::collections::HashMap;

use ironcalc_base::Model;
use ironcalc_base::cell::CellValue;
use ironcalc_base::types::CellType;

use super::cell::{Cell, Computed, Effective, Entered, SheetError};
use super::format::{NumberFormat, NumberFormatType};

const LOCALE: &str = "en";
const LANGUAGE: &str = "en";
/// IronCalc's (Excel's) last row and column, 1-based.
const ENGINE_ROWS: u32 = 1_048_576;
const ENGINE_COLUMNS: u32 = 16_384;

/// A new workbook in `time_zone` (an IANA name; UTC when the name is unknown).
fn new_model(time_zone: &str) -> Option<Model<'static>> {
    let zone = time_zone.parse::<chrono_tz::Tz>().map_or("UTC", |zone| zone.name());
    Model::new_empty("stage", LOCALE, zone, LANGUAGE)
        .or_else(|_| Model::new_empty("stage", LOCALE, "UTC", LANGUAGE))
        .ok()
}

thread_local! {
    /// A one-cell scratch workbook that reads typed numbers, kept per thread: building a
    /// model costs more than parsing with it.
    static SCRATCH: RefCell<Option<Model<'static>>> = const { RefCell::new(None) };
}

/// A number typed with a format — grouped (`1,234`), percent (`12%`), currency (`$1,000.50`,
/// `€5`), a date (`2024-03-04`, `3/4/2024`), a time (`10:30`, `9:05:10 PM`) or a date and
/// time (`2024-03-04 10:30`) — and the number format it implies. Plain numbers are the
/// caller's business.
pub fn parse_formatted(text: &str) -> Option<(f64, NumberFormat)> {
    if let Some((fraction, pattern)) = parse_time(text) {
        return Some((fraction, NumberFormat::new(NumberFormatType::Time, &pattern)));
    }
    if let Some((date, time)) = text.rsplit_once(' ')
        && let Some((fraction, time_pattern)) = parse_time(time.trim())
        && let Some((day, date_format)) = parse_with_engine(date.trim())
        && date_format.kind == NumberFormatType::Date
    {
        let pattern = format!("{} {time_pattern}", date_format.pattern.unwrap_or_default());
        return Some((day + fraction, NumberFormat::new(NumberFormatType::DateTime, &pattern)));
    }
    parse_with_engine(text)
}

fn parse_with_engine(text: &str) -> Option<(f64, NumberFormat)> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.is_none() {
            *scratch = new_model("UTC");
        }
        let model = scratch.as_mut()?;
        // A fresh style each time: IronCalc keeps a date format on a cell that had one.
        model.set_cell_style(0, 1, 1, &Default::default()).ok()?;
        model.set_user_input(0, 1, 1, text.to_owned()).ok()?;
        let value = model.get_cell_value_by_index(0, 1, 1).ok();
        let pattern = model.get_style_for_cell(0, 1, 1).ok()?.num_fmt;
        match value {
            Some(CellValue::Number(n)) if n.is_finite() => Some((n, NumberFormat::from_pattern(&pattern)?)),
            _ => None,
        }
    })
}

/// `h:mm`, `h:mm:ss`, either with ` AM`/` PM`: the fraction of a day and the pattern that
/// shows it as typed.
fn parse_time(text: &str) -> Option<(f64, String)> {
    let upper = text.to_ascii_uppercase();
    let (clock, meridiem) = match upper.strip_suffix("AM").or_else(|| upper.strip_suffix("PM")) {
        Some(clock) => (clock.trim_end(), Some(upper.ends_with("PM"))),
        None => (upper.as_str(), None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |part: &str, max: u32| -> Option<u32> {
        let ok = (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| part.parse().ok()).flatten().filter(|n| *n <= max)
    };
    let (hours, minutes, seconds) = match parts.as_slice() {
        [h, m] if m.len() == 2 => (number(h, 23)?, number(m, 59)?, None),
        [h, m, s] if m.len() == 2 && s.len() == 2 => (number(h, 23)?, number(m, 59)?, Some(number(s, 59)?)),
        _ => return None,
    };
    let hours = match meridiem {
        Some(_) if !(1..=12).contains(&hours) => return None,
        Some(pm) => hours % 12 + if pm { 12 } else { 0 },
        None => hours,
    };
    let mut pattern = String::from("h:mm");
    if seconds.is_some() {
        pattern.push_str(":ss");
    }
    if meridiem.is_some() {
        pattern.push_str(" AM/PM");
    }
    let total = hours * 3600 + minutes * 60 + seconds.unwrap_or(0);
    Some((f64::from(total) / 86_400.0, pattern))
}

/// `n` shown with `pattern`; `None` when the pattern is not one the engine can show.
pub fn format_number(n: f64, pattern: &str) -> Option<String> {
    let locale = ironcalc_base::locale::get_locale(LOCALE).ok()?;
    let formatted = ironcalc_base::formatter::format::format_number(n, pattern, locale);
    formatted.error.is_none().then_some(formatted.text)
}

/// One sheet as an evaluation sees it: its title and cells.
pub struct SheetCells<'a> {
    pub title: &'a str,
    pub cells: Box<dyn Iterator<Item = ((u32, u32), &'a Cell)> + 'a>,
}

/// A spreadsheet with its formulas evaluated.
pub struct Evaluation {
    model: Model<'static>,
    /// The engine's sheet of each of the spreadsheet's sheets, by index.
    sheets: HashMap<usize, u32>,
}

impl Evaluation {
    /// Evaluates `sheets` (in the spreadsheet's order); `None` when the engine cannot start.
    pub fn new(sheets: Vec<SheetCells<'_>>, time_zone: &str) -> Option<Evaluation> {
        let mut model = new_model(time_zone)?;
        let mut placed = HashMap::new();
        let mut formulas = Vec::new();
        for (index, sheet) in sheets.into_iter().enumerate() {
            // A title the engine refuses gets a placeholder no formula can name, so that a
            // formula never reads another sheet's cells in its place.
            let placeholder = format!("~stage sheet {index}~");
            let engine_sheet = if index == 0 {
                // The engine starts with one sheet, `Sheet1`.
                let _ = model.rename_sheet("Sheet1", &placeholder);
                let _ = model.rename_sheet(&placeholder, sheet.title);
                0
            } else {
                let count = model.workbook.worksheets.len() as u32;
                if model.add_sheet(sheet.title).is_err() && model.add_sheet(&placeholder).is_err() {
                    continue;
                }
                count
            };
            placed.insert(index, engine_sheet);
            for ((row, col), cell) in sheet.cells {
                if row >= ENGINE_ROWS || col >= ENGINE_COLUMNS {
                    continue;
                }
                let (row, col) = (row as i32 + 1, col as i32 + 1);
                let pattern = cell.number_format().and_then(NumberFormat::effective_pattern).map(str::to_owned);
                let done = match &cell.entered {
                    None => continue,
                    Some(Entered::Number(n)) => model.update_cell_with_number(engine_sheet, row, col, *n),
                    Some(Entered::Text(text)) => model.update_cell_with_text(engine_sheet, row, col, text),
                    Some(Entered::Bool(b)) => model.update_cell_with_bool(engine_sheet, row, col, *b),
                    Some(Entered::Formula(text)) => {
                        formulas.push((engine_sheet, row, col, text.clone(), pattern));
                        continue;
                    }
                };
                if done.is_ok()
                    && let Some(pattern) = pattern
                {
                    set_pattern(&mut model, engine_sheet, row, col, &pattern);
                }
            }
        }
        // Formulas last, so that the engine infers their format from the cells they read
        // (a date plus one is a date); a format of their own wins.
        for (sheet, row, col, text, pattern) in formulas {
            if model.set_user_input(sheet, row, col, text).is_ok()
                && let Some(pattern) = pattern
            {
                set_pattern(&mut model, sheet, row, col, &pattern);
            }
        }
        model.evaluate();
        Some(Evaluation { model, sheets: placed })
    }

    /// What the cell at (`row`, `col`) of the spreadsheet's sheet `index` shows; `None` when
    /// the engine does not hold it.
    pub fn effective(&self, index: usize, row: u32, col: u32) -> Option<Effective> {
        let sheet = *self.sheets.get(&index)?;
        if row >= ENGINE_ROWS || col >= ENGINE_COLUMNS {
            return None;
        }
        let (row, col) = (row as i32 + 1, col as i32 + 1);
        let kind = self.model.get_cell_type(sheet, row, col).ok()?;
        let value = match (kind, self.model.get_cell_value_by_index(sheet, row, col).ok()?) {
            (CellType::ErrorValue, CellValue::String(text)) => Computed::Error(SheetError::from_text(&text)),
            (CellType::ErrorValue, _) => Computed::Error(SheetError::Error),
            (_, CellValue::Number(n)) if n.is_finite() => Computed::Number(n),
            (_, CellValue::Number(_)) => Computed::Error(SheetError::Num),
            (_, CellValue::String(text)) => Computed::Text(text),
            (_, CellValue::Boolean(b)) => Computed::Bool(b),
            (_, CellValue::None) => Computed::Number(0.0),
        };
        let format =
            self.model.get_style_for_cell(sheet, row, col).ok().and_then(|s| NumberFormat::from_pattern(&s.num_fmt));
        Some(Effective { value, format })
    }
}

fn set_pattern(model: &mut Model<'static>, sheet: u32, row: i32, col: i32, pattern: &str) {
    if let Ok(mut style) = model.get_style_for_cell(sheet, row, col) {
        style.num_fmt = pattern.to_owned();
        let _ = model.set_cell_style(sheet, row, col, &style);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: f64) -> Cell {
        Cell::of(Entered::Number(n))
    }

    fn formula(text: &str) -> Cell {
        Cell::of(Entered::Formula(text.to_owned()))
    }

    type Sheet<'a> = (&'a str, Vec<((u32, u32), Cell)>);

    fn evaluate(sheets: &[Sheet<'_>]) -> Evaluation {
        let sheets = sheets
            .iter()
            .map(|(title, cells)| SheetCells { title, cells: Box::new(cells.iter().map(|(at, cell)| (*at, cell))) })
            .collect();
        Evaluation::new(sheets, "Etc/GMT").unwrap()
    }

    fn value(evaluation: &Evaluation, sheet: usize, row: u32, col: u32) -> Computed {
        evaluation.effective(sheet, row, col).unwrap().value
    }

    #[test]
    fn evaluates_the_documented_subset() {
        let cells = vec![
            ((0, 0), number(1.0)),
            ((1, 0), number(2.0)),
            ((2, 0), number(4.5)),
            ((3, 0), Cell::of(Entered::Text("x".into()))),
            ((0, 1), formula("=A1+A2*2")),
            ((1, 1), formula("=SUM(A1:A3)")),
            ((2, 1), formula("=AVERAGE(A1:A3)")),
            ((3, 1), formula("=MIN(A:A)")),
            ((4, 1), formula("=MAX(A1:A3)")),
            ((5, 1), formula("=COUNT(A1:A4)")),
            ((6, 1), formula("=COUNTA(A1:A4)")),
            ((7, 1), formula("=IF(A1>0,\"pos\",\"neg\")")),
            ((8, 1), formula("=CONCATENATE(A4,\"-\",A1)")),
            ((9, 1), formula("=A4&\"y\"")),
            ((10, 1), formula("=ROUND(2.345,2)")),
            ((11, 1), formula("='Other sheet'!A1*2")),
        ];
        let other = vec![((0, 0), number(21.0))];
        let evaluation = evaluate(&[("Sheet1", cells), ("Other sheet", other)]);
        let expected = [
            Computed::Number(5.0),
            Computed::Number(7.5),
            Computed::Number(2.5),
            Computed::Number(1.0),
            Computed::Number(4.5),
            Computed::Number(3.0),
            Computed::Number(4.0),
            Computed::Text("pos".into()),
            Computed::Text("x-1".into()),
            Computed::Text("xy".into()),
            Computed::Number(2.35),
            Computed::Number(42.0),
        ];
        for (row, expected) in expected.into_iter().enumerate() {
            assert_eq!(value(&evaluation, 0, row as u32, 1), expected, "B{}", row + 1);
        }
    }

    #[test]
    fn sheets_the_engine_cannot_name_are_never_read_in_place_of_another() {
        let sheets = [
            ("a/b", vec![((0, 0), number(1.0))]),
            ("Sheet1", vec![((0, 0), number(2.0))]),
            ("Sheet3", vec![((0, 0), formula("=Sheet1!A1+Sheet3!A2")), ((1, 0), number(10.0))]),
            ("sheet2", vec![((0, 0), formula("=A2")), ((1, 0), number(5.0))]),
        ];
        let evaluation = evaluate(&sheets);
        assert_eq!(value(&evaluation, 2, 0, 0), Computed::Number(12.0));
        assert_eq!(value(&evaluation, 3, 0, 0), Computed::Number(5.0));
    }

    #[test]
    fn gives_googles_error_values() {
        let cells = vec![
            ((0, 0), formula("=1/0")),
            ((1, 0), formula("=NOSUCHFUNCTION(1)")),
            ((2, 0), formula("=Nope!A1")),
            ((3, 0), formula("=1+\"a\"")),
            ((4, 0), formula("=A5")),
            ((5, 0), formula("=1+")),
            ((6, 0), formula("=NA()")),
        ];
        let evaluation = evaluate(&[("Sheet1", cells)]);
        let expected = [
            SheetError::DivideByZero,
            SheetError::Name,
            SheetError::Ref,
            SheetError::Value,
            SheetError::Ref,
            SheetError::Error,
            SheetError::NotAvailable,
        ];
        for (row, error) in expected.into_iter().enumerate() {
            assert_eq!(value(&evaluation, 0, row as u32, 0), Computed::Error(error), "A{}", row + 1);
        }
    }

    #[test]
    fn today_is_a_date_in_the_spreadsheets_time_zone() {
        let evaluation = evaluate(&[("Sheet1", vec![((0, 0), formula("=TODAY()")), ((1, 0), formula("=NOW()"))])]);
        let today = evaluation.effective(0, 0, 0).unwrap();
        let days_since_1899 = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            / 86_400) as f64
            + 25_569.0;
        assert_eq!(today.value, Computed::Number(days_since_1899));
        assert_eq!(today.format.map(|f| f.kind), Some(NumberFormatType::Date));
        let Computed::Number(now) = value(&evaluation, 0, 1, 0) else { panic!("NOW() is a number") };
        assert!(now >= days_since_1899 && now < days_since_1899 + 1.0);
    }

    #[test]
    fn formulas_take_the_format_of_what_they_read_unless_they_have_one() {
        let date = NumberFormat::new(NumberFormatType::Date, "yyyy-mm-dd");
        let cells = vec![
            (
                (0, 0),
                Cell {
                    entered: Some(Entered::Number(45355.0)),
                    format: Some(super::super::format::CellFormat::number(date.clone())),
                },
            ),
            ((1, 0), formula("=A1+1")),
            (
                (2, 0),
                Cell {
                    entered: Some(Entered::Formula("=A1".into())),
                    format: Some(super::super::format::CellFormat::number(NumberFormat::new(
                        NumberFormatType::Number,
                        "0.0",
                    ))),
                },
            ),
        ];
        let evaluation = evaluate(&[("Sheet1", cells)]);
        assert_eq!(evaluation.effective(0, 1, 0).unwrap().format, Some(date));
        assert_eq!(evaluation.effective(0, 2, 0).unwrap().format.and_then(|f| f.pattern), Some("0.0".into()));
    }

    #[test]
    fn formats_numbers_with_googles_patterns() {
        let cases = [
            (45355.0, "yyyy-mm-dd", "2024-03-04"),
            (45355.0, "M/d/yyyy", "3/4/2024"),
            (0.4375, "h:mm:ss AM/PM", "10:30:00 AM"),
            (1000.5, "\"$\"#,##0.00", "$1,000.50"),
            (0.125, "0.00%", "12.50%"),
            (1000.0, "0.00E+00", "1.00E+03"),
        ];
        for (n, pattern, shown) in cases {
            assert_eq!(format_number(n, pattern).as_deref(), Some(shown), "{pattern}");
        }
    }

    #[test]
    fn reads_times_by_hand() {
        assert_eq!(parse_time("10:30"), Some((0.4375, "h:mm".to_owned())));
        assert_eq!(parse_time("12:00 AM"), Some((0.0, "h:mm AM/PM".to_owned())));
        assert_eq!(parse_time("12:00 pm"), Some((0.5, "h:mm AM/PM".to_owned())));
        for bad in ["24:00", "1:5", "10:60", "13:00 PM", "0:00 AM", "1:00:0", "a:bc", "10", "10:30:00:00"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
