//! Compiles a set of session files into ES modules a browser (or another JS runtime) can
//! load: from an entry, the module graph of its imports (relative, absolute, aliased,
//! extensionless, a folder's `index`; JSON and CSS files), each script parsed, checked
//! against a [`Policy`], stripped of types and JSX-compiled with oxc, with its imports of
//! session files rewritten to relative URLs ([`module_specifier`]): the caller serves the
//! modules under one root, each at its path, and resolves the externals (an import map). Every problem is a [`Problem`] with its file, line
//! and column; [`Compilation::report`] reads them for a person, with code frames.
//!
//! No HTTP and no storage here: the caller brings the files and serves the modules.
//!
//! ```
//! use std::collections::BTreeMap;
//! use stage_compile::{Jsx, Policy, compile};
//!
//! let files = BTreeMap::from([
//!     ("/app/App.tsx".to_owned(), b"import { n } from './n'; export default () => <b>{n}</b>;".to_vec()),
//!     ("/app/n.ts".to_owned(), b"export const n: number = 1;".to_vec()),
//! ]);
//! let policy = Policy { jsx: Some(Jsx { import_source: "react".into() }), ..Policy::default() };
//! let compiled = compile(&files, "/app/App.tsx", &policy);
//! assert!(compiled.problems.is_empty());
//! assert_eq!(compiled.modules.len(), 2);
//! assert!(compiled.modules[0].code.contains("from \"./n.ts\""));
//! ```

mod check;
mod policy;
mod problem;
mod resolve;
mod script;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Serialize;

pub use policy::{Alias, CssImports, Jsx, Policy};
pub use problem::Problem;
pub use resolve::{SCRIPT_EXTENSIONS, Target};

/// The files a compilation reads, by absolute path (`/app/App.tsx`).
pub trait Files {
    fn get(&self, path: &str) -> Option<&[u8]>;
}

impl<B: AsRef<[u8]>> Files for BTreeMap<String, B> {
    fn get(&self, path: &str) -> Option<&[u8]> {
        BTreeMap::get(self, path).map(AsRef::as_ref)
    }
}

impl<B: AsRef<[u8]>> Files for HashMap<String, B> {
    fn get(&self, path: &str) -> Option<&[u8]> {
        HashMap::get(self, path).map(AsRef::as_ref)
    }
}

/// The specifier a compiled module at `from` imports the session file `to` by: a relative
/// URL (`/app/App.tsx` → `/app/ui/Button.tsx` is `./ui/Button.tsx`), so that modules
/// served under one root, each at its path (`<root>/app/ui/Button.tsx`), find each other
/// whatever the root is, and a module's code does not depend on where it is served.
pub fn module_specifier(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let from_dir = &from_dir[..from_dir.len().saturating_sub(1)];
    let target: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let common = from_dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from_dir.len() - common];
    if parts.is_empty() {
        parts.push(".");
    }
    parts.extend(&target[common..]);
    parts.join("/")
}

/// What a session file compiles as, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    Script,
    Json,
    Css,
}

impl ModuleKind {
    pub fn of(path: &str) -> Option<ModuleKind> {
        if script::source_type(path).is_some() {
            Some(ModuleKind::Script)
        } else if path.ends_with(".json") {
            Some(ModuleKind::Json)
        } else if path.ends_with(".css") {
            Some(ModuleKind::Css)
        } else {
            None
        }
    }
}

/// One compiled module.
#[derive(Debug, Clone, Serialize)]
pub struct Module {
    /// The session file it was compiled from.
    pub path: String,
    pub kind: ModuleKind,
    /// The ES module's text.
    #[serde(skip)]
    pub code: String,
    /// Lowercase hex SHA-256 of `code`: the module's address.
    pub hash: String,
    /// What it imports, in order, without repeats.
    pub imports: Vec<Target>,
}

