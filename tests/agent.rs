//! `ti-anomali agent` driven by a test that plays Elastic Agent: the fake agent (agent-input,
//! feature `fake-agent`) serves the V2 control protocol over mTLS; the real binary gets the
//! `StartUpInfo` on stdin, checks in, takes its units, runs the webhook and reports states.
//!
//! These tests need no Elasticsearch: the output unit names a closed loopback port, so the
//! pipeline runs with shipping degraded (pushes wait in the spool). `tests/agent_es.rs`
//! (feature `e2e`) covers documents reaching a real cluster.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod agent_harness;
mod serve_harness;

use std::time::Duration;

use agent_harness::{
    Component, free_port, input_source, pair, state_of, unreachable_output, webhook_policy,
};
use anomali_agent_input::control::fake_agent::FakeAgent;
use anomali_agent_input::control::wire::proto::{self, State};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_check_in_carries_token_version_and_pid_within_five_seconds() {
    let agent = FakeAgent::start().await.unwrap();
    let component = Component::start(&agent);
    let first = agent
        .wait_for_observed(|_| true, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first.message.token, agent.token());
    let version = first.message.version_info.as_ref().unwrap();
    assert_eq!(version.name, "ti-anomali");
    assert_eq!(first.message.pid, u64::from(component.pid()));
    assert!(agent.refusals().is_empty(), "{:?}", agent.refusals());
    // The actions stream opened with `init`, and an unknown action is answered FAILED.
    agent
        .wait_for_action_response(|r| r.id == "init", WAIT)
        .await
        .unwrap();
    // The fake registers the stream just after reading `init`: try for a moment.
    let request = proto::ActionRequest {
        id: "a-1".to_owned(),
        name: "diagnostics".to_owned(),
        r#type: proto::action_request::Type::Diagnostics as i32,
        ..Default::default()
    };
    let mut sent = false;
    for _ in 0..100 {
        if agent.send_action(request.clone()).await.is_ok() {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent, "the actions stream never opened");
    let answer = agent
        .wait_for_action_response(|r| r.id == "a-1", WAIT)
        .await
        .unwrap();
    assert_eq!(
        answer.message.status,
        proto::action_response::Status::Failed as i32
    );
    component.terminate_and_wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_start_the_webhook_and_health_mirrors_an_unreachable_cluster() {
    let agent = FakeAgent::start().await.unwrap();
    let port = free_port();
    agent.set_expected(webhook_policy(port));
    let component = Component::start(&agent);
    // The webhook takes pushes (into the spool) although the cluster does not answer...
    component.wait_for_webhook(port, WAIT).await;
    assert_eq!(component.push(port, &[1, 2, 3]).await, 200);
    // ...and both units say why shipping is degraded, with the config idx echoed.
    let observed = agent
        .wait_for_observed(
            |m| {
                state_of(m, "out") == Some((State::Degraded, 1))
                    && state_of(m, "in-1") == Some((State::Degraded, 1))
            },
            WAIT,
        )
        .await
        .unwrap();
    let out = observed
        .message
        .units
        .iter()
        .find(|u| u.id == "out")
        .unwrap();
    assert!(out.message.contains("elasticsearch"), "{}", out.message);
    component.terminate_and_wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_fails_its_unit_naming_the_key_and_a_fix_recovers() {
    let agent = FakeAgent::start().await.unwrap();
    let port = free_port();
    let mut bad_input = input_source(port, "agentns");
    bad_input["streams"][0]["hmac"]["kye"] = json!("typo");
    let output = unreachable_output();
    agent.set_expected(pair(State::Healthy, 1, bad_input, output.clone()));
    let mut component = Component::start(&agent);
    let observed = agent
        .wait_for_observed(|m| state_of(m, "in-1") == Some((State::Failed, 1)), WAIT)
        .await
        .unwrap();
    let input = observed
        .message
        .units
        .iter()
        .find(|u| u.id == "in-1")
        .unwrap();
    assert!(
        input.message.contains("kye"),
        "names the key: {}",
        input.message
    );

    // A bad output too: its own unit fails, naming its key.
    agent.set_expected(pair(
        State::Healthy,
        2,
        input_source(port, "agentns"),
        json!({"type": "kafka", "hosts": ["x"]}),
    ));
    let observed = agent
        .wait_for_observed(|m| state_of(m, "out") == Some((State::Failed, 2)), WAIT)
        .await
        .unwrap();
    let out = observed
        .message
        .units
        .iter()
        .find(|u| u.id == "out")
        .unwrap();
    assert!(out.message.contains("type"), "{}", out.message);
    assert!(
        component.is_running(),
        "a bad config never stops the process"
    );

    // Fixed: the pipeline runs.
    agent.set_expected(pair(
        State::Healthy,
        3,
        input_source(port, "agentns"),
        output,
    ));
    component.wait_for_webhook(port, WAIT).await;
    agent
        .wait_for_observed(|m| state_of(m, "in-1") == Some((State::Degraded, 3)), WAIT)
        .await
        .unwrap();
    component.terminate_and_wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_set_to_stopped_stop_and_sigterm_reports_stopped_and_exits_zero() {
    let agent = FakeAgent::start().await.unwrap();
    let port = free_port();
    let output = unreachable_output();
    agent.set_expected(pair(
        State::Healthy,
        1,
        input_source(port, "agentns"),
        output.clone(),
    ));
    let component = Component::start(&agent);
    component.wait_for_webhook(port, WAIT).await;
    agent.set_expected(pair(
        State::Stopped,
        1,
        input_source(port, "agentns"),
        output,
    ));
    agent
        .wait_for_observed(
            |m| {
                state_of(m, "in-1") == Some((State::Stopped, 1))
                    && state_of(m, "out") == Some((State::Stopped, 1))
            },
            WAIT,
        )
        .await
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the webhook stopped listening"
    );
    let status = component.terminate_and_wait();
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_start_up_info_on_stdin_it_says_what_is_missing() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .arg("agent")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stdin was empty"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_already_taken_fails_the_input_unit_and_the_log_names_it() {
    let agent = FakeAgent::start().await.unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    agent.set_expected(webhook_policy(port));
    let mut component = Component::start(&agent);
    let observed = agent
        .wait_for_observed(|m| state_of(m, "in-1") == Some((State::Failed, 1)), WAIT)
        .await
        .unwrap();
    let input = observed
        .message
        .units
        .iter()
        .find(|u| u.id == "in-1")
        .unwrap();
    assert!(input.message.contains("listen"), "{}", input.message);
    assert!(component.is_running());
    // JSON log lines, the failure tagged with its unit.
    let logs = component.logs();
    assert!(
        logs.iter()
            .any(|l| l["unit.id"] == "in-1" && l["log.level"] == "error"),
        "{logs:?}"
    );
    for line in &logs {
        assert!(
            line["@timestamp"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    drop(taken);
    component.terminate_and_wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_running_reports_the_units_stopped_and_exits_zero() {
    let agent = FakeAgent::start().await.unwrap();
    let port = free_port();
    agent.set_expected(webhook_policy(port));
    let component = Component::start(&agent);
    component.wait_for_webhook(port, WAIT).await;
    assert_eq!(component.push(port, &[7, 8]).await, 200);
    let status = component.terminate_and_wait();
    assert!(status.success(), "{status:?}");
    let last = agent
        .observed()
        .into_iter()
        .rev()
        .find(|o| o.accepted)
        .unwrap();
    assert_eq!(state_of(&last.message, "in-1"), Some((State::Stopped, 1)));
    assert_eq!(state_of(&last.message, "out"), Some((State::Stopped, 1)));
}

#[test]
fn the_component_spec_names_our_own_input_and_the_agent_command() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/ti-anomali.spec.yml"),
    )
    .unwrap();
    let spec: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(spec["version"], 2);
    let input = &spec["inputs"][0];
    assert_eq!(input["name"], "ti-anomali", "not Filebeat's http_endpoint");
    assert!(input["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(
        input["platforms"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "linux/amd64"))
    );
    assert_eq!(input["outputs"], json!(["elasticsearch"]));
    assert_eq!(input["command"]["args"], json!(["agent"]));
}

#[tokio::test]
async fn an_unusable_key_in_the_start_up_info_is_named_at_once() {
    use prost::Message as _;
    let agent = FakeAgent::start().await.unwrap();
    let mut info = agent.start_up_info();
    info.peer_key =
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_vec();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .arg("agent")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&info.encode_to_vec()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("certificate or key"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('{') && l.contains("\"log.level\":\"error\"")),
        "a JSON line too: {stderr}"
    );
    assert!(!stderr.contains(agent.token()), "the token is a secret");
}

/// A policy with only the intelligence stream runs the poller without a listener; when the API
/// refuses the credentials the input unit fails with the reason, while the output unit keeps
/// reporting how shipping goes (here: the cluster does not answer). The key is never logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_api_credentials_fail_the_input_unit_of_an_intelligence_only_policy() {
    let api = serve_harness::FakeIntelligenceApi::start_refusing();
    let agent = FakeAgent::start().await.unwrap();
    let input = json!({
        "id": "ti-anomali-1", "type": "ti-anomali", "name": "ti_anomali-1", "revision": 1,
        "data_stream": {"namespace": "agentintel"},
        "streams": [{
            "id": "ti-anomali-ti_anomali.intelligence-1",
            "data_stream": {"dataset": "ti_anomali.intelligence", "type": "logs"},
            "url": api.url(), "username": "analyst", "api_key": "wrong-key-4711", "interval": "1s"
        }]
    });
    agent.set_expected(pair(State::Healthy, 1, input, unreachable_output()));
    let component = Component::start(&agent);
    let observed = agent
        .wait_for_observed(
            |m| {
                state_of(m, "in-1") == Some((State::Failed, 1))
                    && state_of(m, "out") == Some((State::Degraded, 1))
            },
            WAIT,
        )
        .await
        .unwrap();
    let message = |id: &str| {
        observed
            .message
            .units
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.message.clone())
            .unwrap()
    };
    assert!(
        message("in-1").contains("refused the credentials"),
        "{}",
        message("in-1")
    );
    assert!(
        message("out").contains("elasticsearch"),
        "{}",
        message("out")
    );
    let logs = component.logs();
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str() == Some("webhook disabled: polling only")),
        "{logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.to_string().contains("wrong-key-4711")),
        "the api key leaked into the logs"
    );
    component.terminate_and_wait();
}
