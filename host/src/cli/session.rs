//! Session commands: `new`, `write`, `read`, `ls`, `render`, `status`, over
//! `/api/v1/stage/sessions…`.

use std::io::{IsTerminal, Read, Write};

use reqwest::Url;
use serde::Serialize;
use serde_json::Map;

use super::client::{CliError, Client, Reply};
use super::output::{self, Style};
use super::wire::{
    CreatedSession, FileHead, FileView, PushRequest, PushResult, PushedFile, RenderRequest, RenderState, SessionStatus,
};
use super::{LsArgs, NewArgs, ReadArgs, RenderArgs, StatusArgs, WriteArgs};

/// The URL of `/api/v1/stage/sessions/:id` followed by `tail`.
pub fn session_url(client: &Client, session: &str, tail: &[&str]) -> Url {
    let mut segments = vec!["api", "v1", "stage", "sessions", session];
    segments.extend_from_slice(tail);
    client.url(&segments)
}

/// A session path's segments (`/app/App.tsx` → `app`, `App.tsx`); the server normalises
/// and checks the path.
pub fn path_segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// A session path as the server writes it: with one leading slash.
pub fn absolute(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

pub async fn new(client: &Client, args: NewArgs) -> Result<(), CliError> {
    let url = client.url(&["api", "v1", "stage", "sessions"]);
    let reply: Reply<CreatedSession> = client.post(url, &Map::new()).await?;
    match args.output.style() {
        Style::Json => output::json(&reply.json),
        Style::Quiet => println!("{}", reply.data.id),
        Style::Human => {
            println!("✓ Session created: {}", reply.data.id);
            println!("  next: stage push ./my-app -s {}", reply.data.id);
        }
    }
    Ok(())
}

/// `write --json`.
#[derive(Serialize)]
struct Written<'a> {
    session: &'a str,
    path: String,
    bytes: usize,
}

pub async fn write(client: &Client, args: WriteArgs) -> Result<(), CliError> {
    let bytes = local_content(args.local_file.as_deref())?;
    let size = bytes.len();
    let path = absolute(&args.remote_path);
    let mut request = PushRequest::default();
    request.files.insert(path.clone(), PushedFile::new(bytes));
    let session = &args.session.session;
    let _: Reply<PushResult> = client.post(session_url(client, session, &["push"]), &request).await?;
    match args.output.style() {
        Style::Json => output::json(&Written { session, path, bytes: size }),
        Style::Quiet => {}
        Style::Human => println!("✓ {path} ({})", output::bytes(size as i64)),
    }
    Ok(())
}

/// The content to write: a local file, or stdin for `-` (or nothing, when piped).
fn local_content(local: Option<&str>) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    match local {
        Some("-") => read_stdin(&mut bytes)?,
        None if !std::io::stdin().is_terminal() => read_stdin(&mut bytes)?,
        None => {
            return Err(CliError::Usage(
                "give a local file to write (or `-` for stdin), or pipe the content on stdin".into(),
            ));
        }
        Some(path) => {
            bytes = std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {path}: {e}")))?;
        }
    }
    Ok(bytes)
}

fn read_stdin(bytes: &mut Vec<u8>) -> Result<(), CliError> {
    std::io::stdin().read_to_end(bytes).map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
    Ok(())
}

pub async fn read(client: &Client, args: ReadArgs) -> Result<(), CliError> {
    let mut tail = vec!["files"];
    tail.extend(path_segments(&args.remote_path));
    let mut url = session_url(client, &args.session.session, &tail);
    if let Some(version) = args.version {
        url.query_pairs_mut().append_pair("version", &version.to_string());
    }
    let reply: Reply<FileView> = client.get(url).await?;
    if args.output.style() == Style::Json {
        output::json(&reply.json);
        return Ok(());
    }
    let bytes =
        reply.data.bytes().map_err(|e| CliError::Failed(format!("the file's base64 content is invalid: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes).and_then(|()| stdout.flush()).map_err(|e| CliError::Failed(format!("stdout: {e}")))
}

/// `ls --json`.
#[derive(Serialize)]
struct Listing<'a> {
    session: &'a str,
    path: String,
    files: Vec<FileHead>,
    count: usize,
}

pub async fn ls(client: &Client, args: LsArgs) -> Result<(), CliError> {
    let session = &args.session.session;
    let reply: Reply<Vec<FileHead>> = client.get(session_url(client, session, &["files"])).await?;
    let folder = absolute(args.path.as_deref().unwrap_or("/").trim_end_matches('/'));
    let mut files: Vec<FileHead> = reply.data.into_iter().filter(|f| is_under(&f.path, &folder)).collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    match args.output.style() {
        Style::Json => output::json(&Listing { session, path: folder, count: files.len(), files }),
        Style::Quiet => files.iter().for_each(|f| println!("{}", f.path)),
        Style::Human if files.is_empty() => println!("(empty)"),
        Style::Human => files.iter().for_each(|f| println!("{}", f.path)),
    }
    Ok(())
}

/// Whether `path` is `folder` itself or inside it (`/app` holds `/app/a`, not `/apple`).
fn is_under(path: &str, folder: &str) -> bool {
    folder == "/" || path == folder || path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/'))
}

pub async fn render(client: &Client, args: RenderArgs) -> Result<(), CliError> {
    let session = &args.session.session;
    let entry = args.entry.as_deref().map(absolute);
    let request = RenderRequest { entry: entry.as_deref() };
    let reply: Reply<RenderState> = client.post(session_url(client, session, &["render"]), &request).await?;
    match args.output.style() {
        Style::Json => output::json(&reply.json),
        Style::Quiet => {}
        Style::Human => println!("{}", reply.data.summary()),
    }
    Ok(())
}

pub async fn status(client: &Client, args: StatusArgs) -> Result<(), CliError> {
    let session = &args.session.session;
    let reply: Reply<SessionStatus> = client.get(session_url(client, session, &["status"])).await?;
    let status = reply.data;
    match args.output.style() {
        Style::Json => output::json(&reply.json),
        Style::Quiet => match status.render.as_ref().and_then(|r| r.error.as_deref()) {
            Some(error) => println!("{error}"),
            None => println!("ok"),
        },
        Style::Human => print_status(session, &status),
    }
    Ok(())
}

fn print_status(session: &str, status: &SessionStatus) {
    println!("Session   {session}");
    match &status.render {
        None => println!("Status    not rendered yet"),
        Some(render) => {
            println!("Status    {}", if render.error.is_some() { "✗ error" } else { "✓ ok" });
            println!("Entry     {}", render.entry);
            println!("Version   v{}", render.version);
            if let Some(at) = render.rendered_at {
                println!("Rendered  {}", output::ago(at));
            }
            if let Some(error) = &render.error {
                println!("\nError:\n{error}");
            }
        }
    }
    println!("\nFiles ({})", status.files.len());
    for file in &status.files {
        println!("  {}  v{}  {}", file.path, file.version, output::bytes(file.size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holds_its_own_paths_only() {
        assert!(is_under("/app/App.tsx", "/app"));
        assert!(is_under("/app", "/app"));
        assert!(!is_under("/apple/x", "/app"));
        assert!(is_under("/notes.md", "/"));
    }

    #[test]
    fn session_paths_are_absolute() {
        assert_eq!(absolute("app/App.tsx"), "/app/App.tsx");
        assert_eq!(absolute("/app/App.tsx"), "/app/App.tsx");
        assert_eq!(path_segments("/app//src/a b.ts"), ["app", "src", "a b.ts"]);
    }
}
