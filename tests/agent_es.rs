//! `ti-anomali agent` with a real Elasticsearch (feature `e2e`, run by `cargo xtask e2e`; fails
//! without `ES_URL`): started by a test playing Elastic Agent, it becomes HEALTHY and pushed
//! indicators reach the cluster; a config change moves the webhook to a new port and loses
//! nothing; check-ins keep coming under load; Elasticsearch stopped makes the units DEGRADED and
//! restarted HEALTHY again (needs `TI_E2E_ES_RESTART`; named `restart` so xtask can skip it).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]
#![allow(clippy::print_stderr, reason = "the tests report measured figures")]

mod agent_harness;
mod serve_harness;

use std::time::{Duration, Instant};

use agent_harness::{Component, free_port, input_source, observed_after, pair, state_of};
use anomali_agent_input::control::fake_agent::FakeAgent;
use anomali_agent_input::control::wire::proto::{self, State};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn es_url() -> String {
    std::env::var("ES_URL")
        .expect("ES_URL must name the Elasticsearch cluster (cargo xtask e2e sets it)")
}

fn output() -> Value {
    json!({"type": "elasticsearch", "hosts": [es_url()]})
}

/// A namespace and an id base of this run: the cluster outlives a run.
fn run_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_000
}

async fn count_namespace(namespace: &str) -> u64 {
    count_in("logs-ti_anomali_latest.threatstream", namespace).await
}

