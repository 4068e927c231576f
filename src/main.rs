//! `ti-anomali`: the command line. It parses arguments and configuration and wires the
//! workspace crates together; the behaviour lives in the crates.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod map_command;

/// Anomali ThreatStream indicators to ECS documents, like Elastic's ti_anomali integration.
#[derive(Debug, Parser)]
#[command(name = "ti-anomali", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Map indicators (NDJSON, a JSON array or concatenated objects) to ECS documents as NDJSON.
    Map(map_command::MapArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Map(args) => map_command::run(&args),
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
