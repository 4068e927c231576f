//! `ca_fingerprint`: fetches the certificate chain an Elasticsearch node presents, once, and
//! picks the certificate whose SHA-256 is the configured one, for the transport to trust.
//!
//! Contract:
//! - Input: the node URLs and a SHA-256 fingerprint.
//! - Output: the DER of the matching certificate, once it has been seen to validate the node's
//!   chain for the node's host name, so the transport's own checks will accept it too.
//! - Guarantees: the probe sends nothing but a TLS handshake (no credentials); each https node
//!   is tried at most once, each try bounded by [`PROBE_TIMEOUT`]. It dials the node directly:
//!   an `HTTPS_PROXY` the transport would use is not used here.
//!
//! Why a probe: the `elasticsearch` crate (9.1.0-alpha.1, rustls) builds its reqwest client
//! itself and has no hook for a custom rustls verifier, so no fingerprint can be checked on each
//! connection; `CertificateValidation::Full` only adds root certificates. So the certificate
//! with the fingerprint is fetched here and handed to it as a root, which is what Elastic
//! Agent's `ssl.ca_trusted_fingerprint` does. This stays safe when the probe itself is
//! intercepted: a man in the middle can only hand over the genuine certificate (its hash must
//! match), and every later connection must then present a chain that this certificate signs,
//! naming the right host. The built-in public roots stay trusted as well, as with `ca_file`.

use std::iter;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use elasticsearch::http::Url;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::EsError;

/// How long one node may take to accept the connection and finish the handshake.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate with `fingerprint` from the first https node that answers.
///
/// A node that answers without such a certificate, or whose chain that certificate does not
/// validate, is an error at once ([`EsError::Config`] for `ca_fingerprint`): the nodes of one
/// cluster share a CA, so trying the next one would only hide the mistake. Nodes that cannot be
/// reached are skipped; if none can, the error is [`EsError::Transport`].
pub(crate) async fn fetch_pinned(
    nodes: &[Url],
    fingerprint: &[u8; 32],
) -> Result<CertificateDer<'static>, EsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut unreachable = Vec::new();
    for url in nodes.iter().filter(|url| url.scheme() == "https") {
        match probe(url, fingerprint, &provider).await {
            Ok(certificate) => return Ok(certificate),
            Err(Failure::Mismatch(reason)) => {
                return Err(EsError::Config {
                    key: "ca_fingerprint".to_owned(),
                    reason,
                });
            }
            Err(Failure::Unreachable(reason)) => unreachable.push(reason),
        }
    }
    Err(EsError::Transport(format!(
        "no https host answered to show its certificate for ca_fingerprint: {}",
        unreachable.join("; ")
    )))
}

enum Failure {
    /// The node answered, but nothing it presented can be trusted by this fingerprint.
    Mismatch(String),
    /// No handshake: refused, timed out, not TLS.
    Unreachable(String),
}

async fn probe(
    url: &Url,
    fingerprint: &[u8; 32],
    provider: &Arc<CryptoProvider>,
) -> Result<CertificateDer<'static>, Failure> {
    // An IPv6 host is bracketed in URLs, not in socket addresses or server names.
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let here = format!("{host}:{port}");
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| Failure::Mismatch(format!("{here} is no valid tls server name: {e}")))?;
    let verifier = Arc::new(PinVerifier {
        fingerprint: *fingerprint,
        provider: provider.clone(),
        outcome: Mutex::new(Outcome::NotReached),
    });
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Unreachable(format!("{here}: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let handshake = tokio::time::timeout(PROBE_TIMEOUT, async {
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        connector.connect(server_name, tcp).await
    })
    .await;
    // The verifier's verdict says more than the handshake error it caused.
    let outcome = std::mem::replace(
        &mut *verifier
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
        Outcome::NotReached,
    );
    match outcome {
        Outcome::Trusted(certificate) => Ok(certificate),
        Outcome::NoMatch(count) => Err(Failure::Mismatch(format!(
            "none of the {count} certificates presented by {here} has this fingerprint"
        ))),
        Outcome::Invalid(reason) => Err(Failure::Mismatch(format!(
            "the certificate with this fingerprint does not validate {here}: {reason} (it must \
             be the CA's, or the server's own if self-signed)"
        ))),
        Outcome::NotReached => Err(Failure::Unreachable(match handshake {
            Err(_) => format!("{here}: no tls handshake within {PROBE_TIMEOUT:?}"),
            Ok(Err(e)) => format!("{here}: {e}"),
            Ok(Ok(_)) => format!("{here}: handshake finished without a certificate"),
        })),
    }
}

/// What the verifier saw.
#[derive(Debug)]
enum Outcome {
    NotReached,
    /// How many certificates were presented, none matching.
    NoMatch(usize),
    /// A certificate matched but does not validate the chain for the host.
    Invalid(String),
    /// A certificate matched and validates the chain for the host.
    Trusted(CertificateDer<'static>),
}

/// Accepts a chain only if one of its certificates has the fingerprint and, taken as the only
/// root, validates the chain for the server name, exactly as the transport will check it.
#[derive(Debug)]
struct PinVerifier {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
    outcome: Mutex<Outcome>,
}

impl PinVerifier {
    fn record(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = outcome;
    }

    fn validate(
        &self,
        root: &CertificateDer<'_>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(root.clone().into_owned())?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let matching = iter::once(end_entity)
            .chain(intermediates)
            .find(|certificate| Sha256::digest(certificate.as_ref())[..] == self.fingerprint[..]);
        let Some(root) = matching else {
            self.record(Outcome::NoMatch(1 + intermediates.len()));
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ));
        };
        match self.validate(
            root,
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => {
                self.record(Outcome::Trusted(root.clone().into_owned()));
                Ok(verified)
            }
            Err(e) => {
                self.record(Outcome::Invalid(e.to_string()));
                Err(e)
            }
        }
    }

    // The handshake signatures are checked for real, though nothing is sent on this connection:
    // it costs nothing and keeps this verifier honest if it is ever reused.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
