//! End-to-end smoke test on the shared fixtures: features through the cache, a few training
//! steps of each model (the loss must fall), the model directory, and `evaluate` on it.

use std::path::{Path, PathBuf};

use prosodia_dsp::FeatureConfig;
use prosodia_trainer::artifact::{self, files};
use prosodia_trainer::dataset::{Dataset, Sources};
use prosodia_trainer::features::FeatureCache;
use prosodia_trainer::labels::LabelMap;
use prosodia_trainer::model::Arch;
use prosodia_trainer::run::{self, SplitKind, TrainOptions};
use prosodia_trainer::split::{self, Fractions};
use prosodia_trainer::train::{self, TrainConfig};

fn fixtures() -> PathBuf {
    // The `shared/` folder beside the repository root (override with `PROSODIA_SHARED`).
    let shared = std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("fixtures")
}

fn sources() -> Sources {
    Sources {
        tess: Some(fixtures().join("tess")),
        ravdess: Some(fixtures().join("ravdess")),
        ..Sources::default()
    }
}

fn quick(arch: Arch, epochs: usize) -> TrainConfig {
    TrainConfig { arch, epochs, batch_size: 8, patience: epochs, seed: 1, ..TrainConfig::default() }
}

#[test]
fn cache_hits_on_the_second_read() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = FeatureCache::open(tmp.path(), &FeatureConfig::speech())?;
    let clip = fixtures().join("tess/OAF_back_angry.wav");
    let mut extractor = prosodia_trainer::features::extractor(&FeatureConfig::speech())?;
    let (first, hit) = cache.get_or_extract(&mut extractor, &clip)?;
    assert!(!hit);
    assert_eq!(first.cols, 40);
    assert!(first.rows > 50, "{} frames", first.rows);
    assert_eq!(first.utterance.len(), 46);
    let (second, hit) = cache.get_or_extract(&mut extractor, &clip)?;
    assert!(hit);
    assert_eq!(first, second);
    // Another configuration is another cache.
    let other = FeatureCache::open(tmp.path(), &FeatureConfig::seed())?;
    assert_ne!(other.dir(), cache.dir());
    Ok(())
}

#[test]
fn training_lowers_the_loss_for_both_models() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let scan = sources().scan(&LabelMap::default())?;
    let cache = FeatureCache::open(tmp.path(), &FeatureConfig::speech())?;
    let ds = Dataset::load(scan.clips, &cache);
    assert!(ds.failed.is_empty(), "{:?}", ds.failed);
    let split = split::random(&ds.clips, Fractions::default(), 3)?;
    for (arch, epochs) in [(Arch::CnnLstm, 20), (Arch::Mlp, 30)] {
        let scaler = ds.fit_standardizer(&split.train, arch)?;
        let tr = ds.examples(&split.train, arch, &scaler)?;
        let va = ds.examples(&split.val, arch, &scaler)?;
        let trained = train::fit(&tr, &va, &quick(arch, epochs), |_| {})?;
        let losses: Vec<f64> = trained.history.iter().map(|e| e.train_loss).collect();
        let first = losses[0];
        let last = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(last < first * 0.85, "{arch:?}: loss {first:.3} → {last:.3} ({losses:?})");
        assert!(trained.seconds_per_batch > 0.0);
    }
    Ok(())
}