/// The outcome of compiling an entry's module graph.
#[derive(Debug, Clone, Serialize)]
pub struct Compilation {
    pub entry: String,
    /// Every module that compiled, the entry first, then in the order they were found.
    /// With problems, modules that could not be compiled are missing.
    pub modules: Vec<Module>,
    /// The external specifiers the modules import, sorted.
    pub externals: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Compilation {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems as a person reads them (each with the lines around it), `None` when
    /// there are none.
    pub fn report(&self, files: &dyn Files) -> Option<String> {
        if self.problems.is_empty() {
            return None;
        }
        let count = self.problems.len();
        let mut out = format!("{count} problem{}:", if count == 1 { "" } else { "s" });
        for problem in &self.problems {
            let source = files.get(&problem.file).and_then(|bytes| std::str::from_utf8(bytes).ok());
            out.push_str("\n\n");
            out.push_str(&problem.render(source));
        }
        Some(out)
    }
}

/// Compiles the module graph of `entry` from `files` under `policy`.
pub fn compile(files: &dyn Files, entry: &str, policy: &Policy) -> Compilation {
    let mut compilation =
        Compilation { entry: entry.to_owned(), modules: Vec::new(), externals: Vec::new(), problems: Vec::new() };
    if files.get(entry).is_none() {
        compilation.problems.push(Problem::file(entry, format!("the entry {entry} is not a file of the session")));
        return compilation;
    }
    if ModuleKind::of(entry) != Some(ModuleKind::Script) {
        compilation.problems.push(Problem::file(entry, "the entry must be a .tsx, .ts, .jsx or .js file"));
        return compilation;
    }
    let mut externals = BTreeSet::new();
    let mut seen = BTreeSet::from([entry.to_owned()]);
    let mut queue = VecDeque::from([entry.to_owned()]);
    while let Some(path) = queue.pop_front() {
        let Some(module) = compile_module(&path, path == entry, files, policy, &mut compilation.problems) else {
            continue;
        };
        for target in &module.imports {
            match target {
                Target::File(file) if seen.insert(file.clone()) => queue.push_back(file.clone()),
                Target::File(_) => {}
                Target::External(specifier) => {
                    externals.insert(specifier.clone());
                }
            }
        }
        compilation.modules.push(module);
    }
    compilation.externals = externals.into_iter().collect();
    compilation
}

fn compile_module(
    path: &str,
    is_entry: bool,
    files: &dyn Files,
    policy: &Policy,
    problems: &mut Vec<Problem>,
) -> Option<Module> {
    let bytes = files.get(path)?;
    let Ok(source) = std::str::from_utf8(bytes) else {
        problems.push(Problem::file(path, "the file is not UTF-8 text"));
        return None;
    };
    let kind = ModuleKind::of(path)?;
    let (code, mut imports) = match kind {
        ModuleKind::Script => {
            let source_type = script::source_type(path)?;
            let compiled = script::compile(path, source, source_type, is_entry, files, policy);
            problems.extend(compiled.problems);
            (compiled.code?, compiled.imports)
        }
        ModuleKind::Json => match serde_json::from_str::<serde::de::IgnoredAny>(source) {
            // JSON.parse, not the text as a literal: `"__proto__"` keys stay plain keys.
            Ok(_) => (format!("export default JSON.parse({});\n", js_string(source)), Vec::new()),
            Err(e) => {
                problems.push(Problem {
                    file: path.to_owned(),
                    line: Some(e.line() as u32),
                    column: Some(e.column() as u32),
                    message: format!("invalid JSON: {e}"),
                });
                return None;
            }
        },
        ModuleKind::Css => {
            let css = policy.css.as_ref()?;
            let code = format!(
                "import {{ addStyle }} from {};\naddStyle({}, {});\nexport default {{}};\n",
                js_string(&css.module),
                js_string(path),
                js_string(source)
            );
            (code, vec![Target::External(css.module.clone())])
        }
    };
    let mut unique = BTreeSet::new();
    imports.retain(|target| unique.insert(target.clone()));
    let hash = stage_ids::sha256_hex(code.as_bytes());
    Some(Module { path: path.to_owned(), kind, code, hash, imports })
}

/// `text` as a JavaScript string literal (JSON's string syntax is valid JavaScript).
fn js_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod specifier_tests {
    use super::module_specifier;

    #[test]
    fn specifiers_are_relative_urls() {
        assert_eq!(module_specifier("/app/App.tsx", "/app/Button.tsx"), "./Button.tsx");
        assert_eq!(module_specifier("/app/App.tsx", "/app/ui/x/B.tsx"), "./ui/x/B.tsx");
        assert_eq!(module_specifier("/app/ui/x/B.tsx", "/app/App.tsx"), "../../App.tsx");
        assert_eq!(module_specifier("/app/ui/B.tsx", "/lib/c.ts"), "../../lib/c.ts");
        assert_eq!(module_specifier("/App.tsx", "/b.ts"), "./b.ts");
    }
}
