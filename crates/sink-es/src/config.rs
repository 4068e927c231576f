//! [`EsConnection`]: where the Elasticsearch sink connects and how it proves who it is, as YAML
//! keys, and their validation.
//!
//! Contract:
//! - Input: `url` or `hosts` or `cloud_id`; at most one of `username`+`password`, `api_key`,
//!   `bearer_token`; `ca_file`, `ca_fingerprint`, `verification_mode` for TLS. Unknown keys are
//!   refused.
//! - Output: a checked plan for [`crate::EsClient::connect`]; validation is pure (no I/O), so a
//!   bad setting is refused with its key named before anything is read or dialled.
//! - Guarantees: secrets (`password`, `api_key`, `bearer_token`, a password inside a URL) never
//!   appear in `Debug` output; contradictory settings are errors, never silently resolved.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use elasticsearch::auth::Credentials;
use elasticsearch::http::Url;
use serde::Deserialize;

use crate::error::EsError;

/// What `Debug` prints in place of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// How the Elasticsearch sink connects, as YAML keys. Unknown keys are refused.
///
/// ```yaml
/// hosts: ["https://es.example:9200"]   # or url: https://es.example:9200, or cloud_id: ...
/// api_key: "id:secret"                # or username+password, or bearer_token
/// ca_fingerprint: "AB:CD:..."         # or ca_file: /etc/es/http_ca.crt
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsConnection {
    /// One node's URL (`http://` or `https://`).
    pub url: Option<String>,
    /// Node URLs; requests go round-robin over them (no sniffing, no health checks: a request
    /// to a dead node fails and the caller's retry lands on the next one).
    pub hosts: Vec<String>,
    /// An Elastic Cloud id: `[name:]base64(host[:port]$es_uuid[:port]$kibana_uuid)`.
    pub cloud_id: Option<String>,
    /// Basic authentication user; needs `password`.
    pub username: Option<String>,
    /// Basic authentication password; needs `username`.
    pub password: Option<String>,
    /// An API key: `id:key`, or the base64 `encoded` form Elasticsearch returns.
    pub api_key: Option<String>,
    /// A bearer token (OAuth2 / service account token).
    pub bearer_token: Option<String>,
    /// A PEM file of CA certificates to trust, beside the built-in public roots.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint (hex, colons optional, any case) of a CA certificate, or of a
    /// self-signed server certificate, that the server presents in its chain; that certificate
    /// is then trusted, like Elastic Agent's `ssl.ca_trusted_fingerprint`.
    pub ca_fingerprint: Option<String>,
    /// How the server certificate is checked. By default, `full`.
    pub verification_mode: VerificationMode,
}

/// `verification_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMode {
    /// The chain must lead to a trusted CA and name the host.
    #[default]
    Full,
    /// The chain must lead to a trusted CA; the host name is not checked. Refused: the
    /// `elasticsearch` crate offers it only with native-tls, and this build uses rustls.
    Certificate,
    /// No check at all: anyone on the path can read and change the traffic.
    None,
}

/// How requests authenticate, checked. Secrets are redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// No `Authorization` header.
    None,
    /// `Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// `ApiKey base64(id:key)`: the crate encodes it.
    ApiKey { id: String, key: String },
    /// `ApiKey <encoded>`, sent as given.
    EncodedApiKey(String),
    /// `Bearer <token>`.
    Bearer(String),
}

impl Auth {
    /// The crate's credentials, or none.
    pub(crate) fn credentials(&self) -> Option<Credentials> {
        match self {
            Self::None => None,
            Self::Basic { username, password } => {
                Some(Credentials::Basic(username.clone(), password.clone()))
            }
            Self::ApiKey { id, key } => Some(Credentials::ApiKey(id.clone(), key.clone())),
            Self::EncodedApiKey(encoded) => Some(Credentials::EncodedApiKey(encoded.clone())),
            Self::Bearer(token) => Some(Credentials::Bearer(token.clone())),
        }
    }
}

impl Auth {
    /// The same kind and names with the secrets emptied, for what stays around to be shown.
    pub(crate) fn without_secrets(&self) -> Self {
        match self {
            Self::None => Self::None,
            Self::Basic { username, .. } => Self::Basic {
                username: username.clone(),
                password: String::new(),
            },
            Self::ApiKey { id, .. } => Self::ApiKey {
                id: id.clone(),
                key: String::new(),
            },
            Self::EncodedApiKey(_) => Self::EncodedApiKey(String::new()),
            Self::Bearer(_) => Self::Bearer(String::new()),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            // The id is no secret and tells which key is in use.
            Self::ApiKey { id, .. } => f
                .debug_struct("ApiKey")
                .field("id", id)
                .field("api_key", &REDACTED)
                .finish(),
            Self::EncodedApiKey(_) => f
                .debug_struct("ApiKey")
                .field("api_key", &REDACTED)
                .finish(),
            Self::Bearer(_) => f
                .debug_struct("Bearer")
                .field("bearer_token", &REDACTED)
                .finish(),
        }
    }
}

