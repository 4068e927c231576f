//! `kill -9` of `ti-anomali serve` in the middle of polling the Intelligence API, with the real
//! binary and its real embedded store: the cursor on disk never runs ahead of what the store
//! holds, the restart asks right after it, and in the end every one of the API's 1,000
//! indicators is live exactly once: none skipped, none twice.
//!
//! The fake API (written here from the documented request and answer shapes) holds 1,000
//! `mal_ip` objects with update ids 1 to 1000, answers `update_id__gt` and `limit` as the real
//! one does, and can hold a request back: that is how the test kills the service while it waits
//! for a page, and keeps each restarted service from applying anything while the test looks at
//! what the kill left in the store. Then it kills the service at growing delays after handing
//! it one page, so kills land before the store's commit, between the commit and the cursor's
//! write, and after; a last run puts the cursor back, as a kill in that window leaves it, to
//! check that pages applied twice replace the live documents instead of adding to them.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]
#![allow(clippy::print_stderr, reason = "the test reports what each kill left")]

mod serve_harness;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anomali_latest_store::{EmbeddedOptions, EmbeddedStore, IndicatorKey, LatestStore};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use serve_harness::{
    ApiRequest, FakeIntelligenceApi, Service, blocking_client, free_port, get_json,
};

/// Objects in the fake API: update ids 1 to `OBJECTS`.
const OBJECTS: u64 = 1000;
/// The `page_size` configured.
const PAGE: u64 = 100;
/// The longest wait for anything the service does.
const WAIT: Duration = Duration::from_secs(60);
const DATASET: &str = "ti_anomali.intelligence";

/// The ThreatStream id of the object with `update_id` (distinct from the update id).
fn object_id(update_id: u64) -> u64 {
    500_000 + update_id
}

/// The distinct IP of the object with `update_id`.
fn object_ip(update_id: u64) -> String {
    format!("10.77.{}.{}", update_id / 256, update_id % 256)
}

/// The answer to `GET /api/v2/intelligence/?update_id__gt=<after>&limit=<limit>`: the next
/// objects in `update_id` order, and `meta.next` while more remain.
fn page_after(after: u64, limit: u64, now: DateTime<Utc>) -> String {
    let last = after.saturating_add(limit).min(OBJECTS);
    let objects: Vec<Value> = (after.saturating_add(1)..=last)
        .map(|update_id| {
            json!({
                "id": object_id(update_id),
                "update_id": update_id,
                "itype": "mal_ip",
                "type": "ip",
                "value": object_ip(update_id),
                "ip": object_ip(update_id),
                "confidence": 70,
                "source": "crash-test",
                "created_ts": (now - chrono::Duration::hours(3)).to_rfc3339(),
                "modified_ts": (now - chrono::Duration::hours(2)).to_rfc3339(),
            })
        })
        .collect();
    let next = if last < OBJECTS {
        json!(format!(
            "/api/v2/intelligence/?order_by=update_id&limit={limit}&update_id__gt={last}"
        ))
    } else {
        Value::Null
    };
    json!({
        "meta": {"next": next, "limit": limit, "total_count": OBJECTS - after.min(OBJECTS)},
        "objects": objects,
    })
    .to_string()
}

/// The cursor a request asks after (`update_id__gt`), if any.
fn asked_after(request: &ApiRequest) -> Option<u64> {
    request
        .query
        .get("update_id__gt")
        .map(|c| c.parse().unwrap())
}

/// Which requests the fake API holds back before answering.
#[derive(Debug, Default)]
struct Hold {
    /// Requests asking after this cursor or beyond (no cursor counts as 0) wait...
    from_cursor: Option<u64>,
    /// ...unless they are among the first `released_before` requests.
    released_before: usize,
    /// The index of the request waiting now.
    waiting: Option<usize>,
}

type Gate = Arc<(Mutex<Hold>, Condvar)>;

/// Lets every held request go when dropped, so a failed assertion does not leave the fake
/// API's thread waiting out its hold.
struct ReleaseOnDrop(Gate);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        set_hold(&self.0, None, 0);
    }
}

fn set_hold(gate: &Gate, from_cursor: Option<u64>, released_before: usize) {
    let (lock, wake) = &**gate;
    let mut hold = lock.lock().unwrap();
    hold.from_cursor = from_cursor;
    hold.released_before = released_before;
    wake.notify_all();
}

