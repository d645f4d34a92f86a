//! `prosodia-train`: train and evaluate Prosodia's emotion models from the command line.
//!
//! ```text
//! prosodia-train train --tess DIR --ravdess DIR [--crema DIR] [--manifest CSV] \
//!     --split random|speaker [--folds K] --seed N --out models/<name>/<version>
//! prosodia-train eval --model DIR (--tess DIR | --ravdess DIR | ...) --report-json FILE
//! prosodia-train export --model DIR
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use prosodia_dsp::FeatureConfig;
use prosodia_trainer::dataset::Sources;
use prosodia_trainer::features::default_cache_root;
use prosodia_trainer::labels::{Extra, LabelMap};
use prosodia_trainer::model::Arch;
use prosodia_trainer::run::{self, SplitKind, TrainOptions};
use prosodia_trainer::split::FoldValidation;
use prosodia_trainer::train::TrainConfig;

#[derive(Parser)]
#[command(
    name = "prosodia-train",
    version,
    about = "Train and evaluate Prosodia's speech-emotion models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model and write models/NAME/VERSION.
    Train(TrainArgs),
    /// Evaluate a trained model on a set of clips.
    Eval(EvalArgs),
    /// Time training steps on random batches (seconds per batch).
    Bench(BenchArgs),
    /// Rewrite a trained model's model.onnx from its saved weights (after an exporter change).
    Export(ExportArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// Model directory written by `train`; its model.onnx is replaced.
    #[arg(long)]
    model: PathBuf,
}

#[derive(Args)]
struct BenchArgs {
    /// Model architecture.
    #[arg(long, value_enum, default_value = "cnn-lstm")]
    arch: ArchArg,
    /// Clips per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Frames per clip.
    #[arg(long, default_value_t = 200)]
    frames: usize,
    /// Columns per frame.
    #[arg(long, default_value_t = 40)]
    width: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 10)]
    steps: usize,
}

/// Where the clips are, and how their labels map onto the six classes.
#[derive(Args)]
struct SourceArgs {
    /// TESS root (`<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav`).
    #[arg(long)]
    tess: Option<PathBuf>,
    /// RAVDESS speech root (`Actor_NN/03-01-EE-II-SS-RR-AA.wav`).
    #[arg(long)]
    ravdess: Option<PathBuf>,
    /// CREMA-D root or its `AudioWAV` folder.
    #[arg(long)]
    crema: Option<PathBuf>,
    /// CSV manifest(s) of `path,label[,speaker]` (repeatable).
    #[arg(long)]
    manifest: Vec<PathBuf>,
    /// RAVDESS "calm": `drop` or a class name.
    #[arg(long, default_value = "drop")]
    calm: String,
    /// RAVDESS "surprised": `drop` or a class name.
    #[arg(long, default_value = "drop")]
    surprise: String,
    /// TESS "pleasant surprise": `drop` or a class name.
    #[arg(long, default_value = "drop")]
    pleasant_surprise: String,
    /// Feature-cache root (default: $PROSODIA_CACHE or ~/.cache/prosodia/features).
    #[arg(long)]
    cache: Option<PathBuf>,
}

impl SourceArgs {
    fn sources(&self) -> anyhow::Result<Sources> {
        let s = Sources {
            tess: self.tess.clone(),
            ravdess: self.ravdess.clone(),
            crema: self.crema.clone(),
            manifests: self.manifest.clone(),
        };
        if s.tess.is_none() && s.ravdess.is_none() && s.crema.is_none() && s.manifests.is_empty() {
            bail!("name at least one source: --tess, --ravdess, --crema or --manifest");
        }
        Ok(s)
    }

    fn label_map(&self) -> anyhow::Result<LabelMap> {
        Ok(LabelMap {
            calm: self.calm.parse::<Extra>().context("--calm")?,
            surprise: self.surprise.parse::<Extra>().context("--surprise")?,
            pleasant_surprise: self
                .pleasant_surprise
                .parse::<Extra>()
                .context("--pleasant-surprise")?,
        })
    }

