//! [`WebhookConfig`]: the settings Fleet renders for the integration's `http_endpoint` stream,
//! and their validation (pure: no I/O but reading the files it names).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anomali_mapping::IocExpiration;
use serde::Deserialize;

use crate::error::ConfigError;

/// The webhook's configuration, as YAML keys. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Whether to listen at all; a program that only polls the Intelligence API turns it off.
    /// By default, on.
    pub enabled: bool,
    /// Address to listen on. By default, `localhost`.
    pub listen_address: String,
    /// Port to listen on. By default, 8181.
    pub listen_port: u16,
    /// The path indicators are posted to. By default, `/`.
    pub url: String,
    /// The required `Content-Type` (compared without parameters); empty disables the check.
    /// By default, `application/x-ndjson`.
    pub content_type: String,
    /// HMAC signature of the raw body. By default, off (no key).
    pub hmac: HmacConfig,
    /// A shared secret in a request header. By default, off.
    pub secret: SecretConfig,
    /// Require HTTP basic authentication with `username` and `password`. By default, off.
    pub basic_auth: bool,
    /// Basic auth user name.
    pub username: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
    /// TLS for the listener. By default, off.
    pub ssl: SslConfig,
    /// Largest accepted body, after decompression. By default, 64 MiB.
    pub max_body_bytes: u64,
    /// Bytes of request bodies held at once across requests; above it requests get 503 with
    /// `Retry-After`. By default, 256 MiB.
    pub max_in_flight_bytes: u64,
    /// Seconds announced in `Retry-After` on 503. By default, 10.
    pub retry_after: u32,
    /// Seconds a client may take to send a request's headers, or pause while sending its body;
    /// also the idle time allowed between requests on a keep-alive connection. By default, 30.
    pub read_timeout: u64,
    /// Tags for every document. By default, `forwarded` and `anomali-threatstream`.
    pub tags: Vec<String>,
    /// Keep each raw indicator in `event.original`. By default, off.
    pub preserve_original_event: bool,
    /// The fail-safe expiry (`90d`, `12h`, `30m`); empty disables it. By default, `90d`.
    pub ioc_expiration_duration: String,
    /// Listen on a non-loopback address without any authentication. By default, refused.
    pub insecure: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_address: "localhost".to_owned(),
            listen_port: 8181,
            url: "/".to_owned(),
            content_type: "application/x-ndjson".to_owned(),
            hmac: HmacConfig::default(),
            secret: SecretConfig::default(),
            basic_auth: false,
            username: None,
            password: None,
            ssl: SslConfig::default(),
            max_body_bytes: 64 * 1024 * 1024,
            max_in_flight_bytes: 256 * 1024 * 1024,
            retry_after: 10,
            read_timeout: 30,
            tags: vec!["forwarded".to_owned(), "anomali-threatstream".to_owned()],
            preserve_original_event: false,
            ioc_expiration_duration: "90d".to_owned(),
            insecure: false,
        }
    }
}

/// `hmac.*`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HmacConfig {
    /// Header holding the signature. By default, `X-Filebeat-Signature`.
    pub header: String,
    /// The shared key; HMAC is enforced when it is set.
    pub key: Option<String>,
    /// `sha256` or `sha1`. By default, `sha256`.
    #[serde(rename = "type")]
    pub algorithm: String,
    /// Text before the signature in the header. By default, `sha256=`.
    pub prefix: String,
}

impl Default for HmacConfig {
    fn default() -> Self {
        Self {
            header: "X-Filebeat-Signature".to_owned(),
            key: None,
            algorithm: "sha256".to_owned(),
            prefix: "sha256=".to_owned(),
        }
    }
}

/// `secret.*`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Header name.
    pub header: Option<String>,
    /// Expected value.
    pub value: Option<String>,
}

