//! Connection settings end to end: YAML parsing, validation errors naming their key, cloud ids,
//! `Debug` redaction, and real requests to a tiny HTTP(S) server on 127.0.0.1 that records the
//! `Authorization` header: each credential kind, `ca_file`, `ca_fingerprint`.
//!
//! Every server accepts a bounded number of connections within a bounded time, and every test
//! is bounded by [`TEST_TIMEOUT`].

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anomali_sink_es::{EsClient, EsConnection, EsError, VerificationMode, cloud_id_url};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use elasticsearch::http::Method;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections one test server accepts before it stops.
const MAX_CONNECTIONS: usize = 16;
/// How long one test server lives.
const SERVER_LIFETIME: Duration = Duration::from_secs(25);

/// Runs `test` on a fresh runtime, failing it after [`TEST_TIMEOUT`].
fn bounded<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, test)
            .await
            .expect("test timed out");
    });
}

fn yaml(text: &str) -> EsConnection {
    serde_saphyr::from_str(text).unwrap()
}

/// The key an error names; panics on another kind of error.
fn config_key(error: &EsError) -> &str {
    match error {
        EsError::Config { key, .. } => key,
        other => panic!("expected a config error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation.

#[test]
fn yaml_with_every_key_parses() {
    let connection = yaml(
        r#"
hosts: ["https://127.0.0.1:9200", "https://localhost:9201"]
username: elastic
password: changeme
ca_file: /etc/es/http_ca.crt
ca_fingerprint: "AB:cd:01"
verification_mode: full
"#,
    );
    assert_eq!(connection.hosts.len(), 2);
    assert_eq!(connection.username.as_deref(), Some("elastic"));
    assert_eq!(connection.password.as_deref(), Some("changeme"));
    assert_eq!(
        connection.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/es/http_ca.crt"))
    );
    assert_eq!(connection.ca_fingerprint.as_deref(), Some("AB:cd:01"));
    assert_eq!(connection.verification_mode, VerificationMode::Full);

    let other = yaml("url: http://127.0.0.1:9200\napi_key: id:key\nverification_mode: none\n");
    assert_eq!(other.url.as_deref(), Some("http://127.0.0.1:9200"));
    assert_eq!(other.api_key.as_deref(), Some("id:key"));
    assert_eq!(other.verification_mode, VerificationMode::None);

    let cloud = yaml("cloud_id: 'name:abc'\nbearer_token: tok\n");
    assert_eq!(cloud.cloud_id.as_deref(), Some("name:abc"));
    assert_eq!(cloud.bearer_token.as_deref(), Some("tok"));
    assert_eq!(cloud.verification_mode, VerificationMode::Full);
}

#[test]
fn yaml_refuses_unknown_keys_and_modes() {
    for text in [
        "url: http://127.0.0.1:9200\nhost: x\n",
        "url: http://127.0.0.1:9200\nssl.verification_mode: none\n",
        "url: http://127.0.0.1:9200\nverification_mode: strict\n",
    ] {
        assert!(
            serde_saphyr::from_str::<EsConnection>(text).is_err(),
            "{text}"
        );
    }
}

#[test]
fn contradictory_or_bad_settings_name_their_key() {
    let good_fingerprint = "ab".repeat(32);
    let cases: Vec<(String, &str)> = vec![
        ("{}".into(), "url"),
        ("hosts: []".into(), "url"),
        ("url: http://a:9200\nhosts: [http://b:9200]".into(), "hosts"),
        ("url: http://a:9200\ncloud_id: 'n:abc'".into(), "cloud_id"),
        (
            "hosts: [http://a:9200]\ncloud_id: 'n:abc'".into(),
            "cloud_id",
        ),
        ("cloud_id: 'n:!!not base64!!'".into(), "cloud_id"),
        ("url: ftp://a:9200".into(), "url"),
        ("url: not a url".into(), "url"),
        ("url: https://elastic:secret@a:9200".into(), "url"),
        ("hosts: [http://a:9200, 'b:9200']".into(), "hosts[1]"),
        ("url: http://a:9200\nusername: elastic".into(), "password"),
        ("url: http://a:9200\npassword: x".into(), "username"),
        (
            "url: http://a:9200\nusername: 'a:b'\npassword: x".into(),
            "username",
        ),
        (
            "url: http://a:9200\nusername: elastic\npassword: x\napi_key: id:key".into(),
            "api_key",
        ),
        (
            "url: http://a:9200\nusername: elastic\npassword: x\nbearer_token: t".into(),
            "bearer_token",
        ),
        (
            "url: http://a:9200\napi_key: id:key\nbearer_token: t".into(),
            "bearer_token",
        ),
        // Only the key's secret: no id.
        (
            "url: http://a:9200\napi_key: ui2lp2axTNmsyakw9tvNnw".into(),
            "api_key",
        ),
        ("url: http://a:9200\napi_key: ':key'".into(), "api_key"),
        (
            "url: http://a:9200\nbearer_token: 'a b'".into(),
            "bearer_token",
        ),
        (
            "url: https://a:9200\nca_fingerprint: 'zz'".into(),
            "ca_fingerprint",
        ),
        (
            format!("url: https://a:9200\nca_fingerprint: '{}'", "ab".repeat(31)),
            "ca_fingerprint",
        ),
        (
            format!("url: http://a:9200\nca_fingerprint: '{good_fingerprint}'"),
            "ca_fingerprint",
        ),
        ("url: http://a:9200\nca_file: /ca.pem".into(), "ca_file"),
        (
            "url: https://a:9200\nverification_mode: certificate".into(),
            "verification_mode",
        ),
        (
            "url: https://a:9200\nverification_mode: none\nca_file: /ca.pem".into(),
            "verification_mode",
        ),
        (
            format!(
                "url: https://a:9200\nverification_mode: none\nca_fingerprint: \
                 '{good_fingerprint}'"
            ),
            "verification_mode",
        ),
    ];
    for (text, key) in cases {
        let error = yaml(&text).validate().unwrap_err();
        assert_eq!(config_key(&error), key, "{text}: {error}");
        // Our words are lowercase; a quoted parser message may not be.
        let message = error.to_string();
        let reason = message
            .strip_prefix(&format!("elasticsearch setting {key}: "))
            .unwrap_or_else(|| panic!("{message}"));
        assert!(reason.starts_with(char::is_lowercase), "{message}");
    }
}

#[test]
fn good_settings_validate() {
    let fingerprint = ["AB"; 32].join(":");
    for text in [
        "url: http://127.0.0.1:9200".to_owned(),
        "hosts: [http://a:9200, https://b:9200/prefix]\nusername: elastic\npassword: ''".to_owned(),
        format!("url: https://a:9200\nca_fingerprint: '{fingerprint}'\nca_file: /ca.pem"),
        "url: https://a:9200\nverification_mode: none\nbearer_token: abc.def-ghi".to_owned(),
    ] {
        yaml(&text).validate().unwrap();
    }
}

#[test]
fn cloud_id_is_decoded_to_the_es_url() {
    // Made up: host `eu-central-7.example-cloud.test`, es uuid `f00dcafe`, kibana `beef`.
    let data = STANDARD.encode("eu-central-7.example-cloud.test:9243$f00dcafe$beef");
    let connection = yaml(&format!(
        "cloud_id: 'my-deployment:{data}'\napi_key: id:key\n"
    ));
    assert_eq!(
        connection.node_urls().unwrap(),
        vec!["https://f00dcafe.eu-central-7.example-cloud.test:9243/".to_owned()]
    );
    // Without the name, and with the default port.
    let data = STANDARD.encode("example-cloud.test$f00dcafe$beef");
    assert_eq!(
        cloud_id_url(&data).unwrap(),
        "https://f00dcafe.example-cloud.test"
    );
}

#[test]
fn hosts_keep_their_order() {
    let connection = yaml("hosts: ['http://127.0.0.1:9200', 'https://localhost:9201/es']");
    assert_eq!(
        connection.node_urls().unwrap(),
        vec![
            "http://127.0.0.1:9200/".to_owned(),
            "https://localhost:9201/es".to_owned()
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Debug never shows a secret.

const SECRETS: [&str; 4] = [
    "hunter2-password",
    "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw",
    "ui2lp2axTNmsyakw9tvNnw",
    "bearer-secret-token",
];

fn assert_redacted(debug: &str) {
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{secret} shown in {debug}");
    }
    assert!(debug.contains("\"<redacted>\""), "{debug}");
}

#[test]
fn debug_of_the_settings_redacts_secrets() {
    let connection = EsConnection {
        url: Some("https://elastic:hunter2-password@127.0.0.1:9200".to_owned()),
        hosts: vec!["https://u:hunter2-password@b:9200".to_owned()],
        username: Some("elastic".to_owned()),
        password: Some("hunter2-password".to_owned()),
        api_key: Some("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw".to_owned()),
        bearer_token: Some("bearer-secret-token".to_owned()),
        ..EsConnection::default()
    };
    let debug = format!("{connection:?}");
    assert_redacted(&debug);
    assert!(debug.contains("elastic"), "{debug}");
    assert_redacted(&format!("{connection:#?}"));
    // And none of them leaks through a validation error either.
    assert_redacted(&format!(
        "{:?} \"<redacted>\"",
        connection.validate().unwrap_err()
    ));
}

#[test]
fn debug_of_the_client_redacts_secrets() {
    bounded(async {
        let base = EsConnection::from_url("http://127.0.0.1:9");
        let clients = [
            EsConnection {
                username: Some("elastic".to_owned()),
                password: Some("hunter2-password".to_owned()),
                ..base.clone()
            },
            EsConnection {
                api_key: Some("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw".to_owned()),
                ..base.clone()
            },
            EsConnection {
                api_key: Some(STANDARD.encode("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw")),
                ..base.clone()
            },
            EsConnection {
                bearer_token: Some("bearer-secret-token".to_owned()),
                ..base.clone()
            },
        ];
        for connection in &clients {
            // No request is made: connect dials nothing without ca_fingerprint.
            let client = EsClient::connect(connection).await.unwrap();
            let debug = format!("{client:?}");
            assert_redacted(&debug);
            assert_redacted(&format!("{client:#?}"));
            assert!(debug.contains("127.0.0.1:9"), "{debug}");
        }
        let encoded = STANDARD.encode("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw");
        let client = EsClient::connect(&EsConnection {
            api_key: Some(encoded.clone()),
            ..base.clone()
        })
        .await
        .unwrap();
        assert!(!format!("{client:?}").contains(&encoded));

        let single = EsClient::single_node("http://elastic:hunter2-password@127.0.0.1:9").unwrap();
        assert_redacted(&format!("{single:?}"));
    });
}

// ---------------------------------------------------------------------------------------------
// A tiny server on 127.0.0.1.

/// Test certificates: a CA, a server certificate it signs for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    /// The chain the server presents: its certificate, then the CA's (as Elasticsearch's
    /// auto-configured `http.p12` does).
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for `names`, signed by a fresh CA.
fn pki_for(names: &[&str]) -> Pki {
    let ca = ca();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key_der: key.serialize_der(),
    }
}

fn pki() -> Pki {
    pki_for(&["127.0.0.1", "localhost"])
}

/// A self-signed server certificate (no CA), as a test cluster might have.
fn self_signed_pki() -> Pki {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Pki {
        ca_pem: cert.pem(),
        ca_der: cert.der().clone(),
        chain: vec![cert.der().clone()],
        key_der: key.serialize_der(),
    }
}

fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Colon-separated upper case, as `openssl x509 -fingerprint -sha256` prints it.
fn openssl_style(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

struct Server {
    url: String,
    /// The `Authorization` header of each request, `None` when absent.
    authorizations: mpsc::UnboundedReceiver<Option<String>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// The next request's `Authorization` header.
    async fn next_authorization(&mut self) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), self.authorizations.recv())
            .await
            .expect("no request recorded")
            .expect("server stopped")
    }
}

async fn serve(pki: Option<&Pki>) -> Server {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = pki.map(|pki| {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), key)
        .unwrap();
        TlsAcceptor::from(Arc::new(config))
    });
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let (sender, authorizations) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let accept_all = async {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let sender = sender.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        // A client that refuses the certificate ends here, recording nothing.
                        Some(acceptor) => {
                            if let Ok(Ok(tls)) =
                                tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp))
                                    .await
                            {
                                answer(tls, &sender).await;
                            }
                        }
                        None => answer(tcp, &sender).await,
                    }
                });
            }
        };
        let _ = tokio::time::timeout(SERVER_LIFETIME, accept_all).await;
    });
    Server {
        url: format!("{scheme}://127.0.0.1:{port}"),
        authorizations,
        task,
    }
}

