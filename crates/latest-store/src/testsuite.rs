//! The behaviour suite every [`LatestStore`] backend must pass. Each check takes a fresh, empty
//! store and panics with a message on failure. Time is passed in, never slept on.
//!
//! Backends call [`latest_store_suite!`](crate::latest_store_suite) with a constructor to get
//! one `#[tokio::test]` per check.

#![allow(
    clippy::unwrap_used,
    reason = "a test suite: a panic is a failed check"
)]

use anomali_mapping_free::document;
use chrono::{DateTime, TimeDelta, Utc};

use crate::{IndicatorKey, LatestStore};

const DATASET: &str = "ti_anomali.threatstream";

fn at(text: &str) -> DateTime<Utc> {
    text.parse()
        .unwrap_or_else(|e| panic!("test time {text}: {e}"))
}

fn key(id: &str) -> IndicatorKey {
    IndicatorKey {
        dataset: DATASET.to_owned(),
        id: id.to_owned(),
    }
}

/// Builds documents the way the mapping would, without depending on the mapping crate.
mod anomali_mapping_free {
    use anomali_model::{EcsDocument, Timestamp};

    /// An IP indicator with `id`, `update_id`, IP and an optional `deleted_at`.
    pub(crate) fn document(
        id: &str,
        update_id: Option<u64>,
        ip: &str,
        deleted_at: Option<&str>,
    ) -> EcsDocument {
        let mut document = EcsDocument::default();
        document.event.kind = "enrichment";
        document.event.category = &["threat"];
        document.event.kind_of_event = &["indicator"];
        document.anomali.threatstream.id = Some(id.to_owned());
        document.anomali.threatstream.update_id = update_id.map(|u| u.to_string());
        document.anomali.threatstream.deleted_at = deleted_at.map(|t| {
            Timestamp::parse_normalised(t).unwrap_or_else(|| panic!("normalised timestamp {t}"))
        });
        document.threat.indicator.ip = Some(ip.to_owned());
        document.threat.indicator.name = Some(ip.to_owned());
        document.threat.indicator.indicator_type = Some("ipv4-addr");
        document
    }
}

/// An active indicator becomes live, carrying the fields rules filter on.
pub async fn active_indicator_is_live<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    let report = store
        .apply(
            DATASET,
            vec![document("1", Some(10), "203.0.113.1", None)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.inserted, 1);
    let live = store
        .get(&key("1"), now)
        .await
        .unwrap()
        .expect("live document");
    let doc = &live.document;
    assert_eq!(doc["labels"]["is_ioc_transform_source"], "false");
    assert_eq!(doc["event"]["module"], "ti_anomali");
    assert_eq!(doc["event"]["dataset"], DATASET);
    assert_eq!(doc["threat"]["feed"]["name"], "Anomali ThreatStream");
    assert_eq!(doc["threat"]["indicator"]["ip"], "203.0.113.1");
    assert_eq!(store.count().await.unwrap(), 1);
}

/// A higher `update_id` replaces; a lower one, arriving later, is ignored.
pub async fn newer_update_id_wins_and_late_older_versions_are_ignored<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    store
        .apply(
            DATASET,
            vec![document("1", Some(10), "203.0.113.1", None)],
            now,
        )
        .await
        .unwrap();
    let report = store
        .apply(
            DATASET,
            vec![document("1", Some(11), "203.0.113.2", None)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.replaced, 1);
    let report = store
        .apply(
            DATASET,
            vec![document("1", Some(9), "203.0.113.3", None)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.ignored_older, 1);
    let live = store.get(&key("1"), now).await.unwrap().expect("live");
    assert_eq!(live.document["threat"]["indicator"]["ip"], "203.0.113.2");
    assert_eq!(store.count().await.unwrap(), 1);
    assert!(
        store.find("203.0.113.1", now).await.unwrap().is_empty(),
        "the replaced version is not found"
    );
    assert_eq!(store.find("203.0.113.2", now).await.unwrap().len(), 1);
}

/// Without `update_id`, or with equal ones, the later arrival wins.
pub async fn equal_or_missing_update_id_falls_back_to_arrival<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    let batch = vec![
        document("1", Some(5), "203.0.113.1", None),
        document("1", Some(5), "203.0.113.2", None),
        document("2", None, "203.0.113.3", None),
        document("2", None, "203.0.113.4", None),
    ];
    store.apply(DATASET, batch, now).await.unwrap();
    let one = store.get(&key("1"), now).await.unwrap().expect("live");
    assert_eq!(one.document["threat"]["indicator"]["ip"], "203.0.113.2");
    let two = store.get(&key("2"), now).await.unwrap().expect("live");
    assert_eq!(two.document["threat"]["indicator"]["ip"], "203.0.113.4");
}

