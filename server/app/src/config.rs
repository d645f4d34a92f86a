//! Server configuration: one TOML file, every key overridable by a flag or an environment
//! variable.
//!
//! Precedence, highest first: command-line flag, `PROSODIA_*` environment variable (clap
//! reads both into [`Args`]), the TOML file named by `--config`, then the defaults of
//! [`Config`]. Parsing ([`Args`], the TOML) only validates syntax; [`Config::validate`] checks
//! ranges and relations once everything is merged, so every source gets the same checks.
//!
//! # Every key
//!
//! Each TOML key has a flag `--key-with-dashes` and an environment variable
//! `PROSODIA_KEY_IN_CAPITALS` (e.g. `max_queued`, `--max-queued`, `PROSODIA_MAX_QUEUED`).
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `listen` | `127.0.0.1:50051` | gRPC listen address |
//! | `metrics_listen` | unset (off) | address of the Prometheus endpoint `GET /metrics` (plain HTTP) |
//! | `web_listen` | unset (off) | address of the web page and of gRPC-Web for the same services (`--web-listen` or `--web`; see `docs/web.md`) |
//! | `models` | unset | model repository folder of `<name>/<version>/` |
//! | `plugin_dir` | unset | folder of plugin libraries (a library declaring `cpu` or `tract` replaces the built-in one) |
//! | `plugin_watch_seconds` | 0 (off) | poll plugin libraries this often and hot-swap a changed one (new libraries in `plugin_dir` are loaded too) |
//! | `default_model` | unset | model used when a request names none |
//! | `max_message_bytes` | 67108864 | largest gRPC message accepted or sent |
//! | `max_audio_seconds` | 600 | longest audio accepted |
//! | `request_timeout_seconds` | 120 | per-request deadline |
//! | `workers` | 0 (one per core) | concurrent decode/extract/infer jobs |
//! | `max_queued` | 256 | requests that may wait for a worker |
//! | `max_batch_size` | 1 (off) | most Classify requests of one model sharing one model call (dynamic batching) |
//! | `max_batch_delay_ms` | 2 | longest time a request waits for others to fill its batch |
//! | `shutdown_grace_seconds` | 30 | after SIGTERM/SIGINT, how long requests in flight may run before the server exits anyway |
//! | `admin_token` | unset | bearer token for the Models service's LoadModel, UnloadModel and ReloadPlugin |
//! | `admin_token_file` | unset | file holding the admin token (surrounding whitespace is trimmed); use instead of `admin_token` to keep it out of the process list |
//! | `allow_unauthenticated_admin` | false | with no admin token, let anyone call the mutating Models calls (trusted networks, development) |
//! | `tls_cert` | unset | PEM certificate chain; with `tls_key`, the gRPC port speaks TLS only |
//! | `tls_key` | unset | PEM private key of `tls_cert` |
//! | `tls_client_ca` | unset | PEM certificate(s) of the authority that signs client certificates; when set, every client must present one (mutual TLS); needs `tls_cert` |
//! | `log` | `info,symphonia=warn` | log filter (`tracing_subscriber::EnvFilter` syntax) |
//! | `log_json` | false | log as JSON lines |
//!
//! The mutating Models calls are closed by default: with neither `admin_token` nor
//! `allow_unauthenticated_admin = true` they answer PERMISSION_DENIED and say how to enable
//! them. Loading and unloading models changes what every client gets and costs memory and CPU,
//! and the server may listen on a shared network, so the safe default is off; read-only calls
//! (ListModels, GetModel, ListPlugins) and the Emotion service stay open.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The merged server configuration. Every field has a default, so an empty file (or none) is
/// a valid configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC listen address (`listen`, `--listen`, `PROSODIA_LISTEN`).
    pub listen: SocketAddr,
    /// Metrics (Prometheus) listen address (`metrics_listen`, `--metrics-listen`,
    /// `PROSODIA_METRICS_LISTEN`); `None` disables metrics. Serves `GET /metrics` over plain
    /// HTTP, see [`crate::metrics`].
    pub metrics_listen: Option<SocketAddr>,
    /// Web page listen address (`web_listen`, `--web-listen` or `--web`,
    /// `PROSODIA_WEB_LISTEN`); `None` disables the page. Serves the page and gRPC-Web for the
    /// same services on one origin, see [`crate::web`].
    pub web_listen: Option<SocketAddr>,
    /// Model repository: `<name>/<version>/` folders (`models`, `--models`, `PROSODIA_MODELS`).
    pub models: Option<PathBuf>,
    /// Folder of plugin libraries (`plugin_dir`, `--plugin-dir`, `PROSODIA_PLUGIN_DIR`).
    pub plugin_dir: Option<PathBuf>,
    /// How often to check plugin libraries for changes and hot-swap them
    /// (`plugin_watch_seconds`, `--plugin-watch-seconds`, `PROSODIA_PLUGIN_WATCH_SECONDS`);
    /// 0 turns the watcher off, leaving reloads to the ReloadPlugin call.
    pub plugin_watch_seconds: f64,
    /// Model used when a request leaves `model` empty; `None` picks the repository's only
    /// model when there is exactly one.
    pub default_model: Option<String>,
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Longest audio accepted, in seconds.
    pub max_audio_seconds: f64,
    /// Per-request deadline in seconds (a client's shorter `grpc-timeout` wins).
    pub request_timeout_seconds: f64,
    /// Threads that decode, extract and infer at once; 0 means one per CPU core.
    pub workers: usize,
    /// Requests allowed to wait for a worker before new ones are refused as UNAVAILABLE.
    pub max_queued: usize,
    /// Most Classify requests of one model run as one model call (`max_batch_size`); 1 turns
    /// dynamic batching off.
    pub max_batch_size: usize,
    /// Longest wait, in milliseconds, of a batch's first request for others
    /// (`max_batch_delay_ms`).
    pub max_batch_delay_ms: f64,
    /// After SIGTERM or SIGINT, how long requests in flight may still run, in seconds, before
    /// the server exits anyway (`shutdown_grace_seconds`). New connections are refused at once.
    pub shutdown_grace_seconds: f64,
    /// Bearer token that LoadModel, UnloadModel and ReloadPlugin require in the `authorization`
    /// metadata (`admin_token`, `--admin-token`, `PROSODIA_ADMIN_TOKEN`).
    pub admin_token: Option<Secret>,
    /// File holding the admin token, trimmed (`admin_token_file`, `--admin-token-file`,
    /// `PROSODIA_ADMIN_TOKEN_FILE`); exclusive with `admin_token`.
    pub admin_token_file: Option<PathBuf>,
    /// With no admin token, allow the mutating Models calls without authentication
    /// (`allow_unauthenticated_admin`); when false they are refused with PERMISSION_DENIED.
    pub allow_unauthenticated_admin: bool,
    /// PEM certificate chain for TLS on the gRPC port (`tls_cert`, `--tls-cert`,
    /// `PROSODIA_TLS_CERT`); needs `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert` (`tls_key`, `--tls-key`, `PROSODIA_TLS_KEY`).
    pub tls_key: Option<PathBuf>,
    /// PEM certificate(s) of the authority whose client certificates are accepted; when set,
    /// a client without such a certificate cannot connect (mutual TLS) (`tls_client_ca`,
    /// `--tls-client-ca`, `PROSODIA_TLS_CLIENT_CA`); needs `tls_cert`.
    pub tls_client_ca: Option<PathBuf>,
    /// Longest StreamClassify stream accepted, in seconds of audio; a stream that runs past
    /// it ends with RESOURCE_EXHAUSTED (`max_stream_seconds`, `--max-stream-seconds`,
    /// `PROSODIA_MAX_STREAM_SECONDS`).
    pub max_stream_seconds: f64,
    /// StreamClassify streams served at once; one more is refused with RESOURCE_EXHAUSTED
    /// (`max_streams`, `--max-streams`, `PROSODIA_MAX_STREAMS`).
    pub max_streams: usize,
    /// Seconds a StreamClassify stream may go without a client message before it ends with
    /// DEADLINE_EXCEEDED (`stream_idle_timeout_seconds`, `--stream-idle-timeout-seconds`,
    /// `PROSODIA_STREAM_IDLE_TIMEOUT_SECONDS`).
    pub stream_idle_timeout_seconds: f64,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax, e.g. `info,prosodia_server=debug`.
    pub log: String,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: None,
            web_listen: None,
            models: None,
            plugin_dir: None,
            plugin_watch_seconds: 0.0,
            default_model: None,
            max_message_bytes: 64 * 1024 * 1024,
            max_audio_seconds: 600.0,
            request_timeout_seconds: 120.0,
            workers: 0,
            max_queued: 256,
            max_batch_size: 1,
            max_batch_delay_ms: 2.0,
            shutdown_grace_seconds: 30.0,
            admin_token: None,
            admin_token_file: None,
            allow_unauthenticated_admin: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_stream_seconds: 3600.0,
            max_streams: 64,
            stream_idle_timeout_seconds: 30.0,
            // symphonia logs every chunk it skips in a file at info: noise at one per request.
            log: "info,symphonia=warn".to_owned(),
            log_json: false,
        }
    }
}

