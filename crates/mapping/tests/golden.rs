//! Golden-file tests of the mapping: `golden/<case>.input.json` (one raw indicator) beside
//! `golden/<case>.expected.json` (the ECS document), and optionally `golden/<case>.settings.json`
//! (`ioc_expiration_duration`, `tags`, `preserve_original_event`, `geoip`).
//!
//! Every case is mapped with the receive time [`RECEIVED_AT`]. `UPDATE_EXPECT=1 cargo test -p
//! anomali-mapping --test golden` rewrites the expected files; review the diff before committing.

use std::path::{Path, PathBuf};

use anomali_mapping::{GeoIp, IocExpiration, MappingSettings, Received, map_indicator};
use anomali_model::records;
use serde_json::Value;

const RECEIVED_AT: &str = "2026-01-01T00:00:00Z";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

/// The MaxMind test City database from `../shared/geoip` (never committed here).
fn geoip_db() -> PathBuf {
    let shared = std::env::var_os("TI_ANOMALI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("geoip").join("GeoLite2-City-Test.mmdb")
}

fn settings_for(case: &str) -> MappingSettings {
    let path = golden_dir().join(format!("{case}.settings.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return MappingSettings::default();
    };
    let value: Value = serde_json::from_str(&text).expect("settings file is JSON");
    let mut settings = MappingSettings::default();
    for (key, value) in value.as_object().expect("settings file is an object") {
        match key.as_str() {
            "ioc_expiration_duration" => {
                let text = value.as_str().expect("duration is a string");
                settings.ioc_expiration =
                    Some(text.parse::<IocExpiration>().expect("valid duration"));
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

/// Maps `<case>.input.json` and compares it with `<case>.expected.json`.
#[track_caller]
fn check(case: &str) {
    let dir = golden_dir();
    let input = std::fs::read(dir.join(format!("{case}.input.json"))).expect("input file");
    let mut records = records::split(&input);
    let record = records
        .next()
        .expect("one record")
        .expect("a well-formed record");
    assert!(
        records.next().is_none(),
        "{case}: one indicator per input file"
    );
    let indicator = record.parse().expect("a parsable indicator");
    let received = Received {
        at: RECEIVED_AT.parse().expect("valid receive time"),
        original: Some(record.text),
    };
    let document = map_indicator(indicator, &received, &settings_for(case));
    let actual = serde_json::to_value(&document).expect("documents serialize");

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

/// One `#[test]` per case, so each shows up (and fails) on its own.
macro_rules! golden {
    ($($case:ident),+ $(,)?) => {
        $(#[test] fn $case() { check(stringify!($case)); })+

        #[test]
        fn every_file_in_the_golden_folder_is_a_listed_case() {
            let listed = [$(stringify!($case)),+];
            for entry in std::fs::read_dir(golden_dir()).expect("golden folder") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                let case = name.split('.').next().unwrap_or_default().to_owned();
                assert!(listed.contains(&case.as_str()), "{name} belongs to no listed case");
            }
        }
    };
}

golden! {
    c001_domain_indicator,
}
