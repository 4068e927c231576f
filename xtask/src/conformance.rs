//! `cargo xtask conformance`: the upstream ti_anomali corpus through the real `ti-anomali map`.
//!
//! The corpus's SOURCE.md says what the upstream test harness applies: the tag
//! `preserve_original_event` on every event, no `ioc_expiration_duration`, and GeoIP from
//! MaxMind's test City database. `conformance-check` compares our documents with the expected
//! ones as JSON values; anything short of 100/100 fails.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::shared_dir;

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let shared = shared_dir(root)?;
    let checker = shared.join("tools").join("conformance-check");
    let corpus = shared.join("conformance").join("ti_anomali");
    let geoip = shared.join("geoip").join("GeoLite2-City-Test.mmdb");
    for needed in [&checker, &corpus, &geoip] {
        if !needed.exists() {
            bail!("conformance needs {}, which is missing", needed.display());
        }
    }

    let work = root.join("target").join("conformance");
    fs::create_dir_all(&work).context("cannot create target/conformance")?;

    let input = Command::new("python3")
        .arg(&checker)
        .arg("--emit-input")
        .stdin(Stdio::null())
        .output()
        .context("cannot run conformance-check (is python3 installed?)")?;
    if !input.status.success() {
        bail!(
            "conformance-check --emit-input failed: {}",
            String::from_utf8_lossy(&input.stderr)
        );
    }
    let input_path = work.join("input.ndjson");
    fs::write(&input_path, &input.stdout).context("cannot write the corpus input")?;

    // `cargo run` finds the binary wherever the target folder is (CARGO_TARGET_DIR and all).
    eprintln!("xtask: running ti-anomali map on the corpus");
    let output = Command::new("cargo")
        .args([
            "run",
            "-q",
            "--bin",
            "ti-anomali",
            "--",
            "map",
            "--tag",
            "preserve_original_event",
            "--geoip-db",
        ])
        .arg(&geoip)
        .arg("--input")
        .arg(&input_path)
        .stdin(Stdio::null())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!(
            "ti-anomali map failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output_path = work.join("output.ndjson");
    fs::write(&output_path, &output.stdout).context("cannot write the mapped documents")?;

    let verdict = Command::new("python3")
        .arg(&checker)
        .arg(&output_path)
        .arg("--corpus")
        .arg(&corpus)
        .stdin(Stdio::null())
        .output()
        .context("cannot run conformance-check")?;
    let report = String::from_utf8_lossy(&verdict.stdout);
    print!("{report}");
    if !verdict.status.success() || !report.contains("conformance: 100/100 documents equal") {
        bail!(
            "conformance failed: see the differences above ({})",
            output_path.display()
        );
    }
    Ok(())
}
