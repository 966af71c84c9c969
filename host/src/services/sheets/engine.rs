//! What the Sheets emulator takes from IronCalc (`ironcalc_base`), an open-source spreadsheet
//! engine, in the host: reading typed numbers (`$1,000`, `12%`, `2024-03-04`) and showing
//! numbers in a pattern. Formulas are never evaluated here: they run in the formula sandbox
//! ([`super::formulas`], evaluated with the same engine by `stage-formulas`).
//!
//! The engine treats typed input that starts with `=`, `+` or `-` as a formula, and parsing
//! a formula recurses as deep as its parentheses nest; so typed text reaches the engine
//! without its sign (put back on the number), never starting with one, and only up to
//! [`MAX_TYPED_NUMBER_BYTES`] long.

use std::cell::RefCell;

use ironcalc_base::Model;
use ironcalc_base::cell::CellValue;

use super::format::{NumberFormat, NumberFormatType};

const LOCALE: &str = "en";
const LANGUAGE: &str = "en";
/// The longest text read as a typed number; longer text is text.
pub const MAX_TYPED_NUMBER_BYTES: usize = 64;

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
    if text.len() > MAX_TYPED_NUMBER_BYTES {
        return None;
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if unsigned.starts_with(['=', '+', '-']) {
        return None;
    }
    let (n, format) = parse_unsigned(unsigned)?;
    if !negative {
        return Some((n, format));
    }
    // A date or time has no negative.
    let signed = matches!(
        format.kind,
        NumberFormatType::Number
            | NumberFormatType::Currency
            | NumberFormatType::Percent
            | NumberFormatType::Scientific
    );
    signed.then_some((-n, format))
}

/// `text` read by the engine; it never starts with a sign or `=`, so the engine never
/// parses it as a formula.
fn parse_unsigned(text: &str) -> Option<(f64, NumberFormat)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reads_signed_typed_numbers() {
        let read = |text: &str| parse_formatted(text).map(|(n, format)| (n, format.kind));
        assert_eq!(read("-$5"), Some((-5.0, NumberFormatType::Currency)));
        assert_eq!(read("+1,000"), Some((1000.0, NumberFormatType::Number)));
        assert_eq!(read("-12%"), Some((-0.12, NumberFormatType::Percent)));
        assert_eq!(read("2024-03-04").map(|(_, kind)| kind), Some(NumberFormatType::Date));
        assert_eq!(read("-2024-03-04"), None, "a date has no negative");
    }

    #[test]
    fn typed_text_never_reaches_the_formula_parser() {
        // The engine would parse these as formulas: deep parentheses overflowed the host's
        // stack, and a function would run in the host.
        let nested = format!("-{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let short = format!("-{}1{}", "(".repeat(20), ")".repeat(20));
        for text in [nested.as_str(), short.as_str(), "-SUM(1,2)", "+REPT(\"x\",9)", "--5", "-+5", "-=1", "=1"] {
            assert_eq!(parse_formatted(text), None, "{text}");
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
