//! The preview page in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) driven over the DevTools protocol. The page's third-party modules
//! come from a module base this test serves on loopback: React and Tailwind's browser build
//! fetched from the npm registry with `npm` and bundled to ES modules with esbuild, so no
//! CDN is involved. Without a browser (or without `npm`), the test says why it is skipped.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use crate::common::Server;
use crate::preview::app_files;

const REACT: &str = "19.1.1";
const TAILWIND: &str = "4.1.11";
const ESBUILD: &str = "0.25.8";

// The DevTools calls block; the module server needs workers of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_preview_page_renders_updates_live_and_reports_errors_in_chromium() {
    let Some(chromium) = find_browser() else {
        println!(
            "SKIPPED the_preview_page_renders_updates_live_and_reports_errors_in_chromium: no chromium on PATH (install Debian's chromium, as .ci/run does)"
        );
        return;
    };
    if which("npm").is_none() {
        println!(
            "SKIPPED the_preview_page_renders_updates_live_and_reports_errors_in_chromium: no npm to fetch React for the module base"
        );
        return;
    }
    let modules = tokio::task::spawn_blocking(build_module_base).await.unwrap();
    let (modules_url, _module_server) = serve_modules(modules).await;
    let server = Server::start_with(&["--preview-modules-url", &modules_url]);

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

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
}

fn find_browser() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STAGE_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"].into_iter().find_map(which)
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
async fn serve_modules(files: HashMap<String, Vec<u8>>) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{StatusCode, Uri, header};
    let files = Arc::new(files);
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

    /// Waits up to 30 s for `condition` to be true in the page.
    fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let result = self.call("Runtime.evaluate", json!({ "expression": condition, "returnByValue": true }));
            if result["result"]["value"] == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body ? document.body.innerText : ''");
                panic!("timed out waiting for `{condition}`; the page shows: {body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap()
    }
}
