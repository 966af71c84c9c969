//! The preview page over HTTP: the page (`/s/:id`), its state, its build's modules, the UI
//! kit, and render events. What a real browser makes of it: `preview_browser.rs`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{RawAnswer, Server};

/// A small app: the entry imports a sibling, the UI kit, JSON and CSS.
pub fn app_files() -> Value {
    json!({
        "/app/App.tsx": "import { useState } from 'react';\nimport Button from './Button';\nimport { Card, CardContent, CardDescription, CardHeader, CardTitle } from '@/components/ui/card';\nimport { Badge } from '@/components/ui/badge';\nimport data from './data.json';\nimport './app.css';\n\nexport default function App() {\n  const [count, setCount] = useState(0);\n  return (\n    <div className=\"min-h-screen bg-slate-50 p-8\">\n      <Card className=\"mx-auto max-w-md\">\n        <CardHeader>\n          <CardTitle id=\"title\">{data.title}</CardTitle>\n          <CardDescription>Compiled by Stage, rendered by React from the module base.</CardDescription>\n        </CardHeader>\n        <CardContent className=\"flex items-center gap-3\">\n          <Button onClick={() => setCount(count + 1)}>Clicked {count} times</Button>\n          <Badge variant=\"secondary\">{count % 2 === 0 ? 'even' : 'odd'}</Badge>\n        </CardContent>\n      </Card>\n    </div>\n  );\n}\n",
        "/app/Button.tsx": "import { Button as KitButton } from '@/components/ui/button';\nexport default function Button(props: { onClick: () => void; children?: any }) {\n  return <KitButton id=\"counter\" onClick={props.onClick}>{props.children}</KitButton>;\n}\n",
        "/app/data.json": "{ \"title\": \"Hello from Stage\" }",
        "/app/app.css": "#title { letter-spacing: 0.05em; }",
    })
}

pub async fn session_with(server: &Server, files: Value) -> String {
    let session = server.new_session().await;
    let pushed = server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": files })).await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let rendered = server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;
    assert_eq!(rendered.status, 200, "{:?}", rendered.body);
    session
}

async fn get_raw(server: &Server, path: &str) -> RawAnswer {
    server.send_bytes(Method::GET, path, &[], Vec::new()).await
}

