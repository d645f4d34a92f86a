//! Corpus readers: TESS, RAVDESS, CREMA-D and a CSV manifest, all producing [`Clip`]s.
//!
//! Every reader walks its directory (sorted, so the clip order is deterministic), reads the
//! emotion and speaker from the file name, maps the emotion through a [`LabelMap`] and keeps
//! the corpus and speaker with each clip so splits can be made by speaker and reports broken
//! down by corpus. A file that does not follow the corpus's naming scheme is not an error: it
//! is listed in [`Scan::skipped`] with the reason, so one stray file cannot stop a run but is
//! never silently ignored either. Speakers are qualified by corpus (`tess:OAF`,
//! `ravdess:01`), so two corpora cannot share a speaker by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::labels::{Emotion, LabelMap, RawEmotion};

/// Which corpus a clip came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Corpus {
    /// Toronto Emotional Speech Set.
    Tess,
    /// Ryerson Audio-Visual Database of Emotional Speech and Song (speech part).
    Ravdess,
    /// Crowd-sourced Emotional Multimodal Actors Dataset.
    Crema,
    /// Clips listed in a CSV manifest.
    Manifest,
}

impl Corpus {
    /// The stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Corpus::Tess => "tess",
            Corpus::Ravdess => "ravdess",
            Corpus::Crema => "crema",
            Corpus::Manifest => "manifest",
        }
    }
}

impl fmt::Display for Corpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One labelled audio file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clip {
    /// Where the audio is.
    pub path: PathBuf,
    /// The class it is trained and scored as.
    pub emotion: Emotion,
    /// The corpus's own emotion before mapping.
    pub raw: RawEmotion,
    /// The corpus it came from.
    pub corpus: Corpus,
    /// The speaker, qualified by corpus (`tess:OAF`, `ravdess:01`, `crema:1001`).
    pub speaker: String,
    /// The corpus's intensity level where it has one (RAVDESS `01`/`02`, CREMA-D `HI`...).
    pub intensity: Option<String>,
}

/// The result of reading a corpus: the clips kept and the files left out, with reasons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Clips kept, in path order.
    pub clips: Vec<Clip>,
    /// Files not used and why (unknown name scheme, emotion dropped by the label map).
    pub skipped: Vec<(PathBuf, String)>,
}

impl Scan {
    /// Appends another scan's clips and skipped files.
    pub fn extend(&mut self, other: Scan) {
        self.clips.extend(other.clips);
        self.skipped.extend(other.skipped);
    }

    fn keep_or_skip(
        &mut self,
        path: PathBuf,
        parsed: std::result::Result<Parsed, String>,
        corpus: Corpus,
        map: &LabelMap,
    ) {
        match parsed {
            Err(reason) => self.skipped.push((path, reason)),
            Ok(p) => match map.map(p.raw) {
                None => self
                    .skipped
                    .push((path, format!("emotion `{}` dropped by the label map", p.raw.name()))),
                Some(emotion) => self.clips.push(Clip {
                    path,
                    emotion,
                    raw: p.raw,
                    corpus,
                    speaker: format!("{}:{}", corpus.name(), p.speaker),
                    intensity: p.intensity,
                }),
            },
        }
    }
}

struct Parsed {
    raw: RawEmotion,
    speaker: String,
    intensity: Option<String>,
}

/// `.wav` files under `dir`, sorted by path.
fn wav_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::new(ErrorKind::Corpus, format!("{} is not a directory", dir.display())));
    }
    let mut files = Vec::new();
    for entry in WalkDir::new(dir).follow_links(true).sort_by_file_name() {
        let entry =
            entry.map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", dir.display())))?;
        let p = entry.path();
        if entry.file_type().is_file()
            && p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        {
            files.push(p.to_path_buf());
        }
    }
    Ok(files)
}

fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("")
}

