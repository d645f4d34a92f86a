//! From corpora to model inputs: scanning the sources, loading features through the cache,
//! fitting standardisation on the training part and building [`Examples`].

use std::path::PathBuf;

use crate::corpus::{self, Clip, Scan};
use crate::error::{Error, ErrorKind, Result};
use crate::features::{ClipFeatures, FeatureCache};
use crate::labels::LabelMap;
use crate::model::Arch;
use crate::standardize::Standardizer;
use crate::train::Examples;

/// Where the clips come from (any combination).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// TESS root.
    pub tess: Option<PathBuf>,
    /// RAVDESS root.
    pub ravdess: Option<PathBuf>,
    /// CREMA-D root (or its `AudioWAV`).
    pub crema: Option<PathBuf>,
    /// CSV manifests.
    pub manifests: Vec<PathBuf>,
}

impl Sources {
    /// Reads every source.
    pub fn scan(&self, map: &LabelMap) -> Result<Scan> {
        let mut scan = Scan::default();
        if let Some(d) = &self.tess {
            scan.extend(corpus::read_tess(d, map)?);
        }
        if let Some(d) = &self.ravdess {
            scan.extend(corpus::read_ravdess(d, map)?);
        }
        if let Some(d) = &self.crema {
            scan.extend(corpus::read_crema(d, map)?);
        }
        for m in &self.manifests {
            scan.extend(corpus::read_manifest(m, map)?);
        }
        if scan.clips.is_empty() {
            return Err(Error::new(ErrorKind::Corpus, "no usable clips in the given sources"));
        }
        Ok(scan)
    }
}

/// Clips with their features (clips whose extraction failed are left out).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The clips.
    pub clips: Vec<Clip>,
    /// Their features, index for index.
    pub features: Vec<ClipFeatures>,
    /// Clips left out because extraction failed, with the error.
    pub failed: Vec<(PathBuf, Error)>,
}

impl Dataset {
    /// Loads features for `clips` through `cache` (in parallel).
    pub fn load(clips: Vec<Clip>, cache: &FeatureCache) -> Self {
        let paths: Vec<PathBuf> = clips.iter().map(|c| c.path.clone()).collect();
        let results = cache.extract_all(&paths);
        let mut ds = Dataset::default();
        for (clip, result) in clips.into_iter().zip(results) {
            match result {
                Ok(f) => {
                    ds.clips.push(clip);
                    ds.features.push(f);
                }
                Err(e) => ds.failed.push((clip.path, e)),
            }
        }
        ds
    }

    /// Columns per example for `arch`.
    pub fn width(&self, arch: Arch) -> usize {
        match arch {
            Arch::CnnLstm => self.features.first().map_or(0, |f| f.cols),
            Arch::Mlp => self.features.first().map_or(0, |f| f.utterance.len()),
        }
    }

    /// Standardisation statistics fitted on the clips at `indices` only.
    pub fn fit_standardizer(&self, indices: &[usize], arch: Arch) -> Result<Standardizer> {
        let width = self.width(arch);
        match arch {
            Arch::CnnLstm => Standardizer::fit(
                width,
                indices.iter().flat_map(|&i| {
                    let f = &self.features[i];
                    (0..f.rows).map(move |r| f.frame(r))
                }),
            ),
            Arch::Mlp => {
                let rows: Vec<Vec<f32>> = indices.iter().map(|&i| self.utterance_f32(i)).collect();
                Standardizer::fit(width, rows.iter().map(Vec::as_slice))
            }
        }
    }

    fn utterance_f32(&self, i: usize) -> Vec<f32> {
        self.features[i].utterance.iter().map(|&v| v as f32).collect()
    }

    /// Standardised examples of the clips at `indices`.
    pub fn examples(
        &self,
        indices: &[usize],
        arch: Arch,
        scaler: &Standardizer,
    ) -> Result<Examples> {
        let width = self.width(arch);
        if scaler.width() != width {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("standardizer has {} columns, the features {width}", scaler.width()),
            ));
        }
        let mut ex = Examples { width, ..Examples::default() };
        for &i in indices {
            let f = &self.features[i];
            if arch == Arch::CnnLstm && f.cols != width {
                return Err(Error::new(
                    ErrorKind::Features,
                    format!(
                        "{}: {} columns, expected {width}",
                        self.clips[i].path.display(),
                        f.cols
                    ),
                ));
            }
            let (mut values, len) = match arch {
                Arch::CnnLstm => (f.frames.clone(), f.rows),
                Arch::Mlp => (self.utterance_f32(i), 1),
            };
            scaler.apply(&mut values);
            ex.inputs.push(values);
            ex.lengths.push(len);
            ex.labels.push(self.clips[i].emotion.index());
        }
        Ok(ex)
    }
}