/// The JSON the page starts from (`<script type="application/json" id="stage-preview">`).
pub fn page_config(html: &str) -> Value {
    let start = html.find("id=\"stage-preview\">").expect("the page's config") + "id=\"stage-preview\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

fn import_map(html: &str) -> Value {
    let start = html.find("<script type=\"importmap\"").unwrap();
    let start = start + html[start..].find('>').unwrap() + 1;
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[tokio::test]
async fn the_page_serves_the_last_render_with_its_import_map_and_a_strict_policy() {
    let server = Server::start_with(&["--preview-modules-url", "https://modules.example/esm"]);
    let session = session_with(&server, app_files()).await;

    let page = get_raw(&server, &format!("/s/{session}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    let csp = page.header("content-security-policy").unwrap();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; script-src 'self' https://modules.example 'nonce-{nonce}'; style-src 'self' \
             'unsafe-inline' https://modules.example; img-src 'self' data: blob:; font-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; object-src 'none'"
        )
    );
    assert!(html.contains(&format!("<script type=\"importmap\" nonce=\"{nonce}\">")), "{html}");

    let imports = &import_map(&html)["imports"];
    assert_eq!(imports["react"], "https://modules.example/esm/react@19.1.1");
    assert_eq!(imports["react/jsx-runtime"], "https://modules.example/esm/react@19.1.1/jsx-runtime");
    assert_eq!(imports["react-dom/client"], "https://modules.example/esm/react-dom@19.1.1/client?external=react");
    assert_eq!(imports["recharts"], "https://modules.example/esm/recharts@2.15.4?external=react,react-dom");
    assert_eq!(imports["@stage/kv"], "/_stage/preview/stage/kv.js");
    let card = imports["@/components/ui/card"].as_str().unwrap();
    assert!(card.starts_with("/_stage/preview/ui/") && card.ends_with(".js"), "{card}");

    let config = page_config(&html);
    assert_eq!(config["session"], session);
    assert_eq!(config["appSid"], Value::Null);
    assert!(config["token"].as_str().unwrap().starts_with("stage_pv_"));
    let state = &config["state"];
    assert_eq!(state["render"]["entry"], "/app/App.tsx");
    assert_eq!(state["render"]["version"], 1);
    assert_eq!(state["problems"], Value::Null);
    let build = state["build"].as_str().unwrap();
    assert_eq!(state["entryUrl"], format!("/s/{session}/b/{build}/app/App.tsx"));

    // The entry's module: TypeScript and JSX compiled, session imports relative.
    let entry = get_raw(&server, state["entryUrl"].as_str().unwrap()).await;
    assert_eq!(entry.status, 200);
    assert_eq!(entry.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(entry.header("cache-control"), Some("private, max-age=31536000, immutable"));
    let code = String::from_utf8(entry.body).unwrap();
    assert!(code.contains("from \"./Button.tsx\"") && code.contains("from \"react/jsx-runtime\""), "{code}");
    assert!(code.contains("import \"./app.css\"") && code.contains("from \"./data.json\""), "{code}");
    for path in ["Button.tsx", "data.json", "app.css"] {
        let module = get_raw(&server, &format!("/s/{session}/b/{build}/app/{path}")).await;
        assert_eq!(module.status, 200, "{path}");
    }
    let kit = get_raw(&server, card).await;
    assert_eq!(kit.status, 200);
    assert!(String::from_utf8(kit.body).unwrap().contains("CardContent"));
    for asset in ["page.js", "page.css", "stage/app.js", "stage/kv.js", "stage/runtime.js", "stage/utils.js"] {
        assert_eq!(get_raw(&server, &format!("/_stage/preview/{asset}")).await.status, 200, "{asset}");
    }
    assert_eq!(get_raw(&server, "/_stage/preview/stage/nope.js").await.status, 404);
}

#[tokio::test]
async fn a_change_makes_a_new_build_and_the_old_one_stays_until_evicted() {
    let server = Server::start();
    let session = session_with(&server, app_files()).await;
    let first: Value = get_raw(&server, &format!("/s/{session}/state")).await.json();
    server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/data.json": "{ \"title\": \"Changed\" }" } }),
        )
        .await;
    let second: Value = get_raw(&server, &format!("/s/{session}/state")).await.json();
    assert_ne!(first["build"], second["build"]);
    let old = get_raw(&server, &format!("/s/{session}/b/{}/app/data.json", first["build"].as_str().unwrap())).await;
    assert!(String::from_utf8(old.body).unwrap().contains("Hello from Stage"));
    let new = get_raw(&server, &format!("/s/{session}/b/{}/app/data.json", second["build"].as_str().unwrap())).await;
    assert!(String::from_utf8(new.body).unwrap().contains("Changed"));
}

#[tokio::test]
async fn the_build_is_made_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let session = session_with(&server, app_files()).await;
    let state: Value = get_raw(&server, &format!("/s/{session}/state")).await.json();
    let token =
        page_config(&String::from_utf8(get_raw(&server, &format!("/s/{session}")).await.body).unwrap())["token"]
            .clone();
    drop(server);
    let server = Server::start_in(dir.path(), &[]);
    let url = state["entryUrl"].as_str().unwrap();
    assert_eq!(get_raw(&server, url).await.status, 200);
    let again = page_config(&String::from_utf8(get_raw(&server, &format!("/s/{session}")).await.body).unwrap());
    assert_eq!(again["token"], token, "the page's token outlives a restart");
}

