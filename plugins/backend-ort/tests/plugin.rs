//! The ONNX Runtime backend through the plugin API's safe traits, as the host uses a built-in.

use anyhow::{Result, anyhow};
use prosodia_backend_ort::{OrtConfig, OrtPlugin, Provider};
use prosodia_onnx::{Arch, TestModelConfig, test_classifier};
use prosodia_plugin_api::{BackendPlugin, Batch, ErrorCode, ModelBackend};

#[test]
fn toml_configuration() -> Result<()> {
    assert_eq!(OrtConfig::from_toml("")?, OrtConfig::default());
    let config = OrtConfig::from_toml(
        "library_path = \"/opt/ort/libonnxruntime.so\"\nprovider = \"cuda\"\ndevice_id = 1\n\
         cuda_required = true\nintra_threads = 4\ninter_threads = 2\nsessions = 3\n",
    )?;
    assert_eq!(config.provider, Provider::Cuda { device_id: 1, required: true });
    assert_eq!(
        config.library_path.as_deref(),
        Some(std::path::Path::new("/opt/ort/libonnxruntime.so"))
    );
    assert_eq!((config.intra_threads, config.inter_threads, config.sessions), (4, 2, 3));
    for bad in ["provider = \"tpu\"", "threads = 4", "intra_threads = -1", "not toml ="] {
        let err = OrtConfig::from_toml(bad).err().ok_or_else(|| anyhow!("`{bad}` accepted"))?;
        assert_eq!(err.kind(), prosodia_backend_ort::ErrorKind::InvalidConfig, "{bad}: {err}");
    }
    Ok(())
}

#[test]
fn loads_and_runs_as_a_boxed_model_backend() -> Result<()> {
    let Some(lib) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) else {
        eprintln!(
            "skipping: ORT_DYLIB_PATH not set (export ORT_DYLIB_PATH=\"$(scripts/install-onnxruntime.sh)\")"
        );
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.onnx");
    std::fs::write(
        &path,
        test_classifier(&TestModelConfig { arch: Arch::ConvLstm, ..TestModelConfig::default() })?,
    )?;
    let config = format!("library_path = {:?}\nintra_threads = 1\n", lib.to_string_lossy());
    let backend: Box<dyn ModelBackend> = Box::new(OrtPlugin::load(&path, &config)?);
    assert_eq!(backend.spec().num_classes, 6);
    assert_eq!(backend.spec().inputs[0].name, "features");
    let data: Vec<f32> = (0..2 * 5 * 8).map(|i| (i as f32 * 0.37).sin()).collect();
    let probs = backend.run(&Batch::new(&data, 2, 5, 8, &[5, 2])?)?;
    assert_eq!(probs.len(), 12);
    let err = backend.run(&Batch { data: &data[..30], n: 1, t: 5, f: 6, lengths: &[5] }).err();
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidInput));
    Ok(())
}

#[test]
fn missing_runtime_is_unsupported_not_a_panic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, test_classifier(&TestModelConfig::default())?)?;
    let err = OrtPlugin::load(&path, "library_path = \"/nonexistent/libonnxruntime.so\"").err();
    let err = err.ok_or_else(|| anyhow!("a missing runtime loaded"))?;
    assert_eq!(err.code, ErrorCode::Unsupported);
    assert!(err.message.contains("/nonexistent/libonnxruntime.so"), "{}", err.message);
    Ok(())
}
