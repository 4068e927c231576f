//! Pull mode: polling the ThreatStream Intelligence API (`GET <url>/api/v2/intelligence/`).
//!
//! - Input: [`PollConfig`] (the reference integration's `intelligence` settings) and a durable
//!   [`Cursor`] (`last_update_id`).
//! - Output: each page's objects, in `update_id` order, handed to an [`ObjectSink`]; the cursor
//!   advances to the page's last `update_id` only after the sink accepted the page (durably), so
//!   a crash re-fetches a page and never skips one (at least once).
//! - Paging: the next page at once while `meta.next` is not null, else after `interval`.
//! - Errors: 401/403 (and a proxy's 407) stop polling with a clear message
//!   ([`PollStatus::Failed`]); 429, 5xx, timeouts and connection errors are retried with
//!   backoff, honouring `Retry-After`; a malformed page is reported with its position and
//!   nothing of it is applied.
//! - The API key is sent only in the `Authorization` header and never logged; TLS is rustls,
//!   set by Beats' `ssl` block ([`PollTls`]: CAs, `verification_mode`, a client certificate).

mod config;
mod cursor;
mod query;
mod service;
mod tls;

pub use config::{PollConfig, parse_interval};
pub use cursor::Cursor;
pub use query::{Page, page_query, parse_page};
pub use service::{ObjectSink, PollError, PollStatus, Poller};
pub use tls::{PollTls, TlsVerification};
