//! Model backends through the ABI: a C backend (softmax of per-item means) loaded
//! dynamically, a Rust built-in backend, and NaN probabilities refused.

mod common;

use std::path::Path;

use prosodia_plugin_api::{
    BackendPlugin, BackendSpec, Batch, DType, ModelBackend, PluginError, TensorSpec,
};
use prosodia_plugin_host::{Builtin, HostErrorKind, PluginHost};

fn softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().cloned().fold(f32::MIN, f32::max);
    let e: Vec<f32> = v.iter().map(|x| (x - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Two items, T = 3, F = 4; item 0 has 2 valid frames, item 1 has 3. Padding is 100.0 so a
/// backend that averages over padding gives visibly wrong answers.
fn batch_data() -> (Vec<f32>, Vec<usize>, Vec<f32>) {
    let data = vec![
        1.0, 0.0, 0.0, 0.0, /**/ 3.0, 0.0, 2.0, 0.0, /**/ 100.0, 100.0, 100.0,
        100.0, //
        0.0, 1.0, 0.0, 0.0, /**/ 0.0, 2.0, 0.0, 0.0, /**/ 0.0, 3.0, 0.0, 3.0,
    ];
    let expected: Vec<f32> =
        softmax(&[2.0, 0.0, 1.0, 0.0]).into_iter().chain(softmax(&[0.0, 2.0, 0.0, 1.0])).collect();
    (data, vec![2, 3], expected)
}

#[test]
fn c_backend_runs_through_the_abi() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let lib = common::build_c(
        &common::test_source("mean_softmax.c"),
        &dir.path().join("libmean_softmax.so"),
        &[],
    )?;
    let host = PluginHost::builder().build()?;
    host.load_library(&lib)?;
    let backend = host.backend("mean_softmax", Path::new("model.onnx"), "")?;
    let spec = backend.spec()?;
    assert_eq!(spec.num_classes, 4);
    assert_eq!(spec.inputs[0].name, "features");
    assert_eq!(spec.inputs[0].shape, vec![-1, -1, 4]);
    assert_eq!(spec.outputs[0].dtype, DType::F32);
    let (data, lengths, expected) = batch_data();
    let probs = backend.run(&Batch::new(&data, 2, 3, 4, &lengths)?)?;
    for (p, e) in probs.iter().zip(&expected) {
        assert!((p - e).abs() < 1e-6, "{probs:?} vs {expected:?}");
    }
    // The plugin's own validation comes back as an error code and message.
    let narrow = vec![0.0f32; 6];
    let err = backend
        .run(&Batch::new(&narrow, 1, 2, 3, &[2])?)
        .err()
        .ok_or_else(|| anyhow::anyhow!("ok"))?;
    assert_eq!(err.kind(), HostErrorKind::Plugin);
    assert!(err.message().contains("expected 4 features"), "{err}");
    // Loading is refused with the plugin's message.
    let err = host
        .backend("mean_softmax", Path::new(""), "")
        .err()
        .ok_or_else(|| anyhow::anyhow!("ok"))?;
    assert!(err.message().contains("empty model path"), "{err}");
    assert_eq!(host.live_objects("mean_softmax")?, Some(1));
    drop(backend);
    assert_eq!(host.live_objects("mean_softmax")?, Some(0));
    Ok(())
}

#[test]
fn nan_probabilities_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let lib = common::build_c(
        &common::test_source("mean_softmax.c"),
        &dir.path().join("libnan.so"),
        &["FAULT_NAN"],
    )?;
    let host = PluginHost::builder().build()?;
    host.load_library(&lib)?;
    let backend = host.backend("mean_softmax", Path::new("model.onnx"), "")?;
    let (data, lengths, _) = batch_data();
    let err = backend
        .run(&Batch::new(&data, 2, 3, 4, &lengths)?)
        .err()
        .ok_or_else(|| anyhow::anyhow!("NaN accepted"))?;
    assert_eq!(err.kind(), HostErrorKind::NonFiniteOutput, "{err}");
    Ok(())
}

struct RustMeanSoftmax(BackendSpec);

impl ModelBackend for RustMeanSoftmax {
    fn spec(&self) -> &BackendSpec {
        &self.0
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, PluginError> {
        Ok((0..batch.n)
            .flat_map(|i| {
                let item = batch.item(i);
                let means: Vec<f32> = (0..batch.f)
                    .map(|c| {
                        item.chunks(batch.f).map(|r| r[c]).sum::<f32>() / batch.lengths[i] as f32
                    })
                    .collect();
                softmax(&means)
            })
            .collect())
    }
}

impl BackendPlugin for RustMeanSoftmax {
    const NAME: &'static str = "mean_softmax";
    const VERSION: &'static str = "builtin";
    fn load(_model: &Path, _config: &str) -> Result<Self, PluginError> {
        let t = |name: &str, shape: Vec<i64>| TensorSpec {
            name: name.into(),
            dtype: DType::F32,
            shape,
        };
        Ok(Self(BackendSpec {
            inputs: vec![t("features", vec![-1, -1, 4])],
            outputs: vec![t("probabilities", vec![-1, 4])],
            num_classes: 4,
        }))
    }
}

/// The built-in and the C library give the same answers, and the library replaces the
/// built-in of the same name for new handles.
#[test]
fn builtin_backend_matches_and_is_replaced_by_the_library() -> anyhow::Result<()> {
    let host = PluginHost::builder().builtin(Builtin::backend::<RustMeanSoftmax>()).build()?;
    let builtin = host.backend("mean_softmax", Path::new("m"), "")?;
    let (data, lengths, expected) = batch_data();
    let batch = Batch::new(&data, 2, 3, 4, &lengths)?;
    let a = builtin.run_served(&batch)?;
    assert_eq!(a.plugin.version, "builtin");
    let dir = tempfile::tempdir()?;
    host.load_library(common::build_c(
        &common::test_source("mean_softmax.c"),
        &dir.path().join("libms.so"),
        &[],
    )?)?;
    // The existing handle follows the swap on its next call.
    let b = builtin.run_served(&batch)?;
    assert_eq!(b.plugin.version, "1.0.0");
    for ((x, y), e) in a.value.iter().zip(&b.value).zip(&expected) {
        assert!((x - e).abs() < 1e-6 && (y - e).abs() < 1e-6);
    }
    Ok(())
}
