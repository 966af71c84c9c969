//! Third-party step plugins of a tenant: a step manifest and its wasm component.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, StoreResult, now_ms, sha256_hex};

/// A plugin as listed (without its bytes).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugin {
    pub kind: String,
    pub manifest: Value,
    /// SHA-256 of the component.
    pub hash: String,
    pub size: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A plugin with its component, for the runtime.
#[derive(Debug, Clone)]
pub struct PluginComponent {
    pub manifest: Value,
    pub hash: String,
    pub wasm: Vec<u8>,
}

impl Store {
    /// Creates or replaces a tenant's plugin of `kind`.
    pub async fn put_plugin(&self, tenant_id: &str, kind: &str, manifest: Value, wasm: Vec<u8>) -> StoreResult<Plugin> {
        let (tenant_id, kind) = (tenant_id.to_owned(), kind.to_owned());
        self.write(move |c| {
            let hash = sha256_hex(&wasm);
            let now = now_ms();
            c.execute(
                "INSERT INTO plugins (tenant_id, kind, manifest, hash, wasm, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET manifest = ?3, hash = ?4, wasm = ?5, updated_at = ?6",
                params![tenant_id, kind, manifest.to_string(), hash, wasm, now],
            )?;
            get(c, &tenant_id, &kind)
        })
        .await
    }

    pub async fn list_plugins(&self, tenant_id: &str) -> StoreResult<Vec<Plugin>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("{PLUGIN_SELECT} WHERE tenant_id = ?1 ORDER BY kind"))?;
            let rows = stmt.query_map([&tenant_id], plugin_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn get_plugin(&self, tenant_id: &str, kind: &str) -> StoreResult<Plugin> {
        let (tenant_id, kind) = (tenant_id.to_owned(), kind.to_owned());
        self.read(move |c| get(c, &tenant_id, &kind)).await
    }

    /// A plugin's manifest and component, `None` when the tenant has no such kind.
    pub async fn plugin_component(&self, tenant_id: &str, kind: &str) -> StoreResult<Option<PluginComponent>> {
        let (tenant_id, kind) = (tenant_id.to_owned(), kind.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached("SELECT manifest, hash, wasm FROM plugins WHERE tenant_id = ?1 AND kind = ?2")?
                .query_row(params![tenant_id, kind], |r| {
                    let manifest: String = r.get(0)?;
                    Ok(PluginComponent {
                        manifest: serde_json::from_str(&manifest).unwrap_or(Value::Null),
                        hash: r.get(1)?,
                        wasm: r.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// Whether any plugin, of any tenant, has the component whose SHA-256 is `hash`.
    pub async fn plugin_component_in_use(&self, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.read(move |c| {
            Ok(c.prepare_cached("SELECT EXISTS (SELECT 1 FROM plugins WHERE hash = ?1)")?
                .query_row([&hash], |r| r.get(0))?)
        })
        .await
    }

    pub async fn delete_plugin(&self, tenant_id: &str, kind: &str) -> StoreResult<()> {
        let (tenant_id, kind) = (tenant_id.to_owned(), kind.to_owned());
        self.write(move |c| {
            let deleted =
                c.execute("DELETE FROM plugins WHERE tenant_id = ?1 AND kind = ?2", params![tenant_id, kind])?;
            if deleted == 0 {
                return Err(StoreError::NotFound(format!("plugin {kind} not found")));
            }
            Ok(())
        })
        .await
    }
}

const PLUGIN_SELECT: &str = "SELECT kind, manifest, hash, length(wasm), created_at, updated_at FROM plugins";

fn plugin_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Plugin> {
    let manifest: String = r.get(1)?;
    Ok(Plugin {
        kind: r.get(0)?,
        manifest: serde_json::from_str(&manifest).unwrap_or(Value::Null),
        hash: r.get(2)?,
        size: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

fn get(c: &rusqlite::Connection, tenant_id: &str, kind: &str) -> StoreResult<Plugin> {
    c.prepare_cached(&format!("{PLUGIN_SELECT} WHERE tenant_id = ?1 AND kind = ?2"))?
        .query_row(params![tenant_id, kind], plugin_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("plugin {kind} not found")))
}