/// A checked [`EsConnection`]: what [`crate::EsClient::connect`] builds the transport from.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// At least one node.
    pub(crate) nodes: Vec<Url>,
    pub(crate) auth: Auth,
    pub(crate) ca_file: Option<PathBuf>,
    /// SHA-256 of the certificate to trust.
    pub(crate) ca_fingerprint: Option<[u8; 32]>,
    /// False for `verification_mode: none`.
    pub(crate) verify: bool,
}

impl EsConnection {
    /// Settings for one node at `url`, without credentials or TLS settings.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Checks the settings without I/O: an error names the offending key.
    pub fn validate(&self) -> Result<(), EsError> {
        self.plan().map(|_| ())
    }

    /// The node URLs requests go to, the cloud id decoded.
    pub fn node_urls(&self) -> Result<Vec<String>, EsError> {
        Ok(self.plan()?.nodes.iter().map(Url::to_string).collect())
    }

    pub(crate) fn plan(&self) -> Result<Plan, EsError> {
        let nodes = self.nodes()?;
        let auth = self.auth()?;
        let ca_fingerprint = self
            .ca_fingerprint
            .as_deref()
            .map(parse_fingerprint)
            .transpose()?;
        let verify = match self.verification_mode {
            VerificationMode::Full => true,
            VerificationMode::Certificate => {
                return Err(config(
                    "verification_mode",
                    "certificate (no host name check) is only offered with native-tls, and this \
                     build uses rustls: use full, or none",
                ));
            }
            VerificationMode::None => false,
        };
        if !verify && (self.ca_file.is_some() || ca_fingerprint.is_some()) {
            return Err(config(
                "verification_mode",
                "none checks no certificate, so ca_file and ca_fingerprint would be ignored: \
                 remove one or the other",
            ));
        }
        let any_https = nodes.iter().any(|url| url.scheme() == "https");
        for (key, set) in [
            ("ca_file", self.ca_file.is_some()),
            ("ca_fingerprint", ca_fingerprint.is_some()),
        ] {
            if set && !any_https {
                return Err(config(key, "set, but no host uses https"));
            }
        }
        Ok(Plan {
            nodes,
            auth,
            ca_file: self.ca_file.clone(),
            ca_fingerprint,
            verify,
        })
    }

    fn nodes(&self) -> Result<Vec<Url>, EsError> {
        let given_hosts = !self.hosts.is_empty();
        match (&self.url, given_hosts, &self.cloud_id) {
            (Some(_), true, _) => Err(config("hosts", "conflicts with url: set only one")),
            (Some(_), _, Some(_)) | (_, true, Some(_)) => {
                Err(config("cloud_id", "conflicts with url/hosts: set only one"))
            }
            (Some(url), false, None) => Ok(vec![parse_node("url", url)?]),
            (None, true, None) => self
                .hosts
                .iter()
                .enumerate()
                .map(|(i, host)| parse_node(&format!("hosts[{i}]"), host))
                .collect(),
            (None, false, Some(cloud_id)) => {
                let url = cloud_id_url(cloud_id)?;
                Url::parse(&url)
                    .map(|url| vec![url])
                    .map_err(|e| config("cloud_id", format!("decodes to a bad url: {e}")))
            }
            (None, false, None) => Err(config("url", "one of url, hosts or cloud_id is required")),
        }
    }

    fn auth(&self) -> Result<Auth, EsError> {
        let basic = self.username.is_some() || self.password.is_some();
        let mut chosen: Vec<&str> = Vec::new();
        if basic {
            chosen.push("username/password");
        }
        if self.api_key.is_some() {
            chosen.push("api_key");
        }
        if self.bearer_token.is_some() {
            chosen.push("bearer_token");
        }
        if let [first, second, ..] = chosen.as_slice() {
            return Err(config(
                second,
                format!("conflicts with {first}: set only one way to authenticate"),
            ));
        }
        if basic {
            return basic_auth(self.username.as_deref(), self.password.as_deref());
        }
        if let Some(api_key) = &self.api_key {
            return parse_api_key(api_key);
        }
        if let Some(token) = &self.bearer_token {
            let token = token.trim();
            // The token goes into a header as is: no spaces, nothing invisible.
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(config(
                    "bearer_token",
                    "must be non-empty printable ascii without spaces",
                ));
            }
            return Ok(Auth::Bearer(token.to_owned()));
        }
        Ok(Auth::None)
    }
}

