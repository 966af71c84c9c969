//! The template engine (minijinja), for the template sandbox only: it bounds memory, time
//! and output for every construct. The fuel set here is not one of those bounds (one
//! instruction can do unbounded work); it only stops long loops early with a clear message.

use std::borrow::Cow;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value};

use super::{Action, Checked, Job, Mode, Outcome, ROOTS, lone_expression};

/// Instructions one template evaluation may execute (a loop over 100,000 items is refused).
const TEMPLATE_FUEL: u64 = 50_000;

/// The template variable an expression template assigns its value to.
const RESULT_VARIABLE: &str = "__stage_result";

/// Parses templates without evaluating them (but see the crate docs: compiling folds
/// constants).
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

/// Runs a [`Job`]: checks or evaluates each template, in order.
pub fn run(job: &Job<'_, Value>) -> Vec<Outcome> {
    match job.action {
        Action::Check => {
            let checker = Checker::new();
            job.templates
                .iter()
                .map(|template| match checker.check(&template.source, template.mode) {
                    Ok(checked) => Outcome::Checked(checked),
                    Err(message) => Outcome::Error(message),
                })
                .collect()
        }
        Action::Evaluate => {
            let evaluator = Evaluator::new();
            let context = context_value(&job.context);
            job.templates
                .iter()
                .map(|template| match evaluator.evaluate(&template.source, template.mode, &context) {
                    Ok(value) => Outcome::Value(value),
                    Err(message) => Outcome::Error(message),
                })
                .collect()
        }
    }
}

/// Evaluates templates.
pub struct Evaluator {
    env: Environment<'static>,
}

impl Default for Evaluator {
    fn default() -> Evaluator {
        Evaluator::new()
    }
}

impl Evaluator {
    pub fn new() -> Evaluator {
        let mut env = environment();
        env.set_fuel(Some(TEMPLATE_FUEL));
        Evaluator { env }
    }

    /// Evaluates one template against `context` (made with [`context_value`]): its JSON
    /// value if typed, the rendered text otherwise, a boolean for a condition.
    pub fn evaluate(&self, source: &str, mode: Mode, context: &minijinja::Value) -> Result<Value, String> {
        let (body, typed) = body(&self.env, source, mode)?;
        let template = self
            .env
            .template_from_str(&body)
            .map_err(|error| format!("`{source}` does not compile: {}", describe(&error, source)))?;
        let failed = |error: minijinja::Error| {
            if error.kind() == ErrorKind::UndefinedError {
                undefined(&self.env, &template, source, context)
            } else {
                format!("`{source}` failed: {}", describe(&error, source))
            }
        };
        if !typed {
            return template.render(context).map(Value::String).map_err(failed);
        }
        let captured = template.render_captured(context).map_err(failed)?;
        let value = match captured.state().lookup(RESULT_VARIABLE) {
            Some(value) if !value.is_undefined() => value,
            _ => return Err(undefined(&self.env, &template, source, context)),
        };
        match mode {
            Mode::Condition => Ok(Value::Bool(value.is_true())),
            Mode::Value => to_json(&value).map_err(|Undefined| undefined(&self.env, &template, source, context)),
        }
    }
}

fn undefined(
    env: &Environment<'static>,
    template: &minijinja::Template<'_, '_>,
    source: &str,
    context: &minijinja::Value,
) -> String {
    match first_missing(context, &references(env, template)) {
        Some(variable) => format!("undefined variable `{variable}` in `{source}`"),
        None => format!("`{source}` uses an undefined value"),
    }
}

/// The shortest prefix of a reference (`input.nope` of `input.nope.x`) that the context lacks.
fn first_missing(root: &minijinja::Value, references: &[String]) -> Option<String> {
    references.iter().find_map(|reference| {
        let mut current = root.clone();
        let mut end = 0;
        for segment in reference.split('.') {
            end += segment.len() + usize::from(end > 0);
            match current.get_attr(segment) {
                Ok(value) if !value.is_undefined() => current = value,
                _ => return Some(reference[..end].to_string()),
            }
        }
        None
    })
}

/// The variables of a run as one template value: `input`, `auth`, `config`, `app`, `run`
/// and `steps` from a JSON object with those keys (other keys are ignored; a missing
/// `steps` is empty).
pub fn context_value(context: &Value) -> minijinja::Value {
    let mut variables = IndexMap::new();
    for (name, value) in context.as_object().into_iter().flatten() {
        if ROOTS.contains(&name.as_str()) {
            variables.insert(name.clone(), to_template_value(value));
        }
    }
    variables.entry("steps".to_string()).or_insert_with(|| minijinja::Value::from_object(JsonObject::default()));
    minijinja::Value::from_object(JsonObject(variables))
}

/// A JSON object as a template value, keeping its key order (minijinja's own maps sort
/// keys unless its `preserve_order` feature is on).
#[derive(Debug, Default)]
struct JsonObject(IndexMap<String, minijinja::Value>);

impl Object for JsonObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.0.get(key.as_str()?).cloned()
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<minijinja::Value> {
        self.0.get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| Box::new(this.0.keys().map(|key| minijinja::Value::from(key.as_str()))))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

