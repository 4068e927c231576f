//! [`PollTls`]: the poller's `ssl` block (Beats' names), and how it shapes the HTTP client.
//!
//! Each of `certificate_authorities`, `certificate` and `key` is a file path or inline PEM, as in
//! Beats; an inline key is a secret and never shown by `Debug`.

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::config::invalid;
use super::service::PollError;
use crate::error::{ConfigError, error_chain};

/// How the API's certificate is checked (`ssl.verification_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsVerification {
    /// The chain and the host name (the default).
    #[default]
    Full,
    /// As `full`: rustls already requires the name in the subject alternative names.
    Strict,
    /// The chain, not the host name.
    Certificate,
    /// Nothing: any certificate is accepted (a warning is logged).
    None,
}

/// TLS towards the Intelligence API.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollTls {
    /// `false` ignores the rest of the block, as in Beats. By default, `true`.
    pub enabled: bool,
    /// CAs to trust besides the public ones: paths or inline PEM.
    pub certificate_authorities: Vec<String>,
    /// How the API's certificate is checked. By default, `full`.
    pub verification_mode: TlsVerification,
    /// A client certificate chain (path or inline PEM), for APIs behind mutual TLS.
    pub certificate: Option<String>,
    /// The client certificate's unencrypted private key (path or inline PEM; secret).
    pub key: Option<String>,
}

impl Default for PollTls {
    fn default() -> Self {
        Self {
            enabled: true,
            certificate_authorities: Vec::new(),
            verification_mode: TlsVerification::Full,
            certificate: None,
            key: None,
        }
    }
}

impl std::fmt::Debug for PollTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.key.as_deref().map(|key| {
            if is_inline_pem(key) {
                "<redacted inline pem>"
            } else {
                key
            }
        });
        f.debug_struct("PollTls")
            .field("enabled", &self.enabled)
            .field("certificate_authorities", &self.certificate_authorities)
            .field("verification_mode", &self.verification_mode)
            .field("certificate", &self.certificate)
            .field("key", &key)
            .finish()
    }
}

/// Inline PEM rather than a path: anything holding a PEM header (OpenSSL's exports put "Bag
/// Attributes" or comments before it) or spanning lines.
fn is_inline_pem(value: &str) -> bool {
    value.contains("-----BEGIN") || value.trim().contains('\n')
}

impl PollTls {
    /// Checks what can be checked without reading files; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
        match (given(&self.certificate), given(&self.key)) {
            (true, false) => Err(invalid("ssl.key", "is required with ssl.certificate")),
            (false, true) => Err(invalid("ssl.certificate", "is required with ssl.key")),
            _ => Ok(()),
        }
    }

    /// Applies the block to a client builder. `extra_authorities` are the top-level
    /// `certificate_authorities` (kept for configurations written before the `ssl` block).
    pub(crate) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
        extra_authorities: &[std::path::PathBuf],
    ) -> Result<reqwest::ClientBuilder, PollError> {
        let mut authorities: Vec<(String, Vec<u8>)> = Vec::new();
        for (n, file) in extra_authorities.iter().enumerate() {
            let key = format!("certificate_authorities[{n}]");
            let pem = pem_bytes(&key, &file.to_string_lossy(), Shown::Path)?;
            authorities.push((key, pem));
        }
        if self.enabled {
            for (n, value) in self.certificate_authorities.iter().enumerate() {
                let key = format!("ssl.certificate_authorities[{n}]");
                let pem = pem_bytes(&key, value, Shown::Path)?;
                authorities.push((key, pem));
            }
        }
        for (key, pem) in authorities {
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setting(&key, format!("not PEM certificates: {}", error_chain(&e))))?;
            if certificates.is_empty() {
                return Err(setting(&key, "holds no certificate"));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if !self.enabled {
            return Ok(builder);
        }
        if let (Some(certificate), Some(key)) = (&self.certificate, &self.key) {
            let mut identity = pem_bytes("ssl.certificate", certificate, Shown::Path)?;
            let certificates = CertificateDer::pem_slice_iter(&identity)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| setting("ssl.certificate", format!("not PEM certificates: {e}")))?;
            if certificates.is_empty() {
                return Err(setting("ssl.certificate", "holds no certificate"));
            }
            let key_pem = pem_bytes("ssl.key", key, Shown::Never)?;
            if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED PRIVATE KEY") {
                return Err(setting(
                    "ssl.key",
                    "encrypted keys are not supported; give it decrypted",
                ));
            }
            // The error of a key parser may quote the input: name the key, never its content.
            let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|_| setting("ssl.key", "holds no PEM private key"))?;
            // reqwest finds a mismatch only when building the client, and says "builder error".
            match CertifiedKey::from_der(
                certificates,
                private_key,
                &rustls::crypto::ring::default_provider(),
            ) {
                Ok(_) => {}
                Err(rustls::Error::InconsistentKeys(_)) => {
                    return Err(setting(
                        "ssl.key",
                        "does not belong to the first certificate of ssl.certificate",
                    ));
                }
                Err(error) => {
                    return Err(setting(
                        "ssl.key",
                        format!("not a usable private key: {error}"),
                    ));
                }
            }
            if !identity.ends_with(b"\n") {
                identity.push(b'\n');
            }
            identity.extend_from_slice(&key_pem);
            let identity = reqwest::Identity::from_pem(&identity).map_err(|_| {
                setting(
                    "ssl.certificate",
                    "not a certificate chain for the key in ssl.key",
                )
            })?;
            builder = builder.identity(identity);
        }
        builder = match self.verification_mode {
            TlsVerification::Full | TlsVerification::Strict => builder,
            TlsVerification::Certificate => builder.danger_accept_invalid_hostnames(true),
            TlsVerification::None => {
                tracing::warn!(
                    "intelligence ssl.verification_mode is none: the api's certificate is not \
                     checked, so anyone between here and the api can read the api key"
                );
                builder.danger_accept_invalid_certs(true)
            }
        };
        Ok(builder)
    }
}

