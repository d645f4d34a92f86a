//! Host emulations of the kernels' index arithmetic, checked against the CPU extractor.
//!
//! The kernels cannot run on a machine without a GPU, but their indexing can: each function
//! below is a line-by-line Rust transcription of one kernel's body (threads of a block run
//! one after another, which is equivalent because every stage writes disjoint elements
//! between barriers). A wrong bit reversal, butterfly pairing, twiddle index, padding rule or
//! delta edge clamp fails here. What this cannot catch — CUDA-specific bugs, launch
//! geometry, races — needs the GPU tests in `gpu.rs`.

// Index loops mirror the kernels' loops on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::framing::{rms, zero_crossing_rate};
use prosodia_dsp::spectral::{Stft, delta, spectral_centroid, spectral_rolloff};
use prosodia_dsp::{Matrix, config::FrameFeature};
use prosodia_features_cuda::plan::{Layout, Plan};

fn signal(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            0.5 * (i as f32 * 0.031 * (1 + seed % 5) as f32).sin()
                + 0.1 * (s as f32 / u32::MAX as f32 - 0.5)
        })
        .collect()
}

/// `stft_power_radix2` for frame `f` of utterance `x`.
fn radix2_frame(x: &[f32], f: usize, plan: &Plan, log2n: u32) -> Vec<f32> {
    let n_fft = plan.n_fft;
    let (mut re, mut im) = (vec![0.0f32; n_fft], vec![0.0f32; n_fft]);
    let first = (f * plan.hop) as i64 - (n_fft / 2) as i64;
    for i in 0..n_fft {
        let s = first + i as i64;
        let v = if s >= 0 && s < x.len() as i64 { x[s as usize] * plan.window[i] } else { 0.0 };
        let r = ((i as u32).reverse_bits() >> (32 - log2n)) as usize;
        re[r] = v;
        im[r] = 0.0;
    }
    let mut half = 1;
    while half < n_fft {
        let step = n_fft / (2 * half);
        for j in 0..n_fft / 2 {
            let pos = j & (half - 1);
            let i0 = ((j - pos) << 1) + pos;
            let i1 = i0 + half;
            let (wr, wi) = (plan.tw_cos[pos * step], -plan.tw_sin[pos * step]);
            let (br, bi) = (re[i1], im[i1]);
            let (tr, ti) = (wr * br - wi * bi, wr * bi + wi * br);
            let (ar, ai) = (re[i0], im[i0]);
            re[i0] = ar + tr;
            im[i0] = ai + ti;
            re[i1] = ar - tr;
            im[i1] = ai - ti;
        }
        half <<= 1;
    }
    (0..plan.n_bins).map(|k| re[k] * re[k] + im[k] * im[k]).collect()
}

/// `stft_power_dft` for frame `f`.
fn dft_frame(x: &[f32], f: usize, plan: &Plan) -> Vec<f32> {
    let n_fft = plan.n_fft;
    let first = (f * plan.hop) as i64 - (n_fft / 2) as i64;
    let frame: Vec<f32> = (0..n_fft)
        .map(|i| {
            let s = first + i as i64;
            if s >= 0 && s < x.len() as i64 { x[s as usize] * plan.window[i] } else { 0.0 }
        })
        .collect();
    (0..plan.n_bins)
        .map(|k| {
            let (mut sr, mut si, mut idx) = (0.0f32, 0.0f32, 0usize);
            for &v in &frame {
                sr += v * plan.tw_cos[idx];
                si -= v * plan.tw_sin[idx];
                idx += k;
                if idx >= n_fft {
                    idx -= n_fft;
                }
            }
            sr * sr + si * si
        })
        .collect()
}

fn assert_power_close(got: &[f32], want: &[f32], what: &str) {
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 2e-5 * scale, "{what}, bin {k}: {g} vs {w} (scale {scale})");
    }
}

#[test]
fn fft_kernels_compute_the_cpu_power_spectrum() {
    let x = signal(5_000, 3);
    for (n_fft, win, hop) in [(512usize, 400usize, 160usize), (2048, 2048, 512), (600, 500, 150)] {
        let mut config = FeatureConfig::speech();
        config.stft.n_fft = n_fft;
        config.stft.win_length = win;
        config.stft.hop_length = hop;
        let plan = Plan::new(&config, 16_000).unwrap();
        let cpu = Stft::new(n_fft, win, hop).unwrap().power(&x);
        for f in [0, 1, cpu.rows / 2, cpu.rows - 1] {
            let dft = dft_frame(&x, f, &plan);
            assert_power_close(&dft, cpu.row(f), &format!("DFT n_fft {n_fft} frame {f}"));
            if n_fft.is_power_of_two() {
                let fft = radix2_frame(&x, f, &plan, n_fft.trailing_zeros());
                assert_power_close(&fft, cpu.row(f), &format!("radix-2 n_fft {n_fft} frame {f}"));
            }
        }
    }
}

/// `rms_zcr` for frame `f`.
fn rms_zcr_frame(x: &[f32], f: usize, frame_length: usize, hop: usize) -> (f32, f32) {
    let len = x.len() as i64;
    let first = (f * hop) as i64 - (frame_length / 2) as i64;
    let negative = |v: f32| v.abs() > 1e-10 && v < 0.0;
    let (mut acc, mut crossings) = (0.0f32, 0u32);
    for i in 0..frame_length {
        let s = first + i as i64;
        if s >= 0 && s < len {
            acc += x[s as usize] * x[s as usize];
        }
        if i >= 1 {
            let (s0, s1) = ((s - 1).clamp(0, len - 1), s.clamp(0, len - 1));
            if negative(x[s0 as usize]) != negative(x[s1 as usize]) {
                crossings += 1;
            }
        }
    }
    ((acc.max(0.0) / frame_length as f32).sqrt(), crossings as f32 / frame_length as f32)
}

