//! `ti-anomali serve` and `ti-anomali lookup`: the main job on the embedded store.
//!
//! Wiring only: the webhook (agent-input) hands each request's mapped documents to the store
//! (latest-store), which keeps the source copies and the live ones; a sweeper removes what
//! expires; the same listener answers `/_ti/lookup`, `/_ti/health` and `/_ti/metrics`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anomali_agent_input::poll::{ObjectSink, PollConfig, PollError, PollStatus, Poller};
use anomali_agent_input::{
    ReadApi, SinkError, StoreSink, WebhookConfig, WebhookServer, sign_sha256_hex,
};
use anomali_latest_store::{EmbeddedOptions, EmbeddedStore, LatestStore};
use anomali_mapping::{GeoIp, MappingSettings, Received, map_intelligence};
use anomali_model::{AgentFields, EcsDocument};
use anomali_sink_es::{
    Backoff, DeadLetterFile, EsClient, EsConnection, EsLatestStore, IndexNames, RetentionMode,
    ShipIdentity, ShipperConfig, ShippingStore, Spool, Stream, apply_source_retention,
    detect_capabilities, enforce_source_retention, ensure_setup, upgrade_latest_index,
};
use anyhow::{Context, bail};
use serde::Deserialize;

/// The YAML file of `serve`: the webhook's keys (as Fleet renders them) under `webhook`, and the
/// store's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServeConfig {
    /// Where the store and the source archive live. By default, `./data`.
    data_dir: PathBuf,
    /// Days of source segments to keep. By default, 5.
    source_retention_days: u32,
    /// Seconds between expiry sweeps. By default, 5 (at most 10).
    sweep_interval_seconds: u64,
    /// A MaxMind City database for GeoIP. By default, none.
    geoip_db: Option<PathBuf>,
    /// Ship to this Elasticsearch instead of the embedded store (shorthand for
    /// `elasticsearch.url`). By default, none.
    es_url: Option<String>,
    /// The Elasticsearch connection: `url`/`hosts`/`cloud_id`, credentials, TLS. When set,
    /// `serve` ships there instead of the embedded store.
    elasticsearch: Option<EsConnection>,
    /// The namespace of the source data stream. By default, `default`.
    namespace: String,
    /// How pushes are spooled and shipped to Elasticsearch.
    shipping: ShippingConfig,
    /// Poll the ThreatStream Intelligence API (beside the webhook, or alone with
    /// `webhook.enabled: false`). By default, off.
    intelligence: Option<PollConfig>,
    /// The webhook, on by default.
    webhook: WebhookConfig,
    /// Standalone `serve` exits when polling alone stops for good; under Elastic Agent the unit
    /// reports it instead.
    #[serde(skip)]
    exit_when_polling_stops: bool,
}

/// The `shipping` keys: the spool in front of Elasticsearch and the bulk requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ShippingConfig {
    /// Most MiB waiting in the spool; past it the webhook answers 503. By default, 1024.
    spool_max_mb: u64,
    /// Most actions per bulk request (a live indicator is two). By default, 5000.
    bulk_max_actions: usize,
    /// Most MiB per bulk request, before compression. By default, 10.
    bulk_max_mb: usize,
    /// How long a partial bulk request waits for more, in milliseconds. By default, 500.
    flush_interval_ms: u64,
    /// Most bulk requests in flight at once. By default, 2.
    max_in_flight: usize,
    /// `gzip`, `none`, or `auto`: gzip unless every node is on loopback (where bytes are free
    /// and compressing only takes CPU from the cluster). By default, `auto`.
    compression: String,
    /// Where refused documents go. By default, `<data_dir>/dead-letter.ndjson`.
    dead_letter_file: Option<PathBuf>,
}

impl Default for ShippingConfig {
    fn default() -> Self {
        let bulk = ShipperConfig::default();
        Self {
            spool_max_mb: 1024,
            bulk_max_actions: bulk.max_batch_actions,
            bulk_max_mb: bulk.max_batch_bytes >> 20,
            flush_interval_ms: bulk.flush_interval.as_millis() as u64,
            max_in_flight: bulk.max_in_flight,
            compression: "auto".to_owned(),
            dead_letter_file: None,
        }
    }
}

