//! Test harness: runs the real `stage` binary on an ephemeral port with a temporary data
//! folder and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// A running `stage serve` process. Killed when dropped.
pub struct Server {
    child: std::sync::Mutex<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    client: reqwest::Client,
    /// Keeps the data folder alive for servers started with [`Server::start`].
    _dir: Option<tempfile::TempDir>,
}

/// An HTTP answer: status and parsed JSON body (`Value::Null` when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

/// An HTTP answer with its body as bytes.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Server {
    /// A server on its default configuration (`--auth local`) in a fresh data folder.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server in a fresh data folder with extra `serve` arguments.
    pub fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_in(dir.path(), args);
        server._dir = Some(dir);
        server
    }

    /// A server on an existing data folder (to test restarts).
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        let (child, base) = spawn(data_dir, args).unwrap_or_else(|log| panic!("stage did not start:\n{log}"));
        Server {
            child: std::sync::Mutex::new(child),
            base,
            data_dir: data_dir.to_owned(),
            client: reqwest::Client::new(),
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The admin key the server wrote at first start.
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-key")).expect("admin-key file").trim().to_owned()
    }

    /// Sends a request, with `Authorization` set to `auth` when given.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, auth: Option<&str>) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        // `Value::Null` stands for "no body".
        if let Some(body) = body.filter(|b| !b.is_null()) {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request sent")).await
    }

    /// Sends raw bytes as the body.
    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>) -> Answer {
        let request = self.client.request(method, self.url(path)).header("content-type", "application/json").body(body);
        answer(request.send().await.expect("request sent")).await
    }

    /// Sends a request with extra headers.
    pub async fn send_with(&self, method: Method, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.request(method, self.url(path)).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.expect("request sent")).await
    }

    /// Sends `body` as raw bytes with `headers`; the answer keeps the raw body.
    pub async fn send_bytes(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> RawAnswer {
        let mut request = self.client.request(method, self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        RawAnswer { status, headers, body: response.bytes().await.expect("response body").to_vec() }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body), None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body), None).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(body), None).await
    }
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None, None).await
    }

    /// Creates a session and returns its id.
    pub async fn new_session(&self) -> String {
        let created = self.post("/api/v1/stage/sessions", Value::Null).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        created.body["data"]["id"].as_str().expect("session id").to_owned()
    }

    /// Creates a session holding `files` and publishes it; returns the app sid.
    pub async fn publish(&self, files: Value) -> String {
        let session = self.new_session().await;
        let pushed =
            self.post(&format!("/api/v1/stage/sessions/{session}/push"), serde_json::json!({ "files": files })).await;
        assert_eq!(pushed.status, 200, "{:?}", pushed.body);
        let published =
            self.post("/api/v1/stage/apps", serde_json::json!({ "sessionId": session, "name": "Test app" })).await;
        assert_eq!(published.status, 201, "{:?}", published.body);
        published.body["data"]["sid"].as_str().unwrap().to_owned()
    }

    /// Uploads the chaos test step (`tests/fixtures/chaos`) as plugin `kind` with `allow`.
    pub async fn install_chaos(&self, kind: &str, allow: Value) {
        use base64::Engine;
        let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm")).expect("chaos fixture");
        let manifest =
            serde_json::json!({ "kind": kind, "inputs": { "required": ["mode"], "additional": true }, "allow": allow });
        let body = serde_json::json!({ "manifest": manifest, "component": base64::engine::general_purpose::STANDARD.encode(wasm) });
        let installed = self.put(&format!("/api/v1/plugins/{kind}"), body).await;
        assert_eq!(installed.status, 200, "{:?}", installed.body);
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// The server's resident memory (`VmRSS` of `/proc/<pid>/status`), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc/<pid>/status");
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib * 1024
    }

    /// Stops the server the hard way (SIGKILL), as a crash would, and waits for it to die.
    pub fn crash(&self) {
        let mut child = self.child.lock().unwrap();
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        let mut child = self.child.lock().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill -TERM");
        child.wait().expect("wait")
    }

    /// Creates tenant `id` (with the admin key) and returns a `Bearer` header of its first key.
    pub async fn new_tenant(&self, id: &str) -> String {
        let admin = format!("Bearer {}", self.admin_key());
        let created =
            self.send(Method::POST, "/api/v1/admin/tenants", Some(serde_json::json!({ "id": id })), Some(&admin)).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        format!("Bearer {}", created.body["data"]["apiKey"]["secret"].as_str().expect("key secret"))
    }

    /// Opens the server's database read-only, to check what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir.join("stage.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open database")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, body, headers }
}

