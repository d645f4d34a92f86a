//! Train/validation/test splits: stratified random, by speaker, and k-fold by speaker.
//!
//! All splits are functions of the clip list and a seed only (the generator is
//! [`crate::util::Rng`], whose sequence is fixed), so a seed names a split for good. Indices
//! refer to the clip slice passed in and are returned sorted.
//!
//! * **random**: each class is shuffled and cut in the requested proportions; the rounding
//!   left over per class is handed out by largest remainder, so the overall sizes match the
//!   proportions and every class is represented in each part as far as its count allows.
//! * **speaker**: speakers, not clips, are dealt out; within each corpus they go, largest
//!   first (ties in seeded order), to whichever part is furthest below its share of that
//!   corpus. No speaker appears in two parts. A corpus with two speakers (TESS) puts one in
//!   training and the other in validation, so the test part has no clip of it; the report's
//!   per-corpus breakdown shows this.
//! * **k-fold by speaker**: speakers are dealt into `k` folds the same way and fold `i` is
//!   the test part. The validation part is either fold `i + 1` ([`FoldValidation::NextFold`])
//!   or a share of the other folds' speakers, dealt per corpus like a speaker split
//!   ([`FoldValidation::Share`], the default): with four folds of RAVDESS's 24 actors the
//!   first trains on 12 actors, the second on 15, and the test folds are the same in both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::corpus::{Clip, Corpus};
use crate::error::{Error, ErrorKind, Result};
use crate::labels::Emotion;
use crate::util::Rng;

/// Indices of the clips in each part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Clips the model is fitted on (and the standardisation statistics computed on).
    pub train: Vec<usize>,
    /// Clips for early stopping and checkpoint choice.
    pub val: Vec<usize>,
    /// Clips only scored at the end.
    pub test: Vec<usize>,
}

/// Proportions of train, validation and test (they must add to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fractions {
    /// Training share.
    pub train: f64,
    /// Validation share.
    pub val: f64,
    /// Test share.
    pub test: f64,
}

impl Default for Fractions {
    /// 70 / 15 / 15.
    fn default() -> Self {
        Self { train: 0.70, val: 0.15, test: 0.15 }
    }
}

impl Fractions {
    fn validate(&self) -> Result<()> {
        let all = [self.train, self.val, self.test];
        if all.iter().any(|f| !(f.is_finite() && *f >= 0.0))
            || (all.iter().sum::<f64>() - 1.0).abs() > 1e-6
            || self.train <= 0.0
        {
            return Err(Error::new(
                ErrorKind::Split,
                format!(
                    "fractions {}/{}/{} must be ≥ 0, add to 1, with training > 0",
                    self.train, self.val, self.test
                ),
            ));
        }
        Ok(())
    }

    fn as_array(&self) -> [f64; 3] {
        [self.train, self.val, self.test]
    }
}

impl Split {
    fn from_parts(mut parts: [Vec<usize>; 3]) -> Self {
        for p in &mut parts {
            p.sort_unstable();
        }
        let [train, val, test] = parts;
        Self { train, val, test }
    }
}

/// Stratified random split.
pub fn random(clips: &[Clip], fractions: Fractions, seed: u64) -> Result<Split> {
    fractions.validate()?;
    if clips.is_empty() {
        return Err(Error::new(ErrorKind::Split, "no clips to split"));
    }
    let mut rng = Rng::new(seed);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); Emotion::COUNT];
    for (i, c) in clips.iter().enumerate() {
        by_class[c.emotion.index()].push(i);
    }
    for members in &mut by_class {
        rng.shuffle(members);
    }
    let fr = fractions.as_array();
    let n = clips.len() as f64;
    // counts[class][part]
    let mut counts: Vec<[usize; 3]> = vec![[0; 3]; Emotion::COUNT];
    let mut left: Vec<usize> = by_class.iter().map(Vec::len).collect();
    for part in 0..2 {
        let target = (n * fr[part]).round() as usize;
        let mut given = 0;
        let mut remainders = Vec::new();
        for (class, members) in by_class.iter().enumerate() {
            let exact = members.len() as f64 * fr[part];
            let take = (exact.floor() as usize).min(left[class]);
            counts[class][part] = take;
            left[class] -= take;
            given += take;
            remainders.push((exact - exact.floor(), rng.next_u64(), class));
        }
        remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, _, class) in remainders.iter().cycle().take(remainders.len() * 2) {
            if given >= target {
                break;
            }
            if left[class] > 0 {
                counts[class][part] += 1;
                left[class] -= 1;
                given += 1;
            }
        }
    }
    let mut parts: [Vec<usize>; 3] = Default::default();
    for (class, members) in by_class.iter().enumerate() {
        let [tr, va, _] = counts[class];
        parts[0].extend_from_slice(&members[..tr]);
        parts[1].extend_from_slice(&members[tr..tr + va]);
        parts[2].extend_from_slice(&members[tr + va..]);
    }
    Ok(Split::from_parts(parts))
}

