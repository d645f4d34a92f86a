//! [`OrtBackend`]: a pool of ONNX Runtime sessions for one model.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::ep::{self, ExecutionProvider as _};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::config::{OrtConfig, Provider};
use crate::runtime::{environment, library_path};
use crate::{
    DType, Error, ErrorKind, FEATURES_INPUT, LENGTHS_INPUT, PROBABILITIES_OUTPUT, TensorInfo,
};

/// A model loaded into ONNX Runtime, ready to run batches of any size and length.
#[derive(Debug)]
pub struct OrtBackend {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    provider: Provider,
    feature_width: usize,
    num_classes: usize,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
}

impl OrtBackend {
    /// Loads a `model.onnx` file.
    pub fn load(path: &Path, config: &OrtConfig) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot read model {}: {e}", path.display()))
        })?;
        Self::from_bytes(&bytes, config)
    }

    /// Loads a model from the bytes of an `.onnx` file.
    pub fn from_bytes(bytes: &[u8], config: &OrtConfig) -> Result<Self, Error> {
        let env = environment(&library_path(config.library_path.as_deref()))?;

        let provider = match config.provider {
            Provider::Cpu => Provider::Cpu,
            Provider::Cuda { device_id, required } => {
                let available = ep::CUDA::is_available().unwrap_or(false);
                if available {
                    Provider::Cuda { device_id, required }
                } else if required {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "the CUDA execution provider was required but the loaded ONNX Runtime has none \
                         (install the GPU build of ONNX Runtime)",
                    ));
                } else {
                    Provider::Cpu
                }
            }
        };

        let mut sessions = Vec::new();
        for _ in 0..config.sessions.max(1) {
            sessions.push(Mutex::new(new_session(&env, bytes, config, provider)?));
        }
        let (inputs, outputs, feature_width, num_classes) = match sessions.first() {
            Some(first) => {
                let session = first.lock().unwrap_or_else(|p| p.into_inner());
                describe(&session)?
            }
            None => return Err(Error::new(ErrorKind::InvalidConfig, "no session")),
        };
        Ok(Self {
            sessions,
            next: AtomicUsize::new(0),
            provider,
            feature_width,
            num_classes,
            inputs,
            outputs,
        })
    }

    /// The execution provider in use (CPU when CUDA was asked for but not required and
    /// not available).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The feature width F the model expects.
    pub fn feature_width(&self) -> usize {
        self.feature_width
    }

    /// The number of classes C (columns of the output).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The model's inputs in model order (`-1` marks a dynamic dimension).
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The model's outputs (`-1` marks a dynamic dimension).
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// Runs a zero-padded batch: `features` holds `n × t × f` values row-major, `lengths`
    /// the valid frame count of each item (`1..=t`). Returns `n × C` probabilities,
    /// row-major. Concurrent calls use the configured number of sessions and wait for one
    /// beyond that.
    pub fn run(
        &self,
        features: &[f32],
        n: usize,
        t: usize,
        f: usize,
        lengths: &[i64],
    ) -> Result<Vec<f32>, Error> {
        prosodia_plugin_api::check_padded_batch(features, n, t, f, lengths, self.feature_width)
            .map_err(|m| Error::new(ErrorKind::InvalidInput, m))?;
        let inference =
            |what: &str, e: ort::Error| Error::new(ErrorKind::Inference, format!("{what}: {e}"));
        let x = TensorRef::from_array_view(([n, t, f], features))
            .map_err(|e| inference("features tensor", e))?;
        let l = TensorRef::from_array_view(([n], lengths))
            .map_err(|e| inference("lengths tensor", e))?;

        let mut session = self.session();
        let outputs = session
            .run(ort::inputs![FEATURES_INPUT => x, LENGTHS_INPUT => l])
            .map_err(|e| inference("inference failed", e))?;
        let out = outputs.get(PROBABILITIES_OUTPUT).ok_or_else(|| {
            Error::new(ErrorKind::Inference, "the model returned no probabilities")
        })?;
        let (shape, probs) =
            out.try_extract_tensor::<f32>().map_err(|e| inference("reading the output", e))?;
        if probs.len() != n * self.num_classes {
            return Err(Error::new(
                ErrorKind::Inference,
                format!(
                    "the model returned shape {:?}, expected [{n}, {}]",
                    &shape[..],
                    self.num_classes
                ),
            ));
        }
        Ok(probs.to_vec())
    }

    /// A free session if there is one, else waits for one picked round-robin.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        for s in &self.sessions {
            if let Ok(guard) = s.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        // A poisoned session only means another call panicked mid-run; ONNX Runtime keeps
        // no state between runs, so the session is still usable.
        self.sessions[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn new_session(
    env: &ort::environment::Environment,
    bytes: &[u8],
    config: &OrtConfig,
    provider: Provider,
) -> Result<Session, Error> {
    let cfg = |e: ort::Error<ort::session::builder::SessionBuilder>| {
        Error::new(ErrorKind::InvalidConfig, format!("session options: {e}"))
    };
    let mut builder = Session::builder(env)
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("cannot create a session: {e}")))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(cfg)?;
    if config.intra_threads > 0 {
        builder = builder.with_intra_threads(config.intra_threads).map_err(cfg)?;
    }
    if config.inter_threads > 1 {
        builder = builder
            .with_parallel_execution(true)
            .map_err(cfg)?
            .with_inter_threads(config.inter_threads)
            .map_err(cfg)?;
    }
    let eps = match provider {
        Provider::Cpu => vec![ep::CPU::default().build()],
        Provider::Cuda { device_id, .. } => {
            vec![
                ep::CUDA::default().with_device_id(device_id).build().error_on_failure(),
                ep::CPU::default().build(),
            ]
        }
    };
    builder = builder.with_execution_providers(eps).map_err(|e| {
        Error::new(ErrorKind::Unavailable, format!("cannot register the execution provider: {e}"))
    })?;
    builder.commit_from_memory(bytes).map_err(|e| {
        Error::new(ErrorKind::InvalidModel, format!("ONNX Runtime cannot load the model: {e}"))
    })
}