/// Reads one request's head (at most 16 KiB, within 5 s), records its `Authorization` header
/// and answers `200 {}`, closing the connection.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sender: &mpsc::UnboundedSender<Option<String>>,
) {
    let mut head = Vec::new();
    let read_head = async {
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), read_head).await,
        Ok(true)
    ) {
        return;
    }
    let text = String::from_utf8_lossy(&head);
    let authorization = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_owned())
    });
    let _ = sender.send(authorization);
    let _ = stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
              connection: close\r\n\r\n{}",
        )
        .await;
    let _ = stream.shutdown().await;
}

async fn get(client: &EsClient) -> Result<u16, EsError> {
    client
        .json(Method::Get, "/", None)
        .await
        .map(|answer| answer.status)
}

// ---------------------------------------------------------------------------------------------
// Credentials arrive as Elasticsearch expects them.

#[test]
fn each_credential_kind_arrives_in_the_authorization_header() {
    bounded(async {
        let mut server = serve(None).await;
        let base = EsConnection::from_url(server.url.clone());
        let encoded = STANDARD.encode("key-id:key-secret");
        let cases = [
            (
                EsConnection {
                    username: Some("elastic".to_owned()),
                    password: Some("changeme".to_owned()),
                    ..base.clone()
                },
                Some(format!("Basic {}", STANDARD.encode("elastic:changeme"))),
            ),
            (
                EsConnection {
                    api_key: Some("key-id:key-secret".to_owned()),
                    ..base.clone()
                },
                Some(format!("ApiKey {encoded}")),
            ),
            (
                EsConnection {
                    api_key: Some(encoded.clone()),
                    ..base.clone()
                },
                Some(format!("ApiKey {encoded}")),
            ),
            (
                EsConnection {
                    bearer_token: Some("token-abc.def".to_owned()),
                    ..base.clone()
                },
                Some("Bearer token-abc.def".to_owned()),
            ),
            (base.clone(), None),
        ];
        for (connection, expected) in cases {
            let client = EsClient::connect(&connection).await.unwrap();
            assert_eq!(get(&client).await.unwrap(), 200);
            assert_eq!(
                server.next_authorization().await,
                expected,
                "{connection:?}"
            );
        }
    });
}

