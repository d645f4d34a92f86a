//! Assembling and running the gRPC server: shared state, the services, health, reflection,
//! limits, the per-RPC middleware, metrics, TLS and graceful shutdown.
//!
//! # Shutdown
//!
//! When the `shutdown` future completes (SIGTERM or SIGINT in the binary), the server closes
//! its listening socket at once (new connections are refused), reports NOT_SERVING, and tells
//! every open connection to finish (HTTP/2 GOAWAY: requests in flight run to completion, new
//! ones on that connection are refused). It returns when the last connection is done, or
//! when `shutdown_grace_seconds` have passed, whichever comes first; after the grace period
//! the requests still running are abandoned (logged with their count). The metrics endpoint
//! stays up until then, so the drain can be watched. The web port (`web_listen`) shuts down
//! the same way, at the same time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prosodia_dsp::decode::DecodeLimits;
use prosodia_plugin_host::PluginHost;
use prosodia_proto::pb;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::AdminAccess;
use crate::config::Config;
use crate::emotion::EmotionService;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::models::ModelsService;
use crate::repository::Repository;
use crate::rpc::RpcLayer;
use crate::runner::Backend;
use crate::work::Workers;

/// The health-service name under which a model's status is reported.
pub fn model_health_name(model: &str) -> String {
    format!("prosodia.v1.Model/{model}")
}

/// State shared by every service.
#[derive(Debug)]
pub struct AppState {
    /// The model registry.
    pub repo: Repository,
    /// The CPU worker pool.
    pub workers: Workers,
    /// Limits applied to every decoded input.
    pub limits: DecodeLimits,
    /// The configured default model, if any.
    pub default_model: Option<String>,
    /// Health statuses.
    pub health: HealthReporter,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Who may call the mutating Models calls.
    pub admin: AdminAccess,
    /// StreamClassify limits and the permits that bound concurrent streams.
    pub streams: StreamLimits,
    /// Every feature extractor and model backend, built in or loaded from `plugin_dir`.
    pub plugins: PluginHost,
    /// How Classify requests are batched.
    pub batching: crate::batch::BatchPolicy,
}

/// Limits of StreamClassify, from [`Config`].
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// One permit per stream that may run at once.
    pub permits: Arc<Semaphore>,
    /// The configured number of permits (for messages).
    pub max_streams: usize,
    /// Longest stream, in seconds of audio.
    pub max_stream_seconds: f64,
    /// Longest wait for the next client message.
    pub idle_timeout: Duration,
}

impl StreamLimits {
    /// The limits `config` sets.
    pub fn from_config(config: &Config) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.max_streams)),
            max_streams: config.max_streams,
            max_stream_seconds: config.max_stream_seconds,
            idle_timeout: config.stream_idle_timeout(),
        }
    }
}

impl AppState {
    /// The model a request means: its own `requested` name, else the configured default, else
    /// the repository's only model.
    pub fn model_name(&self, requested: &str) -> Result<String> {
        if !requested.is_empty() {
            return Ok(requested.to_owned());
        }
        if let Some(d) = &self.default_model {
            return Ok(d.clone());
        }
        let names = self.repo.names()?;
        match names.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Error::InvalidRequest(
                "model is empty and the server has no models; start it with --models DIR".into(),
            )),
            many => Err(Error::InvalidRequest(format!(
                "model is empty and there is no default model; name one of: {}",
                many.join(", ")
            ))),
        }
    }

    /// Reports `model` as SERVING when any version is ready, NOT_SERVING otherwise.
    pub async fn update_model_health(&self, model: &str) {
        let status = if self.repo.is_serving(model) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.health.set_service_status(model_health_name(model), status).await;
        if let Ok(snapshot) = self.repo.snapshot() {
            let loaded = snapshot
                .iter()
                .flat_map(|(_, versions)| versions.iter())
                .filter(|(_, e)| e.loaded.is_some())
                .count();
            self.metrics.set_models_loaded(loaded);
        }
    }
}

/// A builder for the server, so tests and the binary can add backends before starting.
#[derive(Debug)]
pub struct ServerBuilder {
    config: Config,
    backends: Vec<Arc<dyn Backend>>,
    metrics_listener: Option<TcpListener>,
    web_listener: Option<TcpListener>,
    plugins: Option<PluginHost>,
}

