//! The training loop: length-bucketed batches, Adam, early stopping on validation loss with
//! the best checkpoint kept, and batched prediction.
//!
//! **Variable lengths.** Clips are never cut to one length. Each epoch the training clips are
//! shuffled, cut into pools of 16 batches, each pool sorted by length and sliced into batches,
//! and the batch order shuffled again (length bucketing), so a batch holds clips of similar
//! length and little padding. Within a batch shorter clips are zero-padded (zero is the
//! training mean after standardisation) to the longest, and never below the
//! [`MIN_FRAMES`] the convolutions need; the LSTMs are
//! masked by each clip's length (see [`crate::model::lstm`]), so the recurrent state and the
//! classification ignore the padding.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::labels::Emotion;
use crate::model::cnn_lstm::MIN_FRAMES;
use crate::model::{Arch, CnnLstm, Mlp};
use crate::util::Rng;

/// Standardised model inputs for a set of clips.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    /// Per clip, `lengths[i] × width` values (one row for the MLP).
    pub inputs: Vec<Vec<f32>>,
    /// Per clip, number of frames (1 for utterance vectors).
    pub lengths: Vec<usize>,
    /// Columns per frame.
    pub width: usize,
    /// Per clip, the class index.
    pub labels: Vec<usize>,
}

impl Examples {
    /// Number of clips.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there are no clips.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Appends `other`'s clips (of the same width).
    pub fn extend(&mut self, other: Examples) {
        self.inputs.extend(other.inputs);
        self.lengths.extend(other.lengths);
        self.labels.extend(other.labels);
    }
}

/// Hyper-parameters of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Which model.
    pub arch: Arch,
    /// Most epochs (the case study: 50).
    pub epochs: usize,
    /// Clips per batch (32).
    pub batch_size: usize,
    /// Adam learning rate (1e-3).
    pub learning_rate: f64,
    /// Epochs without a validation-loss improvement before stopping.
    pub patience: usize,
    /// Seed for initialisation, dropout and batch order.
    pub seed: u64,
    /// Stop after this many optimiser steps in total (smoke tests); `None` for no limit.
    pub max_steps: Option<usize>,
    /// SpecAugment-style masking of training batches (an ablation; see [`spec_augment`]).
    #[serde(default)]
    pub spec_augment: bool,
    /// Halve the learning rate after this many epochs without a validation-loss improvement
    /// (`None`: constant rate, the case study's schedule).
    #[serde(default)]
    pub lr_plateau: Option<usize>,
    /// Normalise every clip by its own speaker's other clips before standardising (see
    /// [`crate::adapt`]); a model trained so must be evaluated the same way.
    #[serde(default)]
    pub speaker_norm: bool,
    /// MLP only: append statistics of every frame column to the utterance features (see
    /// [`crate::dataset::Dataset::with_frame_statistics`]).
    #[serde(default)]
    pub frame_stats: bool,
    /// Weight each training example's loss by its class's [`balanced_class_weights`], so a
    /// rare class (RAVDESS has half as many neutral clips as any other class) counts as much
    /// as a common one. Validation loss, the early-stopping criterion, stays unweighted.
    #[serde(default)]
    pub class_balance: bool,
    /// Speed-perturbed copies of every training clip added to the training part, one per
    /// factor (e.g. `[0.9, 1.1]`; see [`crate::features::extract_bytes_at_speed`]). Validation
    /// and test clips are never perturbed.
    #[serde(default)]
    pub speed_perturb: Vec<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            arch: Arch::CnnLstm,
            epochs: 50,
            batch_size: 32,
            learning_rate: 1e-3,
            patience: 8,
            seed: 0,
            max_steps: None,
            spec_augment: false,
            lr_plateau: None,
            speaker_norm: false,
            frame_stats: false,
            class_balance: false,
            speed_perturb: Vec::new(),
        }
    }
}

/// The network being trained: one of the two architectures.
// Only a handful of these exist at a time (the model, the best checkpoint), so the size
// difference between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    /// CNN–LSTM over frames.
    CnnLstm(CnnLstm),
    /// MLP over utterance features.
    Mlp(Mlp),
}