#[test]
fn the_api_key_from_yaml_is_encoded() {
    bounded(async {
        let mut server = serve(None).await;
        let connection = yaml(&format!(
            "url: {}\napi_key: 'VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw'\n",
            server.url
        ));
        let client = EsClient::connect(&connection).await.unwrap();
        assert_eq!(get(&client).await.unwrap(), 200);
        assert_eq!(
            server.next_authorization().await.as_deref(),
            Some("ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
        );
    });
}

#[test]
fn single_node_still_works() {
    bounded(async {
        let mut server = serve(None).await;
        let client = EsClient::single_node(&server.url).unwrap();
        assert_eq!(get(&client).await.unwrap(), 200);
        assert_eq!(server.next_authorization().await, None);
    });
}

#[test]
fn hosts_take_turns() {
    bounded(async {
        let mut first = serve(None).await;
        let mut second = serve(None).await;
        let connection = EsConnection {
            hosts: vec![first.url.clone(), second.url.clone()],
            bearer_token: Some("t".to_owned()),
            ..EsConnection::default()
        };
        let client = EsClient::connect(&connection).await.unwrap();
        for _ in 0..2 {
            assert_eq!(get(&client).await.unwrap(), 200);
        }
        assert_eq!(
            first.next_authorization().await.as_deref(),
            Some("Bearer t")
        );
        assert_eq!(
            second.next_authorization().await.as_deref(),
            Some("Bearer t")
        );
    });
}

// ---------------------------------------------------------------------------------------------
// TLS: ca_file, ca_fingerprint, verification_mode.

fn https(server: &Server) -> EsConnection {
    EsConnection {
        username: Some("elastic".to_owned()),
        password: Some("changeme".to_owned()),
        ..EsConnection::from_url(server.url.clone())
    }
}

#[test]
fn https_needs_the_ca_file() {
    bounded(async {
        let pki = pki();
        let mut server = serve(Some(&pki)).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("http_ca.crt");
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();

        let without = EsClient::connect(&https(&server)).await.unwrap();
        let error = get(&without).await.unwrap_err();
        assert!(matches!(error, EsError::Transport(_)), "{error:?}");

        let with = EsClient::connect(&EsConnection {
            ca_file: Some(ca_file),
            ..https(&server)
        })
        .await
        .unwrap();
        assert_eq!(get(&with).await.unwrap(), 200);
        assert_eq!(
            server.next_authorization().await,
            Some(format!("Basic {}", STANDARD.encode("elastic:changeme")))
        );
    });
}

#[test]
fn a_missing_or_empty_ca_file_is_named() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [dir.path().join("missing.pem"), empty] {
            let error = EsClient::connect(&EsConnection {
                ca_file: Some(path),
                ..EsConnection::from_url("https://127.0.0.1:9")
            })
            .await
            .unwrap_err();
            assert_eq!(config_key(&error), "ca_file", "{error}");
        }
    });
}

