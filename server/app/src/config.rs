//! Server configuration: one TOML file, every key overridable by a flag or an environment
//! variable.
//!
//! Precedence, highest first: command-line flag, `PROSODIA_*` environment variable (clap
//! reads both into [`Args`]), the TOML file named by `--config`, then the defaults of
//! [`Config`]. Parsing ([`Args`], the TOML) only validates syntax; [`Config::validate`] checks
//! ranges and relations once everything is merged, so every source gets the same checks.

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
    /// Metrics (Prometheus) listen address; `None` disables metrics. Not served yet: the key
    /// is accepted so deployments can set it now.
    pub metrics_listen: Option<SocketAddr>,
    /// Model repository: `<name>/<version>/` folders (`models`, `--models`, `PROSODIA_MODELS`).
    pub models: Option<PathBuf>,
    /// Folder of plugin libraries (`plugin_dir`, `--plugin-dir`, `PROSODIA_PLUGIN_DIR`).
    pub plugin_dir: Option<PathBuf>,
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
            models: None,
            plugin_dir: None,
            default_model: None,
            max_message_bytes: 64 * 1024 * 1024,
            max_audio_seconds: 600.0,
            request_timeout_seconds: 120.0,
            workers: 0,
            max_queued: 256,
            max_stream_seconds: 3600.0,
            max_streams: 64,
            stream_idle_timeout_seconds: 30.0,
            log: "info".to_owned(),
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
    /// Metrics listen address (reserved; metrics are not served yet).
    #[arg(long, env = "PROSODIA_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Model repository folder (`<name>/<version>/model.onnx`, `features.toml`, `model.toml`).
    #[arg(long, env = "PROSODIA_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Folder of plugin libraries.
    #[arg(long, env = "PROSODIA_PLUGIN_DIR", value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
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
    /// Longest StreamClassify stream, in seconds of audio [default: 3600].
    #[arg(long, env = "PROSODIA_MAX_STREAM_SECONDS", value_name = "SECONDS")]
    pub max_stream_seconds: Option<f64>,
    /// StreamClassify streams served at once [default: 64].
    #[arg(long, env = "PROSODIA_MAX_STREAMS", value_name = "N")]
    pub max_streams: Option<usize>,
    /// Seconds a stream may send nothing before it is ended [default: 30].
    #[arg(long, env = "PROSODIA_STREAM_IDLE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub stream_idle_timeout_seconds: Option<f64>,
    /// Log filter, e.g. `info` or `debug,h2=info` [default: info].
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
        set_opt(&mut self.models, &args.models);
        set_opt(&mut self.plugin_dir, &args.plugin_dir);
        set_opt(&mut self.default_model, &args.default_model);
        set(&mut self.max_message_bytes, &args.max_message_bytes);
        set(&mut self.max_audio_seconds, &args.max_audio_seconds);
        set(&mut self.request_timeout_seconds, &args.request_timeout_seconds);
        set(&mut self.workers, &args.workers);
        set(&mut self.max_queued, &args.max_queued);
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
        Ok(())
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
}
