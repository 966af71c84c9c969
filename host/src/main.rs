//! The `stage` command: `stage serve` runs the gateway; the other subcommands are the
//! client an agent uses to talk to one (see [`cli`]).

mod cli;

use clap::{Parser, Subcommand};

/// Many small allocations per request (JSON, HTTP, wasm instances): mimalloc spends much
/// less time in them than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use stage_host::config::Config;

#[derive(Parser)]
#[command(name = "stage", version, about = "Stage: run AI-built apps safely")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(Box<Config>),
    #[command(flatten)]
    Client(cli::Command),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STAGE_LOG").unwrap_or_else(|_| "info,stage_host=info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(config) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(stage_host::serve(*config))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Client(command) => Ok(cli::main(command)),
    }
}
