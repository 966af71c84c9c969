//! The compiler against small apps, under a policy like the preview page's.

use std::collections::BTreeMap;

use super::*;

fn preview_policy() -> Policy {
    Policy {
        externals: ["react", "react-dom/client", "recharts", "lodash", "@/components/ui/*", "@stage/*"]
            .map(String::from)
            .to_vec(),
        aliases: vec![Alias::new("@/", "/app/")],
        forbidden_globals: [
            "eval",
            "Function",
            "require",
            "fetch",
            "XMLHttpRequest",
            "WebSocket",
            "document",
            "process",
        ]
        .map(String::from)
        .to_vec(),
        global_objects: ["window", "globalThis", "self"].map(String::from).to_vec(),
        dynamic_import: false,
        jsx: Some(Jsx { import_source: "react".into() }),
        css: Some(CssImports { module: "@stage/runtime".into() }),
        entry_exports_component: true,
    }
}

fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    list.iter().map(|(path, text)| (path.to_string(), text.as_bytes().to_vec())).collect()
}

fn problems(list: &[(&str, &str)]) -> Vec<(String, Option<u32>, Option<u32>, String)> {
    let compiled = compile(&files(list), "/app/App.tsx", &preview_policy());
    compiled.problems.into_iter().map(|p| (p.file, p.line, p.column, p.message)).collect()
}

fn messages(list: &[(&str, &str)]) -> Vec<String> {
    problems(list).into_iter().map(|p| p.3).collect()
}

const APP: &str = r#"import { useState } from "react";
import Button from "./Button";
import { Card, CardContent } from "@/components/ui/card";
import { LineChart, Line } from "recharts";
import data from "@/data.json";
import "./styles.css";
import type { Point } from "./types";

export default function App() {
  const [count, setCount] = useState<number>(0);
  const points: Point[] = data.points;
  return (
    <Card>
      <CardContent>
        <Button onClick={() => setCount(count + 1)}>Clicked {count}</Button>
        <LineChart width={200} height={100} data={points}><Line dataKey="y" /></LineChart>
      </CardContent>
    </Card>
  );
}
"#;

fn app() -> Vec<(&'static str, &'static str)> {
    vec![
        ("/app/App.tsx", APP),
        (
            "/app/Button.tsx",
            "import { cn } from './lib';\nexport default function Button(props: { onClick(): void; children?: any }) {\n  return <button className={cn('btn')} onClick={props.onClick}>{props.children}</button>;\n}\n",
        ),
        ("/app/lib/index.ts", "export const cn = (...names: string[]): string => names.join(' ');\n"),
        ("/app/types.ts", "export interface Point { x: number; y: number }\n"),
        ("/app/data.json", r#"{ "points": [{ "x": 1, "y": 2 }], "__proto__": 1 }"#),
        ("/app/styles.css", "button { color: red; }\n"),
        ("/app/unused.tsx", "this is not even code"),
    ]
}

#[test]
fn a_multi_file_app_compiles_clean() {
    let files = files(&app());
    let compiled = compile(&files, "/app/App.tsx", &preview_policy());
    assert_eq!(compiled.problems, Vec::<Problem>::new());
    let paths: Vec<&str> = compiled.modules.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, ["/app/App.tsx", "/app/Button.tsx", "/app/data.json", "/app/styles.css", "/app/lib/index.ts"]);
    assert_eq!(
        compiled.externals,
        ["@/components/ui/card", "@stage/runtime", "react", "react/jsx-runtime", "recharts"]
    );

    let entry = &compiled.modules[0];
    assert_eq!(entry.kind, ModuleKind::Script);
    assert!(entry.code.contains("from \"./Button.tsx\""), "{}", entry.code);
    assert!(entry.code.contains("from \"@/components/ui/card\""), "{}", entry.code);
    assert!(entry.code.contains("from \"react/jsx-runtime\""), "{}", entry.code);
    assert!(entry.code.contains("import \"./styles.css\""), "{}", entry.code);
    assert!(!entry.code.contains("./types") && !entry.code.contains("<number>"), "types are gone: {}", entry.code);
    assert!(!entry.code.contains("<Card>"), "JSX is compiled: {}", entry.code);
    assert_eq!(entry.hash, stage_ids::sha256_hex(entry.code.as_bytes()));
    assert_eq!(
        entry.imports,
        [
            Target::External("react".into()),
            Target::File("/app/Button.tsx".into()),
            Target::External("@/components/ui/card".into()),
            Target::External("recharts".into()),
            Target::File("/app/data.json".into()),
            Target::File("/app/styles.css".into()),
            Target::External("react/jsx-runtime".into()),
        ]
    );

    let json = &compiled.modules[2];
    assert_eq!(json.kind, ModuleKind::Json);
    assert!(json.code.starts_with("export default JSON.parse(\"{ \\\"points\\\""), "{}", json.code);
    let css = &compiled.modules[3];
    assert_eq!(
        css.code,
        "import { addStyle } from \"@stage/runtime\";\naddStyle(\"/app/styles.css\", \"button { color: red; }\\n\");\nexport default {};\n"
    );
}