fn basic_auth(username: Option<&str>, password: Option<&str>) -> Result<Auth, EsError> {
    match (username, password) {
        (Some(username), Some(password)) => {
            if username.is_empty() {
                return Err(config("username", "must not be empty"));
            }
            // Basic authentication joins the two with ':', so the name cannot hold one.
            if username.contains(':') {
                return Err(config("username", "must not contain ':'"));
            }
            Ok(Auth::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            })
        }
        (Some(_), None) => Err(config("password", "required with username")),
        (None, _) => Err(config("username", "required with password")),
    }
}

/// Base64 as Elasticsearch hands it out, padded or not.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `id:key` is encoded by the transport; anything else must already be `base64(id:key)`.
/// Base64 has no ':', so the two forms cannot be confused.
fn parse_api_key(api_key: &str) -> Result<Auth, EsError> {
    let api_key = api_key.trim();
    if let Some((id, key)) = api_key.split_once(':') {
        if id.is_empty() || key.is_empty() {
            return Err(config("api_key", "id:key needs both an id and a key"));
        }
        return Ok(Auth::ApiKey {
            id: id.to_owned(),
            key: key.to_owned(),
        });
    }
    // Decoding catches the usual mistake of pasting only the key's secret, which Elasticsearch
    // would refuse with a bare 401.
    let decodes_to_pair = LENIENT_BASE64
        .decode(api_key)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|pair| matches!(pair.split_once(':'), Some((id, key)) if !id.is_empty() && !key.is_empty()));
    if !decodes_to_pair {
        return Err(config(
            "api_key",
            "must be id:key, or the encoded form (base64 of id:key); the key's secret alone \
             is not enough",
        ));
    }
    Ok(Auth::EncodedApiKey(api_key.to_owned()))
}

fn parse_node(key: &str, text: &str) -> Result<Url, EsError> {
    let url = Url::parse(text.trim()).map_err(|e| config(key, format!("not a url: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(config(key, "must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config(key, "has no host"));
    }
    // A URL is printed in logs and errors; credentials belong in their own keys.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            key,
            "must not hold credentials: use username and password",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(key, "must not have a query or a fragment"));
    }
    Ok(url)
}

