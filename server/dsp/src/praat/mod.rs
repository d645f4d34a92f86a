//! Praat's voice analysis in pure Rust: the autocorrelation pitch tracker ("To Pitch (ac)"),
//! the cross-correlation pulse finder ("To PointProcess (periodic, cc)") and local jitter and
//! shimmer, implemented from Boersma (1993) and Praat's manual rather than from Praat's code.
//!
//! The pitch tracker follows the paper step by step: frames on Praat's centred short-term
//! grid, local-mean removal, a Hann (or Gaussian) window, the frame's autocorrelation divided
//! by the window's (both through one real FFT each, with buffers planned once per call),
//! local maxima above half the voicing threshold as candidates, each refined by maximising a
//! tapered-sinc reconstruction of the autocorrelation, and finally a Viterbi path over the
//! candidates with octave, octave-jump and voiced/unvoiced costs. Pulses are found by walking
//! from the middle of each voiced stretch outwards, one period at a time, to the best
//! normalised cross-correlation with the previous period. Jitter and shimmer then apply
//! Praat's period guards (shortest/longest period, maximum period and amplitude factors).
//! Every function accepts any input: too-short audio is [`ErrorKind::TooShort`](crate::ErrorKind),
//! undefined measures are `None`, and nothing panics.

mod interp;
mod perturbation;
mod pitch;
mod pulses;

use crate::Result;

/// Settings of Praat's "Sound: To Pitch (ac)..."; [`Default`] is Praat's standard with a
/// 50 Hz floor and a 500 Hz ceiling.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PitchParams {
    /// Seconds between frame centres; 0 means automatic (a quarter of the window, i.e.
    /// 0.75 / floor for the standard 3-period window).
    pub time_step: f64,
    /// Lowest F0 searched for, in Hz; it also sets the window length (periods / floor).
    pub floor_hz: f64,
    /// Highest F0 accepted as voiced, in Hz.
    pub ceiling_hz: f64,
    /// Candidates kept per frame, the unvoiced one included.
    pub max_candidates: usize,
    /// Gaussian window of 6 periods and finer interpolation instead of a 3-period Hann window.
    pub very_accurate: bool,
    /// Frames whose local peak is below this fraction of the global peak lean unvoiced.
    pub silence_threshold: f64,
    /// Strength an unvoiced candidate starts with; voiced peaks must beat it.
    pub voicing_threshold: f64,
    /// Bonus per octave for higher candidates, against octave-down errors.
    pub octave_cost: f64,
    /// Path cost per octave of F0 change between consecutive frames.
    pub octave_jump_cost: f64,
    /// Path cost of switching between voiced and unvoiced.
    pub voiced_unvoiced_cost: f64,
}

impl Default for PitchParams {
    fn default() -> Self {
        Self {
            time_step: 0.0,
            floor_hz: 50.0,
            ceiling_hz: 500.0,
            max_candidates: 15,
            very_accurate: false,
            silence_threshold: 0.03,
            voicing_threshold: 0.45,
            octave_cost: 0.01,
            octave_jump_cost: 0.35,
            voiced_unvoiced_cost: 0.14,
        }
    }
}

impl PitchParams {
    /// The defaults with another floor and ceiling.
    pub fn with_range(floor_hz: f64, ceiling_hz: f64) -> Self {
        Self { floor_hz, ceiling_hz, ..Self::default() }
    }
}

/// A pitch contour on Praat's frame grid.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pitch {
    /// Seconds between frames.
    pub time_step: f64,
    /// Time of frame 0's centre, in seconds from the first sample's start.
    pub first_frame_time: f64,
    /// Duration of the analysed sound in seconds (the contour's domain).
    pub duration: f64,
    /// The ceiling actually used (clipped to Nyquist); voiced frames lie below it.
    pub ceiling_hz: f64,
    /// F0 per frame in Hz, 0 where the path chose unvoiced.
    pub f0_hz: Vec<f64>,
    /// Strength (normalised autocorrelation) of the chosen candidate, 0 where unvoiced was
    /// chosen from silence.
    pub strength: Vec<f64>,
    /// Local peak relative to the global peak per frame, in [0, 1].
    pub intensity: Vec<f64>,
}

