//! [`TractBackend`] as a Prosodia plugin: the `prosodia-plugin-api` traits.

use std::path::Path;

use prosodia_plugin_api::{
    BackendPlugin, BackendSpec, Batch, ModelBackend, PluginError, TensorSpec,
};

use crate::{DType, Error, ErrorKind, TensorInfo, TractBackend};

/// [`TractBackend`] with the [`BackendSpec`] the plugin API declares, features input first.
#[derive(Debug, Clone)]
pub struct TractPlugin {
    backend: TractBackend,
    spec: BackendSpec,
}

impl TractPlugin {
    /// Wraps a loaded backend.
    pub fn new(backend: TractBackend) -> Self {
        let mut inputs: Vec<TensorSpec> = backend.inputs().iter().map(tensor_spec).collect();
        // The plugin API passes the batch to the first input.
        inputs.sort_by_key(|i| i.name != crate::FEATURES_INPUT);
        let spec = BackendSpec {
            inputs,
            outputs: backend.outputs().iter().map(tensor_spec).collect(),
            num_classes: backend.num_classes(),
        };
        Self { backend, spec }
    }

    /// The wrapped backend.
    pub fn backend(&self) -> &TractBackend {
        &self.backend
    }
}

fn tensor_spec(info: &TensorInfo) -> TensorSpec {
    TensorSpec {
        name: info.name.clone(),
        dtype: match info.dtype {
            DType::F32 => prosodia_plugin_api::DType::F32,
            DType::I64 => prosodia_plugin_api::DType::I64,
        },
        shape: info.shape.clone(),
    }
}

/// Maps an error to the plugin API's codes.
pub fn plugin_error(e: Error) -> PluginError {
    let code = match e.kind() {
        ErrorKind::Io | ErrorKind::InvalidModel => prosodia_plugin_api::ErrorCode::InvalidArgument,
        ErrorKind::InvalidInput => prosodia_plugin_api::ErrorCode::InvalidInput,
        _ => prosodia_plugin_api::ErrorCode::Internal,
    };
    PluginError::new(code, e.to_string())
}

impl ModelBackend for TractPlugin {
    fn spec(&self) -> &BackendSpec {
        &self.spec
    }

    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, PluginError> {
        let lengths: Vec<i64> =
            batch.lengths.iter().map(|&l| i64::try_from(l).unwrap_or(i64::MAX)).collect();
        self.backend.run(batch.data, batch.n, batch.t, batch.f, &lengths).map_err(plugin_error)
    }
}

impl BackendPlugin for TractPlugin {
    const NAME: &'static str = "tract";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Loads the model; the configuration must be empty (tract has no options yet).
    fn load(model_path: &Path, config_toml: &str) -> Result<Self, PluginError> {
        let non_comment =
            config_toml.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
        if let Some(line) = non_comment {
            return Err(PluginError::invalid_argument(format!(
                "the tract backend takes no configuration, got `{line}`"
            )));
        }
        TractBackend::load(model_path).map(Self::new).map_err(plugin_error)
    }
}
