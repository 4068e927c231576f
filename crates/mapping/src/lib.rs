//! Maps one ThreatStream indicator to one ECS document, rule by rule like the ingest pipeline of
//! Elastic's `ti_anomali` integration (threatstream data stream, package 2.5.0 content).
//!
//! - Input: an [`anomali_model::Indicator`], the [`Received`] context (receive time, raw text), and
//!   [`MappingSettings`] (tags, `preserve_original_event`, the `ioc_expiration_duration` fail-safe,
//!   an optional GeoIP City database).
//! - Output: an [`anomali_model::EcsDocument`]. [`map_indicator`] is pure: the same inputs give the
//!   same document; it never panics and never fails as a whole. A field that cannot be mapped adds
//!   an entry to `error.message`, sets `event.kind: pipeline_error` and the tag
//!   `preserve_original_event`, and leaves every other field mapped.
//! - [`map_intelligence`] does the same for one object of the ThreatStream Intelligence API
//!   (the `intelligence` data stream, dataset `ti_anomali.intelligence`), with that stream's rules
//!   and its larger itype table ([`intelligence_indicator_type`]).
//! - Deliberate differences from the reference (bugs there) are listed in the README and marked
//!   `deviation:` in the code.

mod dates;
mod expiration;
mod geoip;
mod intelligence;
mod intelligence_itype;
mod itype;
mod map;
mod settings;
mod url_parts;

pub use dates::{DateError, format_timestamp, parse_timestamp};
pub use expiration::{ExpirationError, IocExpiration};
pub use geoip::{GeoIp, GeoIpError};
pub use intelligence::map_intelligence;
pub use intelligence_itype::{ItypeError, intelligence_indicator_type};
pub use itype::indicator_type;
pub use map::{Received, map_indicator};
pub use settings::MappingSettings;
pub use url_parts::{UrlError, parse_url};
