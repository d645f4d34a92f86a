//! The tract backend through the plugin API's safe traits, as the host uses a built-in.

use anyhow::{Result, anyhow};
use prosodia_backend_tract::TractPlugin;
use prosodia_onnx::{Arch, TestModelConfig, test_classifier};
use prosodia_plugin_api::{BackendPlugin, Batch, DType, ErrorCode, ModelBackend};

fn model_file(dir: &tempfile::TempDir) -> Result<std::path::PathBuf> {
    let path = dir.path().join("model.onnx");
    let config = TestModelConfig { arch: Arch::ConvLstm, ..TestModelConfig::default() };
    std::fs::write(&path, test_classifier(&config)?)?;
    Ok(path)
}

#[test]
fn loads_declares_and_runs_as_a_boxed_model_backend() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend: Box<dyn ModelBackend> = Box::new(TractPlugin::load(&model_file(&dir)?, "")?);
    let spec = backend.spec();
    assert_eq!(spec.num_classes, 6);
    assert_eq!(spec.inputs[0].name, "features");
    assert_eq!(spec.inputs[0].dtype, DType::F32);
    assert_eq!(spec.inputs[0].shape, vec![-1, -1, 8]);
    assert_eq!(spec.inputs[1].name, "lengths");
    assert_eq!(spec.inputs[1].dtype, DType::I64);
    assert_eq!(spec.outputs[0].name, "probabilities");

    let data: Vec<f32> = (0..2 * 5 * 8).map(|i| (i as f32 * 0.37).sin()).collect();
    let lengths = [5, 2];
    let probs = backend.run(&Batch::new(&data, 2, 5, 8, &lengths)?)?;
    assert_eq!(probs.len(), 12);
    for row in probs.chunks(6) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
    }
    // The second item alone gives the same row.
    let alone = backend.run(&Batch::new(&data[40..56], 1, 2, 8, &[2])?)?;
    let diff = probs[6..].iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-5, "{probs:?} vs {alone:?}");
    Ok(())
}

#[test]
fn errors_map_to_plugin_codes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = model_file(&dir)?;
    let err = TractPlugin::load(&dir.path().join("missing.onnx"), "").err();
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidArgument));
    let err = TractPlugin::load(&path, "threads = 4").err();
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidArgument));
    assert!(TractPlugin::load(&path, "# comments only\n\n").is_ok());

    let backend = TractPlugin::load(&path, "")?;
    let data = vec![0.1; 2 * 3 * 7];
    let err = backend.run(&Batch { data: &data, n: 2, t: 3, f: 7, lengths: &[3, 3] }).err();
    let err = err.ok_or_else(|| anyhow!("F = 7 accepted"))?;
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("expects F = 8, got 7"), "{}", err.message);
    Ok(())
}
