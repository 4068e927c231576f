//! One request, from headers to answer: the checks in order, then parse, map and hand over.
//!
//! Order: path (404), method (405), basic auth and secret header (401), `Content-Type` (415),
//! `Content-Encoding` (415), query (400), body size and budget (413, 503), HMAC over the body as
//! received (401), decompression (413, 400), empty body (406), JSON (400, nothing published),
//! hand-over to the sink (200, or 503/504/500). Every error answer is JSON: `{"message": "..."}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anomali_mapping::{MappingSettings, Received, map_indicator};
use anomali_model::records;
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::Semaphore;

use crate::api::ReadApi;
use crate::auth::{check_basic_auth, check_hmac, check_secret};
use crate::body::{BodyError, Reservation, gunzip, parse_go_duration, read_body};
use crate::config::{DEFAULT_COMPLETION_TIMEOUT, ValidatedConfig, media_type, normalise_path};
use crate::error::SinkError;
use crate::metrics::WebhookMetrics;
use crate::sink::{Batch, IndicatorSink};

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared<S, A> {
    pub(crate) config: ValidatedConfig,
    pub(crate) settings: MappingSettings,
    pub(crate) sink: S,
    pub(crate) budget: Arc<Semaphore>,
    pub(crate) metrics: Arc<WebhookMetrics>,
    pub(crate) api: A,
}

/// An answer before it is sent.
struct Answer {
    status: StatusCode,
    body: Bytes,
    retry_after: Option<u32>,
    content_type: &'static str,
}

impl Answer {
    fn error(status: StatusCode, message: impl AsRef<str>) -> Self {
        let body = serde_json::json!({ "message": message.as_ref() }).to_string() + "\n";
        Self {
            status,
            body: Bytes::from(body),
            retry_after: None,
            content_type: "application/json",
        }
    }

    fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self {
            status,
            body: Bytes::from(value.to_string()),
            retry_after: None,
            content_type: "application/json",
        }
    }

    fn success() -> Self {
        Self {
            status: StatusCode::OK,
            body: Bytes::from_static(b"{\"message\": \"success\"}"),
            retry_after: None,
            content_type: "application/json",
        }
    }
}

pub(crate) async fn handle<S: IndicatorSink, A: ReadApi>(
    shared: Arc<Shared<S, A>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let started = Instant::now();
    // A probe of a sick service gets 503 every few seconds: that is its answer, not news.
    let probe = request.uri().path() == "/_ti/health";
    let answer = answer(&shared, request).await;
    shared
        .metrics
        .record(answer.status.as_u16(), started.elapsed());
    if !probe && (answer.status.is_server_error() || answer.status == StatusCode::UNAUTHORIZED) {
        tracing::warn!(status = answer.status.as_u16(), "webhook request refused");
    }
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

async fn answer<S: IndicatorSink, A: ReadApi>(
    shared: &Shared<S, A>,
    request: Request<Incoming>,
) -> Answer {
    let config = &shared.config;
    let (parts, body) = request.into_parts();

    let path = normalise_path(parts.uri.path());
    if path != config.path && path.starts_with("/_ti/") && shared.api.enabled() {
        return read_api(shared, &parts, &path).await;
    }
    if path != config.path {
        return Answer::error(StatusCode::NOT_FOUND, "not found");
    }
    if parts.method != Method::POST {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST requests are allowed",
        );
    }
    if let Err(message) = check_header_auth(config, &parts.headers) {
        return Answer::error(StatusCode::UNAUTHORIZED, message);
    }
    if let Some(expected) = &config.content_type {
        let given = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(media_type);
        if given.as_deref() != Some(expected.as_str()) {
            return Answer::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("wrong Content-Type header, expecting {expected}"),
            );
        }
    }
    let gzipped = match parts
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().map(str::trim))
    {
        None => false,
        Some(Ok(encoding))
            if encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip") =>
        {
            true
        }
        Some(Ok(encoding)) if encoding.eq_ignore_ascii_case("identity") || encoding.is_empty() => {
            false
        }
        Some(Ok(encoding)) => {
            return Answer::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding type {encoding:?}"),
            );
        }
        Some(Err(_)) => {
            return Answer::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unreadable Content-Encoding header",
            );
        }
    };
    let wait = match completion_timeout(parts.uri.query()) {
        Ok(wait) => wait,
        Err(message) => return Answer::error(StatusCode::BAD_REQUEST, message),
    };

    let declared_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut reservation = Reservation::default();
    let raw = match read_body(
        body,
        config.read_timeout,
        declared_length,
        config.max_body_bytes,
        &shared.budget,
        &mut reservation,
    )
    .await
    {
        Ok(raw) => raw,
        Err(error) => return body_error(error, config.retry_after),
    };
    if let Some((key, algorithm, header, prefix)) = &config.hmac
        && let Err(message) = check_hmac(&parts.headers, header, prefix, key, *algorithm, &raw)
    {
        return Answer::error(StatusCode::UNAUTHORIZED, message);
    }
    let body = if gzipped {
        match gunzip(
            &raw,
            config.max_body_bytes,
            &shared.budget,
            &mut reservation,
        ) {
            Ok(body) => body,
            Err(error) => return body_error(error, config.retry_after),
        }
    } else {
        raw.clone()
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Answer::error(StatusCode::NOT_ACCEPTABLE, "body cannot be empty");
    }

    // All or nothing: every record parses before anything is mapped or handed over.
    let received_at = Utc::now();
    let mut parsed = Vec::new();
    for record in records::split(&body) {
        match record.and_then(|r| r.parse().map(|indicator| (r.text, indicator))) {
            Ok(item) => parsed.push(item),
            Err(error) => {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!("{error}; nothing was accepted"),
                );
            }
        }
    }
    let documents: Vec<_> = parsed
        .into_iter()
        .map(|(text, indicator)| {
            map_indicator(
                indicator,
                &Received {
                    at: received_at,
                    original: Some(text),
                },
                &shared.settings,
            )
        })
        .collect();
    let count = documents.len() as u64;

    let delivered = tokio::time::timeout(
        wait,
        shared.sink.deliver(Batch {
            received_at,
            documents,
        }),
    )
    .await;
    drop(reservation);
    match delivered {
        Ok(Ok(())) => {
            shared.metrics.add_received(count, raw.len() as u64);
            Answer::success()
        }
        Ok(Err(SinkError::Unavailable(reason))) => Answer {
            retry_after: Some(config.retry_after),
            ..Answer::error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the pipeline cannot take more data now: {reason}"),
            )
        },
        Ok(Err(error)) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        Err(_) => Answer::error(
            StatusCode::GATEWAY_TIMEOUT,
            "could not publish event within timeout",
        ),
    }
}

