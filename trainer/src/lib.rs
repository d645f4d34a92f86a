//! Prosodia's trainer: reads emotional-speech corpora, extracts features once through an
//! on-disk cache, splits without leakage, trains the case study's CNN–LSTM (and its MLP
//! baseline) with burn on the pure-Rust `flex` CPU backend, evaluates, and writes a model
//! directory the server can load.
//!
//! The design follows the data: [`corpus`] turns each corpus's naming scheme into [`Clip`]s
//! that keep their corpus and speaker, and [`labels`] maps every corpus's emotions onto one
//! set of six classes. [`features`] runs the very same `prosodia-dsp` front end the server
//! runs, in parallel, and caches each clip's frame matrix and 46 utterance features under a
//! hash of the audio bytes and of the feature configuration, so retraining never
//! re-extracts. [`split`] makes stratified-random, by-speaker and k-fold-by-speaker splits
//! that depend only on the clip list and a seed; [`standardize`] is fitted on the training
//! part alone. [`model`] holds the networks (the LSTM is written out, masked, so padded
//! batches equal unpadded clips and the weights map onto ONNX's `LSTM`), [`train`] the loop
//! (length-bucketed batches, Adam, early stopping on validation loss, best checkpoint kept),
//! [`adapt`] the optional per-speaker normalisation (a
//! protocol of its own, reported apart), [`eval`] the metrics and reports, [`artifact`] the model directory and [`run`] the two
//! commands as library calls. Errors are one [`Error`] type with a matchable [`ErrorKind`].

pub mod adapt;
pub mod artifact;
pub mod corpus;
pub mod dataset;
mod error;
pub mod eval;
pub mod export;
pub mod features;
pub mod labels;
pub mod model;
pub mod run;
pub mod split;
pub mod standardize;
pub mod train;
pub mod util;

pub use corpus::{Clip, Corpus};
pub use error::{Error, ErrorKind, Result};
pub use labels::{Emotion, LabelMap};
