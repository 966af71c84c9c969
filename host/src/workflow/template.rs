//! Templates in step inputs and `if` conditions: `{{ expr }}` over the run's variables
//! `input`, `auth`, `config`, `app`, `steps` and `run` (the language and its typing rules:
//! [`stage_templates`]).
//!
//! Templates are tenant code, and an anonymous caller of a public workflow chooses their
//! inputs. Even compiling one can do unbounded work (minijinja folds constant expressions
//! such as `'x' * 100000000` at compile time). So the host never compiles or evaluates a
//! template itself: [`TemplateEngine`] hands them to the template sandbox, a wasm component
//! run like a step — a fresh instance per call, under a memory limit, a wall time and an
//! output budget — so that no filter, function, operator or argument can exhaust or block
//! the host. When a workflow file is loaded, the sandbox checks every template of it once
//! ([`TemplateEngine::check`]); [`TemplateSet`] then keeps each template's source and the
//! variables it reads. A template that passes a bound fails with a
//! [`TemplateErrorKind::Limit`] error naming it.
//!
//! The one thing the host does itself is what most templates are: looking a variable up
//! (`{{ input.email }}`, `"Hello {{ auth.name }}"`). A lookup only copies a value the run
//! already holds, and the copy is charged to the same output budget, so the common case
//! costs no sandbox call.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};
use stage_templates::{Action, Checked, Job, JobTemplate, Outcome};

use super::path;
use super::sandbox::HostSandbox;
use stage_runtime::{Identity, Limits, Policy, PreparedStep, Runtime, StepCall, StepContext};

pub use stage_templates::{Mode, ROOTS, is_template};

/// The template sandbox component, built from `guests/templates` by `build.rs`.
const SANDBOX_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guests/templates.wasm"));

/// A template that did not compile, did not evaluate, or passed a bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{path}: {message}")]
pub struct TemplateError {
    /// JSON path of the templated field, e.g. `steps[0].sheets.appendValues.values[0][1]`.
    pub path: String,
    pub message: String,
    pub kind: TemplateErrorKind,
}

/// What went wrong with a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateErrorKind {
    /// It does not compile, reads an undefined variable, or its expression failed.
    Invalid,
    /// It passed the memory, time or output bound of template evaluation.
    Limit,
}

impl TemplateError {
    fn invalid(path: &str, message: impl Into<String>) -> TemplateError {
        TemplateError { path: path.to_string(), message: message.into(), kind: TemplateErrorKind::Invalid }
    }

    fn limit(path: &str, message: impl Into<String>) -> TemplateError {
        TemplateError { path: path.to_string(), message: message.into(), kind: TemplateErrorKind::Limit }
    }
}

/// What the sandbox found of each template of a file, by source and mode.
pub type Checks = HashMap<(String, Mode), Result<Checked, String>>;

/// Compiles the templates of a workflow file from what the sandbox found of them
/// ([`TemplateEngine::check`]). Keeps nothing but what each template needs.
#[derive(Debug, Default)]
pub struct TemplateSet {
    checks: Checks,
}

/// One parsed template string or `if` expression, with where it was written.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    source: String,
    path: String,
    mode: Mode,
    typed: bool,
    references: Vec<String>,
    /// How the host resolves it without the sandbox, when it only looks variables up.
    lookup: Option<Lookup>,
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

/// A JSON value whose template strings are parsed; resolving it yields plain JSON.
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
    /// A set that compiles the templates in `checks` (any other is reported unchecked).
    pub fn new(checks: Checks) -> TemplateSet {
        TemplateSet { checks }
    }

    /// Parses every template string inside `value`, whose JSON path is `path`. Reports
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

    /// Parses one template string: a lone `{{ expr }}` as a typed expression, anything
    /// else as text.
    pub fn compile_string(&mut self, text: &str, path: &str) -> Result<CompiledTemplate, TemplateError> {
        self.compile(text, path, Mode::Value)
    }

    /// Parses an `if` condition, written bare (`input.n > 1`) or wrapped (`{{ input.n > 1 }}`).
    pub fn compile_condition(&mut self, condition: &str, path: &str) -> Result<CompiledTemplate, TemplateError> {
        self.compile(condition, path, Mode::Condition)
    }

    fn compile(&mut self, source: &str, path: &str, mode: Mode) -> Result<CompiledTemplate, TemplateError> {
        let checked = match self.checks.get(&(source.to_string(), mode)) {
            Some(Ok(checked)) => checked.clone(),
            Some(Err(message)) => return Err(TemplateError::invalid(path, message.clone())),
            None => return Err(TemplateError::invalid(path, format!("`{source}` was not checked"))),
        };
        Ok(CompiledTemplate {
            source: source.to_string(),
            path: path.to_string(),
            mode,
            typed: checked.typed,
            references: checked.references,
            lookup: Lookup::parse(source, mode),
        })
    }
}