impl ServerBuilder {
    /// A server for `config` with no model backends.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            backends: Vec::new(),
            metrics_listener: None,
            web_listener: None,
            plugins: None,
        }
    }

    /// Serves the web page and gRPC-Web on this already-bound listener instead of binding
    /// `web_listen` (tests bind port 0 and read the address back).
    pub fn web_listener(mut self, listener: TcpListener) -> Self {
        self.web_listener = Some(listener);
        self
    }

    /// Serves metrics on this already-bound listener instead of binding `metrics_listen`
    /// (tests bind port 0 and read the address back).
    pub fn metrics_listener(mut self, listener: TcpListener) -> Self {
        self.metrics_listener = Some(listener);
        self
    }

    /// Uses `host` for plugins instead of building one from the configuration (the built-in
    /// plugins plus `plugin_dir`).
    pub fn plugins(mut self, host: PluginHost) -> Self {
        self.plugins = Some(host);
        self
    }

    /// Adds an in-process model backend (selected by `model.toml`'s `backend` key); it takes
    /// precedence over a plugin of the same name.
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting connections,
    /// reports NOT_SERVING and drains the requests in flight for at most
    /// `shutdown_grace_seconds` (see the module docs).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let config = self.config;
        config.validate()?;
        let plugins = match self.plugins {
            Some(host) => host,
            None => crate::plugins::build_host(&config)?,
        };
        let admin = AdminAccess::from_config(&config)?;
        let tls = tls_config(&config)?;
        let metrics = Arc::new(Metrics::new());
        let metrics_listener = match (self.metrics_listener, config.metrics_listen) {
            (Some(l), _) => Some(l),
            (None, Some(addr)) => Some(TcpListener::bind(addr).await.map_err(|e| {
                Error::Config(format!("metrics_listen = {addr}: cannot bind: {e}"))
            })?),
            (None, None) => None,
        };
        let web_listener =
            match (self.web_listener, config.web_listen) {
                (Some(l), _) => Some(l),
                (None, Some(addr)) => Some(TcpListener::bind(addr).await.map_err(|e| {
                    Error::Config(format!("web_listen = {addr}: cannot bind: {e}"))
                })?),
                (None, None) => None,
            };

        let (health, health_service) = tonic_health::server::health_reporter();
        let repo = Repository::new(config.models.clone(), self.backends, plugins.clone());
        let limits = DecodeLimits {
            max_duration_secs: config.max_audio_seconds,
            max_input_bytes: config.max_message_bytes,
            ..DecodeLimits::default()
        };
        let state = Arc::new(AppState {
            repo: repo.clone(),
            workers: Workers::new(config.worker_count(), config.max_queued)?
                .counting(metrics.worker_jobs()),
            limits,
            default_model: config.default_model.clone(),
            health: health.clone(),
            metrics: metrics.clone(),
            admin,
            streams: StreamLimits::from_config(&config),
            plugins,
            batching: crate::batch::BatchPolicy {
                max_batch_size: config.max_batch_size,
                max_batch_delay: Duration::from_secs_f64(config.max_batch_delay_ms / 1e3),
            },
        });
        load_all(&state).await?;
        if config.plugin_watch_seconds > 0.0 {
            crate::plugins::spawn_watcher(
                Arc::clone(&state),
                config.plugin_dir.clone(),
                Duration::from_secs_f64(config.plugin_watch_seconds),
            );
        }

        let emotion = pb::emotion_server::EmotionServer::new(EmotionService::new(state.clone())?)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        let models = pb::models_server::ModelsServer::new(ModelsService::new(state.clone()))
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        health.set_serving::<pb::emotion_server::EmotionServer<EmotionService>>().await;
        health.set_serving::<pb::models_server::ModelsServer<ModelsService>>().await;

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| Error::Internal(format!("reflection v1: {e}")))?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| Error::Internal(format!("reflection v1alpha: {e}")))?;

        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_task = match metrics_listener {
            Some(l) => {
                let addr = l
                    .local_addr()
                    .map_err(|e| Error::Internal(format!("metrics listener address: {e}")))?;
                tracing::info!(%addr, "serving Prometheus metrics on http://{addr}/metrics");
                Some(tokio::spawn(crate::metrics::serve(l, metrics.clone(), async {
                    let _ = metrics_stopped.await;
                })))
            }
            None => None,
        };

        let addr =
            listener.local_addr().map_err(|e| Error::Internal(format!("listener address: {e}")))?;
        tracing::info!(%addr, workers = config.worker_count(), tls = tls.is_some(), "prosodia-server listening");
        let reporter = health.clone();
        let (began, began_rx) = tokio::sync::oneshot::channel::<()>();
        // Both ports stop together: the signal flips `stop`, each server waits for it.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: refusing new connections, draining requests in flight");
            let _ = began.send(());
            reporter.set_service_status("", ServingStatus::NotServing).await;
            reporter.set_not_serving::<pb::emotion_server::EmotionServer<EmotionService>>().await;
            reporter.set_not_serving::<pb::models_server::ModelsServer<ModelsService>>().await;
            let _ = stop.send(true);
        };
        let stopped = move || {
            let mut rx = stopping.clone();
            async move {
                // An error means the sender is gone, which only happens once serving is over.
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let routes = tonic::service::Routes::new(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(emotion)
            .add_service(models);
        let mut builder = Server::builder();
        if let Some(tls) = tls.clone() {
            builder = builder
                .tls_config(tls)
                .map_err(|e| Error::Config(format!("tls_cert / tls_key: {e}")))?;
        }
        let grpc = builder
            .max_frame_size(HTTP2_MAX_FRAME_BYTES)
            .timeout(config.request_timeout())
            .layer(RpcLayer::new(metrics.clone()))
            .add_routes(routes.clone())
            .serve_with_incoming_shutdown(no_delay(listener), stopped());
        let web = match web_listener {
            Some(l) => {
                let addr = l
                    .local_addr()
                    .map_err(|e| Error::Internal(format!("web listener address: {e}")))?;
                let scheme = if tls.is_some() { "https" } else { "http" };
                tracing::info!(%addr, "serving the web page on {scheme}://{addr}/");
                let mut builder = Server::builder().accept_http1(true);
                if let Some(tls) = tls {
                    builder = builder
                        .tls_config(tls)
                        .map_err(|e| Error::Config(format!("tls_cert / tls_key: {e}")))?;
                }
                // Outermost first: the page's GETs never reach gRPC-Web, and the RPC
                // middleware sees plain gRPC (metrics read the translated status).
                let server = builder
                    .timeout(config.request_timeout())
                    .layer(crate::web::PageLayer)
                    .layer(tonic_web::GrpcWebLayer::new())
                    .layer(RpcLayer::new(metrics.clone()))
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(no_delay(l), stopped());
                Some(server)
            }
            None => None,
        };
        let grpc = async move {
            let web = async move {
                match web {
                    Some(server) => server.await,
                    None => Ok(()),
                }
            };
            let serving = async move { tokio::try_join!(grpc, web).map(|_| ()) };
            tokio::pin!(serving);
            tokio::select! {
                r = &mut serving => r,
                () = signal => serving.await,
            }
        };
        let grace = config.shutdown_grace();
        let grace_over = async move {
            if began_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            r = grpc => r.map_err(|e| Error::Internal(format!("server: {e}"))),
            () = grace_over => {
                tracing::warn!(
                    in_flight = metrics.in_flight(),
                    grace_seconds = grace.as_secs_f64(),
                    "shutdown grace period over; abandoning the requests still in flight"
                );
                Ok(())
            }
        };

        let _ = stop_metrics.send(());
        if let Some(task) = metrics_task {
            match tokio::time::timeout(Duration::from_secs(2), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "metrics server failed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "metrics server task failed"),
                Err(_) => tracing::warn!("metrics server did not stop within 2 s"),
            }
        }
        result?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The TLS setup for `tls_cert` / `tls_key` (both or neither: [`Config::validate`] checks),
/// requiring client certificates signed by `tls_client_ca` when that is set.
fn tls_config(config: &Config) -> Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else { return Ok(None) };
    let read = |key_name: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| Error::Config(format!("{key_name}: reading {}: {e}", path.display())))
    };
    let identity = Identity::from_pem(read("tls_cert", cert)?, read("tls_key", key)?);
    let tls = ServerTlsConfig::new().identity(identity);
    Ok(Some(match &config.tls_client_ca {
        Some(ca) => tls.client_ca_root(Certificate::from_pem(read("tls_client_ca", ca)?)),
        None => tls,
    }))
}

