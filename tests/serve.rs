//! `ti-anomali serve` as a user runs it: the real binary on a loopback port, a real HTTP client,
//! the store on disk. Includes the crash test: `kill -9` in the middle of pushes, five times,
//! and every indicator that was answered 200 must be live after the restart.

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

mod serve_harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anomali_agent_input::sign_sha256_hex;
use anomali_latest_store::{EmbeddedOptions, EmbeddedStore, IndicatorKey, LatestStore};
use serde_json::Value;
use serve_harness::{
    FakeIntelligenceApi, KEY, Service, blocking_client, free_port, get_json, push,
};

fn shared_dir() -> PathBuf {
    std::env::var_os("TI_ANOMALI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

#[test]
fn the_extension_sample_log_with_and_without_the_expiry_rule() {
    let log =
        std::fs::read(shared_dir().join("conformance/ti_anomali/test-threatstream-ndjson.log"))
            .expect("../shared must sit beside the repository");
    let client = blocking_client();

    // The integration's default, 90d from added_at: the 2020 data is expired on arrival.
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(&dir.path().join("default"), free_port(), "");
    assert_eq!(
        push(&client, &service.url("/"), &log),
        reqwest::StatusCode::OK
    );
    let (_, health) = get_json(&client, &service.url("/_ti/health"));
    assert_eq!(health["live_indicators"], 0, "{health}");
    let (_, metrics) = (
        0,
        client
            .get(service.url("/_ti/metrics"))
            .header(
                "X-Filebeat-Signature",
                format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b"")),
            )
            .send()
            .unwrap()
            .text()
            .unwrap(),
    );
    assert!(
        metrics.contains("ti_indicators_mapped_total 100\n"),
        "{metrics}"
    );
    service.stop();

    // The expiry rule disabled: 97 live, and the 3 carrying deleted_at are not.
    let service = Service::start(
        &dir.path().join("no-expiry"),
        free_port(),
        "  ioc_expiration_duration: \"\"\n",
    );
    assert_eq!(
        push(&client, &service.url("/"), &log),
        reqwest::StatusCode::OK
    );
    let (_, health) = get_json(&client, &service.url("/_ti/health"));
    assert_eq!(health["live_indicators"], 97, "{health}");
    let (status, found) = get_json(&client, &service.url("/_ti/lookup?value=89.160.20.156"));
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(!found.as_array().unwrap().is_empty(), "{found}");
    assert_eq!(found[0]["labels"]["is_ioc_transform_source"], "false");
    let (status, none) = get_json(&client, &service.url("/_ti/lookup?value=192.168.113.116"));
    assert_eq!(
        (status, none),
        (reqwest::StatusCode::OK, serde_json::json!([])),
        "deleted indicator"
    );
    let unsigned = client
        .get(service.url("/_ti/lookup?value=89.160.20.156"))
        .send()
        .unwrap();
    assert_eq!(unsigned.status(), reqwest::StatusCode::UNAUTHORIZED);

    // `lookup` on the command line asks the running service, which holds the store file.
    let config = dir.path().join("no-expiry.yml");
    let output = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(["lookup", "89.160.20.156", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, found);
    service.stop();

    // Restart keeps everything; lookup then reads the file itself.
    let service = Service::start(
        &dir.path().join("no-expiry"),
        free_port(),
        "  ioc_expiration_duration: \"\"\n",
    );
    let (_, health) = get_json(&client, &service.url("/_ti/health"));
    assert_eq!(health["live_indicators"], 97, "{health}");
    service.stop();
    let output = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(["lookup", "89.160.20.156", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&output.stdout).unwrap(),
        found
    );
}

/// Indicators with unique ids and IPs, added now, so nothing expires during the test.
fn batch(round: usize, number: usize, size: usize) -> (Vec<String>, Vec<u8>) {
    let mut ids = Vec::new();
    let mut body = String::new();
    for index in 0..size {
        let id = format!("{round}{number:05}{index:04}");
        body.push_str(&format!(
            "{{\"id\":{id},\"update_id\":1,\"itype\":\"mal_ip\",\"srcip\":\"10.{}.{}.{}\",\"added_at\":\"2026-12-01T00:00:00\"}}\n",
            round, number % 256, index % 256
        ));
        ids.push(id);
    }
    (ids, body.into_bytes())
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_indicator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("crash");
    let client = blocking_client();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut refused = 0;
    for round in 1..=5 {
        let service = Service::start(&data, free_port(), "  ioc_expiration_duration: 3650d\n");
        let url = service.url("/");
        // Push from a thread while the main thread kills the service after a while.
        let pusher = std::thread::spawn(move || {
            let client = blocking_client();
            let mut acked = Vec::new();
            let mut refused = 0;
            for number in 0..100_000 {
                let (ids, body) = batch(round, number, 50);
                match push(&client, &url, &body) {
                    reqwest::StatusCode::OK => acked.extend(ids),
                    _ => {
                        refused += 1;
                        if refused > 3 {
                            break;
                        }
                    }
                }
            }
            (acked, refused)
        });
        std::thread::sleep(Duration::from_millis(400 + 150 * round as u64));
        service.kill_9();
        let (acked, round_refused) = pusher.join().unwrap();
        assert!(
            !acked.is_empty(),
            "round {round}: some pushes were answered before the kill"
        );
        acknowledged.extend(acked);
        refused += round_refused;
    }
    // Every indicator answered 200 is live after the restarts.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let missing = runtime.block_on(async {
        let store = EmbeddedStore::open(&data, EmbeddedOptions::default()).unwrap();
        let now = "2026-12-02T00:00:00Z".parse().unwrap();
        let mut missing = 0;
        for id in &acknowledged {
            let key = IndicatorKey {
                dataset: "ti_anomali.threatstream".into(),
                id: id.clone(),
            };
            if store.get(&key, now).await.unwrap().is_none() {
                missing += 1;
            }
        }
        missing
    });
    let _ = client;
    eprintln!(
        "kill -9 x5: {} indicators acknowledged, {missing} missing, {refused} pushes refused around the kills",
        acknowledged.len()
    );
    assert_eq!(missing, 0, "indicators answered 200 but lost");
}