impl ShippingConfig {
    fn shipper_config(&self, loopback: bool) -> anyhow::Result<ShipperConfig> {
        let gzip = match self.compression.as_str() {
            "gzip" => true,
            "none" => false,
            "auto" => !loopback,
            other => bail!("shipping.compression: {other:?} is not gzip, none or auto"),
        };
        if self.bulk_max_actions == 0 || self.bulk_max_mb == 0 || self.max_in_flight == 0 {
            bail!("shipping: bulk_max_actions, bulk_max_mb and max_in_flight must be at least 1");
        }
        if self.spool_max_mb == 0 {
            bail!("shipping.spool_max_mb must be at least 1");
        }
        Ok(ShipperConfig {
            max_batch_actions: self.bulk_max_actions,
            max_batch_bytes: self.bulk_max_mb.saturating_mul(1 << 20),
            flush_interval: Duration::from_millis(self.flush_interval_ms),
            max_in_flight: self.max_in_flight,
            gzip,
            ..ShipperConfig::default()
        })
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            source_retention_days: 5,
            sweep_interval_seconds: 5,
            geoip_db: None,
            es_url: None,
            elasticsearch: None,
            namespace: "default".to_owned(),
            shipping: ShippingConfig::default(),
            intelligence: None,
            webhook: WebhookConfig::default(),
            exit_when_polling_stops: false,
        }
    }
}

/// Arguments of `ti-anomali serve`; flags override the file.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// A YAML configuration file (see the README).
    #[arg(long, short, env = "TI_ANOMALI_CONFIG")]
    config: Option<PathBuf>,
    /// Where the store and the source archive live (default: ./data).
    #[arg(long, env = "TI_ANOMALI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (default: localhost).
    #[arg(long, env = "TI_ANOMALI_LISTEN_ADDRESS")]
    listen_address: Option<String>,
    /// Port to listen on (default: 8181).
    #[arg(long, env = "TI_ANOMALI_LISTEN_PORT")]
    listen_port: Option<u16>,
    /// The path indicators are posted to (default: /).
    #[arg(long, env = "TI_ANOMALI_URL")]
    url: Option<String>,
    /// The Content-Type required; empty disables the check (default: application/x-ndjson).
    #[arg(long, env = "TI_ANOMALI_CONTENT_TYPE")]
    content_type: Option<String>,
    /// HMAC key for the X-Filebeat-Signature header (sha256).
    #[arg(long, env = "TI_ANOMALI_HMAC_KEY", hide_env_values = true)]
    hmac_key: Option<String>,
    /// Header carrying a shared secret (with --secret-value).
    #[arg(long, env = "TI_ANOMALI_SECRET_HEADER")]
    secret_header: Option<String>,
    /// The shared secret's value.
    #[arg(long, env = "TI_ANOMALI_SECRET_VALUE", hide_env_values = true)]
    secret_value: Option<String>,
    /// Basic auth user name (with --basic-auth-password).
    #[arg(long, env = "TI_ANOMALI_BASIC_AUTH_USERNAME")]
    basic_auth_username: Option<String>,
    /// Basic auth password.
    #[arg(long, env = "TI_ANOMALI_BASIC_AUTH_PASSWORD", hide_env_values = true)]
    basic_auth_password: Option<String>,
    /// PEM certificate chain: serve HTTPS (with --ssl-key).
    #[arg(long, value_name = "FILE")]
    ssl_certificate: Option<PathBuf>,
    /// PEM private key for --ssl-certificate.
    #[arg(long, value_name = "FILE")]
    ssl_key: Option<PathBuf>,
    /// PEM CA file to verify client certificates against (repeatable).
    #[arg(long, value_name = "FILE")]
    ssl_certificate_authorities: Vec<PathBuf>,
    /// none, optional or required.
    #[arg(long)]
    ssl_client_authentication: Option<String>,
    /// Largest accepted body, decompressed (default: 64 MiB).
    #[arg(long)]
    max_body_bytes: Option<u64>,
    /// Tags for every document, replacing the defaults (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Fail-safe expiry for indicators without deleted_at (default: 90d).
    #[arg(long)]
    ioc_expiration_duration: Option<String>,
    /// Keep the raw indicator in event.original.
    #[arg(long)]
    preserve_original_event: bool,
    /// Allow a non-loopback listener without authentication.
    #[arg(long)]
    insecure: bool,
    /// A MaxMind City database for GeoIP.
    #[arg(long, value_name = "FILE")]
    geoip_db: Option<PathBuf>,
    /// Ship to this Elasticsearch (source data stream and latest index) instead of the embedded
    /// store.
    #[arg(long, env = "TI_ANOMALI_ES_URL")]
    es_url: Option<String>,
}