#[test]
fn the_same_source_compiles_to_the_same_hash() {
    let first = compile(&files(&app()), "/app/App.tsx", &preview_policy());
    let mut changed = app();
    changed[2].1 = "export const cn = (...names: string[]): string => names.join(',');\n";
    let second = compile(&files(&changed), "/app/App.tsx", &preview_policy());
    assert_eq!(first.modules[0].hash, second.modules[0].hash);
    assert_ne!(first.modules[4].hash, second.modules[4].hash);
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let found = problems(&[
        ("/app/App.tsx", "import B from './B';\nexport default function App() { return <B />; }\n"),
        ("/app/B.tsx", "export default function B() {\n  return <div>{1 +}</div>;\n}\n"),
    ]);
    assert_eq!(found.len(), 1, "{found:?}");
    let (file, line, column, message) = &found[0];
    assert_eq!((file.as_str(), *line, *column), ("/app/B.tsx", Some(2), Some(19)));
    assert!(message.contains("Unexpected token"), "{message}");
}

#[test]
fn the_report_shows_each_problem_with_its_lines() {
    let files = files(&[("/app/App.tsx", "export default function App() {\n  return eval('1');\n}\n")]);
    let compiled = compile(&files, "/app/App.tsx", &preview_policy());
    assert_eq!(
        compiled.report(&files).as_deref(),
        Some(
            "1 problem:\n\n/app/App.tsx:2:10: `eval` is not allowed: the app may not use it\n  1 | export default function App() {\n> 2 |   return eval('1');\n    |          ^\n  3 | }"
        )
    );
    let clean = compile(&files_clean(), "/app/App.tsx", &preview_policy());
    assert_eq!(clean.report(&files_clean()), None);
}

fn files_clean() -> BTreeMap<String, Vec<u8>> {
    files(&[("/app/App.tsx", "export default () => <p>hi</p>;\n")])
}

#[test]
fn a_forbidden_import_is_reported_where_it_is() {
    let found = problems(&[(
        "/app/App.tsx",
        "import React from 'react';\nimport pad from 'left-pad';\nexport * from 'node:fs';\nexport default () => <p>{pad}</p>;\n",
    )]);
    let at: Vec<_> = found.iter().map(|p| (p.1, p.2, p.3.split(';').next().unwrap().to_owned())).collect();
    assert_eq!(
        at,
        [
            (Some(2), Some(17), "import of \"left-pad\" is not allowed".to_owned()),
            (Some(3), Some(15), "import of \"node:fs\" is not allowed".to_owned()),
        ]
    );
}

#[test]
fn escapes_to_the_network_and_to_code_generation_are_reported() {
    let found = messages(&[(
        "/app/App.tsx",
        r#"export default function App() {
  eval("1");
  new Function("return 1");
  fetch("/x");
  window.fetch("/x");
  globalThis["fe" + "tch"]("/x");
  const w = window;
  new XMLHttpRequest();
  new WebSocket("ws://x");
  document.cookie;
  process.env;
  require("fs");
  import("./x");
  return null;
}
"#,
    )]);
    assert_eq!(
        found,
        [
            "`eval` is not allowed: the app may not use it",
            "`Function` is not allowed: the app may not use it",
            "`fetch` is not allowed: the app may not use it",
            "`window.fetch` is not allowed: the app may not use it",
            "`globalThis[…]` is not allowed: name the property, as in `globalThis.innerWidth`",
            "`window` may only be used as `window.name` or in `typeof window`",
            "`XMLHttpRequest` is not allowed: the app may not use it",
            "`WebSocket` is not allowed: the app may not use it",
            "`document` is not allowed: the app may not use it",
            "`process` is not allowed: the app may not use it",
            "`require` is not allowed: the app may not use it",
            "dynamic import() is not allowed: import modules statically",
        ]
    );
}

