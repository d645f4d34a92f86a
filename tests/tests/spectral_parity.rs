//! The spectral front end against librosa 0.11 on every reference fixture, both STFT
//! configurations ("seed": 2048/2048/512, 128 mels; "speech": 512/400/160, 40 mels), each on
//! the file's own samples at its own rate.
//!
//! Tolerances: log-mel 0.05 dB absolute (every value); MFCC 1e-3 of the reference frame's
//! L2 norm; centroid and rolloff 1e-3 relative (floor 1 Hz, for silent frames whose reference
//! is 0); onset strength 1e-2 relative with the floor `max(|ref|, 1e-2 · max(ref envelope))`
//! (near-zero flux values are compared against the envelope's scale); tempo within 1 BPM on at
//! least 90 % of file × configuration pairs. Rolloff is a bin frequency, so a rounding-level
//! power difference can move it to the adjacent bin when the cumulative magnitude sits on the
//! 85 % threshold: such flips are counted, each must be to an adjacent bin, and they must be
//! rare (≤ 0.5 % of frames).

use std::time::Instant;

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::spectral::{self, SpectralAnalyzer};
use prosodia_tests::{RefConfig, load_pcm16_mono, references};

fn config_for(name: &str) -> FeatureConfig {
    let mut c = FeatureConfig::preset(name).unwrap_or_else(|| panic!("preset {name}"));
    c.frame_features.push(prosodia_dsp::config::FrameFeature::MfccDelta2);
    c
}

#[derive(Default)]
struct Worst {
    value: f64,
    at: String,
}

impl Worst {
    fn see(&mut self, v: f64, at: impl FnOnce() -> String) {
        if (v > self.value || self.at.is_empty()) && v >= self.value {
            self.value = v;
            self.at = at();
        }
    }
}

fn check_params(c: &RefConfig, config: &FeatureConfig) {
    assert_eq!(c.param("n_fft"), config.stft.n_fft);
    assert_eq!(c.param("hop"), config.stft.hop_length);
    assert_eq!(c.param("win"), config.stft.win_length);
    assert_eq!(c.param("n_mels"), config.mel.n_mels);
    assert_eq!(c.param("n_mfcc"), config.mel.n_mfcc);
}