#[test]
fn https_with_the_ca_fingerprint() {
    bounded(async {
        let pki = pki();
        let mut server = serve(Some(&pki)).await;
        let fingerprint = openssl_style(&sha256_hex(&pki.ca_der));
        let client = EsClient::connect(&EsConnection {
            ca_fingerprint: Some(fingerprint),
            ..https(&server)
        })
        .await
        .unwrap();
        assert!(format!("{client:?}").contains("ca_fingerprint"));
        assert_eq!(get(&client).await.unwrap(), 200);
        // The probe sent no request: the first one recorded is the client's.
        assert_eq!(
            server.next_authorization().await,
            Some(format!("Basic {}", STANDARD.encode("elastic:changeme")))
        );
    });
}

#[test]
fn https_with_a_wrong_ca_fingerprint_fails() {
    bounded(async {
        let pki = pki();
        let server = serve(Some(&pki)).await;
        let other_ca = ca();
        for wrong in [sha256_hex(other_ca.der()), "00".repeat(32)] {
            let error = EsClient::connect(&EsConnection {
                ca_fingerprint: Some(wrong),
                ..https(&server)
            })
            .await
            .unwrap_err();
            assert_eq!(config_key(&error), "ca_fingerprint", "{error}");
            assert!(error.to_string().contains("none of the 2"), "{error}");
        }
    });
}

