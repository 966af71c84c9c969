//! Built-in step kinds: one line per crate under `steps/`, whose component `host/build.rs`
//! builds and embeds, and whose `step.json` manifest declares the kind, its inputs and the
//! destinations it may reach.

use serde::{Deserialize, Serialize};

use stage_runtime::Destination;
use stage_runtime::Limits;

/// Embeds `steps/<dir>`: its manifest and its wasm component.
macro_rules! builtin {
    ($dir:literal) => {
        (
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../steps/", $dir, "/step.json")),
            include_bytes!(concat!(env!("OUT_DIR"), "/steps/", $dir, ".wasm")) as &[u8],
        )
    };
}

/// The built-in steps. A new step kind is a crate in `steps/` and a line here.
const BUILTINS: &[(&str, &[u8])] = &[
    builtin!("response"),
    builtin!("pulse"),
    builtin!("ledger"),
    builtin!("sheets-create-spreadsheet"),
    builtin!("sheets-append-values"),
    builtin!("sheets-get-values"),
    builtin!("billing-create-item"),
    builtin!("communication-send"),
];

/// What a step component declares about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepManifest {
    /// The key that names the step in a workflow, e.g. `pulse.track`.
    pub kind: String,
    #[serde(default)]
    pub description: String,
    pub inputs: StepInputs,
    /// Where the step may send HTTP requests; nothing else is reachable.
    #[serde(default)]
    pub allow: Vec<Destination>,
    /// Tighter (or looser) limits than the server's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// The input fields a step accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepInputs {
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub optional: Vec<String>,
    /// Whether fields beyond `required` and `optional` are accepted.
    #[serde(default)]
    pub additional: bool,
}

impl StepManifest {
    /// Reads and checks a manifest; the message names what is wrong.
    pub fn parse(json: &[u8]) -> Result<StepManifest, String> {
        let manifest: StepManifest = serde_json::from_slice(json).map_err(|e| format!("invalid step manifest: {e}"))?;
        let kind_ok = !manifest.kind.is_empty()
            && manifest.kind.len() <= 64
            && manifest.kind.split('.').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !kind_ok {
            return Err(format!(
                "invalid step kind {:?}: use letters, digits, '_' and '-' in dot-separated parts",
                manifest.kind
            ));
        }
        for (index, destination) in manifest.allow.iter().enumerate() {
            destination.validate().map_err(|why| format!("allow[{index}]: {why}"))?;
        }
        Ok(manifest)
    }
}

/// A step kind the server ships with.
#[derive(Debug, Clone)]
pub struct BuiltinStep {
    pub manifest: StepManifest,
    pub wasm: &'static [u8],
}

/// The built-in steps, in registry order.
pub fn builtins() -> Vec<BuiltinStep> {
    BUILTINS
        .iter()
        .map(|(manifest, wasm)| BuiltinStep {
            manifest: StepManifest::parse(manifest.as_bytes())
                .unwrap_or_else(|e| panic!("built-in step manifest: {e}")),
            wasm,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_manifests_are_valid_and_distinct() {
        let steps = builtins();
        let kinds: Vec<&str> = steps.iter().map(|s| s.manifest.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response",
                "pulse.track",
                "ledger.audit",
                "sheets.createSpreadsheet",
                "sheets.appendValues",
                "sheets.getValues",
                "billing.createItem",
                "communication.send"
            ]
        );
        assert!(steps.iter().all(|s| s.wasm.starts_with(b"\0asm")));
    }

    #[test]
    fn refuses_bad_manifests() {
        assert!(StepManifest::parse(br#"{"kind":"bad kind","inputs":{}}"#).is_err());
        assert!(StepManifest::parse(br#"{"kind":"a..b","inputs":{}}"#).is_err());
        assert!(StepManifest::parse(br#"{"kind":"ok","inputs":{},"allow":[{"scheme":"ftp","host":"x"}]}"#).is_err());
        assert!(StepManifest::parse(br#"{"kind":"ok","inputs":{},"colour":1}"#).is_err());
        assert!(StepManifest::parse(br#"{"kind":"acme.ok","inputs":{"required":["a"]}}"#).is_ok());
    }
}
