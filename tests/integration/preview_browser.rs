//! The preview page in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) driven over the DevTools protocol, on a session's page (`/s/:id`,
//! the working copy) and on an app's (`/s/:appSid`, the published version). The page's
//! third-party modules come from a module base each test serves on loopback: React and
//! Tailwind's browser build fetched from the npm registry with `npm` and bundled to ES
//! modules with esbuild, so no CDN is involved. Without a browser (or without `npm`), each
//! test says why it is skipped.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use crate::common::Server;
use crate::preview::{app_files, published_session_with, retitle_and_render, state_of};

const REACT: &str = "19.1.1";
const TAILWIND: &str = "4.1.11";
const ESBUILD: &str = "0.25.8";

/// The text of the title in [`app_files`], as the page shows it.
const TITLE: &str = "document.querySelector('#title')?.textContent";

/// The build the page shows (the page script marks it on `<html>`).
const SHOWN_BUILD: &str = "document.documentElement.dataset.stageBuild";

/// True in the page once its title reads `text`.
fn title_is(text: &str) -> String {
    format!("{TITLE} === {}", json!(text))
}

/// What a browser test runs on: Chromium, and a Stage whose module base is served on
/// loopback.
struct Setup {
    chromium: PathBuf,
    server: Server,
    _modules: tokio::task::JoinHandle<()>,
}

/// Starts a [`Setup`]; `None`, having printed why `test` is skipped, on a machine with no
/// browser (or no `npm` to fetch the module base with).
async fn setup(test: &str) -> Option<Setup> {
    let Some(chromium) = find_browser() else {
        println!("SKIPPED {test}: no chromium on PATH (install Debian's chromium, as .ci/run does)");
        return None;
    };
    if which("npm").is_none() {
        println!("SKIPPED {test}: no npm to fetch React for the module base");
        return None;
    }
    let modules = tokio::task::spawn_blocking(module_base).await.unwrap();
    let (modules_url, modules) = serve_modules(modules).await;
    let server = Server::start_with(&["--preview-modules-url", &modules_url]);
    Some(Setup { chromium, server, _modules: modules })
}