/// `GET /_ti/health` (open, for probes), `/_ti/metrics` and `/_ti/lookup?value=` (authenticated
/// like the webhook; with HMAC, the signature of the empty body).
async fn read_api<S: IndicatorSink, A: ReadApi>(
    shared: &Shared<S, A>,
    parts: &http::request::Parts,
    path: &str,
) -> Answer {
    if !matches!(path, "/_ti/health" | "/_ti/metrics" | "/_ti/lookup") {
        return Answer::error(StatusCode::NOT_FOUND, "not found");
    }
    // HEAD too: some health probes use it (hyper drops the body of a HEAD answer).
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET requests are allowed here",
        );
    }
    if path == "/_ti/health" {
        return match shared.api.health().await {
            Ok(details) => Answer::json(StatusCode::OK, &details),
            // As green and yellow answers carry a status, so does red.
            Err(reason) => Answer::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "status": "red", "message": reason }),
            ),
        };
    }
    let config = &shared.config;
    if let Err(message) = check_header_auth(config, &parts.headers) {
        return Answer::error(StatusCode::UNAUTHORIZED, message);
    }
    if let Some((key, algorithm, header, prefix)) = &config.hmac
        && let Err(message) = check_hmac(&parts.headers, header, prefix, key, *algorithm, b"")
    {
        return Answer::error(StatusCode::UNAUTHORIZED, message);
    }
    match path {
        "/_ti/metrics" => {
            let text = shared.metrics.render_prometheus() + &shared.api.metrics().await;
            Answer {
                status: StatusCode::OK,
                body: Bytes::from(text),
                retry_after: None,
                content_type: "text/plain; version=0.0.4",
            }
        }
        "/_ti/lookup" => {
            let value = parts
                .uri
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    (key == "value").then(|| percent_decode(value))
                });
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                return Answer::error(StatusCode::BAD_REQUEST, "give the indicator as ?value=");
            };
            match shared.api.lookup(&value).await {
                Ok(documents) => Answer::json(StatusCode::OK, &serde_json::Value::Array(documents)),
                Err(SinkError::Unavailable(reason)) => Answer {
                    retry_after: Some(shared.config.retry_after),
                    ..Answer::error(StatusCode::SERVICE_UNAVAILABLE, reason)
                },
                Err(error) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
            }
        }
        _ => Answer::error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `%XX` and `+` in a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(index + 1..index + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(byte);
                    index += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Basic auth and the secret header, when configured (HMAC needs the body: checked later).
fn check_header_auth(
    config: &ValidatedConfig,
    headers: &http::HeaderMap,
) -> Result<(), &'static str> {
    if let Some((user, password)) = &config.basic_auth {
        check_basic_auth(headers, user, password)?;
    }
    if let Some((header, value)) = &config.secret {
        check_secret(headers, header, value)?;
    }
    Ok(())
}

fn body_error(error: BodyError, retry_after: u32) -> Answer {
    match error {
        BodyError::TooLarge(limit) => Answer::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than max_body_bytes ({limit} bytes)"),
        ),
        BodyError::Busy => Answer {
            retry_after: Some(retry_after),
            ..Answer::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too much data in flight; retry later",
            )
        },
        BodyError::Stalled => Answer::error(
            StatusCode::REQUEST_TIMEOUT,
            "the body stopped arriving (read_timeout); nothing was accepted",
        ),
        BodyError::Read(reason) => Answer::error(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {reason}"),
        ),
        BodyError::BadGzip(reason) => Answer::error(
            StatusCode::BAD_REQUEST,
            format!("invalid gzip body: {reason}"),
        ),
    }
}

/// `?wait_for_completion_timeout=<Go duration>` is the only query key allowed.
fn completion_timeout(query: Option<&str>) -> Result<Duration, String> {
    let mut wait = DEFAULT_COMPLETION_TIMEOUT;
    let mut unexpected = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "wait_for_completion_timeout" {
            wait = parse_go_duration(&percent_decode(value))
                .map_err(|e| format!("wait_for_completion_timeout: {e}"))?;
        } else {
            unexpected.push(key.to_owned());
        }
    }
    if !unexpected.is_empty() {
        return Err(format!("unexpected URL query: {}", unexpected.join(", ")));
    }
    Ok(wait)
}
