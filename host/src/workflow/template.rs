//! Templates in step inputs and `if` conditions, evaluated with minijinja over the run's
//! variables: `input`, `auth`, `config`, `app`, `steps` and `run`.
//!
//! * A string that is exactly one `{{ expr }}` (surrounding whitespace allowed) keeps the
//!   expression's JSON type: `"{{ input.n }}"` with `n = 5` is the number `5`.
//! * Any other string containing `{{`, `{%` or `{#` renders as text: `"n={{ input.n }}"`.
//! * Undefined variables and attributes are errors naming the field's JSON path.
//!
//! Templates are compiled once into a [`TemplateSet`] (when a workflow file is parsed) and
//! evaluated for every run against a [`TemplateContext`]; nothing is parsed per run.
//! minijinja ties a compiled expression to the environment that compiled it, so an
//! expression is stored as a one-statement template (`{% set result = (expr) %}`) inside
//! the set's own environment, and its value is read back from the template's final state.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use serde_json::{Map, Value};

use super::path;

/// The variables a template can use.
/// Instructions one template evaluation may execute (a loop over 100,000 items is refused).
const TEMPLATE_FUEL: u64 = 50_000;

pub const ROOTS: [&str; 6] = ["input", "auth", "config", "app", "steps", "run"];

/// The template variable an expression template assigns its value to.
const RESULT_VARIABLE: &str = "__stage_result";

/// A template that failed to compile or to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{path}: {message}")]
pub struct TemplateError {
    /// JSON path of the templated field, e.g. `steps[0].sheets.appendValues.values[0][1]`.
    pub path: String,
    pub message: String,
}

impl TemplateError {
    fn new(path: &str, message: String) -> TemplateError {
        TemplateError { path: path.to_string(), message }
    }
}

/// Compiled templates sharing one minijinja environment. Built once per workflow file and
/// shared (`Send + Sync`) by every run of it.
pub struct TemplateSet {
    env: Environment<'static>,
    count: usize,
}

impl fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSet").field("templates", &self.count).finish()
    }
}

impl Default for TemplateSet {
    fn default() -> TemplateSet {
        TemplateSet::new()
    }
}

/// One compiled template string or `if` expression, with where it was written.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    /// Name of the template in the set's environment.
    key: String,
    source: String,
    path: String,
    /// Whether the template is a single expression whose value keeps its JSON type.
    typed: bool,
    references: Vec<String>,
}

impl CompiledTemplate {
    /// The text as written in the workflow file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// JSON path of the field the template came from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the value keeps its JSON type (a lone `{{ expr }}` or an `if`) rather than
    /// rendering as text.
    pub fn is_typed(&self) -> bool {
        self.typed
    }

    /// The variables the template reads, with trivial attribute chains kept (`input.email`,
    /// `steps.row.updates`), sorted. minijinja's global functions (`range`, `dict`, …) are
    /// left out.
    pub fn references(&self) -> &[String] {
        &self.references
    }
}

/// A JSON value whose template strings are compiled; resolving it yields plain JSON.
#[derive(Debug, Clone)]
pub enum CompiledValue {
    /// A value with no template anywhere inside.
    Literal(Value),
    Template(CompiledTemplate),
    Array(Vec<CompiledValue>),
    /// Object keys are never templated.
    Object(Vec<(String, CompiledValue)>),
}

impl CompiledValue {
    /// Every template inside, in document order.
    pub fn templates(&self) -> Vec<&CompiledTemplate> {
        fn collect<'a>(value: &'a CompiledValue, out: &mut Vec<&'a CompiledTemplate>) {
            match value {
                CompiledValue::Literal(_) => {}
                CompiledValue::Template(template) => out.push(template),
                CompiledValue::Array(items) => items.iter().for_each(|item| collect(item, out)),
                CompiledValue::Object(entries) => entries.iter().for_each(|(_, value)| collect(value, out)),
            }
        }
        let mut out = Vec::new();
        collect(self, &mut out);
        out
    }
}

impl TemplateSet {
    pub fn new() -> TemplateSet {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // A value such as "line\n" must keep its newline.
        env.set_keep_trailing_newline(true);
        // Error messages are built here from the kind and detail; the debug snapshot of the
        // template state would only cost time.
        env.set_debug(false);
        // Templates come from apps: bound the work one evaluation may do (loops, filters).
        env.set_fuel(Some(TEMPLATE_FUEL));
        TemplateSet { env, count: 0 }
    }

