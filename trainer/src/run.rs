//! The two commands as library calls: train (scan → features → split → standardise → fit →
//! evaluate → save) and evaluate a saved model on new clips.

use std::path::{Path, PathBuf};

use prosodia_dsp::FeatureConfig;
use serde::{Deserialize, Serialize};

use crate::artifact::{self, InputSpec, ModelMeta, TrainingInfo, files};
use crate::corpus::Clip;
use crate::dataset::{Dataset, Sources};
use crate::error::{Error, ErrorKind, Result};
use crate::eval::Report;
use crate::features::FeatureCache;
use crate::labels::LabelMap;
use crate::model::Arch;
use crate::model::cnn_lstm::MIN_FRAMES;
use crate::split::{self, FoldValidation, Fractions, Split};
use crate::train::{self, EpochLog, Examples, TrainConfig};

/// How to split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Stratified random 70/15/15.
    Random,
    /// By speaker (70/15/15 of each corpus's clips, no speaker shared).
    Speaker,
}

/// Everything `train` needs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Where the clips are.
    pub sources: Sources,
    /// Label mapping.
    pub label_map: LabelMap,
    /// Feature pipeline.
    pub features: FeatureConfig,
    /// Feature-cache root.
    pub cache_root: PathBuf,
    /// Split kind.
    pub split: SplitKind,
    /// K-fold by speaker instead of one split (requires `split = Speaker`).
    pub folds: Option<usize>,
    /// Where each fold's validation speakers come from.
    pub fold_validation: FoldValidation,
    /// Hyper-parameters (its seed also seeds the split).
    pub train: TrainConfig,
    /// Output directory, `models/<name>/<version>`.
    pub out: PathBuf,
    /// Also write `model.onnx`.
    pub export_onnx: bool,
}

/// The outcome of a training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The test-set report (pooled over folds for k-fold).
    pub report: Report,
    /// Directories written (one, or one per fold).
    pub model_dirs: Vec<PathBuf>,
    /// Clips that could not be used, with reasons.
    pub skipped: Vec<(PathBuf, String)>,
}

fn name_and_version(out: &Path) -> (String, String) {
    let part = |p: Option<&Path>| {
        p.and_then(Path::file_name).and_then(|s| s.to_str()).unwrap_or("model").to_string()
    };
    (part(out.parent()), part(Some(out)))
}

fn groups(clips: &[Clip], indices: &[usize]) -> (Vec<String>, Vec<String>) {
    indices.iter().map(|&i| (clips[i].corpus.name().to_string(), clips[i].speaker.clone())).unzip()
}

/// Scores `probs` against `examples` for the clips at `indices`.
fn report_for(
    clips: &[Clip],
    indices: &[usize],
    examples: &Examples,
    probs: &[[f32; 6]],
) -> Result<Report> {
    let pred: Vec<usize> = probs.iter().map(|p| train::argmax(p)).collect();
    let (corpus, speaker) = groups(clips, indices);
    Report::compute(&examples.labels, &pred, &corpus, &speaker)
}

struct FoldResult {
    dir: PathBuf,
    report: Report,
    truth: Vec<usize>,
    pred: Vec<usize>,
    test: Vec<usize>,
}

/// The clips of `copy` that are the clips of `ds` at `indices` (a perturbed copy lacks the
/// clips whose perturbed extraction failed).
fn same_clips(ds: &Dataset, copy: &Dataset, indices: &[usize]) -> Vec<usize> {
    let position: std::collections::HashMap<&Path, usize> =
        copy.clips.iter().enumerate().map(|(i, c)| (c.path.as_path(), i)).collect();
    indices.iter().filter_map(|&i| position.get(ds.clips[i].path.as_path()).copied()).collect()
}