/// `ssl.*`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslConfig {
    /// Serve HTTPS. By default, off (also when certificate and key are given, as in Fleet).
    pub enabled: bool,
    /// PEM certificate chain file.
    pub certificate: Option<PathBuf>,
    /// PEM private key file.
    pub key: Option<PathBuf>,
    /// PEM CA files that client certificates are verified against.
    pub certificate_authorities: Vec<PathBuf>,
    /// `none`, `optional` or `required`. By default, `required` when CAs are given, else `none`.
    pub client_authentication: Option<String>,
}

/// The HMAC algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA1.
    Sha1,
}

/// Client certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate asked.
    None,
    /// Verified when presented.
    Optional,
    /// Required and verified.
    Required,
}

/// A configuration that passed [`WebhookConfig::validate`].
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    /// Where to listen (every address `listen_address` resolves to; the first one is used).
    pub listen: SocketAddr,
    /// The path, normalised without a trailing slash (except `/` itself).
    pub path: String,
    /// The media type required, lower case, without parameters.
    pub content_type: Option<String>,
    /// HMAC key, algorithm, header and prefix.
    pub hmac: Option<(Vec<u8>, HmacAlgorithm, String, String)>,
    /// Secret header name and value.
    pub secret: Option<(String, String)>,
    /// Basic auth user name and password.
    pub basic_auth: Option<(String, String)>,
    /// TLS files and client authentication.
    pub tls: Option<(PathBuf, PathBuf, Vec<PathBuf>, ClientAuth)>,
    /// Body size limit, decompressed.
    pub max_body_bytes: u64,
    /// In-flight budget.
    pub max_in_flight_bytes: u64,
    /// `Retry-After` seconds.
    pub retry_after: u32,
    /// Header read, body pause and keep-alive idle timeout.
    pub read_timeout: Duration,
    /// Tags.
    pub tags: Vec<String>,
    /// `preserve_original_event`.
    pub preserve_original_event: bool,
    /// The fail-safe expiry, if any.
    pub ioc_expiration: Option<IocExpiration>,
    /// Warnings to log once (weak keys and the like); never contain secrets.
    pub warnings: Vec<String>,
}

/// Example keys from documentation: a listener using one is not really protected.
const EXAMPLE_KEYS: &[&str] = &["abcd1234", "TheSecret", "changeme", "secret", "password"];

