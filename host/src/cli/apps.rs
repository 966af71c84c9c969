//! App commands: `publish` (`/api/v1/stage/apps…`), `run` (`/api/v1/run/:app/:workflow`)
//! and `logs` (`/api/v1/stage/apps/:sid/runs`, `/api/v1/runs/:id`).

use std::io::Read;

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::client::{CliError, Client, Reply};
use super::output::{self, Style};
use super::wire::{App, AppPatch, Failure, PublishRequest, RunRecord, RunRequest, StepRecord};
use super::{LogsArgs, PublishArgs, RunArgs};

/// Publishes the session: as a new app the first time, else as a new version of its app
/// (after applying `--name` / `--description`). Prints the app as it is then.
pub async fn publish(client: &Client, args: PublishArgs) -> Result<(), CliError> {
    let session = args.session.session.as_str();
    let mut list = client.url(&["api", "v1", "stage", "apps"]);
    list.query_pairs_mut().append_pair("sessionId", session);
    let existing: Reply<Vec<App>> = client.get(list).await?;
    let reply: Reply<App> = match existing.data.first() {
        None => {
            let name = args.name.as_deref().unwrap_or(session);
            let request = PublishRequest { session_id: session, name, description: args.description.as_deref() };
            client.post(client.url(&["api", "v1", "stage", "apps"]), &request).await?
        }
        Some(app) => {
            let app_url = client.url(&["api", "v1", "stage", "apps", &app.sid]);
            if args.name.is_some() || args.description.is_some() {
                let patch = AppPatch { name: args.name.as_deref(), description: args.description.as_deref() };
                let _: Reply<App> = client.patch(app_url.clone(), &patch).await?;
            }
            let versions = client.url(&["api", "v1", "stage", "apps", &app.sid, "versions"]);
            let _: Reply<serde::de::IgnoredAny> = client.post(versions, &serde_json::Map::new()).await?;
            client.get(app_url).await?
        }
    };
    let app = &reply.data;
    match args.output.style() {
        Style::Json => output::json(&reply.json),
        Style::Quiet => println!("{}", app.sid),
        Style::Human => {
            println!("✓ Published {} v{} ({})", app.sid, app.version, app.name);
            println!("  run a workflow: stage run {} WORKFLOW", app.sid);
        }
    }
    Ok(())
}

/// `run --json`: the workflow's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunOutcome<'a> {
    run_id: &'a str,
    http_status: u16,
    replayed: bool,
    body: &'a Value,
}

/// Runs a workflow and prints its answer. Exits 0 when the workflow answered below 400
/// (or is still running past `--wait`), 1 when it answered an error or failed.
pub async fn run(client: &Client, args: RunArgs) -> Result<(), CliError> {
    let input = run_input(&args)?;
    let mut url = client.url(&["api", "v1", "run", &args.app, &args.workflow]);
    if let Some(wait) = args.wait {
        url.query_pairs_mut().append_pair("wait", &wait.to_string());
    }
    let body = serde_json::to_value(RunRequest { input }).expect("a JSON value serialises");
    let answer = client.run(url, &body, args.idempotency_key.as_deref()).await?;
    let run_id = answer.run_id.as_deref().unwrap_or_default();
    let pending =
        answer.status == StatusCode::ACCEPTED && answer.body.pointer("/data/status") == Some(&"running".into());
    match args.output.style() {
        Style::Json => output::json(&RunOutcome {
            run_id,
            http_status: answer.status.as_u16(),
            replayed: answer.replayed,
            body: &answer.body,
        }),
        Style::Quiet => println!("{run_id}"),
        Style::Human if pending => {
            println!("… {} is still running ({run_id}); see: stage logs --run {run_id}", args.workflow);
        }
        Style::Human => {
            let replayed = if answer.replayed { ", replayed" } else { "" };
            let mark = if answer.status.as_u16() < 400 { "✓" } else { "✗" };
            println!("{mark} {} answered {} ({run_id}{replayed})", args.workflow, answer.status.as_u16());
            match &answer.body {
                Value::String(text) => println!("{text}"),
                body => output::json(body),
            }
        }
    }
    if answer.status.as_u16() >= 400 {
        let why = answer.body.pointer("/error/message").and_then(Value::as_str).unwrap_or("see its answer");
        return Err(CliError::Failed(format!(
            "run {run_id} of {} answered {}: {why} (details: stage logs --run {run_id})",
            args.workflow,
            answer.status.as_u16()
        )));
    }
    Ok(())
}

