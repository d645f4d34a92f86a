//! [`TractBackend`]: loading, optimising and running a model with tract.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid as _;
use tract_onnx::tract_hir::internal::DimLike as _;

use crate::{
    DType, Error, ErrorKind, FEATURES_INPUT, LENGTHS_INPUT, PROBABILITIES_OUTPUT, TensorInfo,
};

/// A loaded, optimised model, ready to run batches of any size and length.
#[derive(Debug, Clone)]
pub struct TractBackend {
    plan: Arc<TypedSimplePlan>,
    features_ix: usize,
    feature_width: usize,
    num_classes: usize,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
}

impl TractBackend {
    /// Loads a `model.onnx` file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot read model {}: {e}", path.display()))
        })?;
        Self::from_bytes(&bytes)
    }

    /// Loads a model from the bytes of an `.onnx` file.
    ///
    /// tract panics on some malformed graphs; such a panic is caught and returned as an
    /// [`ErrorKind::InvalidModel`] error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        catch_panic(ErrorKind::InvalidModel, "loading the model", || Self::load_bytes(bytes))
    }

    fn load_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let invalid = |what: &str, e: TractError| {
            Error::new(ErrorKind::InvalidModel, format!("{what}: {e:#}"))
        };
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| invalid("cannot parse the ONNX model", e))?;

        let names: Vec<String> = model
            .input_outlets()
            .map_err(|e| invalid("model inputs", e))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let find = |name: &str| {
            names.iter().position(|n| n == name).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidModel,
                    format!("the model has no input `{name}` (its inputs: {names:?})"),
                )
            })
        };
        let features_ix = find(FEATURES_INPUT)?;
        let lengths_ix = find(LENGTHS_INPUT)?;
        if names.len() != 2 {
            return Err(Error::new(
                ErrorKind::InvalidModel,
                format!(
                    "expected inputs `{FEATURES_INPUT}` and `{LENGTHS_INPUT}`, the model has {names:?}"
                ),
            ));
        }

        let feature_width = declared_width(&model, features_ix)?;
        let batch = model.symbols.sym("batch");
        let time = model.symbols.sym("time");
        let features_fact = InferenceFact::dt_shape(
            f32::datum_type(),
            tvec![batch.to_dim(), time.to_dim(), feature_width.to_dim()],
        );
        let lengths_fact = InferenceFact::dt_shape(i64::datum_type(), tvec![batch.to_dim()]);
        model
            .set_input_fact(features_ix, features_fact)
            .and_then(|()| model.set_input_fact(lengths_ix, lengths_fact))
            .map_err(|e| invalid("cannot set the input facts", e))?;

        let output_names: Vec<String> = model
            .output_outlets()
            .map_err(|e| invalid("model outputs", e))?
            .iter()
            .map(|o| model.outlet_label(*o).unwrap_or(&model.node(o.node).name).to_owned())
            .collect();
        if output_names.len() != 1 || output_names[0] != PROBABILITIES_OUTPUT {
            return Err(Error::new(
                ErrorKind::InvalidModel,
                format!(
                    "expected the single output `{PROBABILITIES_OUTPUT}`, the model has {output_names:?}"
                ),
            ));
        }

        let typed =
            model.into_optimized().map_err(|e| invalid("cannot type and optimise the model", e))?;
        let out_fact = typed.output_fact(0).map_err(|e| invalid("model output", e))?;
        let num_classes = match (out_fact.datum_type, out_fact.shape.as_concrete()) {
            (dt, _) if dt != f32::datum_type() => {
                return Err(Error::new(
                    ErrorKind::InvalidModel,
                    format!("output `{PROBABILITIES_OUTPUT}` is {dt:?}, expected f32"),
                ));
            }
            _ if out_fact.rank() != 2 => {
                return Err(Error::new(
                    ErrorKind::InvalidModel,
                    format!(
                        "output `{PROBABILITIES_OUTPUT}` has shape {:?}, expected [N, C]",
                        out_fact.shape
                    ),
                ));
            }
            _ => out_fact.shape[1].to_usize().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidModel,
                    format!(
                        "output `{PROBABILITIES_OUTPUT}` has no fixed class count: {:?}",
                        out_fact.shape
                    ),
                )
            })?,
        };
        let plan = typed.into_runnable().map_err(|e| invalid("cannot plan the model", e))?;

        let mut inputs = vec![TensorInfo::default(); 2];
        inputs[features_ix] = TensorInfo {
            name: FEATURES_INPUT.to_owned(),
            dtype: DType::F32,
            shape: vec![-1, -1, feature_width as i64],
        };
        inputs[lengths_ix] =
            TensorInfo { name: LENGTHS_INPUT.to_owned(), dtype: DType::I64, shape: vec![-1] };
        let outputs = vec![TensorInfo {
            name: PROBABILITIES_OUTPUT.to_owned(),
            dtype: DType::F32,
            shape: vec![-1, num_classes as i64],
        }];
        Ok(Self { plan, features_ix, feature_width, num_classes, inputs, outputs })
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
    /// row-major.
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
            |what: &str, e: TractError| Error::new(ErrorKind::Inference, format!("{what}: {e:#}"));
        let x = Tensor::from_shape(&[n, t, f], features)
            .map_err(|e| inference("features tensor", e))?;
        let l = Tensor::from_shape(&[n], lengths).map_err(|e| inference("lengths tensor", e))?;
        let inputs: TVec<TValue> = if self.features_ix == 0 {
            tvec![x.into(), l.into()]
        } else {
            tvec![l.into(), x.into()]
        };
        let outputs = catch_panic(ErrorKind::Inference, "inference", || {
            self.plan.run(inputs).map_err(|e| inference("inference failed", e))
        })?;
        let out = outputs
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Inference, "the model returned no output"))?;
        let probs = out
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(|e| inference("reading the output", e))?;
        if probs.len() != n * self.num_classes {
            return Err(Error::new(
                ErrorKind::Inference,
                format!(
                    "the model returned {} values, expected {n} × {}",
                    probs.len(),
                    self.num_classes
                ),
            ));
        }
        Ok(probs)
    }
}

/// Runs `f`, turning a panic inside tract into an error of `kind`.
fn catch_panic<T>(
    kind: ErrorKind,
    what: &str,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        Err(Error::new(kind, format!("tract panicked while {what}: {message}")))
    })
}

/// The concrete last dimension of the model's declared `features` input.
fn declared_width(model: &InferenceModel, ix: usize) -> Result<usize, Error> {
    let fact = model.input_fact(ix).map_err(|e| {
        Error::new(ErrorKind::InvalidModel, format!("input `{FEATURES_INPUT}`: {e:#}"))
    })?;
    let shape = fact.shape.concretize();
    let width =
        shape.as_ref().filter(|dims| dims.len() == 3).and_then(|dims| dims[2].to_usize().ok());
    width.filter(|&w| w > 0).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidModel,
            format!(
                "input `{FEATURES_INPUT}` must be declared [N, T, F] with a fixed F, got {fact:?}"
            ),
        )
    })
}