/// Speakers grouped per corpus: corpus → [(speaker, clip indices)], largest first with ties in
/// seeded order.
fn speakers_by_corpus(
    clips: &[Clip],
    rng: &mut Rng,
) -> BTreeMap<Corpus, Vec<(String, Vec<usize>)>> {
    let mut groups: BTreeMap<Corpus, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for (i, c) in clips.iter().enumerate() {
        groups.entry(c.corpus).or_default().entry(c.speaker.clone()).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|(corpus, speakers)| {
            let mut list: Vec<(String, Vec<usize>)> = speakers.into_iter().collect();
            rng.shuffle(&mut list);
            list.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
            (corpus, list)
        })
        .collect()
}

/// Deals groups into bins whose target shares are `shares`, each group to the bin furthest
/// below its share (relative deficit; ties to the earlier bin). `filled` and `total` carry
/// the fill levels over from earlier calls: pass fresh zeros to balance one corpus on its
/// own, or keep them across corpora to balance the union.
fn deal(
    groups: &[(String, Vec<usize>)],
    shares: &[f64],
    bins: &mut [Vec<usize>],
    filled: &mut [usize],
    total: &mut usize,
) {
    *total += groups.iter().map(|(_, m)| m.len()).sum::<usize>();
    for (_, members) in groups {
        let mut best = None;
        for (b, &share) in shares.iter().enumerate() {
            if share <= 0.0 {
                continue;
            }
            let target = share * *total as f64;
            let deficit = (target - filled[b] as f64) / target;
            if best.is_none_or(|(_, d)| deficit > d) {
                best = Some((b, deficit));
            }
        }
        if let Some((b, _)) = best {
            filled[b] += members.len();
            bins[b].extend_from_slice(members);
        }
    }
}

/// Speaker-independent split: no speaker in more than one part.
pub fn by_speaker(clips: &[Clip], fractions: Fractions, seed: u64) -> Result<Split> {
    fractions.validate()?;
    let mut rng = Rng::new(seed);
    let groups = speakers_by_corpus(clips, &mut rng);
    let speakers: usize = groups.values().map(Vec::len).sum();
    let needed = fractions.as_array().iter().filter(|f| **f > 0.0).count();
    if speakers < needed {
        return Err(Error::new(
            ErrorKind::Split,
            format!(
                "a speaker split into {needed} parts needs at least {needed} speakers, found {speakers}"
            ),
        ));
    }
    let mut parts: [Vec<usize>; 3] = Default::default();
    for list in groups.values() {
        // Each corpus is balanced on its own, so every part holds each corpus's share.
        deal(list, &fractions.as_array(), &mut parts, &mut [0; 3], &mut 0);
    }
    if parts[0].is_empty() {
        return Err(Error::new(ErrorKind::Split, "the speaker split left the training part empty"));
    }
    Ok(Split::from_parts(parts))
}

/// Where a k-fold split's validation speakers come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FoldValidation {
    /// Fold `i + 1` validates fold `i`'s model, leaving `k - 2` folds to train on.
    NextFold,
    /// This share (0 < share < 1) of the speakers outside the test fold validates, dealt per
    /// corpus; the rest trains.
    Share(f64),
}

impl std::fmt::Display for FoldValidation {
    /// `next`, or the share as a number: what `prosodia-train --fold-validation` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NextFold => f.write_str("next"),
            Self::Share(s) => write!(f, "{s}"),
        }
    }
}

impl Default for FoldValidation {
    /// 15 % of the non-test speakers, as in the 70/15/15 split.
    fn default() -> Self {
        Self::Share(0.15)
    }
}

