//! [`WebhookServer`]: the listener, TLS, HTTP/1.1 and HTTP/2, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anomali_mapping::MappingSettings;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::api::{NoReadApi, ReadApi};
use crate::config::ValidatedConfig;
use crate::error::ServerError;
use crate::handler::{Shared, handle};
use crate::metrics::WebhookMetrics;
use crate::sink::IndicatorSink;
use crate::tls;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings: a peer that stops answering them is dropped.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// A running webhook.
#[derive(Debug)]
pub struct WebhookServer {
    local_addr: SocketAddr,
    metrics: Arc<WebhookMetrics>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WebhookServer {
    /// Binds the listener and starts serving. `settings` are the mapping settings (tags,
    /// `preserve_original_event` and expiry come from `config`; GeoIP from `settings`).
    pub async fn start<S: IndicatorSink>(
        config: ValidatedConfig,
        settings: MappingSettings,
        sink: S,
    ) -> Result<Self, ServerError> {
        Self::start_with_api(config, settings, sink, NoReadApi).await
    }

    /// Like [`WebhookServer::start`], also serving `api` under `/_ti/` on the same listener.
    pub async fn start_with_api<S: IndicatorSink, A: ReadApi>(
        config: ValidatedConfig,
        mut settings: MappingSettings,
        sink: S,
        api: A,
    ) -> Result<Self, ServerError> {
        settings.tags = config.tags.clone();
        settings.preserve_original_event = config.preserve_original_event;
        settings.ioc_expiration = config.ioc_expiration;
        let acceptor = match &config.tls {
            Some((certificate, key, authorities, client_auth)) => {
                Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                    certificate,
                    key,
                    authorities,
                    *client_auth,
                )?))
            }
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    address: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: config.listen,
            source,
        })?;
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let metrics = Arc::new(WebhookMetrics::default());
        let budget = Arc::new(Semaphore::new(
            usize::try_from(config.max_in_flight_bytes)
                .unwrap_or(usize::MAX)
                .min(Semaphore::MAX_PERMITS),
        ));
        let shared = Arc::new(Shared {
            api,
            config,
            settings,
            sink,
            budget,
            metrics: metrics.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, acceptor, shared, stopped));
        tracing::info!(address = %local_addr, "webhook listening");
        Ok(Self {
            local_addr,
            metrics,
            stop,
            task,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The webhook's counters.
    pub fn metrics(&self) -> &Arc<WebhookMetrics> {
        &self.metrics
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`), then returns.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace + Duration::from_secs(1), self.task)
            .await
            .is_err()
        {
            tracing::warn!("webhook shutdown took longer than the grace period");
        }
    }
}

async fn accept_loop<S: IndicatorSink, A: ReadApi>(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared<S, A>>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    // Without these, a client that sends headers or nothing at all keeps a connection (and its
    // file descriptor) forever: anyone who can reach the port could exhaust them.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(HTTP2_KEEP_ALIVE))
        .keep_alive_timeout(HTTP2_KEEP_ALIVE);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning, and log it
                // once per pause rather than per attempt.
                tracing::warn!(%error, "accept failed; pausing new connections for 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = {
            let shared = shared.clone();
            service_fn(move |request| handle(shared.clone(), request))
        };
        match &acceptor {
            None => {
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}