/// A deleted indicator removes the live copy and is never live itself.
pub async fn deleted_indicator_is_removed_and_never_live<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    store
        .apply(
            DATASET,
            vec![document("1", Some(10), "203.0.113.1", None)],
            now,
        )
        .await
        .unwrap();
    let report = store
        .apply(
            DATASET,
            vec![document(
                "1",
                Some(11),
                "203.0.113.1",
                Some("2026-11-30T00:00:00.000Z"),
            )],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.removed, 1);
    assert!(store.get(&key("1"), now).await.unwrap().is_none());
    let report = store
        .apply(
            DATASET,
            vec![document(
                "2",
                Some(1),
                "203.0.113.9",
                Some("2026-12-01T00:00:00.000Z"),
            )],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        report.expired_on_arrival, 1,
        "deleted_at == now is not live"
    );
    assert!(store.get(&key("2"), now).await.unwrap().is_none());
    assert!(store.find("203.0.113.9", now).await.unwrap().is_empty());
    assert_eq!(store.count().await.unwrap(), 0);
}

/// A fail-safe expiry one minute ahead: live now, gone after the minute (sweep and reads).
pub async fn expiry_after_a_minute<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    let doc = document(
        "1",
        Some(1),
        "203.0.113.1",
        Some("2026-12-01T00:01:00.000Z"),
    );
    store.apply(DATASET, vec![doc], now).await.unwrap();
    assert!(store.get(&key("1"), now).await.unwrap().is_some());
    assert_eq!(
        store
            .sweep_expired(now + TimeDelta::seconds(59))
            .await
            .unwrap(),
        0
    );
    let later = now + TimeDelta::minutes(1);
    assert!(
        store.get(&key("1"), later).await.unwrap().is_none(),
        "expired documents are not returned"
    );
    assert_eq!(store.sweep_expired(later).await.unwrap(), 1);
    assert_eq!(store.count().await.unwrap(), 0);
}

/// Polled (intelligence) indicators are a stream of their own: the same id in both streams is
/// two live documents, and an intelligence one leaves at its `deletion_scheduled_at`.
pub async fn intelligence_indicators_are_their_own_stream<S: LatestStore>(store: S) {
    const INTELLIGENCE: &str = "ti_anomali.intelligence";
    let now = at("2026-12-01T00:00:00Z");
    let pushed = document("5", Some(1), "203.0.113.5", None);
    let mut polled = document("5", Some(1), "198.51.100.5", None);
    polled.anomali.threatstream.deletion_scheduled_at =
        anomali_model::Timestamp::parse_normalised("2026-12-01T00:01:00.000Z");
    store.apply(DATASET, vec![pushed], now).await.unwrap();
    store.apply(INTELLIGENCE, vec![polled], now).await.unwrap();
    let polled_key = IndicatorKey {
        dataset: INTELLIGENCE.to_owned(),
        id: "5".to_owned(),
    };
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(
        store.keys().await.unwrap(),
        // Sorted: the intelligence dataset's name comes first.
        vec![polled_key.clone(), key("5")]
    );
    let found = store.find("198.51.100.5", now).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, polled_key);
    let later = now + TimeDelta::minutes(1);
    assert!(store.get(&polled_key, later).await.unwrap().is_none());
    assert!(store.find("198.51.100.5", later).await.unwrap().is_empty());
    assert_eq!(store.sweep_expired(later).await.unwrap(), 1);
    assert_eq!(store.keys().await.unwrap(), vec![key("5")]);
    assert!(store.get(&key("5"), later).await.unwrap().is_some());
}

