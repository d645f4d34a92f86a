//! Per-stage time of the seed preset over corpus files, single-threaded: where a file's
//! time goes (decode, mixdown, resampling, normalise + trim, spectral features, Praat pitch,
//! pulses, jitter + shimmer, the 46-feature summary). Used to decide what to optimise.
//!
//! ```text
//! cargo run --release -p prosodia-benches --bin stage_profile -- [--stride K] DIR...
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use prosodia_dsp::FeatureConfig;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::praat;
use prosodia_dsp::preprocess::{Resampler, mixdown, peak_normalize, trim_interval};
use prosodia_dsp::spectral::SpectralAnalyzer;
use prosodia_dsp::utterance;

#[derive(Debug, Parser)]
struct Args {
    /// Use every K-th file only.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// Corpus folders (searched recursively for .wav).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

const STAGES: [&str; 9] = [
    "decode",
    "mixdown",
    "resample",
    "normalise+trim",
    "spectral (stft..tempo)",
    "praat pitch",
    "pulses",
    "jitter+shimmer",
    "summary",
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let paths: Vec<PathBuf> =
        prosodia_benches::wav_files(&args.dirs).into_iter().step_by(args.stride.max(1)).collect();
    if paths.is_empty() {
        bail!("no .wav files under {:?}", args.dirs);
    }
    let files: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let config = FeatureConfig::seed();
    let sr = config.preprocess.resample_hz.unwrap_or(48_000);
    let mut analyzer = SpectralAnalyzer::new(sr, &config)?;
    let mut resamplers: std::collections::HashMap<u32, Resampler> = Default::default();
    let mut totals = [0.0f64; STAGES.len()];
    let mut audio_secs = 0.0;
    let t_all = Instant::now();
    for bytes in &files {
        let mut lap = Instant::now();
        let mut tick = |i: usize, totals: &mut [f64; STAGES.len()]| {
            let now = Instant::now();
            totals[i] += (now - lap).as_secs_f64();
            lap = now;
        };
        let audio = decode(bytes, &DecodeLimits::default())?;
        tick(0, &mut totals);
        let mut y = mixdown(&audio);
        tick(1, &mut totals);
        if audio.sample_rate != sr {
            let r = match resamplers.entry(audio.sample_rate) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Resampler::new(audio.sample_rate, sr)?)
                }
            };
            y = r.process(&y)?;
        }
        tick(2, &mut totals);
        peak_normalize(&mut y);
        let (a, b) = trim_interval(&y, 40.0, config.stft.n_fft, config.stft.hop_length);
        let y = y[a..b].to_vec();
        audio_secs += y.len() as f64 / f64::from(sr);
        tick(3, &mut totals);
        let spectral = analyzer.analyze(&y)?;
        tick(4, &mut totals);
        let pitch = praat::pitch_ac(
            &y,
            sr,
            &praat::PitchParams::with_range(config.pitch.floor_hz, config.pitch.ceiling_hz),
        )?;
        tick(5, &mut totals);
        let points = praat::point_process_periodic_cc(&y, sr, &pitch);
        tick(6, &mut totals);
        let jitter = praat::jitter_local(&points, 1e-4, 0.02, 1.3);
        let shimmer = praat::shimmer_local(&y, sr, &points, 1e-4, 0.02, 1.3, 1.6);
        tick(7, &mut totals);
        let u = utterance::summarize(&utterance::Inputs {
            signal: &y,
            sample_rate: sr,
            rms: &spectral.rms,
            zcr: &spectral.zcr,
            mfcc: &spectral.mfcc,
            centroid: &spectral.centroid,
            rolloff: &spectral.rolloff,
            onset_strength: &spectral.onset_strength,
            tempo_bpm: spectral.tempo_bpm,
            f0_hz: &pitch.f0_hz,
            jitter_local: jitter,
            shimmer_local: shimmer,
        });
        std::hint::black_box(u);
        tick(8, &mut totals);
    }
    let wall = t_all.elapsed().as_secs_f64();
    let n = files.len() as f64;
    println!(
        "{} files, {:.0} s of trimmed audio, {:.2} s: {:.1} files/s (1 thread)",
        files.len(),
        audio_secs,
        wall,
        n / wall
    );
    let sum: f64 = totals.iter().sum();
    for (name, t) in STAGES.iter().zip(totals) {
        println!("  {name:<24} {:>8.3} ms/file {:>5.1} %", t * 1e3 / n, 100.0 * t / sum);
    }
    Ok(())
}