impl Net {
    /// A freshly initialised network of `arch` for inputs of `width` columns.
    pub fn new(arch: Arch, width: usize, device: &Device) -> Self {
        match arch {
            Arch::CnnLstm => Net::CnnLstm(CnnLstm::new(width, device)),
            Arch::Mlp => Net::Mlp(Mlp::new(width, device)),
        }
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            Net::CnnLstm(_) => Arch::CnnLstm,
            Net::Mlp(_) => Arch::Mlp,
        }
    }

    /// Logits `[N, 6]` for a batch.
    pub fn logits(&self, batch: Batch) -> Tensor<2> {
        match (self, batch.input) {
            (Net::CnnLstm(m), Input::Sequence(x)) => m.forward(x, &batch.lengths),
            (Net::Mlp(m), Input::Vector(x)) => m.forward(x),
            (Net::CnnLstm(m), Input::Vector(x)) => m.forward(x.unsqueeze_dim(1), &batch.lengths),
            (Net::Mlp(m), Input::Sequence(x)) => {
                let [n, t, f] = x.dims();
                m.forward(x.reshape([n, t * f]))
            }
        }
    }
}

/// A batch's input tensor.
#[derive(Debug, Clone)]
pub enum Input {
    /// `[N, T, F]` frames.
    Sequence(Tensor<3>),
    /// `[N, F]` vectors.
    Vector(Tensor<2>),
}

/// One batch ready for the network.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The input.
    pub input: Input,
    /// Real lengths in frames.
    pub lengths: Vec<usize>,
    /// Class indices `[N]`.
    pub targets: Tensor<1, Int>,
}

/// Builds the batch of `indices` from `examples` on `device`, zero-padding sequences.
pub fn make_batch(examples: &Examples, indices: &[usize], arch: Arch, device: &Device) -> Batch {
    let n = indices.len();
    let w = examples.width;
    let lengths: Vec<usize> = indices.iter().map(|&i| examples.lengths[i]).collect();
    let targets: Vec<i64> = indices.iter().map(|&i| examples.labels[i] as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), device);
    let input = match arch {
        Arch::Mlp => {
            let mut data = Vec::with_capacity(n * w);
            for &i in indices {
                data.extend_from_slice(&examples.inputs[i][..w]);
            }
            Input::Vector(Tensor::from_data(TensorData::new(data, [n, w]), device))
        }
        Arch::CnnLstm => {
            let t = lengths.iter().copied().max().unwrap_or(0).max(MIN_FRAMES);
            let mut data = vec![0f32; n * t * w];
            for (row, &i) in indices.iter().enumerate() {
                let src = &examples.inputs[i];
                data[row * t * w..row * t * w + src.len()].copy_from_slice(src);
            }
            Input::Sequence(Tensor::from_data(TensorData::new(data, [n, t, w]), device))
        }
    };
    Batch { input, lengths, targets }
}

/// SpecAugment on standardised frames, in place: per clip one time mask (up to an eighth of
/// its frames) and one feature mask (up to a sixth of the columns), set to 0, the training
/// mean. Only the clip's real frames are touched, so padding stays padding.
pub fn spec_augment(examples: &Examples, indices: &[usize], rng: &mut Rng) -> Examples {
    let w = examples.width;
    let mut out = Examples { width: w, ..Examples::default() };
    for &i in indices {
        let mut x = examples.inputs[i].clone();
        let len = examples.lengths[i];
        let t_span = rng.below(len / 8 + 1);
        let t0 = rng.below(len - t_span + 1);
        for row in x.chunks_exact_mut(w).skip(t0).take(t_span) {
            row.fill(0.0);
        }
        let f_span = rng.below(w / 6 + 1);
        let f0 = rng.below(w - f_span + 1);
        for row in x.chunks_exact_mut(w) {
            row[f0..f0 + f_span].fill(0.0);
        }
        out.inputs.push(x);
        out.lengths.push(len);
        out.labels.push(examples.labels[i]);
    }
    out
}

/// Mean cross-entropy of `logits` against `targets`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let n = targets.dims()[0];
    let logp = log_softmax(logits, 1);
    logp.gather(1, targets.reshape([n, 1])).mean().neg()
}

