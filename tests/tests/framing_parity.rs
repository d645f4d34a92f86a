//! RMS and ZCR against librosa on every reference fixture, both STFT configurations.

use prosodia_dsp::framing;
use prosodia_tests::{load_pcm16_mono, references};

fn max_rel(ours: &[f32], theirs: &[f64], floor: f64) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "frame counts differ");
    ours.iter()
        .zip(theirs)
        .map(|(&a, &b)| (f64::from(a) - b).abs() / b.abs().max(floor))
        .fold(0.0, f64::max)
}

#[test]
fn rms_and_zcr_match_librosa() {
    let (mut worst_rms, mut worst_zcr) = (0.0f64, 0.0f64);
    for (path, r) in references() {
        let (y, sr) = load_pcm16_mono(&path);
        assert_eq!(sr, r.sample_rate);
        assert_eq!(y.len(), r.num_samples, "{}", r.file);
        for c in [&r.configs.seed, &r.configs.speech] {
            let (n_fft, hop) = (c.param("n_fft"), c.param("hop"));
            let rms = framing::rms(&y, n_fft, hop);
            let zcr = framing::zero_crossing_rate(&y, n_fft, hop);
            assert_eq!(rms.len(), c.num_frames, "{} frames", r.file);
            // Values near zero are compared absolutely: reference values carry 6 digits.
            let e_rms = max_rel(&rms, &c.rms, 1e-4);
            let e_zcr = max_rel(&zcr, &c.zcr, 1e-2);
            assert!(e_rms < 1e-3, "{} n_fft {n_fft}: rms rel err {e_rms}", r.file);
            assert!(e_zcr < 1e-3, "{} n_fft {n_fft}: zcr rel err {e_zcr}", r.file);
            worst_rms = worst_rms.max(e_rms);
            worst_zcr = worst_zcr.max(e_zcr);
        }
    }
    println!("worst relative error: rms {worst_rms:.2e}, zcr {worst_zcr:.2e}");
}