    fn cache_root(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(default_cache_root)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Random,
    Speaker,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArchArg {
    CnnLstm,
    Mlp,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// How to split into train / validation / test.
    #[arg(long, value_enum, default_value = "speaker")]
    split: SplitArg,
    /// K-fold cross-validation by speaker (with --split speaker).
    #[arg(long)]
    folds: Option<usize>,
    /// With --folds: the share of the speakers outside each test fold that validates (early
    /// stopping), the rest training; `next` validates with the next fold instead, training on
    /// k - 2 folds (the protocol before this option).
    #[arg(long, default_value = "0.15", value_parser = parse_fold_validation)]
    fold_validation: FoldValidation,
    /// Seed for the split, initialisation, dropout and batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory, models/NAME/VERSION.
    #[arg(long)]
    out: PathBuf,
    /// Model architecture.
    #[arg(long, value_enum, default_value = "cnn-lstm")]
    arch: ArchArg,
    /// Feature preset (`seed`, `speech`) or a features TOML file. `seed` (the case study's
    /// MFCC + delta + energy + spectral frames) measured better than `speech` (40 log-mels)
    /// in speaker-split runs on RAVDESS; see the README.
    #[arg(long, default_value = "seed")]
    features: String,
    /// Most epochs.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Early-stopping patience in epochs.
    #[arg(long, default_value_t = 8)]
    patience: usize,
    /// Stop after this many optimiser steps (smoke tests).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Skip writing model.onnx.
    #[arg(long)]
    no_onnx: bool,
    /// Mask a random span of frames and of feature columns in each training clip
    /// (SpecAugment; CNN–LSTM only).
    #[arg(long)]
    spec_augment: bool,
    /// Halve the learning rate after this many epochs without a validation improvement.
    #[arg(long)]
    lr_plateau: Option<usize>,
    /// Normalise each clip's features by statistics of the other half of its speaker's clips
    /// (speaker adaptation from unlabelled speech; needs --split speaker and --no-onnx, since
    /// the server does not normalise by speaker).
    #[arg(long)]
    speaker_norm: bool,
    /// MLP only: add per-column statistics of the frame matrix (mean, std, 10/50/90th
    /// percentile, range, mean absolute change) to the 46 utterance features.
    #[arg(long)]
    frame_stats: bool,
    /// Weight the training loss by class so every class counts alike (scikit-learn's
    /// "balanced" weights); validation loss stays unweighted.
    #[arg(long)]
    class_balance: bool,
    /// Add a speed-perturbed copy of every training clip per factor, e.g. `0.9,1.1` (pitch,
    /// formants and duration scale together; features of the copies are cached too).
    #[arg(long, value_delimiter = ',')]
    speed_perturb: Vec<f64>,
}

#[derive(Args)]
struct EvalArgs {
    /// Model directory written by `train`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    sources: SourceArgs,
    /// Where to write the JSON report.
    #[arg(long)]
    report_json: PathBuf,
    /// Where to write a Markdown report too.
    #[arg(long)]
    report_md: Option<PathBuf>,
}

fn feature_config(spec: &str) -> anyhow::Result<FeatureConfig> {
    if let Some(c) = FeatureConfig::preset(spec) {
        return Ok(c);
    }
    let text = std::fs::read_to_string(spec).with_context(|| {
        format!("--features {spec}: not a preset (speech, seed) nor a readable file")
    })?;
    FeatureConfig::from_toml(&text).with_context(|| format!("--features {spec}"))
}

fn parse_fold_validation(s: &str) -> Result<FoldValidation, String> {
    if s == "next" {
        return Ok(FoldValidation::NextFold);
    }
    match s.parse::<f64>() {
        Ok(share) if share > 0.0 && share < 1.0 => Ok(FoldValidation::Share(share)),
        _ => Err(format!("expected `next` or a share between 0 and 1, got `{s}`")),
    }
}

fn log(line: &str) {
    eprintln!("{line}");
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let opts = TrainOptions {
        sources: args.sources.sources()?,
        label_map: args.sources.label_map()?,
        features: feature_config(&args.features)?,
        cache_root: args.sources.cache_root(),
        split: match args.split {
            SplitArg::Random => SplitKind::Random,
            SplitArg::Speaker => SplitKind::Speaker,
        },
        folds: args.folds,
        fold_validation: args.fold_validation,
        train: TrainConfig {
            arch: match args.arch {
                ArchArg::CnnLstm => Arch::CnnLstm,
                ArchArg::Mlp => Arch::Mlp,
            },
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.learning_rate,
            patience: args.patience,
            seed: args.seed,
            max_steps: args.max_steps,
            spec_augment: args.spec_augment,
            lr_plateau: args.lr_plateau,
            speaker_norm: args.speaker_norm,
            frame_stats: args.frame_stats,
            class_balance: args.class_balance,
            speed_perturb: args.speed_perturb,
        },
        out: args.out,
        export_onnx: !args.no_onnx,
    };
    let outcome = run::train(&opts, &mut |l| log(l))?;
    for dir in &outcome.model_dirs {
        log(&format!("wrote {}", dir.display()));
    }
    println!(
        "accuracy {:.4}  macro F1 {:.4}  ({} clips scored)",
        outcome.report.accuracy, outcome.report.macro_f1, outcome.report.n
    );
    Ok(())
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let report = run::evaluate(
        &args.model,
        &args.sources.sources()?,
        &args.sources.label_map()?,
        &args.sources.cache_root(),
        &mut |l| log(l),
    )?;
    report.write(
        &args.report_json,
        args.report_md.as_deref(),
        &format!("evaluation of {}", args.model.display()),
    )?;
    println!(
        "accuracy {:.4}  macro F1 {:.4}  ({} clips)",
        report.accuracy, report.macro_f1, report.n
    );
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let arch = match args.arch {
        ArchArg::CnnLstm => Arch::CnnLstm,
        ArchArg::Mlp => Arch::Mlp,
    };
    let secs = prosodia_trainer::train::benchmark_step(
        arch,
        args.batch,
        args.frames,
        args.width,
        args.steps,
    )?;
    println!(
        "{}: {secs:.4} s per batch of {}x{}x{} (forward, backward, Adam; {} threads)",
        arch.name(),
        args.batch,
        args.frames,
        args.width,
        rayon::current_num_threads()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Eval(a) => eval(a),
        Command::Bench(a) => bench(a),
        Command::Export(a) => {
            prosodia_trainer::export::reexport(&a.model).map_err(anyhow::Error::from).map(|()| {
                println!("wrote {}", a.model.join("model.onnx").display());
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