/// Command-line flags; each also reads a `PROSODIA_*` environment variable.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "prosodia-server",
    version,
    about = "Prosodia speech-emotion-recognition gRPC server"
)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, env = "PROSODIA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "PROSODIA_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Prometheus metrics listen address (`GET /metrics`); unset disables metrics.
    #[arg(long, env = "PROSODIA_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Web page (and gRPC-Web) listen address, e.g. 127.0.0.1:8080; unset disables the page.
    #[arg(long, alias = "web", env = "PROSODIA_WEB_LISTEN", value_name = "ADDR")]
    pub web_listen: Option<SocketAddr>,
    /// Model repository folder (`<name>/<version>/model.onnx`, `features.toml`, `model.toml`).
    #[arg(long, env = "PROSODIA_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Folder of plugin libraries.
    #[arg(long, env = "PROSODIA_PLUGIN_DIR", value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Poll plugin libraries every this many seconds and hot-swap changed ones; 0 = off
    /// [default: 0].
    #[arg(long, env = "PROSODIA_PLUGIN_WATCH_SECONDS", value_name = "SECONDS")]
    pub plugin_watch_seconds: Option<f64>,
    /// Model used when a request names none.
    #[arg(long, env = "PROSODIA_DEFAULT_MODEL", value_name = "NAME")]
    pub default_model: Option<String>,
    /// Largest gRPC message accepted, in bytes [default: 67108864].
    #[arg(long, env = "PROSODIA_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Longest audio accepted, in seconds [default: 600].
    #[arg(long, env = "PROSODIA_MAX_AUDIO_SECONDS", value_name = "SECONDS")]
    pub max_audio_seconds: Option<f64>,
    /// Per-request deadline, in seconds [default: 120].
    #[arg(long, env = "PROSODIA_REQUEST_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub request_timeout_seconds: Option<f64>,
    /// Concurrent decode/extract/infer threads; 0 = one per core [default: 0].
    #[arg(long, env = "PROSODIA_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Requests that may wait for a worker [default: 256].
    #[arg(long, env = "PROSODIA_MAX_QUEUED", value_name = "N")]
    pub max_queued: Option<usize>,
    /// Most Classify requests per model call; 1 = no batching [default: 1].
    #[arg(long, env = "PROSODIA_MAX_BATCH_SIZE", value_name = "N")]
    pub max_batch_size: Option<usize>,
    /// Longest wait of a request for its batch to fill, in ms [default: 2].
    #[arg(long, env = "PROSODIA_MAX_BATCH_DELAY_MS", value_name = "MS")]
    pub max_batch_delay_ms: Option<f64>,
    /// Seconds that requests in flight may run after SIGTERM/SIGINT [default: 30].
    #[arg(long, env = "PROSODIA_SHUTDOWN_GRACE_SECONDS", value_name = "SECONDS")]
    pub shutdown_grace_seconds: Option<f64>,
    /// Bearer token required by LoadModel, UnloadModel and ReloadPlugin.
    #[arg(long, env = "PROSODIA_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// File holding the admin token (instead of --admin-token).
    #[arg(long, env = "PROSODIA_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Without an admin token, allow LoadModel, UnloadModel and ReloadPlugin unauthenticated.
    #[arg(long, env = "PROSODIA_ALLOW_UNAUTHENTICATED_ADMIN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated_admin: Option<bool>,
    /// PEM certificate chain: serve gRPC over TLS (needs --tls-key).
    #[arg(long, env = "PROSODIA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "PROSODIA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate authority for client certificates: require mutual TLS (needs
    /// --tls-cert).
    #[arg(long, env = "PROSODIA_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Longest StreamClassify stream, in seconds of audio [default: 3600].
    #[arg(long, env = "PROSODIA_MAX_STREAM_SECONDS", value_name = "SECONDS")]
    pub max_stream_seconds: Option<f64>,
    /// StreamClassify streams served at once [default: 64].
    #[arg(long, env = "PROSODIA_MAX_STREAMS", value_name = "N")]
    pub max_streams: Option<usize>,
    /// Seconds a stream may send nothing before it is ended [default: 30].
    #[arg(long, env = "PROSODIA_STREAM_IDLE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub stream_idle_timeout_seconds: Option<f64>,
    /// Log filter, e.g. `info` or `debug,h2=info` [default: info,symphonia=warn].
    #[arg(long, env = "PROSODIA_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "PROSODIA_LOG_JSON", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub log_json: Option<bool>,
}