#[test]
fn spectral_features_match_librosa() {
    let (mut w_logmel, mut w_mfcc, mut w_cent, mut w_roll, mut w_onset) =
        (Worst::default(), Worst::default(), Worst::default(), Worst::default(), Worst::default());
    let (mut roll_frames, mut roll_flips, mut roll_nonadjacent) = (0usize, 0usize, 0usize);
    let (mut tempo_total, mut tempo_misses) = (0usize, Vec::new());
    let mut failures = Vec::new();
    let mut seed_time = (0.0f64, 0.0f64); // (seconds of compute, seconds of audio)

    for (path, r) in references() {
        let (y, sr) = load_pcm16_mono(&path);
        assert_eq!(sr, r.sample_rate, "{}", r.file);
        assert_eq!(y.len(), r.num_samples, "{}", r.file);
        for (name, c) in [("seed", &r.configs.seed), ("speech", &r.configs.speech)] {
            let config = config_for(name);
            check_params(c, &config);
            let tag = format!("{} [{name}]", r.file);
            let mut analyzer = SpectralAnalyzer::new(sr, &config).expect("analyzer");
            let mut f = analyzer.analyze(&y).expect("analyze");
            if name == "seed" {
                // Time the reusable path after one warm-up call; the fastest of a few runs is
                // the least disturbed by other work on the machine.
                let mut best = f64::INFINITY;
                for _ in 0..5 {
                    let t0 = Instant::now();
                    analyzer.analyze_into(&y, &mut f).expect("analyze_into");
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                seed_time.0 += best;
                seed_time.1 += y.len() as f64 / f64::from(sr);
            }
            let n = c.num_frames;
            assert_eq!(f.num_frames(), n, "{tag}: frames");
            for v in [&f.rms, &f.zcr, &f.centroid, &f.rolloff, &f.onset_strength] {
                assert_eq!(v.len(), n, "{tag}: vector length");
            }
            assert_eq!(f.mfcc_delta.rows, n);
            assert_eq!(f.mfcc_delta2.as_ref().map(|m| m.rows), Some(n));

            // Log-mel, absolute dB.
            let mut e_logmel = 0.0f64;
            for (t, ref_row) in c.logmel_db.iter().enumerate() {
                for (b, &rv) in ref_row.iter().enumerate() {
                    let e = (f64::from(f.logmel_db.row(t)[b]) - rv).abs();
                    if e > e_logmel {
                        e_logmel = e;
                    }
                }
            }
            w_logmel.see(e_logmel, || tag.clone());
            if e_logmel > 0.05 {
                failures.push(format!("{tag}: log-mel max abs err {e_logmel:.4} dB"));
            }

            // MFCC, relative to each reference frame's norm.
            let mut e_mfcc = 0.0f64;
            for (t, ref_row) in c.mfcc.iter().enumerate() {
                let norm = ref_row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-6);
                for (k, &rv) in ref_row.iter().enumerate() {
                    e_mfcc = e_mfcc.max((f64::from(f.mfcc.row(t)[k]) - rv).abs() / norm);
                }
            }
            w_mfcc.see(e_mfcc, || tag.clone());
            if e_mfcc > 1e-3 {
                failures.push(format!("{tag}: MFCC err {e_mfcc:.2e} of frame norm"));
            }

            // Centroid.
            let e_cent = f
                .centroid
                .iter()
                .zip(&c.spectral_centroid)
                .map(|(&a, &b)| (f64::from(a) - b).abs() / b.abs().max(1.0))
                .fold(0.0, f64::max);
            w_cent.see(e_cent, || tag.clone());
            if e_cent > 1e-3 {
                failures.push(format!("{tag}: centroid rel err {e_cent:.2e}"));
            }

            // Rolloff: exact bins except rare threshold flips to the adjacent bin.
            let bin = f64::from(sr) / config.stft.n_fft as f64;
            let mut e_roll = 0.0f64;
            for (t, (&a, &b)) in f.rolloff.iter().zip(&c.spectral_rolloff).enumerate() {
                roll_frames += 1;
                let e = (f64::from(a) - b).abs() / b.abs().max(1.0);
                if e <= 1e-3 {
                    e_roll = e_roll.max(e);
                    continue;
                }
                roll_flips += 1;
                let bins_apart = (f64::from(a) - b).abs() / bin;
                if (bins_apart - 1.0).abs() > 1e-3 {
                    roll_nonadjacent += 1;
                    failures.push(format!("{tag}: rolloff frame {t}: ours {a} Hz, librosa {b} Hz ({bins_apart:.2} bins)"));
                } else {
                    println!(
                        "rolloff flip {tag} frame {t}: ours {a} Hz, librosa {b} Hz (adjacent bin)"
                    );
                }
            }
            w_roll.see(e_roll, || tag.clone());

            // Onset strength.
            let env_max = c.onset_strength.iter().copied().fold(0.0f64, f64::max);
            let floor = (1e-2 * env_max).max(1e-12);
            let e_onset = f
                .onset_strength
                .iter()
                .zip(&c.onset_strength)
                .map(|(&a, &b)| (f64::from(a) - b).abs() / b.abs().max(floor))
                .fold(0.0, f64::max);
            w_onset.see(e_onset, || tag.clone());
            if e_onset > 1e-2 {
                failures.push(format!("{tag}: onset strength rel err {e_onset:.2e}"));
            }

            // Tempo.
            tempo_total += 1;
            let dt = (f64::from(f.tempo_bpm) - c.tempo_bpm).abs();
            if dt > 1.0 {
                tempo_misses.push(format!(
                    "{tag}: ours {:.3} BPM, librosa {:.3} BPM",
                    f.tempo_bpm, c.tempo_bpm
                ));
            }

            // The standalone onset function agrees with the analyzer's shared path.
            let standalone = spectral::onset_strength(
                &y,
                sr,
                config.stft.n_fft,
                config.stft.hop_length,
                config.mel.n_mels,
            )
            .expect("onset_strength");
            assert_eq!(standalone, f.onset_strength, "{tag}: standalone onset strength differs");
        }
    }

    println!("worst log-mel abs error   {:.4} dB  ({})", w_logmel.value, w_logmel.at);
    println!("worst MFCC error / norm   {:.2e}  ({})", w_mfcc.value, w_mfcc.at);
    println!("worst centroid rel error  {:.2e}  ({})", w_cent.value, w_cent.at);
    println!(
        "worst rolloff rel error   {:.2e}  ({}), excluding {roll_flips} adjacent-bin flips in {roll_frames} frames",
        w_roll.value, w_roll.at
    );
    println!("worst onset rel error     {:.2e}  ({})", w_onset.value, w_onset.at);
    println!("tempo: {} of {tempo_total} within 1 BPM", tempo_total - tempo_misses.len());
    for m in &tempo_misses {
        println!("  tempo miss {m}");
    }
    println!(
        "seed analyzer: {:.1} µs per second of audio ({:.2} s of audio, {:.2} ms)",
        1e6 * seed_time.0 / seed_time.1,
        seed_time.1,
        1e3 * seed_time.0
    );
    assert!(failures.is_empty(), "parity failures:\n{}", failures.join("\n"));
    assert_eq!(roll_nonadjacent, 0);
    assert!(roll_flips * 200 <= roll_frames, "{roll_flips} rolloff flips in {roll_frames} frames");
    assert!(tempo_misses.len() * 10 <= tempo_total, "tempo misses: {}", tempo_misses.len());
}

