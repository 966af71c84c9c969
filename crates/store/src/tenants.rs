//! Tenants, their users and API keys (stored as SHA-256 hashes, shown once at creation).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, StoreResult, new_id, now_ms, random_token, sha256_hex};

/// The tenant created at first start; the local admin belongs to it.
pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// Who a request acts as: a user of a tenant, through an API key or the local admin.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    /// The API key used, if any (`None` for the local admin without credentials).
    pub key_id: Option<String>,
    /// Platform administrator: may manage tenants and keys.
    pub admin: bool,
}

/// An API key as listed: never the secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub label: Option<String>,
    /// The first characters of the secret, to recognise a key without revealing it.
    pub prefix: String,
    pub admin: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A freshly created key: the only time its secret is available.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

impl Store {
    /// Ensures the default tenant and its admin user exist and returns that user as a
    /// principal (the identity of credential-less local requests).
    pub async fn bootstrap(&self, admin_email: &str) -> StoreResult<Principal> {
        let email = admin_email.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?1, ?1, ?2)",
                params![DEFAULT_TENANT, now_ms()],
            )?;
            let user_id = ensure_user(c, DEFAULT_TENANT, &email, Some("Admin"))?;
            Ok(Principal {
                tenant_id: DEFAULT_TENANT.into(),
                user_id,
                email,
                name: Some("Admin".into()),
                key_id: None,
                admin: true,
            })
        })
        .await
    }

    pub async fn create_tenant(&self, id: &str, name: &str) -> StoreResult<Tenant> {
        let tenant = Tenant { id: id.to_owned(), name: name.to_owned(), created_at: now_ms() };
        self.write(move |c| {
            let inserted = c.execute(
                "INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![tenant.id, tenant.name, tenant.created_at],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("tenant '{}' already exists", tenant.id)));
            }
            Ok(tenant)
        })
        .await
    }

    pub async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id, name, created_at FROM tenants ORDER BY created_at, id")?;
            let rows = stmt.query_map([], |r| Ok(Tenant { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? }))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Creates a key for the user `email` of `tenant_id` (creating the user if needed).
    pub async fn create_api_key(
        &self,
        tenant_id: &str,
        email: &str,
        user_name: Option<String>,
        label: Option<String>,
        admin: bool,
    ) -> StoreResult<NewApiKey> {
        let (tenant_id, email) = (tenant_id.to_owned(), email.to_owned());
        self.write(move |c| {
            tenant_exists(c, &tenant_id)?;
            let user_id = ensure_user(c, &tenant_id, &email, user_name.as_deref())?;
            let secret = format!("stage_sk_{}", random_token(40));
            let key = ApiKey {
                id: new_id("key_"),
                tenant_id,
                email,
                label,
                prefix: secret[..14].to_owned(),
                admin,
                created_at: now_ms(),
                revoked_at: None,
            };
            c.execute(
                "INSERT INTO api_keys (id, tenant_id, user_id, label, key_hash, key_prefix, admin, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.id,
                    key.tenant_id,
                    user_id,
                    key.label,
                    sha256_hex(secret.as_bytes()),
                    key.prefix,
                    key.admin,
                    key.created_at
                ],
            )?;
            Ok(NewApiKey { key, secret })
        })
        .await
    }

    pub async fn list_api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKey>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            tenant_exists(c, &tenant_id)?;
            let mut stmt = c.prepare(&format!("{KEY_SELECT} WHERE k.tenant_id = ?1 ORDER BY k.created_at, k.id"))?;
            let rows = stmt.query_map([&tenant_id], key_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Revokes a key; later requests with it answer 401.
    pub async fn revoke_api_key(&self, key_id: &str) -> StoreResult<ApiKey> {
        let key_id = key_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![key_id, now_ms()],
            )?;
            c.query_row(&format!("{KEY_SELECT} WHERE k.id = ?1"), [&key_id], key_from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("API key '{key_id}' not found")))
        })
        .await
    }

    /// The principal a presented secret authenticates, if the key exists and is not revoked.
    pub async fn principal_for_secret(&self, secret: &str) -> StoreResult<Option<Principal>> {
        let hash = sha256_hex(secret.as_bytes());
        self.read(move |c| {
            let principal = c
                .prepare_cached(
                    "SELECT k.tenant_id, k.user_id, u.email, u.name, k.id, k.admin
                     FROM api_keys k JOIN users u ON u.id = k.user_id
                     WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
                )?
                .query_row([&hash], |r| {
                    Ok(Principal {
                        tenant_id: r.get(0)?,
                        user_id: r.get(1)?,
                        email: r.get(2)?,
                        name: r.get(3)?,
                        key_id: Some(r.get(4)?),
                        admin: r.get(5)?,
                    })
                })
                .optional()?;
            Ok(principal)
        })
        .await
    }
}

const KEY_SELECT: &str = "SELECT k.id, k.tenant_id, u.email, k.label, k.key_prefix, k.admin, k.created_at, k.revoked_at
     FROM api_keys k JOIN users u ON u.id = k.user_id";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        email: r.get(2)?,
        label: r.get(3)?,
        prefix: r.get(4)?,
        admin: r.get(5)?,
        created_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

fn tenant_exists(c: &Connection, tenant_id: &str) -> StoreResult<()> {
    let found = c.query_row("SELECT 1 FROM tenants WHERE id = ?1", [tenant_id], |_| Ok(())).optional()?;
    found.ok_or_else(|| StoreError::NotFound(format!("tenant '{tenant_id}' not found")))
}

fn ensure_user(c: &Connection, tenant_id: &str, email: &str, name: Option<&str>) -> StoreResult<String> {
    c.execute(
        "INSERT OR IGNORE INTO users (id, tenant_id, email, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new_id("usr_"), tenant_id, email, name, now_ms()],
    )?;
    if let Some(name) = name {
        c.execute("UPDATE users SET name = ?3 WHERE tenant_id = ?1 AND email = ?2", params![tenant_id, email, name])?;
    }
    Ok(c.query_row("SELECT id FROM users WHERE tenant_id = ?1 AND email = ?2", params![tenant_id, email], |r| {
        r.get(0)
    })?)
}