/// A template that only looks variables up, resolved by the host: a lone `{{ a.b.c }}`
/// (typed, or a condition), or text with `{{ a.b }}` holes and no other tags.
///
/// Recognised by hand rather than with minijinja's parser because the host must not
/// depend on the evaluating half of the template engine, and because the grammar is tiny:
/// dotted identifiers between `{{ ` and ` }}`. Anything else (filters, operators, indexes,
/// whitespace control, statements, comments) is left to the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    Value(Vec<String>),
    Text(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Variable(Vec<String>),
}

impl Lookup {
    fn parse(source: &str, mode: Mode) -> Option<Lookup> {
        let lone = stage_templates::lone_expression(source);
        match (mode, lone) {
            (Mode::Condition, _) => Some(Lookup::Value(variable_path(lone.unwrap_or(source))?)),
            (Mode::Value, Some(expression)) => {
                // `{{- x -}}` trims nothing around a lone expression, but keep it simple.
                if source.contains("{{-") || source.contains("-}}") || source.contains("{{+") || source.contains("+}}")
                {
                    return None;
                }
                Some(Lookup::Value(variable_path(expression)?))
            }
            (Mode::Value, None) => {
                if source.contains("{%") || source.contains("{#") {
                    return None;
                }
                let mut pieces = Vec::new();
                let mut rest = source;
                while let Some(start) = rest.find("{{") {
                    let end = start + rest[start..].find("}}")?;
                    let expression = &rest[start + 2..end];
                    if expression.starts_with(['-', '+']) || expression.ends_with(['-', '+']) {
                        return None;
                    }
                    if start > 0 {
                        pieces.push(Piece::Literal(rest[..start].to_string()));
                    }
                    pieces.push(Piece::Variable(variable_path(expression)?));
                    rest = &rest[end + 2..];
                }
                if rest.contains("}}") {
                    return None;
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Literal(rest.to_string()));
                }
                Some(Lookup::Text(pieces))
            }
        }
    }
}

/// `input.email` as `["input", "email"]`: dotted identifiers starting at one of [`ROOTS`].
fn variable_path(expression: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = expression.trim().split('.').map(str::to_string).collect();
    let identifier = |segment: &String| {
        let mut chars = segment.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (ROOTS.contains(&segments[0].as_str()) && segments.iter().all(identifier)).then_some(segments)
}

/// The variables of one run: `input`, `auth`, `config`, `app` and `run`, plus `steps.<id>`
/// as outputs arrive.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    roots: Map<String, Value>,
}

impl TemplateContext {
    pub fn new(input: &Value, auth: &Value, config: &Value, app: &Value, run: &Value) -> TemplateContext {
        let mut roots = Map::new();
        for (name, value) in [("input", input), ("auth", auth), ("config", config), ("app", app), ("run", run)] {
            roots.insert(name.to_string(), value.clone());
        }
        roots.insert("steps".to_string(), Value::Object(Map::new()));
        TemplateContext { roots }
    }

    /// A context from one JSON object with (some of) the keys `input`, `auth`, `config`,
    /// `app`, `steps` (an object of step outputs by id) and `run`; other keys are ignored.
    pub fn from_json(context: &Value) -> TemplateContext {
        let mut roots: Map<String, Value> = context
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| ROOTS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        roots.entry("steps").or_insert_with(|| Value::Object(Map::new()));
        TemplateContext { roots }
    }

    /// Makes a step's output visible to later templates as `steps.<id>`.
    pub fn insert_step_output(&mut self, id: &str, output: &Value) {
        if let Some(Value::Object(steps)) = self.roots.get_mut("steps") {
            steps.insert(id.to_string(), output.clone());
        }
    }

    /// The value at `path`, if every segment names a field of an object.
    fn lookup(&self, path: &[String]) -> Option<&Value> {
        let (root, rest) = path.split_first()?;
        rest.iter().try_fold(self.roots.get(root)?, |value, segment| value.as_object()?.get(segment))
    }