#[tokio::test]
async fn a_compile_problem_is_in_the_pages_state() {
    let server = Server::start();
    let session = session_with(
        &server,
        json!({ "/app/App.tsx": "export default function App() {\n  return <p>{1 +}</p>;\n}\n" }),
    )
    .await;
    let state: Value = get_raw(&server, &format!("/s/{session}/state")).await.json();
    assert_eq!(
        state["problems"],
        "1 problem:\n\n/app/App.tsx:2:17: Unexpected token\n  1 | export default function App() {\n> 2 |   return <p>{1 +}</p>;\n    |                 ^\n  3 | }"
    );
}

#[tokio::test]
async fn a_session_before_its_first_render_has_a_waiting_page() {
    let server = Server::start();
    let session = server.new_session().await;
    let page = get_raw(&server, &format!("/s/{session}")).await;
    assert_eq!(page.status, 200);
    let config = page_config(&String::from_utf8(page.body).unwrap());
    assert_eq!(config["state"], json!({ "render": null, "build": null, "entryUrl": null, "problems": null }));
    let missing = get_raw(&server, "/s/ses_nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["message"], "no session or app ses_nope");
}

#[tokio::test]
async fn a_published_app_is_viewable_by_its_sid() {
    let server = Server::start();
    let app = server.publish(app_files()).await;
    let listed = server.get(&format!("/api/v1/stage/apps/{app}")).await;
    let session = listed.body["data"]["sessionId"].as_str().unwrap().to_owned();
    server.post(&format!("/api/v1/stage/sessions/{app}/render"), json!({})).await;
    let page = get_raw(&server, &format!("/s/{app}")).await;
    assert_eq!(page.status, 200);
    let config = page_config(&String::from_utf8(page.body).unwrap());
    assert_eq!(config["session"], session);
    assert_eq!(config["appSid"], app);
    let build = config["state"]["build"].as_str().unwrap();
    assert_eq!(config["state"]["entryUrl"], format!("/s/{app}/b/{build}/app/App.tsx"));
    assert_eq!(get_raw(&server, config["state"]["entryUrl"].as_str().unwrap()).await.status, 200);
}

#[tokio::test]
async fn a_build_is_served_only_under_its_own_session() {
    let server = Server::start();
    let mine = session_with(&server, app_files()).await;
    let other = session_with(&server, app_files()).await;
    let state: Value = get_raw(&server, &format!("/s/{mine}/state")).await.json();
    let build = state["build"].as_str().unwrap();
    let borrowed = get_raw(&server, &format!("/s/{other}/b/{build}/app/App.tsx")).await;
    assert_eq!(borrowed.status, 404);
    let traversal = get_raw(&server, &format!("/s/{mine}/b/{build}/app/../../etc/passwd")).await;
    assert_eq!(traversal.status, 404);
}

/// Reads server-sent events until one named `name` arrives; answers its data.
pub async fn next_event(response: &mut reqwest::Response, buffer: &mut String, name: &str) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("message");
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            if event == name {
                return serde_json::from_str(&data).unwrap_or(Value::Null);
            }
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), response.chunk())
            .await
            .expect("an event within 30 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn render_events_reach_a_listener_with_the_pages_token() {
    let server = Server::start();
    let session = session_with(&server, app_files()).await;
    let config = page_config(&String::from_utf8(get_raw(&server, &format!("/s/{session}")).await.body).unwrap());
    let events_url = config["eventsUrl"].as_str().unwrap();
    assert_eq!(
        events_url,
        format!("/api/v1/stage/sessions/{session}/events?token={}", config["token"].as_str().unwrap())
    );

    let mut response =
        reqwest::Client::new().get(server.url(events_url)).header("origin", &server.base).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    assert_eq!(next_event(&mut response, &mut buffer, "ready").await, json!({}));
    // Another session's render is not this listener's business.
    let other = server.new_session().await;
    server
        .post(
            &format!("/api/v1/stage/sessions/{other}/push"),
            json!({ "files": { "/app/App.tsx": "export default () => null;" } }),
        )
        .await;
    server.post(&format!("/api/v1/stage/sessions/{other}/render"), json!({})).await;
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;
    let event = next_event(&mut response, &mut buffer, "render").await;
    assert_eq!(event["entry"], "/app/App.tsx");
    assert_eq!(event["version"], 2);
}

