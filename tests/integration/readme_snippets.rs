//! The READMEs' shell snippets (README.md and examples/**/README.md), run the way a reader
//! pastes them: each README's ```sh blocks in order, in one shell, from the repository root,
//! against a real server this test starts (its address replaces `http://127.0.0.1:3000`).
//!
//! bash runs them with history expansion on (`set -H`, as in an interactive bash), so a `!`
//! inside double quotes fails as it would for the reader (`event not found`); zsh, when
//! installed, runs them too, so that an unquoted `?` or `*` fails (`no matches found`).
//! `curl` fails on HTTP errors (`--fail-with-body`) and the shell stops at the first failing
//! command. A block may be skipped only with a reason, by the line before its fence:
//! `<!-- snippet-test: skip (why) -->`. The third-party step plugin's flow is also checked
//! step by step against the API (`the_step_plugin_example_runs_in_a_workflow`).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};

use crate::common::Server;

const SKIP_MARK: &str = "<!-- snippet-test: skip";
/// The address the READMEs use for `stage serve`.
const README_ADDRESS: &str = "http://127.0.0.1:3000";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ sits in the repository").to_owned()
}

/// README.md and every examples/**/README.md, repository-relative, sorted.
fn readmes() -> Vec<PathBuf> {
    let root = repository();
    let mut found = vec![PathBuf::from("README.md")];
    let mut folders = vec![root.join("examples")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target" && n != "node_modules") {
                folders.push(path);
            } else if path.file_name().is_some_and(|n| n == "README.md") {
                found.push(path.strip_prefix(&root).unwrap().to_owned());
            }
        }
    }
    found.sort();
    found
}

/// A README's ```sh blocks: (first line number, text), and the skipped ones with their reason.
#[derive(Debug, Default)]
struct Snippets {
    run: Vec<(usize, String)>,
    skipped: Vec<(usize, String)>,
}

fn snippets(markdown: &str) -> Result<Snippets, String> {
    let mut snippets = Snippets::default();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut at = 0;
    while at < lines.len() {
        if lines[at].trim_end() != "```sh" {
            at += 1;
            continue;
        }
        let start = at + 1;
        let end = (start..lines.len())
            .find(|&i| lines[i].trim_end() == "```")
            .ok_or_else(|| format!("line {start}: unclosed ```sh block"))?;
        let block = lines[start..end].join("\n");
        let before = lines[..at].iter().rev().find(|line| !line.trim().is_empty()).map(|line| line.trim());
        match before.filter(|line| line.starts_with(SKIP_MARK)) {
            Some(mark) => {
                let reason = mark.trim_start_matches(SKIP_MARK).trim_end_matches("-->").trim();
                if !(reason.starts_with('(') && reason.ends_with(')') && reason.len() > 2) {
                    return Err(format!("line {at}: a skipped block must say why: {mark}"));
                }
                snippets.skipped.push((start, reason.to_owned()));
            }
            None => snippets.run.push((start, block)),
        }
        at = end + 1;
    }
    Ok(snippets)
}

/// What the shell needs that this machine may not have.
fn missing_tools() -> Vec<&'static str> {
    let works =
        |program: &str, args: &[&str]| Command::new(program).args(args).output().is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    for (tool, args) in [("bash", &["--version"][..]), ("jq", &["--version"]), ("git", &["--version"])] {
        if !works(tool, args) {
            missing.push(tool);
        }
    }
    // --fail-with-body needs curl 7.76 or later.
    if !works("curl", &["--fail-with-body", "--version"]) {
        missing.push("curl (7.76+)");
    }
    missing
}

/// A fake OpenAI-compatible API for backend-hello's `/summary`; its base URL.
async fn fake_inference() -> String {
    async fn completions(axum::Json(asked): axum::Json<Value>) -> axum::Json<Value> {
        axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": asked["model"],
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Stage runs apps." }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13 }
        }))
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(completions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/v1")
}

/// The script a shell runs for one README: a prelude, then each block, each followed by a
/// marker line.
fn script(prelude: &str, readme: &Path, snippets: &Snippets, base: &str) -> String {
    let mut script = String::from(prelude);
    for (line, block) in &snippets.run {
        script.push_str(&block.replace(README_ADDRESS, base));
        script.push_str(&format!("\necho '=== {} block at line {line} done'\n", readme.display()));
    }
    script.push_str("echo 'SNIPPETS DONE'\n");
    script
}

const BASH_PRELUDE: &str =
    "set -H\nset -o history\nset -e\nset -o pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n";
const ZSH_PRELUDE: &str = "set -e\nset -o pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n";

