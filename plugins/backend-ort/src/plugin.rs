//! [`OrtBackend`] as a Prosodia plugin: the `prosodia-plugin-api` traits.

use std::path::Path;

use prosodia_plugin_api::{
    BackendPlugin, BackendSpec, Batch, ErrorCode, ModelBackend, PluginError, TensorSpec,
};

use crate::{DType, Error, ErrorKind, OrtBackend, OrtConfig, TensorInfo};

/// [`OrtBackend`] with the [`BackendSpec`] the plugin API declares, features input first.
#[derive(Debug)]
pub struct OrtPlugin {
    backend: OrtBackend,
    spec: BackendSpec,
}

impl OrtPlugin {
    /// Wraps a loaded backend.
    pub fn new(backend: OrtBackend) -> Self {
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
    pub fn backend(&self) -> &OrtBackend {
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
        ErrorKind::Io | ErrorKind::InvalidModel | ErrorKind::InvalidConfig => {
            ErrorCode::InvalidArgument
        }
        ErrorKind::InvalidInput => ErrorCode::InvalidInput,
        ErrorKind::Unavailable => ErrorCode::Unsupported,
        _ => ErrorCode::Internal,
    };
    PluginError::new(code, e.to_string())
}

impl ModelBackend for OrtPlugin {
    fn spec(&self) -> &BackendSpec {
        &self.spec
    }

    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, PluginError> {
        let lengths: Vec<i64> =
            batch.lengths.iter().map(|&l| i64::try_from(l).unwrap_or(i64::MAX)).collect();
        self.backend.run(batch.data, batch.n, batch.t, batch.f, &lengths).map_err(plugin_error)
    }
}

impl BackendPlugin for OrtPlugin {
    const NAME: &'static str = "onnxruntime";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Loads the model with an [`OrtConfig::from_toml`] configuration.
    fn load(model_path: &Path, config_toml: &str) -> Result<Self, PluginError> {
        let config = OrtConfig::from_toml(config_toml).map_err(plugin_error)?;
        OrtBackend::load(model_path, &config).map(Self::new).map_err(plugin_error)
    }
}
