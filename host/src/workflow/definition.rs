//! The workflow file, `/app/shift.workflows.json`: its types, and [`parse`], which checks
//! it against a [`StepCatalog`] and compiles its templates once.
//!
//! ```json
//! { "version": 1, "config": { "slackChannelId": "C123" },
//!   "workflows": { "notify": { "auth": "public", "steps": [
//!     { "id": "row", "if": "input.amount > 100", "retry": { "maxAttempts": 2 },
//!       "sheets.appendValues": { "spreadsheetId": "{{ input.sheet }}", "range": "A1", "values": [] } },
//!     { "response": { "body": { "range": "{{ steps.row.updates.updatedRange }}" } } } ] } } }
//! ```
//!
//! Validation reports every [`Problem`] at once, each with the JSON path of the field.

use std::fmt;

use indexmap::{IndexMap, IndexSet};
use serde::Serialize;
use serde_json::{Map, Value};

use super::path::{self, did_you_mean, is_identifier, quoted_list};
use super::template::{Checks, CompiledTemplate, CompiledValue, Mode, ROOTS, TemplateError, TemplateSet, is_template};
use super::{StepCatalog, StepSpec};
pub use stage_runtime::retry::{Jitter, RetryPolicy};

/// The step kind whose output is the run's HTTP answer.
pub const RESPONSE_KIND: &str = "response";

/// Where a session keeps its workflow file.
pub const FILE_PATH: &str = "/app/shift.workflows.json";
/// The only `version` this server reads.
pub const VERSION: u64 = 1;
/// The most retries a step may ask for.
pub const MAX_RETRY_ATTEMPTS: u32 = stage_runtime::retry::MAX_ATTEMPTS;
/// Longest `intervalMs`, `maxDelayMs` and `timeoutMs` (one hour); also the longest wait
/// before any retry, whatever the backoff.
pub use stage_runtime::retry::MAX_DURATION_MS;

const FILE_FIELDS: [&str; 3] = ["version", "config", "workflows"];
const WORKFLOW_FIELDS: [&str; 2] = ["auth", "steps"];
const STEP_FIELDS: [&str; 5] = ["id", "if", "retry", "timeoutMs", "continueOnError"];
const RETRY_FIELDS: [&str; 5] = ["maxAttempts", "intervalMs", "backoffRate", "maxDelayMs", "jitter"];
const AUTH_FIELDS: [&str; 3] = ["email", "name", "userId"];
const APP_FIELDS: [&str; 3] = ["sid", "name", "version"];
const RUN_FIELDS: [&str; 2] = ["id", "startedAt"];
/// Up to this many known kinds are listed when a step names an unknown one.
const LISTED_KINDS: usize = 20;

/// Something wrong in a workflow file, at a JSON path such as
/// `workflows.appendWebhookRow.steps[2].response.body.updatedRange` (empty for the whole file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// A parsed, valid workflow file with its templates compiled. Cheap to clone; share it
/// (e.g. in an `Arc`) between runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowFile {
    pub version: u64,
    /// The file's `config`; the app's config is merged over it at run time.
    pub config: Map<String, Value>,
    pub workflows: IndexMap<String, Workflow>,
}

/// Who may run a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthPolicy {
    /// The caller presents an API key or a verified end-user token.
    #[default]
    Required,
    /// Anyone may run it.
    Public,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    pub name: String,
    pub auth: AuthPolicy,
    pub steps: Vec<StepDef>,
}

/// One step of a workflow.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepDef {
    /// Position in the workflow, from 0 (the `2` of `steps[2]`).
    pub index: usize,
    pub id: Option<String>,
    /// The step-kind key, e.g. `sheets.appendValues`.
    pub kind: String,
    /// The input as written, templates unresolved.
    pub input: Value,
    /// The `if` expression as written; the step is skipped when it is falsy.
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub continue_on_error: bool,
    #[serde(skip)]
    compiled_input: CompiledValue,
    #[serde(skip)]
    compiled_condition: Option<CompiledTemplate>,
}

impl StepDef {
    /// The step's id, or `#index` for steps without one.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("#{}", self.index),
        }
    }

    /// The input with its templates compiled.
    pub fn compiled_input(&self) -> &CompiledValue {
        &self.compiled_input
    }

    /// The compiled `if` expression.
    pub fn compiled_condition(&self) -> Option<&CompiledTemplate> {
        self.compiled_condition.as_ref()
    }
}

impl WorkflowFile {
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.get(name)
    }
}