/// JSON to a template value; integers stay integers.
fn to_template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(flag) => minijinja::Value::from(*flag),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                minijinja::Value::from(integer)
            } else if let Some(integer) = number.as_u64() {
                minijinja::Value::from(integer)
            } else {
                minijinja::Value::from(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(text) => minijinja::Value::from(text.as_str()),
        Value::Array(items) => minijinja::Value::from(items.iter().map(to_template_value).collect::<Vec<_>>()),
        Value::Object(map) => minijinja::Value::from_object(JsonObject(
            map.iter().map(|(key, item)| (key.clone(), to_template_value(item))).collect(),
        )),
    }
}

/// A template value had no JSON form because it (or something inside it) is undefined.
#[derive(Debug)]
struct Undefined;

/// A template value to JSON: integers stay integers, floats floats, none is null; maps keep
/// their order. Values with no JSON form (functions, macros) become their text.
fn to_json(value: &minijinja::Value) -> Result<Value, Undefined> {
    Ok(match value.kind() {
        ValueKind::Undefined => return Err(Undefined),
        ValueKind::None => Value::Null,
        ValueKind::Bool => Value::Bool(value.is_true()),
        ValueKind::Number => number_to_json(value),
        ValueKind::String => Value::String(value.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            Value::Array(value.as_bytes().unwrap_or_default().iter().map(|byte| Value::from(*byte)).collect())
        }
        ValueKind::Seq | ValueKind::Iterable => match value.try_iter() {
            Ok(items) => Value::Array(items.map(|item| to_json(&item)).collect::<Result<_, _>>()?),
            Err(_) => Value::String(value.to_string()),
        },
        ValueKind::Map => {
            let mut map = Map::new();
            if let Some(object) = value.downcast_object_ref::<JsonObject>() {
                for (key, item) in &object.0 {
                    map.insert(key.clone(), to_json(item)?);
                }
            } else if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or_default();
                    let key = key.as_str().map(str::to_string).unwrap_or_else(|| key.to_string());
                    map.insert(key, to_json(&item)?);
                }
            }
            Value::Object(map)
        }
        _ => Value::String(value.to_string()),
    })
}