#[test]
fn a_fingerprint_of_a_ca_signed_server_certificate_is_refused() {
    bounded(async {
        let pki = pki();
        let server = serve(Some(&pki)).await;
        // Trusting a leaf as a root does not validate a chain that a CA signed.
        let error = EsClient::connect(&EsConnection {
            ca_fingerprint: Some(sha256_hex(&pki.chain[0])),
            ..https(&server)
        })
        .await
        .unwrap_err();
        assert_eq!(config_key(&error), "ca_fingerprint", "{error}");
        assert!(error.to_string().contains("does not validate"), "{error}");
    });
}

#[test]
fn a_fingerprinted_ca_still_needs_the_right_host_name() {
    bounded(async {
        let pki = pki_for(&["elasticsearch.example"]);
        let server = serve(Some(&pki)).await;
        let error = EsClient::connect(&EsConnection {
            ca_fingerprint: Some(sha256_hex(&pki.ca_der)),
            ..https(&server)
        })
        .await
        .unwrap_err();
        assert_eq!(config_key(&error), "ca_fingerprint", "{error}");
    });
}

#[test]
fn a_self_signed_server_certificate_can_be_pinned() {
    bounded(async {
        let pki = self_signed_pki();
        let mut server = serve(Some(&pki)).await;
        let client = EsClient::connect(&EsConnection {
            ca_fingerprint: Some(sha256_hex(&pki.ca_der).to_uppercase()),
            ..https(&server)
        })
        .await
        .unwrap();
        assert_eq!(get(&client).await.unwrap(), 200);
        assert!(server.next_authorization().await.is_some());
    });
}

#[test]
fn pinning_needs_a_reachable_host() {
    bounded(async {
        // A port nobody listens on: bound, then released.
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = EsClient::connect(&EsConnection {
            ca_fingerprint: Some("ab".repeat(32)),
            ..EsConnection::from_url(format!("https://127.0.0.1:{port}"))
        })
        .await
        .unwrap_err();
        assert!(matches!(error, EsError::Transport(_)), "{error:?}");
    });
}

#[test]
fn verification_mode_none_accepts_any_certificate() {
    bounded(async {
        let pki = pki_for(&["elasticsearch.example"]);
        let mut server = serve(Some(&pki)).await;
        let client = EsClient::connect(&EsConnection {
            verification_mode: VerificationMode::None,
            ..https(&server)
        })
        .await
        .unwrap();
        assert_eq!(get(&client).await.unwrap(), 200);
        assert!(server.next_authorization().await.is_some());
    });
}
