//! Prosodia's audio front end: the one code path that turns untrusted audio bytes into the
//! features a model sees, shared by the trainer, the server and the CLI.
//!
//! The pipeline is a chain of small stages, each usable on its own:
//! [`decode`] turns bytes (any supported container, or raw PCM) into an [`Audio`] buffer with
//! every header field checked before it sizes an allocation; [`preprocess`] mixes down,
//! resamples, normalises, trims and optionally denoises; [`spectral`] runs one STFT and
//! derives every spectral feature from it (log-mel, MFCC and deltas, centroid, rolloff, onset
//! strength, tempo), matching librosa 0.11 number for number; [`framing`] holds the
//! time-domain frame features (RMS, zero-crossing rate); [`praat`] implements Praat's
//! autocorrelation pitch tracker, periodic point process and local jitter/shimmer from their
//! published descriptions; [`utterance`] reduces all of it to the case study's 46 named
//! utterance features. [`FeatureConfig`] names the whole chain and is serialised next to
//! every model, so training and serving cannot disagree. Hot paths offer `_into` variants
//! that write into caller buffers; every fallible call returns [`Error`] with a
//! [`ErrorKind`] the server maps to a status code.

mod audio;
pub mod config;
pub mod decode;
mod error;
pub mod framing;
mod matrix;
pub mod pipeline;
pub mod praat;
pub mod preprocess;
pub mod spectral;
pub mod utterance;

pub use audio::Audio;
pub use config::FeatureConfig;
pub use error::{Error, ErrorKind, Result};
pub use matrix::Matrix;