fn setting(key: &str, reason: impl Into<String>) -> PollError {
    PollError::Setting {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Whether an error may show the path a value names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Its first line, cut to 200 characters.
    Path,
    /// Never: the value may be a key pasted in a form PEM detection missed.
    Never,
}

/// The largest PEM file read: certificate bundles are a few hundred KiB at most.
const MAX_PEM_BYTES: u64 = 4 << 20;

/// The PEM of a value that is inline PEM or a path.
fn pem_bytes(key: &str, value: &str, shown: Shown) -> Result<Vec<u8>, PollError> {
    if is_inline_pem(value) {
        return Ok(value.trim().as_bytes().to_vec());
    }
    let path = value.trim();
    if path.is_empty() {
        return Err(setting(key, "is empty"));
    }
    let named = match shown {
        Shown::Path => {
            let first_line: String = path
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            format!("cannot read {first_line}")
        }
        Shown::Never => "cannot read the file it names".to_owned(),
    };
    // A FIFO would block start-up and /dev/zero would fill memory: regular files only.
    match std::fs::metadata(path) {
        Err(e) => return Err(setting(key, format!("{named}: {e}"))),
        Ok(meta) if !meta.is_file() => {
            return Err(setting(key, format!("{named}: not a regular file")));
        }
        Ok(meta) if meta.len() > MAX_PEM_BYTES => {
            return Err(setting(key, format!("{named}: larger than 4 MiB")));
        }
        Ok(_) => {}
    }
    std::fs::read(path).map_err(|e| setting(key, format!("{named}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inline_key_never_shows_in_debug() {
        let tls = PollTls {
            certificate: Some("/etc/pki/client.pem".into()),
            key: Some("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----".into()),
            ..PollTls::default()
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("/etc/pki/client.pem"), "{shown}");
    }

    #[test]
    fn a_certificate_needs_its_key_and_the_reverse() {
        let half = PollTls {
            certificate: Some("/c.pem".into()),
            ..PollTls::default()
        };
        assert!(half.validate().unwrap_err().to_string().contains("ssl.key"));
        let other = PollTls {
            key: Some("/k.pem".into()),
            ..PollTls::default()
        };
        assert!(
            other
                .validate()
                .unwrap_err()
                .to_string()
                .contains("ssl.certificate")
        );
        let off = PollTls {
            enabled: false,
            ..half
        };
        assert!(off.validate().is_ok());
    }

    #[test]
    fn a_key_pasted_with_text_before_its_header_is_inline_and_never_quoted() {
        let exported = "Bag Attributes\n    localKeyID: A5 FB\n-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        let bare_lines = "MIIEvgIBADANBgkqhkiG9w0BAQEFAASC\nc2VjcmV0c2VjcmV0\n";
        for inline in [exported, bare_lines] {
            assert_eq!(
                pem_bytes("ssl.key", inline, Shown::Never).unwrap(),
                inline.trim().as_bytes(),
                "read as PEM, not as a path"
            );
        }
        let one_line = "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCc2VjcmV0c2VjcmV0";
        let error = pem_bytes("ssl.key", one_line, Shown::Never)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("c2VjcmV0"), "{error}");
        assert!(error.contains("cannot read the file it names"), "{error}");
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        for path in ["/dev/zero".to_owned(), dir.path().display().to_string()] {
            let error = pem_bytes("ssl.certificate", &path, Shown::Path)
                .unwrap_err()
                .to_string();
            assert!(error.contains("not a regular file"), "{path}: {error}");
        }
    }

    #[test]
    fn unreadable_or_empty_authorities_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for value in [
            dir.path().join("missing.pem").display().to_string(),
            empty.display().to_string(),
        ] {
            let tls = PollTls {
                certificate_authorities: vec![value.clone()],
                ..PollTls::default()
            };
            let error = tls
                .apply(reqwest::Client::builder(), &[])
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("ssl.certificate_authorities[0]: "),
                "{value}: {error}"
            );
        }
    }
}
