//! The models: the case study's CNN–LSTM over frame features and its MLP baseline over the
//! 46 utterance features, both on burn's pure-Rust `flex` CPU backend.

pub mod cnn_lstm;
pub mod lstm;
pub mod mlp;

use serde::{Deserialize, Serialize};

pub use cnn_lstm::CnnLstm;
pub use mlp::Mlp;

/// Which model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// CNN–LSTM over frame matrices.
    CnnLstm,
    /// MLP over the 46 utterance features.
    Mlp,
}

impl Arch {
    /// The stable name used in `model.toml` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::CnnLstm => "cnn-lstm",
            Arch::Mlp => "mlp",
        }
    }
}
