//! ONNX Runtime against tract on the test classifiers of `prosodia-onnx`.
//!
//! Tests that need the runtime library skip, saying why, when `ORT_DYLIB_PATH` is not set
//! (`export ORT_DYLIB_PATH="$(scripts/install-onnxruntime.sh)"` sets it).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use prosodia_backend_ort::{DType, ErrorKind, OrtBackend, OrtConfig, Provider};
use prosodia_backend_tract::TractBackend;
use prosodia_onnx::testmodel::Rng;
use prosodia_onnx::{Arch, TestModelConfig, test_classifier};

const F: usize = 8;

/// The configuration to test with, or `None` (after saying so) without the runtime library.
fn config() -> Option<OrtConfig> {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => Some(OrtConfig {
            library_path: Some(PathBuf::from(path)),
            intra_threads: 1,
            ..OrtConfig::default()
        }),
        _ => {
            eprintln!(
                "skipping: ORT_DYLIB_PATH not set (export ORT_DYLIB_PATH=\"$(scripts/install-onnxruntime.sh)\")"
            );
            None
        }
    }
}

fn model_bytes(arch: Arch) -> Result<Vec<u8>> {
    Ok(test_classifier(&TestModelConfig { arch, ..TestModelConfig::default() })?)
}

/// Items of unequal lengths, each `len × F` values.
fn items(lengths: &[usize], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    lengths.iter().map(|&l| rng.vec(l * F, 2.0).iter().map(|v| v + 0.3).collect()).collect()
}

/// Zero-pads items to the longest one: `(features, t, lengths)`.
fn pad(items: &[Vec<f32>]) -> (Vec<f32>, usize, Vec<i64>) {
    let t = items.iter().map(|i| i.len() / F).max().unwrap_or(0);
    let mut out = vec![0.0; items.len() * t * F];
    for (k, item) in items.iter().enumerate() {
        out[k * t * F..k * t * F + item.len()].copy_from_slice(item);
    }
    (out, t, items.iter().map(|i| (i.len() / F) as i64).collect())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check_agreement(arch: Arch) -> Result<()> {
    let Some(config) = config() else { return Ok(()) };
    let bytes = model_bytes(arch)?;
    let ort = OrtBackend::from_bytes(&bytes, &config)?;
    let tract = TractBackend::from_bytes(&bytes)?;
    assert_eq!(ort.num_classes(), 6);
    assert_eq!(ort.feature_width(), F);

    let items = items(&[7, 23, 1, 12, 23, 3, 16], 42);
    let (features, t, lens) = pad(&items);
    let n = items.len();
    let ort_batched = ort.run(&features, n, t, F, &lens)?;
    let tract_batched = tract.run(&features, n, t, F, &lens)?;
    let mut worst = max_abs_diff(&ort_batched, &tract_batched);
    let mut worst_padding = 0.0_f32;
    for (k, item) in items.iter().enumerate() {
        let len = item.len() / F;
        let ort_alone = ort.run(item, 1, len, F, &[lens[k]])?;
        let tract_alone = tract.run(item, 1, len, F, &[lens[k]])?;
        let row = &ort_batched[k * 6..k * 6 + 6];
        worst = worst.max(max_abs_diff(&ort_alone, &tract_alone));
        worst_padding = worst_padding.max(max_abs_diff(row, &ort_alone));
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{arch:?} item {k}: ORT row sums to {sum}");
    }
    eprintln!(
        "{arch:?}: max |tract - ort| = {worst:e}, max |ort batched - ort alone| = {worst_padding:e}"
    );
    assert!(worst < 1e-4, "{arch:?}: tract and ORT differ by {worst}");
    assert!(worst_padding < 1e-5, "{arch:?}: padding changes ORT's result by {worst_padding}");
    Ok(())
}

#[test]
fn conv_tract_and_ort_agree() -> Result<()> {
    check_agreement(Arch::Conv)
}

#[test]
fn lstm_tract_and_ort_agree() -> Result<()> {
    check_agreement(Arch::ConvLstm)
}

#[test]
fn declares_inputs_and_outputs() -> Result<()> {
    let Some(config) = config() else { return Ok(()) };
    let ort = OrtBackend::from_bytes(&model_bytes(Arch::Conv)?, &config)?;
    assert_eq!(ort.provider(), Provider::Cpu);
    let names: Vec<(&str, DType, Vec<i64>)> =
        ort.inputs().iter().map(|i| (i.name.as_str(), i.dtype, i.shape.clone())).collect();
    assert_eq!(
        names,
        vec![("features", DType::F32, vec![-1, -1, F as i64]), ("lengths", DType::I64, vec![-1])]
    );
    assert_eq!(ort.outputs().len(), 1);
    assert_eq!(ort.outputs()[0].name, "probabilities");
    assert_eq!(ort.outputs()[0].shape, vec![-1, 6]);
    Ok(())
}

#[test]
fn bad_model_bytes_are_an_error() -> Result<()> {
    let Some(config) = config() else { return Ok(()) };
    for bytes in [&b"not an onnx model"[..], &[0xff; 64]] {
        let err = OrtBackend::from_bytes(bytes, &config).err();
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidModel), "{bytes:?}");
    }
    Ok(())
}