impl Pitch {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.f0_hz.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.f0_hz.is_empty()
    }

    /// Centre time of frame `i`.
    pub fn frame_time(&self, i: usize) -> f64 {
        self.first_frame_time + i as f64 * self.time_step
    }

    /// F0 at time `t`, linearly interpolated between voiced frames as Praat's "Get value at
    /// time" does; `None` where the nearest frame is unvoiced or `t` is outside the sound.
    pub fn value_at(&self, t: f64) -> Option<f64> {
        pulses::pitch_value_at(self, t)
    }
}

/// Praat's "Sound: To Pitch (ac)..." on mono `samples` at `sample_rate`.
///
/// Errors: [`ErrorKind::InvalidConfig`](crate::ErrorKind) for bad parameters,
/// [`ErrorKind::NonFiniteSamples`](crate::ErrorKind) for NaN/infinite samples, and
/// [`ErrorKind::TooShort`](crate::ErrorKind) when the sound is shorter than one window
/// (periods / floor). All-zero audio gives an all-unvoiced contour.
pub fn pitch_ac(samples: &[f32], sample_rate: u32, params: &PitchParams) -> Result<Pitch> {
    pitch::pitch_ac(samples, sample_rate, params)
}

/// Praat's "Sound & Pitch: To PointProcess (cc)": glottal pulse times in seconds (sorted),
/// found by cross-correlating consecutive periods through each voiced stretch of `pitch`.
/// Empty when nothing is voiced.
pub fn point_process_periodic_cc(samples: &[f32], sample_rate: u32, pitch: &Pitch) -> Vec<f64> {
    pulses::point_process_periodic_cc(samples, sample_rate, pitch)
}

/// Praat's "PointProcess: Get jitter (local)" over the whole train: mean absolute difference
/// of consecutive usable periods divided by the mean usable period. Praat's standard
/// arguments are `(0.0001, 0.02, 1.3)`. `None` where Praat reports undefined.
pub fn jitter_local(
    points: &[f64],
    shortest_period: f64,
    longest_period: f64,
    max_period_factor: f64,
) -> Option<f64> {
    perturbation::jitter_local(points, shortest_period, longest_period, max_period_factor)
}

/// Praat's "Sound & PointProcess: Get shimmer (local)" over the whole train: mean absolute
/// difference of consecutive period amplitudes divided by the mean amplitude, where a
/// period's amplitude is the Hann-windowed RMS around its pulse. Praat's standard arguments
/// are `(0.0001, 0.02, 1.3, 1.6)`. `None` where Praat reports undefined.
pub fn shimmer_local(
    samples: &[f32],
    sample_rate: u32,
    points: &[f64],
    shortest_period: f64,
    longest_period: f64,
    max_period_factor: f64,
    max_amplitude_factor: f64,
) -> Option<f64> {
    perturbation::shimmer_local(
        samples,
        sample_rate,
        points,
        shortest_period,
        longest_period,
        max_period_factor,
        max_amplitude_factor,
    )
}

/// Pitch contour plus the two perturbation measures the case study uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VoiceReport {
    /// The "To Pitch (ac)" contour.
    pub pitch: Pitch,
    /// Jitter (local) with Praat's standard arguments, `None` if undefined.
    pub jitter_local: Option<f64>,
    /// Shimmer (local) with Praat's standard arguments, `None` if undefined.
    pub shimmer_local: Option<f64>,
}

