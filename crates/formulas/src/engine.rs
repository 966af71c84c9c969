//! Formula evaluation with IronCalc (`ironcalc_base`), an open-source spreadsheet engine.
//!
//! Formulas are Excel's dialect, which Google Sheets shares for everything the emulator
//! documents. IronCalc's grid is Excel's (1,048,576 rows × 16,384 columns): cells beyond it
//! are not evaluated. IronCalc's sheet names are stricter than Google's titles (at most 31
//! characters, none of `/\?*[]:`): a sheet whose title it refuses cannot be referenced by
//! formulas (`#REF!`), though its own formulas are evaluated.

use ironcalc_base::Model;
use ironcalc_base::cell::CellValue;
use ironcalc_base::types::CellType;

use super::{Answer, Evaluated, Input, Job, Shown};

const LOCALE: &str = "en";
const LANGUAGE: &str = "en";
/// IronCalc's (Excel's) last row and column, 1-based.
const ENGINE_ROWS: u32 = 1_048_576;
const ENGINE_COLUMNS: u32 = 16_384;

/// What every formula of `job` shows.
pub fn evaluate(job: &Job) -> Answer {
    let zone = job.time_zone.parse::<chrono_tz::Tz>().map_or("UTC", |zone| zone.name());
    let Ok(mut model) = Model::new_empty("stage", LOCALE, zone, LANGUAGE) else { return Answer::default() };
    let mut formulas = Vec::new();
    for (index, sheet) in job.sheets.iter().enumerate() {
        let index = index as u32;
        // A title the engine refuses gets a placeholder no formula can name, so that a
        // formula never reads another sheet's cells in its place.
        let placeholder = format!("~stage sheet {index}~");
        let engine_sheet = if index == 0 {
            // The engine starts with one sheet, `Sheet1`.
            let _ = model.rename_sheet("Sheet1", &placeholder);
            let _ = model.rename_sheet(&placeholder, &sheet.title);
            0
        } else {
            let count = model.workbook.worksheets.len() as u32;
            if model.add_sheet(&sheet.title).is_err() && model.add_sheet(&placeholder).is_err() {
                continue;
            }
            count
        };
        for cell in &sheet.cells {
            if cell.row >= ENGINE_ROWS || cell.col >= ENGINE_COLUMNS {
                continue;
            }
            let (row, col) = (cell.row as i32 + 1, cell.col as i32 + 1);
            let done = match &cell.input {
                Input::Number(n) => model.update_cell_with_number(engine_sheet, row, col, *n),
                Input::Text(text) => model.update_cell_with_text(engine_sheet, row, col, text),
                Input::Bool(b) => model.update_cell_with_bool(engine_sheet, row, col, *b),
                Input::Formula(_) => {
                    formulas.push((index, engine_sheet, cell));
                    continue;
                }
            };
            if done.is_ok()
                && let Some(pattern) = &cell.pattern
            {
                set_pattern(&mut model, engine_sheet, row, col, pattern);
            }
        }
    }
    // Formulas last, so that the engine infers their format from the cells they read (a
    // date plus one is a date); a format of their own wins.
    for (_, sheet, cell) in &formulas {
        let Input::Formula(text) = &cell.input else { continue };
        let (row, col) = (cell.row as i32 + 1, cell.col as i32 + 1);
        if model.set_user_input(*sheet, row, col, text.clone()).is_ok()
            && let Some(pattern) = &cell.pattern
        {
            set_pattern(&mut model, *sheet, row, col, pattern);
        }
    }
    model.evaluate();
    let cells = formulas
        .iter()
        .filter_map(|(index, sheet, cell)| {
            let (row, col) = (cell.row as i32 + 1, cell.col as i32 + 1);
            let kind = model.get_cell_type(*sheet, row, col).ok()?;
            let value = match (kind, model.get_cell_value_by_index(*sheet, row, col).ok()?) {
                (CellType::ErrorValue, CellValue::String(text)) => Shown::Error(text),
                (CellType::ErrorValue, _) => Shown::Error("#ERROR!".into()),
                (_, CellValue::Number(n)) if n.is_finite() => Shown::Number(n),
                (_, CellValue::Number(_)) => Shown::Error("#NUM!".into()),
                (_, CellValue::String(text)) => Shown::Text(text),
                (_, CellValue::Boolean(b)) => Shown::Bool(b),
                (_, CellValue::None) => Shown::Number(0.0),
            };
            let pattern = model.get_style_for_cell(*sheet, row, col).ok().map(|style| style.num_fmt);
            Some(Evaluated { sheet: *index, row: cell.row, col: cell.col, value, pattern })
        })
        .collect();
    Answer { cells }
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
    use crate::{JobCell, JobSheet};

    fn cell(row: u32, col: u32, input: Input) -> JobCell {
        JobCell { row, col, input, pattern: None }
    }

    fn number(row: u32, col: u32, n: f64) -> JobCell {
        cell(row, col, Input::Number(n))
    }

    fn formula(row: u32, col: u32, text: &str) -> JobCell {
        cell(row, col, Input::Formula(text.to_owned()))
    }

    fn evaluate_sheets(sheets: Vec<(&str, Vec<JobCell>)>) -> Answer {
        let sheets = sheets.into_iter().map(|(title, cells)| JobSheet { title: title.to_owned(), cells }).collect();
        evaluate(&Job { time_zone: "Etc/GMT".into(), sheets })
    }

    fn shown(answer: &Answer, sheet: u32, row: u32, col: u32) -> &Evaluated {
        answer.cells.iter().find(|c| (c.sheet, c.row, c.col) == (sheet, row, col)).expect("a formula cell")
    }

    #[test]
    fn evaluates_the_documented_subset() {
        let cells = vec![
            number(0, 0, 1.0),
            number(1, 0, 2.0),
            number(2, 0, 4.5),
            cell(3, 0, Input::Text("x".into())),
            formula(0, 1, "=A1+A2*2"),
            formula(1, 1, "=SUM(A1:A3)"),
            formula(2, 1, "=AVERAGE(A1:A3)"),
            formula(3, 1, "=MIN(A:A)"),
            formula(4, 1, "=MAX(A1:A3)"),
            formula(5, 1, "=COUNT(A1:A4)"),
            formula(6, 1, "=COUNTA(A1:A4)"),
            formula(7, 1, "=IF(A1>0,\"pos\",\"neg\")"),
            formula(8, 1, "=CONCATENATE(A4,\"-\",A1)"),
            formula(9, 1, "=A4&\"y\""),
            formula(10, 1, "=ROUND(2.345,2)"),
            formula(11, 1, "='Other sheet'!A1*2"),
        ];
        let answer = evaluate_sheets(vec![("Sheet1", cells), ("Other sheet", vec![number(0, 0, 21.0)])]);
        let expected = [
            Shown::Number(5.0),
            Shown::Number(7.5),
            Shown::Number(2.5),
            Shown::Number(1.0),
            Shown::Number(4.5),
            Shown::Number(3.0),
            Shown::Number(4.0),
            Shown::Text("pos".into()),
            Shown::Text("x-1".into()),
            Shown::Text("xy".into()),
            Shown::Number(2.35),
            Shown::Number(42.0),
        ];
        for (row, expected) in expected.into_iter().enumerate() {
            assert_eq!(shown(&answer, 0, row as u32, 1).value, expected, "B{}", row + 1);
        }
    }

    #[test]
    fn sheets_the_engine_cannot_name_are_never_read_in_place_of_another() {
        let answer = evaluate_sheets(vec![
            ("a/b", vec![number(0, 0, 1.0)]),
            ("Sheet1", vec![number(0, 0, 2.0)]),
            ("Sheet3", vec![formula(0, 0, "=Sheet1!A1+Sheet3!A2"), number(1, 0, 10.0)]),
            ("sheet2", vec![formula(0, 0, "=A2"), number(1, 0, 5.0)]),
        ]);
        assert_eq!(shown(&answer, 2, 0, 0).value, Shown::Number(12.0));
        assert_eq!(shown(&answer, 3, 0, 0).value, Shown::Number(5.0));
    }

    #[test]
    fn gives_the_engines_error_values() {
        let cells = vec![
            formula(0, 0, "=1/0"),
            formula(1, 0, "=NOSUCHFUNCTION(1)"),
            formula(2, 0, "=Nope!A1"),
            formula(3, 0, "=1+\"a\""),
            formula(4, 0, "=A5"),
            formula(5, 0, "=1+"),
            formula(6, 0, "=NA()"),
        ];
        let answer = evaluate_sheets(vec![("Sheet1", cells)]);
        let expected = ["#DIV/0!", "#NAME?", "#REF!", "#VALUE!", "#CIRC!", "#ERROR!", "#N/A"];
        for (row, error) in expected.into_iter().enumerate() {
            assert_eq!(shown(&answer, 0, row as u32, 0).value, Shown::Error(error.into()), "A{}", row + 1);
        }
    }

    #[test]
    fn today_is_a_date_in_the_spreadsheets_time_zone() {
        let answer = evaluate_sheets(vec![("Sheet1", vec![formula(0, 0, "=TODAY()"), formula(1, 0, "=NOW()")])]);
        let days_since_1899 = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            / 86_400) as f64
            + 25_569.0;
        let today = shown(&answer, 0, 0, 0);
        assert_eq!(today.value, Shown::Number(days_since_1899));
        assert!(today.pattern.as_deref().is_some_and(|p| p.contains('d') && p.contains('y')), "{today:?}");
        let Shown::Number(now) = shown(&answer, 0, 1, 0).value else { panic!("NOW() is a number") };
        assert!(now >= days_since_1899 && now < days_since_1899 + 1.0);
    }

    #[test]
    fn formulas_take_the_format_of_what_they_read_unless_they_have_one() {
        let date = JobCell { pattern: Some("yyyy-mm-dd".into()), ..number(0, 0, 45355.0) };
        let own = JobCell { pattern: Some("0.0".into()), ..formula(2, 0, "=A1") };
        let answer = evaluate_sheets(vec![("Sheet1", vec![date, formula(1, 0, "=A1+1"), own])]);
        assert_eq!(shown(&answer, 0, 1, 0).pattern.as_deref(), Some("yyyy-mm-dd"));
        assert_eq!(shown(&answer, 0, 2, 0).pattern.as_deref(), Some("0.0"));
    }
}