#[test]
fn with_elasticsearch_unreachable_pushes_are_spooled_and_reads_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let closed = free_port();
    let service = Service::start(
        &dir.path().join("data"),
        port,
        &format!("es_url: http://127.0.0.1:{closed}\n"),
    );
    let client = blocking_client();
    let body = b"{\"id\": 1, \"update_id\": 1, \"itype\": \"mal_ip\", \"srcip\": \"10.5.5.5\"}\n";
    assert_eq!(
        push(&client, &service.url("/"), body),
        reqwest::StatusCode::OK
    );
    let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b""));
    let response = client
        .get(service.url("/_ti/lookup?value=10.5.5.5"))
        .header("X-Filebeat-Signature", signature)
        .send()
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let (_, metrics) = {
        let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b""));
        let text = client
            .get(service.url("/_ti/metrics"))
            .header("X-Filebeat-Signature", signature)
            .send()
            .unwrap()
            .text()
            .unwrap();
        ((), text)
    };
    assert!(metrics.contains("ti_es_spool_entries 1"), "{metrics}");
    assert!(metrics.contains("ti_es_connected 0"), "{metrics}");
    service.stop();
}

#[test]
fn serve_polls_the_intelligence_api_into_the_embedded_store() {
    let page = serde_json::json!({"meta": {"next": null}, "objects": [
        {"id": 501, "update_id": 9001, "itype": "mal_ip", "value": "198.51.100.23", "ip": "198.51.100.23",
         "confidence": 80, "tlp": "amber", "created_ts": "2026-11-01T00:00:00Z", "modified_ts": "2026-11-30T00:00:00Z"},
        {"id": 502, "update_id": 9002, "itype": "mal_domain", "value": "bad.example.net",
         "confidence": 20, "created_ts": "2026-11-01T00:00:00Z", "modified_ts": "2026-11-30T00:00:00Z"}
    ]})
    .to_string();
    let api = FakeIntelligenceApi::start(move |_| page.clone());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let service = Service::start(
        &data,
        port,
        &format!(
            "intelligence:\n  url: {}\n  username: analyst\n  api_key: k-123\n  interval: 1s\n  preserve_original_event: true\n  tags: [ti-intel]\n",
            api.url()
        ),
    );
    let client = blocking_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let (status, found) = get_json(&client, &service.url("/_ti/lookup?value=198.51.100.23"));
        if status == reqwest::StatusCode::OK && found.as_array().is_some_and(|a| !a.is_empty()) {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the polled indicator never showed: {found}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found[0]["event"]["dataset"], "ti_anomali.intelligence");
    assert!(
        found[0]["event"]["original"]
            .as_str()
            .is_some_and(|o| o.contains("198.51.100.23")),
        "{found}"
    );
    assert!(
        found[0]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "ti-intel")),
        "{found}"
    );
    assert_eq!(found[0]["threat"]["indicator"]["name"], "198.51.100.23");
    assert!(
        found[0]["anomali"]["threatstream"]["deletion_scheduled_at"].is_string(),
        "{found}"
    );
    let (_, domain) = get_json(&client, &service.url("/_ti/lookup?value=bad.example.net"));
    assert_eq!(domain.as_array().map(Vec::len), Some(1), "{domain}");
    let metrics = client
        .get(service.url("/_ti/metrics"))
        .header(
            "X-Filebeat-Signature",
            format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b"")),
        )
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("ti_intelligence_objects_total 2\n")
            && metrics.contains("ti_pipeline_healthy 1\n"),
        "{metrics}"
    );
    // The second poll asked after the cursor.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !api
        .requests()
        .iter()
        .any(|r| r.query.get("update_id__gt").is_some_and(|c| c == "9002"))
    {
        assert!(Instant::now() < deadline, "{:?}", api.requests());
        std::thread::sleep(Duration::from_millis(100));
    }
    service.stop();
    assert_eq!(
        std::fs::read_to_string(data.join("intelligence-cursor.json")).unwrap(),
        "{\"last_update_id\":9002}"
    );
}

