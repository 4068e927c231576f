//! The real agent hands out RSA-2048 keys in PKCS#1 form (`RSA PRIVATE KEY`), which the fake
//! agent cannot make (ring does not generate RSA keys): the client's TLS set-up must take them.
//! The fixture is a throwaway self-signed pair made with
//! `openssl genrsa -traditional 2048` for this test only.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

#[test]
fn a_pkcs1_rsa_client_key_is_accepted_for_mutual_tls() {
    let key = include_str!("fixtures/agent-rsa-pkcs1.key");
    let cert = include_str!("fixtures/agent-rsa.crt");
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert))
        .identity(Identity::from_pem(cert, key))
        .domain_name("0123456789abcdef0123456789abcdef");
    // Building the endpoint's TLS connector parses the key and hands it to rustls.
    Endpoint::from_static("https://127.0.0.1:1")
        .tls_config(tls)
        .unwrap();
}

#[test]
fn a_damaged_key_is_refused_when_tls_is_set_up() {
    let cert = include_str!("fixtures/agent-rsa.crt");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert))
        .identity(Identity::from_pem(
            cert,
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ))
        .domain_name("0123456789abcdef0123456789abcdef");
    assert!(
        Endpoint::from_static("https://127.0.0.1:1")
            .tls_config(tls)
            .is_err()
    );
}
