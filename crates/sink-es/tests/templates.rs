//! Golden files of the templates: `golden/<name>.json` beside the code that writes them.
//! `UPDATE_EXPECT=1 cargo test -p anomali-sink-es --test templates` rewrites them.

use std::path::Path;

use anomali_sink_es::templates::{latest_index, source_index_template, source_policy};
use anomali_sink_es::{Capabilities, Stream};
use serde_json::Value;

#[track_caller]
fn check(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let text = serde_json::to_string_pretty(actual).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("write golden file");
        return;
    }
    let expected: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("golden file")).expect("JSON");
    assert_eq!(actual, &expected, "{name} differs from its golden file");
}

/// The source template and the latest index of `stream`, on a full and on a minimal cluster.
fn check_stream(stream: Stream) {
    let name = stream.dataset().trim_start_matches("ti_anomali.");
    for (capabilities, level) in [
        (Capabilities::FULL, "full"),
        (Capabilities::MINIMAL, "minimal"),
    ] {
        check(
            &format!("{name}-source-template-{level}"),
            &source_index_template(stream, capabilities),
        );
        check(
            &format!("{name}-latest-index-{level}"),
            &latest_index(stream, capabilities),
        );
    }
}

#[test]
fn threatstream_templates() {
    check_stream(Stream::Threatstream);
}

#[test]
fn intelligence_templates() {
    check_stream(Stream::Intelligence);
}

#[test]
fn source_policy_five_days() {
    check("source-policy", &source_policy());
}