/// The HTTPS URL of the Elasticsearch cluster an Elastic Cloud id names.
///
/// The id is `[name:]base64(host[:port]$es_uuid[:port]$kibana_uuid)`; the cluster is at
/// `https://<es_uuid>.<host>:<port>`, the port being the es_uuid's, else the host's, else 443.
/// Done here rather than with the crate's `CloudId`, which requires the name, echoes the
/// base64 text in its errors and ignores a port on the es_uuid.
pub fn cloud_id_url(cloud_id: &str) -> Result<String, EsError> {
    let cloud_id = cloud_id.trim();
    // The name is for people; base64 has no ':', so the last ':' ends it.
    let data = cloud_id.rsplit_once(':').map_or(cloud_id, |(_, data)| data);
    let decoded = LENIENT_BASE64
        .decode(data)
        .map_err(|_| config("cloud_id", "is not [name:]base64 data"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| config("cloud_id", "does not decode to text"))?;
    let mut parts = decoded.split('$');
    let host = parts.next().unwrap_or_default().trim();
    let es_uuid = parts.next().unwrap_or_default().trim();
    if host.is_empty() || es_uuid.is_empty() {
        return Err(config(
            "cloud_id",
            "does not decode to host$es_uuid$kibana_uuid",
        ));
    }
    let (host, host_port) = split_port(host)?;
    let (es_uuid, es_port) = split_port(es_uuid)?;
    let port = es_port.or(host_port).unwrap_or(443);
    let name_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !name_ok(host) || !name_ok(es_uuid) {
        return Err(config(
            "cloud_id",
            "decodes to a host that is not a dns name",
        ));
    }
    Ok(if port == 443 {
        format!("https://{es_uuid}.{host}")
    } else {
        format!("https://{es_uuid}.{host}:{port}")
    })
}

fn split_port(part: &str) -> Result<(&str, Option<u16>), EsError> {
    match part.rsplit_once(':') {
        None => Ok((part, None)),
        Some((name, port)) => port
            .parse::<u16>()
            .map(|port| (name, Some(port)))
            .map_err(|_| config("cloud_id", "decodes to a bad port")),
    }
}

/// 32 bytes from 64 hex digits, colons allowed between them, any case.
pub(crate) fn parse_fingerprint(text: &str) -> Result<[u8; 32], EsError> {
    let digits: String = text.trim().chars().filter(|&c| c != ':').collect();
    let mut fingerprint = [0u8; 32];
    hex::decode_to_slice(&digits, &mut fingerprint).map_err(|_| {
        config(
            "ca_fingerprint",
            "must be a sha-256 fingerprint: 64 hex digits, colons optional",
        )
    })?;
    Ok(fingerprint)
}

/// `https://user:secret@host` printed as `https://user:<redacted>@host`; other text unchanged.
pub(crate) fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let rest = &text[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:{REDACTED}{}",
            &text[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => text.to_owned(),
    }
}

fn config(key: &str, reason: impl Into<String>) -> EsError {
    EsError::Config {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl fmt::Debug for EsConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |value: &Option<String>| value.as_ref().map(|_| REDACTED);
        f.debug_struct("EsConnection")
            .field("url", &self.url.as_deref().map(redact_url))
            .field(
                "hosts",
                &self.hosts.iter().map(|h| redact_url(h)).collect::<Vec<_>>(),
            )
            .field("cloud_id", &self.cloud_id)
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .field("api_key", &secret(&self.api_key))
            .field("bearer_token", &secret(&self.bearer_token))
            .field("ca_file", &self.ca_file)
            .field("ca_fingerprint", &self.ca_fingerprint)
            .field("verification_mode", &self.verification_mode)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

    use super::*;

    /// `name:base64(...)` for a made-up deployment.
    fn cloud_id(name: Option<&str>, payload: &str) -> String {
        let data = STANDARD.encode(payload);
        match name {
            Some(name) => format!("{name}:{data}"),
            None => data,
        }
    }

    #[test]
    fn cloud_id_with_and_without_name() {
        let payload = "eu-west-9.example-cloud.test$0123abcd$4567ef";
        let expected = "https://0123abcd.eu-west-9.example-cloud.test";
        assert_eq!(
            cloud_id_url(&cloud_id(Some("my-deploy"), payload)).unwrap(),
            expected
        );
        assert_eq!(cloud_id_url(&cloud_id(None, payload)).unwrap(), expected);
    }

    #[test]
    fn cloud_id_ports() {
        let host_port = cloud_id(Some("x"), "example-cloud.test:9243$es1$kb1");
        assert_eq!(
            cloud_id_url(&host_port).unwrap(),
            "https://es1.example-cloud.test:9243"
        );
        let es_port = cloud_id(Some("x"), "example-cloud.test:9243$es1:9300$kb1");
        assert_eq!(
            cloud_id_url(&es_port).unwrap(),
            "https://es1.example-cloud.test:9300"
        );
        let default_port = cloud_id(Some("x"), "example-cloud.test:443$es1$kb1");
        assert_eq!(
            cloud_id_url(&default_port).unwrap(),
            "https://es1.example-cloud.test"
        );
    }

    #[test]
    fn cloud_id_unpadded() {
        let payload = "example-cloud.test$es1$kb12";
        let unpadded = STANDARD_NO_PAD.encode(payload);
        assert!(!unpadded.ends_with('='));
        assert_eq!(
            cloud_id_url(&format!("n:{unpadded}")).unwrap(),
            "https://es1.example-cloud.test"
        );
    }

    #[test]
    fn bad_cloud_ids() {
        for bad in [
            "",
            "name:",
            "name:!!!not-base64!!!",
            &cloud_id(Some("n"), "only-a-host"),
            &cloud_id(Some("n"), "$uuid$kb"),
            &cloud_id(Some("n"), "host.test:http$uuid$kb"),
            &cloud_id(Some("n"), "host.test/evil$uuid$kb"),
        ] {
            let error = cloud_id_url(bad).unwrap_err();
            assert!(
                matches!(&error, EsError::Config { key, .. } if key == "cloud_id"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn api_key_forms() {
        assert_eq!(
            parse_api_key("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw").unwrap(),
            Auth::ApiKey {
                id: "VuaCfGcBCdbkQm-e5aOx".to_owned(),
                key: "ui2lp2axTNmsyakw9tvNnw".to_owned()
            }
        );
        let encoded = STANDARD.encode("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw");
        assert_eq!(
            parse_api_key(&format!(" {encoded}\n")).unwrap(),
            Auth::EncodedApiKey(encoded)
        );
        // The secret alone decodes to no id:key pair.
        for bad in ["ui2lp2axTNmsyakw9tvNnw", "", ":key", "id:", "not base64!"] {
            assert!(parse_api_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints() {
        let plain = "a1".repeat(32);
        let colons = ["A1"; 32].join(":");
        assert_eq!(parse_fingerprint(&plain).unwrap(), [0xa1; 32]);
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xa1; 32]);
        for bad in [
            "",
            "a1",
            &"a1".repeat(31),
            &"a1".repeat(33),
            &"g1".repeat(32),
        ] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_redaction() {
        assert_eq!(
            redact_url("https://elastic:s3cret@host:9200/p"),
            "https://elastic:<redacted>@host:9200/p"
        );
        assert_eq!(redact_url("https://host:9200/a@b"), "https://host:9200/a@b");
        assert_eq!(redact_url("https://user@host"), "https://user@host");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
