//! The "latest" rule, shared by every backend: which version of an indicator is live.

use std::cmp::Ordering;

use anomali_model::EcsDocument;
use chrono::{DateTime, Utc};

/// The key of a live document: the dataset and the indicator's ThreatStream id. One live
/// document per key, across all namespaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndicatorKey {
    /// `event.dataset`, such as `ti_anomali.threatstream`.
    pub dataset: String,
    /// `anomali.threatstream.id`.
    pub id: String,
}

impl IndicatorKey {
    /// The key as one string (`dataset` and `id` joined by a unit separator), for storage.
    pub fn encoded(&self) -> String {
        format!("{}\u{1f}{}", self.dataset, self.id)
    }

    /// The inverse of [`IndicatorKey::encoded`].
    pub fn decode(encoded: &str) -> Option<Self> {
        let (dataset, id) = encoded.split_once('\u{1f}')?;
        Some(Self {
            dataset: dataset.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// What decides between two versions of an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `anomali.threatstream.update_id`, when it is a number.
    pub update_id: Option<u64>,
    /// Arrival order in this store (higher is later).
    pub arrival: u64,
}

impl Version {
    /// Whether `self` (arriving now) should replace `existing`.
    ///
    /// A higher `update_id` wins. With equal update ids, or when either has none, the later
    /// arrival wins. A late re-send of an older version never overwrites a newer one (the
    /// reference sorts on `@timestamp` = `added_at` and can drop late re-sends; we do not).
    pub fn supersedes(&self, existing: &Version) -> bool {
        match (self.update_id, existing.update_id) {
            (Some(new), Some(old)) => match new.cmp(&old) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => self.arrival > existing.arrival,
            },
            _ => self.arrival > existing.arrival,
        }
    }
}

/// The facts the rule needs from a mapped document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFacts {
    /// The key, if the document has an id.
    pub key: Option<IndicatorKey>,
    /// `update_id` as a number.
    pub update_id: Option<u64>,
    /// `anomali.threatstream.deleted_at`: the document is not live at or after this time.
    pub expires_at: Option<DateTime<Utc>>,
    /// The values a lookup finds it by: IP (canonical form), domain, URL, e-mail, hashes and
    /// the indicator's name (lower case).
    pub lookup_values: Vec<String>,
}

impl DocumentFacts {
    /// Reads the facts from a mapped document of `dataset`.
    pub fn of(dataset: &str, document: &EcsDocument) -> Self {
        let threatstream = &document.anomali.threatstream;
        let key = threatstream
            .id
            .as_ref()
            .filter(|id| !id.is_empty())
            .map(|id| IndicatorKey {
                dataset: dataset.to_owned(),
                id: id.clone(),
            });
        let update_id = threatstream
            .update_id
            .as_deref()
            .and_then(|u| u.trim().parse::<u64>().ok())
            // Elasticsearch versions are signed 64-bit: a larger value orders like no number,
            // in every backend alike.
            .filter(|u| i64::try_from(*u).is_ok());
        // `deleted_at` (threatstream) or `deletion_scheduled_at` (intelligence), the earlier.
        let expires_at = [
            &threatstream.deleted_at,
            &threatstream.deletion_scheduled_at,
        ]
        .into_iter()
        .flatten()
        .filter_map(|t| DateTime::parse_from_rfc3339(t.as_str()).ok())
        .map(|t| t.with_timezone(&Utc))
        .min();
        Self {
            key,
            update_id,
            expires_at,
            lookup_values: lookup_values(document),
        }
    }

    /// Whether the document is live at `now`: not deleted or expired yet.
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires| expires > now)
    }
}

/// Normalises a value for lookups: IPs in canonical form, other values lower case.
pub fn normalise_lookup_value(value: &str) -> String {
    let value = value.trim();
    match value.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => value.to_lowercase(),
    }
}

fn lookup_values(document: &EcsDocument) -> Vec<String> {
    let indicator = &document.threat.indicator;
    let hash = &indicator.file.hash;
    let mut values: Vec<String> = [
        indicator.ip.as_deref(),
        indicator.url.domain.as_deref(),
        indicator.url.original.as_deref(),
        indicator.email.address.as_deref(),
        hash.md5.as_deref(),
        hash.sha1.as_deref(),
        hash.sha256.as_deref(),
        hash.sha512.as_deref(),
        indicator.name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|v| !v.is_empty())
    .map(normalise_lookup_value)
    .collect();
    values.sort();
    values.dedup();
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(update_id: Option<u64>, arrival: u64) -> Version {
        Version { update_id, arrival }
    }

    #[test]
    fn expiry_is_the_earlier_of_deleted_at_and_deletion_scheduled_at() {
        let at = |t: &str| anomali_model::Timestamp::parse_normalised(t);
        let time = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        };
        let mut document = EcsDocument::default();
        document.anomali.threatstream.id = Some("1".to_owned());
        // An intelligence document: only deletion_scheduled_at.
        document.anomali.threatstream.deletion_scheduled_at = at("2026-03-01T00:00:00.000Z");
        let facts = DocumentFacts::of("ti_anomali.intelligence", &document);
        assert_eq!(facts.expires_at, time("2026-03-01T00:00:00Z"));
        assert!(!facts.is_live_at(time("2026-03-02T00:00:00Z").unwrap_or_default()));
        // Both: the earlier.
        document.anomali.threatstream.deleted_at = at("2026-02-01T00:00:00.000Z");
        let facts = DocumentFacts::of("ti_anomali.intelligence", &document);
        assert_eq!(facts.expires_at, time("2026-02-01T00:00:00Z"));
    }

    #[test]
    fn higher_update_id_wins_then_arrival() {
        assert!(
            version(Some(2), 1).supersedes(&version(Some(1), 5)),
            "newer version, older arrival"
        );
        assert!(
            !version(Some(1), 9).supersedes(&version(Some(2), 1)),
            "late re-send of an old version"
        );
        assert!(
            version(Some(2), 9).supersedes(&version(Some(2), 1)),
            "same version: later arrival"
        );
        assert!(
            version(None, 9).supersedes(&version(Some(2), 1)),
            "missing update id: arrival"
        );
        assert!(!version(None, 1).supersedes(&version(None, 2)));
    }

    #[test]
    fn keys_round_trip() {
        let key = IndicatorKey {
            dataset: "ti_anomali.threatstream".into(),
            id: "42".into(),
        };
        assert_eq!(IndicatorKey::decode(&key.encoded()), Some(key));
    }

    #[test]
    fn lookup_values_are_normalised() {
        assert_eq!(normalise_lookup_value(" Evil.Example "), "evil.example");
        assert_eq!(normalise_lookup_value("2001:DB8:0:0::1"), "2001:db8::1");
        assert_eq!(normalise_lookup_value("203.0.113.9"), "203.0.113.9");
    }
}
