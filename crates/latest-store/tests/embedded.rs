//! The embedded backend: the shared behaviour suite, plus what only it promises (restart).

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use anomali_latest_store::{EmbeddedOptions, EmbeddedStore, IndicatorKey, LatestStore};

/// A store in a fresh folder that lives as long as the test process.
async fn fresh_store() -> EmbeddedStore {
    let dir = tempfile::tempdir().unwrap().keep();
    EmbeddedStore::open(&dir, EmbeddedOptions::default()).unwrap()
}

anomali_latest_store::latest_store_suite!(fresh_store);

#[tokio::test]
async fn restart_keeps_live_documents_and_the_source_archive() {
    let dir = tempfile::tempdir().unwrap();
    let now = "2026-12-01T00:00:00Z".parse().unwrap();
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let mut document = anomali_model::EcsDocument::default();
        document.anomali.threatstream.id = Some("42".into());
        document.threat.indicator.ip = Some("203.0.113.42".into());
        store
            .apply("ti_anomali.threatstream", vec![document], now)
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    let key = IndicatorKey {
        dataset: "ti_anomali.threatstream".into(),
        id: "42".into(),
    };
    assert!(store.get(&key, now).await.unwrap().is_some());
    let source =
        std::fs::read_to_string(dir.path().join("source/source-2026-12-01.ndjson")).unwrap();
    assert_eq!(source.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(source.trim_end()).unwrap();
    assert_eq!(line["labels"]["is_ioc_transform_source"], "true");
}

#[tokio::test]
async fn a_wave_of_expiries_larger_than_one_sweep_chunk_is_removed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let now: chrono::DateTime<chrono::Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    let expires = anomali_model::Timestamp::parse_normalised("2026-12-01T00:01:00.000Z");
    let documents: Vec<_> = (0..5_000)
        .map(|i| {
            let mut document = anomali_model::EcsDocument::default();
            document.anomali.threatstream.id = Some(i.to_string());
            document.anomali.threatstream.deleted_at = if i % 5 == 0 { None } else { expires };
            document
        })
        .collect();
    store
        .apply("ti_anomali.threatstream", documents, now)
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 5_000);
    let later = now + chrono::TimeDelta::minutes(2);
    assert_eq!(store.sweep_expired(later).await.unwrap(), 4_000);
    assert_eq!(store.count().await.unwrap(), 1_000);
}
