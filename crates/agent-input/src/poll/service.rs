//! [`Poller`]: the polling loop (see the module docs for the contract).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::config::{PollConfig, without_userinfo};
use super::cursor::Cursor;
use super::query::{page_query, parse_page};
use crate::error::{SinkError, error_chain};

/// Where a page's objects go; `accept` returns only once they are durable (or refuses them all).
pub trait ObjectSink: Send + Sync + 'static {
    /// Accepts every object of a page, or none.
    fn accept(
        &self,
        objects: Vec<Map<String, Value>>,
        received_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// What the poller reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollStatus {
    /// Not polled yet.
    Starting,
    /// The last poll worked.
    Healthy(String),
    /// Polls fail for now and are retried: the reason.
    Degraded(String),
    /// Polling stopped for good (the API refused the credentials): the reason.
    Failed(String),
}

/// Why polling stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// The API refused the credentials (401/403).
    #[error("the threatstream api refused the credentials ({status}): check username and api_key")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// The proxy refused the credentials in `proxy_url` (407).
    #[error("the proxy refused the credentials (407): check the user and password in proxy_url")]
    ProxyUnauthorized,
    /// The cursor file could not be read or written.
    #[error("cursor: {0}")]
    Cursor(#[from] std::io::Error),
    /// A setting could not be used (an unreadable CA or client certificate, a bad proxy URL):
    /// the key as the configuration spells it, and why.
    #[error("{key}: {reason}")]
    Setting {
        /// The key, e.g. `ssl.key`.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
}

/// The outcome of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A page was applied and `meta.next` says there is more: poll again at once.
    More,
    /// A page was applied and it was the last: wait `interval`.
    Done,
}

/// Why one poll did not apply a page.
#[derive(Debug)]
enum StepError {
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Unauthorized(u16),
    Malformed(String),
    Sink(SinkError),
    Cursor(std::io::Error),
}

/// The longest wait a `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The largest answer read; a larger one is retried (and reported), never held in memory.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Polls the Intelligence API.
#[derive(Debug)]
pub struct Poller {
    config: PollConfig,
    cursor: Cursor,
    http: reqwest::Client,
    endpoint: String,
}

