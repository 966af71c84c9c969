//! The preview page's HTML, its import map and its Content-Security-Policy.
//!
//! The page runs untrusted code, so the policy allows scripts only from Stage and the
//! module base (plus the one inline import map, by nonce), network calls (`fetch`,
//! `EventSource`, …) only to Stage, no plugins, no `<base>`, no form
//! posts, and no framing by other origins. Styles may be inline: React sets `style`
//! attributes and Tailwind's browser build writes a `<style>` element.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::policy::{LIBRARIES, STAGE_MODULES};
use super::{Previews, TokenScope};
use stage_store::preview::PreviewTarget;

/// Where Stage serves the page's own files.
pub const ASSETS: &str = "/_stage/preview";

/// What the page starts from (and `GET /s/:id/state` answers): the render and its build;
/// on an app's page, the published version and its build.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageState {
    /// The session's render state (`null` before the first render, and on an app's page).
    pub render: Option<stage_store::sessions::RenderState>,
    /// On an app's page (`/s/:appSid`), the version it shows; absent on a session's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<PublishedState>,
    pub build: Option<String>,
    /// The URL of the entry's module in the build.
    pub entry_url: Option<String>,
    /// The build's problems, as a person reads them.
    pub problems: Option<String>,
}

/// The app version an app's page shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedState {
    pub version: i64,
    /// The entry it starts from: the session's render entry when it was published.
    pub entry: String,
    pub published_at: i64,
}

/// Everything the page's HTML needs.
pub struct PageInput<'a> {
    /// The id in the page's URL (a session id or an app sid).
    pub id: &'a str,
    pub target: &'a PreviewTarget,
    pub state: PageState,
    pub nonce: &'a str,
}

/// The page's configuration (the JSON `@stage/app` reads).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageConfig<'a> {
    session: &'a str,
    app_sid: Option<&'a str>,
    /// Good for this page's own calls: its session's (or, on an app's page, its app's).
    token: String,
    state: &'a PageState,
    state_url: String,
    /// Render events of the session, or new versions of the app.
    events_url: String,
    /// Where the page reports what breaks; `None` on an app's page, whose errors are shown
    /// on the page only (the session's render error is the working copy's).
    error_url: Option<String>,
}

impl<'a> PageConfig<'a> {
    fn new(previews: &Previews, input: &'a PageInput<'a>) -> PageConfig<'a> {
        let target = input.target;
        let (token, events_url, error_url) = match target.published_app() {
            Some(sid) => {
                let token = previews.tokens.token(TokenScope::App(sid));
                let events = format!("/api/v1/stage/apps/{sid}/events?token={token}");
                (token, events, None)
            }
            None => {
                let session = &target.session_id;
                let token = previews.tokens.token(TokenScope::Session(session));
                let events = format!("/api/v1/stage/sessions/{session}/events?token={token}");
                (token, events, Some(format!("/api/v1/stage/sessions/{session}/render/error")))
            }
        };
        PageConfig {
            session: &target.session_id,
            app_sid: target.app_sid.as_deref(),
            token,
            state: &input.state,
            state_url: format!("/s/{}/state", input.id),
            events_url,
            error_url,
        }
    }
}

/// The page's HTML and its Content-Security-Policy header.
pub fn render(previews: &Previews, input: &PageInput<'_>) -> (String, String) {
    let config = serde_json::to_value(PageConfig::new(previews, input)).unwrap_or(Value::Null);
    let import_map = json!({ "imports": imports(previews) });
    let base = &previews.modules_url;
    let tailwind = LIBRARIES.iter().find(|(name, ..)| *name == "@tailwindcss/browser").map(|(_, path, _)| *path);
    let tailwind =
        tailwind.map(|path| format!("<script type=\"module\" src=\"{base}/{}\"></script>\n", html_attr(path)));
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Stage · {title}</title>\n\
         <link rel=\"stylesheet\" href=\"{ASSETS}/page.css\">\n\
         <script type=\"application/json\" id=\"stage-preview\">{config}</script>\n\
         <script type=\"importmap\" nonce=\"{nonce}\">{import_map}</script>\n\
         {tailwind}<script type=\"module\" src=\"{ASSETS}/page.js\"></script>\n\
         </head>\n<body>\n<div id=\"stage-root\"></div>\n</body>\n</html>\n",
        title = html_text(input.id),
        config = script_json(&config),
        nonce = input.nonce,
        import_map = script_json(&import_map),
        tailwind = tailwind.unwrap_or_default(),
    );
    (html, content_security_policy(base, input.nonce))
}

/// The import map's entries: third-party libraries from the module base, the UI kit and
/// the `@stage/*` modules from Stage.
fn imports(previews: &Previews) -> Map<String, Value> {
    let base = &previews.modules_url;
    let mut imports = Map::new();
    for (name, path, query) in LIBRARIES {
        imports.insert(name.to_owned(), Value::String(format!("{base}/{path}{query}")));
    }
    for (name, module) in &previews.kit {
        imports.insert(format!("@/components/ui/{name}"), Value::String(format!("{ASSETS}/ui/{}.js", module.hash)));
    }
    for name in STAGE_MODULES {
        imports.insert(format!("@stage/{name}"), Value::String(format!("{ASSETS}/stage/{name}.js")));
    }
    imports
}

/// The module base's origin, as a CSP source.
fn origin(base: &str) -> String {
    url::Url::parse(base).map(|url| url.origin().ascii_serialization()).unwrap_or_default()
}

fn content_security_policy(base: &str, nonce: &str) -> String {
    let modules = origin(base);
    [
        "default-src 'none'".to_owned(),
        format!("script-src 'self' {modules} 'nonce-{nonce}'"),
        format!("style-src 'self' 'unsafe-inline' {modules}"),
        "img-src 'self' data: blob:".to_owned(),
        "font-src 'self' data:".to_owned(),
        "connect-src 'self'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'none'".to_owned(),
        "frame-ancestors 'self'".to_owned(),
        "object-src 'none'".to_owned(),
    ]
    .join("; ")
}

/// JSON safe inside a `<script>` element: `<`, `>` and `&` escaped, so that no string can
/// close the element.
fn script_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

fn html_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn html_attr(text: &str) -> String {
    html_text(text).replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::{content_security_policy, script_json};

    #[test]
    fn json_cannot_close_its_script_element() {
        let value = serde_json::json!({ "a": "</script><script>alert(1)</script>&" });
        let text = script_json(&value);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
    }

    #[test]
    fn the_policy_names_stage_and_the_module_base_only() {
        let csp = content_security_policy("https://esm.sh/v1", "n0nce");
        assert_eq!(
            csp,
            "default-src 'none'; script-src 'self' https://esm.sh 'nonce-n0nce'; style-src 'self' 'unsafe-inline' \
             https://esm.sh; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
             object-src 'none'"
        );
    }
}