    /// The part of the context `references` read: a root whole when a template reads it
    /// whole (`input`, `input[k]`), else only the fields read (`input.email`).
    fn pruned(&self, references: &[&str]) -> Map<String, Value> {
        let mut whole = Vec::new();
        let mut fields = Vec::new();
        for reference in references {
            let mut segments = reference.split('.');
            let root = segments.next().unwrap_or_default();
            match (segments.next(), self.roots.get(root)) {
                (Some(field), Some(Value::Object(_))) => fields.push((root, field)),
                (_, Some(_)) => whole.push(root),
                (_, None) => {}
            }
        }
        let mut pruned = Map::new();
        for root in &whole {
            pruned.insert(root.to_string(), self.roots[*root].clone());
        }
        for (root, field) in fields {
            if whole.contains(&root) {
                continue;
            }
            // The root is kept even when the field is missing, so that the sandbox names it.
            let kept = pruned.entry(root).or_insert_with(|| Value::Object(Map::new()));
            if let (Value::Object(kept), Some(item)) = (kept, self.roots[root].get(field)) {
                kept.insert(field.to_string(), item.clone());
            }
        }
        pruned
    }
}

/// Bounds of template evaluation besides the step's wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    /// Linear memory of the template sandbox.
    pub memory_bytes: usize,
    /// Bytes all the templates of one step input (or one condition) may produce, as JSON.
    pub output_bytes: usize,
}

impl Default for TemplateLimits {
    fn default() -> TemplateLimits {
        TemplateLimits { memory_bytes: 64 * 1024 * 1024, output_bytes: 4 * 1024 * 1024 }
    }
}

/// Whose templates are evaluated, and for how long at most.
#[derive(Debug, Clone)]
pub struct EvaluationScope {
    pub identity: Identity,
    pub run_id: String,
    pub workflow: String,
    /// The step's label, naming the evaluation in logs.
    pub step: String,
    pub wall_time: Duration,
}

/// Evaluates parsed templates: lookups in the host, everything else in the sandbox.
pub struct TemplateEngine {
    runtime: Arc<Runtime>,
    sandbox: HostSandbox,
    limits: TemplateLimits,
}

impl TemplateEngine {
    pub fn new(runtime: Arc<Runtime>, limits: TemplateLimits) -> TemplateEngine {
        TemplateEngine { sandbox: HostSandbox::new(SANDBOX_WASM), runtime, limits }
    }

    /// Compiles (or loads) the sandbox component now rather than at the first evaluation.
    pub async fn warm(&self) -> anyhow::Result<()> {
        self.prepared().await.map(|_| ())
    }

    async fn prepared(&self) -> anyhow::Result<&PreparedStep> {
        self.sandbox.prepared(&self.runtime).await
    }

    /// Checks `templates` (each a source and how it is used) in the sandbox: what each is,
    /// or why it does not compile. The sandbox gets `wall_time` and room for its answer.
    pub async fn check(
        &self,
        templates: &[(String, Mode)],
        identity: &Identity,
        wall_time: Duration,
    ) -> Result<Checks, TemplateError> {
        if templates.is_empty() {
            return Ok(Checks::new());
        }
        let job = Job {
            action: Action::Check,
            templates: templates
                .iter()
                .map(|(source, mode)| JobTemplate { source: source.as_str().into(), mode: *mode })
                .collect(),
            context: Value::Null,
        };
        let scope = EvaluationScope {
            identity: identity.clone(),
            run_id: String::new(),
            workflow: String::new(),
            step: "check".into(),
            wall_time,
        };
        let input = serde_json::to_string(&job).map_err(|e| TemplateError::invalid("", e.to_string()))?;
        // An answer lists each template's references: a few times the sources at most.
        let output_bytes = input.len().saturating_mul(4).saturating_add(64 * 1024);
        let name = || format!("checking the file's templates ({})", templates.len());
        let outcomes = self.call("", input, templates.len(), &scope, (output_bytes, output_bytes), name).await?;
        Ok(templates
            .iter()
            .cloned()
            .zip(outcomes)
            .map(|(key, outcome)| match outcome {
                Outcome::Checked(checked) => (key, Ok(checked)),
                Outcome::Error(message) => (key, Err(message)),
                Outcome::Value(_) => (key, Err("the template sandbox answered a value to a check".into())),
            })
            .collect())
    }

    /// Resolves a compiled value to JSON.
    pub async fn resolve(
        &self,
        value: &CompiledValue,
        context: &TemplateContext,
        scope: &EvaluationScope,
    ) -> Result<Value, TemplateError> {
        let templates = value.templates();
        let values = self.evaluate(&templates, context, scope).await?;
        let mut values = values.into_iter();
        Ok(assemble(value, &mut values))
    }