impl Poller {
    /// A poller for a validated `config`, its cursor kept at `cursor_path`.
    pub fn new(config: PollConfig, cursor_path: &Path) -> Result<Self, PollError> {
        let cursor = Cursor::open(cursor_path)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.duration(&config.http_client_timeout))
            .user_agent(concat!("ti-anomali/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = config.proxy() {
            builder =
                builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| PollError::Setting {
                    key: "proxy_url".to_owned(),
                    reason: error_chain(&e),
                })?);
        }
        let builder = config.ssl.apply(builder, &config.certificate_authorities)?;
        let http = builder
            .build()
            .map_err(|e| PollError::Client(error_chain(&e)))?;
        let endpoint = format!("{}/api/v2/intelligence/", config.url.trim_end_matches('/'));
        Ok(Self {
            config,
            cursor,
            http,
            endpoint,
        })
    }

    /// The last `update_id` accepted.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor.last_update_id()
    }

    /// Polls until `stop` turns true or the API refuses the credentials.
    pub async fn run<S: ObjectSink>(
        mut self,
        sink: &S,
        mut stop: watch::Receiver<bool>,
        status: watch::Sender<PollStatus>,
    ) -> Result<(), PollError> {
        let mut backoff = Backoff::new();
        let interval = self.config.duration(&self.config.interval);
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let wait = match self.poll_once(sink, Utc::now()).await {
                Ok(step) => {
                    backoff.reset();
                    status.send_replace(PollStatus::Healthy(format!(
                        "polling; cursor {}",
                        self.cursor().map_or("none".to_owned(), |c| c.to_string())
                    )));
                    match step {
                        Step::More => continue,
                        Step::Done => interval,
                    }
                }
                Err(StepError::Unauthorized(code)) => {
                    // The caller reports it (once), with the returned error.
                    let error = match code {
                        407 => PollError::ProxyUnauthorized,
                        status => PollError::Unauthorized { status },
                    };
                    status.send_replace(PollStatus::Failed(error.to_string()));
                    return Err(error);
                }
                Err(StepError::Cursor(error)) => {
                    status.send_replace(PollStatus::Failed(format!("cursor: {error}")));
                    return Err(PollError::Cursor(error));
                }
                Err(StepError::Retry { reason, after }) => {
                    let delay = backoff.next();
                    // An absurd Retry-After must not stop polling for good.
                    let wait = after
                        .map_or(delay, |after| after.max(delay))
                        .min(MAX_RETRY_AFTER);
                    tracing::warn!(%reason, wait_ms = wait.as_millis(), "poll failed; retrying");
                    status.send_replace(PollStatus::Degraded(reason));
                    wait
                }
                Err(StepError::Malformed(reason)) => {
                    tracing::error!(%reason, "malformed page; nothing of it applied, retrying");
                    status.send_replace(PollStatus::Degraded(format!("malformed page: {reason}")));
                    backoff.next()
                }
                Err(StepError::Sink(error)) => {
                    tracing::warn!(%error, "the pipeline did not take the page; retrying");
                    status.send_replace(PollStatus::Degraded(error.to_string()));
                    backoff.next()
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
    }

    /// The answer's body, at most [`MAX_ANSWER_BYTES`] (a page of 1,000 objects is a few MB).
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, StepError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(StepError::Retry {
                            reason: format!(
                                "GET {}: the answer is larger than {} MiB",
                                self.endpoint,
                                MAX_ANSWER_BYTES >> 20
                            ),
                            after: None,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(StepError::Retry {
                        reason: format!(
                            "GET {}: the answer was cut: {}",
                            self.endpoint,
                            error_chain(&e)
                        ),
                        after: None,
                    });
                }
            }
        }
    }

    /// One request: the page is applied and the cursor advanced, or nothing changes.
    async fn poll_once<S: ObjectSink>(
        &mut self,
        sink: &S,
        now: DateTime<Utc>,
    ) -> Result<Step, StepError> {
        let query = page_query(&self.config, self.cursor(), now);
        let response = self
            .http
            .get(&self.endpoint)
            .query(&query)
            .header(
                "Authorization",
                format!("apikey {}:{}", self.config.username, self.config.api_key),
            )
            .send()
            .await
            .map_err(|e| {
                let reason = error_chain(&e);
                // hyper-util's tunnel turns the proxy's 407 to CONNECT into this error, the
                // only trace of it (tested against a proxy answering 407).
                if reason.contains("proxy authorization required") {
                    return StepError::Unauthorized(407);
                }
                // A proxy's own failures read like the API's: say which way the request went.
                let through = self.config.proxy().map_or(String::new(), |proxy| {
                    format!(" (through proxy_url {})", without_userinfo(proxy))
                });
                StepError::Retry {
                    reason: format!("GET {}{through}: {reason}", self.endpoint),
                    after: None,
                }
            })?;
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, Utc::now()));
        let body = self.read_body(response).await?;
        match code {
            200 => {}
            401 | 403 | 407 => return Err(StepError::Unauthorized(code)),
            429 | 500..=599 | 408 => {
                return Err(StepError::Retry {
                    reason: format!("GET {}: {code}", self.endpoint),
                    after: retry_after,
                });
            }
            other => {
                // At most 300 characters, cut between characters (the body is anyone's bytes).
                let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                return Err(StepError::Retry {
                    reason: format!("GET {}: {other}: {text}", self.endpoint),
                    after: None,
                });
            }
        }
        let page = parse_page(&body).map_err(StepError::Malformed)?;
        let Some(last) = page.last_update_id else {
            // An empty page cannot move the cursor: asking again at once, as a non-null
            // `meta.next` would have it, would ask for the same page in a tight loop.
            return Ok(Step::Done);
        };
        if let Some(cursor) = self.cursor()
            && last <= cursor
        {
            // The API ignored update_id__gt: applying would move the cursor back or not at
            // all, and following meta.next would ask for the same page forever.
            return Err(StepError::Malformed(format!(
                "the page ends at update_id {last}, not after the cursor {cursor}"
            )));
        }
        let more = page.more;
        sink.accept(page.objects, now)
            .await
            .map_err(StepError::Sink)?;
        self.cursor.advance(last).map_err(StepError::Cursor)?;
        Ok(if more { Step::More } else { Step::Done })
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (a date already past waits nothing more).
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Doubling delays from 1 s to 5 min, with jitter.
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn new() -> Self {
        Self { attempt: 0 }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self) -> Duration {
        let ceiling =
            Duration::from_secs(1u64 << self.attempt.min(8)).min(Duration::from_secs(300));
        self.attempt = self.attempt.saturating_add(1);
        // Jitter from the clock: enough to keep several pollers apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        ceiling.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now: DateTime<Utc> = "2026-12-04T09:00:00Z".parse().unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 09:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
