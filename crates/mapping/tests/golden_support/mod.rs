//! Shared by the golden-file tests of both mappings: the receive time, the per-case settings
//! file, the one comparison with the expected document, and the macro that makes one `#[test]`
//! per case.

#![allow(dead_code, reason = "each golden test file uses a part")]

use std::path::{Path, PathBuf};

use anomali_mapping::{GeoIp, IocExpiration, MappingSettings};
use anomali_model::EcsDocument;
use serde_json::Value;

/// Every case is mapped as if received at this time, so computed dates are stable.
pub const RECEIVED_AT: &str = "2026-01-01T00:00:00Z";

/// `crates/mapping/tests/<name>`.
pub fn golden_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// The MaxMind test City database from `../shared/geoip` (never committed here).
fn geoip_db() -> PathBuf {
    let shared = std::env::var_os("TI_ANOMALI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("geoip").join("GeoLite2-City-Test.mmdb")
}

/// `base`, changed by `<dir>/<case>.settings.json` when it exists: `ioc_expiration_duration`
/// (a string, or null for none), `tags`, `preserve_original_event`, `geoip` (true: the test
/// database).
pub fn settings_for(dir: &Path, case: &str, base: MappingSettings) -> MappingSettings {
    let mut settings = base;
    let Ok(text) = std::fs::read_to_string(dir.join(format!("{case}.settings.json"))) else {
        return settings;
    };
    let value: Value = serde_json::from_str(&text).expect("settings file is JSON");
    for (key, value) in value.as_object().expect("settings file is an object") {
        match key.as_str() {
            "ioc_expiration_duration" => {
                settings.ioc_expiration = value
                    .as_str()
                    .map(|text| text.parse::<IocExpiration>().expect("valid duration"));
            }
            "tags" => {
                settings.tags = serde_json::from_value(value.clone()).expect("tags are strings");
            }
            "preserve_original_event" => {
                settings.preserve_original_event = value.as_bool().expect("a boolean");
            }
            "geoip" => {
                if value.as_bool().expect("a boolean") {
                    let db = geoip_db();
                    settings.geoip = Some(GeoIp::open(&db).unwrap_or_else(|e| {
                        panic!("{e}: the golden tests need ../shared/geoip beside the repository")
                    }));
                }
            }
            other => panic!("{case}.settings.json: unknown key {other}"),
        }
    }
    settings
}

/// Compares `document` with `<dir>/<case>.expected.json` (rewritten instead when
/// `UPDATE_EXPECT` is set), after checking the fast encoder agrees with serde.
#[track_caller]
pub fn compare(dir: &Path, case: &str, document: &EcsDocument) {
    let actual = serde_json::to_value(document).expect("documents serialize");
    let mut fast = Vec::new();
    document.write_json(&mut fast);
    assert_eq!(
        String::from_utf8_lossy(&fast),
        serde_json::to_string(document).expect("documents serialize"),
        "{case}: EcsDocument::write_json differs from serde_json"
    );
    let expected_path = dir.join(format!("{case}.expected.json"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let text = serde_json::to_string_pretty(&actual).expect("pretty JSON") + "\n";
        std::fs::write(&expected_path, text).expect("write expected file");
        return;
    }
    let expected: Value = serde_json::from_slice(
        &std::fs::read(&expected_path).unwrap_or_else(|_| panic!("{case}: no expected file")),
    )
    .expect("expected file is JSON");
    assert!(
        actual == expected,
        "{case}: mapped document differs\n--- expected\n{}\n--- actual\n{}",
        serde_json::to_string_pretty(&expected).unwrap_or_default(),
        serde_json::to_string_pretty(&actual).unwrap_or_default(),
    );
}

/// One `#[test]` per case calling `check`, so each shows up (and fails) on its own, and a test
/// that every file in `$dir` belongs to a listed case.
macro_rules! golden {
    ($dir:expr; $($case:ident),+ $(,)?) => {
        $(#[test] fn $case() { check(stringify!($case)); })+

        #[test]
        fn every_file_in_the_golden_folder_is_a_listed_case() {
            let listed = [$(stringify!($case)),+];
            for entry in std::fs::read_dir($dir).expect("golden folder") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                let case = name.split('.').next().unwrap_or_default().to_owned();
                assert!(listed.contains(&case.as_str()), "{name} belongs to no listed case");
            }
        }
    };
}