#[test]
fn degenerate_inputs_do_not_panic() {
    for name in ["seed", "speech"] {
        let config = config_for(name);
        for sr in [8_000u32, 16_000, 48_000] {
            let mut a = SpectralAnalyzer::new(sr, &config).expect("analyzer").keep_power(true);
            let kind = |r: prosodia_dsp::Result<spectral::SpectralFeatures>| {
                r.map(|_| ()).map_err(|e| e.kind())
            };
            assert_eq!(kind(a.analyze(&[])), Err(prosodia_dsp::ErrorKind::TooShort));
            assert_eq!(kind(a.analyze(&[0.1; 5])), Err(prosodia_dsp::ErrorKind::TooShort));
            assert_eq!(
                kind(a.analyze(&[f32::NAN; 10_000])),
                Err(prosodia_dsp::ErrorKind::NonFiniteSamples)
            );
            // Digital silence: finite everything, log-mel at the amin floor.
            let hop = config.stft.hop_length;
            let f = a.analyze(&vec![0.0; hop * 12]).expect("silence");
            assert!(f.logmel_db.data.iter().all(|&v| (v + 100.0).abs() < 1e-4));
            assert!(f.mfcc.data.iter().chain(&f.mfcc_delta.data).all(|v| v.is_finite()));
            assert!(
                f.centroid.iter().chain(&f.rolloff).chain(&f.onset_strength).all(|&v| v == 0.0)
            );
            assert!(f.tempo_bpm.is_finite() && f.tempo_bpm > 0.0);
            assert_eq!(f.power.as_ref().map(|p| p.rows), Some(13));
            // Exactly enough frames for the delta window, a full-scale square wave, a DC offset.
            for y in [
                vec![0.5; hop * (config.mel.delta_width - 1)],
                (0..hop * 20).map(|i| if i % 7 < 3 { 1.0 } else { -1.0 }).collect(),
                vec![1.0; 3 * config.stft.n_fft + 1],
            ] {
                let f = a.analyze(&y).expect("short signal");
                assert_eq!(f.num_frames(), 1 + y.len() / hop);
                assert!(f.logmel_db.data.iter().chain(&f.mfcc.data).all(|v| v.is_finite()));
            }
        }
    }
    // Free functions on empty input.
    let stft = spectral::Stft::new(512, 400, 160).expect("stft");
    assert_eq!(stft.power(&[]).rows, 0);
    assert_eq!(spectral::tempo(&[], 16_000, 160), spectral::tempo(&[0.0; 50], 16_000, 160));
    let mut empty = prosodia_dsp::Matrix::default();
    spectral::power_to_db(&mut empty, spectral::DbReference::Max, 1e-10, Some(80.0));
    assert!(spectral::onset_strength(&[], 16_000, 512, 160, 40).expect("empty onset").is_empty());
}

