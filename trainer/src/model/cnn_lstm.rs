//! The case study's CNN–LSTM over frame features, time as the sequence axis.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::lstm::MaskedLstm;
use crate::labels::Emotion;

/// Kernel sizes of the three convolutions (each followed by max-pool 2, no padding).
pub const KERNELS: [usize; 3] = [5, 5, 3];

/// Fewest frames the convolution stack accepts (shorter clips are zero-padded up to it).
pub const MIN_FRAMES: usize = 28;

/// Frames left after the convolution stack for an input of `frames` frames
/// (valid convolution then floor pooling, three times).
pub fn reduced_length(frames: usize) -> usize {
    KERNELS.iter().fold(frames, |len, k| len.saturating_sub(k - 1) / 2)
}

/// Conv1D 64 k5 → pool 2 → BN; Conv1D 128 k5 → pool → BN → dropout 0.3; Conv1D 256 k3 → pool
/// → BN → dropout 0.3; LSTM 128 (sequences) → dropout 0.4; LSTM 64 → dropout 0.4; dense 128
/// ReLU → BN → dropout 0.5; dense 64 ReLU → dropout 0.3; dense 6 (logits; softmax outside).
#[derive(Module, Debug)]
pub struct CnnLstm {
    /// First convolution (64 filters, kernel 5).
    pub conv1: Conv1d,
    /// Batch norm after the first pool.
    pub bn1: BatchNorm,
    /// Second convolution (128 filters, kernel 5).
    pub conv2: Conv1d,
    /// Batch norm after the second pool.
    pub bn2: BatchNorm,
    /// Third convolution (256 filters, kernel 3).
    pub conv3: Conv1d,
    /// Batch norm after the third pool.
    pub bn3: BatchNorm,
    /// Max-pool of 2.
    pub pool: MaxPool1d,
    /// Dropout 0.3 after conv blocks 2 and 3.
    pub drop_conv: Dropout,
    /// LSTM with 128 units, full sequence out.
    pub lstm1: MaskedLstm,
    /// LSTM with 64 units, last state out.
    pub lstm2: MaskedLstm,
    /// Dropout 0.4 after each LSTM.
    pub drop_lstm: Dropout,
    /// Dense 128.
    pub fc1: Linear,
    /// Batch norm after dense 128.
    pub bn4: BatchNorm,
    /// Dropout 0.5.
    pub drop_fc1: Dropout,
    /// Dense 64.
    pub fc2: Linear,
    /// Dropout 0.3.
    pub drop_fc2: Dropout,
    /// Output layer (logits).
    pub out: Linear,
}

fn bn(features: usize, device: &Device) -> BatchNorm {
    // Keras defaults: epsilon 1e-3, moving-average momentum 0.99 (burn counts the other way).
    BatchNormConfig::new(features).with_epsilon(1e-3).with_momentum(0.01).init(device)
}

impl CnnLstm {
    /// A freshly initialised model for frames of `features` columns.
    pub fn new(features: usize, device: &Device) -> Self {
        Self {
            conv1: Conv1dConfig::new(features, 64, KERNELS[0]).init(device),
            bn1: bn(64, device),
            conv2: Conv1dConfig::new(64, 128, KERNELS[1]).init(device),
            bn2: bn(128, device),
            conv3: Conv1dConfig::new(128, 256, KERNELS[2]).init(device),
            bn3: bn(256, device),
            pool: MaxPool1dConfig::new(2).init(),
            drop_conv: DropoutConfig::new(0.3).init(),
            lstm1: MaskedLstm::new(256, 128, device),
            lstm2: MaskedLstm::new(128, 64, device),
            drop_lstm: DropoutConfig::new(0.4).init(),
            fc1: LinearConfig::new(64, 128).init(device),
            bn4: bn(128, device),
            drop_fc1: DropoutConfig::new(0.5).init(),
            fc2: LinearConfig::new(128, 64).init(device),
            drop_fc2: DropoutConfig::new(0.3).init(),
            out: LinearConfig::new(64, Emotion::COUNT).init(device),
        }
    }

    /// Logits `[N, 6]` for standardised frames `[N, T, F]` (T ≥ [`MIN_FRAMES`]) whose real
    /// lengths are `lengths` (the rest is padding).
    pub fn forward(&self, x: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
        let device = x.device();
        let x = x.swap_dims(1, 2); // [N, F, T]
        let x = self.bn1.forward(self.pool.forward(relu(self.conv1.forward(x))));
        let x = self
            .drop_conv
            .forward(self.bn2.forward(self.pool.forward(relu(self.conv2.forward(x)))));
        let x = self
            .drop_conv
            .forward(self.bn3.forward(self.pool.forward(relu(self.conv3.forward(x)))));
        let x = x.swap_dims(1, 2); // [N, T', 256]
        let [n, t, _] = x.dims();
        let mut mask = vec![0f32; n * t];
        for (row, &len) in lengths.iter().enumerate() {
            let valid = reduced_length(len.max(MIN_FRAMES)).clamp(1, t);
            mask[row * t..row * t + valid].fill(1.0);
        }
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, t]), &device);
        let (seq, _) = self.lstm1.forward(x, mask.clone());
        let seq = self.drop_lstm.forward(seq);
        let (_, last) = self.lstm2.forward(seq, mask);
        let x = self.drop_lstm.forward(last);
        let x = self.drop_fc1.forward(self.bn4.forward(relu(self.fc1.forward(x))));
        let x = self.drop_fc2.forward(relu(self.fc2.forward(x)));
        self.out.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_lengths() {
        assert_eq!(reduced_length(MIN_FRAMES), 1);
        assert_eq!(reduced_length(MIN_FRAMES - 1), 0);
        // 200 → 98 → 47 → 22
        assert_eq!(reduced_length(200), 22);
    }
}