#[tokio::test]
async fn render_events_take_an_api_key_of_the_sessions_tenant() {
    let server = Server::start();
    let session = session_with(&server, app_files()).await;
    let key = server.admin_key();
    let mut response = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/stage/sessions/{session}/events")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = String::new();
    next_event(&mut response, &mut buffer, "ready").await;
    let other_tenant_key = server.new_tenant("acme").await;
    let refused = server
        .send(Method::GET, &format!("/api/v1/stage/sessions/{session}/events"), None, Some(&other_tenant_key))
        .await;
    assert_eq!(refused.status, 404);
}

/// A session with [`app_files`], rendered and published: `(session, app sid)`.
async fn published_session(server: &Server) -> (String, String) {
    published_session_with(server, app_files()).await
}

/// A session with `files`, rendered and published: `(session, app sid)`.
pub async fn published_session_with(server: &Server, files: Value) -> (String, String) {
    let session = session_with(server, files).await;
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Published" })).await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    (session, published.body["data"]["sid"].as_str().unwrap().to_owned())
}

/// Writes a new title into the session's data file and renders it.
pub async fn retitle_and_render(server: &Server, session: &str, title: &str) {
    let data = json!({ "title": title }).to_string();
    let pushed = server
        .post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": { "/app/data.json": data } }))
        .await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let rendered = server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;
    assert_eq!(rendered.status, 200, "{:?}", rendered.body);
}

/// The page state of `/s/:id`.
pub async fn state_of(server: &Server, id: &str) -> Value {
    let state = get_raw(server, &format!("/s/{id}/state")).await;
    assert_eq!(state.status, 200);
    state.json()
}

/// The text of the build's `/app/data.json` module, through the state's entry URL.
async fn data_module(server: &Server, state: &Value) -> String {
    let url = state["entryUrl"].as_str().unwrap().replace("/app/App.tsx", "/app/data.json");
    let module = get_raw(server, &url).await;
    assert_eq!(module.status, 200, "{url}");
    String::from_utf8(module.body).unwrap()
}

#[tokio::test]
async fn an_app_page_keeps_showing_the_published_version_after_the_session_changes() {
    let server = Server::start();
    let (session, app) = published_session(&server).await;
    let before = state_of(&server, &app).await;
    retitle_and_render(&server, &session, "Working copy").await;

    let after = state_of(&server, &app).await;
    assert_eq!(after, before, "editing and rendering the session leaves the app's page alone");
    assert_eq!(after["render"], Value::Null);
    assert_eq!(after["published"]["version"], 1);
    assert_eq!(after["published"]["entry"], "/app/App.tsx");
    let build = after["build"].as_str().unwrap();
    assert_eq!(after["entryUrl"], format!("/s/{app}/b/{build}/app/App.tsx"));
    let data = data_module(&server, &after).await;
    assert!(data.contains("Hello from Stage") && !data.contains("Working copy"), "{data}");
    let page = page_config(&String::from_utf8(get_raw(&server, &format!("/s/{app}")).await.body).unwrap());
    assert_eq!(page["state"], after);
}

#[tokio::test]
async fn a_session_page_shows_the_working_copy_after_its_app_is_published() {
    let server = Server::start();
    let (session, _) = published_session(&server).await;
    retitle_and_render(&server, &session, "Working copy").await;

    let state = state_of(&server, &session).await;
    assert_eq!(state["render"]["version"], 2);
    assert!(state.get("published").is_none(), "{state}");
    assert!(data_module(&server, &state).await.contains("Working copy"));
}

