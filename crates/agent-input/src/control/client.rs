//! The component side of the control protocol: connect to Elastic Agent and keep the two
//! streams going.
//!
//! - [`read_start_up_info`]: the `StartUpInfo` the agent writes on stdin (read to its end).
//! - [`connect`]: gRPC over mutual TLS to `addr`, trying every address its host resolves to
//!   (the agent listens on one address of `localhost`), SNI and verification name
//!   `server_name`, the agent's CA, the given client certificate; message size raised to
//!   `max_message_size`.
//! - [`check_in`]: `CheckinV2`: the first message (token, version info, pid) goes at once, then
//!   the latest [`Observed`] at once on every change and at least every 25 s; every
//!   `CheckinExpected` is handed over in order. [`answer_actions`]: the `Actions` stream, opened
//!   with the `init` response; every request is answered FAILED (none is implemented).
//!
//! Both return when their stream ends; the caller reconnects.

use std::time::Duration;

use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::wire::proto;
use super::wire::proto::elastic_agent_client::ElasticAgentClient;
use crate::error::error_chain;

/// How often a check-in goes out when nothing changes (the agent counts a miss after 30 s).
pub const CHECKIN_INTERVAL: Duration = Duration::from_secs(25);

/// Why talking to the agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// stdin could not be read or did not hold a `StartUpInfo`.
    #[error("start-up info on stdin: {0}")]
    StartUp(String),
    /// No address of the agent answered.
    #[error("cannot connect to elastic agent at {addr}: {reason}")]
    Connect {
        /// The address given.
        addr: String,
        /// Why, for the last address tried.
        reason: String,
    },
    /// A stream failed.
    #[error("control stream: {0}")]
    Stream(String),
}

/// What the component reports: its units and the indexes it has applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Every unit, with its state and applied `config_state_idx`.
    pub units: Vec<proto::UnitObserved>,
    /// The `features_idx` last received.
    pub features_idx: u64,
    /// The `component_idx` last received.
    pub component_idx: u64,
}

/// Reads stdin to its end and decodes the `StartUpInfo` there.
pub fn read_start_up_info(
    mut input: impl std::io::Read,
) -> Result<proto::StartUpInfo, ControlError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| ControlError::StartUp(e.to_string()))?;
    if bytes.is_empty() {
        return Err(ControlError::StartUp(
            "stdin was empty: `agent` mode is started by elastic agent, which writes the connection info there".to_owned(),
        ));
    }
    let info = proto::StartUpInfo::decode(bytes.as_slice())
        .map_err(|e| ControlError::StartUp(format!("not a StartUpInfo message: {e}")))?;
    if info.addr.is_empty() || info.token.is_empty() {
        return Err(ControlError::StartUp(
            "the StartUpInfo has no address or token".to_owned(),
        ));
    }
    Ok(info)
}

/// Checks that the start-up info's CA, certificate and key make a TLS client configuration: a
/// bad one cannot get better by retrying, so it is reported at once.
pub fn check_tls_material(info: &proto::StartUpInfo) -> Result<(), ControlError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&info.ca_cert))
        .identity(Identity::from_pem(&info.peer_cert, &info.peer_key))
        .domain_name(info.server_name.clone());
    Endpoint::from_static("https://127.0.0.1:1")
        .tls_config(tls)
        .map(drop)
        .map_err(|error| {
            ControlError::StartUp(format!(
                "the certificate or key in it cannot be used: {}",
                error_chain(&error)
            ))
        })
}

/// Connects to the agent; see the module docs.
pub async fn connect(
    info: &proto::StartUpInfo,
) -> Result<ElasticAgentClient<Channel>, ControlError> {
    let connect_error = |reason: String| ControlError::Connect {
        addr: info.addr.clone(),
        reason,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&info.ca_cert))
        .identity(Identity::from_pem(&info.peer_cert, &info.peer_key))
        .domain_name(info.server_name.clone());
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(info.addr.as_str())
        .await
        .map_err(|e| connect_error(format!("cannot resolve: {e}")))?
        .collect();
    let mut last = "no address".to_owned();
    for address in addresses {
        let endpoint = Endpoint::from_shared(format!("https://{address}"))
            .map_err(|e| connect_error(e.to_string()))?
            .tls_config(tls.clone())
            .map_err(|e| connect_error(format!("tls: {}", error_chain(&e))))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        match endpoint.connect().await {
            Ok(channel) => {
                let limit = match usize::try_from(info.max_message_size) {
                    Ok(0) | Err(_) => 4 << 20,
                    Ok(limit) => limit,
                };
                return Ok(ElasticAgentClient::new(channel)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit));
            }
            Err(error) => last = format!("{address}: {}", error_chain(&error)),
        }
    }
    Err(connect_error(last))
}

