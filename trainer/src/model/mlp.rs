//! The case study's MLP baseline over the 46 utterance features.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::labels::Emotion;

/// `46 → 256 → BN → dropout → 128 → BN → dropout → 64 → 6` (ReLU between dense layers).
#[derive(Module, Debug)]
pub struct Mlp {
    /// First dense layer.
    pub fc1: Linear,
    /// Batch norm after it.
    pub bn1: BatchNorm,
    /// Dropout after it.
    pub drop1: Dropout,
    /// Second dense layer.
    pub fc2: Linear,
    /// Batch norm after it.
    pub bn2: BatchNorm,
    /// Dropout after it.
    pub drop2: Dropout,
    /// Third dense layer.
    pub fc3: Linear,
    /// Output layer (logits).
    pub out: Linear,
}

impl Mlp {
    /// A freshly initialised MLP for `inputs` features.
    pub fn new(inputs: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(inputs, 256).init(device),
            bn1: BatchNormConfig::new(256).with_epsilon(1e-3).with_momentum(0.01).init(device),
            drop1: DropoutConfig::new(0.3).init(),
            fc2: LinearConfig::new(256, 128).init(device),
            bn2: BatchNormConfig::new(128).with_epsilon(1e-3).with_momentum(0.01).init(device),
            drop2: DropoutConfig::new(0.3).init(),
            fc3: LinearConfig::new(128, 64).init(device),
            out: LinearConfig::new(64, Emotion::COUNT).init(device),
        }
    }

    /// Logits `[N, 6]` for standardised features `[N, inputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.drop1.forward(self.bn1.forward(relu(self.fc1.forward(x))));
        let x = self.drop2.forward(self.bn2.forward(relu(self.fc2.forward(x))));
        let x = relu(self.fc3.forward(x));
        self.out.forward(x)
    }
}
