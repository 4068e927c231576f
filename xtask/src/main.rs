//! `cargo xtask <command>`: the project's workflows that cargo alone cannot express.
//!
//! - `ci`: what CI runs: formatting, clippy with warnings denied, every test, conformance, e2e.
//! - `conformance`: maps the upstream corpus in `../shared/conformance/ti_anomali` with the real
//!   `ti-anomali map` and compares the result with the expected documents (must be 100/100).
//! - `bench`: the criterion mapping benchmark, then indicators/s, MB/s and the ratio b/a.
//! - `load`: the webhook under signed NDJSON batches of 1, 100 and 1000 indicators (loopback);
//!   `load --es [--pushes N]`: end to end into Elasticsearch beside raw `_bulk` of the same
//!   documents (ES_URL, or a cluster started as for e2e).
//! - `e2e`: end-to-end tests against a real Elasticsearch (ES_URL, or one fetched from Maven
//!   Central and started on loopback).
//! - `es`: that same cluster for development, kept for `--minutes N`; prints its URL.
//!
//! See <https://github.com/matklad/cargo-xtask> for the pattern. Every command runs from the
//! repository root and fails loudly when something it needs is missing.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a terminal tool: printing is its output"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

mod bench;
mod conformance;
mod e2e;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).context("cannot enter the project root")?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("conformance") => conformance::run(&root),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("load") => load(&args[1..]),
        Some("e2e") => e2e::run(),
        Some("es") => {
            let minutes = match args.get(1).map(String::as_str) {
                Some("--minutes") => args
                    .get(2)
                    .and_then(|m| m.parse().ok())
                    .context("--minutes needs a number")?,
                Some(other) => bail!("unknown argument {other:?}\n{USAGE}"),
                None => 60,
            };
            e2e::dev_cluster(minutes)
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
        None => bail!("no command given\n{USAGE}"),
    }
}

const USAGE: &str = "usage: cargo xtask <ci | conformance | e2e | es [--minutes N] | bench [criterion args] | load [--seconds N | --es [--pushes N]]>";

/// The load tests (loopback only, bounded in time and requests): the webhook alone, the webhook
/// into the embedded store with durable commits (as `serve` runs), and the store at 1,000,000
/// live indicators. See `benches/src/bin/webhook-load.rs` and `store-load.rs`.
fn load(args: &[String]) -> anyhow::Result<()> {
    let args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    let cargo_run = |binary: &str| {
        let mut command = Command::new("cargo");
        command.args([
            "run",
            "--release",
            "-q",
            "-p",
            "benches",
            "--bin",
            binary,
            "--",
        ]);
        command
    };
    if args.first().map(String::as_str) == Some("--es") {
        // End to end into Elasticsearch beside raw _bulk: ES_URL, or a cluster started here.
        return e2e::with_cluster(|url| {
            run_command(cargo_run("es-load").args(&args[1..]).env("ES_URL", url))
        });
    }
    run_command(cargo_run("webhook-load").args(args))?;
    let store_dir = std::env::temp_dir().join(format!("ti-anomali-load-{}", std::process::id()));
    let result = run_command(
        cargo_run("webhook-load")
            .args(args)
            .arg("--store")
            .arg(&store_dir),
    );
    let _ = std::fs::remove_dir_all(&store_dir);
    result?;
    run_command(&mut cargo_run("store-load"))
}

fn ci(root: &Path) -> anyhow::Result<()> {
    run_command(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run_command(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The e2e test files only build with their features: lint them too.
    run_command(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "ti-anomali/e2e,integration-tests/e2e",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_command(Command::new("cargo").args(["test", "--workspace"]))?;
    conformance::run(root)?;
    e2e::run()
}

/// The repository root: the parent of this crate. Read at run time (cargo sets it when it runs
/// us), so an xtask binary shared through a common target folder serves the right checkout.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `../shared` beside the repository (or `TI_ANOMALI_SHARED`): the reference material.
fn shared_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("TI_ANOMALI_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => root.join("..").join("shared"),
    };
    if !dir.is_dir() {
        bail!(
            "the reference material is missing: {} is not a folder (set TI_ANOMALI_SHARED)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Runs a command with inherited output; fails when it fails.
fn run_command(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
