//! [`PollConfig`]: the settings of the API poller, with the reference integration's names and
//! defaults; secrets are redacted from `Debug`.

use std::time::Duration;

use anomali_mapping::MappingSettings;
use serde::Deserialize;

use super::tls::PollTls;
use crate::error::ConfigError;

/// The `intelligence` poller's settings.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// The API's base URL. By default, `https://api.threatstream.com`.
    pub url: String,
    /// The ThreatStream user name (required).
    pub username: String,
    /// The API key (required; secret).
    pub api_key: String,
    /// Time between polls once a page says there is no more. By default, `5m`.
    pub interval: String,
    /// How far back the first poll reaches while there is no cursor. By default, `24h`.
    pub initial_interval: String,
    /// Objects per page, 1 to 1000. By default, 1000.
    pub page_size: u32,
    /// Time limit of one request. By default, `30s`.
    pub http_client_timeout: String,
    /// An advanced search query (`q`). By default, none.
    pub query: Option<String>,
    /// Ask for remote observables (`remote_api=true`, ThreatStream OnPrem). By default, off.
    /// Also read as `remote_api_true`, the reference's variable name.
    #[serde(alias = "remote_api_true")]
    pub remote_api: bool,
    /// An HTTP(S) proxy. By default, none.
    pub proxy_url: Option<String>,
    /// PEM files of CAs to trust besides the public ones. By default, none. Kept beside
    /// `ssl.certificate_authorities` for configurations written before the `ssl` block.
    pub certificate_authorities: Vec<std::path::PathBuf>,
    /// TLS towards the API (Beats' `ssl` names): CAs, `verification_mode`, a client certificate.
    #[serde(deserialize_with = "null_as_default")]
    pub ssl: PollTls,
    /// The fail-safe expiry (`90d`, `12h`, `30m`), capped by each object's `expiration_ts`;
    /// empty: `expiration_ts` alone. By default, `90d`. Also read as
    /// `ioc_duration_before_deletion`, the reference's variable name.
    #[serde(alias = "ioc_duration_before_deletion")]
    pub ioc_expiration_duration: String,
    /// Tags for every document. By default, `forwarded` and `anomali-intelligence`.
    pub tags: Vec<String>,
    /// Keep each raw object in `event.original`. By default, off.
    pub preserve_original_event: bool,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            url: "https://api.threatstream.com".to_owned(),
            username: String::new(),
            api_key: String::new(),
            interval: "5m".to_owned(),
            initial_interval: "24h".to_owned(),
            page_size: 1000,
            http_client_timeout: "30s".to_owned(),
            query: None,
            remote_api: false,
            proxy_url: None,
            certificate_authorities: Vec::new(),
            ssl: PollTls::default(),
            ioc_expiration_duration: "90d".to_owned(),
            tags: MappingSettings::intelligence_defaults().tags,
            preserve_original_event: false,
        }
    }
}

impl std::fmt::Debug for PollConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("api_key", &"<redacted>")
            .field("interval", &self.interval)
            .field("initial_interval", &self.initial_interval)
            .field("page_size", &self.page_size)
            .field("http_client_timeout", &self.http_client_timeout)
            .field("query", &self.query)
            .field("remote_api", &self.remote_api)
            .field(
                "proxy_url",
                &self.proxy_url.as_deref().map(without_userinfo),
            )
            .field("certificate_authorities", &self.certificate_authorities)
            .field("ssl", &self.ssl)
            .field("ioc_expiration_duration", &self.ioc_expiration_duration)
            .field("tags", &self.tags)
            .field("preserve_original_event", &self.preserve_original_event)
            .finish()
    }
}

/// A key given with no value (`ssl:` alone) means its defaults.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A proxy setting as the URL reqwest will use: `user:pw@host:port` without a scheme is http
/// to reqwest, and must be here too, or `user` would be read as the scheme.
fn proxy_as_url(proxy: &str) -> Result<reqwest::Url, String> {
    let parsed = if proxy.contains("://") {
        reqwest::Url::parse(proxy)
    } else {
        reqwest::Url::parse(&format!("http://{proxy}"))
    };
    parsed.map_err(|e| e.to_string())
}

/// A proxy URL without its `user:password@` (a secret).
pub(super) fn without_userinfo(proxy: &str) -> String {
    let proxy = proxy.trim();
    match proxy_as_url(proxy) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            format!("{parsed} (credentials redacted)")
        }
        Ok(_) => proxy.to_owned(),
        Err(_) => "<not a url>".to_owned(),
    }
}