/// K-fold cross-validation by speaker: `k` splits, fold `i` tested, validated as `validation`
/// says.
pub fn speaker_folds(
    clips: &[Clip],
    k: usize,
    validation: FoldValidation,
    seed: u64,
) -> Result<Vec<Split>> {
    let min_k = match validation {
        FoldValidation::NextFold => 3,
        FoldValidation::Share(s) if s > 0.0 && s < 1.0 => 2,
        FoldValidation::Share(s) => {
            return Err(Error::new(
                ErrorKind::Split,
                format!("the validation share of a k-fold split must lie in (0, 1), got {s}"),
            ));
        }
    };
    if k < min_k {
        return Err(Error::new(
            ErrorKind::Split,
            format!("k-fold needs k ≥ {min_k} with this validation, got {k}"),
        ));
    }
    let mut rng = Rng::new(seed);
    let groups = speakers_by_corpus(clips, &mut rng);
    let speakers: usize = groups.values().map(Vec::len).sum();
    if speakers < k {
        return Err(Error::new(
            ErrorKind::Split,
            format!("{k} folds need at least {k} speakers, found {speakers}"),
        ));
    }
    let mut folds: Vec<Vec<usize>> = vec![Vec::new(); k];
    // Fill levels carry over between corpora, so a corpus with fewer speakers than folds
    // (TESS has two) does not always land in the first folds.
    let (mut filled, mut total) = (vec![0; k], 0);
    for list in groups.values() {
        deal(list, &vec![1.0 / k as f64; k], &mut folds, &mut filled, &mut total);
    }
    if let Some(empty) = folds.iter().position(Vec::is_empty) {
        return Err(Error::new(
            ErrorKind::Split,
            format!("fold {} of {k} got no speaker: use fewer folds", empty + 1),
        ));
    }
    let FoldValidation::Share(share) = validation else {
        return Ok((0..k)
            .map(|i| {
                let v = (i + 1) % k;
                let train = (0..k)
                    .filter(|&j| j != i && j != v)
                    .flat_map(|j| folds[j].iter().copied())
                    .collect();
                Split::from_parts([train, folds[v].clone(), folds[i].clone()])
            })
            .collect());
    };
    let mut fold_of = vec![0; clips.len()];
    for (f, members) in folds.iter().enumerate() {
        members.iter().for_each(|&c| fold_of[c] = f);
    }
    let mut splits = Vec::with_capacity(k);
    for (i, test) in folds.iter().enumerate() {
        let mut parts: [Vec<usize>; 2] = Default::default();
        for list in groups.values() {
            let rest: Vec<(String, Vec<usize>)> =
                list.iter().filter(|(_, m)| fold_of[m[0]] != i).cloned().collect();
            deal(&rest, &[1.0 - share, share], &mut parts, &mut [0; 2], &mut 0);
        }
        if parts[1].is_empty() {
            return Err(Error::new(
                ErrorKind::Split,
                format!(
                    "fold {} of {k}: a validation share of {share} left no validation speaker",
                    i + 1
                ),
            ));
        }
        let [train, val] = parts;
        splits.push(Split::from_parts([train, val, test.clone()]));
    }
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use super::*;
    use crate::labels::RawEmotion;

    /// `speakers` speakers per corpus, each with `per` clips per class.
    fn synthetic(corpora: &[(Corpus, usize)], per: usize) -> Vec<Clip> {
        let mut clips = Vec::new();
        for &(corpus, speakers) in corpora {
            for s in 0..speakers {
                for e in Emotion::ALL {
                    for k in 0..per {
                        clips.push(Clip {
                            path: PathBuf::from(format!("{corpus}/{s}/{e}/{k}.wav")),
                            emotion: e,
                            raw: RawEmotion::Class(e),
                            corpus,
                            speaker: format!("{corpus}:{s}"),
                            intensity: None,
                        });
                    }
                }
            }
        }
        clips
    }

    fn speakers_of(clips: &[Clip], idx: &[usize]) -> HashSet<String> {
        idx.iter().map(|&i| clips[i].speaker.clone()).collect()
    }

    fn assert_partition(split: &Split, n: usize) {
        let mut all: Vec<usize> =
            split.train.iter().chain(&split.val).chain(&split.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every clip exactly once");
    }

    #[test]
    fn random_split_is_stratified_and_sized() {
        let clips = synthetic(&[(Corpus::Tess, 2), (Corpus::Ravdess, 10)], 5);
        let split = random(&clips, Fractions::default(), 11).unwrap();
        assert_partition(&split, clips.len());
        let n = clips.len() as f64;
        assert_eq!(split.train.len(), (n * 0.7).round() as usize);
        assert_eq!(split.val.len(), (n * 0.15).round() as usize);
        for e in Emotion::ALL {
            let count =
                |idx: &[usize]| idx.iter().filter(|&&i| clips[i].emotion == e).count() as f64;
            let per_class = n / 6.0;
            assert!((count(&split.train) - per_class * 0.7).abs() <= 1.0, "{e} train");
            assert!((count(&split.val) - per_class * 0.15).abs() <= 1.0, "{e} val");
            assert!((count(&split.test) - per_class * 0.15).abs() <= 1.0, "{e} test");
        }
    }

    #[test]
    fn random_split_is_deterministic_by_seed() {
        let clips = synthetic(&[(Corpus::Ravdess, 6)], 3);
        let a = random(&clips, Fractions::default(), 5).unwrap();
        assert_eq!(a, random(&clips, Fractions::default(), 5).unwrap());
        assert_ne!(a, random(&clips, Fractions::default(), 6).unwrap());
    }

    #[test]
    fn speaker_split_has_no_leakage() {
        let clips = synthetic(&[(Corpus::Tess, 2), (Corpus::Ravdess, 24), (Corpus::Crema, 9)], 2);
        for seed in 0..5 {
            let split = by_speaker(&clips, Fractions::default(), seed).unwrap();
            assert_partition(&split, clips.len());
            let (tr, va, te) = (
                speakers_of(&clips, &split.train),
                speakers_of(&clips, &split.val),
                speakers_of(&clips, &split.test),
            );
            assert!(
                tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te),
                "seed {seed}"
            );
            assert!(!va.is_empty() && !te.is_empty());
            let share = split.train.len() as f64 / clips.len() as f64;
            assert!((0.55..0.85).contains(&share), "train share {share}");
        }
        let a = by_speaker(&clips, Fractions::default(), 1).unwrap();
        assert_eq!(a, by_speaker(&clips, Fractions::default(), 1).unwrap());
    }

    #[test]
    fn speaker_split_refuses_too_few_speakers() {
        let clips = synthetic(&[(Corpus::Tess, 2)], 1);
        assert_eq!(
            by_speaker(&clips, Fractions::default(), 0).unwrap_err().kind(),
            ErrorKind::Split
        );
    }

    #[test]
    fn speaker_folds_cover_each_speaker_once_as_test() {
        let clips = synthetic(&[(Corpus::Ravdess, 10), (Corpus::Tess, 2)], 1);
        for validation in [FoldValidation::NextFold, FoldValidation::Share(0.15)] {
            check_folds(&clips, validation);
        }
        assert!(speaker_folds(&clips, 2, FoldValidation::NextFold, 0).is_err());
        assert!(speaker_folds(&clips, 4, FoldValidation::Share(0.0), 0).is_err());
        assert!(speaker_folds(&clips, 4, FoldValidation::Share(1.0), 0).is_err());
        // Two corpora of two speakers each still fill four folds.
        let small = synthetic(&[(Corpus::Tess, 2), (Corpus::Ravdess, 2)], 1);
        let folds = speaker_folds(&small, 4, FoldValidation::NextFold, 0).unwrap();
        assert!(folds.iter().all(|f| !f.test.is_empty() && !f.train.is_empty()));
    }

    fn check_folds(clips: &[Clip], validation: FoldValidation) {
        let folds = speaker_folds(clips, 5, validation, 3).unwrap();
        assert_eq!(folds.len(), 5);
        let mut tested = Vec::new();
        for f in &folds {
            assert_partition(f, clips.len());
            let (tr, va, te) = (
                speakers_of(clips, &f.train),
                speakers_of(clips, &f.val),
                speakers_of(clips, &f.test),
            );
            assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
            tested.extend(te);
        }
        tested.sort();
        let before = tested.len();
        tested.dedup();
        assert_eq!(before, tested.len(), "a speaker tested twice");
        assert_eq!(tested.len(), 12, "every speaker tested once");
    }

    #[test]
    fn a_validation_share_trains_on_more_speakers_over_the_same_test_folds() {
        let clips = synthetic(&[(Corpus::Ravdess, 24)], 1);
        let next = speaker_folds(&clips, 4, FoldValidation::NextFold, 7).unwrap();
        let shared = speaker_folds(&clips, 4, FoldValidation::Share(0.15), 7).unwrap();
        for (a, b) in next.iter().zip(&shared) {
            assert_eq!(a.test, b.test, "the test folds do not depend on the validation");
            assert_eq!(speakers_of(&clips, &a.train).len(), 12);
            // 15 % of the 18 other speakers, rounded by the deal: 3 validate, 15 train.
            assert_eq!(speakers_of(&clips, &b.val).len(), 3);
            assert_eq!(speakers_of(&clips, &b.train).len(), 15);
        }
        // Reports name the protocol the way the command line takes it.
        assert_eq!(FoldValidation::NextFold.to_string(), "next");
        assert_eq!(FoldValidation::Share(0.15).to_string(), "0.15");
        // The validation speakers differ between folds, so no one fold's choice is special.
        let vals: HashSet<Vec<String>> = shared
            .iter()
            .map(|f| {
                let mut v: Vec<String> = speakers_of(&clips, &f.val).into_iter().collect();
                v.sort();
                v
            })
            .collect();
        assert!(vals.len() > 1);
    }
}
