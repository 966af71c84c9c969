//! Stage's workflow templates: `{{ expr }}` in step inputs and `if` conditions, with
//! minijinja's language over a run's variables (`input`, `auth`, `config`, `app`, `steps`,
//! `run`).
//!
//! * A string that is exactly one `{{ expr }}` (surrounding whitespace allowed) keeps the
//!   expression's JSON type: `"{{ input.n }}"` with `n = 5` is the number `5`.
//! * Any other string containing `{{`, `{%` or `{#` renders as text: `"n={{ input.n }}"`.
//! * An `if` condition is an expression, bare (`input.n > 1`) or wrapped (`{{ … }}`), judged
//!   by its truthiness.
//! * Undefined variables and attributes are errors naming the variable.
//!
//! Templates are tenant code, and even compiling one can do unbounded work (minijinja folds
//! constant expressions such as `'x' * 100000000` at compile time). So the engine
//! ([`Checker`], [`Evaluator`]; feature `engine`) runs only inside the template sandbox, a
//! wasm component (`guests/templates`) that the host runs under memory, time and output
//! limits. The host uses what is always here: the wire format it exchanges with the sandbox
//! ([`Job`] in, [`Outcome`]s out, as JSON) and the cheap textual tests [`is_template`] and
//! [`lone_expression`].
//!
//! ```
//! # #[cfg(feature = "engine")] {
//! use stage_templates::{Checker, Mode};
//!
//! let checked = Checker::new().check("{{ input.email | lower }}", Mode::Value).unwrap();
//! assert!(checked.typed);
//! assert_eq!(checked.references, ["input.email"]);
//! # }
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

#[cfg(feature = "engine")]
mod engine;
#[cfg(feature = "engine")]
pub use engine::{Checker, Evaluator, context_value, run};

/// The variables a template can use.
pub const ROOTS: [&str; 6] = ["input", "auth", "config", "app", "steps", "run"];

/// How a template string is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// A templated string in a step's input: typed if it is one lone expression, else text.
    Value,
    /// An `if` condition: always an expression, judged by its truthiness.
    Condition,
}

/// What parsing a template found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// Whether the value keeps its JSON type (a lone `{{ expr }}`, or a condition) rather
    /// than rendering as text.
    pub typed: bool,
    /// The variables the template reads, with trivial attribute chains kept
    /// (`input.email`, `steps.row.updates`), sorted; minijinja's globals (`range`, …) and
    /// the template's own locals are left out.
    pub references: Vec<String>,
}

/// Whether a string is templated at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// The expression of a string that is exactly one `{{ expr }}` (whitespace around allowed,
/// `{{-`/`-}}` whitespace control ignored).
pub fn lone_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if ["{{", "}}", "{%", "%}", "{#", "#}"].iter().any(|marker| inner.contains(marker)) {
        return None;
    }
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    Some(inner.strip_suffix(['-', '+']).unwrap_or(inner))
}

/// What the sandbox is asked to do with a [`Job`]'s templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Parse each template: [`Outcome::Checked`] or [`Outcome::Error`].
    Check,
    /// Evaluate each template against the context: [`Outcome::Value`] or [`Outcome::Error`].
    Evaluate,
}

/// Templates to check or evaluate: what the host sends the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job<'a, C> {
    pub action: Action,
    #[serde(borrow)]
    pub templates: Vec<JobTemplate<'a>>,
    /// The run's variables (or the part of them the templates read), as one JSON object
    /// keyed by [`ROOTS`]; ignored by [`Action::Check`].
    pub context: C,
}

/// One template of a [`Job`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobTemplate<'a> {
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    pub mode: Mode,
}

/// What became of one template of a [`Job`], in the job's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Its value (a boolean for a condition).
    Value(serde_json::Value),
    /// It compiles, and this is what it is.
    Checked(Checked),
    /// Why it does not compile or failed.
    Error(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_expressions_are_found_by_their_text() {
        assert_eq!(lone_expression(" {{ input.n }} "), Some(" input.n "));
        assert_eq!(lone_expression("{{- input.n -}}"), Some(" input.n "));
        assert_eq!(lone_expression("n={{ input.n }}"), None);
        assert_eq!(lone_expression("{{ a }}{{ b }}"), None);
        assert!(is_template("a {% if x %}") && is_template("{# c #}") && !is_template("{ x }"));
    }

    #[test]
    fn jobs_and_outcomes_are_json() {
        let job = Job {
            action: Action::Evaluate,
            templates: vec![JobTemplate { source: "{{ input.n }}".into(), mode: Mode::Value }],
            context: serde_json::json!({ "input": { "n": 1 } }),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"action":"evaluate","templates":[{"source":"{{ input.n }}","mode":"value"}],"context":{"input":{"n":1}}}"#
        );
        let back: Job<'_, serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.templates[0].source, "{{ input.n }}");
        let outcomes = vec![
            Outcome::Value(serde_json::json!(5)),
            Outcome::Checked(Checked { typed: true, references: vec!["input.n".into()] }),
            Outcome::Error("no".into()),
        ];
        assert_eq!(
            serde_json::to_string(&outcomes).unwrap(),
            r#"[{"value":5},{"checked":{"typed":true,"references":["input.n"]}},{"error":"no"}]"#
        );
    }
}
