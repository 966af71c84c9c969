//! What the preview page lets an app import and use: the original Stage's allowed set
//! (react, react-dom/client, lucide-react, recharts, lodash, papaparse, the UI kit, the
//! `@stage/*` modules), `@/` for `/app/`, and none of the globals that reach the network,
//! generate code or read the page (the page's Content-Security-Policy holds those too).

use stage_compile::{Alias, CssImports, Jsx, Policy};

/// Third-party packages and the version the import map loads, with the packages whose
/// React they must share (`?external=`, as esm.sh reads it).
pub const LIBRARIES: [(&str, &str, &str); 8] = [
    ("react", "react@19.1.1", ""),
    ("react/jsx-runtime", "react@19.1.1/jsx-runtime", ""),
    ("react-dom/client", "react-dom@19.1.1/client", "?external=react"),
    ("lucide-react", "lucide-react@0.468.0", "?external=react"),
    ("recharts", "recharts@2.15.4", "?external=react,react-dom"),
    ("lodash", "lodash@4.17.21", ""),
    ("papaparse", "papaparse@5.5.3", ""),
    // Loaded by the page itself, not importable.
    ("@tailwindcss/browser", "@tailwindcss/browser@4.1.11", ""),
];

/// The `@stage/*` client modules the page serves (`host/src/preview/client/stage/`).
pub const STAGE_MODULES: [&str; 4] = ["app", "kv", "runtime", "utils"];

/// The page's own module that CSS files call (`addStyle`).
pub const STYLE_RUNTIME: &str = "@stage/runtime";

/// Globals an app may not reference.
const FORBIDDEN_GLOBALS: [&str; 24] = [
    "eval",
    "Function",
    "require",
    "fetch",
    "XMLHttpRequest",
    "WebSocket",
    "EventSource",
    "Worker",
    "SharedWorker",
    "importScripts",
    "document",
    "navigator",
    "localStorage",
    "sessionStorage",
    "indexedDB",
    "caches",
    "process",
    "global",
    "Buffer",
    "__dirname",
    "__filename",
    "opener",
    "parent",
    "top",
];

/// Names of the global object: usable only as `window.innerWidth` and in `typeof window`.
const GLOBAL_OBJECTS: [&str; 4] = ["window", "globalThis", "self", "frames"];

/// The preview page's policy.
pub fn preview_policy() -> Policy {
    let externals = LIBRARIES
        .iter()
        .filter(|(name, ..)| *name != "@tailwindcss/browser" && *name != "react/jsx-runtime")
        .map(|(name, ..)| name.to_string())
        .chain(super::kit::NAMES.iter().map(|name| format!("@/components/ui/{name}")))
        .chain(STAGE_MODULES.iter().map(|name| format!("@stage/{name}")))
        .collect();
    Policy {
        externals,
        aliases: vec![Alias::new("@/", "/app/")],
        forbidden_globals: FORBIDDEN_GLOBALS.map(String::from).to_vec(),
        global_objects: GLOBAL_OBJECTS.map(String::from).to_vec(),
        dynamic_import: false,
        jsx: Some(Jsx { import_source: "react".into() }),
        css: Some(CssImports { module: STYLE_RUNTIME.into() }),
        entry_exports_component: true,
    }
}