    /// Evaluates a condition for its truthiness: false, 0, "", [], {} and null are false.
    pub async fn condition(
        &self,
        template: &CompiledTemplate,
        context: &TemplateContext,
        scope: &EvaluationScope,
    ) -> Result<bool, TemplateError> {
        let value = self.evaluate(&[template], context, scope).await?.remove(0);
        Ok(truthy(&value))
    }

    /// The values of `templates`, in order: lookups copied here within the output budget,
    /// the rest from one sandbox call.
    async fn evaluate(
        &self,
        templates: &[&CompiledTemplate],
        context: &TemplateContext,
        scope: &EvaluationScope,
    ) -> Result<Vec<Value>, TemplateError> {
        let mut budget = Budget { remaining: self.limits.output_bytes, limit: self.limits.output_bytes };
        let mut values: Vec<Option<Value>> = Vec::with_capacity(templates.len());
        for template in templates {
            values.push(look_up(template, context, &mut budget)?);
        }
        let pending: Vec<&CompiledTemplate> =
            templates.iter().zip(&values).filter(|(_, value)| value.is_none()).map(|(t, _)| *t).collect();
        if !pending.is_empty() {
            let mut sandboxed = self.sandboxed(&pending, context, scope, budget.remaining).await?.into_iter();
            for value in values.iter_mut().filter(|value| value.is_none()) {
                *value = sandboxed.next();
            }
        }
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Evaluates `templates` in the sandbox, allowing them `output_bytes` in all.
    async fn sandboxed(
        &self,
        templates: &[&CompiledTemplate],
        context: &TemplateContext,
        scope: &EvaluationScope,
        output_bytes: usize,
    ) -> Result<Vec<Value>, TemplateError> {
        let first = templates[0];
        let references: Vec<&str> =
            templates.iter().flat_map(|template| template.references.iter().map(String::as_str)).collect();
        let job = Job {
            action: Action::Evaluate,
            templates: templates
                .iter()
                .map(|template| JobTemplate { source: template.source.as_str().into(), mode: template.mode })
                .collect(),
            context: context.pruned(&references),
        };
        let input = serde_json::to_string(&job).map_err(|e| TemplateError::invalid(&first.path, e.to_string()))?;
        // The outcomes' JSON framing around the values.
        let room = output_bytes.saturating_add(templates.len() * 16 + 2);
        let name = || match templates {
            [only] => format!("`{}`", only.source),
            _ => format!("the templates of step {}", scope.step),
        };
        let outcomes = self.call(&first.path, input, templates.len(), scope, (room, output_bytes), name).await?;
        templates
            .iter()
            .zip(outcomes)
            .map(|(template, outcome)| match outcome {
                Outcome::Value(value) => Ok(value),
                Outcome::Error(message) => Err(TemplateError::invalid(&template.path, message)),
                Outcome::Checked(_) => {
                    Err(TemplateError::limit(&template.path, "the template sandbox answered a check"))
                }
            })
            .collect()
    }

    /// One sandbox call with `input` (a [`Job`] of `count` templates): its outcomes, or why
    /// it ended early, as an error at `path` about what `name` says. `output` is the room
    /// the answer gets and the budget an error names (the templates' share of that room).
    async fn call(
        &self,
        path: &str,
        input: String,
        count: usize,
        scope: &EvaluationScope,
        (output_bytes, budget): (usize, usize),
        name: impl Fn() -> String,
    ) -> Result<Vec<Outcome>, TemplateError> {
        let sandbox = self
            .prepared()
            .await
            .map_err(|e| TemplateError::limit(path, format!("the template sandbox is unavailable: {e:#}")))?;
        let limits = Limits {
            wall_time_ms: scope.wall_time.as_millis().max(1) as u64,
            memory_bytes: self.limits.memory_bytes,
            outbound_requests: 0,
            outbound_bytes: 0,
            output_bytes,
            input_bytes: input.len(),
            log_bytes: 4 * 1024,
        };
        let call = StepCall {
            context: StepContext {
                run_id: scope.run_id.clone(),
                app_sid: scope.identity.app_sid.clone().unwrap_or_default(),
                workflow: scope.workflow.clone(),
                step_id: scope.step.clone(),
                attempt: 1,
                idempotency_key: String::new(),
            },
            input,
            identity: scope.identity.clone(),
            policy: Arc::new(Policy::default()),
            limits,
        };
        let invocation = self.runtime.invoke_step(sandbox, call).await;
        let text = invocation.outcome.map_err(|failure| {
            let why = super::sandbox::ended(failure, &invocation.stderr, budget);
            TemplateError::limit(path, format!("{} {why}", name()))
        })?;
        let outcomes: Vec<Outcome> = serde_json::from_str(&text)
            .map_err(|e| TemplateError::limit(path, format!("the template sandbox answered garbage: {e}")))?;
        if outcomes.len() != count {
            return Err(TemplateError::limit(path, "the template sandbox answered the wrong number of outcomes"));
        }
        Ok(outcomes)
    }
}

/// The output budget of one evaluation.
struct Budget {
    remaining: usize,
    limit: usize,
}

impl Budget {
    /// Charges `value`'s JSON size, walking no further than the budget allows.
    fn charge(&mut self, value: &Value, template: &CompiledTemplate) -> Result<(), TemplateError> {
        match json_size_within(value, self.remaining) {
            Some(size) => {
                self.remaining -= size;
                Ok(())
            }
            None => Err(TemplateError::limit(
                &template.path,
                format!("`{}` produced more than {} bytes", template.source, self.limit),
            )),
        }
    }
}

/// The size of `value` as JSON (near enough: strings without escapes), or `None` once it
/// passes `limit`. Visits at most `limit` bytes' worth of the value.
fn json_size_within(value: &Value, limit: usize) -> Option<usize> {
    fn walk(value: &Value, total: &mut usize, limit: usize) -> Option<()> {
        *total += match value {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 20,
            Value::String(text) => text.len() + 2,
            Value::Array(items) => {
                for item in items {
                    walk(item, total, limit)?;
                }
                items.len() + 2
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    *total += key.len() + 4;
                    walk(item, total, limit)?;
                }
                2
            }
        };
        (*total <= limit).then_some(())
    }
    let mut total = 0;
    walk(value, &mut total, limit).map(|()| total)
}

