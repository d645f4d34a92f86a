//! Corpus readers on the shared fixtures (real clips with their original names).

use std::path::{Path, PathBuf};

use prosodia_trainer::corpus::{Corpus, read_crema, read_manifest, read_ravdess, read_tess};
use prosodia_trainer::labels::{Emotion, Extra, LabelMap};

fn fixtures() -> PathBuf {
    // The `shared/` folder beside the repository root (override with `PROSODIA_SHARED`).
    let shared = std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("fixtures")
}

#[test]
fn tess_fixtures_drop_pleasant_surprise_by_default() -> anyhow::Result<()> {
    let scan = read_tess(&fixtures().join("tess"), &LabelMap::default())?;
    assert_eq!(scan.clips.len(), 12);
    assert_eq!(scan.skipped.len(), 2, "the two `ps` clips");
    assert!(scan.clips.iter().all(|c| c.corpus == Corpus::Tess));
    let mut speakers: Vec<&str> = scan.clips.iter().map(|c| c.speaker.as_str()).collect();
    speakers.dedup();
    assert_eq!(speakers, ["tess:OAF", "tess:YAF"]);
    for e in Emotion::ALL {
        assert_eq!(scan.clips.iter().filter(|c| c.emotion == e).count(), 2, "{e}");
    }
    let map = LabelMap { pleasant_surprise: Extra::As(Emotion::Happy), ..LabelMap::default() };
    let scan = read_tess(&fixtures().join("tess"), &map)?;
    assert_eq!(scan.clips.iter().filter(|c| c.emotion == Emotion::Happy).count(), 4);
    Ok(())
}

#[test]
fn ravdess_fixtures_read_emotion_intensity_and_actor() -> anyhow::Result<()> {
    let scan = read_ravdess(&fixtures().join("ravdess"), &LabelMap::default())?;
    assert_eq!(scan.clips.len(), 12, "8 emotions × 2 actors less calm and surprised");
    assert_eq!(scan.skipped.len(), 4);
    let fear = scan
        .clips
        .iter()
        .find(|c| c.path.ends_with("03-01-06-02-01-01-02.wav"))
        .ok_or(anyhow::anyhow!("missing"))?;
    assert_eq!(fear.emotion, Emotion::Fear);
    assert_eq!(fear.speaker, "ravdess:02");
    assert_eq!(fear.intensity.as_deref(), Some("02"));
    let map = LabelMap { calm: Extra::As(Emotion::Neutral), ..LabelMap::default() };
    let scan = read_ravdess(&fixtures().join("ravdess"), &map)?;
    assert_eq!(scan.clips.iter().filter(|c| c.emotion == Emotion::Neutral).count(), 4);
    Ok(())
}

#[test]
fn crema_reader_on_renamed_fixtures() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let audio = tmp.path().join("AudioWAV");
    std::fs::create_dir(&audio)?;
    let src = fixtures().join("ravdess/03-01-01-01-01-01-01.wav");
    let names = [
        "1001_DFA_ANG_XX",
        "1001_IEO_DIS_HI",
        "1002_DFA_FEA_LO",
        "1002_TIE_HAP_MD",
        "1003_ITS_NEU_XX",
        "1003_WSI_SAD_XX",
        "1004_DFA_BOR_XX",
        "notes",
    ];
    for n in names {
        std::fs::copy(&src, audio.join(format!("{n}.wav")))?;
    }
    let scan = read_crema(tmp.path(), &LabelMap::default())?;
    assert_eq!(scan.clips.len(), 6);
    assert_eq!(scan.skipped.len(), 2);
    let emotions: Vec<Emotion> = scan.clips.iter().map(|c| c.emotion).collect();
    assert_eq!(emotions, Emotion::ALL);
    assert_eq!(scan.clips[0].speaker, "crema:1001");
    assert_eq!(scan.clips[1].intensity.as_deref(), Some("HI"));
    Ok(())
}

#[test]
fn manifest_with_header_relative_paths_and_speakers() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let wav = fixtures().join("tess/OAF_back_angry.wav");
    std::fs::copy(&wav, tmp.path().join("a.wav"))?;
    let csv = tmp.path().join("m.csv");
    std::fs::write(
        &csv,
        format!(
            "path,label,speaker\na.wav,Anger,s1\n{},sad\nb.wav,calm,s2\n",
            fixtures().join("tess/YAF_bath_sad.wav").display()
        ),
    )?;
    let scan = read_manifest(&csv, &LabelMap::default())?;
    assert_eq!(scan.clips.len(), 2);
    assert_eq!(scan.clips[0].path, tmp.path().join("a.wav"));
    assert_eq!(scan.clips[0].emotion, Emotion::Angry);
    assert_eq!(scan.clips[0].speaker, "manifest:s1");
    assert_eq!(scan.clips[1].speaker, "manifest:tess", "speaker defaults to the folder");
    assert_eq!(scan.skipped.len(), 1, "calm dropped");
    std::fs::write(&csv, "a.wav\n")?;
    assert!(read_manifest(&csv, &LabelMap::default()).is_err());
    Ok(())
}