/// Parses and validates a workflow file whose templates the sandbox checked (`checks`, from
/// [`template_sources`]). Either every workflow is valid and its templates compiled, or
/// every problem found is returned.
pub fn parse(bytes: &[u8], catalog: &dyn StepCatalog, checks: Checks) -> Result<WorkflowFile, Vec<Problem>> {
    let document: Value = match serde_json::from_slice(bytes) {
        Ok(document) => document,
        Err(error) => return Err(vec![Problem::new("", format!("the file is not valid JSON: {error}"))]),
    };
    let mut parser = Parser { catalog, templates: TemplateSet::new(checks), problems: Vec::new() };
    let file = parser.file(&document);
    match file {
        Some((version, config, workflows)) if parser.problems.is_empty() => {
            Ok(WorkflowFile { version, config, workflows })
        }
        _ => Err(parser.problems),
    }
}

/// Every template a workflow file may hold, each once: the templated strings of its steps
/// (as values) and its steps' `if`s (as conditions), for the sandbox to check before
/// [`parse`]. Nothing when the file is not JSON (`parse` says so).
pub fn template_sources(bytes: &[u8]) -> Vec<(String, Mode)> {
    fn strings(value: &Value, found: &mut IndexSet<(String, Mode)>) {
        match value {
            Value::String(text) if is_template(text) => {
                found.insert((text.clone(), Mode::Value));
            }
            Value::Array(items) => items.iter().for_each(|item| strings(item, found)),
            Value::Object(fields) => fields.values().for_each(|item| strings(item, found)),
            _ => {}
        }
    }
    let Ok(document) = serde_json::from_slice::<Value>(bytes) else { return Vec::new() };
    let mut found = IndexSet::new();
    let workflows = document.get("workflows").and_then(Value::as_object).into_iter().flat_map(|w| w.values());
    for step in workflows.filter_map(|w| w.get("steps")?.as_array()).flatten() {
        for (key, value) in step.as_object().into_iter().flatten() {
            match (key.as_str(), value) {
                ("if", Value::String(condition)) => {
                    found.insert((condition.clone(), Mode::Condition));
                }
                _ => strings(value, &mut found),
            }
        }
    }
    found.into_iter().collect()
}

type FileParts = (u64, Map<String, Value>, IndexMap<String, Workflow>);

struct Parser<'a> {
    catalog: &'a dyn StepCatalog,
    templates: TemplateSet,
    problems: Vec<Problem>,
}

/// The step ids of a workflow by position, as seen from one step.
struct Scope<'a> {
    index: usize,
    ids: &'a [Option<String>],
}

