//! `ti-anomali`: the command line. It parses arguments and configuration and wires the
//! workspace crates together; the behaviour lives in the crates.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent_command;
mod agent_config;
mod agent_logs;
mod map_command;
mod serve_command;

/// Anomali ThreatStream indicators: a webhook like Elastic's ti_anomali integration, ECS
/// mapping, and a live latest store with lookups.
#[derive(Debug, Parser)]
#[command(name = "ti-anomali", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at startup; its size does not matter"
)]
enum Command {
    /// Map indicators (NDJSON, a JSON array or concatenated objects) to ECS documents as NDJSON.
    Map(map_command::MapArgs),
    /// Receive indicators (the webhook, and/or polling the Intelligence API with an
    /// `intelligence:` section in --config) and keep the live ones in the embedded store, or ship
    /// them to Elasticsearch with --es-url (the main job).
    Serve(serve_command::ServeArgs),
    /// Print the live documents matching an IP, domain, URL, e-mail address or hash.
    Lookup(serve_command::LookupArgs),
    /// Run as a component of Elastic Agent: connection info on stdin, configuration from the
    /// agent's units (V2 control protocol), logs as JSON lines on stderr.
    Agent(agent_command::AgentArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Map(args) => map_command::run(&args),
        Command::Serve(args) => {
            init_logs();
            serve_command::serve(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Agent(args) => agent_command::agent(args).map(|()| ExitCode::SUCCESS),
        Command::Lookup(args) => serve_command::lookup(args).map(|found| {
            let _ = writeln!(std::io::stdout(), "{found}");
            ExitCode::SUCCESS
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Not eprintln!: it panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "ti-anomali: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs on stderr; `RUST_LOG` filters (default: info).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a journal gets plain key=value lines.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