#[test]
fn rms_and_zcr_pad_like_the_cpu() {
    let mut x = signal(3_001, 9);
    // Exact zeros and tiny values exercise the sign rule.
    x[0] = 0.0;
    x[1] = -1e-12;
    x[3_000] = -0.4;
    for (fl, hop) in [(512usize, 160usize), (2048, 512)] {
        let (r, z) = (rms(&x, fl, hop), zero_crossing_rate(&x, fl, hop));
        for f in 0..r.len() {
            let (gr, gz) = rms_zcr_frame(&x, f, fl, hop);
            assert!((gr - r[f]).abs() <= 1e-5 * r[f].max(1e-3), "rms frame {f}: {gr} vs {}", r[f]);
            assert_eq!(gz, z[f], "zcr frame {f}");
        }
    }
}

#[test]
fn deltas_clamp_at_each_utterances_edges_like_the_cpu() {
    let plan = Plan::new(&FeatureConfig::speech(), 16_000).unwrap();
    // Two utterances' MFCC-like rows back to back; the kernel must never mix them.
    let (a, b) = (signal(16_000, 1), signal(2_000, 2));
    let layout = Layout::new(&plan, &[&a, &b]).unwrap();
    let cols = 3;
    let rows = layout.frames();
    let data: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 101) as f32 * 0.1).collect();
    let (width, h) = (plan.delta_width, plan.delta_width / 2);
    for u in 0..2 {
        let (start, count) = (layout.frame_off[u] as usize, layout.frames_of(u));
        let own =
            Matrix { rows: count, cols, data: data[start * cols..(start + count) * cols].to_vec() };
        let want = delta(&own, width, 1).unwrap();
        for f in 0..count {
            let centre = f.clamp(h, count - 1 - h);
            for c in 0..cols {
                let got: f32 = (0..width)
                    .map(|j| plan.delta1[j] * data[(start + centre + j - h) * cols + c])
                    .sum();
                let w = want.row(f)[c];
                assert!((got - w).abs() <= 1e-5 * w.abs().max(1.0), "utt {u} frame {f} col {c}");
            }
        }
    }
}

/// `centroid_rolloff` with 256 threads, for one power row.
fn centroid_rolloff_row(row: &[f32], bin_hz: f64, roll: f32) -> (f32, f32) {
    const THREADS: usize = 256;
    let n_bins = row.len();
    let chunk = n_bins.div_ceil(THREADS);
    let mut scan = vec![0.0f32; THREADS];
    let mut wsum = 0.0f64;
    for (t, s) in scan.iter_mut().enumerate() {
        let lo = (t * chunk).min(n_bins);
        for k in lo..(lo + chunk).min(n_bins) {
            let m = row[k].max(0.0).sqrt();
            *s += m;
            wsum += k as f64 * f64::from(m);
        }
    }
    for t in 1..THREADS {
        scan[t] += scan[t - 1];
    }
    let total = scan[THREADS - 1];
    let threshold = roll * total;
    let mut found = n_bins - 1;
    for t in 0..THREADS {
        let lo = (t * chunk).min(n_bins);
        let mut acc = if t > 0 { scan[t - 1] } else { 0.0 };
        for k in lo..(lo + chunk).min(n_bins) {
            acc += row[k].max(0.0).sqrt();
            if acc >= threshold {
                found = found.min(k);
                break;
            }
        }
    }
    let norm = if f64::from(total) < f64::from(f32::MIN_POSITIVE) { 1.0 } else { f64::from(total) };
    ((bin_hz * wsum / norm) as f32, (found as f64 * bin_hz) as f32)
}

#[test]
fn centroid_and_rolloff_scan_like_the_cpu() {
    let config = FeatureConfig::seed();
    let plan = Plan::new(&config, 48_000).unwrap();
    assert!(plan.needs(&[FrameFeature::SpectralRolloff]));
    let x = signal(48_000, 5);
    let power = Stft::new(2048, 2048, 512).unwrap().power(&x);
    let (c, r) =
        (spectral_centroid(&power, 48_000.0, 2048), spectral_rolloff(&power, 48_000.0, 2048, 0.85));
    let mut silent = Matrix::zeros(1, plan.n_bins);
    silent.row_mut(0)[0] = 0.0;
    assert_eq!(centroid_rolloff_row(silent.row(0), plan.bin_hz, 0.85), (0.0, 0.0));
    let mut off_by_one = 0;
    for f in 0..power.rows {
        let (gc, gr) = centroid_rolloff_row(power.row(f), plan.bin_hz, plan.rolloff_percent);
        assert!((gc - c[f]).abs() <= 1e-4 * c[f].max(1.0), "centroid frame {f}: {gc} vs {}", c[f]);
        if gr != r[f] {
            assert!(
                (gr - r[f]).abs() <= plan.bin_hz as f32 * 1.01,
                "rolloff frame {f}: {gr} vs {}",
                r[f]
            );
            off_by_one += 1;
        }
    }
    assert!(off_by_one * 100 <= power.rows, "{off_by_one} of {} rolloffs a bin off", power.rows);
}
