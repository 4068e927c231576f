//! TLS for the listener: rustls with the ring provider, PEM files, optional client certificates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ClientAuth;
use crate::error::ServerError;

fn tls_error(path: &Path, what: &str, error: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(format!("{what} {}: {error}", path.display()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(path, "cannot read certificates from", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, "cannot parse certificates in", e))?;
    if certificates.is_empty() {
        return Err(tls_error(path, "no certificate in", "empty PEM file"));
    }
    Ok(certificates)
}

/// Builds the rustls server configuration (HTTP/2 and HTTP/1.1 offered by ALPN).
pub(crate) fn server_config(
    certificate: &Path,
    key: &Path,
    authorities: &[PathBuf],
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(certificate)?;
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls_error(key, "cannot read the private key from", e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let mut roots = rustls::RootCertStore::empty();
            for path in authorities {
                for certificate in certificates(path)? {
                    roots
                        .add(certificate)
                        .map_err(|e| tls_error(path, "unusable CA certificate in", e))?;
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| ServerError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| tls_error(certificate, "certificate and key do not fit in", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
