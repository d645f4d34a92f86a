//! How the server runs models: the [`ModelRunner`] trait and the [`Backend`] that creates
//! runners from a model folder.
//!
//! The shapes mirror the plugin ABI's `ModelBackend` (`prosodia-plugin-api`): a padded
//! `[N, T, F]` batch with the valid length of each item in, `N × classes` probabilities out.
//! A built-in backend (tract, ORT) or a plugin loaded from a library is wrapped in these
//! traits, so the services never know which one answers. Runners are shared between worker
//! threads (`Send + Sync`) and are called from the blocking pool, never from async tasks.

use std::fmt;
use std::path::Path;

use crate::repository::ModelManifest;

/// What kind of runner failure occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunnerErrorKind {
    /// The input does not fit the model (wrong width, too few frames).
    InvalidInput,
    /// The model or backend cannot do what was asked.
    Unsupported,
    /// The backend failed.
    Internal,
}

/// A failure reported by a runner or backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunnerError {
    kind: RunnerErrorKind,
    message: String,
}

impl RunnerError {
    /// Builds an error.
    pub fn new(kind: RunnerErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The kind, for matching.
    pub fn kind(&self) -> RunnerErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A padded batch of feature matrices: `n` items of up to `t` frames of `f` features.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// `n * t * f` values, item after item, frame after frame; padding frames are zero.
    pub data: &'a [f32],
    /// Items.
    pub n: usize,
    /// Padded frames per item.
    pub t: usize,
    /// Features per frame.
    pub f: usize,
    /// Valid frames of each item (`n` entries, each in `1..=t`).
    pub lengths: &'a [usize],
}

impl Batch<'_> {
    /// Checks that the sizes agree.
    pub fn check(&self) -> Result<(), RunnerError> {
        let expected = self.n.checked_mul(self.t).and_then(|x| x.checked_mul(self.f));
        if self.n == 0 || self.t == 0 || self.f == 0 || expected != Some(self.data.len()) {
            return Err(RunnerError::new(
                RunnerErrorKind::Internal,
                format!(
                    "batch [{}, {}, {}] does not hold {} values",
                    self.n,
                    self.t,
                    self.f,
                    self.data.len()
                ),
            ));
        }
        if self.lengths.len() != self.n || self.lengths.iter().any(|&l| l == 0 || l > self.t) {
            return Err(RunnerError::new(RunnerErrorKind::Internal, "batch lengths out of range"));
        }
        Ok(())
    }
}

/// One input or output tensor of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name in the model file.
    pub name: String,
    /// Element type, e.g. `f32`.
    pub dtype: String,
    /// Dimensions; -1 for dynamic ones.
    pub shape: Vec<i64>,
}

/// A loaded model, ready to run.
pub trait ModelRunner: Send + Sync {
    /// The model's inputs.
    fn inputs(&self) -> Vec<TensorInfo>;

    /// The model's outputs.
    fn outputs(&self) -> Vec<TensorInfo>;

    /// Runs a batch, returning `batch.n * classes` probabilities, row-major, in the model's
    /// label order.
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError>;

    /// Prepares the runner for requests after its backend changed under it (a plugin hot
    /// swap): a plugin-backed runner loads the model into the new version here. In-process
    /// runners have nothing to do.
    fn warm(&self) -> Result<(), RunnerError> {
        Ok(())
    }
}

/// Creates runners from model folders: one per backend name (`tract`, `ort`, a plugin).
pub trait Backend: Send + Sync {
    /// The name `model.toml`'s `backend` key selects.
    fn name(&self) -> &str;

    /// The backend's version, for ListPlugins.
    fn version(&self) -> &str;

    /// Loads `model_path` (the version folder's `model.onnx`) described by `manifest`.
    fn load(
        &self,
        model_path: &Path,
        manifest: &ModelManifest,
    ) -> Result<Box<dyn ModelRunner>, RunnerError>;
}

impl fmt::Debug for dyn Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Backend({} {})", self.name(), self.version())
    }
}

/// Turns a runner's raw output for one item into probabilities: checks it is finite and
/// `classes` long, and rescales it to sum to one.
pub fn normalize_probabilities(raw: &[f32], classes: usize) -> Result<Vec<f32>, RunnerError> {
    if raw.len() != classes {
        return Err(RunnerError::new(
            RunnerErrorKind::Internal,
            format!("the model returned {} scores for {classes} labels", raw.len()),
        ));
    }
    if raw.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return Err(RunnerError::new(
            RunnerErrorKind::Internal,
            "the model returned a negative or non-finite probability",
        ));
    }
    let sum: f32 = raw.iter().sum();
    if sum <= 0.0 {
        return Err(RunnerError::new(
            RunnerErrorKind::Internal,
            "the model's probabilities sum to zero",
        ));
    }
    Ok(raw.iter().map(|p| p / sum).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_checked_and_rescaled() {
        assert_eq!(normalize_probabilities(&[1.0, 3.0], 2).unwrap(), vec![0.25, 0.75]);
        assert!(normalize_probabilities(&[1.0], 2).is_err());
        assert!(normalize_probabilities(&[f32::NAN, 1.0], 2).is_err());
    }

    #[test]
    fn runner_can_be_boxed() {
        struct Fixed;
        impl ModelRunner for Fixed {
            fn inputs(&self) -> Vec<TensorInfo> {
                Vec::new()
            }
            fn outputs(&self) -> Vec<TensorInfo> {
                Vec::new()
            }
            fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
                Ok(vec![0.5; batch.n * 2])
            }
        }
        let r: Box<dyn ModelRunner> = Box::new(Fixed);
        let data = [0.0f32; 6];
        let batch = Batch { data: &data, n: 1, t: 3, f: 2, lengths: &[3] };
        batch.check().unwrap();
        assert_eq!(r.run(&batch).unwrap().len(), 2);
    }
}