/// `webhook.enabled: false` with an `intelligence` section polls alone: nothing listens, the
/// polled indicators reach the store, and `lookup` finds them after the stop. A configuration
/// with neither source is refused with a message that says so.
#[test]
fn polling_alone_needs_no_listener_and_a_config_with_neither_source_is_refused() {
    let page = serde_json::json!({"meta": {"next": null}, "objects": [
        {"id": 601, "update_id": 9101, "itype": "mal_ip", "value": "198.51.100.61", "ip": "198.51.100.61",
         "confidence": 80, "created_ts": "2026-11-01T00:00:00Z", "modified_ts": "2026-11-30T00:00:00Z"},
        {"id": 602, "update_id": 9102, "itype": "c2_domain", "value": "alone.example.net",
         "confidence": 60, "created_ts": "2026-11-01T00:00:00Z", "modified_ts": "2026-11-30T00:00:00Z"}
    ]})
    .to_string();
    let empty = serde_json::json!({"meta": {"next": null}, "objects": []}).to_string();
    let api = FakeIntelligenceApi::start(move |request| {
        if request.query.contains_key("update_id__gt") {
            empty.clone()
        } else {
            page.clone()
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let config = dir.path().join("poll-only.yml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\nwebhook:\n  enabled: false\n  listen_address: 127.0.0.1\n  listen_port: {port}\nintelligence:\n  url: {}\n  username: analyst\n  api_key: k-123\n  interval: 1s\n",
            data.display(),
            api.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cursor = data.join("intelligence-cursor.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&cursor).ok().as_deref() != Some("{\"last_update_id\":9102}") {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the page was not applied within 20 s: {:?}", api.requests());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens with the webhook off"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let lookup = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(["lookup", "alone.example.net", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(lookup.status.success(), "{lookup:?}");
    let found: Value = serde_json::from_slice(&lookup.stdout).unwrap();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["event"]["dataset"], "ti_anomali.intelligence");

    std::fs::write(&config, "webhook:\n  enabled: false\n").unwrap();
    let stderr = serve_until_it_exits(&config, &[]);
    assert!(stderr.contains("nothing to receive"), "{stderr}");
}

/// The Intelligence API refusing the credentials stops polling, says why on `/_ti/health`
/// (503, red) and never logs the key; the webhook keeps taking pushes.
#[test]
fn refused_api_credentials_turn_the_health_red_and_the_webhook_keeps_working() {
    let api = FakeIntelligenceApi::start_refusing();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let service = Service::start(
        &dir.path().join("data"),
        port,
        &format!(
            "intelligence:\n  url: {}\n  username: analyst\n  api_key: wrong-key-0815\n  interval: 1s\n",
            api.url()
        ),
    );
    let client = blocking_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let (status, health) = get_json(&client, &service.url("/_ti/health"));
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {status}: {health}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let message = health["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused the credentials"), "{health}");
    assert_eq!(health["status"], "red", "{health}");
    assert!(!health.to_string().contains("wrong-key-0815"), "{health}");
    let line = br#"{"id": 77001, "update_id": 1, "itype": "mal_ip", "srcip": "203.0.113.77"}"#;
    assert_eq!(
        push(&client, &service.url("/"), line),
        reqwest::StatusCode::OK
    );
    // Polling stopped: no more requests after the refusal.
    let asked = api.requests().len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(api.requests().len(), asked, "polling goes on after a 401");
    service.stop();
}

/// Polling alone, standalone: when the API refuses the credentials nothing is left to receive,
/// so `serve` exits non-zero with the reason (a supervisor sees it) instead of idling.
#[test]
fn polling_alone_exits_with_the_reason_when_the_api_refuses_the_credentials() {
    let api = FakeIntelligenceApi::start_refusing();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("poll-only.yml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\nwebhook:\n  enabled: false\nintelligence:\n  url: {}\n  username: analyst\n  interval: 1s\n",
            dir.path().join("data").display(),
            api.url()
        ),
    )
    .unwrap();
    // The key from the environment, not the file.
    let stderr = serve_until_it_exits(
        &config,
        &[("TI_ANOMALI_INTELLIGENCE_API_KEY", "wrong-key-0816")],
    );
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(stderr.contains("nothing is left to receive"), "{stderr}");
    assert!(!stderr.contains("wrong-key-0816"), "{stderr}");
    assert_eq!(
        api.requests()[0].authorization,
        "apikey analyst:wrong-key-0816"
    );
}

/// A configuration error names the line and the fault, and quotes none of the file: the lines
/// around a fault can hold the API key or the HMAC key.
#[test]
fn a_configuration_error_quotes_no_secret_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yml");
    std::fs::write(
        &config,
        "intelligence:\n  usernme: analyst\n  api_key: SECRET-4711\nwebhook:\n  hmac:\n    key: HMAC-4712\n",
    )
    .unwrap();
    let stderr = serve_until_it_exits(&config, &[]);
    assert!(
        stderr.contains("line 2 column 3") && stderr.contains("usernme"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SECRET-4711") && !stderr.contains("HMAC-4712"),
        "{stderr}"
    );
}

/// The poller's `ssl` block is read from the file and each bad value is named as the file
/// spells it, without quoting an inline key.
#[test]
fn a_bad_intelligence_ssl_setting_is_named_and_no_inline_key_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "plain text\n").unwrap();
    let head = format!(
        "data_dir: {}\nwebhook:\n  enabled: false\nintelligence:\n  url: https://127.0.0.1:9\n  username: analyst\n  api_key: k-123\n",
        data.display()
    );
    for (ssl, named) in [
        (
            "  ssl:\n    certificate: /etc/pki/client.pem\n".to_owned(),
            "intelligence.ssl.key: is required with ssl.certificate",
        ),
        (
            format!(
                "  ssl:\n    certificate_authorities: [{}]\n",
                not_pem.display()
            ),
            "intelligence.ssl.certificate_authorities[0]: holds no certificate",
        ),
        (
            format!(
                "  ssl:\n    certificate: {}\n    key: |\n      -----BEGIN PRIVATE KEY-----\n      S3CRET-KEY-BYTES\n      -----END PRIVATE KEY-----\n",
                not_pem.display()
            ),
            "intelligence.ssl.certificate: holds no certificate",
        ),
        (
            "  ssl:\n    verification_mode: sometimes\n".to_owned(),
            "line 9 column 24: unknown variant `sometimes`, expected one of full, strict",
        ),
    ] {
        let config = dir.path().join("ssl.yml");
        std::fs::write(&config, format!("{head}{ssl}")).unwrap();
        let stderr = serve_until_it_exits(&config, &[]);
        assert!(stderr.contains(named), "{ssl}: {stderr}");
        assert!(!stderr.contains("S3CRET-KEY-BYTES"), "{stderr}");
    }
}

/// Runs `serve --config <config>` with `env`, which must exit with a failure within 20 s; its
/// standard error.
fn serve_until_it_exits(config: &Path, env: &[(&str, &str)]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("serve kept running with {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}
