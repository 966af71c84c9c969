//! The client commands of the `stage` binary (`stage new`, `write`, `push`, `run`, …): what
//! an agent types to use a Stage server over HTTP.
//!
//! Every command speaks to the server named by `STAGE_URL` (default
//! `http://127.0.0.1:3000`) through its REST API (`/api/v1/…`, see [`client`]), with the key
//! from `STAGE_KEY` or, for a server on this machine, the local data folder's admin key.
//! Each prints short text for people, the server's data with `--json`, and only what a
//! script needs (an id, a file's content) or nothing with `--quiet`; errors go to stderr,
//! and the exit code says what kind of failure it was ([`ExitCode`], as the original
//! TypeScript CLI's, plus 5 for a refused key).
//!
//! This module holds the command line (clap) and the outcome of a command; [`client`] the
//! HTTP client, [`wire`] the request and answer types, [`output`] the printing rules, and
//! one module per family of commands: [`session`] (`new`, `write`, `read`, `ls`, `render`,
//! `status`), [`push`], [`apps`] (`publish`, `run`, `logs`).

mod apps;
mod client;
mod output;
mod push;
mod session;
mod wire;

use clap::{Args, Subcommand};

pub use self::client::CliError;
use self::client::Client;
use self::output::OutputFlags;

/// Exit codes of the client commands. 0 to 4 are the original Stage CLI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    /// The server refused or failed the request, or a run answered an error.
    Error = 1,
    /// Bad usage: a wrong argument, an unreadable local file, or a request the server
    /// refused as invalid (400, 413, 422).
    Usage = 2,
    /// The session, file, app, workflow or run does not exist (404).
    NotFound = 3,
    /// The server did not answer at `STAGE_URL`.
    Unreachable = 4,
    /// The server wants a key, or refused the one sent (401, 403).
    Unauthorized = 5,
}

/// The client subcommands, next to `stage serve`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a session (prints its id).
    New(NewArgs),
    /// Write one file into a session, from a local file or stdin.
    Write(WriteArgs),
    /// Print a file of a session.
    Read(ReadArgs),
    /// List the files of a session.
    Ls(LsArgs),
    /// Push a local folder (or one file) into a session, then render it.
    Push(PushArgs),
    /// Render a session's entry (default /app/App.tsx).
    Render(RenderArgs),
    /// Show a session's render state (with its error, if any) and files.
    Status(StatusArgs),
    /// Publish a session as an app, or publish a new version of its app.
    Publish(PublishArgs),
    /// Run a workflow of a published app and print its answer.
    Run(RunArgs),
    /// Show an app's latest runs, or one run's steps with their logs and errors.
    Logs(LogsArgs),
}

/// The session a command works on.
#[derive(Debug, Args)]
pub struct SessionArg {
    /// Session id (or the sid of the app published from it).
    #[arg(short, long, value_name = "ID", env = "STAGE_SESSION")]
    pub session: String,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Path of the file in the session, e.g. /app/App.tsx.
    pub remote_path: String,
    /// Local file to read; `-` (or nothing, when stdin is not a terminal) reads stdin.
    pub local_file: Option<String>,
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Path of the file in the session.
    pub remote_path: String,
    /// Read this version of the file instead of the latest.
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only files under this folder (default: every file).
    pub path: Option<String>,
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Local folder (or single file) to push. Entries named `node_modules` or starting
    /// with a dot are skipped.
    pub local_dir: String,
    /// Folder of the session to push into.
    #[arg(default_value = "/app")]
    pub remote_dir: String,
    /// Entry to render after the push (default REMOTE_DIR/App.tsx).
    #[arg(short, long, value_name = "PATH")]
    pub entry: Option<String>,
    /// Do not render after the push.
    #[arg(long)]
    pub no_render: bool,
    /// Show progress on stderr even when it is not a terminal (never with --quiet).
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Entry to render (default /app/App.tsx).
    pub entry: Option<String>,
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The app's name (default: the session id on first publish; kept after).
    #[arg(long)]
    pub name: Option<String>,
    /// The app's description.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub session: SessionArg,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The app's sid (app_…).
    pub app: String,
    /// The workflow's name in the app's shift.workflows.json.
    pub workflow: String,
    /// The run's input: a JSON object.
    #[arg(short, long, value_name = "JSON", conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the input (a JSON object) from a file, or stdin with `-`.
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<String>,
    /// Wait at most this long for the run (the server's bound applies); past it the
    /// answer is the run id with status `running`.
    #[arg(long, value_name = "MS")]
    pub wait: Option<u64>,
    /// `Idempotency-Key` of the run: the same key replays the first answer.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The app's sid: lists its latest runs, newest first.
    #[arg(required_unless_present = "run", conflicts_with = "run")]
    pub app: Option<String>,
    /// Show this run (run_…) with its steps, their errors, log lines, stdout and stderr.
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// How many runs to list.
    #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    #[command(flatten)]
    pub output: OutputFlags,
}

/// Runs a client command; errors are printed on stderr. Returns the process's exit code.
pub fn main(command: Command) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::Failed(format!("cannot start the async runtime: {e}"))),
    };
    match runtime.block_on(execute(command)) {
        Ok(()) => std::process::ExitCode::from(ExitCode::Success as u8),
        Err(error) => fail(&error),
    }
}

fn fail(error: &CliError) -> std::process::ExitCode {
    eprintln!("error: {error}");
    std::process::ExitCode::from(error.exit_code() as u8)
}

async fn execute(command: Command) -> Result<(), CliError> {
    let client = Client::from_env()?;
    match command {
        Command::New(args) => session::new(&client, args).await,
        Command::Write(args) => session::write(&client, args).await,
        Command::Read(args) => session::read(&client, args).await,
        Command::Ls(args) => session::ls(&client, args).await,
        Command::Render(args) => session::render(&client, args).await,
        Command::Status(args) => session::status(&client, args).await,
        Command::Push(args) => push::push(&client, args).await,
        Command::Publish(args) => apps::publish(&client, args).await,
        Command::Run(args) => apps::run(&client, args).await,
        Command::Logs(args) => apps::logs(&client, args).await,
    }
}
