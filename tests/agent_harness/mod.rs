//! Shared by the agent tests: the component process, units, pushes.

#![allow(dead_code, reason = "each test file uses a part")]

use std::io::Write as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anomali_agent_input::control::fake_agent::FakeAgent;
use anomali_agent_input::control::structs::json_to_struct;
use anomali_agent_input::control::wire::proto::{self, State, UnitType};
use anomali_agent_input::sign_sha256_hex;
use serde_json::{Value, json};

pub const KEY: &str = "agent-test-hmac-key";

/// A free loopback port (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The OUTPUT unit's source for a cluster that does not answer (nothing listens on its port).
pub fn unreachable_output() -> Value {
    json!({"type": "elasticsearch", "hosts": [format!("127.0.0.1:{}", free_port())]})
}

/// Both units healthy at config idx 1: the webhook on `port` (namespace `agentns`) shipping to
/// [`unreachable_output`].
pub fn webhook_policy(port: u16) -> proto::CheckinExpected {
    pair(
        State::Healthy,
        1,
        input_source(port, "agentns"),
        unreachable_output(),
    )
}

/// The INPUT unit's source, as Fleet renders a policy input with one stream.
pub fn input_source(port: u16, namespace: &str) -> Value {
    json!({
        "id": "ti-anomali-1", "type": "ti-anomali", "name": "ti_anomali-1", "revision": 1,
        "data_stream": {"namespace": namespace},
        "meta": {"package": {"name": "ti_anomali", "version": "2.0.0"}},
        "streams": [{
            "id": "ti-anomali-ti_anomali.threatstream-1",
            "data_stream": {"dataset": "ti_anomali.threatstream", "type": "logs"},
            "listen_address": "127.0.0.1", "listen_port": port, "url": "/",
            "hmac": {"key": KEY, "type": "sha256", "header": "X-Filebeat-Signature", "prefix": "sha256="},
            "ioc_expiration_duration": "",
            "shipping": {"flush_interval_ms": 100}
        }]
    })
}

/// A unit as the agent sends it.
pub fn unit(
    id: &str,
    unit_type: UnitType,
    state: State,
    idx: u64,
    source: Value,
) -> proto::UnitExpected {
    proto::UnitExpected {
        id: id.to_owned(),
        r#type: unit_type as i32,
        state: state as i32,
        config_state_idx: idx,
        config: Some(proto::UnitExpectedConfig {
            source: Some(json_to_struct(&source).unwrap()),
            id: id.to_owned(),
            r#type: "ti-anomali".to_owned(),
            ..Default::default()
        }),
        log_level: proto::UnitLogLevel::Info as i32,
    }
}

/// What the agent expects of the two units these tests use: input `in-1` and output `out`,
/// both in `state` at config idx `idx`.
pub fn pair(state: State, idx: u64, input: Value, output: Value) -> proto::CheckinExpected {
    proto::CheckinExpected {
        units: vec![
            unit("in-1", UnitType::Input, state, idx, input),
            unit("out", UnitType::Output, state, idx, output),
        ],
        ..Default::default()
    }
}

/// A unit's observed state and config idx in a check-in.
pub fn state_of(message: &proto::CheckinObserved, id: &str) -> Option<(State, u64)> {
    message.units.iter().find(|u| u.id == id).and_then(|u| {
        State::try_from(u.state)
            .ok()
            .map(|s| (s, u.config_state_idx))
    })
}

/// One indicator line per id.
pub fn indicators(ids: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    for id in ids {
        body.extend_from_slice(
            json!({"id": id, "update_id": 1, "itype": "mal_ip", "value_type": "ip",
                   "srcip": format!("10.90.{}.{}", (id / 250) % 250, id % 250 + 1),
                   "date_first": "2026-11-01T00:00:00", "date_last": "2026-12-01T00:00:00"})
            .to_string()
            .as_bytes(),
        );
        body.push(b'\n');
    }
    body
}

/// The component process.
pub struct Component {
    child: Child,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Component {
    /// Starts `ti-anomali agent` with the fake agent's `StartUpInfo` on stdin (then closed), as
    /// the agent does, with `-E path.data=` appended.
    pub fn start(agent: &FakeAgent) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
            .arg("agent")
            .arg("-E")
            .arg(format!("path.data={}", dir.path().join("run").display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&agent.start_up_info_bytes()).unwrap();
        drop(stdin);
        Self {
            child,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The component's log lines (JSON).
    pub fn logs(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("stderr.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until the webhook accepts connections on `port`.
    pub async fn wait_for_webhook(&self, port: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the webhook did not listen on {port} within {limit:?}; logs: {:?}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Pushes signed indicators; the status (0 when the connection failed).
    pub async fn push(&self, port: u16, ids: &[u64]) -> u16 {
        self.push_raw(port, &indicators(ids)).await
    }

    /// Pushes a signed body as it is; the status (0 when the connection failed).
    pub async fn push_raw(&self, port: u16, body: &[u8]) -> u16 {
        let body = body.to_vec();
        let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), &body));
        self.http
            .post(format!("http://127.0.0.1:{port}/"))
            .header("content-type", "application/x-ndjson")
            .header("X-Filebeat-Signature", signature)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// SIGTERM, then waits (at most 40 s) for the exit.
    pub fn terminate_and_wait(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 40 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for an accepted check-in received after `since` that matches (the fake agent's own
/// wait searches the whole history, where an earlier state could match).
pub async fn observed_after(
    agent: &FakeAgent,
    since: Instant,
    predicate: impl Fn(&proto::CheckinObserved) -> bool,
    limit: Duration,
) -> proto::CheckinObserved {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = agent
            .observed()
            .into_iter()
            .find(|o| o.accepted && o.received_at > since && predicate(&o.message))
        {
            return found.message;
        }
        assert!(
            Instant::now() < deadline,
            "no matching check-in within {limit:?}; last: {:?}",
            agent.observed().last().map(|o| o.message.units.clone())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
