//! Workflow files of app versions, parsed and compiled once per (app, version) and kept in
//! a bounded [`Cache`], and the publish-time check of a session's workflow file.
//!
//! A parsed file weighs [`estimated_weight`]: its bytes times [`BYTES_FACTOR`] plus
//! [`TEMPLATE_BYTES`] per template, measured with `benches/workflow_memory.rs` (a parsed
//! file is about 11x its text — the input as written, its compiled copy, paths — and each
//! template adds its source, path, references and lookup plan, about 80 bytes; the
//! templates themselves are compiled only inside the template sandbox). Re-measure when
//! the parsed form changes.
//!
//! Publishing a version keeps the file it checked as that version's entry (so the first run
//! does not parse it again) and drops the app's older versions, which no run starts any
//! more; a run in flight keeps its file until it ends.

use std::sync::Arc;

use super::catalog::{ResolveError, StepKinds};
use super::definition::{FILE_PATH, Problem, WorkflowFile, parse, template_sources};
use super::template::TemplateEngine;
use stage_cache::{Cache, CacheLimits, CacheStats};
use stage_runtime::Identity;
use stage_store::apps::FileGuard;
use stage_store::{Store, StoreError, sha256_hex};

/// Estimated bytes in memory per byte of workflow file text, besides its templates.
pub const BYTES_FACTOR: u64 = 11;
/// Estimated bytes in memory per compiled template.
pub const TEMPLATE_BYTES: u64 = 96;

/// Why a workflow file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file has problems (every one listed).
    #[error("{FILE_PATH} has {} problem(s): {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Catalog(ResolveError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A version's parsed file (`None` when it has no workflow file), with its estimated weight.
pub struct VersionFile {
    file: Option<Arc<WorkflowFile>>,
    weight: u64,
}

/// Parsed workflow files by app version. A version is immutable, so entries never go stale;
/// they leave by eviction or when a newer version is published.
pub struct Workflows {
    store: Store,
    kinds: Arc<StepKinds>,
    templates: Arc<TemplateEngine>,
    versions: Cache<(String, i64), VersionFile>,
}

impl Workflows {
    pub fn new(store: Store, kinds: Arc<StepKinds>, templates: Arc<TemplateEngine>, limits: CacheLimits) -> Workflows {
        Workflows { store, kinds, templates, versions: Cache::new(limits, |version: &VersionFile| version.weight) }
    }

    /// The workflow file of an app version, `None` when the version has none.
    pub async fn of_version(
        &self,
        tenant_id: &str,
        sid: &str,
        version: i64,
    ) -> Result<Option<Arc<WorkflowFile>>, LoadError> {
        let entry = self
            .versions
            .get_or_load((sid.to_owned(), version), || async {
                match self.store.app_version_file(sid, version, FILE_PATH).await? {
                    None => Ok(VersionFile { file: None, weight: 0 }),
                    Some(bytes) => self.parse(tenant_id, &bytes).await,
                }
            })
            .await?;
        Ok(entry.file.clone())
    }

    /// Checks a session's workflow file before it is published, returning the guard that
    /// makes the publish fail if the file changes in between, and the parsed file for
    /// [`Workflows::published`].
    pub async fn check_session(&self, tenant_id: &str, session: &str) -> Result<(FileGuard, VersionFile), LoadError> {
        let file = self.store.read_file(tenant_id, session, FILE_PATH, None).await?;
        let (hash, checked) = match file {
            None => (None, VersionFile { file: None, weight: 0 }),
            Some(file) => (Some(sha256_hex(&file.bytes)), self.parse(tenant_id, &file.bytes).await?),
        };
        Ok((FileGuard::default().expect(FILE_PATH, hash), checked))
    }

    /// Records that `checked` was published as `version` of app `sid`: it becomes that
    /// version's entry, and the app's older versions are dropped.
    pub fn published(&self, sid: &str, version: i64, checked: VersionFile) {
        self.versions.invalidate_where(|(app, older)| app == sid && *older < version);
        self.versions.insert((sid.to_owned(), version), checked);
    }

    /// The counters of the parsed files cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.versions.stats()
    }

    /// Checks the file's templates in the sandbox, then parses and validates the file.
    async fn parse(&self, tenant_id: &str, bytes: &[u8]) -> Result<VersionFile, LoadError> {
        let catalog = self.kinds.catalog(tenant_id).await.map_err(LoadError::Catalog)?;
        let identity = Identity { tenant_id: tenant_id.to_owned(), app_sid: None, actor_email: None };
        let wall_time = self.kinds.default_wall_time();
        let checks = self
            .templates
            .check(&template_sources(bytes), &identity, wall_time)
            .await
            .map_err(|error| LoadError::Invalid(vec![Problem::new("", error.message)]))?;
        let file = parse(bytes, &catalog, checks).map_err(LoadError::Invalid)?;
        Ok(VersionFile { weight: estimated_weight(bytes.len(), &file), file: Some(Arc::new(file)) })
    }
}

/// Estimated bytes a parsed file of `text_bytes` bytes holds in memory.
pub fn estimated_weight(text_bytes: usize, file: &WorkflowFile) -> u64 {
    let templates: usize = file
        .workflows
        .values()
        .flat_map(|workflow| &workflow.steps)
        .map(|step| step.compiled_input().templates().len() + usize::from(step.compiled_condition().is_some()))
        .sum();
    text_bytes as u64 * BYTES_FACTOR + templates as u64 * TEMPLATE_BYTES
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::design_catalog;

    #[test]
    fn a_file_weighs_its_text_and_its_templates() {
        let text = json!({ "version": 1, "workflows": { "w": { "steps": [
            { "if": "input.go", "pulse.track": { "name": "{{ input.name }}", "meta": { "a": "{{ input.a }}", "b": 1 } } },
            { "response": { "body": "plain" } },
        ] } } })
        .to_string();
        let checks = crate::workflow::template::tests::check_in_process(template_sources(text.as_bytes()));
        let file = parse(text.as_bytes(), &design_catalog(), checks).unwrap();
        assert_eq!(estimated_weight(text.len(), &file), text.len() as u64 * 11 + 3 * 96);
    }
}
