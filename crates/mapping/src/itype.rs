//! The itype table (rule 3): ThreatStream itype to `threat.indicator.type`.

/// The `threat.indicator.type` for a ThreatStream itype, or `None` for an itype the table lacks.
///
/// All 80 entries of the reference table, quirks included (`crypto_pool` gives `domain`,
/// `apt_subject` gives `email`, `suppress` gives `suppress`).
pub fn indicator_type(itype: &str) -> Option<&'static str> {
    const IPV4: &str = "ipv4-addr";
    const DOMAIN: &str = "domain-name";
    const URL: &str = "url";
    const EMAIL: &str = "email-addr";
    const FILE: &str = "file";
    const X509: &str = "x509-certificate";
    Some(match itype {
        "actor_ip" | "anon_proxy" | "anon_vpn" | "apt_ip" | "bot_ip" | "brute_ip" | "c2_ip"
        | "comm_proxy_ip" | "compromised_ip" | "crypto_ip" | "ddos_ip" | "exfil_ip"
        | "exploit_ip" | "i2p_ip" | "mal_ip" | "p2pcnc" | "parked_ip" | "phish_ip" | "proxy_ip"
        | "scan_ip" | "sinkhole_ip" | "spam_ip" | "ssh_ip" | "suspicious_ip" | "tor_ip"
        | "vps_ip" => IPV4,
        "adware_domain"
        | "apt_domain"
        | "c2_domain"
        | "comm_proxy_domain"
        | "compromised_domain"
        | "disposable_email_domain"
        | "dyn_dns"
        | "exfil_domain"
        | "exploit_domain"
        | "free_email_domain"
        | "mal_domain"
        | "parked_domain"
        | "phish_domain"
        | "sinkhole_domain"
        | "spam_domain"
        | "suspicious_domain"
        | "vpn_domain"
        | "whois_privacy_domain" => DOMAIN,
        "apt_ua"
        | "apt_url"
        | "c2_url"
        | "compromised_url"
        | "crypto_url"
        | "exfil_url"
        | "exploit_url"
        | "geolocation_url"
        | "ipcheck_url"
        | "mal_ua"
        | "mal_url"
        | "parked_url"
        | "pastesite_url"
        | "phish_url"
        | "spam_url"
        | "speedtest_url"
        | "suspicious_url"
        | "torrent_tracker_url" => URL,
        "apt_email"
        | "mal_email"
        | "phish_email"
        | "spam_email"
        | "suspicious_email"
        | "suspicious_reg_email"
        | "whois_bulk_reg_email"
        | "whois_privacy_email" => EMAIL,
        "apt_md5" | "crypto_hash" | "crypto_wallet" | "hack_tool" | "mal_md5" => FILE,
        "mal_sslcert_sh1" | "mal_sslcert_sha1" => X509,
        "apt_subject" => "email",
        "crypto_pool" => "domain",
        "suppress" => "suppress",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference table, written out row by row, so a typo in the match above shows up.
    const TABLE: [(&str, &str); 80] = [
        ("actor_ip", "ipv4-addr"),
        ("adware_domain", "domain-name"),
        ("anon_proxy", "ipv4-addr"),
        ("anon_vpn", "ipv4-addr"),
        ("apt_domain", "domain-name"),
        ("apt_email", "email-addr"),
        ("apt_ip", "ipv4-addr"),
        ("apt_md5", "file"),
        ("apt_subject", "email"),
        ("apt_ua", "url"),
        ("apt_url", "url"),
        ("bot_ip", "ipv4-addr"),
        ("brute_ip", "ipv4-addr"),
        ("c2_domain", "domain-name"),
        ("c2_ip", "ipv4-addr"),
        ("c2_url", "url"),
        ("comm_proxy_domain", "domain-name"),
        ("comm_proxy_ip", "ipv4-addr"),
        ("compromised_domain", "domain-name"),
        ("compromised_ip", "ipv4-addr"),
        ("compromised_url", "url"),
        ("crypto_hash", "file"),
        ("crypto_ip", "ipv4-addr"),
        ("crypto_pool", "domain"),
        ("crypto_url", "url"),
        ("crypto_wallet", "file"),
        ("ddos_ip", "ipv4-addr"),
        ("disposable_email_domain", "domain-name"),
        ("dyn_dns", "domain-name"),
        ("exfil_domain", "domain-name"),
        ("exfil_ip", "ipv4-addr"),
        ("exfil_url", "url"),
        ("exploit_domain", "domain-name"),
        ("exploit_ip", "ipv4-addr"),
        ("exploit_url", "url"),
        ("free_email_domain", "domain-name"),
        ("geolocation_url", "url"),
        ("hack_tool", "file"),
        ("i2p_ip", "ipv4-addr"),
        ("ipcheck_url", "url"),
        ("mal_domain", "domain-name"),
        ("mal_email", "email-addr"),
        ("mal_ip", "ipv4-addr"),
        ("mal_md5", "file"),
        ("mal_sslcert_sh1", "x509-certificate"),
        ("mal_sslcert_sha1", "x509-certificate"),
        ("mal_ua", "url"),
        ("mal_url", "url"),
        ("p2pcnc", "ipv4-addr"),
        ("parked_domain", "domain-name"),
        ("parked_ip", "ipv4-addr"),
        ("parked_url", "url"),
        ("pastesite_url", "url"),
        ("phish_domain", "domain-name"),
        ("phish_email", "email-addr"),
        ("phish_ip", "ipv4-addr"),
        ("phish_url", "url"),
        ("proxy_ip", "ipv4-addr"),
        ("scan_ip", "ipv4-addr"),
        ("sinkhole_domain", "domain-name"),
        ("sinkhole_ip", "ipv4-addr"),
        ("spam_domain", "domain-name"),
        ("spam_email", "email-addr"),
        ("spam_ip", "ipv4-addr"),
        ("spam_url", "url"),
        ("speedtest_url", "url"),
        ("ssh_ip", "ipv4-addr"),
        ("suppress", "suppress"),
        ("suspicious_domain", "domain-name"),
        ("suspicious_email", "email-addr"),
        ("suspicious_ip", "ipv4-addr"),
        ("suspicious_reg_email", "email-addr"),
        ("suspicious_url", "url"),
        ("tor_ip", "ipv4-addr"),
        ("torrent_tracker_url", "url"),
        ("vpn_domain", "domain-name"),
        ("vps_ip", "ipv4-addr"),
        ("whois_bulk_reg_email", "email-addr"),
        ("whois_privacy_domain", "domain-name"),
        ("whois_privacy_email", "email-addr"),
    ];

    #[test]
    fn every_reference_entry_maps() {
        for (itype, expected) in TABLE {
            assert_eq!(indicator_type(itype), Some(expected), "{itype}");
        }
    }

    #[test]
    fn unknown_itypes_have_no_type() {
        for itype in ["", "MAL_IP", "mal_ip ", "ipv6_ip", "mutex"] {
            assert_eq!(indicator_type(itype), None, "{itype:?}");
        }
    }
}
