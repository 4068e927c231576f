//! The request of one poll and the parsing of its answer, as pure functions.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::config::PollConfig;

/// The query parameters of the next request, in a fixed order: `order_by=update_id`, the lag
/// guard `modified_ts__lt=now-1m`, then `update_id__gt=<cursor>` once there is a cursor or
/// `modified_ts__gt=now-initial_interval` before, `limit`, `remote_api=true` when enabled, and
/// `q` when set.
pub fn page_query(
    config: &PollConfig,
    cursor: Option<u64>,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let format = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut query = vec![
        ("order_by".to_owned(), "update_id".to_owned()),
        (
            "modified_ts__lt".to_owned(),
            format(now - chrono::Duration::minutes(1)),
        ),
    ];
    match cursor {
        Some(update_id) => query.push(("update_id__gt".to_owned(), update_id.to_string())),
        None => {
            // validate() bounds initial_interval; the checks keep an unvalidated one from
            // panicking.
            let since = chrono::Duration::from_std(config.duration(&config.initial_interval))
                .ok()
                .and_then(|window| now.checked_sub_signed(window))
                .unwrap_or(now - chrono::Duration::hours(24));
            query.push(("modified_ts__gt".to_owned(), format(since)));
        }
    }
    query.push(("limit".to_owned(), config.page_size.to_string()));
    if config.remote_api {
        query.push(("remote_api".to_owned(), "true".to_owned()));
    }
    if let Some(q) = config.query.as_deref().filter(|q| !q.trim().is_empty()) {
        query.push(("q".to_owned(), q.to_owned()));
    }
    query
}

/// One page of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The objects, in the API's order.
    pub objects: Vec<Map<String, Value>>,
    /// Whether `meta.next` says there is more.
    pub more: bool,
    /// The `update_id` of the last object (the next cursor), when the page has objects.
    pub last_update_id: Option<u64>,
}

/// Parses a 200 answer; a malformed one is refused whole with the position of the fault.
pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let value: Value = serde_json::from_slice(body)
        // serde_json's message ends with the position ("... at line 1 column 9").
        .map_err(|e| e.to_string())?;
    let objects = match value.get("objects") {
        Some(Value::Array(objects)) => objects,
        Some(_) => return Err("`objects` is not a list".to_owned()),
        None => return Err("the answer has no `objects`".to_owned()),
    };
    let mut parsed = Vec::with_capacity(objects.len());
    let mut last_update_id = None;
    for (n, object) in objects.iter().enumerate() {
        let Value::Object(object) = object else {
            return Err(format!("objects[{n}] is not an object"));
        };
        let update_id = match object.get("update_id") {
            Some(Value::Number(number)) => number.as_u64(),
            Some(Value::String(text)) => text.trim().parse().ok(),
            _ => None,
        };
        let Some(update_id) = update_id else {
            return Err(format!("objects[{n}] has no numeric update_id"));
        };
        // Ordered by update_id: a step back means a broken page, not data to apply.
        if last_update_id.is_some_and(|last| update_id < last) {
            return Err(format!(
                "objects[{n}]: update_id {update_id} goes backwards"
            ));
        }
        last_update_id = Some(update_id);
        parsed.push(object.clone());
    }
    let more = !value
        .get("meta")
        .and_then(|m| m.get("next"))
        .is_none_or(Value::is_null);
    Ok(Page {
        objects: parsed,
        more,
        last_update_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PollConfig {
        PollConfig {
            username: "u".into(),
            api_key: "k".into(),
            page_size: 500,
            ..PollConfig::default()
        }
    }

    #[test]
    fn the_first_poll_reaches_back_the_initial_interval_then_follows_the_cursor() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let first = page_query(&config(), None, now);
        assert_eq!(
            first,
            vec![
                ("order_by".into(), "update_id".into()),
                ("modified_ts__lt".into(), "2026-12-03T11:59:00Z".into()),
                ("modified_ts__gt".into(), "2026-12-02T12:00:00Z".into()),
                ("limit".into(), "500".into()),
            ]
        );
        let mut with_options = config();
        with_options.remote_api = true;
        with_options.query = Some("confidence>50".into());
        let next = page_query(&with_options, Some(77), now);
        assert_eq!(next[2], ("update_id__gt".into(), "77".into()));
        assert!(next.contains(&("remote_api".into(), "true".into())));
        assert!(next.contains(&("q".into(), "confidence>50".into())));
        assert!(!next.iter().any(|(k, _)| k == "modified_ts__gt"));
    }

    #[test]
    fn pages_parse_and_malformed_ones_are_refused_whole() {
        let page = parse_page(br#"{"meta":{"next":"/api/v2/intelligence/?offset=2"},"objects":[{"update_id":5},{"update_id":"7"}]}"#)
            .expect("a page");
        assert!(page.more);
        assert_eq!(page.last_update_id, Some(7));
        let last = parse_page(br#"{"meta":{"next":null},"objects":[]}"#).expect("a page");
        assert!(!last.more);
        assert_eq!(last.last_update_id, None);
        assert!(
            parse_page(b"{\"objects\": [")
                .unwrap_err()
                .ends_with("at line 1 column 13")
        );
        assert!(
            parse_page(br#"{"objects":[{"update_id":5},{"id":1}]}"#)
                .unwrap_err()
                .contains("objects[1]")
        );
        assert!(
            parse_page(br#"{"objects":[{"update_id":9},{"update_id":5}]}"#)
                .unwrap_err()
                .contains("backwards")
        );
        assert!(parse_page(br#"{"objects":{}}"#).is_err());
    }
}