/// The fake API's answer function: holds a request while the gate says so (20 s at most,
/// less than the poller's 30 s request timeout), then answers it.
fn answer(gate: Gate) -> impl FnMut(&ApiRequest) -> String + Send + 'static {
    let mut index = 0;
    move |request| {
        let this = index;
        index += 1;
        let after = asked_after(request).unwrap_or(0);
        let limit = request
            .query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(1000);
        let (lock, wake) = &*gate;
        let mut hold = lock.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while hold.from_cursor.is_some_and(|from| after >= from)
            && this >= hold.released_before
            && Instant::now() < deadline
        {
            hold.waiting = Some(this);
            hold = wake
                .wait_timeout(hold, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        hold.waiting = None;
        drop(hold);
        page_after(after, limit, Utc::now())
    }
}

/// Polls `check` every 2 ms until it gives a value, at most [`WAIT`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The index of the request the fake API holds back, once it holds one at `from` or later.
fn wait_until_held(gate: &Gate, from: usize, what: &str) -> usize {
    wait_for(what, || {
        gate.0.lock().unwrap().waiting.filter(|i| *i >= from)
    })
}

fn read_cursor(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: Value = serde_json::from_str(&text).unwrap();
    Some(value["last_update_id"].as_u64().unwrap())
}

fn timestamp(request: &ApiRequest, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&request.query[key])
        .unwrap_or_else(|e| panic!("{key} of {request:?}: {e}"))
        .with_timezone(&Utc)
}

fn query_keys(request: &ApiRequest) -> Vec<&str> {
    request.query.keys().map(String::as_str).collect()
}

/// Checks every request of one run: the endpoint and credentials, `order_by` and `limit`;
/// the first asks after `cursor` (or, with none, reaches back `initial_interval` by
/// `modified_ts__gt`); each next one asks right after the page before it ended, and once the
/// last page came, after the last object. So no page is skipped and none asked twice.
fn check_run(requests: &[ApiRequest], cursor: Option<u64>) {
    assert!(!requests.is_empty(), "a run without requests");
    let mut expected = cursor;
    for (n, request) in requests.iter().enumerate() {
        assert_eq!(request.path, "/api/v2/intelligence/", "{request:?}");
        assert_eq!(request.authorization, "apikey analyst:k-123", "{request:?}");
        assert_eq!(request.query["order_by"], "update_id", "{request:?}");
        assert_eq!(request.query["limit"], PAGE.to_string(), "{request:?}");
        assert!(request.query.contains_key("modified_ts__lt"), "{request:?}");
        assert_eq!(
            asked_after(request),
            expected,
            "request {n} of the run: {requests:#?}"
        );
        // Only a request with no cursor reaches back in time.
        assert_eq!(
            request.query.contains_key("modified_ts__gt"),
            expected.is_none(),
            "{request:?}"
        );
        expected = Some(expected.unwrap_or(0).saturating_add(PAGE).min(OBJECTS));
    }
}

/// Asks the running service for every indicator with an update id in `update_ids`: each must
/// be found exactly once, as the right object.
fn assert_each_live_once(
    client: &reqwest::blocking::Client,
    service: &Service,
    update_ids: impl IntoIterator<Item = u64>,
) {
    for update_id in update_ids {
        let ip = object_ip(update_id);
        let (status, found) = get_json(client, &service.url(&format!("/_ti/lookup?value={ip}")));
        assert_eq!(status, reqwest::StatusCode::OK, "{ip}: {found}");
        let found = found.as_array().unwrap();
        assert_eq!(found.len(), 1, "{ip} must be live exactly once: {found:?}");
        let threatstream = &found[0]["anomali"]["threatstream"];
        assert_eq!(
            threatstream["id"],
            object_id(update_id).to_string(),
            "{found:?}"
        );
        assert_eq!(
            threatstream["update_id"],
            update_id.to_string(),
            "{found:?}"
        );
        assert_eq!(found[0]["event"]["dataset"], DATASET, "{found:?}");
    }
}

/// How many indicators the running service holds.
fn live(client: &reqwest::blocking::Client, service: &Service) -> u64 {
    let (status, health) = get_json(client, &service.url("/_ti/health"));
    assert_eq!(status, reqwest::StatusCode::OK, "{health}");
    health["live_indicators"].as_u64().unwrap()
}

/// Whether the running service holds the indicator with `update_id`.
fn is_live(client: &reqwest::blocking::Client, service: &Service, update_id: u64) -> bool {
    let ip = object_ip(update_id);
    let (_, found) = get_json(client, &service.url(&format!("/_ti/lookup?value={ip}")));
    !found.as_array().unwrap().is_empty()
}

