//! Praat parity: "To Pitch (ac)" 50–500 Hz, "To PointProcess (periodic, cc)" and local
//! jitter/shimmer against Parselmouth on every reference fixture.

use std::time::Instant;

use prosodia_dsp::praat::{self, PitchParams};
use prosodia_tests::{load_pcm16_mono, references};

/// Per-file pitch agreement with Praat.
struct PitchStats {
    file: String,
    voicing_agreement: f64,
    within_1pct: f64,
    both_voiced: usize,
    max_rel_f0: f64,
}

#[test]
fn pitch_jitter_shimmer_match_praat() {
    let mut stats = Vec::new();
    let mut perturbation = Vec::new(); // (file, which, ours, praat, rel err)
    let mut audio_secs = 0.0;
    let mut elapsed = 0.0;
    for (path, r) in references() {
        let (y, sr) = load_pcm16_mono(&path);
        assert_eq!(sr, r.sample_rate, "{}", r.file);
        let start = Instant::now();
        let report =
            praat::analyse_voice(&y, sr, 50.0, 500.0).unwrap_or_else(|e| panic!("{}: {e}", r.file));
        elapsed += start.elapsed().as_secs_f64();
        audio_secs += y.len() as f64 / f64::from(sr);
        let p = &report.pitch;
        let rp = &r.praat.pitch_ac;

        assert_eq!(p.len(), rp.f0_hz.len(), "{}: frame count", r.file);
        assert!((p.time_step - rp.time_step_s).abs() < 1e-12, "{}: time step", r.file);
        if let Some(t0) = rp.first_frame_time_s {
            assert!(
                (p.first_frame_time - t0).abs() < 1e-9,
                "{}: first frame {} vs {t0}",
                r.file,
                p.first_frame_time
            );
        }
        let agree =
            p.f0_hz.iter().zip(&rp.f0_hz).filter(|(a, b)| (**a > 0.0) == (**b > 0.0)).count();
        let both: Vec<(f64, f64)> = p
            .f0_hz
            .iter()
            .zip(&rp.f0_hz)
            .filter(|(a, b)| **a > 0.0 && **b > 0.0)
            .map(|(a, b)| (*a, *b))
            .collect();
        let close = both.iter().filter(|(a, b)| (a - b).abs() <= 0.01 * b).count();
        stats.push(PitchStats {
            file: r.file.clone(),
            voicing_agreement: agree as f64 / p.len().max(1) as f64,
            within_1pct: if both.is_empty() { 1.0 } else { close as f64 / both.len() as f64 },
            both_voiced: both.len(),
            max_rel_f0: both.iter().map(|(a, b)| (a - b).abs() / b).fold(0.0, f64::max),
        });
        for (which, ours, theirs) in [
            ("jitter", report.jitter_local, r.praat.jitter_local),
            ("shimmer", report.shimmer_local, r.praat.shimmer_local),
        ] {
            if let Some(t) = theirs {
                let rel = ours.map_or(f64::INFINITY, |o| (o - t).abs() / t.abs().max(1e-12));
                perturbation.push((r.file.clone(), which, ours, t, rel));
            }
        }
    }

    stats.sort_by(|a, b| a.voicing_agreement.total_cmp(&b.voicing_agreement));
    println!("worst voicing agreement:");
    for s in stats.iter().take(5) {
        println!("  {:40} {:.4}", s.file, s.voicing_agreement);
    }
    stats.sort_by(|a, b| a.within_1pct.total_cmp(&b.within_1pct));
    println!("worst share of both-voiced frames within 1 % of Praat's F0:");
    for s in stats.iter().take(5) {
        println!("  {:40} {:.4} of {}", s.file, s.within_1pct, s.both_voiced);
    }
    stats.sort_by(|a, b| b.max_rel_f0.total_cmp(&a.max_rel_f0));
    println!("largest relative F0 deviation on both-voiced frames:");
    for s in stats.iter().take(3) {
        println!("  {:40} {:.2e}", s.file, s.max_rel_f0);
    }
    perturbation.sort_by(|a, b| b.4.total_cmp(&a.4));
    for which in ["jitter", "shimmer"] {
        println!("worst {which} relative errors:");
        for (f, _, o, t, e) in perturbation.iter().filter(|p| p.1 == which).take(4) {
            println!("  {f:40} ours {o:?} praat {t:.6} rel {e:.4}");
        }
    }
    println!(
        "speed: {:.2} ms per second of audio ({audio_secs:.1} s analysed)",
        1e3 * elapsed / audio_secs.max(1e-9)
    );

    for s in &stats {
        assert!(
            s.voicing_agreement >= 0.95,
            "{}: voicing agreement {:.4}",
            s.file,
            s.voicing_agreement
        );
        assert!(s.within_1pct >= 0.98, "{}: F0 within 1 %: {:.4}", s.file, s.within_1pct);
    }
    for which in ["jitter", "shimmer"] {
        let all: Vec<_> = perturbation.iter().filter(|p| p.1 == which).collect();
        let good = all.iter().filter(|p| p.4 <= 0.10).count();
        let share = good as f64 / all.len().max(1) as f64;
        println!("{which}: {good}/{} files within 10 % of Praat", all.len());
        assert!(share >= 0.90, "{which}: only {good}/{} files within 10 %", all.len());
        // Regression guard: the implementation reaches far tighter agreement than the target
        // (pulses match to 1e-6, shimmer to under 1 %), so a drift past 3 % is a real change.
        for p in &all {
            assert!(p.4 <= 0.03, "{}: {which} {:?} vs Praat {} (rel {:.4})", p.0, p.2, p.3, p.4);
        }
    }
    for s in &stats {
        assert!(
            s.max_rel_f0 < 1e-3,
            "{}: F0 deviates up to {:.2e} from Praat",
            s.file,
            s.max_rel_f0
        );
    }
}

#[test]
fn degenerate_inputs_are_handled() {
    let p = PitchParams::default();
    assert!(praat::pitch_ac(&[], 48_000, &p).is_err());
    assert!(praat::pitch_ac(&[0.0; 240], 48_000, &p).is_err());
    let silent = praat::analyse_voice(&vec![0.0; 48_000], 48_000, 50.0, 500.0)
        .unwrap_or_else(|e| panic!("silence: {e}"));
    assert!(silent.pitch.f0_hz.iter().all(|&f| f == 0.0));
    assert_eq!(silent.jitter_local, None);
    assert_eq!(silent.shimmer_local, None);
}
