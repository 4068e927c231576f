//! The control protocol's wire contract and the fake agent's enforcement.
//!
//! - Byte tests: messages are compared with bytes assembled by hand from the field numbers and
//!   wire types in the research notes (tag byte = field << 3 | wire type; wire types: 0 varint,
//!   1 64-bit, 2 length-delimited). A renumbered or retyped field in the .proto fails here.
//! - Fake agent tests: a tonic client connects the way a component must (CA, client identity,
//!   server name override) and is accepted; clients without the right certificate, without the
//!   token, or too slow are refused with the agent's status codes.

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use std::time::{Duration, Instant};

use anomali_agent_input::control::fake_agent::{
    ACTIONS_INIT_ID, FIRST_MESSAGE_TIMEOUT, FakeAgent, FakeAgentOptions, Rpc,
};
use anomali_agent_input::control::structs::struct_to_json;
use anomali_agent_input::control::wire::proto::elastic_agent_client::ElasticAgentClient;
use anomali_agent_input::control::wire::proto::{
    ActionDiagnosticUnitResult, ActionRequest, ActionResponse, AgentInfo, AgentManagedMode,
    CheckinExpected, CheckinObserved, CheckinObservedVersionInfo, ConnInfoServices,
    ConnectionSupports, StartUpInfo, State, UnitExpected, UnitLogLevel, UnitObserved, UnitType,
    action_request, action_response,
};
use prost::Message;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

// ---------------------------------------------------------------------------------------------
// Byte-for-byte wire tests
// ---------------------------------------------------------------------------------------------

#[test]
fn checkin_observed_encodes_to_hand_assembled_bytes() {
    let observed = CheckinObserved {
        token: "t".to_owned(),
        units: vec![UnitObserved {
            id: "u".to_owned(),
            r#type: UnitType::Output.into(),
            config_state_idx: 3,
            state: State::Healthy.into(),
            message: "ok".to_owned(),
            payload: None,
        }],
        features_idx: 2,
        component_idx: 1,
        pid: 42,
        ..CheckinObserved::default()
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x0A, 0x01, b't',          // field 1 token, wire type 2 (1<<3|2), length 1, "t"
        0x12, 0x0D,                // field 2 units, wire type 2 (2<<3|2), length 13:
        0x0A, 0x01, b'u',          //   UnitObserved field 1 id, length 1, "u"
        0x10, 0x01,                //   field 2 type, varint (2<<3|0) = OUTPUT (1)
        0x18, 0x03,                //   field 3 config_state_idx, varint (3<<3|0) = 3
        0x20, 0x02,                //   field 4 state, varint (4<<3|0) = HEALTHY (2)
        0x2A, 0x02, b'o', b'k',    //   field 5 message, wire type 2 (5<<3|2), "ok"
        0x28, 0x02,                // field 5 features_idx, varint (5<<3|0) = 2
        0x30, 0x01,                // field 6 component_idx, varint (6<<3|0) = 1
        0x48, 0x2A,                // field 9 pid, varint (9<<3|0) = 42
    ];
    assert_eq!(observed.encode_to_vec(), expected);
    assert_eq!(CheckinObserved::decode(expected).unwrap(), observed);
}

#[test]
fn checkin_observed_first_message_fields_encode_to_hand_assembled_bytes() {
    let observed = CheckinObserved {
        token: "t".to_owned(),
        version_info: Some(CheckinObservedVersionInfo {
            name: "ti".to_owned(),
            meta: [("k".to_owned(), "v".to_owned())].into(),
            build_hash: "h".to_owned(),
        }),
        units_timestamp: Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 2,
        }),
        supports: vec![ConnectionSupports::CheckinChunking.into()],
        ..CheckinObserved::default()
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x0A, 0x01, b't',                 // field 1 token
        0x1A, 0x0F,                       // field 3 version_info (3<<3|2), length 15:
        0x0A, 0x02, b't', b'i',           //   field 1 name "ti"
        0x1A, 0x06,                       //   field 3 meta, one map entry (3<<3|2), length 6:
        0x0A, 0x01, b'k',                 //     entry field 1 key "k"
        0x12, 0x01, b'v',                 //     entry field 2 value "v"
        0x22, 0x01, b'h',                 //   field 4 build_hash (4<<3|2) "h"
        0x3A, 0x04,                       // field 7 units_timestamp (7<<3|2), length 4:
        0x08, 0x01,                       //   Timestamp field 1 seconds = 1
        0x10, 0x02,                       //   Timestamp field 2 nanos = 2
        0x42, 0x01, 0x00,                 // field 8 supports, packed (8<<3|2): [CheckinChunking (0)]
    ];
    assert_eq!(observed.encode_to_vec(), expected);
}