/// The version info of this program (sent on each stream's first check-in).
pub fn version_info(
    name: &str,
    version: &str,
    build_hash: &str,
) -> proto::CheckinObservedVersionInfo {
    proto::CheckinObservedVersionInfo {
        name: name.to_owned(),
        meta: [("version".to_owned(), version.to_owned())]
            .into_iter()
            .collect(),
        build_hash: build_hash.to_owned(),
    }
}

fn message(
    token: &str,
    observed: &Observed,
    first: Option<&proto::CheckinObservedVersionInfo>,
) -> proto::CheckinObserved {
    proto::CheckinObserved {
        token: token.to_owned(),
        units: observed.units.clone(),
        version_info: first.cloned(),
        features_idx: observed.features_idx,
        component_idx: observed.component_idx,
        units_timestamp: None,
        // No chunking declared: the agent then sends whole messages (size raised in connect).
        supports: Vec::new(),
        pid: u64::from(std::process::id()),
    }
}

/// Runs `CheckinV2` until the stream ends or fails; see the module docs.
pub async fn check_in(
    client: &mut ElasticAgentClient<Channel>,
    token: &str,
    version: proto::CheckinObservedVersionInfo,
    mut observed: watch::Receiver<Observed>,
    expected: mpsc::Sender<proto::CheckinExpected>,
) -> Result<(), ControlError> {
    let (outgoing, stream) = mpsc::channel(8);
    let current = observed.borrow_and_update().clone();
    outgoing
        .send(message(token, &current, Some(&version)))
        .await
        .map_err(|_| ControlError::Stream("check-in stream closed".to_owned()))?;
    let response = client
        .checkin_v2(tokio_stream::wrappers::ReceiverStream::new(stream))
        .await
        .map_err(|status| ControlError::Stream(format!("CheckinV2: {status}")))?;
    let mut incoming = response.into_inner();
    let mut ticks = tokio::time::interval(CHECKIN_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            received = incoming.message() => match received {
                Ok(Some(message)) => {
                    if expected.send(message).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Err(ControlError::Stream("the agent closed CheckinV2".to_owned())),
                Err(status) => return Err(ControlError::Stream(format!("CheckinV2: {status}"))),
            },
            changed = observed.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let current = observed.borrow_and_update().clone();
                if outgoing.send(message(token, &current, None)).await.is_err() {
                    return Err(ControlError::Stream("check-in stream closed".to_owned()));
                }
                ticks.reset();
            }
            _ = ticks.tick() => {
                let current = observed.borrow().clone();
                if outgoing.send(message(token, &current, None)).await.is_err() {
                    return Err(ControlError::Stream("check-in stream closed".to_owned()));
                }
            }
        }
    }
}

/// Runs `Actions` until the stream ends or fails; see the module docs.
pub async fn answer_actions(
    client: &mut ElasticAgentClient<Channel>,
    token: &str,
) -> Result<(), ControlError> {
    let (outgoing, stream) = mpsc::channel(8);
    let init = proto::ActionResponse {
        token: token.to_owned(),
        id: "init".to_owned(),
        status: proto::action_response::Status::Success as i32,
        result: b"{}".to_vec(),
        diagnostic: Vec::new(),
    };
    outgoing
        .send(init)
        .await
        .map_err(|_| ControlError::Stream("actions stream closed".to_owned()))?;
    let response = client
        .actions(tokio_stream::wrappers::ReceiverStream::new(stream))
        .await
        .map_err(|status| ControlError::Stream(format!("Actions: {status}")))?;
    let mut incoming = response.into_inner();
    loop {
        match incoming.message().await {
            Ok(Some(request)) => {
                tracing::info!(action = %request.name, id = %request.id, "action not implemented; answered failed");
                let result = serde_json::json!({
                    "error": format!("action {:?} is not implemented by ti-anomali", request.name)
                });
                let answer = proto::ActionResponse {
                    token: token.to_owned(),
                    id: request.id,
                    status: proto::action_response::Status::Failed as i32,
                    result: result.to_string().into_bytes(),
                    diagnostic: Vec::new(),
                };
                if outgoing.send(answer).await.is_err() {
                    return Err(ControlError::Stream("actions stream closed".to_owned()));
                }
            }
            Ok(None) => return Err(ControlError::Stream("the agent closed Actions".to_owned())),
            Err(status) => return Err(ControlError::Stream(format!("Actions: {status}"))),
        }
    }
}