/// The largest HTTP/2 frame clients may send. HTTP/2's default, 16 KiB, splits a 3 s WAV
/// (375 KB) into 24 DATA frames, each read, checked and appended separately; 256 KiB makes
/// it two. Memory stays bounded by the flow-control windows, not by this.
const HTTP2_MAX_FRAME_BYTES: u32 = 256 * 1024;

/// Loads the newest version of every model in the repository; failures are logged and leave
/// that model NOT_SERVING, they do not stop the server.
/// Accepted connections with Nagle's algorithm off. A request larger than one TCP window
/// waits for HTTP/2 flow-control updates; with Nagle on, those small frames sit behind the
/// peer's delayed ACK (about 40 ms on Linux), which measured as a 44 ms p50 for a 3 s clip
/// whose server-side work took 7 ms. `Server::tcp_nodelay` only applies to listeners tonic
/// binds itself, so the accepted sockets are set here.
fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        Ok(stream)
    })
}

async fn load_all(state: &Arc<AppState>) -> Result<()> {
    state.repo.scan()?;
    for name in state.repo.names()? {
        let repo = state.repo.clone();
        let n = name.clone();
        // Errors are recorded in the registry (state FAILED with the reason) and logged there.
        let _ = tokio::task::spawn_blocking(move || repo.load(&n, 0)).await;
        state.update_model_health(&name).await;
    }
    Ok(())
}
