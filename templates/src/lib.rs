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
//! Templates are tenant code, so this crate has two halves:
//!
//! * [`Checker`] parses a template and lists the variables it reads, without evaluating
//!   anything. The host uses it when a workflow file is published.
//! * [`Evaluator`] (feature `evaluate`) evaluates templates. Only the template sandbox
//!   enables it: a wasm component (`guests/templates`) that the host runs under memory,
//!   time and output limits, so that no filter, function, operator or argument can exhaust
//!   the host.
//!
//! [`Job`] and [`Outcome`] are what the host and the sandbox exchange, as JSON.
//!
//! ```
//! use stage_templates::{Checker, Mode};
//!
//! let checked = Checker::new().check("{{ input.email | lower }}", Mode::Value).unwrap();
//! assert!(checked.typed);
//! assert_eq!(checked.references, ["input.email"]);
//! ```

use std::borrow::Cow;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

#[cfg(feature = "evaluate")]
mod evaluate;
#[cfg(feature = "evaluate")]
pub use evaluate::{Evaluator, context_value};

/// The variables a template can use.
pub const ROOTS: [&str; 6] = ["input", "auth", "config", "app", "steps", "run"];

/// The template variable an expression template assigns its value to.
const RESULT_VARIABLE: &str = "__stage_result";

/// How a template string is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// A templated string in a step's input: typed if it is one lone expression, else text.
    Value,
    /// An `if` condition: always an expression, judged by its truthiness.
    Condition,
}

/// What parsing a template found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Whether the value keeps its JSON type (a lone `{{ expr }}`, or a condition) rather
    /// than rendering as text.
    pub typed: bool,
    /// The variables the template reads, with trivial attribute chains kept
    /// (`input.email`, `steps.row.updates`), sorted; minijinja's globals (`range`, …) and
    /// the template's own locals are left out.
    pub references: Vec<String>,
}

/// Parses templates (never evaluates them).
pub struct Checker {
    env: Environment<'static>,
}

impl Default for Checker {
    fn default() -> Checker {
        Checker::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker { env: environment() }
    }

    /// Parses `source` as used in `mode`, or says why it does not compile (the message
    /// quotes the source).
    pub fn check(&self, source: &str, mode: Mode) -> Result<Checked, String> {
        let (body, typed) = body(&self.env, source, mode)?;
        let template = self
            .env
            .template_from_str(&body)
            .map_err(|error| format!("`{source}` does not compile: {}", describe(&error, source)))?;
        Ok(Checked { typed, references: references(&self.env, &template) })
    }
}

/// The environment both halves use, so that what compiles at publish is what runs.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // A value such as "line\n" must keep its newline.
    env.set_keep_trailing_newline(true);
    // Error messages are built here from the kind and detail; the debug snapshot of the
    // template state would only cost time.
    env.set_debug(false);
    env
}

/// The template text minijinja compiles for `source`, and whether its value is typed. A
/// lone expression is stored as a one-statement template (`{% set result = (expr) %}`) whose
/// value is read back from the template's final state.
fn body<'s>(env: &Environment<'static>, source: &'s str, mode: Mode) -> Result<(Cow<'s, str>, bool), String> {
    let expression = match mode {
        Mode::Condition => lone_expression(source).unwrap_or(source),
        Mode::Value => match lone_expression(source) {
            Some(expression) => expression,
            None => return Ok((Cow::Borrowed(source), false)),
        },
    };
    if expression.trim().is_empty() {
        return Err(format!("`{source}` has no expression"));
    }
    // Parsing it alone first guarantees that the wrapper holds exactly one expression.
    if let Err(error) = env.compile_expression(expression) {
        return Err(format!("`{source}` does not compile: {}", describe(&error, source)));
    }
    Ok((Cow::Owned(format!("{{% set {RESULT_VARIABLE} = ({expression}) %}}")), true))
}

fn references(env: &Environment<'static>, template: &minijinja::Template<'_, '_>) -> Vec<String> {
    let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
    let mut references: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|reference| {
            let root = reference.split('.').next().unwrap_or_default();
            root != RESULT_VARIABLE && !globals.contains(&root)
        })
        .collect();
    references.sort();
    references
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

/// `kind: detail`, plus the line for multi-line sources.
fn describe(error: &minijinja::Error, source: &str) -> String {
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let (true, Some(line)) = (source.contains('\n'), error.line()) {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// Templates to evaluate against one context: what the host sends the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job<'a, C> {
    #[serde(borrow)]
    pub templates: Vec<JobTemplate<'a>>,
    /// The run's variables (or the part of them the templates read), as one JSON object
    /// keyed by [`ROOTS`].
    pub context: C,
}

/// One template of a [`Job`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobTemplate<'a> {
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    pub mode: Mode,
}

/// What one template of a [`Job`] evaluated to, in the job's order: its JSON value (a
/// boolean for a condition), or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Value(serde_json::Value),
    Error(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_expressions_are_typed_and_other_strings_are_text() {
        let checker = Checker::new();
        assert!(checker.check("{{ input.n }}", Mode::Value).unwrap().typed);
        assert!(checker.check("  {{- input.n -}} ", Mode::Value).unwrap().typed);
        assert!(!checker.check("n={{ input.n }}", Mode::Value).unwrap().typed);
        assert!(!checker.check("{{ input.n }}{{ input.n }}", Mode::Value).unwrap().typed);
        assert!(checker.check("input.n > 1", Mode::Condition).unwrap().typed);
    }

    #[test]
    fn references_list_nested_variables_without_locals_or_globals() {
        let checker = Checker::new();
        let template = checker
            .check(
                "{{ input.a }} {{ steps.row.x.y }} {% for r in input.rows %}{{ r.v }}{{ loop.index }}{% endfor %} \
                 {{ range(3) | list }}{% set local = config.k %}{{ local }}",
                Mode::Value,
            )
            .unwrap();
        assert!(!template.typed);
        assert_eq!(template.references, ["config.k", "input.a", "input.rows", "steps.row.x.y"]);
        let typed = checker.check("{{ auth.email == input['email'] }}", Mode::Condition).unwrap();
        assert!(typed.typed);
        assert_eq!(typed.references, ["auth.email", "input"]);
    }

    #[test]
    fn compile_errors_quote_the_source() {
        let checker = Checker::new();
        let error = checker.check("{{ input. }}", Mode::Value).unwrap_err();
        assert!(error.starts_with("`{{ input. }}` does not compile: syntax error"), "{error}");
        assert!(checker.check("{% if input.n %}open", Mode::Value).unwrap_err().contains("does not compile"));
        assert_eq!(checker.check("{{ }}", Mode::Value).unwrap_err(), "`{{ }}` has no expression");
        assert!(checker.check("input.n >", Mode::Condition).is_err());
        assert!(checker.check("input.n %} {% if true", Mode::Condition).is_err());
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let job = Job {
            templates: vec![JobTemplate { source: "{{ input.n }}".into(), mode: Mode::Value }],
            context: serde_json::json!({ "input": { "n": 1 } }),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(text, r#"{"templates":[{"source":"{{ input.n }}","mode":"value"}],"context":{"input":{"n":1}}}"#);
        let back: Job<'_, serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.templates[0].source, "{{ input.n }}");
        let outcomes = vec![Outcome::Value(serde_json::json!(5)), Outcome::Error("no".into())];
        assert_eq!(serde_json::to_string(&outcomes).unwrap(), r#"[{"value":5},{"error":"no"}]"#);
    }
}
