//! Shared helpers for Prosodia's workspace tests: where the shared fixtures live and how to
//! read the librosa/Praat reference files produced by `shared/reference/make_reference.py`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The `shared/` folder beside the repository root (override with `PROSODIA_SHARED`).
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROSODIA_SHARED") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// A path under `shared/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    shared_dir().join("fixtures").join(rel)
}

/// All files in `shared/fixtures/<dir>`, sorted.
pub fn fixtures_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(shared_dir().join("fixtures").join(dir))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// One STFT configuration's reference values (frames are rows).
#[derive(Debug, Deserialize)]
pub struct RefConfig {
    /// Parameters as written by the script (n_fft, hop, win, n_mels, n_mfcc, ...).
    pub params: serde_json::Value,
    /// Frames in the STFT.
    pub num_frames: usize,
    /// Log-mel dB, frames × n_mels.
    pub logmel_db: Vec<Vec<f64>>,
    /// MFCCs, frames × n_mfcc.
    pub mfcc: Vec<Vec<f64>>,
    /// RMS per frame.
    pub rms: Vec<f64>,
    /// ZCR per frame.
    pub zcr: Vec<f64>,
    /// Spectral centroid per frame.
    pub spectral_centroid: Vec<f64>,
    /// Spectral rolloff per frame.
    pub spectral_rolloff: Vec<f64>,
    /// Onset strength per frame.
    pub onset_strength: Vec<f64>,
    /// Tempo estimate.
    pub tempo_bpm: f64,
    /// `librosa.effects.trim` interval in samples.
    pub trim_interval: [usize; 2],
}

impl RefConfig {
    /// A usize parameter from `params`.
    pub fn param(&self, key: &str) -> usize {
        self.params.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0) as usize
    }
}

/// Praat's pitch track.
#[derive(Debug, Deserialize)]
pub struct RefPitch {
    /// Frame step in seconds.
    pub time_step_s: f64,
    /// Time of the first frame.
    pub first_frame_time_s: Option<f64>,
    /// F0 per frame, 0 when unvoiced.
    pub f0_hz: Vec<f64>,
}

/// Praat's values.
#[derive(Debug, Deserialize)]
pub struct RefPraat {
    /// To Pitch (ac).
    pub pitch_ac: RefPitch,
    /// Get jitter (local), `None` when Praat gave undefined.
    pub jitter_local: Option<f64>,
    /// Get shimmer (local), `None` when Praat gave undefined.
    pub shimmer_local: Option<f64>,
}

/// Configurations by name.
#[derive(Debug, Deserialize)]
pub struct RefConfigs {
    /// n_fft 2048 / hop 512 / 128 mels.
    pub seed: RefConfig,
    /// n_fft 512 / win 400 / hop 160 / 40 mels.
    pub speech: RefConfig,
}

/// One reference file.
#[derive(Debug, Deserialize)]
pub struct Reference {
    /// The fixture's file name.
    pub file: String,
    /// Its own sample rate.
    pub sample_rate: u32,
    /// Samples after librosa's mono mixdown.
    pub num_samples: usize,
    /// Sum of those samples (a cheap check that decoding agrees).
    pub sum_of_samples: f64,
    /// The two STFT configurations.
    pub configs: RefConfigs,
    /// Praat's values.
    pub praat: RefPraat,
}

/// Every reference file with the path of the fixture it describes.
pub fn references() -> Vec<(PathBuf, Reference)> {
    let dir = shared_dir().join("reference");
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    for p in paths {
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => panic!("reading {}: {e}", p.display()),
        };
        let r: Reference = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => panic!("parsing {}: {e}", p.display()),
        };
        let audio = ["tess", "ravdess", "formats"]
            .iter()
            .map(|d| fixture(&format!("{d}/{}", r.file)))
            .find(|p| p.exists());
        match audio {
            Some(a) => out.push((a, r)),
            None => panic!("no fixture found for reference {}", r.file),
        }
    }
    assert!(!out.is_empty(), "no reference files under {}", dir.display());
    out
}

/// A command for a program under test (the `prosodia-server` binary, say) with its logs piped
/// to the caller: stdin and stdout closed, stderr piped, and every `PROSODIA_*` variable of
/// this environment removed, so a developer's own settings cannot change what a test sees.
pub fn logging_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PROSODIA_") {
            command.env_remove(key);
        }
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// Reads a fixture's bytes.
pub fn read(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

/// Reads a 16-bit PCM WAV fixture and averages its channels, as `librosa.load(sr=None,
/// mono=True)` does. A deliberately tiny reader, independent of the decoder under test, so
/// feature tests do not depend on it.
pub fn load_pcm16_mono(path: &Path) -> (Vec<f32>, u32) {
    let bytes = read(path);
    assert!(bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE", "not a WAV");
    let u16le = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32le = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut pos = 12;
    let (mut channels, mut rate, mut bits) = (0usize, 0u32, 0u16);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32le(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            channels = usize::from(u16le(body + 2));
            rate = u32le(body + 4);
            bits = u16le(body + 14);
        } else if id == b"data" {
            assert_eq!(bits, 16, "{}: only 16-bit PCM", path.display());
            let end = (body + size).min(bytes.len());
            let frames = (end - body) / (2 * channels);
            let mut out = Vec::with_capacity(frames);
            for f in 0..frames {
                let mut acc = 0.0f32;
                for c in 0..channels {
                    let i = body + 2 * (f * channels + c);
                    acc += f32::from(i16::from_le_bytes([bytes[i], bytes[i + 1]])) / 32768.0;
                }
                out.push(acc / channels as f32);
            }
            return (out, rate);
        }
        pos = body + size + (size & 1);
    }
    panic!("{}: no data chunk", path.display());
}