fn train_split(
    ds: &Dataset,
    copies: &[Dataset],
    split: &Split,
    label: &str,
    opts: &TrainOptions,
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<FoldResult> {
    let arch = opts.train.arch;
    if split.train.is_empty() {
        return Err(Error::new(ErrorKind::Split, format!("{label}: the training part is empty")));
    }
    let scaler = ds.fit_standardizer(&split.train, arch)?;
    let mut train_ex = ds.examples(&split.train, arch, &scaler)?;
    for copy in copies {
        train_ex.extend(copy.examples(&same_clips(ds, copy, &split.train), arch, &scaler)?);
    }
    let val_ex = ds.examples(&split.val, arch, &scaler)?;
    let test_ex = ds.examples(&split.test, arch, &scaler)?;
    log(&format!(
        "{label}: {} train / {} val / {} test clips, {} {} columns",
        train_ex.len(),
        val_ex.len(),
        test_ex.len(),
        train_ex.width,
        if arch == Arch::Mlp { "utterance" } else { "frame" }
    ));
    let trained = train::fit(&train_ex, &val_ex, &opts.train, |e: &EpochLog| {
        log(&format!(
            "{label} epoch {:>2}: train loss {:.4}, val loss {}, val acc {}, {:.3} s/batch",
            e.epoch,
            e.train_loss,
            e.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            e.val_accuracy.map_or("-".into(), |v| format!("{v:.4}")),
            e.seconds_per_batch
        ));
    })?;
    let device = burn::prelude::Device::flex();
    let scored = if test_ex.is_empty() { &val_ex } else { &test_ex };
    let scored_idx = if test_ex.is_empty() { &split.val } else { &split.test };
    if scored.is_empty() {
        return Err(Error::new(
            ErrorKind::Split,
            "nothing to evaluate: validation and test parts are empty",
        ));
    }
    let probs = train::predict(&trained.net, scored, 64, &device)?;
    let mut report = report_for(&ds.clips, scored_idx, scored, &probs)?;
    let (name, mut version) = name_and_version(&opts.out);
    if dir != opts.out {
        // A fold of a cross-validation run: models/<name>/<version>/fold-<i>.
        let (_, fold) = name_and_version(dir);
        version = format!("{version}/{fold}");
    }
    let meta = ModelMeta {
        format: artifact::MODEL_FORMAT,
        name,
        version,
        arch,
        labels: ModelMeta::default_labels(),
        backend: "tract".into(),
        extractor: "cpu".into(),
        onnx: None,
        weights: files::WEIGHTS.into(),
        features: files::FEATURES_TOML.into(),
        input: InputSpec {
            kind: if arch == Arch::Mlp { "utterance".into() } else { "frames".into() },
            width: train_ex.width,
            min_frames: if arch == Arch::Mlp { 1 } else { MIN_FRAMES },
        },
        standardization: scaler,
        description: format!(
            "{} on {} features{}, {label} split, seed {}",
            arch.name(),
            opts.features.name,
            if opts.train.speaker_norm { " normalised per speaker" } else { "" },
            opts.train.seed
        ),
        streaming: artifact::Streaming::default(),
        evaluation: None,
        training: TrainingInfo {
            config: opts.train.clone(),
            split: label.to_string(),
            label_map: opts.label_map,
            sizes: [train_ex.len(), val_ex.len(), test_ex.len()],
            best_epoch: trained.best_epoch,
            seconds_per_batch: trained.seconds_per_batch,
            history: trained.history.clone(),
        },
    };
    let mut meta = meta;
    let corpora: std::collections::BTreeSet<&str> =
        scored_idx.iter().map(|&i| ds.clips[i].corpus.name()).collect();
    meta.evaluation = Some(artifact::Evaluation::from_report(
        &report,
        format!(
            "{} {label} split, {} part",
            corpora.into_iter().collect::<Vec<_>>().join(" + "),
            if test_ex.is_empty() { "validation" } else { "test" }
        ),
    ));
    if opts.export_onnx {
        crate::export::write_onnx(dir, &meta, &trained.net)?;
        meta.onnx = Some(files::ONNX.into());
    }
    artifact::save(dir, &meta, &opts.features, &trained.net)?;
    report.meta = serde_json::json!({
        "model": format!("{}/{}", meta.name, meta.version),
        "arch": arch.name(),
        "features": opts.features.name,
        "split": label,
        "scored_on": if test_ex.is_empty() { "validation" } else { "test" },
        "seed": opts.train.seed,
        "options": options_meta(&opts.train),
        "sizes": meta.training.sizes,
        "best_epoch": trained.best_epoch,
        "epochs_run": trained.history.len(),
        "seconds_per_batch": trained.seconds_per_batch,
    });
    report.write(
        &dir.join(files::REPORT_JSON),
        Some(&dir.join(files::REPORT_MD)),
        &format!("{} — {label}", arch.name()),
    )?;
    let pred = probs.iter().map(|p| train::argmax(p)).collect();
    Ok(FoldResult {
        dir: dir.to_path_buf(),
        report,
        truth: scored.labels.clone(),
        pred,
        test: scored_idx.clone(),
    })
}

/// The options beyond the case study's recipe, as reports record them.
fn options_meta(config: &TrainConfig) -> serde_json::Value {
    serde_json::json!({
        "frame_stats": config.frame_stats,
        "class_balance": config.class_balance,
        "speed_perturb": config.speed_perturb,
        "speaker_norm": config.speaker_norm,
    })
}

/// Applies the training configuration's feature options, in the same order for `train` and
/// `eval`: frame statistics first (from the raw frames), then speaker normalisation (of
/// everything, so it also normalises those statistics).
fn prepare(ds: Dataset, config: &TrainConfig, log: &mut dyn FnMut(&str)) -> Result<Dataset> {
    let ds = if config.frame_stats { ds.with_frame_statistics() } else { ds };
    if config.speaker_norm {
        log("normalising every clip by the other half of its speaker's clips (--speaker-norm)");
        crate::adapt::normalize_by_speaker(&ds)
    } else {
        Ok(ds)
    }
}

/// Loads the clips and features for `sources`.
pub fn load_dataset(
    sources: &Sources,
    map: &LabelMap,
    features: &FeatureConfig,
    cache_root: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<(Dataset, Vec<(PathBuf, String)>)> {
    let scan = sources.scan(map)?;
    log(&format!("{} clips ({} files skipped)", scan.clips.len(), scan.skipped.len()));
    let cache = FeatureCache::open(cache_root, features)?;
    log(&format!("feature cache: {}", cache.dir().display()));
    let ds = Dataset::load(scan.clips, &cache);
    let mut skipped = scan.skipped;
    for (p, e) in &ds.failed {
        log(&format!("skipping {}: {e}", p.display()));
        skipped.push((p.clone(), e.to_string()));
    }
    if ds.clips.is_empty() {
        return Err(Error::new(ErrorKind::Features, "feature extraction failed for every clip"));
    }
    Ok((ds, skipped))
}

/// Trains (one split, or k folds) and writes the model directory or directories.
pub fn train(opts: &TrainOptions, log: &mut dyn FnMut(&str)) -> Result<TrainOutcome> {
    if opts.train.speaker_norm {
        if opts.split != SplitKind::Speaker {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--speaker-norm needs --split speaker: under a random split a training clip \
                 would be normalised with test clips of its speaker",
            ));
        }
        if opts.export_onnx {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--speaker-norm needs --no-onnx: the server does not normalise by speaker, so \
                 the exported graph would see features it was not trained on",
            ));
        }
    }
    if opts.train.frame_stats && opts.train.arch != Arch::Mlp {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "--frame-stats is for --arch mlp: the CNN-LSTM reads the frames themselves",
        ));
    }
    // Opened first, so a bad speed is refused before any extraction.
    let speed_caches = (opts.train.speed_perturb.iter())
        .map(|&speed| FeatureCache::open_at_speed(&opts.cache_root, &opts.features, speed))
        .collect::<Result<Vec<_>>>()?;
    let (ds, skipped) =
        load_dataset(&opts.sources, &opts.label_map, &opts.features, &opts.cache_root, log)?;
    let ds = prepare(ds, &opts.train, log)?;
    let mut copies = Vec::new();
    for (speed, cache) in opts.train.speed_perturb.iter().zip(&speed_caches) {
        let copy = Dataset::load(ds.clips.clone(), cache);
        log(&format!(
            "speed {speed}: {} training copies ({} clips failed: {})",
            copy.clips.len(),
            copy.failed.len(),
            copy.failed.first().map_or(String::from("-"), |(p, e)| format!("{}: {e}", p.display()))
        ));
        copies.push(prepare(copy, &opts.train, log)?);
    }
    let seed = opts.train.seed;
    match opts.folds {
        None => {
            let (split, label) = match opts.split {
                SplitKind::Random => {
                    (split::random(&ds.clips, Fractions::default(), seed)?, "random")
                }
                SplitKind::Speaker => {
                    (split::by_speaker(&ds.clips, Fractions::default(), seed)?, "speaker")
                }
            };
            let r = train_split(&ds, &copies, &split, label, opts, &opts.out, log)?;
            Ok(TrainOutcome { report: r.report, model_dirs: vec![r.dir], skipped })
        }
        Some(k) => {
            if opts.split != SplitKind::Speaker {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "--folds needs --split speaker",
                ));
            }
            let folds = split::speaker_folds(&ds.clips, k, opts.fold_validation, seed)?;
            let (mut truth, mut pred, mut idx, mut dirs, mut per_fold) =
                (vec![], vec![], vec![], vec![], vec![]);
            for (i, split) in folds.iter().enumerate() {
                let label = format!("speaker fold {}/{k}", i + 1);
                let r = train_split(
                    &ds,
                    &copies,
                    split,
                    &label,
                    opts,
                    &opts.out.join(format!("fold-{}", i + 1)),
                    log,
                )?;
                per_fold.push(serde_json::json!({"fold": i + 1, "accuracy": r.report.accuracy, "macro_f1": r.report.macro_f1}));
                truth.extend(r.truth);
                pred.extend(r.pred);
                idx.extend(r.test);
                dirs.push(r.dir);
            }
            let (corpus, speaker) = groups(&ds.clips, &idx);
            let mut report = Report::compute(&truth, &pred, &corpus, &speaker)?;
            report.meta = serde_json::json!({"cross_validation": k, "fold_validation": opts.fold_validation.to_string(), "seed": seed, "options": options_meta(&opts.train), "arch": opts.train.arch.name(),
                "features": opts.features.name, "folds": per_fold});
            report.write(
                &opts.out.join(files::REPORT_JSON),
                Some(&opts.out.join(files::REPORT_MD)),
                &format!(
                    "{} — {k}-fold speaker cross-validation (pooled test folds)",
                    opts.train.arch.name()
                ),
            )?;
            Ok(TrainOutcome { report, model_dirs: dirs, skipped })
        }
    }
}

/// Evaluates the model in `model_dir` on every clip of `sources`.
pub fn evaluate(
    model_dir: &Path,
    sources: &Sources,
    map: &LabelMap,
    cache_root: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Report> {
    let saved = artifact::load(model_dir)?;
    let (ds, _) = load_dataset(sources, map, &saved.features, cache_root, log)?;
    let ds = prepare(ds, &saved.meta.training.config, log)?;
    let all: Vec<usize> = (0..ds.clips.len()).collect();
    let examples = ds.examples(&all, saved.meta.arch, &saved.meta.standardization)?;
    let probs = train::predict(&saved.net, &examples, 64, &burn::prelude::Device::flex())?;
    let mut report = report_for(&ds.clips, &all, &examples, &probs)?;
    report.meta = serde_json::json!({
        "model": format!("{}/{}", saved.meta.name, saved.meta.version),
        "arch": saved.meta.arch.name(),
        "features": saved.features.name,
    });
    Ok(report)
}
