//! Evaluation: accuracy, macro and weighted F1, per-class precision/recall/F1/support, the
//! confusion matrix, and per-corpus and per-speaker breakdowns, written as `report.json` and
//! `report.md`.
//!
//! Averages follow scikit-learn's `classification_report`: macro F1 is the unweighted mean
//! over the classes that occur in the truth or the predictions, weighted F1 weights each
//! class by its support, and a precision or recall with a zero denominator counts as 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::labels::Emotion;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub label: String,
    /// Of the clips predicted as this class, the share that are.
    pub precision: f64,
    /// Of the clips of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Clips of this class.
    pub support: usize,
}

/// Accuracy and macro F1 of a subset (a corpus, a speaker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMetrics {
    /// Clips in the group.
    pub n: usize,
    /// Share predicted correctly.
    pub accuracy: f64,
    /// Macro F1 within the group.
    pub macro_f1: f64,
}

/// The full evaluation of one model on one set of clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Share of clips predicted correctly.
    pub accuracy: f64,
    /// Unweighted mean F1 over classes.
    pub macro_f1: f64,
    /// Support-weighted mean F1.
    pub weighted_f1: f64,
    /// Clips scored.
    pub n: usize,
    /// Class names in index order (rows and columns of the confusion matrix).
    pub labels: Vec<String>,
    /// Per-class metrics in label order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Metrics per corpus.
    pub per_corpus: BTreeMap<String, GroupMetrics>,
    /// Metrics per speaker.
    pub per_speaker: BTreeMap<String, GroupMetrics>,
    /// Free-form run information (model, features, split, training history).
    #[serde(default)]
    pub meta: serde_json::Value,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn confusion(truth: &[usize], pred: &[usize]) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0usize; Emotion::COUNT]; Emotion::COUNT];
    for (&t, &p) in truth.iter().zip(pred) {
        if t < Emotion::COUNT && p < Emotion::COUNT {
            m[t][p] += 1;
        }
    }
    m
}

fn class_metrics(m: &[Vec<usize>]) -> Vec<ClassMetrics> {
    (0..Emotion::COUNT)
        .map(|c| {
            let tp = m[c][c];
            let support: usize = m[c].iter().sum();
            let predicted: usize = m.iter().map(|row| row[c]).sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            let label =
                Emotion::from_index(c).map_or_else(|| c.to_string(), |e| e.name().to_string());
            ClassMetrics { label, precision, recall, f1, support }
        })
        .collect()
}

fn macro_f1(m: &[Vec<usize>], classes: &[ClassMetrics]) -> f64 {
    let present: Vec<f64> = (0..Emotion::COUNT)
        .filter(|&c| classes[c].support > 0 || m.iter().any(|row| row[c] > 0))
        .map(|c| classes[c].f1)
        .collect();
    if present.is_empty() { 0.0 } else { present.iter().sum::<f64>() / present.len() as f64 }
}

fn group(truth: &[usize], pred: &[usize]) -> GroupMetrics {
    let m = confusion(truth, pred);
    let classes = class_metrics(&m);
    let correct = truth.iter().zip(pred).filter(|(t, p)| t == p).count();
    GroupMetrics {
        n: truth.len(),
        accuracy: ratio(correct, truth.len()),
        macro_f1: macro_f1(&m, &classes),
    }
}

