//! Speaker adaptation by normalisation (`--speaker-norm`): every clip's features are
//! standardised with statistics of other clips by the same speaker, before the usual
//! training-set standardisation.
//!
//! Much of what separates one actor's anger from another actor's neutral speech is the actor:
//! pitch range, loudness, timbre. Removing each speaker's own average and spread leaves what
//! changes *within* a speaker, which is what an emotion is. The statistics use no labels, but
//! they do use audio of the speaker being scored, so this is a different protocol from plain
//! speaker-independent evaluation: it assumes a deployment that has heard some unlabelled
//! speech of the speaker first (earlier calls, earlier utterances of a session).
//!
//! To keep the protocol honest, no clip contributes to its own statistics. A speaker's clips,
//! in corpus order, are dealt alternately into two halves, and each half is normalised with
//! the other half's statistics (for RAVDESS, whose names sort by repetition last, the halves
//! are the first and second take of every sentence). The rule is the same for every part of a
//! split, so training and test clips are treated alike. It needs a split by speaker: under a
//! random split a training clip's statistics would come from test clips.

use std::collections::BTreeMap;

use crate::dataset::Dataset;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Arch;

/// The clips of each speaker, in dataset order.
fn clips_by_speaker(ds: &Dataset) -> BTreeMap<&str, Vec<usize>> {
    let mut by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, clip) in ds.clips.iter().enumerate() {
        by.entry(clip.speaker.as_str()).or_default().push(i);
    }
    by
}

/// A copy of `ds` whose frame matrices and utterance features are normalised per speaker,
/// each clip with the statistics of the other half of its speaker's clips (see the module
/// docs). Fails, naming the speaker, when a speaker has fewer than two clips.
pub fn normalize_by_speaker(ds: &Dataset) -> Result<Dataset> {
    let mut out = ds.clone();
    for (speaker, clips) in clips_by_speaker(ds) {
        if clips.len() < 2 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "speaker normalisation: speaker {speaker} has {} clip(s); each speaker needs \
                     at least two, so that no clip is normalised by its own statistics",
                    clips.len()
                ),
            ));
        }
        let even: Vec<usize> = clips.iter().copied().step_by(2).collect();
        let odd: Vec<usize> = clips.iter().copied().skip(1).step_by(2).collect();
        for (scored, reference) in [(&even, &odd), (&odd, &even)] {
            // The same statistics training standardisation fits, over the other half only.
            let frames = ds.fit_standardizer(reference, Arch::CnnLstm)?;
            let utterance = ds.fit_standardizer(reference, Arch::Mlp)?;
            for &i in scored {
                let f = &mut out.features[i];
                frames.apply(&mut f.frames);
                for ((v, m), s) in f.utterance.iter_mut().zip(&utterance.mean).zip(&utterance.std) {
                    *v = (*v - f64::from(*m)) / f64::from(*s);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::corpus::{Clip, Corpus};
    use crate::features::ClipFeatures;
    use crate::labels::{Emotion, RawEmotion};

    /// A clip of `rows` frames, every frame `[a, b]`, utterance features `[a, 10 b]`.
    fn clip(speaker: &str, n: usize, a: f32, b: f32) -> (Clip, ClipFeatures) {
        let rows = 3;
        let clip = Clip {
            path: PathBuf::from(format!("{speaker}/{n}.wav")),
            corpus: Corpus::Ravdess,
            speaker: speaker.to_string(),
            emotion: Emotion::Neutral,
            raw: RawEmotion::Class(Emotion::Neutral),
            intensity: None,
        };
        let frames = [a, b].repeat(rows);
        let utterance = vec![f64::from(a), 10.0 * f64::from(b)];
        (clip, ClipFeatures { frames, rows, cols: 2, utterance })
    }

    fn dataset(rows: Vec<(Clip, ClipFeatures)>) -> Dataset {
        let (clips, features) = rows.into_iter().unzip();
        Dataset { clips, features, failed: vec![] }
    }

    fn corpus() -> Vec<(Clip, ClipFeatures)> {
        let mut rows = vec![];
        // Speaker x speaks 100 higher than speaker y in the first column; both vary alike.
        for (k, v) in [1.0f32, 3.0, 2.0, 6.0].into_iter().enumerate() {
            rows.push(clip("ravdess:x", k, 100.0 + v, v));
            rows.push(clip("ravdess:y", k, v, -v));
        }
        rows
    }

    #[test]
    fn each_half_is_normalised_by_the_other() {
        let ds = dataset(corpus());
        let out = normalize_by_speaker(&ds).unwrap();
        // Speaker x's clips 0 and 2 (values 1, 2) are normalised by clips 1 and 3 (3, 6):
        // mean 4.5, std 1.5. The speaker offset of 100 is gone: x and y give the same first
        // column.
        let x0 = &out.features[0];
        assert!((x0.frame(0)[0] - (1.0 - 4.5) / 1.5).abs() < 1e-5, "{:?}", x0.frames);
        assert!((x0.utterance[0] - (1.0 - 4.5) / 1.5).abs() < 1e-5);
        assert!((x0.utterance[1] - (10.0 - 45.0) / 15.0).abs() < 1e-5);
        for k in 0..4 {
            let (x, y) = (&out.features[2 * k], &out.features[2 * k + 1]);
            assert!((x.frame(1)[0] - y.frame(2)[0]).abs() < 1e-4, "clip {k}");
            assert!((x.frame(0)[1] + y.frame(0)[1]).abs() < 1e-4, "clip {k}");
        }
    }

    #[test]
    fn no_clip_enters_its_own_statistics() {
        let ds = dataset(corpus());
        let before = normalize_by_speaker(&ds).unwrap();
        // Change speaker x's first clip (index 0, even half): the other even clip of x keeps
        // its result, the odd clips of x change, speaker y is untouched.
        let mut changed = ds.clone();
        changed.features[0].frames.iter_mut().for_each(|v| *v += 50.0);
        changed.features[0].utterance.iter_mut().for_each(|v| *v += 50.0);
        let after = normalize_by_speaker(&changed).unwrap();
        let same = |i: usize| {
            before.features[i].frames == after.features[i].frames
                && before.features[i].utterance == after.features[i].utterance
        };
        assert!(same(4), "x's other even clip moved");
        assert!(!same(2) && !same(6), "x's odd clips must follow the even half");
        assert!(!same(0), "the changed clip itself must change");
        assert!((1..8).step_by(2).all(same), "speaker y moved");
    }

    #[test]
    fn a_speaker_with_one_clip_is_refused_by_name() {
        let mut rows = corpus();
        rows.push(clip("ravdess:lonely", 0, 1.0, 1.0));
        let err = normalize_by_speaker(&dataset(rows)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("ravdess:lonely"), "{err}");
    }
}