    /// Compiles every template string inside `value`, whose JSON path is `path`. Reports
    /// every template that does not compile.
    pub fn compile_value(&mut self, value: &Value, path: &str) -> Result<CompiledValue, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let compiled = self.compile_into(value, path, &mut errors);
        if errors.is_empty() { Ok(compiled) } else { Err(errors) }
    }

    fn compile_into(&mut self, value: &Value, at: &str, errors: &mut Vec<TemplateError>) -> CompiledValue {
        match value {
            Value::String(text) if is_template(text) => match self.compile_string(text, at) {
                Ok(template) => CompiledValue::Template(template),
                Err(error) => {
                    errors.push(error);
                    CompiledValue::Literal(Value::Null)
                }
            },
            Value::Array(items) => {
                let items: Vec<CompiledValue> = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| self.compile_into(item, &path::index(at, index), errors))
                    .collect();
                if items.iter().all(|item| matches!(item, CompiledValue::Literal(_))) {
                    CompiledValue::Literal(value.clone())
                } else {
                    CompiledValue::Array(items)
                }
            }
            Value::Object(map) => {
                let entries: Vec<(String, CompiledValue)> = map
                    .iter()
                    .map(|(key, item)| (key.clone(), self.compile_into(item, &path::key(at, key), errors)))
                    .collect();
                if entries.iter().all(|(_, item)| matches!(item, CompiledValue::Literal(_))) {
                    CompiledValue::Literal(value.clone())
                } else {
                    CompiledValue::Object(entries)
                }
            }
            _ => CompiledValue::Literal(value.clone()),
        }
    }

    /// Compiles one template string: a lone `{{ expr }}` as a typed expression, anything
    /// else as text.
    pub fn compile_string(&mut self, text: &str, path: &str) -> Result<CompiledTemplate, TemplateError> {
        match lone_expression(text) {
            Some(expression) => self.compile_expression(expression, text, path),
            None => self.add(text.to_string(), text, path, false),
        }
    }

    /// Compiles an `if` condition, written bare (`input.n > 1`) or wrapped (`{{ input.n > 1 }}`).
    pub fn compile_condition(&mut self, condition: &str, path: &str) -> Result<CompiledTemplate, TemplateError> {
        let expression = lone_expression(condition).unwrap_or(condition);
        self.compile_expression(expression, condition, path)
    }

    fn compile_expression(
        &mut self,
        expression: &str,
        source: &str,
        path: &str,
    ) -> Result<CompiledTemplate, TemplateError> {
        // Parsing it alone first guarantees that the wrapper below holds exactly one expression.
        if expression.trim().is_empty() {
            return Err(TemplateError::new(path, format!("`{source}` has no expression")));
        }
        if let Err(error) = self.env.compile_expression(expression) {
            return Err(TemplateError::new(path, format!("`{source}` does not compile: {}", describe(&error, source))));
        }
        self.add(format!("{{% set {RESULT_VARIABLE} = ({expression}) %}}"), source, path, true)
    }

    fn add(&mut self, body: String, source: &str, path: &str, typed: bool) -> Result<CompiledTemplate, TemplateError> {
        let key = format!("t{}", self.count);
        self.env.add_template_owned(key.clone(), body).map_err(|error| {
            TemplateError::new(path, format!("`{source}` does not compile: {}", describe(&error, source)))
        })?;
        self.count += 1;
        let globals: Vec<(&str, minijinja::Value)> = self.env.globals().collect();
        let mut references: Vec<String> = self
            .env
            .get_template(&key)
            .map(|template| template.undeclared_variables(true))
            .unwrap_or_default()
            .into_iter()
            .filter(|reference| {
                let root = reference.split('.').next().unwrap_or_default();
                root != RESULT_VARIABLE && !globals.iter().any(|(name, _)| *name == root)
            })
            .collect();
        references.sort();
        Ok(CompiledTemplate { key, source: source.to_string(), path: path.to_string(), typed, references })
    }

    /// Evaluates a compiled value to JSON.
    pub fn resolve(&self, value: &CompiledValue, context: &TemplateContext) -> Result<Value, TemplateError> {
        match value {
            CompiledValue::Literal(value) => Ok(value.clone()),
            CompiledValue::Template(template) => self.evaluate(template, context),
            CompiledValue::Array(items) => {
                items.iter().map(|item| self.resolve(item, context)).collect::<Result<Vec<_>, _>>().map(Value::Array)
            }
            CompiledValue::Object(entries) => entries
                .iter()
                .map(|(key, item)| Ok((key.clone(), self.resolve(item, context)?)))
                .collect::<Result<Map<String, Value>, TemplateError>>()
                .map(Value::Object),
        }
    }

    /// Evaluates one template: its JSON value if typed, else the rendered text.
    pub fn evaluate(&self, template: &CompiledTemplate, context: &TemplateContext) -> Result<Value, TemplateError> {
        if template.typed {
            let value = self.expression_value(template, context)?;
            to_json(&value).map_err(|Undefined| undefined_error(template, context))
        } else {
            self.render(template, context).map(Value::String)
        }
    }

    /// Evaluates a condition for its truthiness: false, 0, "", [], {} and null are false.
    pub fn eval_condition(
        &self,
        template: &CompiledTemplate,
        context: &TemplateContext,
    ) -> Result<bool, TemplateError> {
        if template.typed {
            Ok(self.expression_value(template, context)?.is_true())
        } else {
            Ok(!self.render(template, context)?.is_empty())
        }
    }

    fn expression_value(
        &self,
        template: &CompiledTemplate,
        context: &TemplateContext,
    ) -> Result<minijinja::Value, TemplateError> {
        let compiled = self.template(template)?;
        let captured =
            compiled.render_captured(&context.root).map_err(|error| runtime_error(template, context, &error))?;
        match captured.state().lookup(RESULT_VARIABLE) {
            Some(value) if !value.is_undefined() => Ok(value),
            _ => Err(undefined_error(template, context)),
        }
    }

    fn render(&self, template: &CompiledTemplate, context: &TemplateContext) -> Result<String, TemplateError> {
        self.template(template)?.render(&context.root).map_err(|error| runtime_error(template, context, &error))
    }

    fn template(&self, template: &CompiledTemplate) -> Result<minijinja::Template<'_, '_>, TemplateError> {
        self.env.get_template(&template.key).map_err(|_| {
            TemplateError::new(&template.path, format!("`{}` was compiled by another template set", template.source))
        })
    }
}

