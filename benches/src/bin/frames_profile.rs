//! Per-stage time of the model-input path (what the server runs for every `Classify` and
//! every stream window): decode, preprocessing, then each piece of the frame features, one
//! clip analysed many times on one thread; with `--model`, also the model call on those frames
//! (the tract backend, as the server runs it). Used to decide what to optimise in the serving
//! path; `stage_profile` does the same for the 46 utterance features.
//!
//! ```text
//! cargo run --release -p prosodia-benches --bin frames_profile -- [--iterations N] \
//!     [--config seed|speech] [--model models/seed-cnn-lstm/1/model.onnx] FILE
//! ```

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use prosodia_backend_tract::TractBackend;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::framing::{rms_into, zero_crossing_rate_into};
use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::preprocess::Preprocessor;
use prosodia_dsp::spectral::{
    DEFAULT_AMIN, DEFAULT_TOP_DB, DbReference, MelFilterbank, Mfcc, Stft, delta_into,
    onset_strength_from_db_into, power_to_db, spectral_centroid_into,
};
use prosodia_dsp::{FeatureConfig, Matrix};

#[derive(Debug, Parser)]
struct Args {
    /// Times the clip is analysed.
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Feature preset.
    #[arg(long, default_value = "seed")]
    config: String,
    /// Also time this model (an ONNX file taking the preset's frames) on the clip's frames.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The clip.
    file: PathBuf,
}

const STAGES: [&str; 11] = [
    "decode",
    "preprocess",
    "stft power",
    "mel",
    "power_to_db",
    "mfcc",
    "delta",
    "rms",
    "zcr",
    "centroid+rolloff",
    "onset strength",
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = match args.config.as_str() {
        "speech" => FeatureConfig::speech(),
        _ => FeatureConfig::seed(),
    };
    let bytes = std::fs::read(&args.file)?;
    let mut pre = Preprocessor::from_config(&config);
    let (y0, sr) = pre.run(&decode(&bytes, &DecodeLimits::default())?)?;
    let s = &config.stft;
    let stft = Stft::from_config(s)?;
    let mel = MelFilterbank::new(f64::from(sr), s.n_fft, config.mel.n_mels, 0.0, None)?;
    let mfcc = Mfcc::new(config.mel.n_mels, config.mel.n_mfcc)?;
    let (mut power, mut logmel, mut cep, mut d) =
        (Matrix::default(), Matrix::default(), Matrix::default(), Matrix::default());
    let (mut rms, mut zcr, mut centroid, mut onset) = (vec![], vec![], vec![], vec![]);
    let mut totals = [0.0f64; STAGES.len()];
    for _ in 0..args.iterations {
        let mut lap = Instant::now();
        let mut tick = |i: usize, totals: &mut [f64; STAGES.len()]| {
            let now = Instant::now();
            totals[i] += (now - lap).as_secs_f64();
            lap = now;
        };
        let audio = decode(&bytes, &DecodeLimits::default())?;
        tick(0, &mut totals);
        let (y, _) = pre.run(&audio)?;
        tick(1, &mut totals);
        stft.power_into(&y, &mut power);
        tick(2, &mut totals);
        mel.apply_into(&power, &mut logmel)?;
        tick(3, &mut totals);
        power_to_db(&mut logmel, DbReference::Value(1.0), DEFAULT_AMIN, Some(DEFAULT_TOP_DB));
        tick(4, &mut totals);
        mfcc.mfcc_into(&logmel, &mut cep)?;
        tick(5, &mut totals);
        delta_into(&cep, config.mel.delta_width, 1, &mut d)?;
        tick(6, &mut totals);
        rms_into(&y, s.n_fft, s.hop_length, &mut rms);
        tick(7, &mut totals);
        zero_crossing_rate_into(&y, s.n_fft, s.hop_length, &mut zcr);
        tick(8, &mut totals);
        spectral_centroid_into(&power, f64::from(sr), s.n_fft, &mut centroid);
        tick(9, &mut totals);
        onset_strength_from_db_into(&logmel, s.n_fft, s.hop_length, &mut onset);
        tick(10, &mut totals);
        std::hint::black_box((&d, &rms, &zcr, &centroid, &onset));
    }
    let n = args.iterations as f64;
    let sum: f64 = totals.iter().sum();
    println!(
        "{}: {:.2} s at {sr} Hz after preprocessing, {} frames; {} preset",
        args.file.display(),
        y0.len() as f64 / f64::from(sr),
        power.rows,
        config.name
    );
    for (name, t) in STAGES.iter().zip(totals) {
        println!("  {name:<18} {:>7.3} ms {:>5.1} %", t * 1e3 / n, 100.0 * t / sum);
    }
    println!("  {:<18} {:>7.3} ms", "sum of stages", sum * 1e3 / n);

    // The same work as the server does it (decode and preprocess included).
    let mut extractor = Extractor::new(config)?;
    let t = Instant::now();
    for _ in 0..args.iterations {
        let audio = decode(&bytes, &DecodeLimits::default())?;
        let (y, sr) = extractor.preprocess_owned(audio)?;
        std::hint::black_box(extractor.frames(&y, sr)?);
    }
    println!("  {:<18} {:>7.3} ms", "Extractor::frames", t.elapsed().as_secs_f64() * 1e3 / n);

    if let Some(path) = &args.model {
        let frames = extractor.frames(&y0, sr)?;
        let model = TractBackend::load(path)?;
        let lengths = [frames.rows as i64];
        let run = || model.run(&frames.data, 1, frames.rows, frames.cols, &lengths);
        std::hint::black_box(run()?); // the first call sets up tract's scratch space
        let t = Instant::now();
        for _ in 0..args.iterations {
            std::hint::black_box(run()?);
        }
        println!(
            "  {:<18} {:>7.3} ms ({}, {} frames)",
            "model (tract)",
            t.elapsed().as_secs_f64() * 1e3 / n,
            path.display(),
            frames.rows
        );
    }
    Ok(())
}