#[test]
fn bad_batches_are_errors() -> Result<()> {
    let Some(config) = config() else { return Ok(()) };
    let ort = OrtBackend::from_bytes(&model_bytes(Arch::Conv)?, &config)?;
    let err = ort
        .run(&[0.5; 2 * 3 * 7], 2, 3, 7, &[3, 3])
        .err()
        .ok_or_else(|| anyhow!("F = 7 accepted"))?;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("expects F = 8, got 7"), "{err}");
    let err = ort
        .run(&[0.5; 2 * 3 * F], 2, 3, F, &[3, 0])
        .err()
        .ok_or_else(|| anyhow!("length 0 accepted"))?;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("length 0"), "{err}");
    Ok(())
}

#[test]
fn sessions_serve_concurrent_calls() -> Result<()> {
    let Some(config) = config() else { return Ok(()) };
    let config = OrtConfig { sessions: 2, intra_threads: 1, ..config };
    let ort = OrtBackend::from_bytes(&model_bytes(Arch::ConvLstm)?, &config)?;
    let items = items(&[6, 3, 8], 5);
    let (features, t, lens) = pad(&items);
    let expected = ort.run(&features, 3, t, F, &lens)?;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| ort.run(&features, 3, t, F, &lens))).collect();
        for h in handles {
            let got = h.join().map_err(|_| anyhow!("thread panicked"))??;
            assert_eq!(got, expected);
        }
        Ok(())
    })
}

#[test]
fn required_cuda_without_cuda_is_unavailable() -> Result<()> {
    let Some(config) = config() else { return Ok(()) };
    let config = OrtConfig { provider: Provider::Cuda { device_id: 0, required: true }, ..config };
    // The CPU wheel has no CUDA provider; with a GPU build this loads instead.
    match OrtBackend::from_bytes(&model_bytes(Arch::Conv)?, &config) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
        Ok(b) => assert!(matches!(b.provider(), Provider::Cuda { .. })),
    }
    let config = OrtConfig { provider: Provider::Cuda { device_id: 0, required: false }, ..config };
    let backend = OrtBackend::from_bytes(&model_bytes(Arch::Conv)?, &config)?;
    assert_eq!(backend.run(&[0.1; 4 * F], 1, 4, F, &[4])?.len(), 6);
    Ok(())
}

/// Runs without the runtime library: a missing library is an error naming the path.
#[test]
fn missing_library_is_unavailable_not_a_panic() -> Result<()> {
    let path = PathBuf::from("/nonexistent/prosodia/libonnxruntime.so.1.31.1");
    let config = OrtConfig { library_path: Some(path), ..OrtConfig::default() };
    let err = OrtBackend::from_bytes(&model_bytes(Arch::Conv)?, &config).err();
    let err = err.ok_or_else(|| anyhow!("a missing library loaded"))?;
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("/nonexistent/prosodia/libonnxruntime.so.1.31.1"), "{err}");
    Ok(())
}

/// Runs without the runtime library: a file that is not a library is an error, not a panic.
#[test]
fn non_library_file_is_unavailable_not_a_panic() -> Result<()> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let config = OrtConfig { library_path: Some(path.clone()), ..OrtConfig::default() };
    let err = OrtBackend::from_bytes(&model_bytes(Arch::Conv)?, &config).err();
    let err = err.ok_or_else(|| anyhow!("Cargo.toml loaded as ONNX Runtime"))?;
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    Ok(())
}