#[tokio::test]
async fn publishing_again_makes_the_app_page_show_the_new_version() {
    let server = Server::start();
    let (session, app) = published_session(&server).await;
    let first = state_of(&server, &app).await;
    retitle_and_render(&server, &session, "Second version").await;
    let republished = server.post(&format!("/api/v1/stage/apps/{app}/versions"), json!({})).await;
    assert_eq!(republished.status, 201, "{:?}", republished.body);

    let second = state_of(&server, &app).await;
    assert_eq!(second["published"]["version"], 2);
    assert_ne!(second["build"], first["build"]);
    assert!(data_module(&server, &second).await.contains("Second version"));
}

#[tokio::test]
async fn an_app_page_starts_from_the_entry_rendered_when_it_was_published() {
    let server = Server::start();
    let session = server.new_session().await;
    let files = json!({
        "/app/Main.tsx": "export default function Main() { return <p>main</p>; }",
        "/app/Other.tsx": "export default function Other() { return <p>other</p>; }",
    });
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": files })).await;
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({ "entry": "/app/Main.tsx" })).await;
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Entry" })).await;
    let app = published.body["data"]["sid"].as_str().unwrap().to_owned();
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({ "entry": "/app/Other.tsx" })).await;

    let state = state_of(&server, &app).await;
    assert_eq!(state["published"]["entry"], "/app/Main.tsx");
    assert_eq!(state["problems"], Value::Null);
    let build = state["build"].as_str().unwrap();
    assert_eq!(state["entryUrl"], format!("/s/{app}/b/{build}/app/Main.tsx"));
}

#[tokio::test]
async fn a_published_build_is_served_only_under_its_apps_page() {
    let server = Server::start();
    let (session, app) = published_session(&server).await;
    let state = state_of(&server, &app).await;
    let build = state["build"].as_str().unwrap();
    assert_eq!(get_raw(&server, &format!("/s/{app}/b/{build}/app/App.tsx")).await.status, 200);
    assert_eq!(get_raw(&server, &format!("/s/{session}/b/{build}/app/App.tsx")).await.status, 404);
    let session_build = state_of(&server, &session).await["build"].as_str().unwrap().to_owned();
    assert_eq!(get_raw(&server, &format!("/s/{app}/b/{session_build}/app/App.tsx")).await.status, 404);
}

#[tokio::test]
async fn a_published_build_is_made_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let (session, app) = published_session(&server).await;
    let state = state_of(&server, &app).await;
    retitle_and_render(&server, &session, "Working copy").await;
    drop(server);
    let server = Server::start_in(dir.path(), &[]);
    assert!(data_module(&server, &state).await.contains("Hello from Stage"));
}

#[tokio::test]
async fn an_app_page_hears_of_a_new_version() {
    let server = Server::start();
    let (session, app) = published_session(&server).await;
    let config = page_config(&String::from_utf8(get_raw(&server, &format!("/s/{app}")).await.body).unwrap());
    let token = config["token"].as_str().unwrap();
    let events_url = config["eventsUrl"].as_str().unwrap();
    assert_eq!(events_url, format!("/api/v1/stage/apps/{app}/events?token={token}"));
    assert_eq!(config["errorUrl"], Value::Null, "a published page records no errors");

    let mut response =
        reqwest::Client::new().get(server.url(events_url)).header("origin", &server.base).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = String::new();
    next_event(&mut response, &mut buffer, "ready").await;
    // A render of the session is not the app's news; a new version is.
    retitle_and_render(&server, &session, "Second version").await;
    server.post(&format!("/api/v1/stage/apps/{app}/versions"), json!({})).await;
    let event = next_event(&mut response, &mut buffer, "publish").await;
    assert_eq!(event, json!({ "version": 2 }));
    assert!(!buffer.contains("event: render"), "{buffer}");
}
