//! Helpers for steps that call Google APIs. A step sends no credentials: the host adds an
//! access token for the app (or serves the request from its emulator) after checking the
//! scopes the app's session granted.

use serde_json::Value;

use crate::StepError;
use crate::http::Response;

/// Percent-encodes `text` as one URL path segment (an A1 range such as `'My Sheet'!A:G`,
/// or an id), leaving only RFC 3986 unreserved characters as they are.
pub fn path_segment(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The JSON of a successful Google answer, or a step error classified by status and naming
/// Google's own message (`{"error":{"code","message","status"}}`).
pub fn google_json(response: &Response, api: &str) -> Result<Value, StepError> {
    if (200..300).contains(&response.status) {
        return response.json();
    }
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let error = &body["error"];
    let detail = match (error["status"].as_str(), error["message"].as_str()) {
        (Some(status), Some(message)) => format!("{api} {status}: {message}"),
        (None, Some(message)) => format!("{api}: {message}"),
        _ => format!("{api}: {}", response.text().chars().take(300).collect::<String>()),
    };
    Err(response.error_for_status(&detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_ranges_as_one_segment() {
        assert_eq!(path_segment("Events!A:G"), "Events%21A%3AG");
        assert_eq!(path_segment("'My Sheet'!A1"), "%27My%20Sheet%27%21A1");
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(path_segment("1BxiM-_.~"), "1BxiM-_.~");
    }

    #[test]
    fn classifies_google_errors() {
        let answer = |status: u16, body: &str| Response { status, headers: Vec::new(), body: body.as_bytes().to_vec() };
        let bad_range =
            r#"{"error":{"code":400,"message":"Unable to parse range: Nope!A1","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            google_json(&answer(400, bad_range), "Sheets"),
            Err(StepError::InvalidInput("HTTP 400: Sheets INVALID_ARGUMENT: Unable to parse range: Nope!A1".into()))
        );
        assert!(matches!(google_json(&answer(403, "{}"), "Sheets"), Err(StepError::Unauthorized(_))));
        assert!(
            matches!(google_json(&answer(503, "oops"), "Sheets"), Err(StepError::Transient(m)) if m.contains("oops"))
        );
        assert_eq!(google_json(&answer(200, r#"{"a":1}"#), "Sheets"), Ok(serde_json::json!({"a":1})));
    }
}
