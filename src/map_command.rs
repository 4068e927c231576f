//! `ti-anomali map`: indicators in, one ECS document per indicator out, as NDJSON.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anomali_mapping::{GeoIp, IocExpiration, MappingSettings, Received, map_indicator};
use anomali_model::records;
use anyhow::Context;
use chrono::Utc;

/// Arguments of `ti-anomali map`. Only what the flags say is applied: no expiry rule unless
/// `--ioc-expiration-duration` is given, and only the tags given with `--tag`.
#[derive(Debug, clap::Args)]
pub(crate) struct MapArgs {
    /// The input file; standard input when absent or `-`.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Fail-safe expiry for indicators without `deleted_at`: an amount and d, h or m (`90d`).
    #[arg(long, value_name = "DURATION")]
    ioc_expiration_duration: Option<IocExpiration>,
    /// A tag for every document (repeatable), before the tags from `detail`.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Keep each raw indicator in `event.original` and tag it `preserve_original_event`.
    #[arg(long)]
    preserve_original_event: bool,
    /// A MaxMind City database (`.mmdb`) for `threat.indicator.geo`.
    #[arg(long, value_name = "FILE")]
    geoip_db: Option<PathBuf>,
}

pub(crate) fn run(args: &MapArgs) -> anyhow::Result<ExitCode> {
    let geoip = match &args.geoip_db {
        Some(path) => Some(GeoIp::open(path)?),
        None => None,
    };
    let settings = MappingSettings {
        ioc_expiration: args.ioc_expiration_duration,
        tags: args.tags.clone(),
        preserve_original_event: args.preserve_original_event,
        geoip,
    };
    let (input, source_name) = match args.input.as_deref() {
        None => (read_stdin()?, "<stdin>".to_owned()),
        Some(path) if path.as_os_str() == "-" => (read_stdin()?, "<stdin>".to_owned()),
        Some(path) => (
            fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
    };

    let received_at = Utc::now();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = Vec::with_capacity(4096);
    let mut bad_records = 0usize;
    let stderr = io::stderr();
    let mut report = |error: &dyn std::fmt::Display| {
        bad_records += 1;
        // A closed stderr must not stop the mapping (eprintln! would panic).
        let _ = writeln!(
            stderr.lock(),
            "ti-anomali map: {source_name}: {error}; skipped"
        );
    };
    for record in records::split(&input) {
        let indicator = match record.and_then(|r| r.parse().map(|indicator| (r, indicator))) {
            Ok(parsed) => parsed,
            Err(error) => {
                report(&error);
                continue;
            }
        };
        let (record, indicator) = indicator;
        let received = Received {
            at: received_at,
            original: Some(record.text),
        };
        let document = map_indicator(indicator, &received, &settings);
        line.clear();
        document.write_json(&mut line);
        line.push(b'\n');
        if let Err(error) = out.write_all(&line) {
            return finish_on_write_error(error, bad_records);
        }
    }
    if let Err(error) = out.flush() {
        return finish_on_write_error(error, bad_records);
    }
    Ok(exit_code(bad_records))
}

/// 0 when every record mapped, 1 when some were reported and skipped.
fn exit_code(bad_records: usize) -> ExitCode {
    if bad_records == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut input = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut input)
        .context("cannot read standard input")?;
    Ok(input)
}

/// A closed pipe (`ti-anomali map | head`) is a normal end, not an error; the exit status still
/// says whether bad records were met before it.
fn finish_on_write_error(error: io::Error, bad_records: usize) -> anyhow::Result<ExitCode> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return Ok(exit_code(bad_records));
    }
    Err(anyhow::Error::new(error).context("cannot write to standard output"))
}
