//! `prosodia-load`: a load generator for `prosodia-server` (or anything serving
//! `prosodia.v1.Emotion`), the benchmark of issue 5.
//!
//! Two workloads, each a library entry so tests and other tools can run them in process:
//!
//! * [`run_unary`]: `Classify` with whole encoded files, over several HTTP/2 connections, as a
//!   closed loop (N clients each waiting for its answer before sending again: latency at a
//!   given concurrency) or an open loop (requests at a fixed or Poisson rate regardless of
//!   answers, with late starts counted and latency measured from the intended send time: what
//!   users see when the server falls behind).
//! * [`run_streams`]: N concurrent `StreamClassify` streams sending raw PCM at real-time pace,
//!   measuring interim-result latency from the chunk that completed each window.
//!
//! Reports are plain serialisable structs ([`UnaryReport`], [`StreamReport`]); the binary
//! prints them as JSON on stdout and as a table on stderr. Every failure of the server (a
//! refused connection included) is counted per gRPC code, never a panic or an abort, because
//! a load test is most useful exactly when the server misbehaves.

mod stats;
mod stream;
mod table;
mod unary;

use std::path::Path;

pub use stats::Percentiles;
pub use stream::{StreamLoadConfig, StreamReport, run_streams};
pub use table::{stream_table, unary_table};
pub use unary::{Arrival, LATE_TOLERANCE, ServerSplit, UnaryConfig, UnaryReport, run_unary};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("bad load configuration: {0}")]
    Config(String),
    /// The server address is not a URL tonic accepts.
    #[error("{0:?} is not a valid server URL: {1}")]
    Address(String, String),
    /// An audio file could not be read or decoded.
    #[error("{path}: {message}")]
    Audio {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Decodes a file locally into mono `f32` samples and their rate, for streaming it as raw PCM.
pub fn decode_mono(path: &Path) -> Result<(Vec<f32>, u32)> {
    use prosodia_dsp::decode::{DecodeLimits, decode};
    let audio_err = |message: String| Error::Audio { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| audio_err(format!("reading: {e}")))?;
    let audio = decode(&bytes, &DecodeLimits::default())
        .map_err(|e| audio_err(format!("decoding: {e}")))?;
    Ok((prosodia_dsp::preprocess::mixdown(&audio), audio.sample_rate))
}