#[test]
fn mel_filterbank_is_librosa_slaney() {
    // librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128)[0, :3] and [127].max(), as printed by librosa.
    let fb = spectral::MelFilterbank::new(22_050.0, 2048, 128, 0.0, None).expect("mel");
    let dense = fb.to_dense();
    assert_eq!((dense.rows, dense.cols), (128, 1025));
    // Each Slaney-normalised triangle has area ≈ 1 in Hz·(1/Hz): Σ w · Δf ≈ 1 where the
    // filter spans several bins.
    let df = 22_050.0 / 2048.0;
    for i in 20..128 {
        let area: f32 = dense.row(i).iter().sum::<f32>() * df;
        assert!((area - 1.0).abs() < 0.05, "band {i} area {area}");
    }
    assert!(fb.nonzero_len() < 3 * 1025, "sparse storage keeps {} weights", fb.nonzero_len());
    assert!((spectral::hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    assert!((spectral::mel_to_hz(spectral::hz_to_mel(4321.0)) - 4321.0).abs() < 1e-9);
}

/// Per-stage timing of the seed configuration on the first RAVDESS fixture (run with
/// `--ignored --nocapture`); informational only.
#[test]
#[ignore]
fn stage_timing() {
    let refs = references();
    let (path, _) = refs.iter().find(|(_, r)| r.sample_rate == 48_000).expect("a 48 kHz fixture");
    let (y, sr) = load_pcm16_mono(path);
    let secs = y.len() as f64 / f64::from(sr);
    let config = FeatureConfig::seed();
    let time = |label: &str, f: &mut dyn FnMut()| {
        f();
        let mut best = f64::INFINITY;
        for _ in 0..50 {
            let t0 = Instant::now();
            f();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!("{label:>12}: {:8.1} µs per second of audio (fastest of 50)", 1e6 * best / secs);
    };
    let stft = spectral::Stft::from_config(&config.stft).expect("stft");
    let mel = spectral::MelFilterbank::new(f64::from(sr), 2048, 128, 0.0, None).expect("mel");
    let mfcc = spectral::Mfcc::new(128, 13).expect("mfcc");
    let mut power = stft.power(&y);
    let mut logmel = mel.apply(&power).expect("mel");
    spectral::power_to_db(&mut logmel, spectral::DbReference::Value(1.0), 1e-10, Some(80.0));
    let mut m = mfcc.mfcc(&logmel).expect("mfcc");
    let mut tmp = prosodia_dsp::Matrix::default();
    let mut v = Vec::new();
    let onset = spectral::onset_strength_from_db(&logmel, 2048, 512);
    let mut tempo = spectral::TempoEstimator::new(sr, 512).expect("tempo");
    time("stft", &mut || stft.power_into(&y, &mut power));
    time("mel", &mut || mel.apply_into(&power, &mut tmp).expect("mel"));
    time("db", &mut || {
        tmp.data.copy_from_slice(&logmel.data);
        spectral::power_to_db(&mut tmp, spectral::DbReference::Value(1.0), 1e-10, Some(80.0))
    });
    time("mfcc", &mut || mfcc.mfcc_into(&logmel, &mut m).expect("mfcc"));
    time("delta", &mut || spectral::delta_into(&m, 9, 1, &mut tmp).expect("delta"));
    time("rms", &mut || prosodia_dsp::framing::rms_into(&y, 2048, 512, &mut v));
    time("zcr", &mut || prosodia_dsp::framing::zero_crossing_rate_into(&y, 2048, 512, &mut v));
    time("centroid", &mut || spectral::spectral_centroid_into(&power, f64::from(sr), 2048, &mut v));
    time("rolloff", &mut || {
        spectral::spectral_rolloff_into(&power, f64::from(sr), 2048, 0.85, &mut v)
    });
    time("onset", &mut || spectral::onset_strength_from_db_into(&logmel, 2048, 512, &mut v));
    time("tempo", &mut || {
        tempo.estimate(&onset);
    });
    let mut a = SpectralAnalyzer::new(sr, &config).expect("analyzer");
    let mut f = a.analyze(&y).expect("analyze");
    time("analyzer", &mut || a.analyze_into(&y, &mut f).expect("analyze"));
}