fn number_to_json(value: &minijinja::Value) -> Value {
    if value.is_integer() {
        if let Ok(integer) = i64::try_from(value.clone()) {
            return Value::from(integer);
        }
        if let Ok(integer) = u64::try_from(value.clone()) {
            return Value::from(integer);
        }
    }
    f64::try_from(value.clone()).ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> minijinja::Value {
        context_value(&json!({
            "input": {
                "n": 5, "f": 1.5, "zero": 0, "big": u64::MAX, "negative": -3, "email": "a@b.c",
                "none": null, "flag": true, "items": [1, 2], "emptyList": [], "emptyObject": {},
                "obj": { "z": 1, "a": [1, { "b": null }] }
            },
            "auth": { "email": "u@example.com", "name": "U", "userId": "u1" },
            "config": { "slackChannelId": "C123" },
            "app": { "sid": "app_1", "name": "App", "version": 3 },
            "run": { "id": "run_1", "startedAt": "2025-01-01T00:00:00Z" },
            "steps": { "row": { "updates": { "updatedRange": "Sheet1!A2:B2" } } },
        }))
    }

    fn try_eval(source: &str) -> Result<Value, String> {
        Evaluator::new().evaluate(source, Mode::Value, &context())
    }

    fn eval(source: &str) -> Value {
        try_eval(source).unwrap_or_else(|error| panic!("{source}: {error}"))
    }

    fn condition(source: &str) -> Result<bool, String> {
        Evaluator::new().evaluate(source, Mode::Condition, &context()).map(|value| value == Value::Bool(true))
    }

    #[test]
    fn a_lone_expression_keeps_its_json_type() {
        assert_eq!(eval("{{ input.n }}"), json!(5));
        assert!(eval("{{ input.n }}").is_i64());
        assert_eq!(eval("  {{ input.f }} "), json!(1.5));
        assert_eq!(eval("{{- input.n -}}"), json!(5));
        assert_eq!(eval("{{ input.none }}"), Value::Null);
        assert_eq!(eval("{{ input.flag }}"), json!(true));
        assert_eq!(eval("{{ input.negative }}"), json!(-3));
        assert_eq!(eval("{{ input.big }}"), json!(u64::MAX));
        assert_eq!(eval("{{ input.n * 2 }}"), json!(10));
        assert_eq!(eval("{{ input.n / 2 }}"), json!(2.5));
        assert_eq!(eval("{{ input.items }}"), json!([1, 2]));
        assert_eq!(eval("{{ [input.n, input.email] }}"), json!([5, "a@b.c"]));
        assert_eq!(eval("{{ {'k': input.n} }}"), json!({ "k": 5 }));
        assert_eq!(eval("{{ input.email | upper }}"), json!("A@B.C"));
        assert_eq!(eval("{{ config.slackChannelId }}"), json!("C123"));
        assert_eq!(eval("{{ steps.row.updates.updatedRange }}"), json!("Sheet1!A2:B2"));
        assert_eq!(eval("{{ auth.userId }}"), json!("u1"));
        assert_eq!(eval("{{ app.version }}"), json!(3));
        assert_eq!(eval("{{ run.id }}"), json!("run_1"));
    }

    #[test]
    fn objects_keep_their_key_order() {
        let object = eval("{{ input.obj }}");
        assert_eq!(serde_json::to_string(&object).unwrap(), r#"{"z":1,"a":[1,{"b":null}]}"#);
        assert_eq!(eval("{% for key in input.obj %}{{ key }}{% endfor %}"), json!("za"));
    }

    #[test]
    fn other_template_strings_render_as_text() {
        assert_eq!(eval("n={{ input.n }}"), json!("n=5"));
        assert_eq!(eval("{{ input.n }}{{ input.n }}"), json!("55"));
        assert_eq!(eval("{% for i in input.items %}{{ i }},{% endfor %}"), json!("1,2,"));
        assert_eq!(eval("a{# note #}b"), json!("ab"));
        assert_eq!(eval("line {{ input.n }}\n"), json!("line 5\n"));
        assert_eq!(eval("<{{ input.email }}>"), json!("<a@b.c>"), "no HTML escaping");
    }

    #[test]
    fn undefined_variables_are_errors_naming_the_variable() {
        assert_eq!(
            try_eval("{{ input.amountCents }}").unwrap_err(),
            "undefined variable `input.amountCents` in `{{ input.amountCents }}`"
        );
        for (template, variable) in [
            ("{{ input.nope.deeper }}", "input.nope"),
            ("n={{ input.nope }}", "input.nope"),
            ("{{ [input.n, input.nope] }}", "input.nope"),
            ("{{ nope }}", "nope"),
            ("{{ steps.later.output }}", "steps.later"),
            ("{% for x in input.missing %}{{ x }}{% endfor %}", "input.missing"),
        ] {
            let error = try_eval(template).unwrap_err();
            assert!(error.contains(&format!("`{variable}`")), "{template}: {error}");
        }
        assert_eq!(try_eval("{{ input.items[7] }}").unwrap_err(), "`{{ input.items[7] }}` uses an undefined value");
    }

    #[test]
    fn defined_tests_and_defaults_work_in_strict_mode() {
        assert_eq!(eval("{{ input.nope is defined }}"), json!(false));
        assert_eq!(eval("{{ input.nope | default('fallback') }}"), json!("fallback"));
        assert_eq!(eval("{{ input.email if input.flag else 'no' }}"), json!("a@b.c"));
    }

    #[test]
    fn other_runtime_errors_name_the_template() {
        let error = try_eval("{{ input.email + 1 }}").unwrap_err();
        assert!(error.starts_with("`{{ input.email + 1 }}` failed: "), "{error}");
    }

    #[test]
    fn conditions_use_truthiness() {
        for (text, expected) in [
            ("input.n > 3", true),
            ("{{ input.n > 30 }}", false),
            ("  {{ input.flag and input.n == 5 }} ", true),
            ("input.zero", false),
            ("input.emptyList", false),
            ("input.emptyObject", false),
            ("input.none", false),
            ("input.email", true),
            ("input.obj", true),
            ("input.nope is defined", false),
            ("steps.row.updates.updatedRange is startingwith('Sheet1')", true),
        ] {
            assert_eq!(condition(text).unwrap(), expected, "{text}");
        }
        assert!(condition("input.nope > 1").unwrap_err().contains("`input.nope`"));
        assert!(condition("input.nope").is_err());
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let error = try_eval("{% for i in range(100000) %}{{ i }}{% endfor %}").unwrap_err();
        assert!(error.contains("fuel"), "{error}");
        assert_eq!(eval("{% for i in range(3) %}{{ i }}{% endfor %}"), json!("012"));
    }

    #[test]
    fn a_job_evaluates_every_template_in_order() {
        let text = json!({
            "action": "evaluate",
            "templates": [
                { "source": "{{ input.n + 1 }}", "mode": "value" },
                { "source": "{{ input.nope }}", "mode": "value" },
                { "source": "input.n == 1", "mode": "condition" },
            ],
            "context": { "input": { "n": 1 } },
        })
        .to_string();
        let job: Job<'_, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            run(&job),
            [
                Outcome::Value(json!(2)),
                Outcome::Error("undefined variable `input.nope` in `{{ input.nope }}`".into()),
                Outcome::Value(json!(true)),
            ]
        );
    }

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
    fn a_check_job_answers_what_each_template_is() {
        let text = json!({
            "action": "check",
            "templates": [{ "source": "{{ input.a }}", "mode": "value" }, { "source": "{{ x. }}", "mode": "value" }],
            "context": null,
        })
        .to_string();
        let job: Job<'_, Value> = serde_json::from_str(&text).unwrap();
        let outcomes = run(&job);
        assert_eq!(outcomes[0], Outcome::Checked(Checked { typed: true, references: vec!["input.a".into()] }));
        assert!(matches!(&outcomes[1], Outcome::Error(message) if message.contains("does not compile")));
    }
}