// The DevTools calls block; the module server needs workers of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_preview_page_renders_updates_live_and_reports_errors_in_chromium() {
    let Some(Setup { chromium, server, _modules }) =
        setup("the_preview_page_renders_updates_live_and_reports_errors_in_chromium").await
    else {
        return;
    };

    let session = server.new_session().await;
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": app_files() })).await;
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;

    let page_url = server.url(&format!("/s/{session}"));
    let mut browser = Browser::launch(&chromium).await;
    let browser = &mut browser;

    // The component's text is in the DOM.
    browser.navigate(&page_url);
    browser.wait_for("document.querySelector('#title')?.textContent === 'Hello from Stage'");
    browser.wait_for("document.documentElement.hasAttribute('data-stage-live')");
    // Tailwind (from the module base) styled the kit's button; the app's CSS file applies.
    browser.wait_for("getComputedStyle(document.querySelector('#counter')).borderRadius !== '0px'");
    browser.wait_for("getComputedStyle(document.querySelector('#title')).letterSpacing !== 'normal'");

    // A click handler updates state.
    assert_eq!(browser.eval("document.querySelector('#counter').textContent"), json!("Clicked 0 times"));
    browser.eval("document.querySelector('#counter').click()");
    browser.wait_for("document.querySelector('#counter').textContent === 'Clicked 1 times'");
    let screenshot = browser.screenshot();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("preview-page.png");
    std::fs::write(&shot, screenshot).unwrap();
    println!("screenshot of the preview page: {}", shot.display());

    // A pushed change re-renders without a reload.
    browser.eval("window.stillTheSamePage = true");
    server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/data.json": "{ \"title\": \"Changed live\" }" } }),
        )
        .await;
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;
    browser.wait_for("document.querySelector('#title')?.textContent === 'Changed live'");
    assert_eq!(browser.eval("window.stillTheSamePage === true"), json!(true), "the page was not reloaded");

    // A script of the page calling an admin route without a key is refused.
    let status = browser.eval_async("fetch('/api/v1/admin/tenants').then((r) => r.status)");
    assert_eq!(status, json!(401));
    let status = browser.eval_async(
        "fetch('/api/v1/admin/tenants', { method: 'POST', body: JSON.stringify({ id: 'evil' }) }).then((r) => r.status)",
    );
    assert_eq!(status, json!(401));

    // A runtime throw shows up in the render's error.
    server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/App.tsx": "export default function App() {\n  throw new Error('boom in render');\n}\n" } }),
        )
        .await;
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;
    browser.wait_for("document.querySelector('[data-stage-problem]')?.textContent.includes('boom in render')");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = server.get(&format!("/api/v1/stage/sessions/{session}/status")).await;
        if status.body["data"]["render"]["error"] == "Error: boom in render" {
            break;
        }
        assert!(Instant::now() < deadline, "the error never reached the render state: {:?}", status.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// The published app's page (/s/:appSid): the version published, not the working copy.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_page_shows_the_published_version_in_chromium() {
    let Some(Setup { chromium, server, _modules }) = setup("an_app_page_shows_the_published_version_in_chromium").await
    else {
        return;
    };
    let (_, app) = published_session_with(&server, app_files()).await;

    let mut page = Browser::launch(&chromium).await;
    page.open(&server.url(&format!("/s/{app}")));
    page.wait_for(&title_is("Hello from Stage"));
    let state = state_of(&server, &app).await;
    assert_eq!(state["published"]["version"], 1);
    assert_eq!(page.eval(SHOWN_BUILD), state["build"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_page_keeps_the_published_version_while_the_session_is_edited_in_chromium() {
    let Some(Setup { chromium, server, _modules }) =
        setup("an_app_page_keeps_the_published_version_while_the_session_is_edited_in_chromium").await
    else {
        return;
    };
    let (session, app) = published_session_with(&server, app_files()).await;
    let mut app_page = Browser::launch(&chromium).await;
    app_page.open(&server.url(&format!("/s/{app}")));
    app_page.wait_for(&title_is("Hello from Stage"));
    // The session's own page, in a browser of its own, hears of the session's renders.
    let mut session_page = Browser::launch(&chromium).await;
    session_page.open(&server.url(&format!("/s/{session}")));
    session_page.wait_for(&title_is("Hello from Stage"));
    app_page.eval("window.stillTheSamePage = true");
    let shown = app_page.eval(SHOWN_BUILD);

    retitle_and_render(&server, &session, "Working copy").await;
    // Once the session's page shows the render, its event has been delivered: the app's
    // page had its chance to react to it too.
    session_page.wait_for(&title_is("Working copy"));
    assert_eq!(app_page.eval(TITLE), json!("Hello from Stage"));
    assert_eq!(app_page.eval(SHOWN_BUILD), shown, "the app's page shows the same build");
    assert_eq!(app_page.eval("window.stillTheSamePage === true"), json!(true), "the page was not reloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_page_shows_a_new_version_without_a_reload_in_chromium() {
    let Some(Setup { chromium, server, _modules }) =
        setup("an_app_page_shows_a_new_version_without_a_reload_in_chromium").await
    else {
        return;
    };
    let (session, app) = published_session_with(&server, app_files()).await;
    let mut page = Browser::launch(&chromium).await;
    page.open(&server.url(&format!("/s/{app}")));
    page.wait_for(&title_is("Hello from Stage"));
    page.eval("window.stillTheSamePage = true");

    retitle_and_render(&server, &session, "Second version").await;
    let republished = server.post(&format!("/api/v1/stage/apps/{app}/versions"), json!({})).await;
    assert_eq!(republished.status, 201, "{:?}", republished.body);
    page.wait_for(&title_is("Second version"));
    assert_eq!(page.eval("window.stillTheSamePage === true"), json!(true), "the page was not reloaded");
    let state = state_of(&server, &app).await;
    assert_eq!(state["published"]["version"], 2);
    assert_eq!(page.eval(SHOWN_BUILD), state["build"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_error_on_an_app_page_is_shown_there_and_not_recorded_in_chromium() {
    let Some(Setup { chromium, server, _modules }) =
        setup("an_error_on_an_app_page_is_shown_there_and_not_recorded_in_chromium").await
    else {
        return;
    };
    let throws = "export default function App() {\n  throw new Error('boom on the app page');\n}\n";
    let (session, app) = published_session_with(&server, json!({ "/app/App.tsx": throws })).await;
    let mut page = Browser::launch(&chromium).await;
    page.record_fetches();
    page.open(&server.url(&format!("/s/{app}")));
    page.wait_for("document.querySelector('[data-stage-problem]')?.textContent.includes('boom on the app page')");

    // Whatever the page sent about it has been answered, and none of it was a report.
    page.wait_for("window.stageFetches.every((call) => call.settled)");
    let sent = page.eval("window.stageFetches.map((call) => `${call.method} ${call.url}`)");
    assert!(sent.as_array().unwrap().iter().all(|call| !call.as_str().unwrap().contains("/render/error")), "{sent}");
    let status = server.get(&format!("/api/v1/stage/sessions/{session}/status")).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    let render = &status.body["data"]["render"];
    assert_eq!(render["version"], 1, "{render}");
    assert_eq!(render["error"], Value::Null, "the session's render error is the working copy's: {render}");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
}

fn find_browser() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STAGE_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"].into_iter().find_map(which)
}

/// The module base's files, built once for all the tests of this run (they run at once).
fn module_base() -> Arc<HashMap<String, Vec<u8>>> {
    static BASE: OnceLock<Arc<HashMap<String, Vec<u8>>>> = OnceLock::new();
    BASE.get_or_init(|| Arc::new(build_module_base())).clone()
}

/// The module base's files by URL path: React, react/jsx-runtime and react-dom/client as
/// ES modules sharing one bundle (one React), and Tailwind's browser build.
fn build_module_base() -> HashMap<String, Vec<u8>> {
    // Kept between runs (under the target dir) so that only the first run downloads.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("preview-modules-react{REACT}-tw{TAILWIND}"));
    let out = dir.join("out");
    if !out.join("vendor.js").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package.json"), "{\"private\":true}").unwrap();
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg(format!("react@{REACT}"))
            .arg(format!("react-dom@{REACT}"))
            .arg(format!("@tailwindcss/browser@{TAILWIND}"))
            .arg(format!("esbuild@{ESBUILD}"))
            .current_dir(&dir));
        std::fs::write(
            dir.join("vendor.js"),
            "import * as React from 'react';\nimport * as JsxRuntime from 'react/jsx-runtime';\n\
             import * as ReactDOMClient from 'react-dom/client';\nexport { React, JsxRuntime, ReactDOMClient };\n",
        )
        .unwrap();
        run(Command::new(dir.join("node_modules/.bin/esbuild"))
            .args(["vendor.js", "--bundle", "--format=esm", "--minify", "--define:process.env.NODE_ENV=\"production\""])
            .arg(format!("--outfile={}", out.join("vendor.js").display()))
            .current_dir(&dir));
        // The names each module exports, as Node sees them.
        let names = run(Command::new("node")
            .arg("-e")
            .arg(
                "const names = (m) => Object.keys(require(m)).filter((n) => n !== 'default' && /^[A-Za-z_$][\\w$]*$/.test(n));\
                 console.log(JSON.stringify({ react: names('react'), jsx: names('react/jsx-runtime'), client: names('react-dom/client') }))",
            )
            .current_dir(&dir));
        let names: Value = serde_json::from_slice(&names).unwrap();
        let wrapper = |binding: &str, list: &Value| {
            let list: Vec<&str> = list.as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
            format!(
                "import {{ {binding} as m }} from '/vendor.js';\nexport default m;\nexport const {{ {} }} = m;\n",
                list.join(", ")
            )
        };
        std::fs::write(out.join("react.js"), wrapper("React", &names["react"])).unwrap();
        std::fs::write(out.join("jsx-runtime.js"), wrapper("JsxRuntime", &names["jsx"])).unwrap();
        std::fs::write(out.join("react-dom-client.js"), wrapper("ReactDOMClient", &names["client"])).unwrap();
        std::fs::copy(dir.join("node_modules/@tailwindcss/browser/dist/index.global.js"), out.join("tailwind.js"))
            .unwrap();
    }
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    HashMap::from([
        ("/vendor.js".to_owned(), read("vendor.js")),
        (format!("/react@{REACT}"), read("react.js")),
        (format!("/react@{REACT}/jsx-runtime"), read("jsx-runtime.js")),
        (format!("/react-dom@{REACT}/client"), read("react-dom-client.js")),
        (format!("/@tailwindcss/browser@{TAILWIND}"), read("tailwind.js")),
    ])
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.stderr(Stdio::inherit()).output().expect("the command starts");
    assert!(output.status.success(), "{command:?} failed");
    output.stdout
}

/// Serves the module base on loopback (paths as an esm.sh-compatible server has them,
/// queries ignored, CORS open as module scripts need); answers its URL.
async fn serve_modules(files: Arc<HashMap<String, Vec<u8>>>) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{StatusCode, Uri, header};
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some(body) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/javascript"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                    body.clone(),
                ),
                None => (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "text/plain"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                    Vec::new(),
                ),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

/// One headless Chromium and its one page, driven over the DevTools protocol.
struct Browser {
    process: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Browser {
    async fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut process = Command::new(binary)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
            .args(["--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1024,768"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it picked into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some(port) = text.lines().next().and_then(|l| l.parse::<u16>().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = process.try_wait() {
                panic!("chromium exited: {status}");
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let list = format!("http://127.0.0.1:{port}/json/list");
        let targets: Value = reqwest::get(list).await.unwrap().json().await.unwrap();
        let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap().to_owned();
        let (socket, _) =
            tokio::task::spawn_blocking(move || tungstenite::connect(url).expect("DevTools websocket")).await.unwrap();
        let mut browser = Browser { process, socket, next_id: 0, _profile: profile };
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Sends a command and answers its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(message)).unwrap();
        loop {
            let Message::Text(text) = self.socket.read().unwrap() else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }

    /// Opens a preview page and waits until it listens for news (its events are open).
    fn open(&mut self, url: &str) {
        self.navigate(url);
        self.wait_for("document.documentElement.hasAttribute('data-stage-live')");
    }

    /// From the next page on, records each `fetch` the page's scripts make in
    /// `window.stageFetches`: `{method, url, settled}`.
    fn record_fetches(&mut self) {
        let source = r#"(() => {
            const fetch = window.fetch;
            window.stageFetches = [];
            window.fetch = function (input, init) {
              const call = { method: init?.method ?? input?.method ?? "GET", url: String(input?.url ?? input), settled: false };
              window.stageFetches.push(call);
              const answer = fetch.apply(this, arguments);
              answer.then(() => { call.settled = true; }, () => { call.settled = true; });
              return answer;
            };
          })();"#;
        self.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": source }));
    }

    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    fn eval_async(&mut self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }));
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Polls `condition` in the page until it is true: at most 300 tries, 100 ms apart.
    fn wait_for(&mut self, condition: &str) {
        for _ in 0..300 {
            let result = self.call("Runtime.evaluate", json!({ "expression": condition, "returnByValue": true }));
            if result["result"]["value"] == json!(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let body = self.eval("document.body ? document.body.innerText : ''");
        panic!("`{condition}` never became true; the page shows: {body}");
    }

    fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap()
    }
}
