//! Compile benchmark: a 20-file TSX app (an entry importing 19 components that import each
//! other, a JSON file and shared helpers) through `stage_compile::compile` — module graph,
//! policy checks, import rewriting, hashing — and, in the same run, a bare in-process oxc
//! transform (parse, semantic, TypeScript + JSX transform, print) of the same 20 files.
//! Prints both medians and their ratio.
//!
//! Run: `cargo bench -p stage-compile --bench compile`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use oxc::allocator::Allocator;
use oxc::codegen::Codegen;
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{JsxOptions, JsxRuntime, TransformOptions, Transformer};
use stage_compile::{Alias, Jsx, Policy, compile};

const COMPONENTS: usize = 19;
const ROUNDS: usize = 200;

fn main() {
    let files = app();
    assert_eq!(files.len(), COMPONENTS + 1);
    let policy = policy();
    let checked = compile(&files, "/app/App.tsx", &policy);
    assert!(checked.is_clean(), "{:?}", checked.problems);
    assert_eq!(checked.modules.len(), COMPONENTS + 1);
    let bytes: usize = files.values().map(String::len).sum();

    let mut stage = Vec::with_capacity(ROUNDS);
    let mut bare = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        black_box(compile(black_box(&files), "/app/App.tsx", &policy));
        stage.push(started.elapsed());

        let started = Instant::now();
        for (path, source) in &files {
            black_box(bare_transform(path, source));
        }
        bare.push(started.elapsed());
    }
    let (stage, bare) = (median(stage), median(bare));
    println!("compile: {} files, {} KiB of TSX, {ROUNDS} rounds (medians)", files.len(), bytes / 1024);
    println!("  stage_compile::compile (graph, checks, rewrite, hashes): {:>8.3} ms", ms(stage));
    println!("  bare oxc transform of the same files:                  {:>8.3} ms", ms(bare));
    println!("  ratio: {:.2}x", stage.as_secs_f64() / bare.as_secs_f64());
}

/// What a build tool does with one file at least: parse, analyse, transform, print.
fn bare_transform(path: &str, source: &str) -> String {
    let allocator = Allocator::default();
    let source_type = if path.ends_with(".tsx") { SourceType::tsx() } else { SourceType::ts() };
    let mut program = Parser::new(&allocator, source, source_type).parse().program;
    let scoping = SemanticBuilder::new().build(&program).semantic.into_scoping();
    let options = TransformOptions {
        jsx: JsxOptions { runtime: JsxRuntime::Automatic, ..JsxOptions::enable() },
        ..TransformOptions::default()
    };
    Transformer::new(&allocator, Path::new(path), &options).build_with_scoping(scoping, &mut program);
    Codegen::new().build(&program).code
}

fn policy() -> Policy {
    Policy {
        externals: vec!["react".into(), "@/components/ui/*".into()],
        aliases: vec![Alias::new("@/", "/app/")],
        forbidden_globals: ["eval", "Function", "fetch", "document"].map(String::from).to_vec(),
        global_objects: vec!["window".into(), "globalThis".into()],
        jsx: Some(Jsx { import_source: "react".into() }),
        entry_exports_component: true,
        ..Policy::default()
    }
}

/// The entry renders every component; component `i` imports component `i + 1` (when there
/// is one) and the shared helpers, and holds some state, a list and a form.
fn app() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let imports: String = (0..COMPONENTS).map(|i| format!("import Part{i} from './parts/Part{i}';\n")).collect();
    let uses: String = (0..COMPONENTS).map(|i| format!("      <Part{i} title=\"part {i}\" />\n")).collect();
    files.insert(
        "/app/App.tsx".to_owned(),
        format!(
            "import {{ useState }} from 'react';\nimport {{ Card }} from '@/components/ui/card';\n{imports}\n\
             export default function App() {{\n  const [tab, setTab] = useState<string>('all');\n  return (\n    <Card>\n      \
             <button onClick={{() => setTab('all')}}>{{tab}}</button>\n{uses}    </Card>\n  );\n}}\n"
        ),
    );
    for i in 0..COMPONENTS {
        let next =
            if i + 1 < COMPONENTS { format!("import Part{} from './Part{}';\n", i + 1, i + 1) } else { String::new() };
        let child = if i + 1 < COMPONENTS { format!("<Part{} title=\"nested\" />", i + 1) } else { String::new() };
        let body = (0..8)
            .map(|n| {
                format!(
                    "  const total{n} = items.filter((item) => item.done === {}).reduce((sum, item) => sum + item.id * {n}, 0);\n",
                    n % 2 == 0
                )
            })
            .collect::<String>();
        files.insert(
            format!("/app/parts/Part{i}.tsx"),
            format!(
                "import {{ useMemo, useState }} from 'react';\n{next}\n\
                 interface Item {{ id: number; label: string; done: boolean }}\n\
                 type Props = {{ title: string; initial?: Item[] }};\n\n\
                 export default function Part{i}({{ title, initial = [] }}: Props) {{\n  \
                 const [items, setItems] = useState<Item[]>(initial);\n  const [draft, setDraft] = useState('');\n{body}  \
                 const sorted = useMemo(() => [...items].sort((a, b) => a.label.localeCompare(b.label)), [items]);\n  \
                 const add = (event: React.FormEvent) => {{\n    event.preventDefault();\n    \
                 setItems((old) => [...old, {{ id: old.length + 1, label: draft, done: false }}]);\n    setDraft('');\n  }};\n  \
                 return (\n    <section className=\"rounded border p-4\">\n      <h2>{{title}} ({{total0 + total1}})</h2>\n      \
                 <form onSubmit={{add}}>\n        <input value={{draft}} onChange={{(e) => setDraft(e.target.value)}} />\n        \
                 <button type=\"submit\">Add</button>\n      </form>\n      <ul>\n        \
                 {{sorted.map((item) => (\n          <li key={{item.id}} className={{item.done ? 'line-through' : ''}}>{{item.label}}</li>\n        \
                 ))}}\n      </ul>\n      {child}\n    </section>\n  );\n}}\n"
            ),
        );
    }
    files
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
