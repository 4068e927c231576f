//! Golden-file tests of the intelligence mapping: `golden_intelligence/<case>.input.json` (one
//! object of `GET /api/v2/intelligence/`) beside `golden_intelligence/<case>.expected.json` (the
//! ECS document), and optionally `golden_intelligence/<case>.settings.json`
//! (`ioc_expiration_duration`, a string or null; `tags`; `preserve_original_event`).
//!
//! Every case is mapped with the receive time [`RECEIVED_AT`] and, unless its settings say
//! otherwise, the stream's default duration of 90 days, so `deletion_scheduled_at` is stable.
//! `UPDATE_EXPECT=1 cargo test -p anomali-mapping --test golden_intelligence` rewrites the
//! expected files; review the diff before committing.

#[macro_use]
mod golden_support;

use std::path::PathBuf;

use anomali_mapping::{IocExpiration, MappingSettings, Received, map_intelligence};
use golden_support::{RECEIVED_AT, compare, settings_for};
use serde_json::{Map, Value};

fn golden_dir() -> PathBuf {
    golden_support::golden_dir("golden_intelligence")
}

/// Maps `<case>.input.json` and compares it with `<case>.expected.json`.
#[track_caller]
fn check(case: &str) {
    let dir = golden_dir();
    let input = std::fs::read_to_string(dir.join(format!("{case}.input.json"))).expect("input");
    let original = input.trim();
    let object: Map<String, Value> =
        serde_json::from_str(original).expect("the input is one JSON object");
    let received = Received {
        at: RECEIVED_AT.parse().expect("valid receive time"),
        original: Some(original),
    };
    // The stream's default duration of 90 days unless the case's settings say otherwise.
    let base = MappingSettings {
        ioc_expiration: Some(IocExpiration::DEFAULT),
        ..MappingSettings::default()
    };
    let settings = settings_for(&dir, case, base);
    let document = map_intelligence(object, &received, &settings);
    compare(&dir, case, &document);
}

golden! {
    golden_dir();
    i001_ip_full_object_public,
    i002_ipv6_mal_ipv6,
    i003_ipv6_address_under_ipv4_itype,
    i004_domain_private_amber,
    i005_url_port_query,
    i006_url_unparsable,
    i007_email_phish_email,
    i008_hash_subtype_md5,
    i009_hash_subtype_sha1,
    i010_hash_subtype_sha256,
    i011_hash_subtype_sha512_lowercase,
    i012_hash_without_subtype_by_length,
    i013_ssdeep_itype,
    i014_file_name_itype,
    i015_tlp_lowercase_is_upper_cased,
    i016_tlp_wins_over_is_public,
    i017_is_public_missing_is_amber,
    i018_expiration_before_duration_wins,
    i019_expiration_after_duration_loses,
    i020_expiration_zone_less_is_utc,
    i021_expiration_unreadable_is_an_error,
    i022_no_duration_expiration_alone,
    i023_unknown_itype_is_an_error,
    i024_itype_without_stix_type_is_an_error,
    i025_missing_itype_is_an_error,
    i026_bad_created_and_modified_dates,
    i027_minimal_object,
    i028_confidence_string_and_bucket_edges,
    i029_confidence_non_numeric_is_an_error,
    i030_tag_without_name_is_an_error,
    i031_meta_registrant_regrouped,
    i032_invalid_ip_is_an_error,
    i033_preserve_original_event_and_tags,
    i034_mutex_itype,
    i035_user_account_itype,
    i036_empty_object_is_an_error,
    i037_non_string_tlp_falls_back_to_is_public,
    i038_is_public_unreadable_is_amber,
}