fn load_config(path: Option<&Path>) -> anyhow::Result<ServeConfig> {
    let Some(path) = path else {
        return Ok(ServeConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|error| {
        // The YAML library's message starts with its own "error:"; ours already says it.
        let message = error.to_string();
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        // Only the first line: the library then quotes the file around the fault, and those
        // lines can hold secrets (api_key, hmac.key).
        let message = message.lines().next().unwrap_or_default().to_owned();
        anyhow::anyhow!("{}: {message}", path.display())
    })
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let webhook = &mut config.webhook;
    if let Some(address) = args.listen_address {
        webhook.listen_address = address;
    }
    if let Some(port) = args.listen_port {
        webhook.listen_port = port;
    }
    if let Some(url) = args.url {
        webhook.url = url;
    }
    if let Some(content_type) = args.content_type {
        webhook.content_type = content_type;
    }
    if let Some(key) = args.hmac_key {
        webhook.hmac.key = Some(key);
    }
    if args.secret_header.is_some() || args.secret_value.is_some() {
        webhook.secret.header = args.secret_header;
        webhook.secret.value = args.secret_value;
    }
    if args.basic_auth_username.is_some() || args.basic_auth_password.is_some() {
        webhook.basic_auth = true;
        webhook.username = args.basic_auth_username;
        webhook.password = args.basic_auth_password;
    }
    if args.ssl_certificate.is_some() || args.ssl_key.is_some() {
        webhook.ssl.enabled = true;
        webhook.ssl.certificate = args.ssl_certificate;
        webhook.ssl.key = args.ssl_key;
    }
    if !args.ssl_certificate_authorities.is_empty() {
        webhook.ssl.certificate_authorities = args.ssl_certificate_authorities;
    }
    if let Some(mode) = args.ssl_client_authentication {
        webhook.ssl.client_authentication = Some(mode);
    }
    if let Some(limit) = args.max_body_bytes {
        webhook.max_body_bytes = limit;
    }
    if !args.tags.is_empty() {
        webhook.tags = args.tags;
    }
    if let Some(duration) = args.ioc_expiration_duration {
        webhook.ioc_expiration_duration = duration;
    }
    webhook.preserve_original_event |= args.preserve_original_event;
    webhook.insecure |= args.insecure;
    if args.geoip_db.is_some() {
        config.geoip_db = args.geoip_db;
    }
    if let Some(url) = args.es_url {
        // The flag wins over the file, keeping the file's credentials and TLS settings.
        match &mut config.elasticsearch {
            Some(connection) => {
                connection.url = Some(url);
                connection.hosts.clear();
                connection.cloud_id = None;
            }
            None => config.es_url = Some(url),
        }
    }
    config.exit_when_polling_stops = true;
    if let (Some(intelligence), Ok(key)) = (
        config.intelligence.as_mut(),
        std::env::var("TI_ANOMALI_INTELLIGENCE_API_KEY"),
    ) {
        // Keeps the key out of the file.
        intelligence.api_key = key;
    }
    let prepared = prepare(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (status, _) = tokio::sync::watch::channel(PipelineStatus::Starting);
    runtime.block_on(run_prepared(prepared, wait_for_stop_signal(), status))
}

/// A configuration checked and ready to run.
pub(crate) struct Prepared {
    config: ServeConfig,
    connection: Option<EsConnection>,
    validated: anomali_agent_input::ValidatedConfig,
    shipper_config: ShipperConfig,
    settings: MappingSettings,
}

/// What the running pipeline reports (to Elastic Agent, in `agent` mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PipelineStatus {
    /// Setting up (connecting, templates, opening the store).
    Starting,
    /// Serving, and the target takes what it is given.
    Healthy(String),
    /// Serving, but the target fails or refuses documents, or polls fail for now: the reason.
    Degraded(String),
    /// A source stopped for good (the Intelligence API refused the credentials): the reason,
    /// and the target's own status (the output is not to blame).
    InputFailed {
        /// Why the source stopped.
        reason: String,
        /// The target's status.
        target: Box<PipelineStatus>,
    },
}

impl PipelineStatus {
    /// The status of the whole from the target's (`self`) and the poller's, if it runs.
    fn with_poller(&self, poll: Option<&PollStatus>) -> PipelineStatus {
        match (poll, self) {
            (Some(PollStatus::Failed(reason)), target) => PipelineStatus::InputFailed {
                reason: format!("intelligence api: {reason}"),
                target: Box::new(target.clone()),
            },
            (Some(PollStatus::Degraded(reason)), PipelineStatus::Degraded(target)) => {
                PipelineStatus::Degraded(format!("{target}; intelligence api: {reason}"))
            }
            (Some(PollStatus::Degraded(reason)), PipelineStatus::Healthy(_)) => {
                PipelineStatus::Degraded(format!("intelligence api: {reason}"))
            }
            _ => self.clone(),
        }
    }
}

/// Checks a configuration without side effects beyond opening the GeoIP database; errors name
/// the key.
pub(crate) fn prepare(mut config: ServeConfig) -> anyhow::Result<Prepared> {
    if config.source_retention_days == 0 {
        bail!("source_retention_days must be at least 1");
    }
    let connection = match (config.es_url.take(), config.elasticsearch.take()) {
        (Some(_), Some(_)) => bail!("give es_url or elasticsearch.url, not both"),
        (Some(url), None) => Some(EsConnection::from_url(url)),
        (None, connection) => connection,
    };
    if let Some(connection) = &connection {
        connection.validate()?;
    }
    if let Some(intelligence) = &config.intelligence {
        intelligence.validate().map_err(intelligence_error)?;
    }
    if !config.webhook.enabled && config.intelligence.is_none() {
        bail!(
            "nothing to receive: webhook.enabled is false and there is no intelligence section \
             (enable the webhook, configure polling, or both)"
        );
    }
    if config.sweep_interval_seconds == 0 || config.sweep_interval_seconds > 10 {
        bail!("sweep_interval_seconds must be 1 to 10 (expired indicators leave within that time)");
    }
    let validated = config.webhook.validate()?;
    let loopback = connection
        .as_ref()
        .and_then(|c| c.node_urls().ok())
        .is_some_and(|urls| urls.iter().all(|url| is_loopback(url)));
    let shipper_config = config.shipping.shipper_config(loopback)?;
    let settings = MappingSettings {
        geoip: config.geoip_db.as_ref().map(GeoIp::open).transpose()?,
        ..MappingSettings::default()
    };

    Ok(Prepared {
        config,
        connection,
        validated,
        shipper_config,
        settings,
    })
}

/// Runs a prepared pipeline until `stop` resolves, reporting its status on `status`.
pub(crate) async fn run_prepared(
    prepared: Prepared,
    stop: impl Future<Output = ()> + Send,
    status: tokio::sync::watch::Sender<PipelineStatus>,
) -> anyhow::Result<()> {
    let Prepared {
        config,
        connection,
        validated,
        shipper_config,
        settings,
    } = prepared;
    {
        match &connection {
            Some(connection) => {
                let names = IndexNames::new(config.namespace.clone());
                let host = std::env::var("HOSTNAME")
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".to_owned());
                let agent = AgentFields {
                    // Stable per host, so dashboards group one installation.
                    id: format!("ti-anomali-{host}"),
                    name: host,
                    agent_type: "ti-anomali",
                    version: env!("CARGO_PKG_VERSION"),
                };
                let spool_path = config.data_dir.join("es-spool.redb");
                let spool = open_spool_waiting(
                    &spool_path,
                    config.shipping.spool_max_mb.saturating_mul(1 << 20),
                )
                .await?;
                let dead_letter_path = config
                    .shipping
                    .dead_letter_file
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("dead-letter.ndjson"));
                let dead_letters = DeadLetterFile::open(&dead_letter_path).with_context(|| {
                    format!(
                        "cannot open the dead letter file {}",
                        dead_letter_path.display()
                    )
                })?;
                tracing::info!(spool = %spool_path.display(), queued = spool.entries(), dead_letter_file = %dead_letter_path.display(), "spool open");
                let identity = ShipIdentity::new(&names, Some(agent.clone()));
                let store = ShippingStore::new(identity, spool);
                // The webhook takes pushes into the spool at once; shipping starts when the
                // cluster answers and is set up (retried until then).
                let client_slot = Arc::new(std::sync::OnceLock::new());
                let setup = tokio::spawn(connect_when_ready(ConnectPlan {
                    store: store.clone(),
                    connection: connection.clone(),
                    names,
                    agent,
                    dead_letters: Arc::new(dead_letters),
                    shipper_config,
                    retention_days: config.source_retention_days,
                    client_slot: client_slot.clone(),
                }));
                let (target_status, target) = tokio::sync::watch::channel(PipelineStatus::Starting);
                let monitor = tokio::spawn(monitor_shipping(
                    store.counters_handle(),
                    client_slot,
                    target_status,
                ));
                let served = run(
                    store.clone(),
                    &config,
                    validated,
                    settings,
                    stop,
                    (target, status),
                )
                .await;
                monitor.abort();
                setup.abort();
                // What is not shipped within the grace stays in the spool for the next start.
                store.stop(Duration::from_secs(5)).await;
                let left = store.spool().entries();
                tracing::info!(left_in_spool = left, "shipping stopped");
                served
            }
            None => {
                let options = EmbeddedOptions {
                    source_retention_days: config.source_retention_days,
                };
                let store = open_store_waiting(&config.data_dir, options)
                    .await
                    .with_context(|| {
                        format!("cannot open the store in {}", config.data_dir.display())
                    })?;
                let live = store.count().await?;
                tracing::info!(data_dir = %config.data_dir.display(), live, "store open");
                let (_target_status, target) = tokio::sync::watch::channel(
                    PipelineStatus::Healthy("serving on the embedded store".to_owned()),
                );
                run(store, &config, validated, settings, stop, (target, status)).await
            }
        }
    }
}