/// Spawns `stage serve` and waits for its `listening on http://ADDR` line. On failure,
/// returns what it printed.
pub fn spawn(data_dir: &Path, args: &[&str]) -> Result<(Child, String), String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server.log"))
        .map_err(|e| e.to_string())?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_stage"));
    command.arg("serve").arg("--data-dir").arg(data_dir);
    if !args.contains(&"--listen") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    // Servers share compiled components, so that each test does not compile them again.
    if !args.contains(&"--compiled-dir") {
        command.args(["--compiled-dir", concat!(env!("CARGO_TARGET_TMPDIR"), "/compiled")]);
    }
    let mut child = command
        .args(args)
        .env_remove("STAGE_LISTEN")
        .env_remove("STAGE_DATA_DIR")
        .env_remove("STAGE_AUTH")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().expect("stdout");
    let (lines, first) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    match first.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line.starts_with("listening on http://") => {
            Ok((child, line.trim_start_matches("listening on ").to_owned()))
        }
        other => {
            let _ = child.kill();
            let status = child.wait().ok();
            let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
            Err(format!("first line {other:?}, exit {status:?}\n{log}"))
        }
    }
}

/// Asserts that `actual` has exactly the shape of `expected`: the same keys, the same
/// array lengths, equal values — except for placeholder strings, which match by type:
/// `"<time>"` (a Unix-ms integer), `"<id:PREFIX>"` (a string starting with PREFIX),
/// `"<string>"`, `"<number>"`, `"<any>"`.
#[track_caller]
pub fn assert_shape(actual: &Value, expected: &Value) {
    if let Err(problem) = matches(actual, expected, "$") {
        panic!("{problem}\nactual:   {actual}\nexpected: {expected}");
    }
}

fn matches(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match expected {
        Value::String(pattern) if pattern.starts_with('<') && pattern.ends_with('>') => {
            let ok = match pattern.as_str() {
                "<time>" => actual.as_i64().is_some_and(|t| t > 1_600_000_000_000),
                "<string>" => actual.is_string(),
                "<number>" => actual.is_number(),
                "<any>" => true,
                p if p.starts_with("<id:") => {
                    let prefix = &p[4..p.len() - 1];
                    actual.as_str().is_some_and(|s| s.starts_with(prefix) && s.len() > prefix.len())
                }
                p => return Err(format!("unknown placeholder {p}")),
            };
            if ok { Ok(()) } else { Err(format!("{at}: {actual} does not match {pattern}")) }
        }
        Value::Object(expected) => {
            let actual = actual.as_object().ok_or_else(|| format!("{at}: expected an object, got {actual}"))?;
            let mut want: Vec<&String> = expected.keys().collect();
            let mut got: Vec<&String> = actual.keys().collect();
            want.sort();
            got.sort();
            if want != got {
                return Err(format!("{at}: keys {got:?}, expected {want:?}"));
            }
            expected.iter().try_for_each(|(k, v)| matches(&actual[k], v, &format!("{at}.{k}")))
        }
        Value::Array(expected) => {
            let actual = actual.as_array().ok_or_else(|| format!("{at}: expected an array, got {actual}"))?;
            if actual.len() != expected.len() {
                return Err(format!("{at}: {} items, expected {}", actual.len(), expected.len()));
            }
            expected.iter().zip(actual).enumerate().try_for_each(|(i, (e, a))| matches(a, e, &format!("{at}[{i}]")))
        }
        other => {
            if actual == other {
                Ok(())
            } else {
                Err(format!("{at}: {actual}, expected {other}"))
            }
        }
    }
}