#[test]
fn start_up_info_decodes_from_hand_assembled_bytes() {
    let server_name = "0123456789abcdef0123456789abcdef";
    #[rustfmt::skip]
    let bytes: Vec<u8> = [
        &[0x0A, 14][..], b"localhost:6789",      // field 1 addr (1<<3|2), length 14
        &[0x12, 32], server_name.as_bytes(),     // field 2 server_name (2<<3|2), length 32
        &[0x1A, 3], b"tok",                      // field 3 token (3<<3|2)
        &[0x22, 2], b"CA",                       // field 4 ca_cert, bytes (4<<3|2)
        &[0x2A, 4], b"CERT",                     // field 5 peer_cert, bytes (5<<3|2)
        &[0x32, 3], b"KEY",                      // field 6 peer_key, bytes (6<<3|2)
        &[0x3A, 1, 0x01],                        // field 7 services, packed (7<<3|2): [CheckinV2 (1)]
        &[0x42, 1, 0x00],                        // field 8 supports, packed (8<<3|2): [CheckinChunking (0)]
        &[0x48, 0x80, 0x80, 0x80, 0x32],         // field 9 max_message_size, varint (9<<3|0):
                                                 //   104857600 = 50 << 21 -> 0x80 0x80 0x80 0x32
        &[0x52, 17],                             // field 10 agent_info (10<<3|2), length 17:
        &[0x0A, 2], b"a1",                       //   field 1 id "a1"
        &[0x12, 5], b"9.2.0",                    //   field 2 version "9.2.0"
        &[0x18, 0x01],                           //   field 3 snapshot = true
        &[0x20, 0x01],                           //   field 4 mode = STANDALONE (1)
        &[0x28, 0x01],                           //   field 5 unprivileged = true
    ]
    .concat();
    let info = StartUpInfo::decode(bytes.as_slice()).unwrap();
    assert_eq!(
        info,
        StartUpInfo {
            addr: "localhost:6789".to_owned(),
            server_name: server_name.to_owned(),
            token: "tok".to_owned(),
            ca_cert: b"CA".to_vec(),
            peer_cert: b"CERT".to_vec(),
            peer_key: b"KEY".to_vec(),
            services: vec![ConnInfoServices::CheckinV2.into()],
            supports: vec![ConnectionSupports::CheckinChunking.into()],
            max_message_size: 100 * 1024 * 1024,
            agent_info: Some(AgentInfo {
                id: "a1".to_owned(),
                version: "9.2.0".to_owned(),
                snapshot: true,
                mode: AgentManagedMode::Standalone.into(),
                unprivileged: true,
            }),
        }
    );
    // What the agent's Go encoder writes is what we write: packed repeated enums.
    assert_eq!(info.encode_to_vec(), bytes);
}

#[test]
fn start_up_info_accepts_unpacked_repeated_enums() {
    // proto3 parsers must accept both encodings of a repeated scalar.
    #[rustfmt::skip]
    let bytes: &[u8] = &[
        0x38, 0x01,   // field 7 services, one varint (7<<3|0): CheckinV2
        0x38, 0x00,   // field 7 services again: Checkin
        0x40, 0x00,   // field 8 supports, one varint (8<<3|0): CheckinChunking
    ];
    let info = StartUpInfo::decode(bytes).unwrap();
    assert_eq!(
        info.services().collect::<Vec<_>>(),
        [ConnInfoServices::CheckinV2, ConnInfoServices::Checkin]
    );
    assert_eq!(
        info.supports().collect::<Vec<_>>(),
        [ConnectionSupports::CheckinChunking]
    );
}

