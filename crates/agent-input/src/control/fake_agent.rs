//! A fake Elastic Agent for tests: the server side of the V2 control protocol, in-process.
//!
//! - Start: [`FakeAgent::start`] makes a fresh CA and one leaf certificate (SAN DNS = a random
//!   32-hex `server_name`, EKU serverAuth + clientAuth) and serves `proto.ElasticAgent` on
//!   `127.0.0.1:0` over TLS that requires a client certificate signed by that CA. Like the real
//!   agent, the same leaf is the server's certificate and the component's client identity.
//! - Hand-over: [`FakeAgent::start_up_info_bytes`] is the encoded `StartUpInfo` a test writes to
//!   a child's stdin (then closes stdin), as the agent does.
//! - Rules enforced as the agent does: the first `CheckinObserved` must come within
//!   [`FakeAgentOptions::first_message_timeout`] (5 s) and carry the token, else the stream ends
//!   with `DeadlineExceeded` / `PermissionDenied`; the first `ActionResponse` must have id
//!   `"init"` (`InvalidArgument`) and the token; a second concurrent stream of the same rpc gets
//!   `AlreadyExists`. Every refusal is recorded ([`FakeAgent::refusals`]).
//! - Behaviour: every received `CheckinObserved` is answered with the current expected state
//!   (the real agent answers only when something is unsettled, which is a subset), and a change
//!   made with [`FakeAgent::set_expected`] is pushed at once on the open stream.
//! - Differences from the real agent: keys are ECDSA P-256 in PKCS#8 PEM (ring cannot make RSA
//!   keys; the agent sends RSA-2048 PKCS#1), certificate validity is rcgen's default rather than
//!   now + 10 years, and the server does not pick its certificate by SNI (a client that skips
//!   the `server_name` override still fails, on name verification).
//! - Records are kept in memory for the agent's lifetime; dropping it closes the streams with
//!   `Unavailable` and stops the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prost::Message as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData as _,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status, Streaming};

use super::wire::proto::elastic_agent_server::{ElasticAgent, ElasticAgentServer};
use super::wire::proto::{
    ActionRequest, ActionResponse, AgentInfo, AgentManagedMode, CheckinExpected, CheckinObserved,
    ConnInfoServices, ConnectionSupports, StartUpInfo,
};

/// How long the agent waits for the first message of a stream.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// The agent's default gRPC message size limit (`agent.grpc.max_message_size`), 100 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 100 * 1024 * 1024;
/// Id of the first `ActionResponse` on every Actions stream.
pub const ACTIONS_INIT_ID: &str = "init";

/// Settings of a [`FakeAgent`]; [`Default`] behaves like a stock agent.
#[derive(Debug, Clone)]
pub struct FakeAgentOptions {
    /// Host written into `StartUpInfo.addr` (the server always listens on 127.0.0.1). The agent
    /// writes `localhost`, so that is the default: it checks the component resolves the name.
    pub advertised_host: String,
    /// Deadline for the first message of each stream.
    pub first_message_timeout: Duration,
    /// `StartUpInfo.max_message_size`, also the server's own send and receive limit.
    pub max_message_size: u32,
    /// `StartUpInfo.supports`; the agent always offers check-in chunking.
    pub supports: Vec<ConnectionSupports>,
    /// `StartUpInfo.agent_info`.
    pub agent_info: Option<AgentInfo>,
    /// The expected state before the test sets one.
    pub initial_expected: CheckinExpected,
}

impl Default for FakeAgentOptions {
    fn default() -> Self {
        let agent_info = AgentInfo {
            id: "fake-agent-0000".to_owned(),
            version: "9.2.0".to_owned(),
            snapshot: false,
            mode: AgentManagedMode::Managed.into(),
            unprivileged: false,
        };
        Self {
            advertised_host: "localhost".to_owned(),
            first_message_timeout: FIRST_MESSAGE_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            supports: vec![ConnectionSupports::CheckinChunking],
            initial_expected: CheckinExpected {
                agent_info: Some(agent_info.clone()),
                ..CheckinExpected::default()
            },
            agent_info: Some(agent_info),
        }
    }
}

