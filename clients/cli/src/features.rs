//! `prosodia features`: decode, preprocess and analyse many files in parallel.
//!
//! With `--plot PNG` (one file) the frame features of that file are also drawn, as computed:
//! on the preprocessed (resampled, normalised, trimmed) signal, so the time axis is the
//! analysed signal's.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prosodia_dsp::config::{FeatureConfig, Normalize};
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::pipeline::{Analysis, Extractor};
use prosodia_dsp::utterance::NAMES;
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::plot::{self, FeaturesFigure, PlotSize};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per file and line.
    Jsonl,
    /// A header row, then one row per file (utterance features only).
    Csv,
}

/// Arguments of `prosodia features`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Feature configuration: a preset (`seed`, `speech`) or a TOML file.
    #[arg(long, default_value = "seed")]
    config: String,
    /// Resample to this rate in Hz, or `none` to analyse at each file's own rate.
    #[arg(long)]
    resample: Option<String>,
    /// Trim leading/trailing silence quieter than this many dB below the peak, or `none`.
    #[arg(long = "trim-db")]
    trim_db: Option<String>,
    /// Loudness normalisation: `peak` or `none`.
    #[arg(long)]
    normalize: Option<String>,
    /// Also write frame features (JSONL only).
    #[arg(long)]
    frames: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Output file (default: standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Only process shard I of N (`I/N`, 0-based) of the sorted file list, for batch jobs.
    #[arg(long)]
    shard: Option<String>,
    /// Also draw the file's frame features to this PNG; only with a single file.
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Size of the --plot figure in pixels.
    #[arg(long = "plot-size", value_name = "WxH", default_value = "1600x1200", requires = "plot")]
    plot_size: PlotSize,
    /// Files or folders (searched recursively for audio files).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

// Opus is listed so that a folder holding it reports "not supported" rather than skipping it.
const AUDIO_EXTENSIONS: [&str; 9] =
    ["wav", "flac", "mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac"];

fn resolve_config(args: &Args) -> anyhow::Result<FeatureConfig> {
    let mut config = match FeatureConfig::preset(&args.config) {
        Some(c) => c,
        None => {
            let text = std::fs::read_to_string(&args.config).with_context(|| {
                format!("--config {}: not a preset (seed, speech) nor a readable file", args.config)
            })?;
            FeatureConfig::from_toml(&text)?
        }
    };
    if let Some(r) = &args.resample {
        config.preprocess.resample_hz = match r.as_str() {
            "none" => None,
            hz => Some(
                hz.parse()
                    .with_context(|| format!("--resample {hz}: expected `none` or a rate in Hz"))?,
            ),
        };
    }
    if let Some(t) = &args.trim_db {
        config.preprocess.trim_top_db = match t.as_str() {
            "none" => None,
            db => {
                Some(db.parse().with_context(|| format!("--trim-db {db}: expected `none` or dB"))?)
            }
        };
    }
    if let Some(n) = &args.normalize {
        config.preprocess.normalize = match n.as_str() {
            "peak" => Normalize::Peak,
            "none" => Normalize::None,
            other => bail!("--normalize {other}: expected `peak` or `none`"),
        };
    }
    config.validate()?;
    Ok(config)
}

fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let (i, n) = s.split_once('/').with_context(|| format!("--shard {s}: expected I/N"))?;
    let number = |t: &str| {
        t.parse::<usize>().with_context(|| format!("--shard {s}: {t:?} is not a whole number"))
    };
    let (i, n) = (number(i)?, number(n)?);
    if n == 0 || i >= n {
        bail!("--shard {s}: need 0 <= I < N");
    }
    Ok((i, n))
}

/// Expands files and folders into a sorted list of audio files.
pub(crate) fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in walkdir::WalkDir::new(p).follow_links(true) {
                let entry = entry.with_context(|| format!("walking {}", p.display()))?;
                let ext =
                    entry.path().extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                if entry.file_type().is_file()
                    && ext.is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.as_str()))
                {
                    files.push(entry.into_path());
                }
            }
        } else {
            // Named files are taken as given, whatever their extension: the decoder sniffs.
            files.push(p.clone());
        }
    }
    files.sort();
    Ok(files)
}

fn analyse_file(extractor: &mut Extractor, path: &Path) -> anyhow::Result<Analysis> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let audio = decode(&bytes, &DecodeLimits::default())?;
    Ok(extractor.analyze_owned(audio)?)
}

