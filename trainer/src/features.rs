//! Feature extraction with an on-disk cache keyed by file content and feature configuration.
//!
//! Each clip yields two things: the frame matrix a sequence model reads (the configuration's
//! `frame_features` concatenated per frame, rows are frames) and the case study's 46
//! utterance features for the MLP baseline. Both come from one pass of
//! [`prosodia_dsp::pipeline::Extractor`] (decode → preprocess → one STFT), so they cannot
//! disagree. Extraction runs in parallel with one extractor per rayon worker (extractors keep
//! FFT plans and scratch buffers, so they are reused across clips, never shared) and shows an
//! indicatif progress bar on a terminal.
//!
//! The cache lives at `<root>/<config key>/<content hash>.feat`, where the config key hashes
//! the configuration's TOML together with [`CACHE_VERSION`], and the content hash is of the
//! audio bytes, so renaming or moving a corpus keeps its cache and editing a file or the
//! configuration misses it. Speed-perturbed copies of the clips (a training augmentation,
//! [`extract_bytes_at_speed`]) live beside them, in a folder whose key also hashes the speed.
//! Entries are written to a temporary name and renamed into place,
//! so an interrupted run never leaves a half-written entry behind. The format is small and
//! explicit (little-endian): magic `PRSDFEAT`, format version u32, rows u32, cols u32,
//! utterance count u32, `rows·cols` f32 frame values, then the utterance values as f64.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use prosodia_dsp::FeatureConfig;
use prosodia_dsp::decode::{DecodeLimits, decode};
use prosodia_dsp::pipeline::Extractor;
use prosodia_dsp::utterance;
use rayon::prelude::*;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::util::{Hasher128, hash_hex};

/// Bump when the extractor's numbers change for the same configuration, so old cache
/// entries are not reused.
pub const CACHE_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"PRSDFEAT";

/// The features of one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipFeatures {
    /// Frames × columns, row-major (the configuration's frame features per frame).
    pub frames: Vec<f32>,
    /// Number of frames.
    pub rows: usize,
    /// Columns per frame.
    pub cols: usize,
    /// The 46 utterance features, in [`prosodia_dsp::utterance::NAMES`] order.
    pub utterance: Vec<f64>,
}

impl ClipFeatures {
    /// Frame `r` as a slice.
    pub fn frame(&self, r: usize) -> &[f32] {
        &self.frames[r * self.cols..(r + 1) * self.cols]
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.frames.len() * 4 + self.utterance.len() * 8);
        out.extend_from_slice(MAGIC);
        for v in [CACHE_VERSION, self.rows as u32, self.cols as u32, self.utterance.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.frames {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.utterance {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let word = |i: usize| -> std::result::Result<usize, String> {
            let at = 8 + 4 * i;
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(|b| u32::from_le_bytes(b) as usize)
                .ok_or_else(|| "truncated header".to_string())
        };
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err("bad magic".into());
        }
        if word(0)? != CACHE_VERSION as usize {
            return Err(format!("format version {} (expected {CACHE_VERSION})", word(0)?));
        }
        let (rows, cols, n_utt) = (word(1)?, word(2)?, word(3)?);
        let frames_len = rows.checked_mul(cols).ok_or("size overflow")?;
        let expected = 24 + frames_len * 4 + n_utt * 8;
        if bytes.len() != expected {
            return Err(format!("{} bytes, header says {expected}", bytes.len()));
        }
        let body = &bytes[24..];
        let frames = body[..frames_len * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let utterance = body[frames_len * 4..]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(Self { frames, rows, cols, utterance })
    }
}

/// A fresh extractor for `config`.
pub fn extractor(config: &FeatureConfig) -> Result<Extractor> {
    Extractor::new(config.clone())
        .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))
}

/// Extracts features from audio bytes with a reusable extractor.
pub fn extract_bytes(extractor: &mut Extractor, bytes: &[u8]) -> Result<ClipFeatures> {
    extract_bytes_at_speed(extractor, bytes, 1.0)
}

/// [`extract_bytes`] of the clip played `speed` times as fast (speed perturbation, the
/// training augmentation): the decoded samples are declared to have `speed` times their rate
/// before preprocessing resamples them, so duration scales by `1 / speed` and every frequency,
/// pitch and formants alike, by `speed`, as in a shorter or longer vocal tract.
pub fn extract_bytes_at_speed(
    extractor: &mut Extractor,
    bytes: &[u8],
    speed: f64,
) -> Result<ClipFeatures> {
    let feat = |e: prosodia_dsp::Error| Error::new(ErrorKind::Features, e.to_string());
    let mut audio = decode(bytes, &DecodeLimits::default()).map_err(feat)?;
    if speed != 1.0 {
        let rate = (f64::from(audio.sample_rate) * speed).round();
        if !(1.0..=f64::from(u32::MAX)).contains(&rate) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("speed {speed} gives an unusable sample rate ({rate} Hz)"),
            ));
        }
        audio.sample_rate = rate as u32;
    }
    let analysis = extractor.analyze_owned(audio).map_err(feat)?;
    let m = extractor.frame_matrix(&analysis.spectral);
    Ok(ClipFeatures {
        frames: m.data,
        rows: m.rows,
        cols: m.cols,
        utterance: analysis.utterance.values.to_vec(),
    })
}