/// Cross-entropy with each example weighted by `weights` (`[N]`):
/// `Σ wᵢ · −log pᵢ[yᵢ] / Σ wᵢ`, the plain mean when all weights are equal.
pub fn weighted_cross_entropy(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    weights: &[f32],
) -> Tensor<1> {
    let n = targets.dims()[0];
    let device = logits.device();
    let total: f32 = weights.iter().sum();
    let w = Tensor::<1>::from_data(TensorData::new(weights.to_vec(), [n]), &device);
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1])).reshape([n]);
    (picked * w).sum().neg().div_scalar(total.max(f32::MIN_POSITIVE))
}

/// scikit-learn's "balanced" class weights: `n / (k · count(c))` over the `k` classes present
/// in `labels`; a class with no examples gets 0.
pub fn balanced_class_weights(labels: &[usize]) -> [f32; Emotion::COUNT] {
    let mut counts = [0usize; Emotion::COUNT];
    for &y in labels {
        if let Some(c) = counts.get_mut(y) {
            *c += 1;
        }
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let n = labels.len() as f32;
    counts.map(|c| if c == 0 { 0.0 } else { n / (present as f32 * c as f32) })
}

/// Length-bucketed batches of `0..n` (see the module documentation).
pub fn bucket_batches(lengths: &[usize], batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(batch_size * 16) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// Batches of `0..n` sorted by length, for evaluation.
pub fn sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Epoch number from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation loss (`None` without a validation set).
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Wall-clock seconds per training batch (forward, backward, Adam step).
    pub seconds_per_batch: f64,
}

/// The result of [`fit`].
#[derive(Debug)]
pub struct Trained {
    /// The best network (lowest validation loss, or the last without a validation set), in
    /// inference mode on the plain device.
    pub net: Net,
    /// The epoch it comes from.
    pub best_epoch: usize,
    /// Every epoch's log.
    pub history: Vec<EpochLog>,
    /// Mean seconds per training batch over the run.
    pub seconds_per_batch: f64,
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .map(f64::from)
        .ok_or_else(|| Error::new(ErrorKind::Model, "loss tensor has no value"))
}

/// Loss and accuracy of `net` (inference mode) on `examples`.
pub fn evaluate_loss(
    net: &Net,
    examples: &Examples,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let probs = predict(net, examples, batch_size, device)?;
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (p, &y) in probs.iter().zip(&examples.labels) {
        loss -= f64::from(p[y].max(1e-12)).ln();
        if argmax(p) == y {
            correct += 1;
        }
    }
    let n = examples.len().max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

/// Index of the largest value.
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
        .0
}

/// Class probabilities for every example, in example order (`net` in inference mode).
pub fn predict(
    net: &Net,
    examples: &Examples,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<[f32; Emotion::COUNT]>> {
    let arch = net.arch();
    let mut out = vec![[0f32; Emotion::COUNT]; examples.len()];
    for indices in sorted_batches(&examples.lengths, batch_size) {
        let batch = make_batch(examples, &indices, arch, device);
        let probs = softmax(net.logits(batch), 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::new(ErrorKind::Model, format!("reading probabilities: {e:?}")))?;
        for (row, &i) in indices.iter().enumerate() {
            out[i].copy_from_slice(&probs[row * Emotion::COUNT..(row + 1) * Emotion::COUNT]);
        }
    }
    Ok(out)
}

/// Trains a fresh network on `train`, early-stopping on `val`. `on_epoch` sees each epoch's
/// log as it finishes (for progress output).
pub fn fit(
    train: &Examples,
    val: &Examples,
    config: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochLog),
) -> Result<Trained> {
    if train.is_empty() {
        return Err(Error::new(ErrorKind::Model, "no training examples"));
    }
    if config.batch_size == 0
        || config.epochs == 0
        || config.learning_rate.is_nan()
        || config.learning_rate <= 0.0
    {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "batch size, epochs and learning rate must be positive",
        ));
    }
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    device.seed(config.seed);
    let mut net = Net::new(config.arch, train.width, &device);
    let mut optim = AdamConfig::new().with_epsilon(1e-7).init();
    let mut rng = Rng::new(config.seed ^ 0x0ba7_c4e5);
    let mut best: Option<(f64, usize, Net)> = None;
    let mut history = Vec::new();
    let mut since_best = 0;
    let mut steps = 0usize;
    let (mut batch_secs, mut batch_count) = (0.0, 0usize);
    let mut learning_rate = config.learning_rate;
    let mut since_decay = 0;
    let class_weights = config.class_balance.then(|| balanced_class_weights(&train.labels));
    'epochs: for epoch in 1..=config.epochs {
        let mut loss_sum = 0.0;
        let mut n_batches = 0usize;
        let epoch_start = Instant::now();
        for indices in bucket_batches(&train.lengths, config.batch_size, &mut rng) {
            if indices.len() < 2 && train.len() >= 2 {
                continue; // batch norm needs two examples; the clip is seen in other epochs
            }
            let batch = if config.spec_augment && config.arch == Arch::CnnLstm {
                let masked = spec_augment(train, &indices, &mut rng);
                let all: Vec<usize> = (0..masked.len()).collect();
                make_batch(&masked, &all, config.arch, &device)
            } else {
                make_batch(train, &indices, config.arch, &device)
            };
            let targets = batch.targets.clone();
            let loss = match &class_weights {
                Some(w) => {
                    let weights: Vec<f32> = indices.iter().map(|&i| w[train.labels[i]]).collect();
                    weighted_cross_entropy(net.logits(batch), targets, &weights)
                }
                None => cross_entropy(net.logits(batch), targets),
            };
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(learning_rate, net, grads);
            loss_sum += scalar(loss.inner())?;
            n_batches += 1;
            steps += 1;
            if config.max_steps.is_some_and(|m| steps >= m) {
                break;
            }
        }
        let elapsed = epoch_start.elapsed().as_secs_f64();
        batch_secs += elapsed;
        batch_count += n_batches;
        let train_loss = loss_sum / n_batches.max(1) as f64;
        let current = net.valid();
        let (val_loss, val_accuracy) = if val.is_empty() {
            (None, None)
        } else {
            let (l, a) = evaluate_loss(&current, val, 64, &plain)?;
            (Some(l), Some(a))
        };
        let log = EpochLog {
            epoch,
            train_loss,
            val_loss,
            val_accuracy,
            seconds_per_batch: elapsed / n_batches.max(1) as f64,
        };
        on_epoch(&log);
        history.push(log);
        let score = val_loss.unwrap_or(train_loss);
        if !score.is_finite() {
            return Err(Error::new(
                ErrorKind::Model,
                format!("loss became {score} at epoch {epoch}"),
            ));
        }
        if best.as_ref().is_none_or(|(b, _, _)| score < *b - 1e-4) {
            best = Some((score, epoch, current));
            since_best = 0;
            since_decay = 0;
        } else {
            since_best += 1;
            since_decay += 1;
            if config.lr_plateau.is_some_and(|p| since_decay >= p) {
                learning_rate *= 0.5;
                since_decay = 0;
            }
            if since_best >= config.patience {
                break 'epochs;
            }
        }
        if config.max_steps.is_some_and(|m| steps >= m) {
            break;
        }
    }
    let (_, best_epoch, net) =
        best.ok_or_else(|| Error::new(ErrorKind::Model, "no epoch completed"))?;
    Ok(Trained {
        net,
        best_epoch,
        history,
        seconds_per_batch: batch_secs / batch_count.max(1) as f64,
    })
}