impl Report {
    /// Scores predictions against the truth (class indices); `corpus` and `speaker` name each
    /// clip's group for the breakdowns.
    pub fn compute(
        truth: &[usize],
        pred: &[usize],
        corpus: &[String],
        speaker: &[String],
    ) -> Result<Self> {
        let n = truth.len();
        if pred.len() != n || corpus.len() != n || speaker.len() != n {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "report: truth, predictions and groups differ in length",
            ));
        }
        if n == 0 {
            return Err(Error::new(ErrorKind::InvalidArgument, "report: no clips to score"));
        }
        let m = confusion(truth, pred);
        let per_class = class_metrics(&m);
        let correct = truth.iter().zip(pred).filter(|(t, p)| t == p).count();
        let total: usize = per_class.iter().map(|c| c.support).sum();
        let weighted_f1 =
            per_class.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / total.max(1) as f64;
        let breakdown = |keys: &[String]| {
            let mut groups: BTreeMap<String, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
            for i in 0..n {
                let g = groups.entry(keys[i].clone()).or_default();
                g.0.push(truth[i]);
                g.1.push(pred[i]);
            }
            groups.into_iter().map(|(k, (t, p))| (k, group(&t, &p))).collect()
        };
        Ok(Self {
            accuracy: ratio(correct, n),
            macro_f1: macro_f1(&m, &per_class),
            weighted_f1,
            n,
            labels: Emotion::ALL.iter().map(|e| e.name().to_string()).collect(),
            per_class,
            confusion: m,
            per_corpus: breakdown(corpus),
            per_speaker: breakdown(speaker),
            meta: serde_json::Value::Null,
        })
    }

    /// The report as Markdown.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {title}\n");
        let _ = writeln!(
            s,
            "{} clips: accuracy **{:.4}**, macro F1 **{:.4}**, weighted F1 {:.4}.\n",
            self.n, self.accuracy, self.macro_f1, self.weighted_f1
        );
        let _ = writeln!(
            s,
            "| class | precision | recall | F1 | support |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for c in &self.per_class {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.3} | {} |",
                c.label, c.precision, c.recall, c.f1, c.support
            );
        }
        let _ = writeln!(s, "\n## Confusion matrix (rows: truth, columns: prediction)\n");
        let _ = writeln!(s, "| | {} |", self.labels.join(" | "));
        let _ = writeln!(s, "| --- |{}", " ---: |".repeat(self.labels.len()));
        for (label, row) in self.labels.iter().zip(&self.confusion) {
            let cells: Vec<String> = row.iter().map(usize::to_string).collect();
            let _ = writeln!(s, "| **{label}** | {} |", cells.join(" | "));
        }
        for (name, groups) in [("corpus", &self.per_corpus), ("speaker", &self.per_speaker)] {
            let _ = writeln!(
                s,
                "\n## By {name}\n\n| {name} | clips | accuracy | macro F1 |\n| --- | ---: | ---: | ---: |"
            );
            for (k, g) in groups {
                let _ = writeln!(s, "| {k} | {} | {:.3} | {:.3} |", g.n, g.accuracy, g.macro_f1);
            }
        }
        if !self.meta.is_null() {
            let pretty = serde_json::to_string_pretty(&self.meta).unwrap_or_default();
            let _ = writeln!(s, "\n## Run\n\n```json\n{pretty}\n```");
        }
        s
    }

    /// Writes `json` (and, when given, `markdown`).
    pub fn write(&self, json: &Path, markdown: Option<&Path>, title: &str) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::new(ErrorKind::Export, e.to_string()))?;
        if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        std::fs::write(json, text + "\n").at(json)?;
        if let Some(md) = markdown {
            std::fs::write(md, self.to_markdown(title)).at(md)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computation() {
        // truth: 0 0 1 1 2 ; pred: 0 1 1 1 0
        let truth = [0, 0, 1, 1, 2];
        let pred = [0, 1, 1, 1, 0];
        let corpus: Vec<String> = ["a", "a", "b", "b", "b"].iter().map(|s| s.to_string()).collect();
        let speaker = corpus.clone();
        let r = Report::compute(&truth, &pred, &corpus, &speaker).unwrap();
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        // class 0: P 1/2 R 1/2 F1 .5; class 1: P 2/3 R 1 F1 .8; class 2: 0
        assert!((r.per_class[0].f1 - 0.5).abs() < 1e-12);
        assert!((r.per_class[1].f1 - 0.8).abs() < 1e-12);
        assert_eq!(r.per_class[2].f1, 0.0);
        assert!((r.macro_f1 - 1.3 / 3.0).abs() < 1e-12, "classes 3..6 absent are not averaged");
        assert!((r.weighted_f1 - (0.5 * 2.0 + 0.8 * 2.0) / 5.0).abs() < 1e-12);
        assert_eq!(r.confusion[0], vec![1, 1, 0, 0, 0, 0]);
        assert_eq!(r.per_corpus["a"].n, 2);
        assert!((r.per_corpus["b"].accuracy - 2.0 / 3.0).abs() < 1e-12);
        let md = r.to_markdown("t");
        assert!(md.contains("| angry | 0.500 | 0.500 | 0.500 | 2 |"), "{md}");
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert!(json["accuracy"].is_number() && json["macro_f1"].is_number());
        assert!(Report::compute(&[], &[], &[], &[]).is_err());
    }
}