/// Live documents of `namespace` in the latest alias `alias`.
async fn count_in(alias: &str, namespace: &str) -> u64 {
    let client = reqwest::Client::new();
    let _ = client
        .post(format!("{}/{alias}/_refresh", es_url()))
        .send()
        .await;
    let answer: Value = client
        .post(format!("{}/{alias}/_count", es_url()))
        .header("content-type", "application/json")
        .body(json!({"query": {"term": {"data_stream.namespace": namespace}}}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["count"].as_u64().unwrap_or(0)
}

async fn wait_for_count(namespace: &str, expected: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let count = count_namespace(namespace).await;
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} documents in {namespace}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn units(port: u16, namespace: &str, idx: u64) -> proto::CheckinExpected {
    pair(State::Healthy, idx, input_source(port, namespace), output())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_documents_arrive_and_a_new_port_loses_nothing_and_check_ins_keep_coming() {
    let tag = run_tag();
    let namespace = format!("agent{tag}");
    let base = 9_000_000_000_000 + tag * 10_000;
    let agent = FakeAgent::start().await.unwrap();
    let first_port = free_port();
    agent.set_expected(units(first_port, &namespace, 1));
    let component = Component::start(&agent);
    agent
        .wait_for_observed(
            |m| {
                state_of(m, "in-1") == Some((State::Healthy, 1))
                    && state_of(m, "out") == Some((State::Healthy, 1))
            },
            WAIT,
        )
        .await
        .unwrap();
    let ids: Vec<u64> = (base..base + 100).collect();
    assert_eq!(component.push(first_port, &ids).await, 200);
    wait_for_count(&namespace, 100).await;

    // Load while the policy moves the webhook: every push answered 200 lands.
    let second_port = free_port();
    let started = Instant::now();
    let mut accepted = 100u64;
    for round in 0..40u64 {
        if round == 10 {
            agent.set_expected(units(second_port, &namespace, 2));
            component.wait_for_webhook(second_port, WAIT).await;
        }
        let port = if round < 10 { first_port } else { second_port };
        let ids: Vec<u64> = (0..500).map(|n| base + 1_000 + round * 500 + n).collect();
        if component.push(port, &ids).await == 200 {
            accepted += 500;
        }
    }
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", first_port))
            .await
            .is_err(),
        "the old port is closed"
    );
    agent
        .wait_for_observed(|m| state_of(m, "in-1") == Some((State::Healthy, 2)), WAIT)
        .await
        .unwrap();
    wait_for_count(&namespace, accepted).await;
    assert_eq!(accepted, 100 + 40 * 500, "every push was accepted");

    // Check-ins keep coming (every 25 s, and on changes) while the load ran and after: hold on
    // until 30 s have passed and look at the gaps.
    let until = started + Duration::from_secs(30);
    while Instant::now() < until {
        assert_eq!(component.push(second_port, &[base + 9_999]).await, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let times: Vec<Instant> = agent
        .observed()
        .iter()
        .filter(|o| o.accepted)
        .map(|o| o.received_at)
        .collect();
    let longest = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "figure: {} check-ins, longest gap {:.1} s",
        times.len(),
        longest.as_secs_f64()
    );
    assert!(
        longest <= Duration::from_secs(26),
        "a check-in gap of {longest:?}"
    );
    // Logs are JSON lines the agent parses.
    let logs = component.logs();
    assert!(!logs.is_empty());
    for line in &logs {
        assert!(
            line["@timestamp"].is_string()
                && line["log.level"].is_string()
                && line["message"].is_string(),
            "{line}"
        );
    }
    let status = component.terminate_and_wait();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_elasticsearch_turns_units_degraded_then_healthy() {
    let script = std::env::var("TI_E2E_ES_RESTART").expect(
        "TI_E2E_ES_RESTART must name the restart script (cargo xtask e2e sets it with the cluster it starts)",
    );
    let tag = run_tag();
    let namespace = format!("agentrs{tag}");
    let base = 9_100_000_000_000 + tag * 10_000;
    let agent = FakeAgent::start().await.unwrap();
    let port = free_port();
    agent.set_expected(units(port, &namespace, 1));
    let component = Component::start(&agent);
    agent
        .wait_for_observed(|m| state_of(m, "out") == Some((State::Healthy, 1)), WAIT)
        .await
        .unwrap();
    let outage = Instant::now();
    let mut restart = std::process::Command::new(&script)
        .arg("20")
        .spawn()
        .unwrap();
    observed_after(
        &agent,
        outage,
        |m| state_of(m, "out") == Some((State::Degraded, 1)),
        WAIT,
    )
    .await;
    // Pushes during the outage are kept.
    let ids: Vec<u64> = (base..base + 200).collect();
    assert_eq!(component.push(port, &ids).await, 200);
    let status = tokio::task::spawn_blocking(move || restart.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the restart script failed");
    // Bounded by the shipper's longest backoff (30 s) and the health check (5 s).
    let back = Instant::now();
    observed_after(
        &agent,
        back,
        |m| m.units.len() == 2 && m.units.iter().all(|u| u.state == State::Healthy as i32),
        Duration::from_secs(90),
    )
    .await;
    wait_for_count(&namespace, 200).await;
    assert!(component.terminate_and_wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_elasticsearch_refuses_turn_the_units_degraded_with_the_reason() {
    let tag = run_tag();
    let namespace = format!("agentdl{tag}");
    let base = 9_200_000_000_000 + tag * 10_000;
    let agent = FakeAgent::start().await.unwrap();
    let port = free_port();
    agent.set_expected(units(port, &namespace, 1));
    let component = Component::start(&agent);
    agent
        .wait_for_observed(|m| state_of(m, "out") == Some((State::Healthy, 1)), WAIT)
        .await
        .unwrap();
    // The same unknown field as a string, then as an object: Elasticsearch refuses the second.
    let field = format!("agent_probe_{tag}");
    let line = |id: u64, value: Value| {
        let mut object = json!({"id": id, "update_id": 1, "itype": "mal_ip", "value_type": "ip",
                                "srcip": "10.91.0.1", "date_last": "2026-12-01T00:00:00"});
        object[&field] = value;
        format!("{object}\n")
    };
    assert_eq!(
        component
            .push_raw(port, line(base, json!("text")).as_bytes())
            .await,
        200
    );
    wait_for_count(&namespace, 1).await;
    let since = Instant::now();
    assert_eq!(
        component
            .push_raw(port, line(base + 1, json!({"nested": 1})).as_bytes())
            .await,
        200
    );
    let observed = observed_after(
        &agent,
        since,
        |m| state_of(m, "out") == Some((State::Degraded, 1)),
        WAIT,
    )
    .await;
    let out = observed.units.iter().find(|u| u.id == "out").unwrap();
    assert!(out.message.contains("refused"), "{}", out.message);
    assert!(component.terminate_and_wait().success());
}

/// A policy with both streams: the webhook's pushes and the polled Intelligence API objects
/// reach their own latest indices, and both units are HEALTHY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intelligence_stream_polls_into_its_own_latest_index_beside_the_webhook() {
    let tag = run_tag();
    let namespace = format!("agentintel{tag}");
    let base = 8_000_000_000_000 + tag * 10_000;
    let objects: Vec<Value> = (1..=20u64)
        .map(|n| {
            json!({"id": base + n, "update_id": n, "itype": "mal_domain",
                   "value": format!("d{n}.agent-e2e.example"), "confidence": 70,
                   "created_ts": "2026-11-01T00:00:00Z", "modified_ts": "2026-11-30T00:00:00Z"})
        })
        .collect();
    let api = serve_harness::FakeIntelligenceApi::serving(objects);
    let port = free_port();
    let mut input = input_source(port, &namespace);
    input["streams"].as_array_mut().unwrap().push(json!({
        "id": "ti-anomali-ti_anomali.intelligence-1",
        "data_stream": {"dataset": "ti_anomali.intelligence", "type": "logs"},
        "url": api.url(), "username": "analyst", "api_key": "agent-e2e-key", "interval": "1s"
    }));
    let agent = FakeAgent::start().await.unwrap();
    agent.set_expected(pair(State::Healthy, 1, input, output()));
    let component = Component::start(&agent);
    component.wait_for_webhook(port, WAIT).await;
    let pushed: Vec<u64> = (base + 100..base + 103).collect();
    assert_eq!(component.push(port, &pushed).await, 200);
    wait_for_count(&namespace, 3).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let polled = count_in("logs-ti_anomali_latest.intelligence", &namespace).await;
        if polled == 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{polled} polled documents, expected 20"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    agent
        .wait_for_observed(
            |m| {
                state_of(m, "in-1") == Some((State::Healthy, 1))
                    && state_of(m, "out") == Some((State::Healthy, 1))
            },
            WAIT,
        )
        .await
        .unwrap();
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.authorization == "apikey analyst:agent-e2e-key"),
        "{requests:?}"
    );
    component.terminate_and_wait();
}