#[test]
fn local_names_and_harmless_globals_are_fine() {
    let found = messages(&[(
        "/app/App.tsx",
        r#"import { useEffect } from "react";
type Doc = typeof document;
function fetch(x: string) { return x; }
export default function App({ process }: { process: number }) {
  useEffect(() => {
    const onResize = () => console.log(window.innerWidth);
    window.addEventListener("resize", onResize);
    return () => window.removeEventListener("resize", onResize);
  }, []);
  const ssr = typeof window === "undefined";
  return <p>{fetch("a")}{process}{String(ssr)}{JSON.stringify(window["innerHeight"])}</p>;
}
"#,
    )]);
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn a_missing_entry_or_import_is_a_problem() {
    let compiled = compile(&files(&[("/app/Other.tsx", "")]), "/app/App.tsx", &preview_policy());
    assert_eq!(
        compiled.problems,
        [Problem::file("/app/App.tsx", "the entry /app/App.tsx is not a file of the session")]
    );
    let found = problems(&[("/app/App.tsx", "import B from './Nope';\nexport default B;\n")]);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].1, found[0].2), (Some(1), Some(15)));
    assert!(found[0].3.starts_with("cannot find ./Nope (looked for /app/Nope, /app/Nope.tsx"), "{}", found[0].3);
}

#[test]
fn the_entry_must_default_export_a_component() {
    assert_eq!(
        messages(&[("/app/App.tsx", "export const App = () => null;\n")]),
        ["/app/App.tsx has no default export: it must `export default` a React component"]
    );
    assert_eq!(
        messages(&[("/app/App.tsx", "export default { title: 'x' };\n")]),
        ["/app/App.tsx must default-export a React component (a function or class), not an object"]
    );
    for ok in [
        "const App = () => null; export default App;",
        "function App() { return null } export { App as default };",
        "import { memo } from 'react'; export default memo(() => null);",
        "export default class App { render() { return null } }",
        "export default (() => null) as unknown as () => null;",
    ] {
        assert_eq!(messages(&[("/app/App.tsx", ok)]), Vec::<String>::new(), "{ok}");
    }
}

#[test]
fn modules_may_import_each_other_in_a_cycle() {
    let compiled = compile(
        &files(&[
            ("/app/App.tsx", "import { b } from './b';\nexport const a = 1;\nexport default () => <p>{b()}</p>;\n"),
            ("/app/b.ts", "import { a } from './App';\nexport const b = () => a;\n"),
        ]),
        "/app/App.tsx",
        &preview_policy(),
    );
    assert!(compiled.is_clean(), "{:?}", compiled.problems);
    assert_eq!(compiled.modules.len(), 2);
    assert!(compiled.modules[1].code.contains("\"./App.tsx\""));
}

#[test]
fn a_jsx_pragma_cannot_import_another_runtime() {
    let found =
        messages(&[("/app/App.tsx", "/** @jsxImportSource https://evil.example */\nexport default () => <p />;\n")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("import of \"https://evil.example/jsx-runtime\" is not allowed"), "{}", found[0]);
}

#[test]
fn invalid_json_and_files_that_are_not_text_are_problems() {
    let mut files = files(&[
        ("/app/App.tsx", "import d from './d.json';\nimport e from './e';\nexport default () => d + e;\n"),
        ("/app/d.json", "{\n  \"a\": ,\n}"),
    ]);
    files.insert("/app/e.ts".into(), vec![0xff, 0xfe]);
    let compiled = compile(&files, "/app/App.tsx", &preview_policy());
    let found: Vec<_> = compiled.problems.iter().map(|p| (p.file.as_str(), p.line, p.message.as_str())).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].0, found[0].1), ("/app/d.json", Some(2)));
    assert!(found[0].2.starts_with("invalid JSON: expected value"), "{}", found[0].2);
    assert_eq!(found[1], ("/app/e.ts", None, "the file is not UTF-8 text"));
}

#[test]
fn other_files_cannot_be_imported() {
    let found = messages(&[
        ("/app/App.tsx", "import logo from './logo.svg';\nexport default () => logo;\n"),
        ("/app/logo.svg", "<svg/>"),
    ]);
    assert_eq!(found, ["cannot import /app/logo.svg: only .tsx, .ts, .jsx, .js, .json and .css files can be imported"]);
}

#[test]
fn another_policy_limits_imports_to_its_own_modules_and_refuses_jsx() {
    let backend =
        Policy { externals: vec!["@stage/*".into()], forbidden_globals: vec!["eval".into()], ..Policy::default() };
    let files = files(&[
        (
            "/api/index.ts",
            "import { kv } from '@stage/kv';\nimport React from 'react';\nimport { h } from './h';\nexport default h(kv);\n",
        ),
        ("/api/h.tsx", "export const h = (x: unknown) => <p>{String(x)}</p>;\n"),
    ]);
    let compiled = compile(&files, "/api/index.ts", &backend);
    let found: Vec<_> = compiled.problems.iter().map(|p| (p.file.as_str(), p.line, p.message.as_str())).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].0, found[0].1), ("/api/index.ts", Some(2)));
    assert!(
        found[0].2.starts_with("import of \"react\" is not allowed; code may import @stage/*, ./ and ../ paths"),
        "{}",
        found[0].2
    );
    assert_eq!(found[1], ("/api/h.tsx", Some(1), "JSX is not supported here"));
}