fn json_line(
    path: &Path,
    result: &anyhow::Result<Analysis>,
    extractor: &Extractor,
    frames: bool,
) -> Value {
    let path = path.display().to_string();
    match result {
        Err(e) => json!({ "path": path, "error": format!("{e:#}") }),
        Ok(a) => {
            let mut features = Map::new();
            for (name, value) in a.utterance.iter() {
                features.insert(name.to_string(), json!(value));
            }
            let mut obj =
                json!({ "path": path, "sample_rate": a.sample_rate, "features": features });
            if frames {
                let s = &a.spectral;
                let f0: Vec<f64> = a.voice.pitch.f0_hz.clone();
                obj["frames"] = json!({
                    "logmel_db": s.logmel_db.to_rows(),
                    "mfcc": s.mfcc.to_rows(),
                    "rms": s.rms,
                    "zcr": s.zcr,
                    "spectral_centroid": s.centroid,
                    "spectral_rolloff": s.rolloff,
                    "onset_strength": s.onset_strength,
                    "f0_hz": f0,
                    "f0_time_step_s": a.voice.pitch.time_step,
                    "f0_first_time_s": a.voice.pitch.first_frame_time,
                    "model_input_columns": extractor.config().frame_column_names(),
                });
            }
            obj
        }
    }
}

fn csv_header() -> String {
    // `sample_rate` is one of the 46 features, so it needs no column of its own.
    let mut h = String::from("path");
    for n in NAMES {
        h.push(',');
        h.push_str(n);
    }
    h.push_str(",error");
    h
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(path: &Path, result: &anyhow::Result<Analysis>) -> String {
    let mut line = csv_escape(&path.display().to_string());
    match result {
        Ok(a) => {
            for v in a.utterance.values {
                line.push_str(&format!(",{v}"));
            }
            line.push(',');
        }
        Err(e) => {
            line.push_str(&",".repeat(NAMES.len() + 1));
            line.push_str(&csv_escape(&format!("{e:#}")));
        }
    }
    line
}

/// Runs the subcommand; the exit code is 1 when any file failed.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = resolve_config(&args)?;
    if args.frames && args.format == Format::Csv {
        bail!("--frames needs --format jsonl: frame matrices do not fit in CSV rows");
    }
    let mut files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no audio files found under the given paths");
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if let Some((i, n)) = shard {
        files = files.into_iter().enumerate().filter(|(k, _)| k % n == i).map(|(_, f)| f).collect();
    }
    if args.plot.is_some() && files.len() != 1 {
        bail!(
            "--plot draws one file: the paths name {} audio files; give exactly one",
            files.len()
        );
    }
    // Validate once up front so a bad configuration fails before any work.
    let probe = Extractor::new(config.clone())?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    if args.format == Format::Csv {
        writeln!(out, "{}", csv_header())?;
    }
    if files.is_empty() {
        // More shards than files: this shard's share is empty, which is not a failure (an
        // indexed batch job with a fixed shard count must not fail on a small corpus).
        eprintln!("prosodia features: shard {} has no files", args.shard.as_deref().unwrap_or(""));
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let bar = ProgressBar::new(files.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut failed = 0usize;
    // Chunks keep output in input order and memory bounded while all cores work.
    for chunk in files.chunks(256) {
        let results: Vec<anyhow::Result<Analysis>> = chunk
            .par_iter()
            .map_init(
                || Extractor::new(config.clone()),
                |ex, path| {
                    let r = match ex {
                        Ok(ex) => analyse_file(ex, path),
                        Err(e) => Err(anyhow::anyhow!("{e}")),
                    };
                    bar.inc(1);
                    r
                },
            )
            .collect();
        for (path, result) in chunk.iter().zip(&results) {
            failed += usize::from(result.is_err());
            match args.format {
                Format::Jsonl => writeln!(out, "{}", json_line(path, result, &probe, args.frames))?,
                Format::Csv => writeln!(out, "{}", csv_line(path, result))?,
            }
            if let Some(png_path) = &args.plot {
                match result {
                    Ok(analysis) => {
                        let figure = FeaturesFigure {
                            name: plot::display_name(path),
                            analysis,
                            config: probe.config(),
                        };
                        plot::write_png(png_path, &plot::features_png(&figure, args.plot_size)?)?;
                    }
                    Err(e) => eprintln!("prosodia: no plot written: {e:#}"),
                }
            }
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    if failed > 0 {
        eprintln!(
            "prosodia: {failed} of {} files failed (see their \"error\" entries)",
            files.len()
        );
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
