//! The model backends compiled into the server, wrapped in [`Backend`] /
//! [`ModelRunner`](crate::runner::ModelRunner).
//!
//! [`builtin`] lists them; the binary registers all of them. Each adapter only translates
//! shapes and errors, so adding ONNX Runtime (or a plugin host) is one more small module.

use std::sync::Arc;

use crate::runner::Backend;

/// Every backend compiled into this build (selected by cargo features).
pub fn builtin() -> Vec<Arc<dyn Backend>> {
    let backends: [Option<Arc<dyn Backend>>; 1] = [
        #[cfg(feature = "tract")]
        Some(Arc::new(tract::Tract)),
        #[cfg(not(feature = "tract"))]
        None,
    ];
    backends.into_iter().flatten().collect()
}

/// `backend = "tract"`: pure-Rust ONNX inference (`prosodia-backend-tract`).
#[cfg(feature = "tract")]
pub mod tract {
    use std::path::Path;

    use prosodia_backend_tract::{ErrorKind, TractBackend};

    use crate::repository::ModelManifest;
    use crate::runner::{Backend, Batch, ModelRunner, RunnerError, RunnerErrorKind, TensorInfo};

    /// The tract backend factory.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Tract;

    fn error(e: &prosodia_backend_tract::Error) -> RunnerError {
        let kind = match e.kind() {
            ErrorKind::InvalidInput => RunnerErrorKind::InvalidInput,
            _ => RunnerErrorKind::Internal,
        };
        RunnerError::new(kind, format!("tract: {e}"))
    }

    impl Backend for Tract {
        fn name(&self) -> &str {
            "tract"
        }

        fn version(&self) -> &str {
            env!("CARGO_PKG_VERSION")
        }

        fn load(
            &self,
            model_path: &Path,
            manifest: &ModelManifest,
        ) -> Result<Box<dyn ModelRunner>, RunnerError> {
            let backend = TractBackend::load(model_path).map_err(|e| error(&e))?;
            if backend.num_classes() != manifest.labels.len() {
                return Err(RunnerError::new(
                    RunnerErrorKind::Unsupported,
                    format!(
                        "{} has {} outputs but model.toml lists {} labels",
                        model_path.display(),
                        backend.num_classes(),
                        manifest.labels.len()
                    ),
                ));
            }
            Ok(Box::new(TractRunner { backend }))
        }
    }

    /// A loaded tract plan; `run` may be called from many threads at once.
    #[derive(Debug)]
    pub struct TractRunner {
        backend: TractBackend,
    }

    fn infos(t: &[prosodia_backend_tract::TensorInfo]) -> Vec<TensorInfo> {
        t.iter()
            .map(|t| TensorInfo {
                name: t.name.clone(),
                dtype: format!("{:?}", t.dtype).to_lowercase(),
                shape: t.shape.clone(),
            })
            .collect()
    }

    impl ModelRunner for TractRunner {
        fn inputs(&self) -> Vec<TensorInfo> {
            infos(self.backend.inputs())
        }

        fn outputs(&self) -> Vec<TensorInfo> {
            infos(self.backend.outputs())
        }

        fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
            if batch.f != self.backend.feature_width() {
                return Err(RunnerError::new(
                    RunnerErrorKind::Unsupported,
                    format!(
                        "the model expects {} features per frame but its feature configuration gives {}",
                        self.backend.feature_width(),
                        batch.f
                    ),
                ));
            }
            let lengths: Vec<i64> = batch.lengths.iter().map(|&l| l as i64).collect();
            self.backend.run(batch.data, batch.n, batch.t, batch.f, &lengths).map_err(|e| error(&e))
        }
    }
}
