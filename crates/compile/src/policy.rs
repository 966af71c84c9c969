//! What a compilation allows: the bare specifiers left to the page (or runtime) to
//! resolve, path aliases, globals the code may not touch, JSX, CSS, and what the entry
//! must export. Each user of the compiler (the preview page, API backends) builds its own.

/// The rules one compilation checks the code against.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Bare specifiers the code may import and the caller resolves (an import map, a
    /// runtime): exact names (`react`) or prefixes ending in `/*` (`@stage/*`). They are
    /// matched before [`Policy::aliases`], so `@/components/ui/*` here wins over an alias `@/`.
    pub externals: Vec<String>,
    /// Prefixes that name session paths (`@/` → `/app/`).
    pub aliases: Vec<Alias>,
    /// Globals the code may not reference at all (`eval`, `fetch`, `document`, …).
    pub forbidden_globals: Vec<String>,
    /// Names of the global object (`window`, `globalThis`, `self`): the code may use them
    /// only as `window.name` with a name outside [`Policy::forbidden_globals`], or in
    /// `typeof window`, so that a forbidden global cannot be reached through them.
    pub global_objects: Vec<String>,
    /// Whether `import(…)` is allowed.
    pub dynamic_import: bool,
    /// JSX and how it compiles; `None` makes JSX a problem.
    pub jsx: Option<Jsx>,
    /// CSS imports and how they reach the page; `None` makes them a problem.
    pub css: Option<CssImports>,
    /// Whether the entry must default-export a component (a function, a class, a call such
    /// as `memo(…)`, or an element).
    pub entry_exports_component: bool,
}

/// A path alias: an import starting with `prefix` names the session path `target` + rest.
#[derive(Debug, Clone)]
pub struct Alias {
    pub prefix: String,
    pub target: String,
}

impl Alias {
    pub fn new(prefix: impl Into<String>, target: impl Into<String>) -> Alias {
        Alias { prefix: prefix.into(), target: target.into() }
    }
}

/// JSX compiles with the automatic runtime: `import { jsx } from "<import_source>/jsx-runtime"`.
#[derive(Debug, Clone)]
pub struct Jsx {
    pub import_source: String,
}

impl Jsx {
    /// The specifier compiled JSX imports (allowed even when not in [`Policy::externals`]).
    pub fn runtime_specifier(&self) -> String {
        format!("{}/jsx-runtime", self.import_source)
    }
}

/// A CSS file compiles to a module that calls `add_style(path, css)` exported by `module`.
#[derive(Debug, Clone)]
pub struct CssImports {
    pub module: String,
}

impl Policy {
    /// Whether `specifier` is one of [`Policy::externals`].
    pub fn allows_external(&self, specifier: &str) -> bool {
        self.externals.iter().any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => specifier.len() > prefix.len() && specifier.starts_with(prefix),
            None => allowed == specifier,
        })
    }

    pub(crate) fn is_forbidden(&self, name: &str) -> bool {
        self.forbidden_globals.iter().any(|n| n == name)
    }

    pub(crate) fn is_global_object(&self, name: &str) -> bool {
        self.global_objects.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::Policy;

    #[test]
    fn externals_match_exactly_or_by_prefix() {
        let policy = Policy { externals: vec!["react".into(), "@stage/*".into()], ..Policy::default() };
        assert!(policy.allows_external("react"));
        assert!(policy.allows_external("@stage/kv"));
        assert!(!policy.allows_external("@stage/"));
        assert!(!policy.allows_external("react-dom"));
        assert!(!policy.allows_external("react/jsx-runtime"));
    }
}