/// Pitch (ac) with default settings between `floor_hz` and `ceiling_hz`, pulses (periodic,
/// cc), then jitter and shimmer (local) with Praat's standard arguments. Errors as
/// [`pitch_ac`].
pub fn analyse_voice(
    samples: &[f32],
    sample_rate: u32,
    floor_hz: f64,
    ceiling_hz: f64,
) -> Result<VoiceReport> {
    let pitch = pitch_ac(samples, sample_rate, &PitchParams::with_range(floor_hz, ceiling_hz))?;
    let points = point_process_periodic_cc(samples, sample_rate, &pitch);
    let jitter = jitter_local(&points, 1e-4, 0.02, 1.3);
    let shimmer = shimmer_local(samples, sample_rate, &points, 1e-4, 0.02, 1.3, 1.6);
    Ok(VoiceReport { pitch, jitter_local: jitter, shimmer_local: shimmer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f64, sr: u32, secs: f64) -> Vec<f32> {
        let n = (f64::from(sr) * secs) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(sr);
                (0.5 * (2.0 * std::f64::consts::PI * f * t).sin()
                    + 0.2 * (4.0 * std::f64::consts::PI * f * t).sin()) as f32
            })
            .collect()
    }

    #[test]
    fn periodic_tone_is_voiced_at_its_f0() {
        let y = tone(150.0, 16_000, 1.0);
        let p =
            pitch_ac(&y, 16_000, &PitchParams::default()).unwrap_or_else(|e| panic!("pitch: {e}"));
        let voiced: Vec<f64> = p.f0_hz.iter().copied().filter(|&f| f > 0.0).collect();
        assert!(voiced.len() + 2 >= p.len(), "{voiced:?}");
        assert!(voiced.iter().all(|f| (f - 150.0).abs() < 0.5), "{voiced:?}");
        let r = analyse_voice(&y, 16_000, 50.0, 500.0).unwrap_or_else(|e| panic!("voice: {e}"));
        assert!(r.jitter_local.is_some_and(|j| j < 1e-3), "{:?}", r.jitter_local);
        assert!(r.shimmer_local.is_some_and(|s| s < 1e-2), "{:?}", r.shimmer_local);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(pitch_ac(&[], 16_000, &PitchParams::default()).is_err());
        assert!(pitch_ac(&[0.1; 100], 16_000, &PitchParams::default()).is_err());
        assert!(pitch_ac(&[0.1; 100], 0, &PitchParams::default()).is_err());
        assert!(pitch_ac(&[f32::NAN; 4000], 16_000, &PitchParams::default()).is_err());
        let z = pitch_ac(&[0.0; 16_000], 16_000, &PitchParams::default())
            .unwrap_or_else(|e| panic!("zeros: {e}"));
        assert!(z.f0_hz.iter().all(|&f| f == 0.0));
        let big: Vec<f32> = tone(200.0, 8_000, 0.5).iter().map(|v| v * f32::MAX).collect();
        let _ = analyse_voice(&big, 8_000, 50.0, 500.0);
        let r = analyse_voice(&[0.0; 16_000], 16_000, 50.0, 500.0)
            .unwrap_or_else(|e| panic!("zeros: {e}"));
        assert_eq!((r.jitter_local, r.shimmer_local), (None, None));
        assert_eq!(jitter_local(&[], 1e-4, 0.02, 1.3), None);
        assert_eq!(shimmer_local(&[], 16_000, &[0.1, 0.2, 0.3], 1e-4, 0.02, 1.3, 1.6), None);
        assert!(pitch_ac(&[0.1; 16_000], 100, &PitchParams::default()).is_err());
    }

    #[test]
    fn arbitrary_lengths_rates_and_settings_never_panic() {
        let mut seed = 12345u32;
        let mut noise = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let accurate = PitchParams { very_accurate: true, ..PitchParams::default() };
        for &sr in &[1u32, 200, 8_000, 48_000] {
            for &n in &[0usize, 1, 2, 100, 479, 480, 481, 2_879, 2_880, 2_881, 9_000] {
                let sigs: [Vec<f32>; 3] = [
                    vec![0.0; n],
                    (0..n).map(|_| noise()).collect(),
                    (0..n).map(|i| if i % 97 == 0 { 1e30 } else { 0.0 }).collect(),
                ];
                for y in &sigs {
                    let _ = analyse_voice(y, sr, 50.0, 500.0);
                    let _ = pitch_ac(y, sr, &accurate);
                    let _ = analyse_voice(y, sr, 75.0, 600.0);
                }
            }
        }
    }
}