impl Config {
    /// Parses TOML text (unknown keys are refused, so a typo cannot silently fall back to a
    /// default) without validating it.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config(format!("configuration file: {e}")))
    }

    /// Reads the file named by `args.config` (if any), applies every flag or environment
    /// variable that is set, and validates the result.
    pub fn load(args: &Args) -> Result<Self> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply(args);
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Overrides fields with every value set in `args`.
    pub fn apply(&mut self, args: &Args) {
        fn set<T: Clone>(field: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *field = v.clone();
            }
        }
        fn set_opt<T: Clone>(field: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        set(&mut self.listen, &args.listen);
        set_opt(&mut self.metrics_listen, &args.metrics_listen);
        set_opt(&mut self.web_listen, &args.web_listen);
        set_opt(&mut self.models, &args.models);
        set_opt(&mut self.plugin_dir, &args.plugin_dir);
        set_opt(&mut self.default_model, &args.default_model);
        set(&mut self.max_message_bytes, &args.max_message_bytes);
        set(&mut self.max_audio_seconds, &args.max_audio_seconds);
        set(&mut self.request_timeout_seconds, &args.request_timeout_seconds);
        set(&mut self.workers, &args.workers);
        set(&mut self.max_queued, &args.max_queued);
        set(&mut self.shutdown_grace_seconds, &args.shutdown_grace_seconds);
        set(&mut self.plugin_watch_seconds, &args.plugin_watch_seconds);
        set(&mut self.max_batch_size, &args.max_batch_size);
        set(&mut self.max_batch_delay_ms, &args.max_batch_delay_ms);
        set_opt(&mut self.admin_token, &args.admin_token);
        set_opt(&mut self.admin_token_file, &args.admin_token_file);
        set(&mut self.allow_unauthenticated_admin, &args.allow_unauthenticated_admin);
        set_opt(&mut self.tls_cert, &args.tls_cert);
        set_opt(&mut self.tls_key, &args.tls_key);
        set_opt(&mut self.tls_client_ca, &args.tls_client_ca);
        set(&mut self.max_stream_seconds, &args.max_stream_seconds);
        set(&mut self.max_streams, &args.max_streams);
        set(&mut self.stream_idle_timeout_seconds, &args.stream_idle_timeout_seconds);
        set(&mut self.log, &args.log);
        set(&mut self.log_json, &args.log_json);
    }

    /// Checks ranges; the message names the offending key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.max_message_bytes < 1024 {
            return bad(format!("max_message_bytes = {} is below 1024", self.max_message_bytes));
        }
        if !(self.max_audio_seconds.is_finite() && self.max_audio_seconds > 0.0) {
            return bad(format!(
                "max_audio_seconds = {} must be a positive number",
                self.max_audio_seconds
            ));
        }
        if !(self.request_timeout_seconds.is_finite() && self.request_timeout_seconds > 0.0) {
            return bad(format!(
                "request_timeout_seconds = {} must be a positive number",
                self.request_timeout_seconds
            ));
        }
        for (key, value) in [
            ("max_stream_seconds", self.max_stream_seconds),
            ("stream_idle_timeout_seconds", self.stream_idle_timeout_seconds),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return bad(format!("{key} = {value} must be a positive number"));
            }
        }
        if self.max_streams == 0 {
            return bad("max_streams = 0 would refuse every stream; use at least 1".to_owned());
        }
        if self.default_model.as_deref() == Some("") {
            return bad("default_model is empty: leave it unset instead".to_owned());
        }
        if self.max_batch_size == 0 {
            return bad("max_batch_size = 0: use 1 to turn batching off".to_owned());
        }
        if !(self.max_batch_delay_ms.is_finite()
            && (0.0..=1000.0).contains(&self.max_batch_delay_ms))
        {
            return bad(format!(
                "max_batch_delay_ms = {} must be between 0 and 1000",
                self.max_batch_delay_ms
            ));
        }
        if !(self.plugin_watch_seconds.is_finite() && self.plugin_watch_seconds >= 0.0) {
            return bad(format!(
                "plugin_watch_seconds = {} must be zero (off) or a positive number",
                self.plugin_watch_seconds
            ));
        }
        if !(self.shutdown_grace_seconds.is_finite() && self.shutdown_grace_seconds >= 0.0) {
            return bad(format!(
                "shutdown_grace_seconds = {} must be zero or a positive number",
                self.shutdown_grace_seconds
            ));
        }
        if self.metrics_listen.is_some_and(|m| m == self.listen && m.port() != 0) {
            return bad(format!(
                "metrics_listen = {} is the gRPC listen address; pick another port",
                self.listen
            ));
        }
        if let Some(web) = self.web_listen.filter(|w| w.port() != 0) {
            if web == self.listen {
                return bad(format!(
                    "web_listen = {web} is the gRPC listen address; pick another port"
                ));
            }
            if self.metrics_listen == Some(web) {
                return bad(format!(
                    "web_listen = {web} is the metrics_listen address; pick another port"
                ));
            }
        }
        match (&self.admin_token, &self.admin_token_file) {
            (Some(_), Some(_)) => {
                return bad("admin_token and admin_token_file are both set: use one".to_owned());
            }
            (Some(t), None) if t.expose().trim().is_empty() => {
                return bad("admin_token is empty: set a token or leave it unset".to_owned());
            }
            _ => {}
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return bad("tls_cert is set but tls_key is missing: set tls_key (--tls-key, \
                            PROSODIA_TLS_KEY) to the certificate's PEM private key"
                    .to_owned());
            }
            (None, Some(_)) => {
                return bad("tls_key is set but tls_cert is missing: set tls_cert (--tls-cert, \
                            PROSODIA_TLS_CERT) to the PEM certificate chain"
                    .to_owned());
            }
            _ => {}
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return bad("tls_client_ca is set but TLS is off: client certificates need the \
                        server to speak TLS, so set tls_cert and tls_key as well"
                .to_owned());
        }
        Ok(())
    }

    /// The admin token from `admin_token` or the file `admin_token_file` (trimmed), if any.
    pub fn resolve_admin_token(&self) -> Result<Option<Secret>> {
        if let Some(t) = &self.admin_token {
            return Ok(Some(Secret::new(t.expose().trim())));
        }
        let Some(path) = &self.admin_token_file else { return Ok(None) };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("admin_token_file: reading {}: {e}", path.display()))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::Config(format!("admin_token_file {} is empty", path.display())));
        }
        Ok(Some(Secret::new(token)))
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_seconds)
    }

    /// The per-request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_seconds)
    }

    /// How long a stream may go without a client message.
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.stream_idle_timeout_seconds)
    }

    /// Worker threads, resolving 0 to the number of cores.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}