/// A template's value when the host can look it up (within the budget), `None` when the
/// sandbox must evaluate it (it is not a lookup, or a variable is missing or not text, so
/// that the sandbox's answer — value or error — is the one the language defines).
fn look_up(
    template: &CompiledTemplate,
    context: &TemplateContext,
    budget: &mut Budget,
) -> Result<Option<Value>, TemplateError> {
    let value = match &template.lookup {
        None => return Ok(None),
        Some(Lookup::Value(path)) => match context.lookup(path) {
            Some(value) => match template.mode {
                Mode::Condition => Value::Bool(truthy(value)),
                Mode::Value => {
                    budget.charge(value, template)?;
                    return Ok(Some(value.clone()));
                }
            },
            None => return Ok(None),
        },
        Some(Lookup::Text(pieces)) => {
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Piece::Literal(literal) => text.push_str(literal),
                    Piece::Variable(path) => match context.lookup(path) {
                        Some(Value::String(value)) => text.push_str(value),
                        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
                            text.push_str(&number.to_string())
                        }
                        _ => return Ok(None),
                    },
                }
                if text.len() > budget.remaining {
                    return Err(TemplateError::limit(
                        &template.path,
                        format!("`{}` produced more than {} bytes", template.source, budget.limit),
                    ));
                }
            }
            Value::String(text)
        }
    };
    budget.charge(&value, template)?;
    Ok(Some(value))
}

/// Truthiness as the template language defines it.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
    }
}

