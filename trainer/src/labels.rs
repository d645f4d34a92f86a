//! The six emotion classes and the map from each corpus's raw labels onto them.
//!
//! Every corpus names its emotions differently (`ps`, `pleasant_surprised`, RAVDESS code `06`,
//! CREMA-D `FEA`, ...). Readers first normalise a raw label to a [`RawEmotion`], then the
//! [`LabelMap`] decides which of the six [`Emotion`] classes it becomes, or drops it. The
//! three emotions outside the six (calm, surprise, pleasant surprise) are dropped by default
//! and can be mapped onto a class instead.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One of the six classes every model predicts, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    /// Anger.
    Angry,
    /// Disgust.
    Disgust,
    /// Fear (RAVDESS "fearful", the case study's "scared").
    Fear,
    /// Happiness.
    Happy,
    /// Neutral speech.
    Neutral,
    /// Sadness.
    Sad,
}

impl Emotion {
    /// Number of classes.
    pub const COUNT: usize = 6;

    /// All classes in model output order.
    pub const ALL: [Emotion; Self::COUNT] = [
        Emotion::Angry,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Neutral,
        Emotion::Sad,
    ];

    /// The class index (position in the model output).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class at `index`, if it is in range.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// The stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Angry => "angry",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Neutral => "neutral",
            Emotion::Sad => "sad",
        }
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every emotion any supported corpus uses, before mapping onto the six classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawEmotion {
    /// One of the six classes.
    Class(Emotion),
    /// RAVDESS "calm".
    Calm,
    /// RAVDESS "surprised".
    Surprise,
    /// TESS "pleasant surprise" (`ps`).
    PleasantSurprise,
}

impl RawEmotion {
    /// Normalises a label as written in file names or manifests (case-insensitive):
    /// the six class names and their common variants (`anger`, `ang`, `fearful`, `scared`,
    /// `fea`, `happiness`, `hap`, `neu`, `sadness`, `dis`, `disgusted`), plus `calm`,
    /// `surprise`/`surprised`, and `ps`/`pleasant_surprise`/`pleasant_surprised`.
    pub fn parse(label: &str) -> Option<Self> {
        let l = label.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let class = |e| Some(RawEmotion::Class(e));
        match l.as_str() {
            "angry" | "anger" | "ang" => class(Emotion::Angry),
            "disgust" | "disgusted" | "dis" => class(Emotion::Disgust),
            "fear" | "fearful" | "scared" | "fea" => class(Emotion::Fear),
            "happy" | "happiness" | "hap" | "joy" => class(Emotion::Happy),
            "neutral" | "neu" => class(Emotion::Neutral),
            "sad" | "sadness" => class(Emotion::Sad),
            "calm" => Some(RawEmotion::Calm),
            "surprise" | "surprised" | "sur" => Some(RawEmotion::Surprise),
            "ps" | "pleasant_surprise" | "pleasant_surprised" | "pleasantsurprise" => {
                Some(RawEmotion::PleasantSurprise)
            }
            _ => None,
        }
    }

    /// The stable name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            RawEmotion::Class(e) => e.name(),
            RawEmotion::Calm => "calm",
            RawEmotion::Surprise => "surprise",
            RawEmotion::PleasantSurprise => "pleasant_surprise",
        }
    }
}

/// What to do with an emotion outside the six classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extra {
    /// Leave the clip out (the default).
    #[default]
    Drop,
    /// Count the clip as this class.
    As(Emotion),
}

impl FromStr for Extra {
    type Err = Error;

    /// `drop`, or a class name.
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("drop") {
            return Ok(Extra::Drop);
        }
        match RawEmotion::parse(s) {
            Some(RawEmotion::Class(e)) => Ok(Extra::As(e)),
            _ => Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "`{s}`: expected `drop` or one of angry, disgust, fear, happy, neutral, sad"
                ),
            )),
        }
    }
}

/// Maps raw corpus emotions onto the six classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LabelMap {
    /// RAVDESS "calm".
    pub calm: Extra,
    /// RAVDESS "surprised".
    pub surprise: Extra,
    /// TESS "pleasant surprise".
    pub pleasant_surprise: Extra,
}

impl LabelMap {
    /// The class for `raw`, or `None` if it is dropped.
    pub fn map(&self, raw: RawEmotion) -> Option<Emotion> {
        let extra = match raw {
            RawEmotion::Class(e) => return Some(e),
            RawEmotion::Calm => self.calm,
            RawEmotion::Surprise => self.surprise,
            RawEmotion::PleasantSurprise => self.pleasant_surprise,
        };
        match extra {
            Extra::Drop => None,
            Extra::As(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_to_the_same_class() {
        for s in ["fear", "Fear", "FEA", "fearful", "scared"] {
            assert_eq!(RawEmotion::parse(s), Some(RawEmotion::Class(Emotion::Fear)), "{s}");
        }
        for s in ["ps", "pleasant_surprise", "pleasant_surprised", "Pleasant_Surprised"] {
            assert_eq!(RawEmotion::parse(s), Some(RawEmotion::PleasantSurprise), "{s}");
        }
        assert_eq!(RawEmotion::parse("bored"), None);
    }

    #[test]
    fn extras_drop_by_default_and_map_on_request() {
        let map = LabelMap::default();
        assert_eq!(map.map(RawEmotion::Calm), None);
        assert_eq!(map.map(RawEmotion::Class(Emotion::Sad)), Some(Emotion::Sad));
        let map = LabelMap { calm: "neutral".parse().unwrap(), ..LabelMap::default() };
        assert_eq!(map.map(RawEmotion::Calm), Some(Emotion::Neutral));
        assert!("sleepy".parse::<Extra>().is_err());
    }

    #[test]
    fn index_round_trips() {
        for e in Emotion::ALL {
            assert_eq!(Emotion::from_index(e.index()), Some(e));
        }
        assert_eq!(Emotion::from_index(6), None);
    }
}