/// An intelligence setting's error, named as the file spells it (`intelligence.page_size`).
fn intelligence_error(error: anomali_agent_input::ConfigError) -> anyhow::Error {
    match error {
        anomali_agent_input::ConfigError::Invalid { key, reason } => {
            anyhow::anyhow!("intelligence.{key}: {reason}")
        }
        other => anyhow::anyhow!("intelligence: {other}"),
    }
}

/// Maps each page of Intelligence API objects and applies it to the store as the
/// `ti_anomali.intelligence` dataset.
struct IntelligenceToStore<S> {
    store: S,
    settings: MappingSettings,
    /// Objects applied, for `/_ti/metrics`.
    polled: Arc<std::sync::atomic::AtomicU64>,
}

impl<S: LatestStore> ObjectSink for IntelligenceToStore<S> {
    async fn accept(
        &self,
        objects: Vec<serde_json::Map<String, serde_json::Value>>,
        received_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), SinkError> {
        let documents: Vec<EcsDocument> = objects
            .into_iter()
            .map(|object| {
                let original = self
                    .settings
                    .preserve_original_event
                    .then(|| serde_json::Value::Object(object.clone()).to_string());
                let received = Received {
                    at: received_at,
                    original: original.as_deref(),
                };
                map_intelligence(object, &received, &self.settings)
            })
            .collect();
        let count = documents.len();
        let report = self
            .store
            .apply(
                EcsDocument::INTELLIGENCE_DATASET,
                documents,
                chrono::Utc::now(),
            )
            .await
            .map_err(|error| SinkError::Unavailable(error.to_string()))?;
        if report.without_id > 0 {
            // Kept in the source copies, but never live: say so rather than lose them quietly.
            tracing::warn!(
                without_id = report.without_id,
                "objects without a usable id: kept as source copies, not live indicators"
            );
        }
        self.polled
            .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(objects = count, "intelligence page applied");
        Ok(())
    }
}

