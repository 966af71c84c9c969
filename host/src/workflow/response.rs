//! The `response` step's answer must be sendable as HTTP: a final status and headers that
//! are valid HTTP. Literal headers are checked when the file is published; templated ones
//! once the step has answered, before its output becomes the run's answer. (Framing
//! headers are not refused: the host removes them when it sends the answer.)

use serde_json::Value;

use super::path;
use super::template::is_template;
use super::{Problem, StepDef};
use crate::envelope::app_headers::{self, InvalidHeader};
use stage_runtime::{ErrorClass, Failure};

/// Problems of a `response` step's literal `status` and `headers` (at `at`, the step's
/// `…steps[i].response`).
pub fn literal_problems(input: &Value, at: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(status) = input.get("status").filter(|status| status.is_number())
        && status.as_u64().and_then(|s| u16::try_from(s).ok()).and_then(app_headers::final_status).is_none()
    {
        problems.push(Problem::new(path::key(at, "status"), format!("{status} is not a final HTTP status (200-599)")));
    }
    let Some(headers) = input.get("headers").and_then(Value::as_object) else { return problems };
    for (name, value) in headers {
        let text = match value {
            Value::String(text) if is_template(text) => "",
            Value::String(text) => text.as_str(),
            Value::Number(_) | Value::Bool(_) => "",
            _ => {
                problems.push(Problem::new(path::key(&path::key(at, "headers"), name), "a header value must be text"));
                continue;
            }
        };
        if let Err(invalid) = app_headers::check(name, text) {
            problems.push(Problem::new(path::key(&path::key(at, "headers"), name), invalid.to_string()));
        }
    }
    problems
}

/// The step's output if it can be the run's answer; else the failure naming the step and
/// the header or status that cannot be sent.
pub fn check_output(step: &StepDef, output: Value) -> Result<Value, Failure> {
    let refuse = |why: String| {
        Failure::new(ErrorClass::InvalidInput, format!("the answer of step {} cannot be sent: {why}", step.label()))
    };
    if let Some(status) = output.get("status").filter(|status| !status.is_null())
        && status.as_u64().and_then(|s| u16::try_from(s).ok()).and_then(app_headers::final_status).is_none()
    {
        return Err(refuse(format!("{status} is not a final HTTP status (200-599)")));
    }
    match output.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => return Err(refuse(format!("header {name:?} is not text"))),
                };
                app_headers::check(name, &text).map_err(|invalid: InvalidHeader| refuse(invalid.to_string()))?;
            }
        }
        Some(_) => return Err(refuse("`headers` is not an object".into())),
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn literal_headers_must_be_valid_http_templated_ones_wait_for_the_run() {
        let input = json!({ "status": 101, "headers": {
            "x-ok": "1", "x bad": "1", "x-value": "a\r\nb", "x-later": "{{ input.h }}", "x-list": ["a"], "x-n": 2 } });
        let problems: Vec<String> =
            literal_problems(&input, "w.steps[0].response").iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            [
                "w.steps[0].response.status: 101 is not a final HTTP status (200-599)",
                "w.steps[0].response.headers[\"x bad\"]: header \"x bad\" has a name that is not valid HTTP (a token: \
                 letters, digits and !#$%&'*+-.^_`|~)",
                "w.steps[0].response.headers.x-value: header \"x-value\" has a value that is not valid HTTP (no control \
                 characters such as CR, LF or NUL)",
                "w.steps[0].response.headers.x-list: a header value must be text",
            ]
        );
    }
}
