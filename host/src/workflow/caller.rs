//! Who runs a workflow or calls a backend, as the API layer verified it: a tenant's user
//! (by API key, or the local admin), an end user of the app (by a verified token), or
//! nobody. Runs, their templates (`auth.*`), idempotency keys and the identity a component
//! runs with all derive from this one value.

use serde::Serialize;
use stage_runtime::Identity;
use stage_store::tenants::Principal;

/// The caller of a run or backend request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user of a tenant: an API key's, or the local admin's (no key).
    User(Principal),
    /// An end user of the app, from a verified token.
    EndUser(EndUser),
    Anonymous,
}

/// A verified end user, from the claims of their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// The caller as templates (`auth.email`, `auth.name`, `auth.userId`), backends
/// (`x-stage-user-*`) and run records see it: nulls when anonymous.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    pub email: Option<String>,
    pub name: Option<String>,
    pub user_id: Option<String>,
}

impl Caller {
    pub fn auth(&self) -> Auth {
        match self {
            Caller::User(p) => {
                Auth { email: Some(p.email.clone()), name: p.name.clone(), user_id: Some(p.user_id.clone()) }
            }
            Caller::EndUser(u) => {
                Auth { email: u.email.clone(), name: u.name.clone(), user_id: Some(u.user_id.clone()) }
            }
            Caller::Anonymous => Auth::default(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Caller::Anonymous)
    }

    /// Whom an `Idempotency-Key` of this caller belongs to: a tenant's user (every key of
    /// the user shares it, so a rotated key still finds its runs), an end user (the token's
    /// `sub`), or anonymous.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Caller::User(p) => format!("key:{}:{}", p.tenant_id, p.user_id),
            Caller::EndUser(u) => format!("end-user:{}", u.user_id),
            Caller::Anonymous => "anonymous".to_owned(),
        }
    }

    /// On whose behalf a component of `app_sid` (of tenant `tenant_id`) runs for this caller.
    pub fn identity(&self, tenant_id: &str, app_sid: &str) -> Identity {
        Identity { tenant_id: tenant_id.to_owned(), app_sid: Some(app_sid.to_owned()), actor_email: self.auth().email }
    }

    /// The caller as an app of `tenant_id` sees it: a key of another tenant does not see
    /// the app at all (`None`), and the credential-less local admin is just anonymous there.
    pub fn visiting(self, tenant_id: &str) -> Option<Caller> {
        match self {
            Caller::User(principal) if principal.tenant_id != tenant_id => {
                principal.key_id.is_none().then_some(Caller::Anonymous)
            }
            caller => Some(caller),
        }
    }
}
