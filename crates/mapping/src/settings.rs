//! [`MappingSettings`]: what the mapping is told besides the indicator.

use crate::{GeoIp, IocExpiration};

/// Settings of the mapping, as the Fleet policy of the reference integration gives them.
///
/// `Default` applies nothing optional: no expiry rule, no tags, no GeoIP. That is what
/// `ti-anomali map` starts from; [`MappingSettings::integration_defaults`] is what the
/// long-running service starts from.
#[derive(Debug, Clone, Default)]
pub struct MappingSettings {
    /// The fail-safe `deleted_at` for indicators the feed gives none. By default, this is `None`.
    pub ioc_expiration: Option<IocExpiration>,
    /// Tags put on every document, before the pieces of `detail`. By default, none.
    pub tags: Vec<String>,
    /// Keep the raw indicator in `event.original` and tag the document
    /// `preserve_original_event`. By default, this is off.
    pub preserve_original_event: bool,
    /// A MaxMind City database for `threat.indicator.geo`. By default, none: the feed's own
    /// `lat`, `lon` and `country` are used.
    pub geoip: Option<GeoIp>,
}

impl MappingSettings {
    /// The reference integration's defaults: `ioc_expiration_duration: 90d` and the tags
    /// `forwarded` and `anomali-threatstream`.
    pub fn integration_defaults() -> Self {
        Self {
            ioc_expiration: Some(IocExpiration::DEFAULT),
            tags: vec!["forwarded".to_owned(), "anomali-threatstream".to_owned()],
            preserve_original_event: false,
            geoip: None,
        }
    }

    /// The reference `intelligence` stream's defaults: `ioc_duration_before_deletion: 90d` and
    /// the tags `forwarded` and `anomali-intelligence`, for [`crate::map_intelligence`].
    pub fn intelligence_defaults() -> Self {
        Self {
            tags: vec!["forwarded".to_owned(), "anomali-intelligence".to_owned()],
            ..Self::integration_defaults()
        }
    }
}
