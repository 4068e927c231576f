//! The upstream ti_anomali corpus through the mapping crate, in process (`cargo xtask
//! conformance` does the same through the `ti-anomali map` binary).

use anomali_mapping::{GeoIp, IocExpiration, MappingSettings, Received, map_indicator};
use anomali_model::{Indicator, records};
use integration_tests::{read_shared, shared_dir};
use serde_json::Value;

fn received_now() -> chrono::DateTime<chrono::Utc> {
    "2026-12-03T00:00:00Z".parse().expect("a valid constant")
}

#[test]
fn pipeline_test_corpus_maps_to_the_expected_documents() {
    let events: Value = serde_json::from_slice(&read_shared(
        "conformance/ti_anomali/test-anomali-threatstream.json",
    ))
    .unwrap();
    let expected: Value = serde_json::from_slice(&read_shared(
        "conformance/ti_anomali/test-anomali-threatstream.json-expected.json",
    ))
    .unwrap();
    let settings = MappingSettings {
        tags: vec!["preserve_original_event".into()],
        geoip: Some(GeoIp::open(shared_dir().join("geoip/GeoLite2-City-Test.mmdb")).unwrap()),
        ..MappingSettings::default()
    };
    let events = events["events"].as_array().unwrap();
    let expected = &expected["expected"].as_array().unwrap()[2..];
    assert_eq!(events.len(), 100);
    assert_eq!(expected.len(), 100);
    let mut differing = Vec::new();
    for (index, (event, want)) in events.iter().zip(expected).enumerate() {
        let indicator: Indicator = serde_json::from_value(event["json"].clone()).unwrap();
        let received = Received {
            at: received_now(),
            original: None,
        };
        let got = serde_json::to_value(map_indicator(indicator, &received, &settings)).unwrap();
        if &got != want {
            differing.push(format!("document {index}:\n  got  {got}\n  want {want}"));
        }
    }
    assert!(
        differing.is_empty(),
        "{} of 100 differ:\n{}",
        differing.len(),
        differing.join("\n")
    );
}

/// The Elastic Extension's sample log as the webhook receives it, with the settings of the
/// captured `sample_event.json` (5d expiry, preserve_original_event, the integration's tags).
#[test]
fn extension_sample_log_matches_the_captured_sample_event() {
    let log = read_shared("conformance/ti_anomali/test-threatstream-ndjson.log");
    let sample: Value =
        serde_json::from_slice(&read_shared("conformance/ti_anomali/sample_event.json")).unwrap();
    let settings = MappingSettings {
        ioc_expiration: Some("5d".parse::<IocExpiration>().unwrap()),
        tags: vec!["forwarded".into(), "anomali-threatstream".into()],
        preserve_original_event: true,
        geoip: Some(GeoIp::open(shared_dir().join("geoip/GeoLite2-City-Test.mmdb")).unwrap()),
    };
    let records: Vec<_> = records::split(&log)
        .collect::<Result<_, _>>()
        .expect("the sample log is well formed");
    assert_eq!(records.len(), 100);
    let mut documents = Vec::new();
    for record in &records {
        let received = Received {
            at: received_now(),
            original: Some(record.text),
        };
        let document = map_indicator(record.parse().unwrap(), &received, &settings);
        documents.push(serde_json::to_value(document).unwrap());
    }

    let first = &documents[0];
    // What the agent and Fleet add is not the mapping's: compare the mapped part.
    for key in ["@timestamp", "anomali", "ecs", "related", "tags", "threat"] {
        assert_eq!(first[key], sample[key], "{key}");
    }
    for key in ["category", "kind", "severity", "type"] {
        assert_eq!(first["event"][key], sample["event"][key], "event.{key}");
    }
    assert_eq!(first["event"]["original"], records[0].text);

    // The last three lines carry deleted_at instead of added_at: the feed's value wins.
    for document in &documents[97..] {
        assert!(
            document["anomali"]["threatstream"]
                .get("added_at")
                .is_none()
        );
        assert_eq!(
            document["@timestamp"],
            document["anomali"]["threatstream"]["deleted_at"]
        );
    }
    assert!(
        documents.iter().all(|d| d["event"]["kind"] == "enrichment"),
        "no document failed a rule"
    );
}
