//! GPU-only throughput benchmark: hours of audio per second for batch sizes 1 to 4096, the
//! speedup over the CPU extractor on all cores, the operations done, and the bytes the
//! pipeline must move set against the card's memory bandwidth. Skips with the reason when
//! there is no usable GPU.
//!
//! Run: `cargo bench -p prosodia-features-cuda --bench throughput [-- MAX_BATCH BW_GBPS]`.
//! `BW_GBPS` is the card's peak memory bandwidth in GB/s (default 4800, an H200), from its
//! data sheet: it is the floor the issue asks to compare against, not something measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use prosodia_features_cpu::CpuExtractor;
use prosodia_features_cuda::{CudaExtractor, ErrorKind};
use prosodia_plugin_api::FeatureExtractor;

/// A deterministic 3 s speech-like clip at `rate`.
fn clip(rate: u32, seed: u32) -> Vec<f32> {
    let n = 3 * rate as usize;
    let mut state = 0x9E37_79B9u32 ^ seed.wrapping_mul(0x85EB_CA6B);
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            0.3 * (std::f32::consts::TAU * (120.0 + seed as f32) * t).sin()
                + 0.01 * (state as f32 / u32::MAX as f32 - 0.5)
        })
        .collect()
}

/// Bytes the pipeline reads and writes in device memory per frame, counting each stage's
/// main input and output once (the floor if every stage were bandwidth-bound).
fn bytes_per_frame(n_fft: usize, hop: usize, n_mels: usize, n_mfcc: usize, width: usize) -> f64 {
    let bins = n_fft / 2 + 1;
    let stft = hop * 4 + bins * 4; // new samples in, power out
    let mel = bins * 4 + n_mels * 4 * 3; // power in, log-mel out, max + floor pass
    let cepstrum = n_mels * 4 + n_mfcc * 4 * 3; // log-mel in, MFCC and delta out
    let stats = bins * 4 + hop * 4 + 8 * 4; // centroid/rolloff read power, RMS/ZCR samples
    let assemble = width * 4 * 4; // copy in/out, statistics, download
    (stft + mel + cepstrum + stats + assemble) as f64
}

/// Floating-point operations per frame: a complex radix-2 FFT of real input (5·N·log2 N),
/// windowing, |X|², the mel triangles (about 2 multiply-adds per bin), the log, the DCT, two
/// delta windows, RMS/ZCR and the centroid/rolloff passes.
fn flops_per_frame(n_fft: usize, n_mels: usize, n_mfcc: usize, delta_width: usize) -> f64 {
    let n = n_fft as f64;
    let bins = (n_fft / 2 + 1) as f64;
    5.0 * n * n.log2()
        + n
        + 3.0 * bins
        + 4.0 * bins
        + 2.0 * n_mels as f64
        + 2.0 * (n_mels * n_mfcc) as f64
        + 2.0 * (delta_width * n_mfcc) as f64
        + 4.0 * n
        + 6.0 * bins
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let max_batch: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4096);
    let bandwidth_gbps: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4800.0);
    let gpu = match CudaExtractor::from_toml("") {
        Ok(g) => g,
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            eprintln!("SKIPPED: no usable GPU: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let config = gpu.config().clone();
    let rate = config.preprocess.resample_hz.unwrap();
    let cpu = CpuExtractor::from_toml("").unwrap();
    let clips: Vec<Vec<f32>> = (0..64).map(|s| clip(rate, s)).collect();
    println!(
        "GPU {} ({}), seed configuration, 3 s clips at {rate} Hz",
        gpu.device_name(),
        gpu.arch()
    );

    // CPU reference on all cores: one utterance per rayon-free thread, 2 batches of 64.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu_start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (cpu, clips) = (&cpu, &clips);
            s.spawn(move || {
                for c in clips.iter().skip(t).step_by(threads) {
                    cpu.extract(&[c], rate).unwrap();
                }
            });
        }
    });
    let cpu_hours_per_s = 64.0 * 3.0 / 3600.0 / cpu_start.elapsed().as_secs_f64();
    println!("CPU extractor, {threads} threads: {cpu_hours_per_s:.4} h of audio per second");

    let frames_per_clip = 1 + clips[0].len() / config.stft.hop_length;
    let bpf = bytes_per_frame(
        config.stft.n_fft,
        config.stft.hop_length,
        config.mel.n_mels,
        config.mel.n_mfcc,
        config.frame_width(),
    );
    let fpf = flops_per_frame(
        config.stft.n_fft,
        config.mel.n_mels,
        config.mel.n_mfcc,
        config.mel.delta_width,
    );
    println!("batch  ms/batch  h_audio/s  speedup  GB_moved  GFLOP  floor_ms  x_floor");
    let mut n = 1;
    while n <= max_batch {
        let batch: Vec<&[f32]> = (0..n).map(|i| clips[i % clips.len()].as_slice()).collect();
        gpu.extract(&batch, rate).unwrap(); // warm-up (allocations, JIT)
        let reps = (256 / n).clamp(3, 50);
        let start = Instant::now();
        for _ in 0..reps {
            gpu.extract(&batch, rate).unwrap();
        }
        let secs = start.elapsed().as_secs_f64() / reps as f64;
        let hours = n as f64 * 3.0 / 3600.0 / secs;
        let bytes = bpf * (n * frames_per_clip) as f64;
        let floor = bytes / (bandwidth_gbps * 1e9);
        println!(
            "{n:5}  {:8.3}  {hours:9.3}  {:7.1}  {:8.4}  {:5.2}  {:8.4}  {:7.1}",
            secs * 1e3,
            hours / cpu_hours_per_s,
            bytes / 1e9,
            fpf * (n * frames_per_clip) as f64 / 1e9,
            floor * 1e3,
            secs / floor
        );
        n *= 2;
    }
}