/// Parses a TESS name `<SPK>_<word>_<emotion>` (the emotion may itself contain `_`, as in
/// `pleasant_surprised`); the speaker is taken from the `<SPK>_<emotion>` folder when there
/// is one, since a few files carry a misspelt prefix (`OA_bite_neutral.wav`).
fn parse_tess(path: &Path) -> std::result::Result<Parsed, String> {
    let name = stem(path);
    let parts: Vec<&str> = name.split('_').collect();
    if parts.len() < 3 {
        return Err(format!("`{name}` is not <speaker>_<word>_<emotion>"));
    }
    let label = parts[2..].join("_");
    let raw = RawEmotion::parse(&label).ok_or_else(|| format!("unknown TESS emotion `{label}`"))?;
    let folder_speaker = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str())
        .and_then(|d| d.split_once('_'))
        .filter(|(spk, emo)| !spk.is_empty() && RawEmotion::parse(emo).is_some())
        .map(|(spk, _)| spk.to_ascii_uppercase());
    let speaker = folder_speaker.unwrap_or_else(|| parts[0].to_ascii_uppercase());
    Ok(Parsed { raw, speaker, intensity: None })
}

/// Parses a RAVDESS name `MM-VV-EE-II-SS-RR-AA` (modality, vocal channel, emotion, intensity,
/// statement, repetition, actor). Only speech (`VV` = 01) is read; song is skipped.
fn parse_ravdess(path: &Path) -> std::result::Result<Parsed, String> {
    let name = stem(path);
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() != 7
        || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("`{name}` is not NN-NN-NN-NN-NN-NN-NN"));
    }
    if parts[1] != "01" {
        return Err(format!("vocal channel {} is not speech (01)", parts[1]));
    }
    let raw = match parts[2] {
        "01" => RawEmotion::Class(Emotion::Neutral),
        "02" => RawEmotion::Calm,
        "03" => RawEmotion::Class(Emotion::Happy),
        "04" => RawEmotion::Class(Emotion::Sad),
        "05" => RawEmotion::Class(Emotion::Angry),
        "06" => RawEmotion::Class(Emotion::Fear),
        "07" => RawEmotion::Class(Emotion::Disgust),
        "08" => RawEmotion::Surprise,
        other => return Err(format!("unknown RAVDESS emotion code {other}")),
    };
    Ok(Parsed { raw, speaker: parts[6].to_string(), intensity: Some(parts[3].to_string()) })
}