impl WebhookConfig {
    /// Reads a YAML document of these keys.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        serde_saphyr::from_str(text).map_err(|error| ConfigError::Yaml(error.to_string()))
    }

    /// Checks every value and resolves the listen address.
    pub fn validate(&self) -> Result<ValidatedConfig, ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_owned(),
            reason,
        };
        let mut warnings = Vec::new();

        let ip = resolve(&self.listen_address, self.listen_port)
            .map_err(|reason| invalid("listen_address", reason))?;
        let listen = SocketAddr::new(ip, self.listen_port);

        if !self.url.starts_with('/') {
            return Err(invalid("url", format!("{:?} must start with /", self.url)));
        }
        if self.url.contains(['?', '#', ' ']) {
            return Err(invalid(
                "url",
                format!("{:?} must be a plain path", self.url),
            ));
        }
        let path = normalise_path(&self.url);

        let content_type = if self.content_type.trim().is_empty() {
            None
        } else {
            Some(media_type(&self.content_type))
        };

        let hmac = match &self.hmac.key {
            None => None,
            Some(key) if key.is_empty() => {
                return Err(invalid("hmac.key", "must not be empty".into()));
            }
            Some(key) => {
                let algorithm = match self.hmac.algorithm.as_str() {
                    "sha256" => HmacAlgorithm::Sha256,
                    "sha1" => HmacAlgorithm::Sha1,
                    other => {
                        return Err(invalid(
                            "hmac.type",
                            format!("{other:?} is not sha256 or sha1"),
                        ));
                    }
                };
                if self.hmac.header.trim().is_empty() {
                    return Err(invalid(
                        "hmac.header",
                        "must not be empty when hmac.key is set".into(),
                    ));
                }
                if EXAMPLE_KEYS.contains(&key.as_str()) {
                    warnings.push(
                        "hmac.key is a well-known example value: anyone who read the documentation can sign requests".to_owned(),
                    );
                }
                Some((
                    key.as_bytes().to_vec(),
                    algorithm,
                    self.hmac.header.clone(),
                    self.hmac.prefix.clone(),
                ))
            }
        };

        let secret = match (&self.secret.header, &self.secret.value) {
            (None, None) => None,
            (Some(header), Some(value)) if !header.is_empty() && !value.is_empty() => {
                if EXAMPLE_KEYS.contains(&value.as_str()) {
                    warnings.push("secret.value is a well-known example value".to_owned());
                }
                Some((header.clone(), value.clone()))
            }
            _ => {
                return Err(invalid(
                    "secret",
                    "secret.header and secret.value go together".into(),
                ));
            }
        };

        let basic_auth = match (self.basic_auth, &self.username, &self.password) {
            (false, _, _) => None,
            (true, Some(user), Some(password)) if !user.is_empty() && !password.is_empty() => {
                Some((user.clone(), password.clone()))
            }
            (true, _, _) => {
                return Err(invalid("basic_auth", "needs username and password".into()));
            }
        };

        let tls = if self.ssl.enabled {
            let certificate = self.ssl.certificate.clone().ok_or_else(|| {
                invalid(
                    "ssl.certificate",
                    "required when ssl.enabled is true".into(),
                )
            })?;
            let key =
                self.ssl.key.clone().ok_or_else(|| {
                    invalid("ssl.key", "required when ssl.enabled is true".into())
                })?;
            let client_auth = match self.ssl.client_authentication.as_deref() {
                None if self.ssl.certificate_authorities.is_empty() => ClientAuth::None,
                None => ClientAuth::Required,
                Some("none") => ClientAuth::None,
                Some("optional") => ClientAuth::Optional,
                Some("required") => ClientAuth::Required,
                Some(other) => {
                    return Err(invalid(
                        "ssl.client_authentication",
                        format!("{other:?} is not none, optional or required"),
                    ));
                }
            };
            if client_auth != ClientAuth::None && self.ssl.certificate_authorities.is_empty() {
                return Err(invalid(
                    "ssl.certificate_authorities",
                    "required to verify client certificates".into(),
                ));
            }
            Some((
                certificate,
                key,
                self.ssl.certificate_authorities.clone(),
                client_auth,
            ))
        } else {
            None
        };

        if !(1..=3600).contains(&self.read_timeout) {
            return Err(invalid("read_timeout", "must be 1 to 3600 seconds".into()));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be at least 1".into()));
        }
        if self.max_in_flight_bytes < self.max_body_bytes {
            return Err(invalid(
                "max_in_flight_bytes",
                format!("must be at least max_body_bytes ({})", self.max_body_bytes),
            ));
        }
        let ioc_expiration = if self.ioc_expiration_duration.trim().is_empty() {
            None
        } else {
            Some(
                self.ioc_expiration_duration
                    .parse::<IocExpiration>()
                    .map_err(|e| invalid("ioc_expiration_duration", e.reason.to_owned()))?,
            )
        };

        let authenticated = hmac.is_some()
            || secret.is_some()
            || basic_auth.is_some()
            || matches!(&tls, Some((_, _, _, ClientAuth::Required)));
        if !authenticated && !ip.is_loopback() && !self.insecure {
            return Err(invalid(
                "listen_address",
                format!(
                    "{ip} is reachable from other hosts and no authentication is configured \
                     (hmac.key, secret, basic_auth or required client certificates); set insecure: true (or --insecure) to allow it"
                ),
            ));
        }

        Ok(ValidatedConfig {
            listen,
            path,
            content_type,
            hmac,
            secret,
            basic_auth,
            tls,
            max_body_bytes: self.max_body_bytes,
            max_in_flight_bytes: self.max_in_flight_bytes,
            retry_after: self.retry_after,
            read_timeout: Duration::from_secs(self.read_timeout),
            tags: self.tags.clone(),
            preserve_original_event: self.preserve_original_event,
            ioc_expiration,
            warnings,
        })
    }
}