pub(super) fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl PollConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.username.trim().is_empty() {
            return Err(invalid("username", "is required"));
        }
        if self.api_key.trim().is_empty() {
            return Err(invalid("api_key", "is required"));
        }
        let url = self.url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid("url", "must start with https:// or http://"));
        }
        match reqwest::Url::parse(url) {
            Err(e) => return Err(invalid("url", format!("not a URL: {e}"))),
            Ok(parsed) if parsed.query().is_some() || parsed.fragment().is_some() => {
                return Err(invalid(
                    "url",
                    "the base URL takes no ?query or #fragment (use `query` for searches)",
                ));
            }
            // Credentials in the URL would replace the apikey header and land in logs.
            Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                return Err(invalid(
                    "url",
                    "no user:password@ in the URL: give username and api_key",
                ));
            }
            Ok(_) if url.contains(char::is_whitespace) => {
                return Err(invalid("url", "contains whitespace"));
            }
            Ok(_) => {}
        }
        // A line break would be refused by the HTTP stack on every poll, forever.
        for (key, value) in [("username", &self.username), ("api_key", &self.api_key)] {
            if value.chars().any(char::is_control) {
                return Err(invalid(key, "contains a control character (a line break?)"));
            }
        }
        if let Some(proxy) = self.proxy() {
            let url =
                proxy_as_url(proxy).map_err(|e| invalid("proxy_url", format!("not a URL: {e}")))?;
            // reqwest skips a proxy whose scheme it does not handle: the key would then go to
            // the API directly, around a proxy the network requires.
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    "proxy_url",
                    format!(
                        "scheme {:?} is not supported: use http:// or https://",
                        url.scheme()
                    ),
                ));
            }
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(invalid("page_size", "must be 1 to 1000"));
        }
        for (key, value) in [
            ("interval", &self.interval),
            ("initial_interval", &self.initial_interval),
            ("http_client_timeout", &self.http_client_timeout),
        ] {
            match parse_interval(value) {
                Some(d) if d > MAX_DURATION => {
                    return Err(invalid(key, format!("{value:?} is more than 10 years")));
                }
                Some(d) if !d.is_zero() => {}
                _ => {
                    return Err(invalid(
                        key,
                        format!("{value:?} is not a duration like 30s, 5m, 24h or 7d"),
                    ));
                }
            }
        }
        self.ssl.validate()?;
        self.mapping_settings()?;
        Ok(())
    }

    /// The proxy to use: `proxy_url` unless it is absent or blank.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy_url
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// The mapping settings for the objects polled.
    pub fn mapping_settings(&self) -> Result<MappingSettings, ConfigError> {
        let ioc_expiration = if self.ioc_expiration_duration.trim().is_empty() {
            None
        } else {
            Some(self.ioc_expiration_duration.parse().map_err(
                |e: anomali_mapping::ExpirationError| {
                    invalid("ioc_expiration_duration", e.to_string())
                },
            )?)
        };
        Ok(MappingSettings {
            ioc_expiration,
            tags: self.tags.clone(),
            preserve_original_event: self.preserve_original_event,
            ..MappingSettings::intelligence_defaults()
        })
    }

    pub(crate) fn duration(&self, value: &str) -> Duration {
        parse_interval(value).unwrap_or(Duration::from_secs(300))
    }
}

/// The longest interval or timeout accepted (ThreatStream holds nothing older anyway).
const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// `30s`, `5m`, `24h`, `7d` as a duration; `None` when it is not one.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (amount, unit) = text.split_at(split);
    let amount: u64 = amount.parse().ok()?;
    let seconds = match unit {
        "s" => amount,
        "m" => amount.checked_mul(60)?,
        "h" => amount.checked_mul(3600)?,
        "d" => amount.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_bad_ones_are_named() {
        assert_eq!(parse_interval("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_interval("5"), None);
        assert_eq!(parse_interval("m"), None);
        assert_eq!(parse_interval("5w"), None);
        let mut config = PollConfig {
            username: "u".into(),
            api_key: "k".into(),
            ..PollConfig::default()
        };
        assert!(config.validate().is_ok());
        config.interval = "soon".into();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("interval")
        );
        config.interval = "5m".into();
        config.initial_interval = "100000000d".into();
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("initial_interval") && error.contains("10 years"),
            "{error}"
        );
        config.initial_interval = "24h".into();
        for url in [
            "http://127.0.0.1:18099 /x",
            "https://api.threatstream.com?x=1",
            "https://user:pw@api.threatstream.com",
            "https://",
        ] {
            config.url = url.into();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("url"), "{url}: {error}");
            assert!(!error.contains("pw@"), "{url}: {error}");
        }
        config.url = "https://api.threatstream.com/".into();
        for proxy in [
            "ftp://u:PROXYPASS@127.0.0.1:3128",
            "socks5://127.0.0.1:1080",
            "http://u:PROXYPASS@127.0.0.1:notaport",
        ] {
            config.proxy_url = Some(proxy.into());
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("proxy_url"), "{proxy}: {error}");
            assert!(!error.contains("PROXYPASS"), "{proxy}: {error}");
        }
        for proxy in [
            "http://127.0.0.1:3128",
            "127.0.0.1:3128",
            "HTTPS://proxy:443",
            "  ",
        ] {
            config.proxy_url = Some(proxy.into());
            assert!(config.validate().is_ok(), "{proxy}");
        }
        config.proxy_url = None;
        config.api_key = "key\nX-Injected: 1".into();
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("api_key") && !error.contains("Injected"),
            "{error}"
        );
        config.api_key = "k".into();
        config.page_size = 1001;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("page_size")
        );
    }

    #[test]
    fn ssl_with_no_value_means_its_defaults() {
        let config: PollConfig =
            serde_json::from_str(r#"{"username": "u", "api_key": "k", "ssl": null}"#).unwrap();
        assert_eq!(config.ssl, PollTls::default());
    }

    #[test]
    fn the_api_key_never_shows_in_debug() {
        let config = PollConfig {
            username: "u".into(),
            api_key: "very-secret".into(),
            proxy_url: Some("http://proxy-user:proxy-secret@proxy.example:3128".into()),
            ..PollConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("proxy-secret"), "{shown}");
        assert!(shown.contains("proxy.example:3128"), "{shown}");
        // Without a scheme reqwest still uses it as http://, credentials and all.
        let bare = without_userinfo("proxy-user:proxy-secret@proxy.example:3128");
        assert!(
            !bare.contains("proxy-secret") && bare.contains("proxy.example"),
            "{bare}"
        );
    }
}