/// A length-delimited field with a one-byte length: `tag`, `body.len()`, `body`.
fn delimited(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).unwrap();
    assert!(
        len < 0x80,
        "keep test bodies under 128 bytes (one-byte varint)"
    );
    [&[tag, len][..], body].concat()
}

#[test]
fn checkin_expected_decodes_from_hand_assembled_bytes() {
    // Struct {fields: {"port": 8181.0}}: Struct field 1 is a map entry (key 1, value 2);
    // Value field 2 is number_value, a double (wire type 1, little-endian).
    let port_value = [&[0x11][..], &8181.0_f64.to_le_bytes()].concat(); // (2<<3|1)
    let entry = [delimited(0x0A, b"port"), delimited(0x12, &port_value)].concat();
    let source = delimited(0x0A, &entry);

    let data_stream = [
        delimited(0x12, b"ti_anomali.threat"), // field 2 dataset
        delimited(0x1A, b"logs"),              // field 3 type
        delimited(0x22, b"default"),           // field 4 namespace
    ]
    .concat();
    let stream = [
        delimited(0x12, b"s1"),                   // Stream field 2 id
        delimited(0x1A, &delimited(0x12, b"ds")), // field 3 data_stream { 2: dataset }
    ]
    .concat();
    let package = [
        delimited(0x12, b"ti_anomali"), // Package field 2 name
        delimited(0x1A, b"1.0.0"),      // field 3 version
    ]
    .concat();
    let config = [
        delimited(0x0A, &source),                    // field 1 source (Struct)
        delimited(0x12, b"c"),                       // field 2 id
        delimited(0x1A, b"t"),                       // field 3 type
        delimited(0x22, b"n"),                       // field 4 name
        vec![0x28, 0x07],                            // field 5 revision, varint = 7
        delimited(0x32, &delimited(0x12, &package)), // field 6 meta { 2: package }
        delimited(0x3A, &data_stream),               // field 7 data_stream
        delimited(0x42, &stream),                    // field 8 streams (one)
    ]
    .concat();
    let unit = [
        delimited(0x0A, b"u"),    // UnitExpected field 1 id
        vec![0x10, 0x01],         // field 2 type = OUTPUT
        vec![0x18, 0x06],         // field 3 state = STOPPED (6)
        vec![0x20, 0x04],         // field 4 config_state_idx = 4
        delimited(0x2A, &config), // field 5 config
        vec![0x30, 0x03],         // field 6 log_level = DEBUG (3)
    ]
    .concat();
    let bytes = [
        delimited(0x0A, &unit),                           // field 1 units
        delimited(0x12, &[0x0A, 0x02, b'a', b'1']),       // field 2 agent_info { 1: id }
        delimited(0x1A, &delimited(0x12, &[0x08, 0x01])), // field 3 features { 2: fqdn { 1: true } }
        vec![0x20, 0x05],                                 // field 4 features_idx = 5
        delimited(0x2A, &delimited(0x0A, &[0x10, 0x04])), // field 5 component { 1: limits { 2: go_max_procs 4 } }
        vec![0x30, 0x06],                                 // field 6 component_idx = 6
        delimited(0x3A, &[0x08, 0x09]), // field 7 units_timestamp { 1: seconds 9 }
    ]
    .concat();

    let expected = CheckinExpected::decode(bytes.as_slice()).unwrap();
    assert_eq!(expected.features_idx, 5);
    assert_eq!(expected.component_idx, 6);
    assert_eq!(expected.agent_info.as_ref().unwrap().id, "a1");
    assert!(expected.features.as_ref().unwrap().fqdn.unwrap().enabled);
    let limits = expected
        .component
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert_eq!(limits.go_max_procs, 4);
    assert_eq!(expected.units_timestamp.as_ref().unwrap().seconds, 9);

    let [unit]: [UnitExpected; 1] = expected.units.clone().try_into().unwrap();
    assert_eq!(unit.id, "u");
    assert_eq!(unit.r#type(), UnitType::Output);
    assert_eq!(unit.state(), State::Stopped);
    assert_eq!(unit.config_state_idx, 4);
    assert_eq!(unit.log_level(), UnitLogLevel::Debug);
    let config = unit.config.unwrap();
    assert_eq!(
        struct_to_json(config.source.as_ref().unwrap()).unwrap(),
        json!({"port": 8181})
    );
    assert_eq!((config.id.as_str(), config.r#type.as_str()), ("c", "t"));
    assert_eq!((config.name.as_str(), config.revision), ("n", 7));
    let package = config.meta.unwrap().package.unwrap();
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("ti_anomali", "1.0.0")
    );
    let data_stream = config.data_stream.unwrap();
    assert_eq!(data_stream.dataset, "ti_anomali.threat");
    assert_eq!(data_stream.r#type, "logs");
    assert_eq!(data_stream.namespace, "default");
    assert_eq!(config.streams.len(), 1);
    assert_eq!(config.streams[0].id, "s1");
    assert_eq!(
        config.streams[0].data_stream.as_ref().unwrap().dataset,
        "ds"
    );

    assert_eq!(
        expected.encode_to_vec(),
        bytes,
        "field order is field-number order"
    );
}

#[test]
fn action_messages_match_hand_assembled_bytes() {
    #[rustfmt::skip]
    let request_bytes: &[u8] = &[
        0x0A, 0x01, b'1',                  // field 1 id "1"
        0x12, 0x04, b'd', b'i', b'a', b'g', // field 2 name "diag"
        0x1A, 0x02, b'{', b'}',            // field 3 params, bytes (3<<3|2)
        0x22, 0x01, b'u',                  // field 4 unit_id "u"
        0x28, 0x01,                        // field 5 unit_type = OUTPUT
        0x30, 0x01,                        // field 6 type = DIAGNOSTICS (1)
        0x38, 0x02,                        // field 7 level = UNIT (2)
    ];
    let request = ActionRequest::decode(request_bytes).unwrap();
    assert_eq!(
        request,
        ActionRequest {
            id: "1".to_owned(),
            name: "diag".to_owned(),
            params: b"{}".to_vec(),
            unit_id: "u".to_owned(),
            unit_type: UnitType::Output.into(),
            r#type: action_request::Type::Diagnostics.into(),
            level: action_request::Level::Unit.into(),
        }
    );

    let response = ActionResponse {
        token: "t".to_owned(),
        id: "1".to_owned(),
        status: action_response::Status::Failed.into(),
        result: b"{}".to_vec(),
        diagnostic: vec![ActionDiagnosticUnitResult {
            name: "n".to_owned(),
            filename: "f".to_owned(),
            description: "d".to_owned(),
            content_type: "c".to_owned(),
            content: b"x".to_vec(),
            generated: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
        }],
    };
    #[rustfmt::skip]
    let response_bytes: &[u8] = &[
        0x0A, 0x01, b't',         // field 1 token
        0x12, 0x01, b'1',         // field 2 id
        0x18, 0x01,               // field 3 status = FAILED (1)
        0x22, 0x02, b'{', b'}',   // field 4 result, bytes
        0x2A, 0x13,               // field 5 diagnostic (5<<3|2), length 19:
        0x0A, 0x01, b'n',         //   field 1 name
        0x12, 0x01, b'f',         //   field 2 filename
        0x1A, 0x01, b'd',         //   field 3 description
        0x22, 0x01, b'c',         //   field 4 content_type
        0x2A, 0x01, b'x',         //   field 5 content, bytes
        0x32, 0x02, 0x08, 0x01,   //   field 6 generated { 1: seconds 1 }
    ];
    assert_eq!(response.encode_to_vec(), response_bytes);
}

// ---------------------------------------------------------------------------------------------
// Fake agent
// ---------------------------------------------------------------------------------------------

const WAIT: Duration = Duration::from_secs(10);

/// Connects the way a component must: the agent's CA, the peer identity, and the server name
/// as the TLS name (SNI and verification), since `addr` names localhost.
async fn connect(
    info: &StartUpInfo,
    identity: Option<Identity>,
    ca_pem: &[u8],
) -> Result<ElasticAgentClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(info.server_name.clone());
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel = Endpoint::from_shared(format!("https://{}", info.addr))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(ElasticAgentClient::new(channel))
}

/// Decodes the start-up bytes as a launched component would, then connects with its identity.
async fn connect_as_component(agent: &FakeAgent) -> (StartUpInfo, ElasticAgentClient<Channel>) {
    let info = StartUpInfo::decode(agent.start_up_info_bytes().as_slice()).unwrap();
    let identity = Identity::from_pem(&info.peer_cert, &info.peer_key);
    let client = connect(&info, Some(identity), &info.ca_cert).await.unwrap();
    (info, client)
}

fn observed_with_token(token: &str) -> CheckinObserved {
    CheckinObserved {
        token: token.to_owned(),
        version_info: Some(CheckinObservedVersionInfo {
            name: "ti-anomali".to_owned(),
            ..CheckinObservedVersionInfo::default()
        }),
        pid: u64::from(std::process::id()),
        ..CheckinObserved::default()
    }
}

#[tokio::test]
async fn start_up_info_describes_the_running_agent() {
    let agent = FakeAgent::start().await.unwrap();
    let info = StartUpInfo::decode(agent.start_up_info_bytes().as_slice()).unwrap();
    assert_eq!(
        info.addr,
        format!("localhost:{}", agent.local_addr().port())
    );
    assert_eq!(info.server_name.len(), 32);
    assert!(info.server_name.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(info.token, agent.token());
    assert!(info.ca_cert.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(info.peer_cert.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(info.peer_key.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    assert_eq!(
        info.services().collect::<Vec<_>>(),
        [ConnInfoServices::CheckinV2]
    );
    assert_eq!(
        info.supports().collect::<Vec<_>>(),
        [ConnectionSupports::CheckinChunking]
    );
    assert_eq!(info.max_message_size, 100 * 1024 * 1024);
    assert_eq!(info.agent_info.unwrap().mode(), AgentManagedMode::Managed);
    assert_eq!(
        FakeAgentOptions::default().first_message_timeout,
        FIRST_MESSAGE_TIMEOUT
    );
    assert_eq!(FIRST_MESSAGE_TIMEOUT, Duration::from_secs(5));
}

#[tokio::test]
async fn mtls_component_checks_in_and_follows_the_expected_state() {
    let agent = FakeAgent::start().await.unwrap();
    let (info, mut client) = connect_as_component(&agent).await;

    let (tx, rx) = mpsc::channel(4);
    tx.send(observed_with_token(&info.token)).await.unwrap();
    let mut expected = client
        .checkin_v2(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();

    // The first reply is the current expected state, with the agent's identity.
    let first = expected.message().await.unwrap().unwrap();
    assert_eq!(first.agent_info.unwrap().id, "fake-agent-0000");
    assert!(first.units.is_empty());
    let seen = agent
        .wait_for_observed(|o| o.token == info.token, WAIT)
        .await
        .unwrap();
    assert_eq!(seen.message.version_info.unwrap().name, "ti-anomali");

    // A change made by the test is pushed without waiting for a check-in.
    agent.update_expected(|e| {
        e.units.push(UnitExpected {
            id: "ti_anomali-default".to_owned(),
            r#type: UnitType::Output.into(),
            state: State::Healthy.into(),
            config_state_idx: 1,
            ..UnitExpected::default()
        });
    });
    let pushed = expected.message().await.unwrap().unwrap();
    assert_eq!(pushed.units.len(), 1);
    assert_eq!(pushed.units[0].config_state_idx, 1);

    // Every further check-in is recorded (no token needed after the first) and answered.
    tx.send(CheckinObserved {
        units: vec![UnitObserved {
            id: "ti_anomali-default".to_owned(),
            r#type: UnitType::Output.into(),
            config_state_idx: 1,
            state: State::Healthy.into(),
            message: "healthy".to_owned(),
            payload: None,
        }],
        ..CheckinObserved::default()
    })
    .await
    .unwrap();
    let reply = expected.message().await.unwrap().unwrap();
    assert_eq!(reply, agent.expected());
    let acked = agent
        .wait_for_observed(|o| o.units.iter().any(|u| u.config_state_idx == 1), WAIT)
        .await
        .unwrap();
    assert!(acked.received_at >= seen.received_at);
    assert_eq!(agent.observed().len(), 2);
    assert!(agent.refusals().is_empty());
}

/// Tries a check-in with `identity`; returns the TLS failure, or `None` if it got through.
///
/// With TLS 1.3 the client may finish its side of the handshake before the server rejects its
/// certificate, so the refusal can surface at connect or at the first call.
async fn tls_refusal(agent: &FakeAgent, identity: Option<Identity>) -> Option<String> {
    let info = agent.start_up_info();
    let mut client = match connect(&info, identity, &info.ca_cert).await {
        Err(error) => return Some(format!("{error:?}")),
        Ok(client) => client,
    };
    let (tx, rx) = mpsc::channel(1);
    tx.send(observed_with_token(&info.token)).await.unwrap();
    match client.checkin_v2(ReceiverStream::new(rx)).await {
        Err(status) => Some(format!("{status:?}")),
        Ok(response) => response
            .into_inner()
            .message()
            .await
            .err()
            .map(|status| format!("{status:?}")),
    }
}

#[tokio::test]
async fn client_without_a_certificate_is_refused() {
    let agent = FakeAgent::start().await.unwrap();
    let refusal = tls_refusal(&agent, None)
        .await
        .expect("a client without a certificate got through");
    assert!(refusal.contains("CertificateRequired"), "{refusal}");
    assert!(agent.observed().is_empty());
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let agent = FakeAgent::start().await.unwrap();
    // Another agent's CA has the same name (CN localhost) as ours, as real agents' CAs do, so
    // the server finds a name match and then fails the signature check.
    let other = FakeAgent::start().await.unwrap();
    let stranger = Identity::from_pem(other.peer_cert_pem(), other.peer_key_pem());
    let refusal = tls_refusal(&agent, Some(stranger))
        .await
        .expect("a certificate from another CA got through");
    assert!(refusal.contains("fatal alert"), "{refusal}");
    assert!(agent.observed().is_empty());
}

#[tokio::test]
async fn client_must_verify_the_server_name_not_the_dialled_host() {
    let agent = FakeAgent::start().await.unwrap();
    let info = agent.start_up_info();
    // Without the override rustls checks the certificate against "localhost", which is not in
    // its SAN: the component must use StartUpInfo.server_name.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&info.ca_cert))
        .identity(Identity::from_pem(&info.peer_cert, &info.peer_key));
    let connected = Endpoint::from_shared(format!("https://{}", info.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    let error = connected.expect_err("verified the server as localhost");
    assert!(
        format!("{error:?}").contains("NotValidForName"),
        "{error:?}"
    );
}

#[tokio::test]
async fn first_checkin_without_the_token_is_permission_denied() {
    let agent = FakeAgent::start().await.unwrap();
    let (_, mut client) = connect_as_component(&agent).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(observed_with_token("")).await.unwrap();
    let mut expected = client
        .checkin_v2(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = expected.message().await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "invalid token");
    let [refused] = agent.observed().try_into().unwrap();
    assert!(!refused.accepted);
    let refusal = agent.refusals().pop().unwrap();
    assert_eq!(
        (refusal.rpc, refusal.code),
        (Rpc::CheckinV2, Code::PermissionDenied)
    );
}

#[tokio::test]
async fn silent_checkin_stream_is_closed_after_five_seconds() {
    let agent = FakeAgent::start().await.unwrap();
    let (_, mut client) = connect_as_component(&agent).await;
    let (_tx, rx) = mpsc::channel::<CheckinObserved>(1);
    let opened = Instant::now();
    let mut expected = client
        .checkin_v2(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = expected.message().await.unwrap_err();
    let waited = opened.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        waited >= Duration::from_millis(4_900),
        "closed after {waited:?}, before the agent's 5 s"
    );
    assert!(
        waited < Duration::from_secs(30),
        "closed only after {waited:?}"
    );
    assert!(agent.observed().is_empty());
}

#[tokio::test]
async fn second_checkin_stream_is_already_exists() {
    let agent = FakeAgent::start().await.unwrap();
    let (info, mut client) = connect_as_component(&agent).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(observed_with_token(&info.token)).await.unwrap();
    let mut first = client
        .checkin_v2(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    first.message().await.unwrap().unwrap();

    let (tx2, rx2) = mpsc::channel(1);
    tx2.send(observed_with_token(&info.token)).await.unwrap();
    let status = client
        .checkin_v2(ReceiverStream::new(rx2))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    drop(tx);
}

#[tokio::test]
async fn close_streams_ends_the_checkin_with_the_given_status() {
    let agent = FakeAgent::start().await.unwrap();
    let (info, mut client) = connect_as_component(&agent).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(observed_with_token(&info.token)).await.unwrap();
    let mut expected = client
        .checkin_v2(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    expected.message().await.unwrap().unwrap();
    agent.close_streams(tonic::Status::unavailable("restarting"));
    let status = expected.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    // The slot is free again once the old stream's task has ended: a reconnect is accepted.
    let mut reconnected = None;
    for _ in 0..50 {
        let (tx, rx) = mpsc::channel(1);
        tx.send(observed_with_token(&info.token)).await.unwrap();
        match client.checkin_v2(ReceiverStream::new(rx)).await {
            Ok(response) => {
                reconnected = Some((tx, response.into_inner()));
                break;
            }
            Err(status) if status.code() == Code::AlreadyExists => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    let (_tx, mut stream) = reconnected.expect("reconnect accepted");
    stream.message().await.unwrap().unwrap();
}

#[tokio::test]
async fn actions_stream_needs_init_then_carries_requests_both_ways() {
    let agent = FakeAgent::start().await.unwrap();
    let (info, mut client) = connect_as_component(&agent).await;
    assert!(matches!(
        agent.send_action(ActionRequest::default()).await,
        Err(anomali_agent_input::control::fake_agent::FakeAgentError::NoActionsStream)
    ));

    let (tx, rx) = mpsc::channel(4);
    tx.send(ActionResponse {
        token: info.token.clone(),
        id: ACTIONS_INIT_ID.to_owned(),
        status: action_response::Status::Success.into(),
        result: b"{}".to_vec(),
        diagnostic: Vec::new(),
    })
    .await
    .unwrap();
    let mut requests = client
        .actions(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    agent
        .wait_for_action_response(|r| r.id == ACTIONS_INIT_ID, WAIT)
        .await
        .unwrap();

    let diagnostics = ActionRequest {
        id: "a-1".to_owned(),
        name: "diagnostics".to_owned(),
        r#type: action_request::Type::Diagnostics.into(),
        level: action_request::Level::Component.into(),
        ..ActionRequest::default()
    };
    agent.send_action(diagnostics.clone()).await.unwrap();
    assert_eq!(requests.message().await.unwrap().unwrap(), diagnostics);

    tx.send(ActionResponse {
        id: "a-1".to_owned(),
        status: action_response::Status::Failed.into(),
        result: br#"{"error":"not implemented"}"#.to_vec(),
        ..ActionResponse::default()
    })
    .await
    .unwrap();
    let answer = agent
        .wait_for_action_response(|r| r.id == "a-1", WAIT)
        .await
        .unwrap();
    assert_eq!(answer.message.status(), action_response::Status::Failed);
}

#[tokio::test]
async fn actions_stream_refuses_a_first_message_other_than_init() {
    let agent = FakeAgent::start().await.unwrap();
    let (info, mut client) = connect_as_component(&agent).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(ActionResponse {
        token: info.token.clone(),
        id: "not-init".to_owned(),
        ..ActionResponse::default()
    })
    .await
    .unwrap();
    let mut requests = client
        .actions(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = requests.message().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let refusal = agent
        .wait_for_refusal(|r| r.rpc == Rpc::Actions, WAIT)
        .await
        .unwrap();
    assert_eq!(refusal.code, Code::InvalidArgument);
}

#[tokio::test]
async fn short_first_message_timeout_is_honoured() {
    let agent = FakeAgent::start_with(FakeAgentOptions {
        first_message_timeout: Duration::from_millis(200),
        advertised_host: "127.0.0.1".to_owned(),
        ..FakeAgentOptions::default()
    })
    .await
    .unwrap();
    assert!(agent.addr().starts_with("127.0.0.1:"));
    let (_, mut client) = connect_as_component(&agent).await;
    let (_tx, rx) = mpsc::channel::<ActionResponse>(1);
    let mut requests = client
        .actions(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = requests.message().await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
}