/// Starts the poller on `store`; its cursor lives in the data folder.
fn start_intelligence_poller<S: LatestStore>(
    config: PollConfig,
    data_dir: &Path,
    store: S,
    polled: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<(
    tokio::sync::watch::Sender<bool>,
    tokio::sync::watch::Receiver<PollStatus>,
    tokio::task::JoinHandle<()>,
)> {
    let settings = config.mapping_settings().map_err(intelligence_error)?;
    let poller =
        Poller::new(config, &data_dir.join("intelligence-cursor.json")).map_err(|e| match e {
            PollError::Setting { key, reason } => anyhow::anyhow!("intelligence.{key}: {reason}"),
            other => anyhow::anyhow!("intelligence: {other}"),
        })?;
    tracing::info!(cursor = ?poller.cursor(), "polling the threatstream intelligence api");
    let sink = IntelligenceToStore {
        store,
        settings,
        polled,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (status, status_rx) = tokio::sync::watch::channel(PollStatus::Starting);
    let polling = tokio::spawn({
        let status = status.clone();
        async move { poller.run(&sink, stopped, status).await }
    });
    // Watched, so that a poller that ended (refused credentials, or a bug) is reported, never
    // silently gone.
    let task = tokio::spawn(async move {
        let failure = match polling.await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(error) => format!("the poller failed unexpectedly: {error}"),
        };
        tracing::error!(reason = %failure, "intelligence polling stopped");
        status.send_replace(PollStatus::Failed(failure));
    });
    Ok((stop, status_rx, task))
}

/// Receives into `store` until `stop` resolves: the webhook (with the lookup, health and metrics
/// API on its listener) when enabled, the Intelligence API poller when configured, and the
/// expiry sweeper always. `statuses`: the target's status in, the whole's out.
async fn run<S: LatestStore + Clone>(
    store: S,
    config: &ServeConfig,
    validated: anomali_agent_input::ValidatedConfig,
    settings: MappingSettings,
    stop: impl Future<Output = ()>,
    statuses: (
        tokio::sync::watch::Receiver<PipelineStatus>,
        tokio::sync::watch::Sender<PipelineStatus>,
    ),
) -> anyhow::Result<()> {
    let sink = Arc::new(StoreSink::new(
        store.clone(),
        EcsDocument::THREATSTREAM_DATASET,
    ));
    let polled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = if config.webhook.enabled {
        let api = ServeApi {
            store: sink.clone(),
            status: statuses.1.subscribe(),
            polled: polled.clone(),
        };
        let server = WebhookServer::start_with_api(validated, settings, sink.clone(), api).await?;
        tracing::info!(address = %server.local_addr(), "serving: POST indicators, GET /_ti/lookup?value=, /_ti/health, /_ti/metrics");
        Some(server)
    } else {
        tracing::info!("webhook disabled: polling only");
        None
    };
    let poller = match config.intelligence.clone() {
        Some(poll) => Some(start_intelligence_poller(
            poll,
            &config.data_dir,
            store,
            polled,
        )?),
        None => None,
    };
    let reporter = tokio::spawn(report_status(
        statuses.0,
        poller.as_ref().map(|(_, status, _)| status.clone()),
        statuses.1,
    ));

    let sweeper = tokio::spawn({
        let sink = sink.clone();
        let interval = Duration::from_secs(config.sweep_interval_seconds);
        async move {
            let mut ticks = tokio::time::interval(interval);
            // During an outage every sweep fails: say so once a minute, not every interval.
            let mut last_failure_logged: Option<tokio::time::Instant> = None;
            loop {
                ticks.tick().await;
                match sink.sweep().await {
                    Ok(0) => last_failure_logged = None,
                    Ok(removed) => {
                        last_failure_logged = None;
                        tracing::info!(removed, "expired indicators removed");
                    }
                    Err(error) => {
                        if last_failure_logged
                            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
                        {
                            tracing::warn!(%error, "expiry sweep failed; retrying every interval");
                            last_failure_logged = Some(tokio::time::Instant::now());
                        }
                    }
                }
            }
        }
    });

    let mut poller = poller;
    // Polling alone, standalone: a poller that stopped for good leaves nothing to do, and an
    // exit tells the supervisor (systemd, a container runtime), where idling would hide it.
    let mut gone: Option<String> = None;
    match poller.as_mut() {
        Some((_, status, task)) if server.is_none() && config.exit_when_polling_stops => {
            tokio::select! {
                _ = stop => {}
                _ = task => {
                    gone = Some(match &*status.borrow() {
                        PollStatus::Failed(reason) => reason.clone(),
                        other => format!("{other:?}"),
                    });
                }
            }
        }
        _ => stop.await,
    }
    tracing::info!("stopping: finishing requests in flight");
    let poller_stopped = async {
        if let Some((stop_poller, _, task)) = poller.filter(|_| gone.is_none()) {
            // The poller stops between pages; the cursor only covers pages the store took.
            let _ = stop_poller.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    };
    let server_stopped = async {
        // Within the 10 s that container runtimes give by default before SIGKILL.
        if let Some(server) = server {
            server.shutdown(Duration::from_secs(8)).await;
        }
    };
    tokio::join!(poller_stopped, server_stopped);
    sweeper.abort();
    reporter.abort();
    let _ = sweeper.await;
    tracing::info!("stopped");
    match gone {
        Some(reason) => bail!(
            "intelligence polling stopped and the webhook is off, so nothing is left to receive: \
             {reason}"
        ),
        None => Ok(()),
    }
}

/// The read API under `/_ti/`: the store's, with `/_ti/health` telling the pipeline's status too
/// (yellow while degraded; red, answered 503, when a source stopped for good).
struct ServeApi<S> {
    store: Arc<StoreSink<S>>,
    status: tokio::sync::watch::Receiver<PipelineStatus>,
    polled: Arc<std::sync::atomic::AtomicU64>,
}

impl<S: LatestStore> ReadApi for ServeApi<S> {
    async fn lookup(&self, value: &str) -> Result<Vec<serde_json::Value>, SinkError> {
        self.store.lookup(value).await
    }

    async fn health(&self) -> Result<serde_json::Value, String> {
        let mut details = self.store.health().await?;
        let status = self.status.borrow().clone();
        let (colour, reason) = match status {
            PipelineStatus::Starting => ("green", None),
            PipelineStatus::Healthy(_) => ("green", None),
            PipelineStatus::Degraded(reason) => ("yellow", Some(reason)),
            PipelineStatus::InputFailed { reason, .. } => return Err(reason),
        };
        details["status"] = serde_json::Value::from(colour);
        if let Some(reason) = reason {
            details["reason"] = serde_json::Value::from(reason);
        }
        Ok(details)
    }

    async fn metrics(&self) -> String {
        let polled = self.polled.load(std::sync::atomic::Ordering::Relaxed);
        let healthy = u64::from(matches!(
            *self.status.borrow(),
            PipelineStatus::Healthy(_) | PipelineStatus::Starting
        ));
        self.store.metrics().await
            + &format!(
                "# HELP ti_intelligence_objects_total Intelligence API objects polled and stored.\n\
                 # TYPE ti_intelligence_objects_total counter\n\
                 ti_intelligence_objects_total {polled}\n\
                 # HELP ti_pipeline_healthy 1 when every source and the target work, else 0.\n\
                 # TYPE ti_pipeline_healthy gauge\n\
                 ti_pipeline_healthy {healthy}\n"
            )
    }
}

/// Reports the status of the whole every half second: the target's, unless the poller fails.
async fn report_status(
    target: tokio::sync::watch::Receiver<PipelineStatus>,
    poll: Option<tokio::sync::watch::Receiver<PollStatus>>,
    status: tokio::sync::watch::Sender<PipelineStatus>,
) {
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    loop {
        ticks.tick().await;
        let poll_status = poll.as_ref().map(|p| p.borrow().clone());
        let next = target.borrow().with_poller(poll_status.as_ref());
        status.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                *current = next.clone();
            }
            changed
        });
    }
}

