//! Workflow files of app versions, parsed and compiled once per (app, version), and the
//! publish-time check of a session's workflow file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::catalog::{ResolveError, StepKinds};
use super::definition::{FILE_PATH, Problem, WorkflowFile, parse, template_sources};
use super::template::TemplateEngine;
use crate::runtime::Identity;
use crate::store::apps::FileGuard;
use crate::store::{Store, StoreError, sha256_hex};

/// Why a workflow file could not be used.
#[derive(Debug)]
pub enum LoadError {
    /// The file has problems (every one listed).
    Invalid(Vec<Problem>),
    Catalog(ResolveError),
    Store(StoreError),
}

impl From<StoreError> for LoadError {
    fn from(error: StoreError) -> LoadError {
        LoadError::Store(error)
    }
}

/// A version's parsed file, or `None` when it has no workflow file.
type VersionFile = Option<Arc<WorkflowFile>>;

/// Parsed workflow files by app version. A version is immutable, so entries never go stale.
pub struct Workflows {
    store: Store,
    kinds: Arc<StepKinds>,
    templates: Arc<TemplateEngine>,
    versions: Mutex<HashMap<(String, i64), VersionFile>>,
}

impl Workflows {
    pub fn new(store: Store, kinds: Arc<StepKinds>, templates: Arc<TemplateEngine>) -> Workflows {
        Workflows { store, kinds, templates, versions: Mutex::default() }
    }

    /// The workflow file of an app version, `None` when the version has none.
    pub async fn of_version(
        &self,
        tenant_id: &str,
        sid: &str,
        version: i64,
    ) -> Result<Option<Arc<WorkflowFile>>, LoadError> {
        let key = (sid.to_owned(), version);
        if let Some(file) = self.versions.lock().expect("workflows poisoned").get(&key) {
            return Ok(file.clone());
        }
        let file = match self.store.app_version_file(sid, version, FILE_PATH).await? {
            None => None,
            Some(bytes) => Some(Arc::new(self.parse(tenant_id, &bytes).await?)),
        };
        self.versions.lock().expect("workflows poisoned").insert(key, file.clone());
        Ok(file)
    }

    /// Checks a session's workflow file before it is published, returning the guard that
    /// makes the publish fail if the file changes in between.
    pub async fn check_session(&self, tenant_id: &str, session: &str) -> Result<FileGuard, LoadError> {
        let file = self.store.read_file(tenant_id, session, FILE_PATH, None).await?;
        let hash = match file {
            None => None,
            Some(file) => {
                self.parse(tenant_id, &file.bytes).await?;
                Some(sha256_hex(&file.bytes))
            }
        };
        Ok(FileGuard::default().expect(FILE_PATH, hash))
    }

    /// Checks the file's templates in the sandbox, then parses and validates the file.
    async fn parse(&self, tenant_id: &str, bytes: &[u8]) -> Result<WorkflowFile, LoadError> {
        let catalog = self.kinds.catalog(tenant_id).await.map_err(LoadError::Catalog)?;
        let identity = Identity { tenant_id: tenant_id.to_owned(), app_sid: None, actor_email: None };
        let wall_time = self.kinds.default_wall_time();
        let checks = self
            .templates
            .check(&template_sources(bytes), &identity, wall_time)
            .await
            .map_err(|error| LoadError::Invalid(vec![Problem::new("", error.message)]))?;
        parse(bytes, &catalog, checks).map_err(LoadError::Invalid)
    }
}