#[test]
fn train_then_evaluate_end_to_end() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("models/smoke/v1");
    let opts = TrainOptions {
        sources: sources(),
        label_map: LabelMap::default(),
        features: FeatureConfig::speech(),
        cache_root: tmp.path().join("cache"),
        split: SplitKind::Random,
        folds: None,
        fold_validation: prosodia_trainer::split::FoldValidation::default(),
        train: TrainConfig { max_steps: Some(4), ..quick(Arch::CnnLstm, 2) },
        out: out.clone(),
        export_onnx: false,
    };
    let outcome = run::train(&opts, &mut |_| {})?;
    for f in [
        files::MODEL_TOML,
        files::FEATURES_TOML,
        files::WEIGHTS,
        files::REPORT_JSON,
        files::REPORT_MD,
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::REPORT_JSON))?)?;
    assert!(json["accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)));
    assert!(json["macro_f1"].is_number());
    assert_eq!(outcome.report.n, json["n"].as_u64().unwrap_or(0) as usize);

    let saved = artifact::load(&out)?;
    assert_eq!(saved.meta.name, "smoke");
    assert_eq!(saved.meta.version, "v1");
    assert_eq!(saved.meta.labels, ["angry", "disgust", "fear", "happy", "neutral", "sad"]);
    assert_eq!(saved.features, FeatureConfig::speech());

    // The reloaded weights score the whole fixture set; evaluating twice gives one answer.
    let a = run::evaluate(
        &out,
        &sources(),
        &LabelMap::default(),
        &tmp.path().join("cache"),
        &mut |_| {},
    )?;
    let b = run::evaluate(
        &out,
        &sources(),
        &LabelMap::default(),
        &tmp.path().join("cache"),
        &mut |_| {},
    )?;
    assert_eq!(a.n, 24);
    assert_eq!(a.confusion, b.confusion);
    Ok(())
}

#[test]
fn saved_weights_reload_to_the_same_predictions() -> anyhow::Result<()> {
    use burn::module::Module;
    use burn::prelude::Device;
    use burn::store::ModuleRecord;

    let tmp = tempfile::tempdir()?;
    let scan = sources().scan(&LabelMap::default())?;
    let cache = FeatureCache::open(tmp.path(), &FeatureConfig::speech())?;
    let ds = Dataset::load(scan.clips, &cache);
    let all: Vec<usize> = (0..ds.clips.len()).collect();
    for arch in [Arch::CnnLstm, Arch::Mlp] {
        let scaler = ds.fit_standardizer(&all, arch)?;
        let ex = ds.examples(&all, arch, &scaler)?;
        let trained = train::fit(&ex, &ex, &quick(arch, 2), |_| {})?;
        let device = Device::flex();
        let before = train::predict(&trained.net, &ex, 64, &device)?;
        let path = tmp.path().join(format!("{arch:?}.bpk"));
        trained.net.clone().save_file(&path).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let record = ModuleRecord::load(&path).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let loaded = train::Net::new(arch, ex.width, &device)
            .try_load_record(record)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .valid();
        let after = train::predict(&loaded, &ex, 64, &device)?;
        for (a, b) in before.iter().zip(&after) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-6, "{arch:?}: {a:?} vs {b:?}");
            }
        }
        // Padding does not change a clip's result: one clip alone equals it in a batch.
        let alone = train::predict(
            &trained.net,
            &prosodia_trainer::train::Examples {
                inputs: vec![ex.inputs[0].clone()],
                lengths: vec![ex.lengths[0]],
                width: ex.width,
                labels: vec![ex.labels[0]],
            },
            64,
            &device,
        )?;
        for (x, y) in alone[0].iter().zip(&before[0]) {
            assert!(
                (x - y).abs() < 1e-4,
                "{arch:?}: alone {:?} vs batched {:?}",
                alone[0],
                before[0]
            );
        }
    }
    Ok(())
}

fn speaker_options(out: &Path, cache: &Path, train: TrainConfig) -> TrainOptions {
    TrainOptions {
        sources: sources(),
        label_map: LabelMap::default(),
        features: FeatureConfig::seed(),
        cache_root: cache.to_path_buf(),
        split: SplitKind::Speaker,
        folds: None,
        fold_validation: prosodia_trainer::split::FoldValidation::default(),
        train,
        out: out.to_path_buf(),
        export_onnx: false,
    }
}

#[test]
fn frame_statistics_class_balance_and_speaker_normalisation_train_and_evaluate_alike()
-> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("models/adaptive/1");
    let cache = tmp.path().join("cache");
    let config = TrainConfig {
        max_steps: Some(4),
        frame_stats: true,
        speaker_norm: true,
        class_balance: true,
        ..quick(Arch::Mlp, 2)
    };
    run::train(&speaker_options(&out, &cache, config), &mut |_| {})?;
    let saved = artifact::load(&out)?;
    let recorded = &saved.meta.training.config;
    assert!(recorded.frame_stats && recorded.speaker_norm && recorded.class_balance);
    // 46 utterance features and 7 statistics of each of the seed preset's 31 frame columns.
    assert_eq!(saved.meta.input.width, 46 + 7 * 31);
    // `evaluate` must rebuild the same 263 inputs, or the network would refuse the width.
    let report = run::evaluate(&out, &sources(), &LabelMap::default(), &cache, &mut |_| {})?;
    assert_eq!(report.n, 24);
    Ok(())
}

