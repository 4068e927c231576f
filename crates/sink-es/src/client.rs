//! [`EsClient`]: the official `elasticsearch` crate as transport (URL, auth, TLS), with the few
//! raw calls the sink makes, answering status and JSON.

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::Transport;
use serde_json::Value;

use crate::error::EsError;

/// A cluster connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EsClient {
    inner: Elasticsearch,
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
    /// A client for one node at `url` (no credentials).
    pub fn single_node(url: &str) -> Result<Self, EsError> {
        let transport =
            Transport::single_node(url).map_err(|e| EsError::Transport(e.to_string()))?;
        Ok(Self {
            inner: Elasticsearch::new(transport),
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
