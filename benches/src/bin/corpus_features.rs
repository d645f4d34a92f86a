//! Corpus feature-extraction benchmark: Prosodia's seed preset (decode, mono, resample to
//! 48 kHz, peak-normalise, trim at -40 dB, the 46 utterance features) over whole corpora,
//! single-threaded and on all cores, against the Python baseline
//! `shared/bench/seed_features.py` run on the same files in the same run; then cost against
//! audio length on one clip repeated 1–16 times, per second of analysed (trimmed) audio.
//!
//! ```text
//! cargo run --release -p prosodia-benches --bin corpus_features -- \
//!     --python .venv/bin/python DIR...
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use prosodia_dsp::Audio;
use prosodia_dsp::FeatureConfig;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::pipeline::Extractor;
use rayon::prelude::*;

#[derive(Debug, Parser)]
struct Args {
    /// Python interpreter with librosa and praat-parselmouth; omit to skip the baseline.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The baseline script.
    #[arg(long, default_value = "../shared/bench/seed_features.py")]
    script: PathBuf,
    /// Run the baseline on every K-th file only (1 = all files).
    #[arg(long, default_value_t = 1)]
    python_stride: usize,
    /// Corpus folders (searched recursively for .wav).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

fn extract_all(files: &[(PathBuf, Vec<u8>)], extractor: &mut Extractor) -> anyhow::Result<f64> {
    let mut audio_secs = 0.0;
    for (path, bytes) in files {
        let audio =
            decode(bytes, &DecodeLimits::default()).with_context(|| path.display().to_string())?;
        audio_secs += audio.duration_secs();
        let f = extractor.analyze_owned(audio).with_context(|| path.display().to_string())?;
        std::hint::black_box(f.utterance);
    }
    Ok(audio_secs)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let paths = prosodia_benches::wav_files(&args.dirs);
    if paths.is_empty() {
        bail!("no .wav files under {:?}", args.dirs);
    }
    // Files are read into memory first: the benchmark measures computation, not the disk.
    let files: Vec<(PathBuf, Vec<u8>)> =
        paths.iter().map(|p| Ok((p.clone(), std::fs::read(p)?))).collect::<anyhow::Result<_>>()?;
    let config = FeatureConfig::seed();
    println!(
        "{} files; config `seed` (48 kHz, n_fft 2048, hop 512, trim 40 dB, 46 features)",
        files.len()
    );

    let mut ex = Extractor::new(config.clone())?;
    let t = Instant::now();
    let audio_secs = extract_all(&files, &mut ex)?;
    let single = t.elapsed().as_secs_f64();
    let single_rate = files.len() as f64 / single;
    println!(
        "prosodia, 1 thread:  {:.2} s, {:.1} files/s, {:.0}x real time ({:.0} s of audio)",
        single,
        single_rate,
        audio_secs / single,
        audio_secs
    );

    let threads = rayon::current_num_threads();
    let t = Instant::now();
    files.par_iter().try_for_each_init(
        || Extractor::new(config.clone()),
        |ex, (path, bytes)| -> anyhow::Result<()> {
            let ex = ex.as_mut().map_err(|e| anyhow::anyhow!("{e}"))?;
            let audio = decode(bytes, &DecodeLimits::default())
                .with_context(|| path.display().to_string())?;
            std::hint::black_box(ex.analyze_owned(audio)?.utterance);
            Ok(())
        },
    )?;
    let parallel = t.elapsed().as_secs_f64();
    println!(
        "prosodia, {threads} threads: {:.2} s, {:.1} files/s ({:.2}x the single thread)",
        parallel,
        files.len() as f64 / parallel,
        single / parallel
    );

    if let Some(python) = &args.python {
        let subset: Vec<&PathBuf> = paths.iter().step_by(args.python_stride.max(1)).collect();
        let out = std::env::temp_dir().join("prosodia-seed-baseline.csv");
        let t = Instant::now();
        let status = Command::new(python)
            .arg(&args.script)
            .arg(&out)
            .args(&subset)
            // One core, as the per-core comparison needs; librosa's FFTs otherwise may thread.
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .env("NUMBA_NUM_THREADS", "1")
            .status()
            .with_context(|| format!("running {}", python.display()))?;
        let py = t.elapsed().as_secs_f64();
        if !status.success() {
            bail!("baseline failed: {status}");
        }
        let py_rate = subset.len() as f64 / py;
        println!(
            "python baseline, 1 process: {} files in {:.1} s (wall, incl. interpreter start), {:.2} files/s",
            subset.len(),
            py,
            py_rate
        );
        println!(
            "ratio per core: {:.1}x ; all {threads} cores vs the baseline: {:.1}x",
            single_rate / py_rate,
            (files.len() as f64 / parallel) / py_rate
        );
    }

    // Linearity: one clip repeated k times. Trimming removes only the silence at the two
    // ends of the repeated clip, so a short clip loses a large share of its length and a long
    // one almost none: cost per second of *analysed* (trimmed) audio is the figure that
    // should stay flat; cost per second of input is shown beside it.
    let (_, bytes) = &files[0];
    let base = decode(bytes, &DecodeLimits::default())?;
    println!("cost against length (clip {} repeated):", files[0].0.display());
    for k in [1usize, 2, 4, 8, 16] {
        let channels = base.channels.iter().map(|c| c.repeat(k)).collect();
        let audio = Audio { sample_rate: base.sample_rate, channels };
        let (trimmed, rate) = ex.preprocess(&audio)?;
        let analysed = trimmed.len() as f64 / f64::from(rate);
        let reps = (16 / k).max(1);
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(ex.analyze(&audio)?.utterance);
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!(
            "  {:>5.1} s of audio, {:>5.1} s after trimming: {:>7.2} ms, {:.3} ms per analysed second ({:.3} per input second)",
            audio.duration_secs(),
            analysed,
            ms,
            ms / analysed,
            ms / audio.duration_secs()
        );
    }
    Ok(())
}
