//! Where an import specifier leads: an external the caller resolves, or a session file
//! (relative, absolute or through an alias; extensionless, or a folder's `index`).

use crate::Files;
use crate::policy::Policy;

/// Extensions tried, in order, for a specifier without one, and for a folder's `index`.
pub const SCRIPT_EXTENSIONS: [&str; 4] = [".tsx", ".ts", ".jsx", ".js"];

/// What an import names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Target {
    /// A session file, by its normalized path.
    File(String),
    /// A bare specifier of [`Policy::externals`], left as written.
    External(String),
}

/// Resolves `specifier`, imported by the session file `importer`; the error says why not.
pub(crate) fn resolve(specifier: &str, importer: &str, files: &dyn Files, policy: &Policy) -> Result<Target, String> {
    if policy.allows_external(specifier) {
        return Ok(Target::External(specifier.to_owned()));
    }
    let base = if let Some(alias) = policy.aliases.iter().find(|a| specifier.starts_with(&a.prefix)) {
        join(&alias.target, &specifier[alias.prefix.len()..])
    } else if specifier.starts_with("./") || specifier.starts_with("../") {
        join(parent(importer), specifier)
    } else if specifier.starts_with('/') {
        join("/", specifier)
    } else {
        return Err(not_allowed(specifier, policy));
    };
    let base = base.ok_or_else(|| format!("{specifier} leads outside the session's files"))?;
    find_file(&base, files).map(Target::File).ok_or_else(|| {
        let tried = candidates(&base).join(", ");
        format!("cannot find {specifier} (looked for {tried})")
    })
}

fn not_allowed(specifier: &str, policy: &Policy) -> String {
    let mut allowed: Vec<String> = policy.externals.clone();
    allowed.extend(policy.aliases.iter().map(|a| format!("{}… (= {}…)", a.prefix, a.target)));
    allowed.push("./ and ../ paths".to_owned());
    format!("import of {specifier:?} is not allowed; code may import {}", allowed.join(", "))
}

/// The first candidate of `base` that is a file.
fn find_file(base: &str, files: &dyn Files) -> Option<String> {
    candidates(base).into_iter().find(|candidate| files.get(candidate).is_some())
}

/// `base` itself, then with each script extension, then its folder's `index` files.
fn candidates(base: &str) -> Vec<String> {
    let trimmed = base.trim_end_matches('/');
    let mut out = Vec::with_capacity(9);
    if !base.ends_with('/') {
        out.push(base.to_owned());
        out.extend(SCRIPT_EXTENSIONS.iter().map(|ext| format!("{base}{ext}")));
    }
    out.extend(SCRIPT_EXTENSIONS.iter().map(|ext| format!("{trimmed}/index{ext}")));
    out
}

/// The folder of a session path (`/app/ui/A.tsx` → `/app/ui`).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `relative` joined onto the absolute folder `dir`, normalized (`.` and `..` resolved);
/// `None` when it climbs above the root. A trailing `/` is kept (it asks for `index`).
fn join(dir: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let absolute = relative.starts_with('/');
    let start = if absolute { "" } else { dir };
    for segment in start.split('/').chain(relative.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    let mut path = format!("/{}", parts.join("/"));
    if relative.ends_with('/') && path != "/" {
        path.push('/');
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Target, join, resolve};
    use crate::policy::{Alias, Policy};

    fn files(paths: &[&str]) -> BTreeMap<String, Vec<u8>> {
        paths.iter().map(|p| (p.to_string(), Vec::new())).collect()
    }

    fn policy() -> Policy {
        Policy {
            externals: vec!["react".into(), "@/components/ui/*".into()],
            aliases: vec![Alias::new("@/", "/app/")],
            ..Policy::default()
        }
    }

    #[test]
    fn joins_and_normalizes() {
        assert_eq!(join("/app/ui", "./a").as_deref(), Some("/app/ui/a"));
        assert_eq!(join("/app/ui", "../b/./c").as_deref(), Some("/app/b/c"));
        assert_eq!(join("/app", "./lib/").as_deref(), Some("/app/lib/"));
        assert_eq!(join("/app", "../../x"), None);
    }

    #[test]
    fn resolves_relative_extensionless_index_and_alias() {
        let files = files(&["/app/App.tsx", "/app/Button.tsx", "/app/lib/index.ts", "/app/data.json", "/app/x.js"]);
        let policy = policy();
        let file = |s: &str| Ok(Target::File(s.to_owned()));
        assert_eq!(resolve("./Button", "/app/App.tsx", &files, &policy), file("/app/Button.tsx"));
        assert_eq!(resolve("./Button.tsx", "/app/App.tsx", &files, &policy), file("/app/Button.tsx"));
        assert_eq!(resolve("./lib", "/app/App.tsx", &files, &policy), file("/app/lib/index.ts"));
        assert_eq!(resolve("../lib/", "/app/lib/index.ts", &files, &policy), file("/app/lib/index.ts"));
        assert_eq!(resolve("@/data.json", "/app/lib/index.ts", &files, &policy), file("/app/data.json"));
        assert_eq!(resolve("/app/x", "/app/App.tsx", &files, &policy), file("/app/x.js"));
        assert_eq!(
            resolve("@/components/ui/card", "/app/App.tsx", &files, &policy),
            Ok(Target::External("@/components/ui/card".into()))
        );
        assert_eq!(resolve("react", "/app/App.tsx", &files, &policy), Ok(Target::External("react".into())));
    }

    #[test]
    fn says_why_an_import_does_not_resolve() {
        let files = files(&["/app/App.tsx"]);
        let policy = policy();
        let missing = resolve("./Nope", "/app/App.tsx", &files, &policy).unwrap_err();
        assert!(missing.starts_with("cannot find ./Nope (looked for /app/Nope, /app/Nope.tsx,"), "{missing}");
        let bare = resolve("left-pad", "/app/App.tsx", &files, &policy).unwrap_err();
        assert!(bare.starts_with("import of \"left-pad\" is not allowed; code may import react,"), "{bare}");
        let climbing = resolve("../../../etc/passwd", "/app/App.tsx", &files, &policy).unwrap_err();
        assert_eq!(climbing, "../../../etc/passwd leads outside the session's files");
    }
}
