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

    /// Appends, to every clip's utterance vector, statistics of each frame column over the
    /// clip: mean, standard deviation, 10th / 50th / 90th percentile, range and mean absolute
    /// frame-to-frame change ([`FRAME_STATISTICS`] per column, column-major). They summarise
    /// the whole frame matrix for the MLP (`--frame-stats`), which otherwise sees only the 46
    /// utterance features.
    pub fn with_frame_statistics(mut self) -> Self {
        for f in &mut self.features {
            let stats = frame_statistics(f);
            f.utterance.extend(stats);
        }
        self
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

/// Names of the statistics [`Dataset::with_frame_statistics`] computes per frame column, in
/// order.
pub const FRAME_STATISTICS: [&str; 7] =
    ["mean", "std", "p10", "p50", "p90", "range", "mean_abs_delta"];

/// Percentile `q` (0–100) of sorted `v`, interpolating linearly between ranks (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// [`FRAME_STATISTICS`] of each column of `f` (zeros for a clip without frames).
fn frame_statistics(f: &ClipFeatures) -> Vec<f64> {
    let mut out = Vec::with_capacity(f.cols * FRAME_STATISTICS.len());
    let mut column = Vec::with_capacity(f.rows);
    for c in 0..f.cols {
        column.clear();
        column.extend((0..f.rows).map(|r| f64::from(f.frames[r * f.cols + c])));
        if column.is_empty() {
            out.extend([0.0; FRAME_STATISTICS.len()]);
            continue;
        }
        let n = column.len() as f64;
        let mean = column.iter().sum::<f64>() / n;
        let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let delta = if column.len() > 1 {
            column.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        column.sort_by(f64::total_cmp);
        let range = column[column.len() - 1] - column[0];
        out.extend([
            mean,
            std,
            percentile(&column, 10.0),
            percentile(&column, 50.0),
            percentile(&column, 90.0),
            range,
            delta,
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_statistics_per_column() {
        // Two columns over five frames: 1..=5 and a constant 7.
        let frames: Vec<f32> = (1..=5).flat_map(|v| [v as f32, 7.0]).collect();
        let f = ClipFeatures { frames, rows: 5, cols: 2, utterance: vec![] };
        let s = frame_statistics(&f);
        let first = [3.0, 2f64.sqrt(), 1.4, 3.0, 4.6, 4.0, 1.0];
        for (k, (got, want)) in s[..7].iter().zip(first).enumerate() {
            assert!((got - want).abs() < 1e-9, "{}: {got} vs {want}", FRAME_STATISTICS[k]);
        }
        assert_eq!(&s[7..], &[7.0, 0.0, 7.0, 7.0, 7.0, 0.0, 0.0]);
        let empty = ClipFeatures { frames: vec![], rows: 0, cols: 2, utterance: vec![] };
        assert_eq!(frame_statistics(&empty), vec![0.0; 14]);
    }
}