/// Why the fake agent could not start or do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum FakeAgentError {
    /// rcgen could not make the CA or the leaf.
    #[error("cannot make the test certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// Binding 127.0.0.1:0 failed.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// tonic refused the TLS settings.
    #[error("cannot set up tls: {0}")]
    Tls(#[from] tonic::transport::Error),
    /// [`FakeAgent::send_action`] with no accepted Actions stream open.
    #[error("no actions stream is open")]
    NoActionsStream,
    /// A `wait_for_*` helper ran out of time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// What it waited for.
        what: &'static str,
    },
}

/// One `CheckinObserved` as received.
#[derive(Debug, Clone)]
pub struct Observed {
    /// When the server decoded it.
    pub received_at: Instant,
    /// False for a first message the agent refused (wrong or missing token).
    pub accepted: bool,
    /// The message itself.
    pub message: CheckinObserved,
}

/// One `ActionResponse` as received.
#[derive(Debug, Clone)]
pub struct ReceivedActionResponse {
    /// When the server decoded it.
    pub received_at: Instant,
    /// False for a first message the agent refused (not `init`, or wrong token).
    pub accepted: bool,
    /// The message itself.
    pub message: ActionResponse,
}

/// Which rpc a [`Refusal`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `CheckinV2`.
    CheckinV2,
    /// `Actions`.
    Actions,
}

/// A stream the fake agent closed because the component broke a rule.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// When it was closed.
    pub at: Instant,
    /// The rpc whose stream was closed.
    pub rpc: Rpc,
    /// The gRPC status code sent.
    pub code: Code,
    /// The status message sent.
    pub message: String,
}