/// `value` with its templates replaced by `values`, taken in document order.
fn assemble(value: &CompiledValue, values: &mut impl Iterator<Item = Value>) -> Value {
    match value {
        CompiledValue::Literal(value) => value.clone(),
        CompiledValue::Template(_) => values.next().unwrap_or_default(),
        CompiledValue::Array(items) => Value::Array(items.iter().map(|item| assemble(item, values)).collect()),
        CompiledValue::Object(entries) => {
            Value::Object(entries.iter().map(|(key, item)| (key.clone(), assemble(item, values))).collect())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use stage_runtime::{NoServices, RuntimeConfig};

    /// `sources` checked by the engine the sandbox runs, in process (unit tests of what the
    /// host does with the checks).
    pub(crate) fn check_in_process(sources: Vec<(String, Mode)>) -> Checks {
        let checker = stage_templates::Checker::new();
        sources
            .into_iter()
            .map(|(source, mode)| {
                let checked = checker.check(&source, mode);
                ((source, mode), checked)
            })
            .collect()
    }

    /// `value`'s templates as compiled from an in-process check.
    fn compile(value: Value) -> CompiledValue {
        let mut sources = Vec::new();
        collect_sources(&value, &mut sources);
        TemplateSet::new(check_in_process(sources)).compile_value(&value, "field").expect("compiles")
    }

    fn collect_sources(value: &Value, out: &mut Vec<(String, Mode)>) {
        match value {
            Value::String(text) if is_template(text) => out.push((text.clone(), Mode::Value)),
            Value::Array(items) => items.iter().for_each(|item| collect_sources(item, out)),
            Value::Object(fields) => fields.values().for_each(|item| collect_sources(item, out)),
            _ => {}
        }
    }

    /// A template engine on a real runtime; the compiled sandbox is shared between tests
    /// through its on-disk artifact.
    pub(crate) fn engine(limits: TemplateLimits) -> TemplateEngine {
        let config = RuntimeConfig {
            compiled_dir: std::env::temp_dir().join("stage-template-tests"),
            default_limits: Limits::default(),
            allow_private_egress: false,
            max_wall_time_ms: 60_000,
            quotas: stage_runtime::Quotas::default(),
            components: stage_cache::CacheLimits { max_entries: 16, max_weight: u64::MAX },
            reserved_instances: 0,
        };
        TemplateEngine::new(
            Arc::new(Runtime::new(config, Arc::new(NoServices(stage_runtime::net::Outbound::new()))).unwrap()),
            limits,
        )
    }

    pub(crate) fn scope(wall_time: Duration) -> EvaluationScope {
        EvaluationScope {
            identity: Identity { tenant_id: "t".into(), app_sid: Some("app_1".into()), actor_email: None },
            run_id: "run_1".into(),
            workflow: "w".into(),
            step: "s".into(),
            wall_time,
        }
    }

    /// Resolves `value` with a fresh engine on default limits.
    pub(crate) async fn resolve(value: &CompiledValue, context: &TemplateContext) -> Result<Value, TemplateError> {
        engine(TemplateLimits::default()).resolve(value, context, &scope(Duration::from_secs(10))).await
    }

    /// Evaluates a condition with a fresh engine on default limits.
    pub(crate) async fn condition(
        template: &CompiledTemplate,
        context: &TemplateContext,
    ) -> Result<bool, TemplateError> {
        engine(TemplateLimits::default()).condition(template, context, &scope(Duration::from_secs(10))).await
    }

    #[test]
    fn lookups_are_recognised_and_everything_else_is_left_to_the_sandbox() {
        let lookup = |source: &str| Lookup::parse(source, Mode::Value);
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(lookup("{{ input.email }}"), Some(Lookup::Value(path("input.email"))));
        assert_eq!(lookup(" {{steps.row.updates}} "), Some(Lookup::Value(path("steps.row.updates"))));
        assert_eq!(
            lookup("Hi {{ auth.name }}, {{ input.n }}!"),
            Some(Lookup::Text(vec![
                Piece::Literal("Hi ".into()),
                Piece::Variable(path("auth.name")),
                Piece::Literal(", ".into()),
                Piece::Variable(path("input.n")),
                Piece::Literal("!".into()),
            ]))
        );
        for sandboxed in [
            "{{ input.email | upper }}",
            "{{ input['email'] }}",
            "{{ input.items[0] }}",
            "{{ input.n + 1 }}",
            "{{- input.n -}}",
            "a {{- input.n }}",
            "{% if input.n %}x{% endif %}",
            "a{# c #}b",
            "{{ nope.x }}",
            "{{ range }}",
            "{{ input.1x }}",
        ] {
            assert_eq!(lookup(sandboxed), None, "{sandboxed}");
        }
        assert_eq!(Lookup::parse("input.flag", Mode::Condition), Some(Lookup::Value(path("input.flag"))));
        assert_eq!(Lookup::parse("input.n > 1", Mode::Condition), None);
    }

    #[test]
    fn lookups_resolve_in_the_host_within_the_budget() {
        let context = TemplateContext::from_json(&json!({
            "input": { "email": "a@b.c", "n": 5, "f": 1.5, "big": "x".repeat(100), "obj": { "z": 1, "a": [1] } },
        }));
        let mut budget = Budget { remaining: 1000, limit: 1000 };
        let value = |source: &str, budget: &mut Budget| {
            let CompiledValue::Template(template) = compile(json!(source)) else { panic!("{source}") };
            look_up(&template, &context, budget)
        };
        assert_eq!(value("{{ input.email }}", &mut budget), Ok(Some(json!("a@b.c"))));
        assert_eq!(value("{{ input.obj }}", &mut budget), Ok(Some(json!({ "z": 1, "a": [1] }))));
        assert_eq!(value("n={{ input.n }};{{ input.email }}", &mut budget), Ok(Some(json!("n=5;a@b.c"))));
        // Floats, objects and missing variables in text are the sandbox's to render.
        assert_eq!(value("f={{ input.f }}", &mut budget), Ok(None));
        assert_eq!(value("{{ input.missing }}", &mut budget), Ok(None));
        let mut small = Budget { remaining: 50, limit: 50 };
        let error = value("{{ input.big }}", &mut small).unwrap_err();
        assert_eq!(error.kind, TemplateErrorKind::Limit);
        assert_eq!(error.message, "`{{ input.big }}` produced more than 50 bytes");
    }

    #[test]
    fn the_sandbox_gets_only_what_its_templates_read() {
        let mut context = TemplateContext::from_json(&json!({
            "input": { "a": 1, "b": 2 }, "auth": { "email": "e" }, "config": { "k": 3 },
        }));
        context.insert_step_output("row", &json!({ "x": 1 }));
        context.insert_step_output("other", &json!({ "y": 2 }));
        assert_eq!(
            Value::Object(context.pruned(&["input.a", "steps.row.x", "auth"])),
            json!({ "input": { "a": 1 }, "steps": { "row": { "x": 1 } }, "auth": { "email": "e" } })
        );
        assert_eq!(Value::Object(context.pruned(&["input.a", "input"])), json!({ "input": { "a": 1, "b": 2 } }));
        assert_eq!(Value::Object(context.pruned(&["input", "input.a"])), json!({ "input": { "a": 1, "b": 2 } }));
    }

    #[test]
    fn sizes_are_measured_no_further_than_the_limit() {
        assert_eq!(json_size_within(&json!("abc"), 100), Some(5));
        assert_eq!(json_size_within(&json!({ "k": [1, "x"] }), 100), Some(2 + 5 + 20 + 3 + 4));
        let huge = Value::Array(vec![json!("x"); 1_000_000]);
        assert_eq!(json_size_within(&huge, 1000), None);
    }

    #[test]
    fn compile_errors_are_reported_for_every_template() {
        let value = json!({ "a": "{{ input. }}", "b": ["ok", "{% if input.n %}open"], "c": "{{ }}" });
        let mut sources = Vec::new();
        collect_sources(&value, &mut sources);
        let mut set = TemplateSet::new(check_in_process(sources));
        let errors = set.compile_value(&value, "x").unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["x.a", "x.b[1]", "x.c"]);
        assert_eq!(errors[2].message, "`{{ }}` has no expression");
        assert!(errors.iter().all(|error| error.kind == TemplateErrorKind::Invalid));
    }

    #[test]
    fn values_are_walked_and_keys_are_not_templated() {
        let compiled = compile(json!({
            "values": [["{{ input.email }}", "{{ input.n }}"]],
            "{{ input.n }}": "plain {text}",
            "nested": { "deep": ["x", "{{ input.flag }}"], "number": 7 }
        }));
        let sources: Vec<&str> = compiled.templates().iter().map(|t| t.source()).collect();
        assert_eq!(sources, ["{{ input.email }}", "{{ input.n }}", "{{ input.flag }}"]);
        let mut values = [json!("a@b.c"), json!(5), json!(true)].into_iter();
        assert_eq!(
            assemble(&compiled, &mut values),
            json!({
                "values": [["a@b.c", 5]],
                "{{ input.n }}": "plain {text}",
                "nested": { "deep": ["x", true], "number": 7 }
            })
        );
        let literal = json!({ "a": [1, "two", { "three": null }] });
        assert!(matches!(compile(literal.clone()), CompiledValue::Literal(value) if value == literal));
    }

    #[tokio::test]
    async fn expressions_are_evaluated_in_the_sandbox() {
        let context = TemplateContext::from_json(&json!({ "input": { "email": "a@b.c", "n": 5, "f": 1.5 } }));
        let value = compile(json!({
            "upper": "{{ input.email | upper }}", "sum": "{{ input.n + 1 }}", "plain": "{{ input.email }}",
            "text": "f={{ input.f }}", "list": "{% for i in range(3) %}{{ i }}{% endfor %}"
        }));
        assert_eq!(
            resolve(&value, &context).await.unwrap(),
            json!({ "upper": "A@B.C", "sum": 6, "plain": "a@b.c", "text": "f=1.5", "list": "012" })
        );
        let error = resolve(&compile(json!({ "x": ["{{ input.nope | upper }}"] })), &context).await.unwrap_err();
        assert_eq!(
            error,
            TemplateError::invalid("field.x[0]", "undefined variable `input.nope` in `{{ input.nope | upper }}`")
        );
        let condition_source = "input.n > 3 and input.email is startingwith('a')";
        let mut set = TemplateSet::new(check_in_process(vec![(condition_source.into(), Mode::Condition)]));
        let holds = set.compile_condition(condition_source, "if").unwrap();
        assert!(condition(&holds, &context).await.unwrap());
    }

    #[tokio::test]
    async fn templates_that_pass_a_bound_fail_with_a_limit_error() {
        let engine = engine(TemplateLimits { memory_bytes: 16 * 1024 * 1024, output_bytes: 64 * 1024 });
        let context =
            TemplateContext::from_json(&json!({ "input": { "n": 1_000_000_000u64, "huge": 35184372088832u64 } }));
        let scope = scope(Duration::from_secs(2));
        for (template, why) in [
            ("{{ 'x' * 100000000 }}", "needed more than 16 MiB of memory"),
            ("{{ 'a' | indent(input.n) }}", "needed more than 16 MiB of memory"),
            ("{{ input | tojson(indent=1000000000) }}", "needed more than 16 MiB of memory"),
            ("{{ (('x' * 10000000) ~ ('x' * 10000000)) | length }}", "needed more than 16 MiB of memory"),
            ("{{ ([1] * 100000000) | sum }}", "took longer than 2000 ms"),
            ("{{ 'x' * 100000 }}", "produced more than 65536 bytes"),
        ] {
            let error = engine.resolve(&compile(json!(template)), &context, &scope).await.unwrap_err();
            assert_eq!(error.kind, TemplateErrorKind::Limit, "{template}: {error}");
            assert!(error.message.contains(why), "{template}: {}", error.message);
        }
        // Sizes past what the sandbox can even address are refused as arguments.
        for template in [
            "{{ 'a' | indent(9223372036854775808) }}",
            "{{ 'a' | indent(4000000000) }}",
            "{{ input | tojson(indent=input.huge) }}",
        ] {
            assert!(engine.resolve(&compile(json!(template)), &context, &scope).await.is_err(), "{template}");
        }
    }

    #[tokio::test]
    async fn a_slow_template_stops_at_the_step_deadline() {
        let engine = engine(TemplateLimits { memory_bytes: 256 * 1024 * 1024, output_bytes: 1024 });
        let context = TemplateContext::from_json(&json!({ "input": {} }));
        let slow = compile(json!("{{ ([3, 1, 2] * 2000000) | sort | join(',') | length }}"));
        let error = engine.resolve(&slow, &context, &scope(Duration::from_millis(50))).await.unwrap_err();
        assert_eq!(error.kind, TemplateErrorKind::Limit, "{error}");
        assert!(error.message.ends_with("took longer than 50 ms"), "{}", error.message);
    }

    #[tokio::test]
    async fn the_sandbox_checks_templates_even_those_that_fold_into_huge_constants() {
        let engine = engine(TemplateLimits { memory_bytes: 16 * 1024 * 1024, output_bytes: 1024 });
        let identity = scope(Duration::ZERO).identity;
        let sources =
            vec![("{{ input.a | upper }}".to_string(), Mode::Value), ("input.n >".to_string(), Mode::Condition)];
        let checks = engine.check(&sources, &identity, Duration::from_secs(10)).await.unwrap();
        assert_eq!(checks[&sources[0]], Ok(Checked { typed: true, references: vec!["input.a".into()] }));
        assert!(checks[&sources[1]].as_ref().unwrap_err().starts_with("`input.n >` does not compile"));

        // minijinja folds constant expressions when it compiles: in the sandbox, bounded.
        let folded = vec![("{{ ('x' * 100000000) ~ ('x' * 100000000) }}".to_string(), Mode::Value)];
        let error = engine.check(&folded, &identity, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(error.kind, TemplateErrorKind::Limit);
        assert_eq!(error.message, "checking the file's templates (1) needed more than 16 MiB of memory");
    }
}
