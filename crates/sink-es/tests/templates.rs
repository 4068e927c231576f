//! Golden files of the templates: `golden/<name>.json` beside the code that writes them.
//! `UPDATE_EXPECT=1 cargo test -p anomali-sink-es --test templates` rewrites them.

use std::path::Path;

use anomali_sink_es::Capabilities;
use anomali_sink_es::templates::{latest_index, source_index_template, source_policy};
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

#[test]
fn source_template_full() {
    check(
        "source-template-full",
        &source_index_template(Capabilities::FULL),
    );
}

#[test]
fn source_template_minimal() {
    check(
        "source-template-minimal",
        &source_index_template(Capabilities::MINIMAL),
    );
}

#[test]
fn latest_index_full() {
    check("latest-index-full", &latest_index(Capabilities::FULL));
}

#[test]
fn latest_index_minimal() {
    check("latest-index-minimal", &latest_index(Capabilities::MINIMAL));
}

#[test]
fn source_policy_five_days() {
    check("source-policy", &source_policy());
}
