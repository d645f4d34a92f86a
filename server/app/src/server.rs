//! Assembling and running the gRPC server: shared state, the services, health, reflection,
//! limits and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prosodia_dsp::decode::DecodeLimits;
use prosodia_proto::pb;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::http;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::Config;
use crate::emotion::EmotionService;
use crate::error::{Error, Result};
use crate::models::ModelsService;
use crate::repository::Repository;
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
    /// StreamClassify limits and the permits that bound concurrent streams.
    pub streams: StreamLimits,
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
    }
}

/// A builder for the server, so tests and the binary can add backends before starting.
#[derive(Debug)]
pub struct ServerBuilder {
    config: Config,
    backends: Vec<Arc<dyn Backend>>,
}

impl ServerBuilder {
    /// A server for `config` with no model backends.
    pub fn new(config: Config) -> Self {
        Self { config, backends: Vec::new() }
    }

    /// Adds a model backend (selected by `model.toml`'s `backend` key).
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting connections,
    /// reports NOT_SERVING and drains the requests in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let config = self.config;
        config.validate()?;
        if let Some(dir) = &config.plugin_dir {
            tracing::warn!(dir = %dir.display(), "plugin libraries are not loaded yet; only built-in backends are used");
        }
        if let Some(addr) = &config.metrics_listen {
            tracing::warn!(%addr, "metrics are not served yet; metrics_listen is ignored");
        }

        let (health, health_service) = tonic_health::server::health_reporter();
        let repo = Repository::new(config.models.clone(), self.backends);
        let limits = DecodeLimits {
            max_duration_secs: config.max_audio_seconds,
            max_input_bytes: config.max_message_bytes,
            ..DecodeLimits::default()
        };
        let state = Arc::new(AppState {
            repo: repo.clone(),
            workers: Workers::new(config.worker_count(), config.max_queued),
            limits,
            default_model: config.default_model.clone(),
            health: health.clone(),
            streams: StreamLimits::from_config(&config),
        });
        load_all(&state).await?;

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

        let addr =
            listener.local_addr().map_err(|e| Error::Internal(format!("listener address: {e}")))?;
        tracing::info!(%addr, workers = config.worker_count(), "prosodia-server listening");
        let reporter = health.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: refusing new connections, draining requests in flight");
            reporter.set_service_status("", ServingStatus::NotServing).await;
            reporter.set_not_serving::<pb::emotion_server::EmotionServer<EmotionService>>().await;
            reporter.set_not_serving::<pb::models_server::ModelsServer<ModelsService>>().await;
        };
        Server::builder()
            .timeout(config.request_timeout())
            .trace_fn(request_span)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(emotion)
            .add_service(models)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal)
            .await
            .map_err(|e| Error::Internal(format!("server: {e}")))?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Loads the newest version of every model in the repository; failures are logged and leave
/// that model NOT_SERVING, they do not stop the server.
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

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// One span per RPC carrying a request id: the client's `x-request-id` header when sent,
/// otherwise a server-generated one.
fn request_span(req: &http::Request<()>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("r{}", NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)));
    tracing::info_span!("rpc", request_id = %id, method = %req.uri().path())
}