/// The on-disk feature cache for one configuration.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    config: FeatureConfig,
    speed: f64,
}

impl FeatureCache {
    /// Opens (creating if needed) the cache for `config` under `root`.
    pub fn open(root: &Path, config: &FeatureConfig) -> Result<Self> {
        Self::open_at_speed(root, config, 1.0)
    }

    /// Opens the cache of `config`'s features of every clip played `speed` times as fast
    /// (see [`extract_bytes_at_speed`]); speed 1 is [`FeatureCache::open`]'s cache.
    pub fn open_at_speed(root: &Path, config: &FeatureConfig, speed: f64) -> Result<Self> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("speed perturbation: {speed} is not a positive speed factor"),
            ));
        }
        config.validate().map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        let toml =
            config.to_toml().map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        let mut h = Hasher128::new();
        h.update(&CACHE_VERSION.to_le_bytes());
        h.update(toml.as_bytes());
        if speed != 1.0 {
            // Only perturbed caches hash the speed, so unperturbed entries keep their folder.
            h.update(&speed.to_le_bytes());
        }
        let key = h.hex();
        let dir = root.join(format!("{}-{}", sanitize(&config.name), &key[..16]));
        fs::create_dir_all(&dir).at(&dir)?;
        let toml_path = dir.join("features.toml");
        if !toml_path.exists() {
            fs::write(&toml_path, toml).at(&toml_path)?;
        }
        Ok(Self { dir, config: config.clone(), speed })
    }

    /// The folder holding this configuration's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the entries were extracted with.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    fn entry_path(&self, content_hash: &str) -> PathBuf {
        self.dir.join(format!("{content_hash}.feat"))
    }

    /// The features of one file: from the cache if present, else extracted and stored.
    /// Returns whether it was a cache hit.
    pub fn get_or_extract(
        &self,
        extractor: &mut Extractor,
        path: &Path,
    ) -> Result<(ClipFeatures, bool)> {
        let bytes = fs::read(path).at(path)?;
        let entry = self.entry_path(&hash_hex(&bytes));
        if let Ok(stored) = fs::read(&entry) {
            match ClipFeatures::decode(&stored) {
                Ok(f) => return Ok((f, true)),
                Err(why) => {
                    tracing::warn!("re-extracting {}: cache entry unusable ({why})", path.display())
                }
            }
        }
        let features = extract_bytes_at_speed(extractor, &bytes, self.speed)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))?;
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        let mut file = fs::File::create(&tmp).at(&tmp)?;
        file.write_all(&features.encode()).at(&tmp)?;
        drop(file);
        fs::rename(&tmp, &entry).at(&entry)?;
        Ok((features, false))
    }

    /// Features for every path, in parallel (one extractor per worker), with a progress bar.
    /// Each element is that file's result, so one bad file does not stop the rest.
    pub fn extract_all(&self, paths: &[PathBuf]) -> Vec<Result<ClipFeatures>> {
        let bar = ProgressBar::new(paths.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed} < {eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("features ({})", self.config.name));
        let results = paths
            .par_iter()
            .progress_with(bar.clone())
            .map_init(
                || Extractor::new(self.config.clone()),
                |extractor, path| match extractor {
                    Ok(extractor) => self.get_or_extract(extractor, path).map(|(f, _)| f),
                    Err(e) => Err(Error::new(ErrorKind::InvalidArgument, e.to_string())),
                },
            )
            .collect();
        bar.finish_and_clear();
        results
    }
}

fn sanitize(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if s.is_empty() { "features".into() } else { s }
}

/// The default cache root: `$PROSODIA_CACHE`, else `$XDG_CACHE_HOME/prosodia/features`, else
/// `~/.cache/prosodia/features`, else `./.prosodia-cache`.
pub fn default_cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("PROSODIA_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("prosodia").join("features");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("prosodia").join("features");
    }
    PathBuf::from(".prosodia-cache")
}

/// Number of utterance features (re-exported for the MLP).
pub const UTTERANCE_FEATURES: usize = utterance::COUNT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips_and_rejects_damage() {
        let f = ClipFeatures {
            frames: vec![1.0, -2.5, 3.0, 4.0, 5.0, 6.0],
            rows: 3,
            cols: 2,
            utterance: vec![0.5; 46],
        };
        let bytes = f.encode();
        assert_eq!(ClipFeatures::decode(&bytes).unwrap(), f);
        assert!(ClipFeatures::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(ClipFeatures::decode(&bad).is_err());
        let mut old = bytes;
        old[8] = 99;
        assert!(ClipFeatures::decode(&old).is_err());
        assert_eq!(f.frame(1), &[3.0, 4.0]);
    }
}
