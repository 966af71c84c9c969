//! The client commands of the `stage` binary (`stage new`, `push`, `run`, `logs`, …) against
//! a real server: their `--json` shapes, `--quiet` output and exit codes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

/// What a `stage` client command did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    /// stdout as bytes, for content that is not text.
    raw: Vec<u8>,
}

impl Ran {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    fn succeeded(self) -> Ran {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

/// Runs `stage ARGS` against `server` from an empty folder (so no `./.stage` key is found),
/// with `env` set, and `stdin` piped in.
fn stage_with(server: &Server, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Ran {
    let folder = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_stage"));
    command
        .args(args)
        .current_dir(folder.path())
        .env("STAGE_URL", &server.base)
        .env_remove("STAGE_KEY")
        .env_remove("STAGE_DATA_DIR")
        .env_remove("STAGE_SESSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("stage runs");
    child.stdin.take().expect("stdin").write_all(stdin).expect("stdin written");
    let output = child.wait_with_output().expect("stage finishes");
    Ran {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        raw: output.stdout,
    }
}

fn stage(server: &Server, args: &[&str]) -> Ran {
    stage_with(server, args, &[], b"")
}

fn new_session(server: &Server) -> String {
    stage(server, &["new", "--quiet"]).succeeded().stdout.trim().to_owned()
}

/// Writes `files` (relative path → content) under `root`.
fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (path, content) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

const APP_TSX: &str = "export default function App() { return <h1>Hello</h1>; }";

fn signup_workflows() -> String {
    json!({
        "version": 1,
        "config": { "plan": "free" },
        "workflows": {
            "signup": { "auth": "public", "steps": [
                { "id": "event", "pulse.track": { "name": "signup", "userId": "{{ input.email }}" } },
                { "response": { "status": 201, "body": { "eventId": "{{ steps.event.id }}", "plan": "{{ config.plan }}" } } }
            ] },
            "missing": { "steps": [ { "response": { "status": 404, "body": { "why": "nothing here" } } } ] }
        }
    })
    .to_string()
}

#[tokio::test]
async fn new_prints_the_session_id_as_json_or_alone_with_quiet() {
    let server = Server::start();
    assert_shape(&stage(&server, &["new", "--json"]).succeeded().json(), &json!({ "id": "<id:ses_>" }));
    let quiet = stage(&server, &["new", "-q"]).succeeded();
    assert!(quiet.stdout.starts_with("ses_") && quiet.stdout.trim().len() == quiet.stdout.len() - 1, "{quiet:?}");
    let human = stage(&server, &["new"]).succeeded();
    assert!(human.stdout.starts_with("✓ Session created: ses_"), "{human:?}");
}

#[tokio::test]
async fn write_from_stdin_then_read_gives_the_same_text() {
    let server = Server::start();
    let session = new_session(&server);
    let written = stage_with(&server, &["write", "/app/App.tsx", "-s", &session, "--json"], &[], APP_TSX.as_bytes());
    assert_eq!(written.succeeded().json(), json!({ "session": session, "path": "/app/App.tsx", "bytes": 56 }));
    let read = stage(&server, &["read", "/app/App.tsx", "-s", &session]).succeeded();
    assert_eq!(read.stdout, APP_TSX);
    let read = stage(&server, &["read", "/app/App.tsx", "-s", &session, "--json"]).succeeded();
    assert_shape(
        &read.json(),
        &json!({ "path": "/app/App.tsx", "content": APP_TSX, "version": 1, "size": 56, "createdAt": "<time>" }),
    );
}

#[tokio::test]
async fn write_of_a_binary_file_reads_back_the_same_bytes() {
    let server = Server::start();
    let session = new_session(&server);
    let folder = tempfile::tempdir().unwrap();
    let local = folder.path().join("logo.bin");
    std::fs::write(&local, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    stage(&server, &["write", "/app/logo.bin", local.to_str().unwrap(), "-s", &session]).succeeded();
    let read = stage(&server, &["read", "/app/logo.bin", "-s", &session, "--json"]).succeeded().json();
    assert_eq!((&read["content"], &read["encoding"]), (&json!("//4AAQ=="), &json!("base64")));
    let raw = stage(&server, &["read", "/app/logo.bin", "-s", &session]).succeeded().raw;
    assert_eq!(raw, [0xff, 0xfe, 0x00, 0x01]);
}

#[tokio::test]
async fn read_of_an_older_version_gives_that_version() {
    let server = Server::start();
    let session = new_session(&server);
    stage_with(&server, &["write", "/notes.md", "-", "-s", &session], &[], b"one").succeeded();
    stage_with(&server, &["write", "/notes.md", "-", "-s", &session], &[], b"two").succeeded();
    assert_eq!(stage(&server, &["read", "/notes.md", "-s", &session]).succeeded().stdout, "two");
    assert_eq!(stage(&server, &["read", "/notes.md", "--version", "1", "-s", &session]).succeeded().stdout, "one");
}

#[tokio::test]
async fn read_of_a_missing_file_exits_3_naming_it() {
    let server = Server::start();
    let session = new_session(&server);
    let read = stage(&server, &["read", "/app/nope.tsx", "-s", &session]);
    assert_eq!(read.code, 3, "{read:?}");
    assert_eq!(read.stdout, "");
    assert!(read.stderr.contains("/app/nope.tsx"), "{read:?}");
}

#[tokio::test]
async fn ls_lists_the_files_under_a_folder() {
    let server = Server::start();
    let session = new_session(&server);
    for path in ["/app/App.tsx", "/app/src/a.ts", "/apple.txt"] {
        stage_with(&server, &["write", path, "-s", &session], &[], b"x").succeeded();
    }
    let listed = stage(&server, &["ls", "/app", "-s", &session, "--json"]).succeeded();
    let file = |path: &str| json!({ "path": path, "version": 1, "size": 1, "createdAt": "<time>" });
    assert_shape(
        &listed.json(),
        &json!({ "session": session, "path": "/app", "files": [file("/app/App.tsx"), file("/app/src/a.ts")], "count": 2 }),
    );
    let every = stage(&server, &["ls", "-s", &session]).succeeded();
    assert_eq!(every.stdout, "/app/App.tsx\n/app/src/a.ts\n/apple.txt\n");
}

#[tokio::test]
async fn render_then_status_shows_the_render_and_the_files() {
    let server = Server::start();
    let session = new_session(&server);
    stage_with(&server, &["write", "/app/App.tsx", "-s", &session], &[], APP_TSX.as_bytes()).succeeded();
    let rendered = stage(&server, &["render", "-s", &session, "--json"]).succeeded();
    assert_eq!(rendered.json(), json!({ "entry": "/app/App.tsx", "version": 1, "error": null, "problems": [] }));
    let status = stage(&server, &["status", "-s", &session, "--json"]).succeeded();
    assert_shape(
        &status.json(),
        &json!({
            "session": { "createdAt": "<time>", "lastAccessedAt": "<time>" },
            "render": { "entry": "/app/App.tsx", "version": 1, "error": null, "problems": [], "renderedAt": "<time>" },
            "files": [{ "path": "/app/App.tsx", "version": 1, "size": 56 }]
        }),
    );
    assert_eq!(stage(&server, &["status", "-s", &session, "-q"]).succeeded().stdout, "ok\n");
}

#[tokio::test]
async fn render_of_a_missing_entry_records_the_render_with_its_problem() {
    let server = Server::start();
    let session = new_session(&server);
    let rendered = stage(&server, &["render", "/app/Main.tsx", "-s", &session]).succeeded();
    assert_eq!(
        rendered.stdout,
        "✗ Rendered /app/Main.tsx (v1) with 1 problem:\n/app/Main.tsx: the entry /app/Main.tsx is not a file of the session\n"
    );
    let status = stage(&server, &["status", "-s", &session, "-q"]).succeeded();
    assert_eq!(status.stdout, "1 problem:\n\n/app/Main.tsx: the entry /app/Main.tsx is not a file of the session\n");
}

#[tokio::test]
async fn status_of_an_unknown_session_exits_3() {
    let server = Server::start();
    let status = stage(&server, &["status", "-s", "ses_nope", "--json"]);
    assert_eq!((status.code, status.stdout.as_str()), (3, ""), "{status:?}");
    assert!(status.stderr.contains("ses_nope"), "{status:?}");
}

#[tokio::test]
async fn push_writes_a_folder_without_dot_entries_and_node_modules_then_renders() {
    let server = Server::start();
    let session = new_session(&server);
    let folder = tempfile::tempdir().unwrap();
    write_tree(
        folder.path(),
        &[
            ("App.tsx", APP_TSX.as_bytes()),
            ("src/util.ts", b"export const x = 1;"),
            (".env", b"SECRET=1"),
            ("node_modules/react/index.js", b"module.exports = {}"),
        ],
    );
    let pushed = stage(&server, &["push", folder.path().to_str().unwrap(), "-s", &session, "--json"]).succeeded();
    assert_eq!(
        pushed.json(),
        json!({
            "session": session,
            "files": ["/app/App.tsx", "/app/src/util.ts"],
            "count": 2,
            "render": { "entry": "/app/App.tsx", "version": 1, "error": null, "problems": [] }
        })
    );
    assert_eq!(pushed.stderr, "", "no progress for a push of one batch");
    let listed = stage(&server, &["ls", "-s", &session, "-q"]).succeeded();
    assert_eq!(listed.stdout, "/app/App.tsx\n/app/src/util.ts\n");
}

#[tokio::test]
async fn push_with_no_render_leaves_the_session_unrendered() {
    let server = Server::start();
    let session = new_session(&server);
    let folder = tempfile::tempdir().unwrap();
    write_tree(folder.path(), &[("App.tsx", APP_TSX.as_bytes())]);
    let pushed = stage(&server, &["push", folder.path().to_str().unwrap(), "/site", "--no-render", "-s", &session]);
    let pushed = pushed.succeeded();
    assert!(pushed.stdout.starts_with("✓ Pushed 1 file to /site\n"), "{pushed:?}");
    assert!(!pushed.stdout.contains("Rendered"), "{pushed:?}");
    let status = stage(&server, &["status", "-s", &session, "--json"]).succeeded().json();
    assert_eq!((&status["render"], &status["files"][0]["path"]), (&Value::Null, &json!("/site/App.tsx")));
}

/// A folder of `n` small files named `f000.txt`, ….
fn many_files(n: usize) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    for i in 0..n {
        std::fs::write(folder.path().join(format!("f{i:03}.txt")), format!("file {i}")).unwrap();
    }
    folder
}

#[tokio::test]
async fn push_of_many_files_with_progress_prints_a_line_per_batch_on_stderr() {
    let server = Server::start();
    let session = new_session(&server);
    let folder = many_files(250);
    let pushed = stage(&server, &["push", folder.path().to_str().unwrap(), "-s", &session, "--progress", "--json"]);
    let pushed = pushed.succeeded();
    assert_eq!(pushed.stderr, "pushed 100/250 files\npushed 200/250 files\npushed 250/250 files\n");
    assert_eq!(pushed.json()["count"], 250);
    // A folder without App.tsx is rendered all the same: the render says the entry is missing.
    assert_eq!(
        pushed.json()["render"],
        json!({
            "entry": "/app/App.tsx",
            "version": 1,
            "error": "1 problem:\n\n/app/App.tsx: the entry /app/App.tsx is not a file of the session",
            "problems": [{ "file": "/app/App.tsx", "line": null, "column": null,
                           "message": "the entry /app/App.tsx is not a file of the session" }],
        })
    );
    let status = server.get(&format!("/api/v1/stage/sessions/{session}/status")).await;
    assert_eq!(status.body["data"]["files"].as_array().unwrap().len(), 250);
    assert_eq!(status.body["data"]["files"][249]["path"], "/app/f249.txt");
}

#[tokio::test]
async fn push_of_many_files_shows_no_progress_when_stderr_is_not_a_terminal_or_with_quiet() {
    let server = Server::start();
    let session = new_session(&server);
    let folder = many_files(150);
    let path = folder.path().to_str().unwrap();
    let piped = stage(&server, &["push", path, "-s", &session]).succeeded();
    assert_eq!(piped.stderr, "");
    assert!(piped.stdout.starts_with("✓ Pushed 150 files to /app\n"), "{piped:?}");
    assert!(piped.stdout.contains("  … and 130 more\n"), "{piped:?}");
    let quiet = stage(&server, &["push", path, "-s", &session, "--quiet", "--progress"]).succeeded();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
}

#[tokio::test]
async fn push_of_a_missing_folder_exits_2() {
    let server = Server::start();
    let session = new_session(&server);
    let pushed = stage(&server, &["push", "/no/such/folder", "-s", &session]);
    assert_eq!(pushed.code, 2, "{pushed:?}");
    assert!(pushed.stderr.contains("/no/such/folder"), "{pushed:?}");
}

/// A session holding the signup app, pushed with the CLI.
fn session_with_app(server: &Server) -> String {
    let session = new_session(server);
    let folder = tempfile::tempdir().unwrap();
    let workflows = signup_workflows();
    write_tree(folder.path(), &[("App.tsx", APP_TSX.as_bytes()), ("shift.workflows.json", workflows.as_bytes())]);
    stage(server, &["push", folder.path().to_str().unwrap(), "-s", &session]).succeeded();
    session
}

#[tokio::test]
async fn publish_creates_the_app_then_publishes_new_versions_of_it() {
    let server = Server::start();
    let session = session_with_app(&server);
    let first = stage(&server, &["publish", "-s", &session, "--name", "Signup", "--json"]).succeeded();
    let app = |name: &str, version: i64| {
        json!({
            "sid": "<id:app_>", "sessionId": session, "name": name, "description": null, "config": {},
            "repository": null, "version": version, "createdAt": "<time>", "updatedAt": "<time>"
        })
    };
    assert_shape(&first.json(), &app("Signup", 1));
    let second = stage(&server, &["publish", "-s", &session, "--name", "Signup v2", "--json"]).succeeded();
    assert_shape(&second.json(), &app("Signup v2", 2));
    assert_eq!(second.json()["sid"], first.json()["sid"]);
    let quiet = stage(&server, &["publish", "-s", &session, "-q"]).succeeded();
    assert_eq!(quiet.stdout.trim(), first.json()["sid"].as_str().unwrap());
}

#[tokio::test]
async fn publish_of_an_invalid_workflow_file_exits_2_listing_its_problems() {
    let server = Server::start();
    let session = new_session(&server);
    stage_with(&server, &["write", "/app/shift.workflows.json", "-s", &session], &[], b"{ not json").succeeded();
    let published = stage(&server, &["publish", "-s", &session]);
    assert_eq!(published.code, 2, "{published:?}");
    assert!(published.stderr.contains("422 VALIDATION_FAILED: /app/shift.workflows.json"), "{published:?}");
}

fn published_app(server: &Server) -> String {
    let session = session_with_app(server);
    stage(server, &["publish", "-s", &session, "-q"]).succeeded().stdout.trim().to_owned()
}

#[tokio::test]
async fn run_prints_the_workflows_answer_and_its_run_id() {
    let server = Server::start();
    let app = published_app(&server);
    let input = r#"{"email":"ada@example.com"}"#;
    let ran = stage(&server, &["run", &app, "signup", "--input", input, "--json"]).succeeded();
    assert_shape(
        &ran.json(),
        &json!({ "runId": "<id:run_>", "httpStatus": 201, "replayed": false,
                 "body": { "eventId": "<id:evt_>", "plan": "free" } }),
    );
    let quiet = stage_with(&server, &["run", &app, "signup", "--input-file", "-", "-q"], &[], input.as_bytes());
    assert!(quiet.succeeded().stdout.starts_with("run_"));
}

#[tokio::test]
async fn run_with_the_same_idempotency_key_replays_the_first_answer() {
    let server = Server::start();
    let app = published_app(&server);
    let args = ["run", &app, "signup", "-i", r#"{"email":"ada@example.com"}"#, "--idempotency-key", "k1", "--json"];
    let first = stage(&server, &args).succeeded().json();
    let again = stage(&server, &args).succeeded().json();
    assert_eq!((&again["runId"], &again["body"], &again["replayed"]), (&first["runId"], &first["body"], &json!(true)));
}

#[tokio::test]
async fn run_of_a_workflow_that_answers_an_error_exits_1_with_its_answer() {
    let server = Server::start();
    let app = published_app(&server);
    let ran = stage(&server, &["run", &app, "missing", "--json"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_shape(
        &ran.json(),
        &json!({ "runId": "<id:run_>", "httpStatus": 404, "replayed": false, "body": { "why": "nothing here" } }),
    );
}

#[tokio::test]
async fn run_of_an_unknown_app_or_workflow_exits_3() {
    let server = Server::start();
    let app = published_app(&server);
    for (app, workflow) in [("app_nope", "signup"), (app.as_str(), "nope")] {
        let ran = stage(&server, &["run", app, workflow]);
        assert_eq!((ran.code, ran.stdout.as_str()), (3, ""), "{ran:?}");
        assert!(ran.stderr.contains("not found"), "{ran:?}");
    }
}

#[tokio::test]
async fn logs_list_an_apps_runs_newest_first() {
    let server = Server::start();
    let app = published_app(&server);
    let first = stage(&server, &["run", &app, "signup", "-i", r#"{"email":"a@b.c"}"#, "-q"]).succeeded();
    let second = stage(&server, &["run", &app, "missing", "-q"]);
    assert_eq!(second.code, 1);
    let listed = stage(&server, &["logs", &app, "--json"]).succeeded().json();
    let summary: Vec<Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|run| json!([run["id"], run["workflow"], run["status"], run["answer"]["status"], run["steps"]]))
        .collect();
    assert_eq!(
        summary,
        [
            json!([second.stdout.trim(), "missing", "succeeded", 404, []]),
            json!([first.stdout.trim(), "signup", "succeeded", 201, []])
        ]
    );
    let quiet = stage(&server, &["logs", &app, "-q", "--limit", "1"]).succeeded();
    assert_eq!(quiet.stdout.trim(), second.stdout.trim());
}

#[tokio::test]
async fn logs_of_a_run_show_its_steps_log_lines_and_errors() {
    let server = Server::start();
    server.install_chaos("test.chaos", json!([])).await;
    let workflows = json!({ "version": 1, "workflows": { "noisy": { "steps": [
        { "id": "say", "test.chaos": { "mode": "print", "text": "hello from the step" } },
        { "id": "boom", "test.chaos": { "mode": "fail", "class": "permanent" } }
    ] } } });
    let app = server.publish(json!({ "/app/shift.workflows.json": workflows.to_string() })).await;
    let ran = stage(&server, &["run", &app, "noisy", "-q"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let run_id = ran.stdout.trim();

    let record = stage(&server, &["logs", "--run", run_id, "--json"]).succeeded().json();
    assert_eq!((&record["id"], &record["status"]), (&json!(run_id), &json!("failed")));
    let steps: Vec<Value> =
        record["steps"].as_array().unwrap().iter().map(|s| json!([s["id"], s["status"], s["log"]])).collect();
    assert_eq!(
        steps,
        [
            json!(["say", "succeeded", [{ "attempt": 1, "level": "info", "message": "hello from the step" }]]),
            json!(["boom", "failed", []])
        ]
    );

    let human = stage(&server, &["logs", "--run", run_id]).succeeded().stdout;
    for expected in [
        "noisy",
        "failed",
        "step 0  say",
        "[info] hello from the step",
        "stdout: hello from the step",
        "step 1  boom",
        "error (permanent): failing on purpose (attempt 1)",
    ] {
        assert!(human.contains(expected), "{expected:?} missing from:\n{human}");
    }
    assert_eq!(stage(&server, &["logs", "--run", run_id, "-q"]).succeeded().stdout, "failed\n");
}

#[tokio::test]
async fn logs_of_an_unknown_run_or_app_exit_3() {
    let server = Server::start();
    assert_eq!(stage(&server, &["logs", "--run", "run_nope"]).code, 3);
    assert_eq!(stage(&server, &["logs", "app_nope"]).code, 3);
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let server = Server::start();
    for args in [
        &["read", "/app/App.tsx"][..],
        &["logs"],
        &["run", "app_x", "signup", "--input", "{not json"],
        &["run", "app_x", "signup", "--input", "[1]"],
        &["frobnicate"],
    ] {
        let ran = stage(&server, args);
        assert_eq!(ran.code, 2, "{args:?}: {ran:?}");
        assert!(ran.stderr.starts_with("error: "), "{args:?}: {ran:?}");
    }
    let write = stage_with(&server, &["write", "/a", "/no/such/file", "-s", "ses_x"], &[], b"");
    assert_eq!(write.code, 2, "{write:?}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_exits_4_naming_stage_url() {
    let server = Server::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let ran = stage_with(&server, &["new"], &[("STAGE_URL", &url)], b"");
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(ran.stderr.contains(&url) && ran.stderr.contains("STAGE_URL"), "{ran:?}");
}

#[tokio::test]
async fn without_a_key_a_server_that_requires_one_exits_5_saying_how_to_pass_it() {
    let server = Server::start_with(&["--auth", "required"]);
    let ran = stage(&server, &["new"]);
    assert_eq!(ran.code, 5, "{ran:?}");
    assert!(ran.stderr.contains("401") && ran.stderr.contains("STAGE_KEY"), "{ran:?}");
    let wrong = stage_with(&server, &["new"], &[("STAGE_KEY", "sk_wrong")], b"");
    assert_eq!(wrong.code, 5, "{wrong:?}");
}

#[tokio::test]
async fn the_key_comes_from_stage_key_or_the_local_data_folder() {
    let server = Server::start_with(&["--auth", "required"]);
    let key = server.admin_key();
    stage_with(&server, &["new"], &[("STAGE_KEY", &key)], b"").succeeded();
    let data_dir = server.data_dir.to_str().unwrap();
    stage_with(&server, &["new"], &[("STAGE_DATA_DIR", data_dir)], b"").succeeded();
}