/// Reports the shipping health every second: degraded while Elasticsearch fails requests, for a
/// minute after it refuses documents, or when an idle cluster does not answer.
async fn monitor_shipping(
    counters: Arc<anomali_sink_es::ShipperCounters>,
    client: Arc<std::sync::OnceLock<EsClient>>,
    status: tokio::sync::watch::Sender<PipelineStatus>,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut last_ping: Option<(tokio::time::Instant, Result<(), String>)> = None;
    loop {
        ticks.tick().await;
        let mut health = counters.health(Duration::from_secs(60));
        if let (Ok(()), Some(client)) = (&health, client.get()) {
            // Nothing shipped lately tells nothing: ask the cluster every 5 s.
            let due = last_ping
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= Duration::from_secs(5));
            if due {
                let answer = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.json(anomali_sink_es::Method::Get, "/_cluster/health", None),
                )
                .await;
                let ping = match answer {
                    Ok(Ok(answer)) if answer.status == 200 => Ok(()),
                    Ok(Ok(answer)) => Err(format!("elasticsearch answered {}", answer.status)),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err("elasticsearch did not answer within 5 s".to_owned()),
                };
                last_ping = Some((tokio::time::Instant::now(), ping));
            }
            if let Some((_, Err(reason))) = &last_ping {
                health = Err(reason.clone());
            }
        }
        let next = match health {
            Ok(()) => PipelineStatus::Healthy("shipping to elasticsearch".to_owned()),
            Err(reason) => PipelineStatus::Degraded(reason),
        };
        status.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                *current = next.clone();
            }
            changed
        });
    }
}