/// A running fake agent; see the module contract.
#[derive(Debug)]
pub struct FakeAgent {
    local_addr: SocketAddr,
    addr: String,
    server_name: String,
    token: String,
    ca_cert_pem: String,
    peer_cert_pem: String,
    peer_key_pem: String,
    options: FakeAgentOptions,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeAgent {
    /// Starts a fake agent with [`FakeAgentOptions::default`].
    pub async fn start() -> Result<Self, FakeAgentError> {
        Self::start_with(FakeAgentOptions::default()).await
    }

    /// Starts a fake agent with the given options.
    pub async fn start_with(options: FakeAgentOptions) -> Result<Self, FakeAgentError> {
        let server_name = random_hex32()?;
        let token = random_hex32()?;
        let pki = Pki::generate(&server_name)?;

        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(FakeAgentError::Bind)?;
        let local_addr = listener.local_addr().map_err(FakeAgentError::Bind)?;

        let (expected, _) = watch::channel(options.initial_expected.clone());
        let (events, _) = watch::channel(0_u64);
        let (close, _) = broadcast::channel(4);
        let shared = Arc::new(Shared {
            token: token.clone(),
            first_message_timeout: options.first_message_timeout,
            expected,
            events,
            close,
            records: Mutex::new(Records::default()),
            checkin_open: AtomicBool::new(false),
            actions_open: AtomicBool::new(false),
            next_stream_id: AtomicU64::new(1),
            actions: Mutex::new(None),
        });

        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&pki.leaf_cert_pem, &pki.leaf_key_pem))
            .client_ca_root(Certificate::from_pem(&pki.ca_cert_pem));
        let server = Server::builder().tls_config(tls)?;
        let limit = usize::try_from(options.max_message_size).unwrap_or(usize::MAX);
        let service = ElasticAgentServer::new(Service {
            shared: Arc::clone(&shared),
        })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let signal = async {
                // A dropped sender also means stop.
                let _ = shutdown_rx.await;
            };
            if let Err(error) = server
                .serve_with_incoming_shutdown(service, TcpIncoming::from(listener), signal)
                .await
            {
                tracing::warn!(%error, "fake agent server stopped");
            }
        });

        Ok(Self {
            local_addr,
            addr: format!("{}:{}", options.advertised_host, local_addr.port()),
            server_name,
            token,
            ca_cert_pem: pki.ca_cert_pem,
            peer_cert_pem: pki.leaf_cert_pem,
            peer_key_pem: pki.leaf_key_pem,
            options,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The socket the server listens on (always 127.0.0.1).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `StartUpInfo.addr`: `<advertised_host>:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The 32-hex name in the leaf's SAN, to send as SNI and verify against.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The token the first messages must carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// PEM of the CA.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// PEM of the leaf certificate handed to the component.
    pub fn peer_cert_pem(&self) -> &str {
        &self.peer_cert_pem
    }

    /// PEM (PKCS#8) of the leaf's private key handed to the component.
    pub fn peer_key_pem(&self) -> &str {
        &self.peer_key_pem
    }

    /// The connection info the agent would give a component it launches.
    pub fn start_up_info(&self) -> StartUpInfo {
        StartUpInfo {
            addr: self.addr.clone(),
            server_name: self.server_name.clone(),
            token: self.token.clone(),
            ca_cert: self.ca_cert_pem.clone().into_bytes(),
            peer_cert: self.peer_cert_pem.clone().into_bytes(),
            peer_key: self.peer_key_pem.clone().into_bytes(),
            services: vec![ConnInfoServices::CheckinV2.into()],
            supports: self.options.supports.iter().map(|s| (*s).into()).collect(),
            max_message_size: self.options.max_message_size,
            agent_info: self.options.agent_info.clone(),
        }
    }

    /// [`Self::start_up_info`] encoded as the agent writes it to stdin: no length prefix.
    pub fn start_up_info_bytes(&self) -> Vec<u8> {
        self.start_up_info().encode_to_vec()
    }

    /// The expected state sent in reply to each check-in.
    pub fn expected(&self) -> CheckinExpected {
        self.shared.expected.borrow().clone()
    }

    /// Replaces the expected state and pushes it on the open `CheckinV2` stream, if any.
    pub fn set_expected(&self, expected: CheckinExpected) {
        self.shared.expected.send_replace(expected);
    }

    /// Edits the expected state in place and pushes the result like [`Self::set_expected`].
    pub fn update_expected(&self, edit: impl FnOnce(&mut CheckinExpected)) {
        self.shared.expected.send_modify(edit);
    }

    /// Every `CheckinObserved` received so far, oldest first, refused ones included.
    pub fn observed(&self) -> Vec<Observed> {
        self.shared.records().observed.clone()
    }

    /// Every `ActionResponse` received so far, oldest first, refused ones included.
    pub fn action_responses(&self) -> Vec<ReceivedActionResponse> {
        self.shared.records().action_responses.clone()
    }

    /// Every stream the fake agent closed for a broken rule, oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.shared.records().refusals.clone()
    }

    /// Waits until an accepted `CheckinObserved` (received at any time, including before the
    /// call) satisfies `predicate`, and returns the first such.
    pub async fn wait_for_observed(
        &self,
        predicate: impl Fn(&CheckinObserved) -> bool,
        timeout: Duration,
    ) -> Result<Observed, FakeAgentError> {
        self.wait_for("a matching CheckinObserved", timeout, |records| {
            records
                .observed
                .iter()
                .find(|o| o.accepted && predicate(&o.message))
                .cloned()
        })
        .await
    }

    /// Waits until an accepted `ActionResponse` (received at any time) satisfies `predicate`,
    /// and returns the first such.
    pub async fn wait_for_action_response(
        &self,
        predicate: impl Fn(&ActionResponse) -> bool,
        timeout: Duration,
    ) -> Result<ReceivedActionResponse, FakeAgentError> {
        self.wait_for("a matching ActionResponse", timeout, |records| {
            records
                .action_responses
                .iter()
                .find(|r| r.accepted && predicate(&r.message))
                .cloned()
        })
        .await
    }

    /// Waits until the fake agent has closed a stream for a broken rule.
    pub async fn wait_for_refusal(
        &self,
        predicate: impl Fn(&Refusal) -> bool,
        timeout: Duration,
    ) -> Result<Refusal, FakeAgentError> {
        self.wait_for("a refusal", timeout, |records| {
            records.refusals.iter().find(|r| predicate(r)).cloned()
        })
        .await
    }

    /// Sends an `ActionRequest` on the open, accepted Actions stream.
    pub async fn send_action(&self, request: ActionRequest) -> Result<(), FakeAgentError> {
        let sender = self
            .shared
            .actions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(_, sender)| sender.clone())
            .ok_or(FakeAgentError::NoActionsStream)?;
        sender
            .send(Ok(request))
            .await
            .map_err(|_| FakeAgentError::NoActionsStream)
    }

    /// Ends the open `CheckinV2` and Actions streams with `status`, as an agent restart or
    /// failure would; the component is expected to reconnect.
    pub fn close_streams(&self, status: Status) {
        // No subscriber just means no stream is open.
        let _ = self.shared.close.send(status);
    }

    async fn wait_for<T>(
        &self,
        what: &'static str,
        timeout: Duration,
        find: impl Fn(&Records) -> Option<T>,
    ) -> Result<T, FakeAgentError> {
        let mut events = self.shared.events.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Mark the current generation seen before looking, so a record added after the
            // look wakes the wait below instead of being missed.
            events.borrow_and_update();
            if let Some(found) = find(&self.shared.records()) {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, events.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `shared`, which we hold; only the deadline ends this.
                Ok(Err(_)) | Err(_) => {
                    return Err(FakeAgentError::Timeout {
                        waited: timeout,
                        what,
                    });
                }
            }
        }
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.shared.close.send(Status::unavailable("agent stopped"));
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// State shared by the handle and the gRPC service.
#[derive(Debug)]
struct Shared {
    token: String,
    first_message_timeout: Duration,
    expected: watch::Sender<CheckinExpected>,
    /// Bumped after every record, to wake `wait_for_*`.
    events: watch::Sender<u64>,
    close: broadcast::Sender<Status>,
    records: Mutex<Records>,
    checkin_open: AtomicBool,
    actions_open: AtomicBool,
    next_stream_id: AtomicU64,
    /// The accepted Actions stream's sender, tagged with its stream id.
    actions: Mutex<Option<(u64, Outbound<ActionRequest>)>>,
}

#[derive(Debug, Default)]
struct Records {
    observed: Vec<Observed>,
    action_responses: Vec<ReceivedActionResponse>,
    refusals: Vec<Refusal>,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Records> {
        // A panicking test thread must not hide the records from the others.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, edit: impl FnOnce(&mut Records)) {
        edit(&mut self.records());
        self.events.send_modify(|n| *n += 1);
    }

    fn refuse(&self, rpc: Rpc, status: &Status) {
        self.record(|r| {
            r.refusals.push(Refusal {
                at: Instant::now(),
                rpc,
                code: status.code(),
                message: status.message().to_owned(),
            });
        });
    }
}

/// Frees an rpc's one-stream slot when the stream's task ends, however it ends.
struct Slot<'a>(&'a AtomicBool);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Service {
    shared: Arc<Shared>,
}

type Outbound<T> = mpsc::Sender<Result<T, Status>>;

#[tonic::async_trait]
impl ElasticAgent for Service {
    type CheckinV2Stream = ReceiverStream<Result<CheckinExpected, Status>>;
    type ActionsStream = ReceiverStream<Result<ActionRequest, Status>>;

    async fn checkin_v2(
        &self,
        request: Request<Streaming<CheckinObserved>>,
    ) -> Result<Response<Self::CheckinV2Stream>, Status> {
        if self.shared.checkin_open.swap(true, Ordering::SeqCst) {
            let status = Status::already_exists("checkin stream already connected");
            self.shared.refuse(Rpc::CheckinV2, &status);
            return Err(status);
        }
        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::clone(&self.shared);
        let close = shared.close.subscribe();
        tokio::spawn(async move {
            let _slot = Slot(&shared.checkin_open);
            run_checkin(&shared, request.into_inner(), tx, close).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn actions(
        &self,
        request: Request<Streaming<ActionResponse>>,
    ) -> Result<Response<Self::ActionsStream>, Status> {
        if self.shared.actions_open.swap(true, Ordering::SeqCst) {
            let status = Status::already_exists("actions stream already connected");
            self.shared.refuse(Rpc::Actions, &status);
            return Err(status);
        }
        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::clone(&self.shared);
        let close = shared.close.subscribe();
        tokio::spawn(async move {
            let _slot = Slot(&shared.actions_open);
            run_actions(&shared, request.into_inner(), tx, close).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Reads the first message of a stream under the agent's deadline; `Err` is the status to
/// close with, `Ok(None)` means the client went away first.
async fn first_message<T>(
    shared: &Shared,
    inbound: &mut Streaming<T>,
) -> Result<Option<T>, Status> {
    match tokio::time::timeout(shared.first_message_timeout, inbound.message()).await {
        Err(_) => Err(Status::deadline_exceeded(
            "never received a first message in time",
        )),
        Ok(Ok(message)) => Ok(message),
        Ok(Err(_)) => Ok(None),
    }
}

async fn run_checkin(
    shared: &Shared,
    mut inbound: Streaming<CheckinObserved>,
    tx: Outbound<CheckinExpected>,
    mut close: broadcast::Receiver<Status>,
) {
    let first = match first_message(shared, &mut inbound).await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            shared.refuse(Rpc::CheckinV2, &status);
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    let accepted = first.token == shared.token;
    shared.record(|r| {
        r.observed.push(Observed {
            received_at: Instant::now(),
            accepted,
            message: first,
        });
    });
    if !accepted {
        let status = Status::permission_denied("invalid token");
        shared.refuse(Rpc::CheckinV2, &status);
        let _ = tx.send(Err(status)).await;
        return;
    }

    let mut expected = shared.expected.subscribe();
    let mut reply = true;
    loop {
        if reply {
            let current = expected.borrow_and_update().clone();
            if tx.send(Ok(current)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(message)) => {
                    shared.record(|r| r.observed.push(Observed {
                        received_at: Instant::now(),
                        accepted: true,
                        message,
                    }));
                    reply = true;
                }
                // End of stream or a broken connection: the component reconnects if it can.
                Ok(None) | Err(_) => return,
            },
            changed = expected.changed() => {
                // The sender lives in `shared`, so this cannot fail while we run; if it ever
                // did, ending the stream beats spinning on an always-ready error.
                if changed.is_err() {
                    return;
                }
                reply = true;
            }
            status = close.recv() => {
                let status = status.unwrap_or_else(|_| Status::unavailable("agent stopped"));
                let _ = tx.send(Err(status)).await;
                return;
            }
        }
    }
}

async fn run_actions(
    shared: &Shared,
    mut inbound: Streaming<ActionResponse>,
    tx: Outbound<ActionRequest>,
    mut close: broadcast::Receiver<Status>,
) {
    let first = match first_message(shared, &mut inbound).await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            shared.refuse(Rpc::Actions, &status);
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    let refusal = if first.id != ACTIONS_INIT_ID {
        Some(Status::invalid_argument("first message must be an init"))
    } else if first.token != shared.token {
        Some(Status::permission_denied("invalid token"))
    } else {
        None
    };
    shared.record(|r| {
        r.action_responses.push(ReceivedActionResponse {
            received_at: Instant::now(),
            accepted: refusal.is_none(),
            message: first,
        });
    });
    if let Some(status) = refusal {
        shared.refuse(Rpc::Actions, &status);
        let _ = tx.send(Err(status)).await;
        return;
    }

    let stream_id = shared.next_stream_id.fetch_add(1, Ordering::SeqCst);
    *shared
        .actions
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some((stream_id, tx.clone()));
    loop {
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(message)) => shared.record(|r| {
                    r.action_responses.push(ReceivedActionResponse {
                        received_at: Instant::now(),
                        accepted: true,
                        message,
                    });
                }),
                Ok(None) | Err(_) => break,
            },
            status = close.recv() => {
                let status = status.unwrap_or_else(|_| Status::unavailable("agent stopped"));
                let _ = tx.send(Err(status)).await;
                break;
            }
        }
    }
    let mut actions = shared
        .actions
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // A newer stream may already have taken the place; leave its sender alone.
    if matches!(actions.as_ref(), Some((id, _)) if *id == stream_id) {
        *actions = None;
    }
}

/// The CA and the one leaf the agent makes per component.
struct Pki {
    ca_cert_pem: String,
    leaf_cert_pem: String,
    leaf_key_pem: String,
}

impl Pki {
    fn generate(server_name: &str) -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::new(vec!["localhost".to_owned()])?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(vec![server_name.to_owned()])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, server_name);
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
        Ok(Self {
            ca_cert_pem: ca.pem(),
            leaf_cert_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        })
    }
}

/// 128 random bits as 32 hex digits, the shape of the agent's server names.
///
/// The randomness comes from generating a key pair (ring's system RNG, via rcgen) so that the
/// crate needs no RNG dependency for a test helper.
fn random_hex32() -> Result<String, rcgen::Error> {
    let key = KeyPair::generate()?;
    let digest = Sha256::digest(key.der_bytes());
    Ok(hex::encode(&digest[..16]))
}