/// A secret string (the admin token): `Debug` never shows it, so logging a [`Config`] or
/// [`Args`] cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_listens_on_localhost_50051() {
        let config = Config::load(&Args::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:6000\"\nworkers = 3\nmax_audio_seconds = 30.0\n")
            .unwrap();
        let args = Args::try_parse_from([
            "prosodia-server",
            "--config",
            path.to_str().unwrap(),
            "--workers",
            "5",
        ])
        .unwrap();
        let config = Config::load(&args).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:6000");
        assert_eq!(config.workers, 5);
        assert_eq!(config.max_audio_seconds, 30.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        let err = Config::from_toml("listn = \"1.2.3.4:5\"").unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
        let config = Config { max_audio_seconds: -1.0, ..Config::default() };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("max_audio_seconds"), "{err}");
        let config = Config { max_streams: 0, ..Config::default() };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("max_streams"), "{err}");
    }

    #[test]
    fn stream_limits_come_from_the_file_and_flags() {
        let config = Config::from_toml("max_stream_seconds = 60.0\nmax_streams = 2\n").unwrap();
        assert_eq!((config.max_stream_seconds, config.max_streams), (60.0, 2));
        let args = Args::try_parse_from([
            "prosodia-server",
            "--stream-idle-timeout-seconds",
            "1.5",
            "--max-streams",
            "3",
        ])
        .unwrap();
        let config = Config::load(&args).unwrap();
        assert_eq!(config.stream_idle_timeout(), Duration::from_millis(1500));
        assert_eq!(config.max_streams, 3);
    }

    #[test]
    fn the_web_page_is_off_by_default_and_set_by_web_or_web_listen() {
        assert_eq!(Config::default().web_listen, None);
        for flag in ["--web", "--web-listen"] {
            let args = Args::try_parse_from(["prosodia-server", flag, "127.0.0.1:8080"]).unwrap();
            let config = Config::load(&args).unwrap();
            assert_eq!(config.web_listen.unwrap().to_string(), "127.0.0.1:8080");
        }
        let config = Config::from_toml("web_listen = \"127.0.0.1:50051\"\n").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("web_listen"), "{err}");
    }

    #[test]
    fn tls_needs_both_files_and_names_the_missing_one() {
        let config = Config { tls_cert: Some("cert.pem".into()), ..Config::default() };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tls_key is missing"), "{err}");
        let config = Config { tls_key: Some("key.pem".into()), ..Config::default() };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tls_cert is missing"), "{err}");
    }

    #[test]
    fn admin_token_comes_from_a_flag_or_a_file_and_never_shows_in_debug() {
        let args =
            Args::try_parse_from(["prosodia-server", "--admin-token", "s3cret", "--tls-cert", "c"])
                .unwrap();
        assert!(!format!("{args:?}").contains("s3cret"));
        let mut config = Config::default();
        config.apply(&args);
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.resolve_admin_token().unwrap().unwrap().expose(), "s3cret");
        assert!(config.validate().unwrap_err().to_string().contains("tls_key"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let config = Config { admin_token_file: Some(path.clone()), ..Config::default() };
        assert_eq!(config.resolve_admin_token().unwrap().unwrap().expose(), "from-file");
        let both = Config { admin_token: Some(Secret::new("x")), ..config };
        assert!(both.validate().unwrap_err().to_string().contains("admin_token_file"));
        let text = "admin_token = \"t\"\nallow_unauthenticated_admin = true\nshutdown_grace_seconds = 2.5\n";
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.admin_token.unwrap().expose(), "t");
        assert!(config.allow_unauthenticated_admin);
        assert_eq!(config.shutdown_grace_seconds, 2.5);
    }
}
