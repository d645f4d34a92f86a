//! The whole front end (decode → preprocess → 46 features) against the Python reference
//! implementation's output, and every bad input refused with a typed error.

use std::collections::HashMap;

use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::utterance::NAMES;
use prosodia_dsp::{ErrorKind, FeatureConfig};
use prosodia_tests::{fixture, fixtures_in, read};

fn golden() -> Vec<(String, HashMap<String, f64>)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/golden/seed_features.csv"))
            .expect("golden csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let map = header[1..]
                .iter()
                .zip(&cells[1..])
                .map(|(h, c)| (h.to_string(), c.parse::<f64>().expect("number")))
                .collect();
            (cells[0].to_string(), map)
        })
        .collect()
}

/// Allowed |ours − python| for a feature: relative part plus an absolute floor. Pitch-derived
/// features inherit the pitch tracker's tolerance and tempo is checked separately.
///
/// Files not at 48 kHz go through different resamplers (rubato here, soxr_hq in librosa).
/// Measured on `YAF_bath_ps.wav` (24,414 → 48,000 Hz): both leave ~−95 dB above the old
/// Nyquist, but soxr_hq starts rolling off earlier, so the band just below 12.2 kHz is 8 dB
/// weaker in librosa's output. Spectral-shape features (centroid, rolloff, the cepstrum's
/// fine structure) of resampled files therefore get a wider bound; 48 kHz files, which are
/// not resampled, are held to the tight one.
fn tolerance(name: &str, reference: f64, resampled: bool) -> f64 {
    if resampled {
        let (rel, abs) = match name {
            "spectral_centroid_mean" | "spectral_rolloff_mean" => (0.06, 0.0),
            n if n.starts_with("mfcc_") => (0.05, 2.5),
            _ => (0.0, 0.0),
        };
        if rel + abs > 0.0 {
            return rel * reference.abs() + abs;
        }
    }
    let (rel, abs) = match name {
        "sample_rate" => (0.0, 0.0),
        "tempo_bpm" => (f64::INFINITY, 0.0),
        "duration_sec" => (0.0, 512.0 / 48_000.0 + 1e-9),
        "jitter" | "shimmer" => (0.15, 1e-3),
        "pitch_std" | "pitch_variation" => (0.10, 1.0),
        n if n.starts_with("pitch") || n == "voiced_ratio" => (0.03, 0.5),
        n if n.starts_with("mfcc_mean") => (0.02, 0.3),
        n if n.starts_with("mfcc_std") => (0.03, 0.3),
        "intensity_db_mean" => (0.0, 0.3),
        _ => (0.03, 1e-4),
    };
    rel * reference.abs() + abs
}

#[test]
fn utterance_features_match_the_python_reference() {
    let mut worst: HashMap<&str, (f64, String)> = HashMap::new();
    let mut failures = Vec::new();
    let (mut resampled_misses, mut resampled_checks) = (Vec::new(), 0usize);
    let (mut tempo_ok, mut tempo_n) = (0usize, 0usize);
    let mut ex = Extractor::new(FeatureConfig::seed()).expect("seed extractor");
    for (rel, reference) in golden() {
        let audio = decode(&read(&fixture(&rel)), &DecodeLimits::default()).expect("decode");
        let a = ex.analyze(&audio).unwrap_or_else(|e| panic!("{rel}: {e}"));
        // The owned form (no copy of a mono clip) computes the same thing.
        let owned = ex.analyze_owned(audio.clone()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(owned.utterance, a.utterance, "{rel}: analyze_owned differs from analyze");
        for (name, ours) in a.utterance.iter() {
            let theirs = reference[name];
            let err = (ours - theirs).abs();
            if name == "tempo_bpm" {
                tempo_n += 1;
                tempo_ok += usize::from(err <= 1.0);
                continue;
            }
            let resampled = reference["sample_rate"] as u32 != audio.sample_rate;
            let tol = tolerance(name, theirs, resampled);
            let scaled = err / tol.max(1e-12);
            let entry = worst.entry(name).or_insert((0.0, String::new()));
            if scaled > entry.0 {
                *entry = (scaled, format!("{rel}: ours {ours:.6} python {theirs:.6}"));
            }
            if resampled {
                resampled_checks += 1;
            }
            if err > tol {
                let line = format!("{rel} {name}: ours {ours} python {theirs}");
                if resampled { resampled_misses.push(line) } else { failures.push(line) }
            }
        }
    }
    let mut names: Vec<_> = worst.iter().collect();
    names.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (name, (scaled, at)) in names.iter().take(12) {
        println!("{name:>24}: {scaled:.2} of tolerance at {at}");
    }
    println!("tempo within 1 BPM: {tempo_ok}/{tempo_n}");
    assert!(tempo_ok * 10 >= tempo_n * 9, "tempo within 1 BPM on only {tempo_ok}/{tempo_n} files");
    // Resampled files: the two resamplers' different band edges move ZCR and the trim point
    // by a frame on a few quiet files; those must stay rare.
    println!(
        "resampled files: {} of {resampled_checks} values outside tolerance",
        resampled_misses.len()
    );
    for m in &resampled_misses {
        println!("  {m}");
    }
    assert!(
        resampled_misses.len() * 40 <= resampled_checks,
        "more than 2.5 % of resampled values out of tolerance:\n{}",
        resampled_misses.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} features out of tolerance:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(NAMES.len(), 46);
}

#[test]
fn every_bad_fixture_is_refused_with_a_reason() {
    let mut ex = Extractor::new(FeatureConfig::seed()).expect("seed extractor");
    let bad = fixtures_in("bad");
    assert_eq!(bad.len(), 10, "expected the 10 bad fixtures");
    for path in bad {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let result = decode(&read(&path), &DecodeLimits::default())
            .and_then(|audio| ex.analyze(&audio).map(|_| ()));
        let err = match result {
            Ok(()) => panic!("{name}: accepted"),
            Err(e) => e,
        };
        let expected = match name.as_str() {
            "silence_3s.wav" | "empty.wav" => ErrorKind::NoAudio,
            "tiny_5ms.wav" => ErrorKind::TooShort,
            "nan_inf_f32.wav" => ErrorKind::NonFiniteSamples,
            "text.wav" | "random_bytes.wav" => ErrorKind::UnsupportedFormat,
            _ => ErrorKind::Malformed,
        };
        println!("{name}: {err}");
        assert_eq!(err.kind(), expected, "{name}: {err}");
        assert!(err.message().len() > 10, "{name}: message too vague: {err}");
    }
}

#[test]
fn frames_skip_the_tempo_but_equal_the_full_analysis_matrix() {
    let audio = decode(&read(&fixture("tess/OAF_back_happy.wav")), &DecodeLimits::default())
        .expect("decode");
    let mut ex = Extractor::new(FeatureConfig::seed()).expect("extractor");
    let (signal, rate) = ex.preprocess(&audio).expect("preprocess");
    let full = ex.spectral(&signal, rate).expect("spectral");
    assert!(full.tempo_bpm > 0.0, "the full analysis estimates a tempo");
    let expected = ex.frame_matrix(&full);
    let frames = ex.frames(&signal, rate).expect("frames");
    assert_eq!((frames.rows, frames.cols), (expected.rows, expected.cols));
    assert_eq!(frames.data, expected.data, "bit for bit");
    // And the full analysis after a frames-only one still has its tempo.
    assert_eq!(ex.spectral(&signal, rate).expect("spectral").tempo_bpm, full.tempo_bpm);
}
