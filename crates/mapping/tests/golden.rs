//! Golden-file tests of the mapping: `golden/<case>.input.json` (one raw indicator) beside
//! `golden/<case>.expected.json` (the ECS document), and optionally `golden/<case>.settings.json`
//! (`ioc_expiration_duration`, `tags`, `preserve_original_event`, `geoip`).
//!
//! Every case is mapped with the receive time [`RECEIVED_AT`]. `UPDATE_EXPECT=1 cargo test -p
//! anomali-mapping --test golden` rewrites the expected files; review the diff before committing.

#[macro_use]
mod golden_support;

use std::path::PathBuf;

use anomali_mapping::{MappingSettings, Received, map_indicator};
use anomali_model::records;
use golden_support::{RECEIVED_AT, compare, settings_for};

fn golden_dir() -> PathBuf {
    golden_support::golden_dir("golden")
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
    let settings = settings_for(&dir, case, MappingSettings::default());
    let document = map_indicator(indicator, &received, &settings);
    compare(&dir, case, &document);
}

golden! {
    golden_dir();
    c001_domain_indicator,
    c002_ipv6_srcip_mal_ip,
    c003_ipv4_mal_ip_feed_geo,
    c004_url_phish_url,
    c005_email_mal_email,
    c006_file_md5_32,
    c007_file_sha1_40,
    c008_file_sha256_64,
    c009_file_sha512_128,
    c010_file_odd_length_hash,
    c011_x509_sslcert_sha1,
    c012_crypto_pool_domain,
    c013_apt_subject_email,
    c014_suppress_itype,
    c015_unknown_itype,
    c016_non_string_itype,
    c017_confidence_minus_one,
    c018_confidence_zero,
    c019_confidence_29_5_low,
    c020_confidence_69_5_medium,
    c021_confidence_100_high,
    c022_confidence_101_none,
    c023_confidence_numeric_string,
    c024_confidence_non_numeric_string,
    c025_trusted_circle_ids_padded,
    c026_trusted_circle_ids_only_commas,
    c027_trusted_circle_ids_number,
    c028_trusted_circle_ids_trimmed,
    c029_detail_escaped_duplicates_empty,
    c030_ipv6_srcip_url_itype,
    c031_invalid_srcip,
    c032_url_port_query_fragment,
    c033_url_percent_encoded_path,
    c034_url_user_info_password,
    c035_url_user_info_no_colon,
    c036_url_scheme_less,
    c037_url_broken_whitespace,
    c038_url_with_domain_related_hosts,
    c039_lat_without_lon,
    c040_lat_lon_strings,
    c041_lat_out_of_range,
    c042_country_without_geoip,
    c043_geoip_hit_replaces_feed_geo,
    c044_geoip_miss_private_ip,
    c045_geoip_ipv6_norway,
    c046_deleted_at_only,
    c047_no_dates_receive_time,
    c048_expiry_days,
    c049_expiry_hours,
    c050_expiry_minutes,
    c051_expiry_added_at_zulu,
    c052_expiry_added_at_offset,
    c053_feed_deleted_at_wins,
    c054_expiry_missing_added_at,
    c055_invalid_added_at_expiry,
    c056_invalid_date_first,
    c057_invalid_feed_deleted_at_fail_safe,
    c058_asn_string,
    c059_asn_number,
    c060_asn_empty_string,
    c061_asn_non_numeric,
    c062_org_source_email_moves,
    c063_keyword_fields_arrays_objects,
    c064_tags_and_preserve_original_event,
    c065_unknown_fields_nested_pruned,
    c066_nulls_and_empty_strings_removed,
    c067_ids_as_strings,
    c068_severity_uppercase,
    c069_severity_mixed_case_low,
    c070_severity_unknown,
    c071_classification_private_uppercase,
    c072_classification_unknown,
    c073_error_with_preserve_no_duplicate_tag,
    c074_sample_event_reproduction,
    c075_deleted_at_only_with_expiry,
    c076_url_ipv6_host_port,
    c077_geoip_linkoping_with_country,
    c078_x509_sslcert_sh1_quirk,
    c079_deleted_at_only_with_offset,
    c080_domain_array_on_url_indicator_is_an_error,
    c081_md5_array_is_an_error,
    c082_md5_length_counts_characters,
    c083_expiry_past_year_9999_is_clamped,
    c084_object_in_a_keyword_field_is_an_error,
    c085_ipv6_with_zone_id,
    c086_empty_object_is_an_error,
}