impl Parser<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn unknown_fields(&mut self, object: &Map<String, Value>, at: &str, known: &[&str]) {
        for key in object.keys().filter(|key| !known.contains(&key.as_str())) {
            let hint = did_you_mean(key, known.iter().copied());
            let message = format!("unknown field `{key}`{hint} (expected {})", quoted_list(known.iter().copied()));
            self.problem(path::key(at, key), message);
        }
    }

    fn file(&mut self, document: &Value) -> Option<FileParts> {
        let Some(object) = document.as_object() else {
            self.problem("", "the file must be a JSON object with `version`, `config` and `workflows`");
            return None;
        };
        self.unknown_fields(object, "", &FILE_FIELDS);
        match object.get("version") {
            None => self.problem("version", format!("missing; the file must declare \"version\": {VERSION}")),
            Some(version) if version.as_u64() == Some(VERSION) => {}
            Some(other) => self.problem("version", format!("unsupported version {other}; only {VERSION} is supported")),
        }
        let config = match object.get("config") {
            None => Map::new(),
            Some(Value::Object(config)) => config.clone(),
            Some(_) => {
                self.problem("config", "must be an object");
                Map::new()
            }
        };
        let mut workflows = IndexMap::new();
        match object.get("workflows") {
            None => self.problem("workflows", "missing; the file must have a `workflows` object"),
            Some(Value::Object(definitions)) => {
                for (name, definition) in definitions {
                    if let Some(workflow) = self.workflow(name, definition) {
                        workflows.insert(name.clone(), workflow);
                    }
                }
            }
            Some(_) => self.problem("workflows", "must be an object of workflows by name"),
        }
        Some((VERSION, config, workflows))
    }

    fn workflow(&mut self, name: &str, definition: &Value) -> Option<Workflow> {
        let at = path::key("workflows", name);
        if !is_identifier(name) {
            self.problem(&at, format!("workflow name `{name}` is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"));
        }
        let Some(object) = definition.as_object() else {
            self.problem(&at, "a workflow must be an object with `steps` and optionally `auth`");
            return None;
        };
        self.unknown_fields(object, &at, &WORKFLOW_FIELDS);
        let auth = match object.get("auth") {
            None => AuthPolicy::Required,
            Some(Value::String(auth)) if auth == "required" => AuthPolicy::Required,
            Some(Value::String(auth)) if auth == "public" => AuthPolicy::Public,
            Some(other) => {
                self.problem(path::key(&at, "auth"), format!("must be \"required\" or \"public\", not {other}"));
                AuthPolicy::Required
            }
        };
        let steps_at = path::key(&at, "steps");
        let steps = match object.get("steps") {
            None => {
                self.problem(&steps_at, "missing; a workflow needs a `steps` array");
                return None;
            }
            Some(Value::Array(steps)) if steps.is_empty() => {
                self.problem(&steps_at, "a workflow needs at least one step");
                return None;
            }
            Some(Value::Array(steps)) => steps,
            Some(_) => {
                self.problem(&steps_at, "must be an array of steps");
                return None;
            }
        };
        let ids = self.step_ids(steps, &at);
        let steps = steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| self.step(step, &at, &Scope { index, ids: &ids }))
            .collect();
        Some(Workflow { name: name.to_string(), auth, steps })
    }

    /// Each step's id if it has a valid one that no earlier step took.
    fn step_ids(&mut self, steps: &[Value], workflow_at: &str) -> Vec<Option<String>> {
        let mut ids: Vec<Option<String>> = Vec::with_capacity(steps.len());
        for (index, step) in steps.iter().enumerate() {
            let at = path::key(&path::index(&path::key(workflow_at, "steps"), index), "id");
            let id = match step.get("id") {
                None => None,
                Some(Value::String(id)) if !is_identifier(id) => {
                    self.problem(at, format!("step id `{id}` is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"));
                    None
                }
                Some(Value::String(id)) => match ids.iter().position(|taken| taken.as_deref() == Some(id)) {
                    Some(first) => {
                        self.problem(at, format!("duplicate step id `{id}`; steps[{first}] already uses it"));
                        None
                    }
                    None => Some(id.clone()),
                },
                Some(_) => {
                    self.problem(at, "must be a string");
                    None
                }
            };
            ids.push(id);
        }
        ids
    }

    fn step(&mut self, step: &Value, workflow_at: &str, scope: &Scope<'_>) -> Option<StepDef> {
        let relative = path::index("steps", scope.index);
        let at = path::join(workflow_at, &relative);
        let Some(object) = step.as_object() else {
            self.problem(&at, "a step must be an object with one step-kind key, e.g. {\"response\": {\"body\": …}}");
            return None;
        };
        let kind = self.step_kind(object, &at);

        let condition = match object.get("if") {
            None => None,
            Some(Value::String(condition)) => {
                let relative_at = path::key(&relative, "if");
                match self.templates.compile_condition(condition, &relative_at) {
                    Ok(compiled) => {
                        self.check_references(&compiled, workflow_at, scope);
                        Some((condition.clone(), compiled))
                    }
                    Err(error) => {
                        self.template_problem(workflow_at, error);
                        None
                    }
                }
            }
            Some(_) => {
                self.problem(path::key(&at, "if"), "must be an expression string, e.g. \"input.amount > 100\"");
                None
            }
        };
        let retry = object.get("retry").and_then(|retry| self.retry(retry, &path::key(&at, "retry")));
        let max_timeout_ms = self.catalog.max_timeout_ms().min(MAX_DURATION_MS);
        let timeout_ms = match object.get("timeoutMs") {
            None => None,
            Some(value) => match value.as_u64() {
                Some(ms) if (1..=max_timeout_ms).contains(&ms) => Some(ms),
                _ => {
                    let message = format!(
                        "must be a whole number of milliseconds from 1 to {max_timeout_ms} (this server's ceiling)"
                    );
                    self.problem(path::key(&at, "timeoutMs"), message);
                    None
                }
            },
        };
        let continue_on_error = match object.get("continueOnError") {
            None => false,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => {
                self.problem(path::key(&at, "continueOnError"), "must be true or false");
                false
            }
        };

        let kind = kind?;
        let input = object.get(&kind).cloned().unwrap_or(Value::Null);
        let kind_at = path::kind(&at, &kind);
        if let Some(spec) = self.catalog.spec(&kind) {
            self.check_input(spec, &input, &kind_at);
        }
        if kind == RESPONSE_KIND {
            self.problems.extend(super::response::literal_problems(&input, &kind_at));
        }
        let compiled_input = match self.templates.compile_value(&input, &path::kind(&relative, &kind)) {
            Ok(compiled) => {
                for template in compiled.templates() {
                    self.check_references(template, workflow_at, scope);
                }
                compiled
            }
            Err(errors) => {
                errors.into_iter().for_each(|error| self.template_problem(workflow_at, error));
                CompiledValue::Literal(Value::Null)
            }
        };
        let (condition, compiled_condition) = condition.unzip();
        Some(StepDef {
            index: scope.index,
            id: scope.ids[scope.index].clone(),
            kind,
            input,
            condition,
            retry,
            timeout_ms,
            continue_on_error,
            compiled_input,
            compiled_condition,
        })
    }

    /// The step's one step-kind key. Keys that are neither step fields nor known kinds are
    /// reported as unknown fields when a known kind is present, else as unknown kinds.
    fn step_kind(&mut self, object: &Map<String, Value>, at: &str) -> Option<String> {
        let candidates: Vec<&String> = object.keys().filter(|key| !STEP_FIELDS.contains(&key.as_str())).collect();
        let known: Vec<&String> = candidates.iter().copied().filter(|key| self.catalog.spec(key).is_some()).collect();
        match (known.as_slice(), candidates.as_slice()) {
            ([kind], _) => {
                for other in candidates.iter().filter(|candidate| *candidate != kind) {
                    let hint = did_you_mean(other, STEP_FIELDS.iter().copied());
                    let message = format!(
                        "unknown field `{other}`{hint}; a step has one step-kind key (here `{kind}`) and optionally {}",
                        quoted_list(STEP_FIELDS.iter().copied())
                    );
                    self.problem(path::key(at, other), message);
                }
                Some(kind.to_string())
            }
            ([], []) => {
                self.problem(at, format!("a step needs a step-kind key{}", self.known_kinds_hint("")));
                None
            }
            ([], [kind]) => {
                let message = format!("unknown step kind `{kind}`{}", self.known_kinds_hint(kind));
                self.problem(path::kind(at, kind), message);
                Some(kind.to_string())
            }
            ([], several) => {
                let message = format!(
                    "a step has exactly one step-kind key, and none of {} is a known kind{}",
                    quoted_list(several.iter().map(|key| key.as_str())),
                    self.known_kinds_hint("")
                );
                self.problem(at, message);
                None
            }
            (several, _) => {
                let message = format!(
                    "a step has exactly one step-kind key, found {}",
                    quoted_list(several.iter().map(|key| key.as_str()))
                );
                self.problem(at, message);
                None
            }
        }
    }

    /// `; did you mean …` and/or `; known kinds: …` (when there are few enough to list).
    fn known_kinds_hint(&self, unknown: &str) -> String {
        let kinds = self.catalog.kinds();
        let mut hint = if unknown.is_empty() { String::new() } else { did_you_mean(unknown, kinds.iter().copied()) };
        if !kinds.is_empty() && kinds.len() <= LISTED_KINDS {
            hint.push_str(&format!("; known kinds: {}", quoted_list(kinds.iter().copied())));
        }
        hint
    }

    fn check_input(&mut self, spec: &StepSpec, input: &Value, at: &str) {
        let Some(fields) = input.as_object() else {
            self.problem(at, format!("must be an object of `{}` input fields", spec.kind));
            return;
        };
        for required in spec.required.iter().filter(|required| !fields.contains_key(*required)) {
            self.problem(at, format!("missing required field `{required}` of `{}`", spec.kind));
        }
        for field in fields.keys().filter(|field| !spec.accepts(field)) {
            let hint = did_you_mean(field, spec.fields());
            let expected = match spec.fields().next() {
                Some(_) => format!("expected {}", quoted_list(spec.fields())),
                None => "it takes no fields".to_string(),
            };
            self.problem(
                path::key(at, field),
                format!("unknown field `{field}` of `{}`{hint} ({expected})", spec.kind),
            );
        }
    }

    fn retry(&mut self, retry: &Value, at: &str) -> Option<RetryPolicy> {
        let Some(object) = retry.as_object() else {
            self.problem(at, "must be an object with maxAttempts, intervalMs, backoffRate, maxDelayMs or jitter");
            return None;
        };
        self.unknown_fields(object, at, &RETRY_FIELDS);
        let mut policy = RetryPolicy::default();
        if let Some(value) = object.get("maxAttempts") {
            match value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n <= MAX_RETRY_ATTEMPTS) {
                Some(attempts) => policy.max_attempts = attempts,
                None => self.problem(
                    path::key(at, "maxAttempts"),
                    format!("must be a whole number of retries from 0 to {MAX_RETRY_ATTEMPTS}"),
                ),
            }
        }
        if let Some(value) = object.get("intervalMs") {
            match value.as_u64().filter(|ms| *ms <= MAX_DURATION_MS) {
                Some(ms) => policy.interval_ms = ms,
                None => self.problem(
                    path::key(at, "intervalMs"),
                    format!("must be a whole number of milliseconds from 0 to {MAX_DURATION_MS}"),
                ),
            }
        }
        if let Some(value) = object.get("backoffRate") {
            match value.as_f64().filter(|rate| rate.is_finite() && *rate >= 1.0) {
                Some(rate) => policy.backoff_rate = rate,
                None => self.problem(path::key(at, "backoffRate"), "must be a number of at least 1.0"),
            }
        }
        if let Some(value) = object.get("maxDelayMs") {
            match value.as_u64().filter(|ms| *ms <= MAX_DURATION_MS) {
                Some(ms) => policy.max_delay_ms = Some(ms),
                None => self.problem(
                    path::key(at, "maxDelayMs"),
                    format!("must be a whole number of milliseconds from 0 to {MAX_DURATION_MS}"),
                ),
            }
        }
        match object.get("jitter") {
            None => {}
            Some(Value::String(jitter)) if jitter == "full" => policy.jitter = Jitter::Full,
            Some(Value::String(jitter)) if jitter == "none" => policy.jitter = Jitter::None,
            Some(other) => self.problem(path::key(at, "jitter"), format!("must be \"full\" or \"none\", not {other}")),
        }
        Some(policy)
    }

    fn template_problem(&mut self, workflow_at: &str, error: TemplateError) {
        self.problem(path::join(workflow_at, &error.path), error.message);
    }

    /// Every variable a template reads must be one of [`ROOTS`], with the known fields of
    /// `auth`, `app` and `run`, and `steps.<id>` must name an earlier step.
    fn check_references(&mut self, template: &CompiledTemplate, workflow_at: &str, scope: &Scope<'_>) {
        let at = path::join(workflow_at, template.path());
        let mut messages: Vec<String> = Vec::new();
        for reference in template.references() {
            let mut segments = reference.split('.');
            let root = segments.next().unwrap_or_default();
            let field = segments.next();
            let message = match (root, field) {
                ("input" | "config", _) | (_, None) if ROOTS.contains(&root) => None,
                ("auth", Some(field)) => unknown_attribute("auth", field, &AUTH_FIELDS),
                ("app", Some(field)) => unknown_attribute("app", field, &APP_FIELDS),
                ("run", Some(field)) => unknown_attribute("run", field, &RUN_FIELDS),
                ("steps", Some(id)) => step_reference_problem(id, scope),
                _ => Some(format!(
                    "unknown variable `{root}`{}; templates can use {}",
                    did_you_mean(root, ROOTS.iter().copied()),
                    quoted_list(ROOTS.iter().copied())
                )),
            };
            if let Some(message) = message.filter(|message| !messages.contains(message)) {
                messages.push(message);
            }
        }
        for message in messages {
            self.problem(&at, format!("{message} (in `{}`)", template.source()));
        }
    }
}

