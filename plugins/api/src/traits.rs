//! The safe Rust traits a plugin implements and the host calls.
//!
//! [`FeatureExtractor`] and [`ModelBackend`] are object safe: the host holds every instance,
//! built in or loaded from a library, as a `Box<dyn ...>`. [`ExtractorPlugin`] and
//! [`BackendPlugin`] add the name, version and constructor that
//! [`export_plugin!`](crate::export_plugin) and built-in registration need.

use std::path::Path;

use crate::types::{BackendSpec, Batch, ExtractorSpec, FeatureMatrix, PluginError};

/// Turns a batch of mono utterances into features.
///
/// `extract` may be called concurrently from many threads on one instance.
pub trait FeatureExtractor: Send + Sync {
    /// The output declaration; the same value for the whole life of the instance.
    fn spec(&self) -> &ExtractorSpec;

    /// Extracts features from each utterance of `batch` (mono f32 samples at
    /// `sample_rate`, which must be the declared rate unless that is 0), returning one matrix
    /// per utterance in batch order: `rows = frames` for [`crate::OutputLayout::Frames`], one row
    /// for [`crate::OutputLayout::Vector`], always `spec().width()` columns.
    ///
    /// An empty batch or an empty utterance is an [`crate::ErrorCode::InvalidInput`] error
    /// ([`crate::check_batch`] does these checks).
    fn extract(
        &self,
        batch: &[&[f32]],
        sample_rate: u32,
    ) -> Result<Vec<FeatureMatrix>, PluginError>;
}

/// A feature extractor that can be exported from a library or registered as a built-in.
pub trait ExtractorPlugin: FeatureExtractor + Sized + 'static {
    /// Registry name.
    const NAME: &'static str;
    /// Version string.
    const VERSION: &'static str;

    /// Creates an instance from a TOML configuration (the empty string selects defaults).
    fn create(config_toml: &str) -> Result<Self, PluginError>;
}

/// Runs a model on padded feature batches.
///
/// `run` may be called concurrently from many threads on one instance.
pub trait ModelBackend: Send + Sync {
    /// Inputs, outputs and the number of classes of the loaded model.
    fn spec(&self) -> &BackendSpec;

    /// Runs a padded `[N, T, F]` batch, returning `N * num_classes` probabilities, row-major.
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, PluginError>;
}

/// A model backend that can be exported from a library or registered as a built-in.
pub trait BackendPlugin: ModelBackend + Sized + 'static {
    /// Registry name.
    const NAME: &'static str;
    /// Version string.
    const VERSION: &'static str;

    /// Loads `model_path` with a TOML configuration (the empty string selects defaults).
    fn load(model_path: &Path, config_toml: &str) -> Result<Self, PluginError>;
}