/// The same indicator from two namespaces (or sent twice) is one live document.
pub async fn one_live_document_per_key<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    store
        .apply(
            DATASET,
            vec![document("7", Some(1), "203.0.113.7", None)],
            now,
        )
        .await
        .unwrap();
    store
        .apply(
            DATASET,
            vec![document("7", Some(1), "203.0.113.7", None)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.find("203.0.113.7", now).await.unwrap().len(), 1);
    assert_eq!(store.keys().await.unwrap(), vec![key("7")]);
}

/// Lookups by IP (any spelling), domain, URL, e-mail and hash; removal.
pub async fn lookups_by_each_value_type<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    let mut domain = document("d", Some(1), "ignored", None);
    domain.threat.indicator.ip = None;
    domain.threat.indicator.name = Some("Evil.Example".into());
    domain.threat.indicator.url.domain = Some("Evil.Example".into());
    let mut url = document("u", Some(1), "ignored", None);
    url.threat.indicator.ip = None;
    url.threat.indicator.name = None;
    url.threat.indicator.url.original = Some("http://evil.example/x.exe".into());
    let mut email = document("e", Some(1), "ignored", None);
    email.threat.indicator.ip = None;
    email.threat.indicator.name = None;
    email.threat.indicator.email.address = Some("bad@evil.example".into());
    let mut hash = document("h", Some(1), "ignored", None);
    hash.threat.indicator.ip = None;
    hash.threat.indicator.name = None;
    hash.threat.indicator.file.hash.sha256 = Some("AB".repeat(32));
    let ip = document("i", Some(1), "2001:db8::1", None);
    store
        .apply(DATASET, vec![domain, url, email, hash, ip], now)
        .await
        .unwrap();

    let ids =
        |found: Vec<crate::LiveDocument>| found.into_iter().map(|d| d.key.id).collect::<Vec<_>>();
    assert_eq!(ids(store.find("evil.example", now).await.unwrap()), ["d"]);
    assert_eq!(
        ids(store.find("http://evil.example/x.exe", now).await.unwrap()),
        ["u"]
    );
    assert_eq!(
        ids(store.find("BAD@evil.example", now).await.unwrap()),
        ["e"]
    );
    assert_eq!(ids(store.find(&"ab".repeat(32), now).await.unwrap()), ["h"]);
    assert_eq!(ids(store.find("2001:DB8:0::1", now).await.unwrap()), ["i"]);
    assert!(store.find("198.51.100.1", now).await.unwrap().is_empty());

    assert!(store.remove(&key("d")).await.unwrap());
    assert!(!store.remove(&key("d")).await.unwrap());
    assert!(store.find("evil.example", now).await.unwrap().is_empty());
}

/// Documents without an id cannot be latest; they are counted, not stored.
pub async fn documents_without_id_are_not_live<S: LatestStore>(store: S) {
    let now = at("2026-12-01T00:00:00Z");
    let mut no_id = document("x", None, "203.0.113.5", None);
    no_id.anomali.threatstream.id = None;
    let report = store.apply(DATASET, vec![no_id], now).await.unwrap();
    assert_eq!(report.without_id, 1);
    assert_eq!(store.count().await.unwrap(), 0);
}

/// One `#[tokio::test]` per check of the suite, each with a store from `$make` (an async block
/// or function returning a fresh store).
#[macro_export]
macro_rules! latest_store_suite {
    ($make:expr) => {
        $crate::latest_store_suite!(@tests $make,
            active_indicator_is_live,
            newer_update_id_wins_and_late_older_versions_are_ignored,
            equal_or_missing_update_id_falls_back_to_arrival,
            deleted_indicator_is_removed_and_never_live,
            expiry_after_a_minute,
            one_live_document_per_key,
            intelligence_indicators_are_their_own_stream,
            lookups_by_each_value_type,
            documents_without_id_are_not_live,
        );
    };
    (@tests $make:expr, $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::testsuite::$check($make().await).await;
            }
        )+
    };
}