/// With the restarted service's first request held back (nothing polled applied yet), checks
/// what the kill left: every object up to the cursor on disk is live once, and beyond it at
/// most the one page that was applied when the kill came before the cursor was written.
/// Returns how many objects beyond the cursor are live (0 or a page).
fn check_what_the_kill_left(
    client: &reqwest::blocking::Client,
    service: &Service,
    cursor: u64,
) -> u64 {
    assert_each_live_once(client, service, 1..=cursor);
    let live = live(client, service);
    let beyond = live
        .checked_sub(cursor)
        .unwrap_or_else(|| panic!("live {live}, cursor {cursor}"));
    let next_page = cursor + 1..=(cursor + PAGE).min(OBJECTS);
    if beyond == 0 {
        assert!(
            next_page.clone().all(|u| !is_live(client, service, u)),
            "live {live}, cursor {cursor}"
        );
    } else {
        // The store applies a page in one transaction: all of it or none.
        assert_eq!(
            beyond,
            next_page.clone().count() as u64,
            "live {live}, cursor {cursor}"
        );
        assert_each_live_once(client, service, next_page);
    }
    beyond
}

/// Where one kill came, as the next start found it.
#[derive(Debug)]
struct Kill {
    /// After the page was handed over.
    delay: Duration,
    /// The cursor before the page.
    before: u64,
    /// The cursor on disk after the kill.
    after: u64,
    /// Indicators beyond `after` in the store (a page applied whose cursor was not written).
    beyond: u64,
}

/// Restarts the service with its first request held back, and checks that request (right
/// after `cursor`, no time window) and what the kill left in the store. Returns the service,
/// the index of its first request, and how many indicators the store holds beyond the cursor.
fn restart_and_check(
    api: &FakeIntelligenceApi,
    gate: &Gate,
    data: &Path,
    yaml: &str,
    cursor: u64,
) -> (Service, usize, u64) {
    let boundary = api.requests().len();
    set_hold(gate, Some(0), boundary);
    let service = Service::start(data, free_port(), yaml);
    let held = wait_until_held(gate, boundary, "the restart's first request");
    assert_eq!(held, boundary, "{:#?}", api.requests());
    let first = api.requests()[held].clone();
    assert_eq!(
        query_keys(&first),
        ["limit", "modified_ts__lt", "order_by", "update_id__gt"],
        "{first:?}"
    );
    assert_eq!(
        first.query["update_id__gt"],
        cursor.to_string(),
        "{first:?}"
    );
    let beyond = check_what_the_kill_left(&blocking_client(), &service, cursor);
    (service, boundary, beyond)
}

