//! [`EsClient`]: the official `elasticsearch` crate as transport (URL, auth, TLS), with the few
//! raw calls the sink makes, answering status and JSON.
//!
//! Contract: [`EsClient::connect`] builds the transport from checked [`EsConnection`] settings
//! (nodes, credentials, trusted certificates); `Debug` shows nodes and the kind of credentials,
//! never a secret.

use std::fmt;
use std::sync::Arc;

use elasticsearch::Elasticsearch;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, Transport, TransportBuilder,
};
use elasticsearch::http::{Method, Url};
use serde_json::Value;

use crate::config::{Auth, EsConnection, Plan, redact_url};
use crate::error::EsError;
use crate::pin;

/// A cluster connection. Cheap to clone. `Debug` redacts credentials.
#[derive(Clone)]
pub struct EsClient {
    inner: Elasticsearch,
    /// What `Debug` shows: the transport's own `Debug` would print the credentials.
    shown: Arc<Shown>,
}

/// A description of the connection, its secrets emptied.
struct Shown {
    nodes: Vec<String>,
    auth: Auth,
    tls: &'static str,
}

impl fmt::Debug for EsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsClient")
            .field("nodes", &self.shown.nodes)
            .field("auth", &self.shown.auth)
            .field("tls", &self.shown.tls)
            .finish_non_exhaustive()
    }
}

/// An answer: the HTTP status and the JSON body (`Null` when there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl EsClient {
    /// A client for one node at `url`, without TLS settings; credentials in the URL
    /// (`https://user:password@host`) are used for basic authentication.
    pub fn single_node(url: &str) -> Result<Self, EsError> {
        let transport =
            Transport::single_node(url).map_err(|e| EsError::Transport(e.to_string()))?;
        // Parsed again only to say who authenticates; the transport took the password.
        let auth = match Url::parse(url) {
            Ok(parsed) if !parsed.username().is_empty() && parsed.password().is_some() => {
                Auth::Basic {
                    username: parsed.username().to_owned(),
                    password: String::new(),
                }
            }
            _ => Auth::None,
        };
        Ok(Self {
            inner: Elasticsearch::new(transport),
            shown: Arc::new(Shown {
                nodes: vec![redact_url(url)],
                auth,
                tls: "default",
            }),
        })
    }

    /// A client for the nodes, credentials and trusted certificates of `connection`.
    ///
    /// Checks the settings first ([`EsConnection::validate`]), then reads `ca_file`. With
    /// `ca_fingerprint` it also completes one TLS handshake with the first https node that
    /// answers, to fetch the certificate to trust (see `pin.rs`); so then it fails with
    /// [`EsError::Transport`] when no node can be reached, and the caller should retry.
    /// Otherwise nothing is dialled until the first request.
    pub async fn connect(connection: &EsConnection) -> Result<Self, EsError> {
        let plan = connection.plan()?;
        let mut trusted = match &plan.ca_file {
            Some(path) => Some(read_ca_file(path).await?),
            None => None,
        };
        if let Some(fingerprint) = &plan.ca_fingerprint {
            let der = pin::fetch_pinned(&plan.nodes, fingerprint).await?;
            let pinned = Certificate::from_der(der.as_ref()).map_err(|e| EsError::Config {
                key: "ca_fingerprint".to_owned(),
                reason: format!("the matching certificate is unusable: {e}"),
            })?;
            match &mut trusted {
                Some(chain) => chain.append(pinned),
                None => trusted = Some(pinned),
            }
        }
        let tls = match (plan.verify, &plan.ca_file, &plan.ca_fingerprint) {
            (false, _, _) => "none",
            (true, Some(_), Some(_)) => "ca_file+ca_fingerprint",
            (true, Some(_), None) => "ca_file",
            (true, None, Some(_)) => "ca_fingerprint",
            (true, None, None) => "default",
        };
        if !plan.verify {
            tracing::warn!(
                "elasticsearch verification_mode is none: its certificate is not checked, so \
                 the credentials and documents can be read and changed on the way"
            );
        }
        let transport = build_transport(&plan, trusted)?;
        Ok(Self {
            inner: Elasticsearch::new(transport),
            shown: Arc::new(Shown {
                nodes: plan.nodes.iter().map(Url::to_string).collect(),
                auth: plan.auth.without_secrets(),
                tls,
            }),
        })
    }

    /// Sends a JSON body (or none).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, EsError> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.send(method, path, bytes, "application/json").await
    }

    /// Sends an NDJSON `_bulk` body.
    pub async fn bulk(&self, path: &str, body: Vec<u8>) -> Result<Answer, EsError> {
        self.send(Method::Post, path, Some(body), "application/x-ndjson")
            .await
    }

    /// Sends a `_bulk` body as it is, gzipped or not (then with `Content-Encoding: gzip`).
    pub async fn bulk_body(
        &self,
        path: &str,
        body: Vec<u8>,
        gzip: bool,
    ) -> Result<Answer, EsError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        self.send_with(Method::Post, path, Some(body), headers)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &'static str,
    ) -> Result<Answer, EsError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.send_with(method, path, body, headers).await
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: HeaderMap,
    ) -> Result<Answer, EsError> {
        let response = self
            .inner
            .send::<Vec<u8>, ()>(method, path, headers, None, body, None)
            .await
            .map_err(|e| EsError::Transport(e.to_string()))?;
        let status = response.status_code().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| EsError::Transport(e.to_string()))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }
}

/// The CA certificates in a PEM file.
async fn read_ca_file(path: &std::path::Path) -> Result<Certificate, EsError> {
    let ca_file_error = |reason: String| EsError::Config {
        key: "ca_file".to_owned(),
        reason,
    };
    let pem = tokio::fs::read(path)
        .await
        .map_err(|e| ca_file_error(format!("cannot read {}: {e}", path.display())))?;
    Certificate::from_pem(&pem).map_err(|e| {
        ca_file_error(format!(
            "no usable pem certificate in {}: {e}",
            path.display()
        ))
    })
}

fn build_transport(plan: &Plan, trusted: Option<Certificate>) -> Result<Transport, EsError> {
    // One node needs no selector; several go round-robin, without sniffing, which would
    // replace the configured URLs with the nodes' published addresses (and the crate's
    // sniffing unwraps the cluster's answer).
    let mut builder = match plan.nodes.as_slice() {
        [one] => TransportBuilder::new(SingleNodeConnectionPool::new(one.clone())),
        many => TransportBuilder::new(MultiNodeConnectionPool::round_robin(many.to_vec(), None)),
    };
    if let Some(credentials) = plan.auth.credentials() {
        builder = builder.auth(credentials);
    }
    let validation = match (plan.verify, trusted) {
        (false, _) => CertificateValidation::None,
        (true, Some(chain)) => CertificateValidation::Full(chain),
        (true, None) => CertificateValidation::Default,
    };
    builder
        .cert_validation(validation)
        .build()
        .map_err(|e| EsError::Transport(format!("cannot build the http client: {e}")))
}