fn resolve(host: &str, port: u16) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let mut addresses = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {host:?}: {error}"))?;
    addresses
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("{host:?} resolves to no address"))
}

/// `/path/` and `/path` are the same endpoint: a trailing slash must not lose data.
pub(crate) fn normalise_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `Application/X-NDJSON; charset=utf-8` -> `application/x-ndjson`.
pub(crate) fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// How long to wait for the sink when the request names no `wait_for_completion_timeout`.
pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn error_key(yaml: &str) -> String {
        let config = match WebhookConfig::from_yaml(yaml) {
            Ok(config) => config,
            Err(error) => return error.to_string(),
        };
        match config.validate() {
            Ok(_) => "valid".to_owned(),
            Err(ConfigError::Invalid { key, .. }) => key,
            Err(other) => other.to_string(),
        }
    }

    #[test]
    fn defaults_are_the_integrations() {
        let config = WebhookConfig::from_yaml("{}").unwrap().validate().unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.listen.port(), 8181);
        assert_eq!(config.path, "/");
        assert_eq!(config.content_type.as_deref(), Some("application/x-ndjson"));
        assert_eq!(config.tags, ["forwarded", "anomali-threatstream"]);
        assert_eq!(
            config.ioc_expiration.map(|e| e.to_string()).as_deref(),
            Some("90d")
        );
        assert!(config.hmac.is_none() && config.tls.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let unknown = error_key("listen_port: 9000\nlisten_prot: 1\n");
        assert!(unknown.contains("listen_prot"), "{unknown}");
        let nested = error_key("hmac:\n  key: k\n  algo: sha256\n");
        assert!(nested.contains("algo"), "{nested}");
        assert!(
            error_key("listen_port: 70000").contains("listen_port"),
            "{}",
            error_key("listen_port: 70000")
        );
        assert_eq!(error_key("hmac:\n  key: k\n  type: md5\n"), "hmac.type");
        assert_eq!(
            error_key("ioc_expiration_duration: 90x"),
            "ioc_expiration_duration"
        );
        assert_eq!(error_key("url: nope"), "url");
        assert_eq!(error_key("secret:\n  header: X-Secret\n"), "secret");
        assert_eq!(error_key("basic_auth: true\nusername: u\n"), "basic_auth");
        assert_eq!(
            error_key("ssl:\n  enabled: true\n  key: k.pem\n"),
            "ssl.certificate"
        );
        assert_eq!(
            error_key(
                "ssl:\n  enabled: true\n  certificate: c\n  key: k\n  client_authentication: maybe\n"
            ),
            "ssl.client_authentication"
        );
        assert_eq!(error_key("max_body_bytes: 0"), "max_body_bytes");
        assert_eq!(
            error_key("listen_address: no-such-host.invalid"),
            "listen_address"
        );
    }

    #[test]
    fn non_loopback_without_authentication_is_refused_unless_insecure() {
        assert_eq!(error_key("listen_address: 0.0.0.0"), "listen_address");
        assert_eq!(
            error_key("listen_address: 0.0.0.0\ninsecure: true"),
            "valid"
        );
        assert_eq!(
            error_key("listen_address: 0.0.0.0\nhmac:\n  key: a-long-random-key\n"),
            "valid"
        );
        assert_eq!(
            error_key("listen_address: 0.0.0.0\nsecret:\n  header: X-S\n  value: v\n"),
            "valid"
        );
    }

    #[test]
    fn example_keys_warn() {
        let config = WebhookConfig::from_yaml("hmac:\n  key: abcd1234\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(config.warnings.len(), 1);
        assert!(
            !config.warnings[0].contains("abcd1234"),
            "warnings never repeat secrets"
        );
    }

    #[test]
    fn paths_and_media_types_normalise() {
        assert_eq!(normalise_path("/"), "/");
        assert_eq!(normalise_path("/hook/"), "/hook");
        assert_eq!(normalise_path("//"), "/");
        assert_eq!(
            media_type("Application/X-NDJSON; charset=utf-8"),
            "application/x-ndjson"
        );
    }
}