#[test]
fn kill_9_while_polling_the_intelligence_api_skips_and_duplicates_nothing() {
    let started = Instant::now();
    let gate: Gate = Arc::default();
    let api = FakeIntelligenceApi::start(answer(gate.clone()));
    let _release = ReleaseOnDrop(gate.clone());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cursor_file = data.join("intelligence-cursor.json");
    let yaml = format!(
        "intelligence:\n  url: {}\n  username: analyst\n  api_key: k-123\n  interval: 1s\n  page_size: {PAGE}\n",
        api.url()
    );
    let client = blocking_client();

    // Run 1, a fresh data folder: the 4th page (after cursor 300) is held back, and the
    // service is killed while it waits for it.
    set_hold(&gate, Some(300), 0);
    let service = Service::start(&data, free_port(), &yaml);
    let held = wait_until_held(&gate, 0, "the 4th request");
    let asked_at = Utc::now();
    service.kill_9();
    let run_1 = api.requests();
    assert_eq!(held, 3, "{run_1:#?}");
    assert_eq!(run_1.len(), 4, "{run_1:#?}");
    check_run(&run_1, None);
    // The first request of a fresh run, exactly: the lag guard and the initial window (24 h by
    // default), no cursor.
    let first = &run_1[0];
    assert_eq!(
        query_keys(first),
        ["limit", "modified_ts__gt", "modified_ts__lt", "order_by"],
        "{first:?}"
    );
    let lag = asked_at - timestamp(first, "modified_ts__lt");
    assert!(
        lag >= chrono::Duration::seconds(60) && lag <= chrono::Duration::seconds(120),
        "modified_ts__lt is a minute before now: {first:?}"
    );
    let window = timestamp(first, "modified_ts__lt") - timestamp(first, "modified_ts__gt");
    assert_eq!(
        window,
        chrono::Duration::hours(24) - chrono::Duration::minutes(1),
        "{first:?}"
    );
    assert_eq!(
        read_cursor(&cursor_file),
        Some(300),
        "three pages applied before the kill"
    );
    // How long the service takes from a page handed over to its next request (mapping, the
    // store's commit, the cursor's write): the kills below come within that time.
    let mut gaps: Vec<Duration> = run_1
        .windows(2)
        .map(|pair| pair[1].received - pair[0].answered.unwrap())
        .collect();
    gaps.sort();
    let gap = gaps[gaps.len() / 2];

    // Runs 2 to 10: restart (the first request held back while the test checks what the kill
    // left), let one page through, and kill at a growing share of `gap` after handing it over:
    // before the page is applied, between the store's commit and the cursor's write, or after.
    let mut cursor = 300;
    let mut kills: Vec<Kill> = Vec::new();
    // Most of `gap` goes to reading and mapping; the commit and the cursor come at its end.
    for percent in [25, 50, 65, 75, 82, 88, 94, 100, 110] {
        if cursor + PAGE >= OBJECTS {
            break;
        }
        let (service, boundary, beyond) = restart_and_check(&api, &gate, &data, &yaml, cursor);
        match kills.last_mut() {
            Some(kill) => kill.beyond = beyond,
            None => assert_eq!(
                beyond, 0,
                "killed waiting for a page: nothing beyond the cursor"
            ),
        }
        let page_end = (cursor + PAGE).min(OBJECTS);
        set_hold(&gate, Some(page_end), boundary);
        let answered = wait_for("the page handed over", || api.requests()[boundary].answered);
        let delay = gap * percent / 100;
        std::thread::sleep((answered + delay).saturating_duration_since(Instant::now()));
        service.kill_9();
        // A request the dead process had sent is recorded within a few ms: let it land before
        // the next restart's boundary.
        std::thread::sleep(Duration::from_millis(300));
        check_run(&api.requests()[boundary..], Some(cursor));
        let after = read_cursor(&cursor_file).unwrap();
        assert!(
            after == cursor || after == page_end,
            "the cursor was {cursor}, one page handed over; now {after}"
        );
        kills.push(Kill {
            delay,
            before: cursor,
            after,
            beyond: 0,
        });
        cursor = after;
    }

    // Then a restart goes on to the end.
    let (service, boundary, beyond) = restart_and_check(&api, &gate, &data, &yaml, cursor);
    if let Some(kill) = kills.last_mut() {
        kill.beyond = beyond;
    }
    set_hold(&gate, None, boundary);
    wait_for("the cursor at 1000", || {
        (read_cursor(&cursor_file) == Some(OBJECTS)).then_some(())
    });
    // The poll after the last page asks after 1000 and gets nothing.
    wait_for("a poll after the last object", || {
        api.requests()[boundary..]
            .iter()
            .any(|r| asked_after(r) == Some(OBJECTS) && r.answered.is_some())
            .then_some(())
    });
    assert_eq!(live(&client, &service), OBJECTS);
    assert_each_live_once(&client, &service, 1..=OBJECTS);
    service.stop();
    check_run(&api.requests()[boundary..], Some(cursor));

    // Last run: the cursor as a kill between the store's commit and the cursor's rename leaves it
    // (the write is atomic: the old value), whether or not a kill above came there: the pages
    // after 500 come again, and replace the live documents instead of adding to them.
    std::fs::write(&cursor_file, "{\"last_update_id\":500}").unwrap();
    let boundary = api.requests().len();
    let service = Service::start(&data, free_port(), &yaml);
    wait_for("the cursor back at 1000", || {
        (read_cursor(&cursor_file) == Some(OBJECTS)).then_some(())
    });
    assert_eq!(live(&client, &service), OBJECTS);
    assert_each_live_once(&client, &service, 1..=OBJECTS);
    service.stop();
    check_run(&api.requests()[boundary..], Some(500));

    // The store file itself, with the service gone: exactly the 1,000 keys.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (count, keys) = runtime.block_on(async {
        let store = EmbeddedStore::open(&data, EmbeddedOptions::default()).unwrap();
        (store.count().await.unwrap(), store.keys().await.unwrap())
    });
    assert_eq!(count, OBJECTS);
    let expected: BTreeSet<IndicatorKey> = (1..=OBJECTS)
        .map(|update_id| IndicatorKey {
            dataset: DATASET.to_owned(),
            id: object_id(update_id).to_string(),
        })
        .collect();
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), expected);

    for kill in &kills {
        let when = match (kill.after == kill.before, kill.beyond) {
            (true, 0) => "before the store's commit",
            (true, _) => "between the store's commit and the cursor's write",
            (false, _) => "after the cursor's write",
        };
        eprintln!(
            "kill {:?} after a page was handed over (cursor {} -> {}): {when}",
            kill.delay, kill.before, kill.after
        );
    }
    eprintln!(
        "page gap {gap:?}; {} requests; the test took {:?}",
        api.requests().len(),
        started.elapsed()
    );
}