/// Whether a string is templated at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// The expression of a string that is exactly one `{{ expr }}` (whitespace around allowed,
/// `{{-`/`-}}` whitespace control ignored).
fn lone_expression(text: &str) -> Option<&str> {
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

fn runtime_error(template: &CompiledTemplate, context: &TemplateContext, error: &minijinja::Error) -> TemplateError {
    if error.kind() == ErrorKind::UndefinedError {
        return undefined_error(template, context);
    }
    TemplateError::new(&template.path, format!("`{}` failed: {}", template.source, describe(error, &template.source)))
}

fn undefined_error(template: &CompiledTemplate, context: &TemplateContext) -> TemplateError {
    let message = match first_missing(&context.root, &template.references) {
        Some(variable) => format!("undefined variable `{variable}` in `{}`", template.source),
        None => format!("`{}` uses an undefined value", template.source),
    };
    TemplateError::new(&template.path, message)
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

/// The variables of one run: `input`, `auth`, `config`, `app` and `run`, plus `steps.<id>`
/// as outputs arrive. Converted to template values once, not per template.
#[derive(Debug, Clone)]
pub struct TemplateContext {
    variables: IndexMap<String, minijinja::Value>,
    steps: IndexMap<String, minijinja::Value>,
    root: minijinja::Value,
}

impl TemplateContext {
    pub fn new(input: &Value, auth: &Value, config: &Value, app: &Value, run: &Value) -> TemplateContext {
        let mut variables = IndexMap::new();
        for (name, value) in [("input", input), ("auth", auth), ("config", config), ("app", app), ("run", run)] {
            variables.insert(name.to_string(), to_template_value(value));
        }
        TemplateContext::assemble(variables, IndexMap::new())
    }

    /// A context from one JSON object with (some of) the keys `input`, `auth`, `config`,
    /// `app`, `steps` (an object of step outputs by id) and `run`; other keys are ignored.
    pub fn from_json(context: &Value) -> TemplateContext {
        let mut variables = IndexMap::new();
        let mut steps = IndexMap::new();
        for (name, value) in context.as_object().into_iter().flatten() {
            match (name.as_str(), value) {
                ("steps", Value::Object(outputs)) => {
                    steps.extend(outputs.iter().map(|(id, output)| (id.clone(), to_template_value(output))));
                }
                (name, value) if ROOTS.contains(&name) && name != "steps" => {
                    variables.insert(name.to_string(), to_template_value(value));
                }
                _ => {}
            }
        }
        TemplateContext::assemble(variables, steps)
    }

    /// Makes a step's output visible to later templates as `steps.<id>`.
    pub fn insert_step_output(&mut self, id: &str, output: &Value) {
        self.steps.insert(id.to_string(), to_template_value(output));
        self.variables.insert("steps".to_string(), minijinja::Value::from_object(JsonObject(self.steps.clone())));
        self.root = minijinja::Value::from_object(JsonObject(self.variables.clone()));
    }

    fn assemble(
        mut variables: IndexMap<String, minijinja::Value>,
        steps: IndexMap<String, minijinja::Value>,
    ) -> TemplateContext {
        variables.insert("steps".to_string(), minijinja::Value::from_object(JsonObject(steps.clone())));
        let root = minijinja::Value::from_object(JsonObject(variables.clone()));
        TemplateContext { variables, steps, root }
    }
}

/// A JSON object as a template value, keeping its key order (minijinja's own maps sort
/// keys unless its `preserve_order` feature is on).
#[derive(Debug)]
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
pub fn to_template_value(value: &Value) -> minijinja::Value {
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

/// Resolves every template inside `value` once, compiling on the spot. For repeated use,
/// compile once with [`TemplateSet::compile_value`] and call [`TemplateSet::resolve`].
pub fn resolve(value: &Value, context: &Value, path: &str) -> Result<Value, TemplateError> {
    let mut set = TemplateSet::new();
    let compiled = set.compile_value(value, path).map_err(|mut errors| errors.remove(0))?;
    set.resolve(&compiled, &TemplateContext::from_json(context))
}

/// Evaluates a condition (bare or wrapped in `{{ }}`) once, compiling on the spot.
pub fn eval_condition(condition: &str, context: &Value, path: &str) -> Result<bool, TemplateError> {
    let mut set = TemplateSet::new();
    let compiled = set.compile_condition(condition, path)?;
    set.eval_condition(&compiled, &TemplateContext::from_json(context))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> TemplateContext {
        let mut context = TemplateContext::new(
            &json!({
                "n": 5, "f": 1.5, "zero": 0, "big": u64::MAX, "negative": -3, "email": "a@b.c",
                "none": null, "flag": true, "items": [1, 2], "emptyList": [], "emptyObject": {},
                "obj": { "z": 1, "a": [1, { "b": null }] }
            }),
            &json!({ "email": "u@example.com", "name": "U", "userId": "u1" }),
            &json!({ "slackChannelId": "C123" }),
            &json!({ "sid": "app_1", "name": "App", "version": 3 }),
            &json!({ "id": "run_1", "startedAt": "2025-01-01T00:00:00Z" }),
        );
        context.insert_step_output("row", &json!({ "updates": { "updatedRange": "Sheet1!A2:B2" } }));
        context
    }

    fn eval_at(value: Value, path: &str) -> Result<Value, TemplateError> {
        let mut set = TemplateSet::new();
        let compiled = set.compile_value(&value, path).expect("compiles");
        set.resolve(&compiled, &context())
    }

    fn eval(value: Value) -> Value {
        eval_at(value.clone(), "field").unwrap_or_else(|error| panic!("{value}: {error}"))
    }

    fn condition(text: &str) -> Result<bool, TemplateError> {
        let mut set = TemplateSet::new();
        let compiled = set.compile_condition(text, "steps[1].if").expect("compiles");
        set.eval_condition(&compiled, &context())
    }

    #[test]
    fn a_lone_expression_keeps_its_json_type() {
        assert_eq!(eval(json!("{{ input.n }}")), json!(5));
        assert!(eval(json!("{{ input.n }}")).is_i64());
        assert_eq!(eval(json!("  {{ input.f }} ")), json!(1.5));
        assert_eq!(eval(json!("{{- input.n -}}")), json!(5));
        assert_eq!(eval(json!("{{ input.none }}")), Value::Null);
        assert_eq!(eval(json!("{{ input.flag }}")), json!(true));
        assert_eq!(eval(json!("{{ input.negative }}")), json!(-3));
        assert_eq!(eval(json!("{{ input.big }}")), json!(u64::MAX));
        assert_eq!(eval(json!("{{ input.n * 2 }}")), json!(10));
        assert_eq!(eval(json!("{{ input.n / 2 }}")), json!(2.5));
        assert_eq!(eval(json!("{{ input.items }}")), json!([1, 2]));
        assert_eq!(eval(json!("{{ [input.n, input.email] }}")), json!([5, "a@b.c"]));
        assert_eq!(eval(json!("{{ {'k': input.n} }}")), json!({ "k": 5 }));
        assert_eq!(eval(json!("{{ input.email | upper }}")), json!("A@B.C"));
        assert_eq!(eval(json!("{{ config.slackChannelId }}")), json!("C123"));
        assert_eq!(eval(json!("{{ steps.row.updates.updatedRange }}")), json!("Sheet1!A2:B2"));
        assert_eq!(eval(json!("{{ auth.userId }}")), json!("u1"));
        assert_eq!(eval(json!("{{ app.version }}")), json!(3));
        assert_eq!(eval(json!("{{ run.id }}")), json!("run_1"));
    }

    #[test]
    fn objects_keep_their_key_order() {
        let object = eval(json!("{{ input.obj }}"));
        assert_eq!(object, json!({ "z": 1, "a": [1, { "b": null }] }));
        assert_eq!(serde_json::to_string(&object).unwrap(), r#"{"z":1,"a":[1,{"b":null}]}"#);
        assert_eq!(eval(json!("{% for key in input.obj %}{{ key }}{% endfor %}")), json!("za"));
    }

    #[test]
    fn other_template_strings_render_as_text() {
        assert_eq!(eval(json!("n={{ input.n }}")), json!("n=5"));
        assert_eq!(eval(json!("{{ input.n }}{{ input.n }}")), json!("55"));
        assert_eq!(eval(json!("{% for i in input.items %}{{ i }},{% endfor %}")), json!("1,2,"));
        assert_eq!(eval(json!("a{# note #}b")), json!("ab"));
        assert_eq!(eval(json!("line {{ input.n }}\n")), json!("line 5\n"));
        assert_eq!(eval(json!("<{{ input.email }}>")), json!("<a@b.c>"), "no HTML escaping");
    }

    #[test]
    fn values_are_walked_and_keys_are_not_templated() {
        let value = json!({
            "values": [["{{ input.email }}", "{{ input.n }}"]],
            "{{ input.n }}": "plain {text}",
            "nested": { "deep": ["x", "{{ input.flag }}"], "number": 7 }
        });
        assert_eq!(
            eval(value),
            json!({
                "values": [["a@b.c", 5]],
                "{{ input.n }}": "plain {text}",
                "nested": { "deep": ["x", true], "number": 7 }
            })
        );
        let mut set = TemplateSet::new();
        let literal = json!({ "a": [1, "two", { "three": null }] });
        assert!(matches!(set.compile_value(&literal, "x").unwrap(), CompiledValue::Literal(value) if value == literal));
    }

    #[test]
    fn undefined_variables_are_errors_naming_the_field_and_variable() {
        let error = eval_at(
            json!({ "range": "A1", "values": [["{{ input.email }}", "{{ input.amountCents }}"]] }),
            "steps[0].sheets.appendValues",
        )
        .unwrap_err();
        assert_eq!(error.path, "steps[0].sheets.appendValues.values[0][1]");
        assert_eq!(error.message, "undefined variable `input.amountCents` in `{{ input.amountCents }}`");

        for (template, variable) in [
            ("{{ input.nope.deeper }}", "input.nope"),
            ("n={{ input.nope }}", "input.nope"),
            ("{{ [input.n, input.nope] }}", "input.nope"),
            ("{{ nope }}", "nope"),
            ("{{ steps.later.output }}", "steps.later"),
            ("{% for x in input.missing %}{{ x }}{% endfor %}", "input.missing"),
        ] {
            let error = eval_at(json!(template), "field").unwrap_err();
            assert_eq!(error.path, "field");
            assert!(error.message.contains(&format!("`{variable}`")), "{template}: {}", error.message);
        }

        let error = eval_at(json!("{{ input.items[7] }}"), "field").unwrap_err();
        assert_eq!(error.message, "`{{ input.items[7] }}` uses an undefined value");
    }

    #[test]
    fn defined_tests_and_defaults_work_in_strict_mode() {
        assert_eq!(eval(json!("{{ input.nope is defined }}")), json!(false));
        assert_eq!(eval(json!("{{ input.nope | default('fallback') }}")), json!("fallback"));
        assert_eq!(eval(json!("{{ input.email if input.flag else 'no' }}")), json!("a@b.c"));
    }

    #[test]
    fn other_runtime_errors_name_the_template() {
        let error = eval_at(json!("{{ input.email + 1 }}"), "field").unwrap_err();
        assert_eq!(error.path, "field");
        assert!(error.message.starts_with("`{{ input.email + 1 }}` failed: "), "{}", error.message);
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
        let error = condition("input.nope > 1").unwrap_err();
        assert_eq!(error.path, "steps[1].if");
        assert!(error.message.contains("`input.nope`"), "{}", error.message);
        assert!(condition("input.nope").is_err());
    }

    #[test]
    fn compile_errors_are_reported_for_every_template() {
        let mut set = TemplateSet::new();
        let errors = set
            .compile_value(&json!({ "a": "{{ input. }}", "b": ["ok", "{% if input.n %}open"], "c": "{{ }}" }), "x")
            .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["x.a", "x.b[1]", "x.c"]);
        assert!(
            errors[0].message.starts_with("`{{ input. }}` does not compile: syntax error"),
            "{}",
            errors[0].message
        );
        assert!(errors[1].message.contains("does not compile"), "{}", errors[1].message);
        assert_eq!(errors[2].message, "`{{ }}` has no expression");
        assert!(set.compile_condition("input.n >", "if").is_err());
        assert!(set.compile_condition("input.n %} {% if true", "if").is_err());
    }

    #[test]
    fn references_list_nested_variables_without_locals_or_globals() {
        let mut set = TemplateSet::new();
        let template = set
            .compile_string(
                "{{ input.a }} {{ steps.row.x.y }} {% for r in input.rows %}{{ r.v }}{{ loop.index }}{% endfor %} \
                 {{ range(3) | list }}{% set local = config.k %}{{ local }}",
                "x",
            )
            .unwrap();
        assert!(!template.is_typed());
        assert_eq!(template.references(), ["config.k", "input.a", "input.rows", "steps.row.x.y"]);
        let typed = set.compile_condition("{{ auth.email == input['email'] }}", "if").unwrap();
        assert!(typed.is_typed());
        assert_eq!(typed.references(), ["auth.email", "input"]);
    }

    #[test]
    fn one_off_helpers_take_a_json_context() {
        let context = json!({
            "input": { "n": 5 },
            "config": { "slackChannelId": "C123" },
            "steps": { "row": { "updates": { "updatedRange": "A1" } } },
        });
        let value = json!({ "n": "{{ input.n }}", "c": "{{ config.slackChannelId }}", "r": "{{ steps.row.updates.updatedRange }}" });
        assert_eq!(resolve(&value, &context, "body").unwrap(), json!({ "n": 5, "c": "C123", "r": "A1" }));
        assert_eq!(resolve(&json!("{{ auth.email }}"), &context, "body").unwrap_err().path, "body");
        assert!(eval_condition("input.n == 5", &context, "if").unwrap());
        assert!(!eval_condition("{{ input.n != 5 }}", &context, "if").unwrap());
    }

    #[test]
    fn compiled_templates_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TemplateSet>();
        assert_send_sync::<CompiledValue>();
        assert_send_sync::<TemplateContext>();

        let mut set = TemplateSet::new();
        let compiled = set.compile_value(&json!({ "n": "{{ input.n }}" }), "x").unwrap();
        let set = Arc::new(set);
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let (set, compiled) = (Arc::clone(&set), compiled.clone());
                std::thread::spawn(move || {
                    let context = TemplateContext::from_json(&json!({ "input": { "n": n } }));
                    set.resolve(&compiled, &context).unwrap()
                })
            })
            .collect();
        let results: Vec<Value> = handles.into_iter().map(|handle| handle.join().unwrap()).collect();
        assert_eq!(results, [json!({ "n": 0 }), json!({ "n": 1 }), json!({ "n": 2 }), json!({ "n": 3 })]);
    }
}

#[cfg(test)]
mod fuel_tests {
    use serde_json::json;

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let context = json!({ "input": {} });
        let runaway = json!("{% for i in range(100000) %}{{ i }}{% endfor %}");
        let error = super::resolve(&runaway, &context, "steps[0].response.body").unwrap_err();
        assert!(error.to_string().contains("fuel"), "{error}");
        let small = json!("{% for i in range(3) %}{{ i }}{% endfor %}");
        assert_eq!(super::resolve(&small, &context, "x").unwrap(), json!("012"));
    }
}
