//! `cargo xtask bench`: runs the criterion mapping benchmark and prints the figures the issue
//! asks for, from criterion's own estimates: indicators/s and MB/s for (a) parse only and (b)
//! parse + map + serialize, and the ratio b/a (time of b over time of a).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::run_command;

pub(crate) fn run(root: &Path, extra_args: &[String]) -> anyhow::Result<()> {
    let criterion_home = root.join("target").join("criterion");
    // `cargo xtask bench -- --measurement-time 4` hands us the `--` as well.
    let extra_args = extra_args
        .strip_prefix(&["--".to_owned()])
        .unwrap_or(extra_args);
    // Pin to one core when taskset exists: the targets are per core, and the machine is small.
    let mut command = if which("taskset") {
        let mut command = Command::new("taskset");
        command.args(["-c", "1", "cargo"]);
        command
    } else {
        Command::new("cargo")
    };
    command
        .args(["bench", "-p", "benches", "--bench", "mapping", "--"])
        .args(extra_args)
        .env("CRITERION_HOME", &criterion_home);
    run_command(&mut command)?;

    let input: serde_like::Input =
        serde_like::read_input(&criterion_home.join("mapping-input.json"))?;
    let parse = mean_ns(&criterion_home.join("mapping/parse/new/estimates.json"))?;
    let full = mean_ns(&criterion_home.join("mapping/parse_map_serialize/new/estimates.json"))?;
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    println!();
    println!(
        "mapping benchmark: {} generated indicators, {} bytes of NDJSON, one core pinned of {cores}",
        input.indicators, input.bytes
    );
    for (label, ns) in [("(a) parse", parse), ("(b) parse + map + serialize", full)] {
        let seconds = ns / 1e9;
        println!(
            "  {label:<30} {:>10.0} indicators/s {:>8.1} MB/s  ({:.2} ms per batch)",
            input.indicators as f64 / seconds,
            input.bytes as f64 / seconds / 1e6,
            ns / 1e6
        );
    }
    println!(
        "  ratio b/a: {:.2} (target: at most 2.5; (b) target: at least 300000 indicators/s)",
        full / parse
    );
    Ok(())
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Criterion's mean estimate, in nanoseconds per iteration (one iteration = the whole batch).
fn mean_ns(path: &Path) -> anyhow::Result<f64> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_like::number_after(&text, "\"mean\"", "\"point_estimate\"")
        .with_context(|| format!("no mean estimate in {}", path.display()))
}

/// Just enough JSON reading for criterion's files, so xtask needs no JSON dependency.
mod serde_like {
    use std::path::Path;

    use anyhow::{Context, bail};

    pub(crate) struct Input {
        pub(crate) indicators: u64,
        pub(crate) bytes: u64,
    }

    pub(crate) fn read_input(path: &Path) -> anyhow::Result<Input> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read {} (written by the benchmark)", path.display())
        })?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let value = number_after(&text, "{", &format!("\"{name}\""))?;
            if value < 0.0 {
                bail!("negative {name} in {}", path.display());
            }
            Ok(value as u64)
        };
        Ok(Input {
            indicators: field("indicators")?,
            bytes: field("bytes")?,
        })
    }

    /// The number after `key`, searching from the first `anchor`.
    pub(crate) fn number_after(text: &str, anchor: &str, key: &str) -> anyhow::Result<f64> {
        let from = text.find(anchor).context("anchor not found")?;
        let at = text[from..].find(key).context("key not found")? + from + key.len();
        let rest = text[at..].trim_start_matches([' ', ':', '\n', '\t']);
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')))
            .unwrap_or(rest.len());
        rest[..end].parse::<f64>().context("not a number")
    }
}

#[cfg(test)]
mod tests {
    use super::serde_like::number_after;

    #[test]
    fn reads_criterion_estimates() {
        let text = r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":11763414.86},"median":{"point_estimate":5.0}}"#;
        assert_eq!(
            number_after(text, "\"mean\"", "\"point_estimate\"").unwrap(),
            11763414.86
        );
        assert_eq!(
            number_after(text, "\"median\"", "\"point_estimate\"").unwrap(),
            5.0
        );
        assert!(number_after(text, "\"nothing\"", "\"point_estimate\"").is_err());
    }
}
