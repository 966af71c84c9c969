//! Workflows: definitions in `/app/shift.workflows.json`, templates, execution, run records.

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

/// The step kinds a workflow may use.
pub trait StepCatalog {
    fn spec(&self, kind: &str) -> Option<&StepSpec>;
}