#[test]
fn options_that_cannot_be_honoured_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let refused = |opts: TrainOptions, needle: &str| {
        let err = run::train(&opts, &mut |_| {}).expect_err(needle);
        assert_eq!(err.kind(), prosodia_trainer::ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(!cache.exists(), "features were extracted before refusing: {err}");
    };
    let adaptive = TrainConfig { speaker_norm: true, ..quick(Arch::Mlp, 1) };
    let mut random = speaker_options(&out, &cache, adaptive.clone());
    random.split = SplitKind::Random;
    refused(random, "--split speaker");
    let mut exported = speaker_options(&out, &cache, adaptive);
    exported.export_onnx = true;
    refused(exported, "--no-onnx");
    let stats_for_cnn = TrainConfig { frame_stats: true, ..quick(Arch::CnnLstm, 1) };
    refused(speaker_options(&out, &cache, stats_for_cnn), "--arch mlp");
    let standing_still = TrainConfig { speed_perturb: vec![1.1, 0.0], ..quick(Arch::Mlp, 1) };
    let err = run::train(&speaker_options(&out, &cache, standing_still), &mut |_| {})
        .expect_err("speed 0");
    assert!(err.to_string().contains("speed"), "{err}");
    let extracted = std::fs::read_dir(&cache).map_or(0, |d| {
        d.flatten().map(|e| std::fs::read_dir(e.path()).map_or(0, Iterator::count)).sum()
    });
    // Only the created folders' `features.toml`, no `.feat` entry.
    assert!(extracted <= 1, "{extracted} files in the cache before refusing speed 0");
}

#[test]
fn speed_perturbation_scales_duration_and_pitch_and_has_its_own_cache() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = FeatureConfig::seed();
    let clip = fixtures().join("ravdess/03-01-05-02-01-01-01.wav");
    let bytes = std::fs::read(&clip)?;
    let mut extractor = prosodia_trainer::features::extractor(&config)?;
    let plain = prosodia_trainer::features::extract_bytes(&mut extractor, &bytes)?;
    let faster = prosodia_trainer::features::extract_bytes_at_speed(&mut extractor, &bytes, 1.25)?;
    let index = |name: &str| {
        prosodia_dsp::utterance::NAMES.iter().position(|n| *n == name).expect("feature name")
    };
    // Played 1.25 times as fast: a fifth shorter, and the voice a quarter higher.
    let frames = faster.rows as f64 / plain.rows as f64;
    assert!((frames - 0.8).abs() < 0.05, "{} vs {} frames", faster.rows, plain.rows);
    let pitch = faster.utterance[index("pitch_median")] / plain.utterance[index("pitch_median")];
    assert!((pitch - 1.25).abs() < 0.05, "pitch ratio {pitch}");

    let unperturbed = FeatureCache::open_at_speed(tmp.path(), &config, 1.0)?;
    assert_eq!(unperturbed.dir(), FeatureCache::open(tmp.path(), &config)?.dir());
    let perturbed = FeatureCache::open_at_speed(tmp.path(), &config, 1.25)?;
    assert_ne!(perturbed.dir(), unperturbed.dir());
    let (cached, _) = perturbed.get_or_extract(&mut extractor, &clip)?;
    assert_eq!(cached, faster);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = FeatureCache::open_at_speed(tmp.path(), &config, bad).expect_err("bad speed");
        assert!(err.to_string().contains("speed"), "{err}");
    }
    Ok(())
}

#[test]
fn speed_perturbation_adds_copies_of_the_training_clips_only() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let sizes = |name: &str, speeds: Vec<f64>| -> anyhow::Result<[usize; 3]> {
        let out = tmp.path().join(name);
        let config =
            TrainConfig { max_steps: Some(2), speed_perturb: speeds, ..quick(Arch::Mlp, 1) };
        run::train(&speaker_options(&out, &cache, config), &mut |_| {})?;
        Ok(artifact::load(&out)?.meta.training.sizes)
    };
    let plain = sizes("plain", vec![])?;
    let perturbed = sizes("perturbed", vec![0.9, 1.1])?;
    assert_eq!(perturbed, [3 * plain[0], plain[1], plain[2]], "plain split {plain:?}");
    Ok(())
}