/// Seconds per training step (forward, backward, Adam) on random batches of
/// `batch × frames × width`, averaged over `steps` after one warm-up step.
pub fn benchmark_step(
    arch: Arch,
    batch: usize,
    frames: usize,
    width: usize,
    steps: usize,
) -> Result<f64> {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut rng = Rng::new(0);
    let n = batch.max(2);
    let len = if arch == Arch::Mlp { 1 } else { frames.max(1) };
    let examples = Examples {
        inputs: (0..n)
            .map(|_| (0..len * width).map(|_| (rng.below(2000) as f32 - 1000.0) / 500.0).collect())
            .collect(),
        lengths: vec![len; n],
        width,
        labels: (0..n).map(|i| i % Emotion::COUNT).collect(),
    };
    let indices: Vec<usize> = (0..n).collect();
    let mut net = Net::new(arch, width, &device);
    let mut optim = AdamConfig::new().init();
    let mut elapsed = 0.0;
    for step in 0..=steps {
        let start = Instant::now();
        let batch = make_batch(&examples, &indices, arch, &device);
        let targets = batch.targets.clone();
        let loss = cross_entropy(net.logits(batch), targets);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        scalar(loss.inner())?; // forces the work to finish
        if step > 0 {
            elapsed += start.elapsed().as_secs_f64();
        }
    }
    Ok(elapsed / steps.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_augment_masks_only_real_frames_and_keeps_labels() {
        let w = 12;
        let ex = Examples {
            inputs: vec![vec![1.0; 40 * w], vec![2.0; 16 * w]],
            lengths: vec![40, 16],
            width: w,
            labels: vec![3, 5],
        };
        let mut rng = Rng::new(7);
        let mut masked_any = false;
        for _ in 0..20 {
            let out = spec_augment(&ex, &[1, 0], &mut rng);
            assert_eq!(out.labels, vec![5, 3]);
            assert_eq!(out.lengths, vec![16, 40]);
            for (x, (&orig, &len)) in out.inputs.iter().zip([2.0f32, 1.0].iter().zip(&out.lengths))
            {
                assert_eq!(x.len(), len * w);
                let zeros = x.iter().filter(|&&v| v == 0.0).count();
                // At most len/8 whole frames plus w/6 columns of every frame.
                assert!(zeros <= (len / 8) * w + (w / 6) * len, "{zeros} zeros");
                assert!(x.iter().all(|&v| v == 0.0 || v == orig));
                masked_any |= zeros > 0;
            }
        }
        assert!(masked_any, "twenty draws never masked anything");
    }

    #[test]
    fn buckets_cover_everything_once_and_group_lengths() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 500 + 30).collect();
        let batches = bucket_batches(&lengths, 32, &mut Rng::new(1));
        let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        // Sorted pools keep the padding far below that of random batches.
        let waste = |bs: &[Vec<usize>]| -> usize {
            bs.iter()
                .map(|b| {
                    let max = b.iter().map(|&i| lengths[i]).max().unwrap_or(0);
                    b.iter().map(|&i| max - lengths[i]).sum::<usize>()
                })
                .sum()
        };
        let random: Vec<Vec<usize>> =
            (0..1000).collect::<Vec<_>>().chunks(32).map(<[usize]>::to_vec).collect();
        assert!(waste(&batches) * 4 < waste(&random), "{} vs {}", waste(&batches), waste(&random));
    }

    #[test]
    fn cross_entropy_matches_hand_value() {
        let device = Device::flex();
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![0f32, 0.0, 2.0, 0.0], [2, 2]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0], [2]), &device);
        let got = scalar(cross_entropy(logits, targets)).unwrap();
        let want = (2f64.ln() + (1.0 + (-2f64).exp()).ln()) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn weighted_cross_entropy_weighs_each_example() {
        let device = Device::flex();
        let logits =
            || Tensor::<2>::from_data(TensorData::new(vec![0f32, 0.0, 2.0, 0.0], [2, 2]), &device);
        let targets = || Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0], [2]), &device);
        let (first, second) = (2f64.ln(), (1.0 + (-2f64).exp()).ln());
        let even = scalar(weighted_cross_entropy(logits(), targets(), &[2.0, 2.0])).unwrap();
        let plain = scalar(cross_entropy(logits(), targets())).unwrap();
        assert!((even - plain).abs() < 1e-6, "{even} vs {plain}");
        let skewed = scalar(weighted_cross_entropy(logits(), targets(), &[3.0, 1.0])).unwrap();
        let want = (3.0 * first + second) / 4.0;
        assert!((skewed - want).abs() < 1e-5, "{skewed} vs {want}");
    }

    #[test]
    fn balanced_weights_make_classes_count_alike() {
        let w = balanced_class_weights(&[0, 0, 0, 1]);
        assert!((w[0] - 4.0 / 6.0).abs() < 1e-6 && (w[1] - 2.0).abs() < 1e-6, "{w:?}");
        assert_eq!(&w[2..], &[0.0; 4]);
        // Each class's total weight is the same: 3 × 2/3 = 1 × 2.
        assert!((3.0 * w[0] - w[1]).abs() < 1e-6);
        assert_eq!(balanced_class_weights(&[]), [0.0; 6]);
    }
}
