//! GPU-only: the conformance suite, and parity with the CPU extractor on the reference
//! fixtures for batches of 1, 7, 64 and 512 utterances of mixed lengths. Each test skips with
//! the reason when this machine has no usable GPU (the CI machines have none).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::{FeatureConfig, config::FrameFeature, decode};
use prosodia_features_cpu::CpuExtractor;
use prosodia_features_cuda::{CudaExtractor, ErrorKind};
use prosodia_plugin_api::FeatureExtractor;
use prosodia_plugin_conformance::check_extractor;
use prosodia_plugin_host::{Builtin, PluginHost};

/// The extractor for `config`, or `None` (after printing why) when there is no usable GPU.
fn gpu_or_skip(config: &str) -> Option<CudaExtractor> {
    match CudaExtractor::from_toml(config) {
        Ok(x) => {
            eprintln!("GPU: {} ({})", x.device_name(), x.arch());
            Some(x)
        }
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            eprintln!("SKIPPED: no usable GPU: {e}");
            None
        }
        Err(e) => panic!("creating the CUDA extractor: {e}"),
    }
}

const SPEECH: &str =
    "[preprocess]\nresample_hz = 16000\n[stft]\nn_fft = 512\nwin_length = 400\nhop_length = 160";

#[test]
fn conformance_suite_passes() {
    if gpu_or_skip("").is_none() {
        return;
    }
    let host =
        PluginHost::builder().builtin(Builtin::extractor::<CudaExtractor>()).build().unwrap();
    for config in [SPEECH, "", "frame_norm = \"meanvar\"\n[preprocess]\nresample_hz = 16000"] {
        match check_extractor(&host, "cuda", config) {
            Ok(report) => eprintln!("{config:?}: passed {:?}", report.passed),
            Err(f) => panic!("{f}"),
        }
    }
}

fn shared() -> PathBuf {
    std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The reference fixtures, decoded and preprocessed by the CPU pipeline for `config`.
fn fixtures(config: &FeatureConfig) -> Vec<Vec<f32>> {
    let mut cpu = Extractor::new(config.clone()).unwrap();
    let mut out = Vec::new();
    for dir in ["fixtures/ravdess", "fixtures/tess"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(shared().join(dir))
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for p in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "wav")) {
            let bytes = std::fs::read(p).unwrap();
            let audio = decode::decode(&bytes, &decode::DecodeLimits::default()).unwrap();
            out.push(cpu.preprocess(&audio).unwrap().0);
        }
    }
    out
}

/// `n` utterances of mixed lengths: the fixtures in turn, each cut to between 30 % and 100 %
/// of its length (never below 0.2 s).
fn mixed_batch(signals: &[Vec<f32>], n: usize, rate: u32) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| {
            let s = &signals[i % signals.len()];
            let keep = 0.3 + 0.7 * ((i * 37) % 100) as f64 / 99.0;
            let len = ((s.len() as f64 * keep) as usize).max(rate as usize / 5).min(s.len());
            s[..len].to_vec()
        })
        .collect()
}

/// Largest |gpu - cpu| over a block of columns of one utterance, relative to the block's
/// largest |cpu| value.
fn block_error(gpu: &[f32], cpu: &[f32], width: usize, cols: std::ops::Range<usize>) -> f64 {
    let rows = cpu.len() / width;
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    for r in 0..rows {
        for c in cols.clone() {
            let (g, x) = (f64::from(gpu[r * width + c]), f64::from(cpu[r * width + c]));
            worst = worst.max((g - x).abs());
            scale = scale.max(x.abs());
        }
    }
    worst / scale.max(f64::MIN_POSITIVE)
}

fn parity(config_toml: &str, blocks: &[FrameFeature], tolerance: f64) {
    let Some(gpu) = gpu_or_skip(config_toml) else { return };
    let cpu = CpuExtractor::from_toml(config_toml).unwrap();
    let config = gpu.config().clone();
    let rate = config.preprocess.resample_hz.unwrap();
    let signals = fixtures(&config);
    assert!(signals.len() >= 20, "found {} fixtures under {}", signals.len(), shared().display());
    let names = config.frame_column_names();
    for n in [1usize, 7, 64, 512] {
        let batch = mixed_batch(&signals, n, rate);
        let refs: Vec<&[f32]> = batch.iter().map(Vec::as_slice).collect();
        let got = gpu.extract(&refs, rate).unwrap();
        let want = cpu.extract(&refs, rate).unwrap();
        let mut worst = 0.0f64;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!((g.rows, g.cols), (w.rows, w.cols), "batch {n}, utterance {i}");
            let mut col = 0;
            for f in &config.frame_features {
                let width = f.width(&config);
                if blocks.contains(f) {
                    let e = block_error(&g.data, &w.data, g.cols, col..col + width);
                    assert!(
                        e <= tolerance,
                        "batch {n}, utterance {i}, {} ({}): relative error {e:e} > {tolerance:e}",
                        f.name(),
                        names[col]
                    );
                    worst = worst.max(e);
                }
                col += width;
            }
        }
        eprintln!("batch of {n}: worst relative error {worst:e} over {blocks:?}");
    }
}

#[test]
fn logmel_matches_the_cpu_within_1e_4() {
    // The speech preset is log-mel only (400-sample windows in a 512 FFT).
    parity(&format!("frame_features = [\"logmel_db\"]\n{SPEECH}"), &[FrameFeature::LogmelDb], 1e-4);
}

#[test]
fn mfcc_matches_the_cpu_within_1e_4() {
    // The seed configuration: 48 kHz, n_fft 2048, MFCCs and deltas plus the scalar features.
    use FrameFeature as F;
    parity("", &[F::Mfcc], 1e-4);
    parity("", &[F::MfccDelta, F::Rms, F::Zcr, F::SpectralCentroid, F::OnsetStrength], 1e-3);
}

#[test]
fn per_utterance_statistics_match_the_frames() {
    let Some(gpu) = gpu_or_skip(SPEECH) else { return };
    let signals = fixtures(gpu.config());
    let batch = mixed_batch(&signals, 7, 16_000);
    let refs: Vec<&[f32]> = batch.iter().map(Vec::as_slice).collect();
    let out = gpu.extract_with_stats(&refs, 16_000).unwrap();
    for (m, stats) in out.frames.iter().zip(&out.stats) {
        for (c, &(mean, std)) in stats.iter().enumerate() {
            let col: Vec<f64> = m.column(c).into_iter().map(f64::from).collect();
            let mu = col.iter().sum::<f64>() / col.len() as f64;
            let sd =
                (col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / col.len() as f64).sqrt();
            assert!((f64::from(mean) - mu).abs() <= 1e-4 * mu.abs().max(1.0), "column {c}");
            assert!((f64::from(std) - sd).abs() <= 1e-4 * sd.max(1.0), "column {c}");
        }
    }
}