/// Runs `script` with `shell` from the repository root; stdout and stderr.
fn run_shell(shell: &str, script: &str, env: &[(&str, String)]) -> (bool, String, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let mut command = Command::new(shell);
    command.arg(file.path()).current_dir(repository()).stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What each README's run must have printed besides its markers.
fn expected_output(readme: &Path) -> &'static [&'static str] {
    match readme.to_str().unwrap() {
        "README.md" => {
            &["\"plan\":\"free\"", "\"values\":[[\"2024-03-04\",\"$1,000\",\"$2,000\"]]", "[[45355,1000,2000]]"]
        }
        "examples/form-to-sheet/README.md" => {
            &["{\"updatedRange\":\"Events!A1:B1\"}", "\"values\":[[\"ada@example.com\",1500]]"]
        }
        "examples/backend-hello/README.md" => {
            &["x-echo-path: /echo?x=1", "\"summary\":\"Stage runs apps.\"", "\"model\":\"gpt-4o-mini\""]
        }
        "examples/step-plugin/README.md" => &["{\"slug\":\"hello-stage-world\",\"words\":3}"],
        _ => &[],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_snippet_works_pasted_into_bash_and_zsh() {
    let missing = missing_tools();
    if !missing.is_empty() {
        eprintln!("SKIPPED every_readme_snippet_works_pasted_into_bash_and_zsh: missing {}", missing.join(", "));
        return;
    }
    let inference = fake_inference().await;
    let server = Server::start_with(&["--inference-base-url", &inference]);
    let temp = tempfile::tempdir().unwrap();
    let zsh = Command::new("zsh").arg("--version").output().is_ok_and(|o| o.status.success());
    if !zsh {
        eprintln!("note: zsh is not installed; the snippets run in bash only");
    }
    let mut ran = 0;
    for readme in readmes() {
        let markdown = std::fs::read_to_string(repository().join(&readme)).unwrap();
        let snippets = snippets(&markdown).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
        for (line, reason) in &snippets.skipped {
            eprintln!("{}: block at line {line} skipped {reason}", readme.display());
        }
        if snippets.run.is_empty() {
            continue;
        }
        // `stage` on PATH is the binary under test, as after `cargo install --path host`.
        let binary_dir = Path::new(env!("CARGO_BIN_EXE_stage")).parent().unwrap();
        let path = format!("{}:{}", binary_dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut env = vec![("TMPDIR", temp.path().display().to_string()), ("PATH", path)];
        let name = readme.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
        if let Some(wasm) =
            name.map(|n| format!("{}/examples/{n}.wasm", env!("OUT_DIR"))).filter(|w| Path::new(w).is_file())
        {
            env.push(("WASM", wasm));
        }
        let mut shells = vec![("bash", BASH_PRELUDE)];
        if zsh {
            shells.push(("zsh", ZSH_PRELUDE));
        }
        for (shell, prelude) in shells {
            let script = script(prelude, &readme, &snippets, &server.base);
            let (ok, stdout, stderr) = run_shell(shell, &script, &env);
            let context = format!("{shell} running {}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}", readme.display());
            assert!(ok, "failed: {context}");
            assert!(!stderr.contains("event not found"), "history expansion broke a line: {context}");
            assert!(stdout.trim_end().ends_with("SNIPPETS DONE"), "{context}");
            for expected in expected_output(&readme) {
                assert!(stdout.contains(expected), "expected {expected:?} in the output: {context}");
            }
        }
        ran += snippets.run.len();
    }
    assert!(ran >= 6, "only {ran} blocks ran: are the READMEs' ```sh blocks still there?");
}

#[test]
fn snippet_extraction_honours_skip_marks_with_reasons() {
    let markdown = "text\n```sh\necho one\n```\n<!-- snippet-test: skip (needs a GPU) -->\n\n```sh\necho two\n```\n```json\n{}\n```\n";
    let found = snippets(markdown).unwrap();
    assert_eq!(found.run, vec![(2, "echo one".to_owned())]);
    assert_eq!(found.skipped, vec![(7, "(needs a GPU)".to_owned())]);
    assert!(snippets("<!-- snippet-test: skip -->\n```sh\nx\n```\n").is_err(), "a skip needs a reason");
    assert!(snippets("```sh\nx\n").is_err());
}

#[test]
fn bash_with_history_expansion_catches_a_bang_in_double_quotes() {
    if missing_tools().contains(&"bash") {
        eprintln!("SKIPPED: no bash");
        return;
    }
    let (_, _, stderr) = run_shell("bash", &format!("{BASH_PRELUDE}echo \"Events!A:G\"\n"), &[]);
    assert!(stderr.contains("event not found"), "{stderr}");
    let (ok, stdout, _) = run_shell("bash", &format!("{BASH_PRELUDE}RANGE='Events!A:G'\necho \"$RANGE\"\n"), &[]);
    assert!(ok && stdout.contains("Events!A:G"), "{stdout}");
}

#[tokio::test]
async fn the_step_plugin_example_runs_in_a_workflow() {
    let server = Server::start();
    let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/examples/step-plugin.wasm")).expect("step-plugin example");
    let manifest: Value = serde_json::from_str(include_str!("../../examples/step-plugin/step.json")).unwrap();
    let component = base64::engine::general_purpose::STANDARD.encode(&wasm);
    let workflows = include_str!("../../examples/step-plugin/app/shift.workflows.json");

    // A workflow naming the kind cannot be published before the tenant has the plugin.
    let session = server.new_session().await;
    let pushed = server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/shift.workflows.json": workflows } }),
        )
        .await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let early = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Slugs" })).await;
    assert_eq!(early.status, 422, "{:?}", early.body);
    assert!(early.body.to_string().contains("acme.slugify"), "{:?}", early.body);

    let put = server.put("/api/v1/plugins/acme.slugify", json!({ "manifest": manifest, "component": component })).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["data"]["kind"], "acme.slugify");
    assert_eq!(
        put.body["data"]["manifest"]["inputs"],
        json!({ "required": ["text"], "optional": ["separator"], "additional": false })
    );

    let sid = server.publish(json!({ "/app/shift.workflows.json": workflows })).await;
    let run =
        server.post(&format!("/api/v1/run/{sid}/slug"), json!({ "input": { "title": "Hello, Stage World!" } })).await;
    assert_eq!((run.status, &run.body), (200, &json!({ "slug": "hello-stage-world", "words": 3 })));
    let empty = server.post(&format!("/api/v1/run/{sid}/slug"), json!({ "input": { "title": 42 } })).await;
    assert_eq!(empty.status, 502, "{:?}", empty.body);
    assert_eq!(empty.body["error"]["details"]["error"]["class"], "invalid-input", "{:?}", empty.body);
}