/// Parses a CREMA-D name `<actor>_<sentence>_<EMO>_<level>`.
fn parse_crema(path: &Path) -> std::result::Result<Parsed, String> {
    let name = stem(path);
    let parts: Vec<&str> = name.split('_').collect();
    if parts.len() != 4 || parts[0].is_empty() || !parts[0].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{name}` is not <actor>_<sentence>_<EMO>_<level>"));
    }
    let raw = match parts[2] {
        "ANG" => Emotion::Angry,
        "DIS" => Emotion::Disgust,
        "FEA" => Emotion::Fear,
        "HAP" => Emotion::Happy,
        "NEU" => Emotion::Neutral,
        "SAD" => Emotion::Sad,
        other => return Err(format!("unknown CREMA-D emotion `{other}`")),
    };
    Ok(Parsed {
        raw: RawEmotion::Class(raw),
        speaker: parts[0].to_string(),
        intensity: Some(parts[3].to_string()),
    })
}

fn read_with(
    dir: &Path,
    corpus: Corpus,
    map: &LabelMap,
    parse: fn(&Path) -> std::result::Result<Parsed, String>,
) -> Result<Scan> {
    let mut scan = Scan::default();
    for path in wav_files(dir)? {
        let parsed = parse(&path);
        scan.keep_or_skip(path, parsed, corpus, map);
    }
    Ok(scan)
}

/// Reads TESS: `<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav` (any depth; `ps`,
/// `pleasant_surprise(d)` and any capitalisation of the emotion are accepted).
pub fn read_tess(dir: &Path, map: &LabelMap) -> Result<Scan> {
    read_with(dir, Corpus::Tess, map, parse_tess)
}

/// Reads RAVDESS speech: `Actor_NN/03-01-EE-II-SS-RR-AA.wav`; emotion, intensity and actor
/// come from the name.
pub fn read_ravdess(dir: &Path, map: &LabelMap) -> Result<Scan> {
    read_with(dir, Corpus::Ravdess, map, parse_ravdess)
}

/// Reads CREMA-D: `AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav` (pass either the corpus
/// root or `AudioWAV` itself).
pub fn read_crema(dir: &Path, map: &LabelMap) -> Result<Scan> {
    read_with(dir, Corpus::Crema, map, parse_crema)
}

/// Reads a CSV manifest of `path,label[,speaker]` lines. A first line whose second field is
/// not an emotion is taken as a header. Relative paths are resolved against the manifest's
/// folder. A missing speaker becomes the file's parent folder name. Quoting is not supported
/// (paths must not contain commas).
pub fn read_manifest(csv: &Path, map: &LabelMap) -> Result<Scan> {
    let text = std::fs::read_to_string(csv).at(csv)?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut scan = Scan::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 2 || fields.len() > 3 || fields[0].is_empty() {
            return Err(Error::new(
                ErrorKind::Corpus,
                format!(
                    "{} line {}: expected `path,label[,speaker]`, got `{line}`",
                    csv.display(),
                    i + 1
                ),
            ));
        }
        let raw = RawEmotion::parse(fields[1]);
        if i == 0 && raw.is_none() {
            continue; // header
        }
        let p = Path::new(fields[0]);
        let path = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let parsed = match raw {
            None => Err(format!("line {}: unknown emotion `{}`", i + 1, fields[1])),
            Some(raw) => {
                let speaker = match fields.get(2).filter(|s| !s.is_empty()) {
                    Some(s) => (*s).to_string(),
                    None => path
                        .parent()
                        .and_then(|d| d.file_name())
                        .and_then(|d| d.to_str())
                        .unwrap_or("unknown")
                        .to_string(),
                };
                Ok(Parsed { raw, speaker, intensity: None })
            }
        };
        scan.keep_or_skip(path, parsed, Corpus::Manifest, map);
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tess_names() {
        let p = Path::new("/x/OAF_Pleasant_surprise/OAF_back_pleasant_surprised.wav");
        let parsed = parse_tess(p).unwrap();
        assert_eq!(parsed.raw, RawEmotion::PleasantSurprise);
        assert_eq!(parsed.speaker, "OAF");
        let parsed = parse_tess(Path::new("/x/OAF_neutral/OA_bite_neutral.wav")).unwrap();
        assert_eq!(parsed.speaker, "OAF");
        assert_eq!(parsed.raw, RawEmotion::Class(Emotion::Neutral));
        let parsed = parse_tess(Path::new("/x/YAF_fear/YAF_bath_Fear.wav")).unwrap();
        assert_eq!(parsed.raw, RawEmotion::Class(Emotion::Fear));
        assert!(parse_tess(Path::new("/x/readme.wav")).is_err());
    }

    #[test]
    fn ravdess_names() {
        let parsed = parse_ravdess(Path::new("Actor_12/03-01-06-02-01-02-12.wav")).unwrap();
        assert_eq!(parsed.raw, RawEmotion::Class(Emotion::Fear));
        assert_eq!(parsed.speaker, "12");
        assert_eq!(parsed.intensity.as_deref(), Some("02"));
        assert_eq!(
            parse_ravdess(Path::new("03-01-02-01-01-01-01.wav")).unwrap().raw,
            RawEmotion::Calm
        );
        assert!(parse_ravdess(Path::new("03-02-01-01-01-01-01.wav")).is_err(), "song is skipped");
        assert!(parse_ravdess(Path::new("03-01-09-01-01-01-01.wav")).is_err());
        assert!(parse_ravdess(Path::new("03-01-01.wav")).is_err());
    }

    #[test]
    fn crema_names() {
        let parsed = parse_crema(Path::new("AudioWAV/1001_DFA_ANG_XX.wav")).unwrap();
        assert_eq!(parsed.raw, RawEmotion::Class(Emotion::Angry));
        assert_eq!(parsed.speaker, "1001");
        assert_eq!(parsed.intensity.as_deref(), Some("XX"));
        assert!(parse_crema(Path::new("1001_DFA_BOR_XX.wav")).is_err());
        assert!(parse_crema(Path::new("OAF_back_angry.wav")).is_err());
    }
}
