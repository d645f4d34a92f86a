//! `prosodia-server`: the gRPC front door to Prosodia's speech-emotion recognition.
//!
//! The server is a thin async shell around blocking CPU work. Handlers in [`emotion`] and
//! [`models`] validate requests and resolve models on the tokio executor, then hand decoding,
//! feature extraction (`prosodia-dsp`, one cached `Extractor` per worker thread and feature
//! configuration) and inference to the bounded [`work::Workers`] pool. Models come from a
//! [`repository`] of `<name>/<version>/` folders and run through the [`runner::ModelRunner`]
//! trait; [`plugins`] holds the plugin host (built-in `cpu` extractor and `tract` backend,
//! libraries from `plugin_dir`, hot swap by ReloadPlugin or the file watcher). Every
//! internal failure is an [`Error`]; [`status`] is the only place that turns one into a gRPC
//! status. [`config`] merges the TOML file, environment and flags. [`server::ServerBuilder`]
//! wires the services with health (overall, per service and per model), reflection (v1 and
//! v1alpha), message-size and duration limits, a per-request deadline and graceful shutdown.
//! [`rpc`] is the middleware in front of every service (request id, span, request metrics);
//! [`metrics`] serves Prometheus metrics on their own port; [`auth`] guards the mutating
//! Models calls with a bearer token; TLS and the shutdown grace period are set up in
//! [`server`]. StreamClassify ([`stream`]) runs one task per stream (voice-activity splitting,
//! windows, utterances) whose CPU work goes through the same pool. [`batch`] groups concurrent
//! Classify requests of one model into one model call (`max_batch_size`,
//! `max_batch_delay_ms`). [`web`] serves the browser page and gRPC-Web for the same services
//! on `web_listen`.

pub mod auth;
pub mod batch;
pub mod config;
pub mod emotion;
mod error;
pub mod metrics;
pub mod models;
pub mod plugins;
pub mod repository;
pub mod rpc;
pub mod runner;
pub mod server;
pub mod status;
mod stream;
pub mod telemetry;
pub mod web;
pub mod work;

pub use config::{Args, Config};
pub use error::{Error, Result};
pub use server::ServerBuilder;
