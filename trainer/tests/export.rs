//! The exported ONNX graph, run by the server's tract backend and by ONNX Runtime, gives the burn model's
//! probabilities: padding, clips shorter than the convolutions need, and standardisation
//! folded into the graph included.

use std::path::{Path, PathBuf};

use prosodia_backend_ort::{OrtBackend, OrtConfig};
use prosodia_backend_tract::TractBackend;
use prosodia_dsp::FeatureConfig;
use prosodia_trainer::artifact::{self, files};
use prosodia_trainer::dataset::Sources;
use prosodia_trainer::labels::LabelMap;
use prosodia_trainer::model::Arch;
use prosodia_trainer::run::{self, SplitKind, TrainOptions};
use prosodia_trainer::train::{self, Examples, TrainConfig};

fn fixtures() -> PathBuf {
    // The `shared/` folder beside the repository root (override with `PROSODIA_SHARED`).
    let shared = std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("fixtures")
}

#[test]
fn onnx_matches_burn_on_padded_batches() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("models/export/v1");
    let sources = Sources {
        tess: Some(fixtures().join("tess")),
        ravdess: Some(fixtures().join("ravdess")),
        ..Sources::default()
    };
    let opts = TrainOptions {
        sources: sources.clone(),
        label_map: LabelMap::default(),
        features: FeatureConfig::speech(),
        cache_root: tmp.path().join("cache"),
        split: SplitKind::Random,
        folds: None,
        fold_validation: prosodia_trainer::split::FoldValidation::default(),
        train: TrainConfig {
            arch: Arch::CnnLstm,
            epochs: 3,
            batch_size: 8,
            seed: 2,
            ..TrainConfig::default()
        },
        out: out.clone(),
        export_onnx: true,
    };
    run::train(&opts, &mut |_| {})?;
    let saved = artifact::load(&out)?;
    assert_eq!(saved.meta.onnx.as_deref(), Some(files::ONNX));
    // `prosodia-train export` rebuilds the same graph from the saved weights.
    let written = std::fs::read(out.join(files::ONNX))?;
    std::fs::remove_file(out.join(files::ONNX))?;
    prosodia_trainer::export::reexport(&out)?;
    assert!(std::fs::read(out.join(files::ONNX))? == written, "re-export differs from training's");
    let backend = TractBackend::load(&out.join(files::ONNX))?;
    assert_eq!(backend.feature_width(), 40);
    assert_eq!(backend.num_classes(), 6);

    // Raw (unstandardised) frames of a few clips, one cut shorter than MIN_FRAMES.
    let (ds, _) = run::load_dataset(
        &sources,
        &LabelMap::default(),
        &saved.features,
        &tmp.path().join("cache"),
        &mut |_| {},
    )?;
    let f = 40;
    let mut clips: Vec<Vec<f32>> = (0..4).map(|i| ds.features[i * 5].frames.clone()).collect();
    clips.push(ds.features[1].frames[..20 * f].to_vec());
    let lengths: Vec<usize> = clips.iter().map(|c| c.len() / f).collect();

    // burn: standardise, then predict (pads internally).
    let scaler = &saved.meta.standardization;
    let standardized: Vec<Vec<f32>> = clips
        .iter()
        .map(|c| {
            let mut v = c.clone();
            scaler.apply(&mut v);
            v
        })
        .collect();
    let ex = Examples {
        inputs: standardized,
        lengths: lengths.clone(),
        width: f,
        labels: vec![0; clips.len()],
    };
    let want = train::predict(&saved.net, &ex, 64, &burn::prelude::Device::flex())?;

    // tract: raw frames zero-padded to the longest, one batch; then each clip alone.
    let t = *lengths.iter().max().unwrap_or(&1);
    let mut batch = vec![0f32; clips.len() * t * f];
    for (i, c) in clips.iter().enumerate() {
        batch[i * t * f..i * t * f + c.len()].copy_from_slice(c);
    }
    let lens: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
    let got = backend.run(&batch, clips.len(), t, f, &lens)?;
    for (i, w) in want.iter().enumerate() {
        let alone = backend.run(&clips[i], 1, lengths[i], f, &[lens[i]])?;
        for c in 0..6 {
            let g = got[i * 6 + c];
            assert!((g - w[c]).abs() < 1e-4, "clip {i} class {c}: onnx {g} vs burn {}", w[c]);
            assert!(
                (alone[c] - w[c]).abs() < 1e-4,
                "clip {i} alone, class {c}: onnx {} vs burn {}",
                alone[c],
                w[c]
            );
        }
    }

    // ONNX Runtime on the same padded batch, when the runtime library is here.
    let Some(lib) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) else {
        eprintln!(
            "skipping the ONNX Runtime leg: ORT_DYLIB_PATH not set \
             (export ORT_DYLIB_PATH=\"$(scripts/install-onnxruntime.sh)\")"
        );
        return Ok(());
    };
    let config = OrtConfig { library_path: Some(lib.into()), ..OrtConfig::default() };
    let ort = OrtBackend::load(&out.join(files::ONNX), &config)?;
    let got = ort.run(&batch, clips.len(), t, f, &lens)?;
    for (i, w) in want.iter().enumerate() {
        for c in 0..6 {
            let g = got[i * 6 + c];
            assert!((g - w[c]).abs() < 1e-4, "clip {i} class {c}: ORT {g} vs burn {}", w[c]);
        }
    }
    Ok(())
}
