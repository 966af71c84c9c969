//! Workflows: definitions in `/app/shift.workflows.json`, templates, execution, run records.
//!
//! * [`definition`] — parsing and validating the file against a [`StepCatalog`], with every
//!   problem reported at once; retry policies;
//! * [`template`] — `{{ expr }}` templates in step inputs and `if` conditions, compiled once
//!   per loaded file and evaluated per run.

pub mod backends;
pub mod caller;
pub mod catalog;
pub mod definition;
pub mod executor;
pub mod formulas;
pub mod loader;
pub mod outcome;
mod path;
pub mod plan;
pub mod registry;
mod response;
pub mod runner;
pub mod runs;
pub mod sandbox;
pub mod template;

pub use definition::{AuthPolicy, Jitter, Problem, RetryPolicy, StepDef, Workflow, WorkflowFile, parse};
pub use path::is_identifier;
pub use template::{TemplateContext, TemplateError, TemplateSet};

/// What a step kind accepts, used to validate workflow files at publish time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    pub kind: String,
    /// Input fields that must be present.
    pub required: Vec<String>,
    /// Input fields that may be present.
    pub optional: Vec<String>,
    /// Whether fields beyond `required` and `optional` are accepted.
    pub additional: bool,
}

impl StepSpec {
    /// A spec that accepts exactly `required` and `optional`.
    pub fn new(kind: &str, required: &[&str], optional: &[&str]) -> StepSpec {
        StepSpec {
            kind: kind.to_string(),
            required: required.iter().map(|field| field.to_string()).collect(),
            optional: optional.iter().map(|field| field.to_string()).collect(),
            additional: false,
        }
    }

    /// Whether `field` may appear in the step's input.
    pub fn accepts(&self, field: &str) -> bool {
        self.additional || self.required.iter().chain(&self.optional).any(|known| known == field)
    }

    /// The named input fields, required first.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.required.iter().chain(&self.optional).map(String::as_str)
    }
}

/// The step kinds a workflow may use.
pub trait StepCatalog {
    fn spec(&self, kind: &str) -> Option<&StepSpec>;

    /// Every known kind, used to suggest one when a workflow names an unknown kind.
    fn kinds(&self) -> Vec<&str> {
        Vec::new()
    }

    /// The longest `timeoutMs` a step may ask for (the operator's ceiling).
    fn max_timeout_ms(&self) -> u64 {
        definition::MAX_DURATION_MS
    }
}

impl StepCatalog for Vec<StepSpec> {
    fn spec(&self, kind: &str) -> Option<&StepSpec> {
        self.iter().find(|spec| spec.kind == kind)
    }

    fn kinds(&self) -> Vec<&str> {
        self.iter().map(|spec| spec.kind.as_str()).collect()
    }
}

/// The built-in step kinds as their manifests declare them, in the order of the design's
/// table (which the tests' expected messages list), for tests.
#[cfg(test)]
pub(crate) fn design_catalog() -> Vec<StepSpec> {
    const DESIGN_ORDER: [&str; 8] = [
        "sheets.createSpreadsheet",
        "sheets.appendValues",
        "sheets.getValues",
        "billing.createItem",
        "communication.send",
        "pulse.track",
        "ledger.audit",
        "response",
    ];
    let mut specs: Vec<StepSpec> = registry::builtins().iter().map(|step| catalog::spec_of(&step.manifest)).collect();
    specs.sort_by_key(|spec| DESIGN_ORDER.iter().position(|kind| *kind == spec.kind));
    specs
}