/// Checks the session's inputs and outputs against the Prosodia model contract and
/// returns their declarations, the feature width and the class count.
fn describe(session: &Session) -> Result<(Vec<TensorInfo>, Vec<TensorInfo>, usize, usize), Error> {
    let invalid = |m: String| Error::new(ErrorKind::InvalidModel, m);
    let info = |name: &str, ty: &ValueType| -> Result<TensorInfo, Error> {
        let (elem, shape) = match ty {
            ValueType::Tensor { ty, shape, .. } => (*ty, shape),
            other => return Err(invalid(format!("`{name}` is not a tensor: {other:?}"))),
        };
        let dtype = match elem {
            TensorElementType::Float32 => DType::F32,
            TensorElementType::Int64 => DType::I64,
            other => {
                return Err(invalid(format!("`{name}` has unsupported element type {other:?}")));
            }
        };
        Ok(TensorInfo {
            name: name.to_owned(),
            dtype,
            shape: shape.iter().map(|&d| d.max(-1)).collect(),
        })
    };
    let inputs = session
        .inputs()
        .iter()
        .map(|o| info(o.name(), o.dtype()))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = session
        .outputs()
        .iter()
        .map(|o| info(o.name(), o.dtype()))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let features = inputs.iter().find(|i| i.name == FEATURES_INPUT);
    let lengths = inputs.iter().find(|i| i.name == LENGTHS_INPUT);
    let (Some(features), Some(lengths), 2) = (features, lengths, inputs.len()) else {
        return Err(invalid(format!(
            "expected inputs `{FEATURES_INPUT}` and `{LENGTHS_INPUT}`, the model has {names:?}"
        )));
    };
    let feature_width = match (features.dtype, features.shape.as_slice()) {
        (DType::F32, [_, _, w]) if *w > 0 => *w as usize,
        _ => {
            return Err(invalid(format!(
                "input `{FEATURES_INPUT}` must be f32 [N, T, F] with a fixed F, got {features:?}"
            )));
        }
    };
    if lengths.dtype != DType::I64 || lengths.shape.len() != 1 {
        return Err(invalid(format!("input `{LENGTHS_INPUT}` must be i64 [N], got {lengths:?}")));
    }
    let num_classes = match outputs.as_slice() {
        [out] if out.name == PROBABILITIES_OUTPUT && out.dtype == DType::F32 => {
            match out.shape.as_slice() {
                [_, c] if *c > 0 => *c as usize,
                _ => {
                    return Err(invalid(format!(
                        "output `{PROBABILITIES_OUTPUT}` must be [N, C] with a fixed C, got {out:?}"
                    )));
                }
            }
        }
        _ => {
            let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
            return Err(invalid(format!(
                "expected the single f32 output `{PROBABILITIES_OUTPUT}`, the model has {names:?}"
            )));
        }
    };
    Ok((inputs, outputs, feature_width, num_classes))
}