/// The run's input: `--input`, `--input-file` (`-` for stdin), or `{}`.
fn run_input(args: &RunArgs) -> Result<Value, CliError> {
    let (text, source) = match (&args.input, args.input_file.as_deref()) {
        (Some(text), _) => (text.clone(), "--input".to_owned()),
        (None, Some("-")) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Usage(format!("cannot read the input from stdin: {e}")))?;
            (text, "stdin".to_owned())
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {path}: {e}")))?;
            (text, path.to_owned())
        }
        (None, None) => return Ok(Value::Object(serde_json::Map::new())),
    };
    let input: Value =
        serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("the input in {source} is not JSON: {e}")))?;
    if !input.is_object() {
        return Err(CliError::Usage(format!("the input in {source} must be a JSON object")));
    }
    Ok(input)
}

/// An app's latest runs, or one run with its steps.
pub async fn logs(client: &Client, args: LogsArgs) -> Result<(), CliError> {
    let style = args.output.style();
    if let Some(run_id) = &args.run {
        let reply: Reply<RunRecord> = client.get(client.url(&["api", "v1", "runs", run_id])).await?;
        match style {
            Style::Json => output::json(&reply.json),
            Style::Quiet => println!("{}", reply.data.status),
            Style::Human => print_run(&reply.data),
        }
        return Ok(());
    }
    let app = args.app.as_deref().unwrap_or_default();
    let mut url = client.url(&["api", "v1", "stage", "apps", app, "runs"]);
    url.query_pairs_mut().append_pair("limit", &args.limit.to_string());
    let reply: Reply<Vec<RunRecord>> = client.get(url).await?;
    match style {
        Style::Json => output::json(&reply.json),
        Style::Quiet => reply.data.iter().for_each(|run| println!("{}", run.id)),
        Style::Human if reply.data.is_empty() => println!("(no runs)"),
        Style::Human => {
            for run in &reply.data {
                println!("{}", run_line(run));
                if let Some(error) = &run.error {
                    println!("    {}", failure(error));
                }
            }
            println!("\nsteps and logs of a run: stage logs --run RUN_ID");
        }
    }
    Ok(())
}

/// `run_…  signup  succeeded  201  14 ms  3s ago`.
fn run_line(run: &RunRecord) -> String {
    let answered = run.answer.as_ref().map(|a| a.status.to_string()).unwrap_or_else(|| "-".into());
    let took = run.finished_at.map(|end| format!("{} ms", end - run.created_at)).unwrap_or_else(|| "…".into());
    format!(
        "{}  {:<16} {:<9} {answered:>3} {took:>8}  {}",
        run.id,
        run.workflow,
        run.status,
        output::ago(run.created_at)
    )
}

fn failure(error: &Failure) -> String {
    match (&error.code, &error.class) {
        (Some(code), _) => format!("error {code}: {}", error.message),
        (None, Some(class)) => format!("error ({class}): {}", error.message),
        (None, None) => format!("error: {}", error.message),
    }
}

fn print_run(run: &RunRecord) {
    println!("{}", run_line(run));
    println!("  app {} v{}", run.app_sid, run.app_version);
    if let Some(error) = &run.error {
        println!("  {}", failure(error));
    }
    for step in &run.steps {
        print_step(step);
    }
}

/// `  step 0  event  pulse.track  succeeded  3 ms`, then the step's error, its log lines
/// and what it wrote on stdout and stderr.
fn print_step(step: &StepRecord) {
    let id = step.id.as_deref().unwrap_or("-");
    let took = step.finished_at - step.started_at;
    println!("  step {}  {id:<12} {:<24} {:<9} {took:>5} ms", step.index, step.kind, step.status);
    if let Some(error) = &step.error {
        println!("      {}", failure(error));
    }
    for line in step.log.iter().flatten() {
        println!("      [{}] {}", line.level, line.message);
    }
    for (stream, text) in [("stdout", &step.stdout), ("stderr", &step.stderr)] {
        for line in text.lines() {
            println!("      {stream}: {line}");
        }
    }
}