fn unknown_attribute(root: &str, field: &str, known: &[&str]) -> Option<String> {
    if known.contains(&field) {
        return None;
    }
    let hint = did_you_mean(field, known.iter().copied());
    Some(format!("unknown variable `{root}.{field}`{hint}; `{root}` has {}", quoted_list(known.iter().copied())))
}

fn step_reference_problem(id: &str, scope: &Scope<'_>) -> Option<String> {
    let earlier = &scope.ids[..scope.index];
    let position = scope.ids.iter().position(|candidate| candidate.as_deref() == Some(id));
    match position {
        Some(position) if position < scope.index => None,
        Some(position) if position == scope.index => {
            Some(format!("`steps.{id}` is this step's own output; only earlier steps' outputs can be used"))
        }
        Some(position) => Some(format!(
            "`steps.{id}` refers to a later step (steps[{position}]); only earlier steps' outputs can be used"
        )),
        None => {
            let earlier_ids: Vec<&str> = earlier.iter().flatten().map(String::as_str).collect();
            let known = if earlier_ids.is_empty() {
                "no earlier step has an id".to_string()
            } else {
                format!("earlier steps: {}", quoted_list(earlier_ids.iter().copied()))
            };
            Some(format!(
                "`steps.{id}` refers to an unknown step id{}; {known}",
                did_you_mean(id, earlier_ids.iter().copied())
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::design_catalog;
    use crate::workflow::template::TemplateContext;
    use crate::workflow::template::tests::{condition, resolve};

    const EXAMPLE: &str = r#"{ "version": 1, "config": { "slackChannelId": "C123" },
      "workflows": { "appendWebhookRow": { "auth": "public", "steps": [
        { "id": "row", "sheets.appendValues": { "spreadsheetId": "{{ input.spreadsheetId }}", "range": "{{ input.range }}", "values": [["{{ input.customerEmail }}", "{{ input.amountCents }}"]] } },
        { "billing.createItem": { "customer": "{{ input.customerEmail }}", "amountCents": "{{ input.amountCents }}", "currency": "usd" } },
        { "response": { "status": 201, "body": { "updatedRange": "{{ steps.row.updates.updatedRange }}" } } } ] } } }"#;

    fn parse_ok(text: &str) -> WorkflowFile {
        parse(text.as_bytes(), &design_catalog(), checked(text)).unwrap_or_else(|problems| {
            panic!("unexpected problems:\n{}", problems.iter().map(|p| format!("{p}\n")).collect::<String>())
        })
    }

    fn problems(text: &str) -> Vec<Problem> {
        parse(text.as_bytes(), &design_catalog(), checked(text)).expect_err("the file should be rejected")
    }

    /// The file's templates checked by the engine the sandbox runs, in process.
    fn checked(text: &str) -> Checks {
        crate::workflow::template::tests::check_in_process(template_sources(text.as_bytes()))
    }

    #[test]
    fn every_template_of_the_steps_is_found_once() {
        let text = r#"{ "version": 1, "config": { "c": "{{ not.a.step }}" }, "workflows": { "w": { "steps": [
            { "if": "input.n > 1", "response": { "body": ["{{ input.a }}", { "x": "{{ input.a }}" }, "plain"] } },
            { "if": "{{ input.b }}", "retry": { "maxAttempts": 2 }, "pulse.track": { "name": "n={{ input.n }}" } } ] } } }"#;
        assert_eq!(
            template_sources(text.as_bytes()),
            [
                ("input.n > 1".to_string(), Mode::Condition),
                ("{{ input.a }}".to_string(), Mode::Value),
                ("{{ input.b }}".to_string(), Mode::Condition),
                ("n={{ input.n }}".to_string(), Mode::Value),
            ]
        );
        assert!(template_sources(b"not json").is_empty());
    }

    /// Asserts the problems' paths, in order, and that each message contains its needle.
    fn assert_problems(actual: &[Problem], expected: &[(&str, &str)]) {
        let listing = actual.iter().map(|p| format!("  {p}\n")).collect::<String>();
        assert_eq!(actual.len(), expected.len(), "problems:\n{listing}");
        for (problem, (path, needle)) in actual.iter().zip(expected) {
            assert_eq!(problem.path, *path, "problems:\n{listing}");
            assert!(problem.message.contains(needle), "`{needle}` not in `{}`", problem.message);
        }
    }

    fn example_context(input: Value) -> TemplateContext {
        TemplateContext::new(
            &input,
            &Value::Null,
            &json!({ "slackChannelId": "C123" }),
            &json!({ "sid": "app_1", "name": "Shop", "version": 1 }),
            &json!({ "id": "run_1", "startedAt": "2025-01-01T00:00:00Z" }),
        )
    }

    #[test]
    fn the_design_example_parses() {
        let file = parse_ok(EXAMPLE);
        assert_eq!(file.version, 1);
        assert_eq!(file.config, json!({ "slackChannelId": "C123" }).as_object().unwrap().clone());
        let workflow = file.workflow("appendWebhookRow").unwrap();
        assert_eq!(workflow.name, "appendWebhookRow");
        assert_eq!(workflow.auth, AuthPolicy::Public);
        let kinds: Vec<&str> = workflow.steps.iter().map(|step| step.kind.as_str()).collect();
        assert_eq!(kinds, ["sheets.appendValues", "billing.createItem", "response"]);
        let labels: Vec<String> = workflow.steps.iter().map(StepDef::label).collect();
        assert_eq!(labels, ["row", "#1", "#2"]);
        let last = &workflow.steps[2];
        assert_eq!((last.index, last.id.as_deref()), (2, None));
        assert_eq!(
            last.input,
            json!({ "status": 201, "body": { "updatedRange": "{{ steps.row.updates.updatedRange }}" } })
        );
        assert!(workflow.steps.iter().all(|step| step.retry.is_none()
            && step.timeout_ms.is_none()
            && !step.continue_on_error
            && step.condition.is_none()));
    }

    #[tokio::test]
    async fn the_example_resolves_with_typed_values() {
        let file = parse_ok(EXAMPLE);
        let workflow = file.workflow("appendWebhookRow").unwrap();
        let mut context = example_context(json!({
            "spreadsheetId": "sheet_1", "range": "Sheet1!A1", "customerEmail": "ada@example.com", "amountCents": 1250
        }));
        let mut inputs = Vec::new();
        for step in &workflow.steps {
            assert!(step.compiled_condition().is_none());
            inputs.push(resolve(step.compiled_input(), &context).await.unwrap());
            if let Some(id) = &step.id {
                context.insert_step_output(id, &json!({ "updates": { "updatedRange": "Sheet1!A2:B2" } }));
            }
        }
        assert_eq!(
            inputs,
            [
                json!({ "spreadsheetId": "sheet_1", "range": "Sheet1!A1", "values": [["ada@example.com", 1250]] }),
                json!({ "customer": "ada@example.com", "amountCents": 1250, "currency": "usd" }),
                json!({ "status": 201, "body": { "updatedRange": "Sheet1!A2:B2" } }),
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_input_is_an_error_naming_the_field() {
        let file = parse_ok(EXAMPLE);
        let step = &file.workflow("appendWebhookRow").unwrap().steps[0];
        let context = example_context(json!({ "spreadsheetId": "s", "range": "A1", "customerEmail": "a@b.c" }));
        let error = resolve(step.compiled_input(), &context).await.unwrap_err();
        assert_eq!(error.path, "steps[0].sheets.appendValues.values[0][1]");
        assert_eq!(error.message, "undefined variable `input.amountCents` in `{{ input.amountCents }}`");
        assert_eq!(
            error.to_string(),
            "steps[0].sheets.appendValues.values[0][1]: undefined variable `input.amountCents` in `{{ input.amountCents }}`"
        );
    }

    #[test]
    fn malformed_json_is_one_problem_with_line_and_column() {
        let found = problems("{\n  \"version\": 1,\n  \"workflows\": {,}\n}");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "");
        assert!(found[0].message.starts_with("the file is not valid JSON: "), "{}", found[0].message);
        assert!(found[0].message.contains("line 3 column 17"), "{}", found[0].message);
        assert_problems(&problems("[1]"), &[("", "must be a JSON object")]);
        assert_problems(&problems("{}"), &[("version", "missing"), ("workflows", "missing")]);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"{
          "version": 2,
          "extra": true,
          "config": { "ok": true },
          "workflows": {
            "bad-name": { "steps": [ { "response": { "body": "ok" } } ] },
            "many": {
              "auth": "sometimes",
              "steps": [
                { "id": "first", "sheets.appendValues": { "spreadsheetId": "{{ input.id }}", "range": "{{ input. }}", "colour": "red" } },
                { "id": "first", "billing.createItem": { "customer": "{{ steps.third.email }}", "amountCents": "{{ steps.ghost.x }}", "currency": "{{ secrets.key }}" } },
                { "id": "third", "if": "steps.third.ok and auth.role == 'admin'", "teleport": { "to": "mars" } },
                { "id": "4th", "response": { "body": "{{ app.sid }} {{ run.started }}" },
                  "retry": { "maxAttempts": 11, "backoffRate": 0.5, "jitter": "some", "delay": 5 },
                  "timeoutMs": "soon", "continueOnError": "yes" },
                { "pulse.track": { "name": "x" }, "ledger.audit": { "operation": "read" } },
                { "id": "noKind" },
                { "response": { "body": 1 }, "timout": 5 },
                "not a step",
                { "if": true, "response": { "body": 1 } },
                { "response": "{{ steps.first }}" }
              ]
            },
            "empty": { "steps": [] },
            "noSteps": { "auth": "public", "stepz": [] }
          }
        }"#;
        assert_problems(
            &problems(text),
            &[
                ("extra", "unknown field `extra` (expected `version`, `config`, `workflows`)"),
                ("version", "unsupported version 2; only 1 is supported"),
                ("workflows.bad-name", "workflow name `bad-name` is not an identifier"),
                ("workflows.many.auth", "must be \"required\" or \"public\", not \"sometimes\""),
                ("workflows.many.steps[1].id", "duplicate step id `first`; steps[0] already uses it"),
                ("workflows.many.steps[3].id", "step id `4th` is not an identifier"),
                (
                    "workflows.many.steps[0].sheets.appendValues",
                    "missing required field `values` of `sheets.appendValues`",
                ),
                (
                    "workflows.many.steps[0].sheets.appendValues.colour",
                    "unknown field `colour` of `sheets.appendValues`",
                ),
                ("workflows.many.steps[0].sheets.appendValues.range", "`{{ input. }}` does not compile: syntax error"),
                (
                    "workflows.many.steps[1].billing.createItem.customer",
                    "`steps.third` refers to a later step (steps[2])",
                ),
                (
                    "workflows.many.steps[1].billing.createItem.amountCents",
                    "`steps.ghost` refers to an unknown step id",
                ),
                ("workflows.many.steps[1].billing.createItem.currency", "unknown variable `secrets`"),
                (
                    "workflows.many.steps[2].teleport",
                    "unknown step kind `teleport`; known kinds: `sheets.createSpreadsheet`",
                ),
                ("workflows.many.steps[2].if", "unknown variable `auth.role`; `auth` has `email`, `name`, `userId`"),
                ("workflows.many.steps[2].if", "`steps.third` is this step's own output"),
                ("workflows.many.steps[3].retry.delay", "unknown field `delay`"),
                ("workflows.many.steps[3].retry.maxAttempts", "from 0 to 10"),
                ("workflows.many.steps[3].retry.backoffRate", "at least 1.0"),
                ("workflows.many.steps[3].retry.jitter", "must be \"full\" or \"none\""),
                ("workflows.many.steps[3].timeoutMs", "whole number of milliseconds"),
                ("workflows.many.steps[3].continueOnError", "must be true or false"),
                ("workflows.many.steps[3].response.body", "unknown variable `run.started`; did you mean `startedAt`?"),
                ("workflows.many.steps[4]", "exactly one step-kind key, found `pulse.track`, `ledger.audit`"),
                ("workflows.many.steps[5]", "a step needs a step-kind key"),
                ("workflows.many.steps[6].timout", "unknown field `timout`; did you mean `timeoutMs`?"),
                ("workflows.many.steps[7]", "a step must be an object"),
                ("workflows.many.steps[8].if", "must be an expression string"),
                ("workflows.many.steps[9].response", "must be an object of `response` input fields"),
                ("workflows.empty.steps", "at least one step"),
                ("workflows.noSteps.stepz", "unknown field `stepz`; did you mean `steps`?"),
                ("workflows.noSteps.steps", "missing"),
            ],
        );
    }

    #[test]
    fn problem_messages_read_well() {
        let found = problems(
            r#"{ "version": 1, "workflows": { "w": { "steps": [
                { "id": "a", "sheets.appendValue": { "x": "{{ step.a }}" } },
                { "billing.createItem": { "customer": "{{ steps.b.id }}", "amountCents": 1, "currency": "usd" } } ] } } }"#,
        );
        let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "workflows.w.steps[0].sheets.appendValue: unknown step kind `sheets.appendValue`; did you mean \
                 `sheets.appendValues`?; known kinds: `sheets.createSpreadsheet`, `sheets.appendValues`, \
                 `sheets.getValues`, `billing.createItem`, `communication.send`, `pulse.track`, `ledger.audit`, `response`",
                "workflows.w.steps[0].sheets.appendValue.x: unknown variable `step`; did you mean `steps`?; templates \
                 can use `input`, `auth`, `config`, `app`, `steps`, `run` (in `{{ step.a }}`)",
                "workflows.w.steps[1].billing.createItem.customer: `steps.b` refers to an unknown step id; earlier \
                 steps: `a` (in `{{ steps.b.id }}`)",
            ]
        );
        assert_eq!(
            serde_json::to_value(&found[2]).unwrap(),
            json!({ "path": "workflows.w.steps[1].billing.createItem.customer",
                    "message": "`steps.b` refers to an unknown step id; earlier steps: `a` (in `{{ steps.b.id }}`)" })
        );
    }

    #[test]
    fn additional_fields_are_accepted_when_the_spec_allows_them() {
        let mut catalog = design_catalog();
        let mut open = StepSpec::new("plugin.echo", &["message"], &[]);
        open.additional = true;
        catalog.push(open);
        let text = r#"{ "version": 1, "workflows": { "w": { "steps": [
            { "plugin.echo": { "message": "hi", "anything": { "goes": "{{ input.x }}" } } } ] } } }"#;
        let file = parse(text.as_bytes(), &catalog, checked(text)).unwrap();
        assert_eq!(file.workflow("w").unwrap().auth, AuthPolicy::Required);
    }

    #[tokio::test]
    async fn step_options_parse_with_defaults() {
        let file = parse_ok(
            r#"{ "version": 1, "workflows": { "w": { "auth": "required", "steps": [
                { "id": "a", "if": "input.amount > 100", "retry": {}, "timeoutMs": 5000, "continueOnError": true,
                  "pulse.track": { "name": "big" } },
                { "id": "b", "if": "{{ input.amount > 100 }}",
                  "retry": { "maxAttempts": 0, "intervalMs": 250, "backoffRate": 1.5, "maxDelayMs": 1000, "jitter": "full" },
                  "pulse.track": { "name": "{{ steps.a.name }}" } } ] } } }"#,
        );
        let steps = &file.workflow("w").unwrap().steps;
        assert_eq!(steps[0].retry, Some(RetryPolicy::default()));
        assert_eq!(steps[0].timeout_ms, Some(5000));
        assert!(steps[0].continue_on_error);
        assert_eq!(steps[0].condition.as_deref(), Some("input.amount > 100"));
        assert_eq!(
            steps[1].retry,
            Some(RetryPolicy {
                max_attempts: 0,
                interval_ms: 250,
                backoff_rate: 1.5,
                max_delay_ms: Some(1000),
                jitter: Jitter::Full
            })
        );
        for (amount, expected) in [(150, true), (100, false)] {
            let context = example_context(json!({ "amount": amount }));
            for step in steps {
                let holds = condition(step.compiled_condition().unwrap(), &context).await.unwrap();
                assert_eq!(holds, expected, "{} with {amount}", step.label());
            }
        }
        let error = condition(steps[0].compiled_condition().unwrap(), &example_context(json!({}))).await.unwrap_err();
        assert_eq!(error.path, "steps[0].if");

        let serialized = serde_json::to_value(&file).unwrap();
        assert_eq!(serialized["workflows"]["w"]["steps"][1]["if"], json!("{{ input.amount > 100 }}"));
        assert_eq!(serialized["workflows"]["w"]["steps"][1]["retry"]["jitter"], json!("full"));
        assert_eq!(serialized["workflows"]["w"]["auth"], json!("required"));
    }
}