/// What [`connect_when_ready`] needs.
struct ConnectPlan {
    store: ShippingStore,
    connection: EsConnection,
    names: IndexNames,
    agent: AgentFields,
    dead_letters: Arc<DeadLetterFile>,
    shipper_config: ShipperConfig,
    retention_days: u32,
    client_slot: Arc<std::sync::OnceLock<EsClient>>,
}

/// Connects and sets up the cluster (templates, latest index and its upgrade, retention),
/// retrying with backoff while it fails, then starts shipping; then applies self-managed
/// retention hourly where the cluster needs it.
async fn connect_when_ready(plan: ConnectPlan) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let (client, mode, retention) = loop {
        match set_up(&plan).await {
            Ok(ready) => break ready,
            Err(error) => {
                let reason = format!("setting up elasticsearch: {error:#}");
                tracing::warn!(%reason, "will retry; pushes wait in the spool");
                plan.store.counters().failed(reason);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    };
    let _ = plan.client_slot.set(client.clone());
    let reader = EsLatestStore::new(client.clone(), plan.names.clone(), false)
        .with_agent(plan.agent.clone());
    plan.store
        .connect(
            reader,
            plan.dead_letters.clone(),
            plan.shipper_config.clone(),
        )
        .await;
    tracing::info!(latest = %plan.names.all_latest_aliases(), queued = plan.store.spool().entries(), "shipping to Elasticsearch");
    if mode == RetentionMode::SelfManaged {
        let sources = Stream::ALL.map(|stream| plan.names.source(stream));
        self_managed_retention(client, sources, retention).await;
    }
}

async fn set_up(plan: &ConnectPlan) -> anyhow::Result<(EsClient, RetentionMode, chrono::Duration)> {
    let client = EsClient::connect(&plan.connection).await?;
    let capabilities = detect_capabilities(&client).await?;
    tracing::info!(?capabilities, "elasticsearch: what the cluster offers");
    let retention = chrono::Duration::days(i64::from(plan.retention_days));
    let mut mode = RetentionMode::SelfManaged;
    // Both streams, whichever sources run: a source turned on later finds its indices ready,
    // and an empty latest index costs nothing.
    for stream in Stream::ALL {
        let (index, alias) = (stream.latest_index(), stream.latest_alias());
        ensure_setup(&client, capabilities, stream, index, alias).await?;
        let upgrade = upgrade_latest_index(&client, alias, index).await?;
        if !upgrade.is_noop() {
            tracing::info!(?upgrade, "older latest index versions folded into {index}");
        }
        let source = plan.names.source(stream);
        mode = apply_source_retention(&client, &capabilities, &source, retention).await?;
    }
    tracing::info!(?mode, days = plan.retention_days, "source retention");
    Ok((client, mode, retention))
}

/// Opens the spool; while an earlier pipeline of this process still lets go of the file (a
/// reconfiguration), retries for 5 s.
async fn open_spool_waiting(path: &Path, max_bytes: u64) -> anyhow::Result<Spool> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Spool::open(path, max_bytes) {
            Ok(spool) => return Ok(spool),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "spool busy; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Whether a node URL names this machine.
fn is_loopback(url: &str) -> bool {
    let Ok(url) = url.parse::<reqwest::Url>() else {
        return false;
    };
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Deletes source backing indices past the retention, hourly (the cluster has neither ILM nor
/// the data stream lifecycle).
async fn self_managed_retention(
    client: EsClient,
    data_streams: [String; 2],
    retention: chrono::Duration,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(3600));
    loop {
        ticks.tick().await;
        for data_stream in &data_streams {
            match enforce_source_retention(&client, data_stream, retention, chrono::Utc::now())
                .await
            {
                Ok(report) if !report.deleted.is_empty() || report.rolled_over_to.is_some() => {
                    tracing::info!(data_stream, ?report, "source retention applied");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(data_stream, %error, "source retention failed; next try in an hour");
                }
            }
        }
    }
}

/// Opens the store; while another process (a `lookup`) holds the file, retries for 5 s.
async fn open_store_waiting(dir: &Path, options: EmbeddedOptions) -> anyhow::Result<EmbeddedStore> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match EmbeddedStore::open(dir, options.clone()) {
            Ok(store) => return Ok(store),
            Err(error)
                if tokio::time::Instant::now() < deadline
                    && error.to_string().contains("already open") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

pub(crate) async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Arguments of `ti-anomali lookup`.
#[derive(Debug, clap::Args)]
pub(crate) struct LookupArgs {
    /// An IP, domain, URL, e-mail address or hash.
    value: String,
    /// The configuration `serve` runs with (for the data folder, or its listener and key).
    #[arg(long, short, env = "TI_ANOMALI_CONFIG")]
    config: Option<PathBuf>,
    /// The data folder (default: ./data).
    #[arg(long, env = "TI_ANOMALI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HMAC key of the running service, when asking it over HTTP.
    #[arg(long, env = "TI_ANOMALI_HMAC_KEY", hide_env_values = true)]
    hmac_key: Option<String>,
}

/// Prints the live documents matching a value as a JSON list: from the store file when no
/// service holds it, else from the running service's `/_ti/lookup`.
pub(crate) fn lookup(args: LookupArgs) -> anyhow::Result<serde_json::Value> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(key) = args.hmac_key {
        config.webhook.hmac.key = Some(key);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if !config.data_dir.join("latest.redb").exists() {
            bail!(
                "no store in {} (has `ti-anomali serve` run there?)",
                config.data_dir.display()
            );
        }
        match EmbeddedStore::open(&config.data_dir, EmbeddedOptions::default()) {
            Ok(store) => {
                let found = store.find(&args.value, chrono::Utc::now()).await?;
                Ok(serde_json::Value::Array(
                    found.into_iter().map(|live| live.document).collect(),
                ))
            }
            // The running service holds the file: ask it, but only the service this
            // configuration describes (a default address could be another service's store).
            Err(_) if args.config.is_some() && !config.webhook.enabled => bail!(
                "the store in {} is in use by a service that only polls (webhook.enabled: \
                 false), so it has no lookup API; look up while it is stopped, or enable the \
                 webhook",
                config.data_dir.display()
            ),
            Err(_) if args.config.is_some() => lookup_over_http(&config.webhook, &args.value).await,
            Err(error) => bail!(
                "the store in {} is in use ({error}); to ask the service that holds it, \
                 give its configuration with --config",
                config.data_dir.display()
            ),
        }
    })
}

async fn lookup_over_http(
    webhook: &WebhookConfig,
    value: &str,
) -> anyhow::Result<serde_json::Value> {
    let host = match webhook.listen_address.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "localhost".to_owned(),
        // An IPv6 literal goes in brackets in a URL.
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => webhook.listen_address.clone(),
    };
    let scheme = if webhook.ssl.enabled { "https" } else { "http" };
    let mut request = reqwest::Client::new()
        .get(format!(
            "{scheme}://{host}:{}/_ti/lookup",
            webhook.listen_port
        ))
        .query(&[("value", value)]);
    if let Some(key) = &webhook.hmac.key {
        let signature = format!(
            "{}{}",
            webhook.hmac.prefix,
            sign_sha256_hex(key.as_bytes(), b"")
        );
        request = request.header(webhook.hmac.header.as_str(), signature);
    }
    if let (Some(header), Some(secret)) = (&webhook.secret.header, &webhook.secret.value) {
        request = request.header(header.as_str(), secret.as_str());
    }
    if webhook.basic_auth {
        request = request.basic_auth(
            webhook.username.clone().unwrap_or_default(),
            webhook.password.clone(),
        );
    }
    let response = request
        .send()
        .await
        .context("the store is in use, and its service does not answer")?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .context("the service's answer was cut")?;
    let body: serde_json::Value =
        serde_json::from_slice(&bytes).context("the service's answer is not JSON")?;
    if !status.is_success() {
        bail!("the service answered {status}: {body}");
    }
    Ok(body)
}
