//! The itype table of the intelligence stream: ThreatStream itype to `threat.indicator.type`.
//!
//! Larger than the threatstream table ([`crate::indicator_type`]): it adds IPv6 variants, mutexes,
//! registry keys, user accounts and more. Unlike there, an itype without a type is an error on
//! the document, because the API always sends an itype and a document without a type is useless
//! to indicator-match rules.

use thiserror::Error;

/// Why an intelligence itype gave no `threat.indicator.type`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ItypeError {
    /// The itype is not in the table.
    #[error("unknown itype {0:?}")]
    Unknown(String),
    /// The itype is in the table but has no STIX 2.0 cyber observable (such as `apt_mta`).
    #[error("itype {0:?} has no STIX 2.0 indicator type")]
    NoStixType(String),
}

/// The `threat.indicator.type` for an intelligence itype.
pub fn intelligence_indicator_type(itype: &str) -> Result<&'static str, ItypeError> {
    match TABLE.binary_search_by(|(key, _)| (*key).cmp(itype)) {
        Ok(index) => TABLE[index]
            .1
            .ok_or_else(|| ItypeError::NoStixType(itype.to_owned())),
        Err(_) => Err(ItypeError::Unknown(itype.to_owned())),
    }
}

/// The reference table, sorted by itype (a test checks the order the lookup relies on). `None`:
/// the reference lists the itype with a null type. Quirks kept: `crypto_pool` gives `domain`,
/// `apt_file_path` gives `directory` but `mal_file_path` gives `file`, the `*_subject` itypes give
/// `email`.
const TABLE: &[(&str, Option<&str>)] = &[
    ("actor_ip", Some("ipv4-addr")),
    ("actor_ipv6", Some("ipv6-addr")),
    ("actor_subject", None),
    ("adware_domain", Some("domain-name")),
    ("adware_registry_key", Some("windows-registry-key")),
    ("anon_proxy", Some("ipv4-addr")),
    ("anon_proxy_ipv6", Some("ipv6-addr")),
    ("anon_vpn", Some("ipv4-addr")),
    ("anon_vpn_ipv6", Some("ipv6-addr")),
    ("apt_domain", Some("domain-name")),
    ("apt_email", Some("email-addr")),
    ("apt_email_subject_line", Some("email")),
    ("apt_file_name", Some("file")),
    ("apt_file_path", Some("directory")),
    ("apt_ip", Some("ipv4-addr")),
    ("apt_ipv6", Some("ipv6-addr")),
    ("apt_md5", Some("file")),
    ("apt_mta", None),
    ("apt_mutex", Some("mutex")),
    ("apt_registry_key", Some("windows-registry-key")),
    ("apt_service_description", None),
    ("apt_service_displayname", None),
    ("apt_service_name", None),
    ("apt_ssdeep", Some("file")),
    ("apt_subject", Some("email")),
    ("apt_ua", Some("url")),
    ("apt_url", Some("url")),
    ("bot_domain", Some("domain-name")),
    ("bot_ip", Some("ipv4-addr")),
    ("bot_ipv6", Some("ipv6-addr")),
    ("bot_md5", Some("file")),
    ("bot_url", Some("url")),
    ("browser_extension_id", None),
    ("brute_ip", Some("ipv4-addr")),
    ("brute_ipv6", Some("ipv6-addr")),
    ("c2_domain", Some("domain-name")),
    ("c2_ip", Some("ipv4-addr")),
    ("c2_ipv6", Some("ipv6-addr")),
    ("c2_url", Some("url")),
    ("comm_proxy_domain", Some("domain-name")),
    ("comm_proxy_ip", Some("ipv4-addr")),
    ("compromised_domain", Some("domain-name")),
    ("compromised_email", Some("email-addr")),
    ("compromised_email_subject", Some("email")),
    ("compromised_ip", Some("ipv4-addr")),
    ("compromised_ipv6", Some("ipv6-addr")),
    ("compromised_serv_account", Some("user-account")),
    ("compromised_url", Some("url")),
    ("compromised_username", Some("user-account")),
    ("crypto_hash", Some("file")),
    ("crypto_ip", Some("ipv4-addr")),
    ("crypto_pool", Some("domain")),
    ("crypto_url", Some("url")),
    ("crypto_wallet", Some("file")),
    ("ddos_ip", Some("ipv4-addr")),
    ("ddos_ipv6", Some("ipv6-addr")),
    ("disposable_email_domain", Some("domain-name")),
    ("downloader_domain", Some("domain-name")),
    ("downloader_hash", Some("file")),
    ("downloader_ip", Some("ipv4-addr")),
    ("downloader_ipv6", Some("ipv6-addr")),
    ("downloader_url", Some("url")),
    ("dyn_dns", Some("domain-name")),
    ("email_attachment_subject", Some("email")),
    ("exfil_domain", Some("domain-name")),
    ("exfil_ip", Some("ipv4-addr")),
    ("exfil_ipv6", Some("ipv6-addr")),
    ("exfil_url", Some("url")),
    ("exploit_domain", Some("domain-name")),
    ("exploit_ip", Some("ipv4-addr")),
    ("exploit_ipv6", Some("ipv6-addr")),
    ("exploit_md5", Some("file")),
    ("exploit_url", Some("url")),
    ("fraud_domain", Some("domain-name")),
    ("fraud_email", Some("email-addr")),
    ("fraud_email_subject", Some("email")),
    ("fraud_ip", Some("ipv4-addr")),
    ("fraud_ipv6", Some("ipv6-addr")),
    ("fraud_md5", Some("file")),
    ("fraud_url", Some("url")),
    ("free_email_domain", Some("domain-name")),
    ("geolocation_url", Some("url")),
    ("hack_tool", Some("file")),
    ("hack_tool_md5", Some("file")),
    ("i2p_ip", Some("ipv4-addr")),
    ("i2p_ipv6", Some("ipv6-addr")),
    ("image_hash", Some("file")),
    ("infostealer_domain", Some("domain-name")),
    ("infostealer_hash", Some("file")),
    ("infostealer_ip", Some("ipv4-addr")),
    ("infostealer_ipv6", Some("ipv6-addr")),
    ("infostealer_url", Some("url")),
    ("iot_domain", Some("domain-name")),
    ("iot_hash", Some("file")),
    ("iot_ip", Some("ipv4-addr")),
    ("iot_ipv6", Some("ipv6-addr")),
    ("iot_url", Some("url")),
    ("ipcheck_url", Some("url")),
    ("mal_domain", Some("domain-name")),
    ("mal_email", Some("email-addr")),
    ("mal_email_subject", Some("email")),
    ("mal_file_name", Some("file")),
    ("mal_file_path", Some("file")),
    ("mal_ip", Some("ipv4-addr")),
    ("mal_ipv6", Some("ipv6-addr")),
    ("mal_md5", Some("file")),
    ("mal_mutex", Some("mutex")),
    ("mal_registry_key", Some("windows-registry-key")),
    ("mal_service_description", None),
    ("mal_service_displayname", None),
    ("mal_service_name", None),
    ("mal_ssdeep", Some("file")),
    ("mal_sslcert_sh1", Some("x509-certificate")),
    ("mal_sslcert_sha1", Some("x509-certificate")),
    ("mal_ua", Some("url")),
    ("mal_url", Some("url")),
    ("p2pcnc", Some("ipv4-addr")),
    ("p2pcnc_ipv6", Some("ipv6-addr")),
    ("parked_domain", Some("domain-name")),
    ("parked_ip", Some("ipv4-addr")),
    ("parked_ipv6", Some("ipv6-addr")),
    ("parked_url", Some("url")),
    ("pastesite_url", Some("url")),
    ("phish_domain", Some("domain-name")),
    ("phish_email", Some("email-addr")),
    ("phish_email_subject", Some("email")),
    ("phish_ip", Some("ipv4-addr")),
    ("phish_ipv6", Some("ipv6-addr")),
    ("phish_md5", Some("file")),
    ("phish_url", Some("url")),
    ("pos_domain", Some("domain-name")),
    ("pos_hash", Some("file")),
    ("pos_ip", Some("ipv4-addr")),
    ("pos_ipv6", Some("ipv6-addr")),
    ("pos_url", Some("url")),
    ("proxy_ip", Some("ipv4-addr")),
    ("proxy_ipv6", Some("ipv6-addr")),
    ("ransomware_domain", Some("domain-name")),
    ("ransomware_hash", Some("file")),
    ("ransomware_ip", Some("ipv4-addr")),
    ("ransomware_ipv6", Some("ipv6-addr")),
    ("ransomware_url", Some("url")),
    ("rootkit_hash", Some("file")),
    ("scan_ip", Some("ipv4-addr")),
    ("scan_ipv6", Some("ipv6-addr")),
    ("sinkhole_domain", Some("domain-name")),
    ("sinkhole_ip", Some("ipv4-addr")),
    ("sinkhole_ipv6", Some("ipv6-addr")),
    ("social_media_url", Some("url")),
    ("spam_domain", Some("domain-name")),
    ("spam_email", Some("email-addr")),
    ("spam_email_subject", Some("email")),
    ("spam_ip", Some("ipv4-addr")),
    ("spam_ipv6", Some("ipv6-addr")),
    ("spam_mta", None),
    ("spam_url", Some("url")),
    ("speedtest_url", Some("url")),
    ("ssh_ip", Some("ipv4-addr")),
    ("ssh_ipv6", Some("ipv6-addr")),
    ("ssl_cert_serial_number", None),
    ("suppress", Some("suppress")),
    ("suspicious_domain", Some("domain-name")),
    ("suspicious_email", Some("email-addr")),
    ("suspicious_email_subject", Some("email")),
    ("suspicious_ip", Some("ipv4-addr")),
    ("suspicious_reg_email", Some("email-addr")),
    ("suspicious_url", Some("url")),
    ("tor_ip", Some("ipv4-addr")),
    ("tor_ipv6", Some("ipv6-addr")),
    ("torrent_tracker_url", Some("url")),
    ("trojan_domain", Some("domain-name")),
    ("trojan_hash", Some("file")),
    ("trojan_ip", Some("ipv4-addr")),
    ("trojan_ipv6", Some("ipv6-addr")),
    ("trojan_url", Some("url")),
    ("vpn_domain", Some("domain-name")),
    ("vps_ip", Some("ipv4-addr")),
    ("vps_ipv6", Some("ipv6-addr")),
    ("whois_bulk_reg_email", Some("email-addr")),
    ("whois_privacy_domain", Some("domain-name")),
    ("whois_privacy_email", Some("email-addr")),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates() {
        assert_eq!(TABLE.len(), 181);
        assert!(TABLE.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn every_entry_is_found() {
        for (itype, kind) in TABLE {
            match kind {
                Some(kind) => assert_eq!(intelligence_indicator_type(itype), Ok(*kind)),
                None => assert_eq!(
                    intelligence_indicator_type(itype),
                    Err(ItypeError::NoStixType((*itype).to_owned()))
                ),
            }
        }
    }

    #[test]
    fn spot_checks() {
        assert_eq!(intelligence_indicator_type("mal_ipv6"), Ok("ipv6-addr"));
        assert_eq!(intelligence_indicator_type("apt_mutex"), Ok("mutex"));
        assert_eq!(
            intelligence_indicator_type("mal_registry_key"),
            Ok("windows-registry-key")
        );
        assert_eq!(
            intelligence_indicator_type("compromised_username"),
            Ok("user-account")
        );
        assert_eq!(
            intelligence_indicator_type("apt_file_path"),
            Ok("directory")
        );
        assert_eq!(intelligence_indicator_type("crypto_pool"), Ok("domain"));
    }

    #[test]
    fn the_threatstream_table_is_a_subset() {
        for (itype, _) in TABLE {
            if let Some(kind) = crate::indicator_type(itype) {
                assert_eq!(intelligence_indicator_type(itype), Ok(kind), "{itype}");
            }
        }
    }

    #[test]
    fn unknown_itypes_are_errors() {
        for itype in ["", "MAL_IP", "mal_ip ", "zzz", "aaa"] {
            assert_eq!(
                intelligence_indicator_type(itype),
                Err(ItypeError::Unknown(itype.to_owned()))
            );
        }
    }
}
