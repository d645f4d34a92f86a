//! Small but realistic classifiers with deterministic pseudo-random weights, for the tests of
//! the backends, the plugin host and the server.
//!
//! They follow the contract of a Prosodia model: inputs [`FEATURES_INPUT`] `[N, T, F]` float
//! and [`LENGTHS_INPUT`] `[N]` int64 (N and T symbolic), output [`PROBABILITIES_OUTPUT`]
//! `[N, classes]` float, and padding never changes an item's result.

use crate::blocks::{conv1d, frame_mask, lstm_forward, masked_mean, standardise, unsqueeze};
use crate::builder::{Dim, GraphBuilder, attr};
use crate::error::{Error, ErrorKind};
use crate::proto::DataType;

/// The name of a Prosodia model's feature input, `[N, T, F]` float32.
pub const FEATURES_INPUT: &str = "features";
/// The name of a Prosodia model's length input, `[N]` int64 (valid frames per item).
pub const LENGTHS_INPUT: &str = "lengths";
/// The name of a Prosodia model's output, `[N, classes]` float32 class probabilities.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";
/// The symbolic batch dimension's name.
pub const BATCH_DIM: &str = "batch";
/// The symbolic time dimension's name.
pub const TIME_DIM: &str = "time";

/// The layers of a test classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arch {
    /// Standardise → Conv1d → BatchNorm → Relu → mask → MaxPool(3, stride 1) → masked mean
    /// → Gemm → Softmax.
    Conv,
    /// Standardise → Conv1d → Relu → forward LSTM → masked mean → Gemm → Softmax.
    ConvLstm,
}

/// The sizes and seed of a test classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestModelConfig {
    /// Feature columns (F).
    pub features: usize,
    /// Channels of the convolution and hidden size of the LSTM.
    pub hidden: usize,
    /// Convolution kernel length in frames (odd).
    pub kernel: usize,
    /// Output classes.
    pub classes: usize,
    /// Seed of the weights.
    pub seed: u64,
    /// The layers.
    pub arch: Arch,
}

impl Default for TestModelConfig {
    /// 8 features, 16 hidden, kernel 3, 6 classes, seed 7, [`Arch::Conv`].
    fn default() -> Self {
        Self { features: 8, hidden: 16, kernel: 3, classes: 6, seed: 7, arch: Arch::Conv }
    }
}

/// SplitMix64: a tiny deterministic generator, so weights need no dependency and are the same
/// on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` values uniform in `[-scale, scale)`.
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

/// Builds a test classifier (see [`Arch`]) and returns the bytes of its `.onnx` file.
pub fn test_classifier(config: &TestModelConfig) -> Result<Vec<u8>, Error> {
    let TestModelConfig { features: f, hidden: h, kernel: k, classes: c, seed, arch } = *config;
    if f == 0 || h == 0 || c == 0 || k == 0 || k % 2 == 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("features, hidden and classes must be positive and kernel odd, got {config:?}"),
        ));
    }
    let mut rng = Rng::new(seed);
    let mut b = GraphBuilder::new("prosodia_test_classifier");
    b.doc("Prosodia test classifier with pseudo-random weights");
    b.metadata("prosodia.arch", &format!("{arch:?}"));
    b.metadata("prosodia.seed", &seed.to_string());

    let x = b.input(
        FEATURES_INPUT,
        DataType::Float,
        &[Dim::symbol(BATCH_DIM), Dim::symbol(TIME_DIM), Dim::Fixed(f)],
    )?;
    let lengths = b.input(LENGTHS_INPUT, DataType::Int64, &[Dim::symbol(BATCH_DIM)])?;

    // Feature statistics as a trainer would fold them in.
    let mean = rng.vec(f, 0.5);
    let std: Vec<f32> = (0..f).map(|_| 0.75 + 0.5 * rng.uniform().abs()).collect();

    let mask = frame_mask(&mut b, &x, &lengths)?;
    let xs = standardise(&mut b, &x, &mean, &std, &mask)?;
    let x_nft = b.op("Transpose", &[&xs], vec![attr("perm", [0_i64, 2, 1])])?;

    let conv_scale = (1.0 / (f * k) as f32).sqrt() * 1.5;
    let w = b.init_f32("conv.weight", &[h, f, k], &rng.vec(h * f * k, conv_scale))?;
    let bias = b.init_f32("conv.bias", &[h], &rng.vec(h, 0.1))?;
    let conv = conv1d(&mut b, &x_nft, &w, &bias, k)?;

    let pooled_in = match arch {
        Arch::Conv => {
            let scale = b.init_f32(
                "bn.scale",
                &[h],
                &(0..h).map(|_| 1.0 + 0.2 * rng.uniform()).collect::<Vec<_>>(),
            )?;
            let shift = b.init_f32("bn.bias", &[h], &rng.vec(h, 0.1))?;
            let mean = b.init_f32("bn.mean", &[h], &rng.vec(h, 0.1))?;
            let var = b.init_f32(
                "bn.var",
                &[h],
                &(0..h).map(|_| 1.0 + 0.3 * rng.uniform().abs()).collect::<Vec<_>>(),
            )?;
            let bn = b.op(
                "BatchNormalization",
                &[&conv, &scale, &shift, &mean, &var],
                vec![attr("epsilon", 1e-5_f32)],
            )?;
            let relu = b.op("Relu", &[&bn], vec![])?;
            let mask_n1t = unsqueeze(&mut b, &mask, 1)?;
            let masked = b.op("Mul", &[&relu, &mask_n1t], vec![])?;
            b.op(
                "MaxPool",
                &[&masked],
                vec![
                    attr("kernel_shape", [3_i64]),
                    attr("pads", [1_i64, 1]),
                    attr("strides", [1_i64]),
                ],
            )?
        }
        Arch::ConvLstm => {
            let relu = b.op("Relu", &[&conv], vec![])?;
            let x_tnh = b.op("Transpose", &[&relu], vec![attr("perm", [2_i64, 0, 1])])?;
            let scale = (1.0 / h as f32).sqrt();
            let w = b.init_f32("lstm.w", &[1, 4 * h, h], &rng.vec(4 * h * h, scale))?;
            let r = b.init_f32("lstm.r", &[1, 4 * h, h], &rng.vec(4 * h * h, scale))?;
            let bias = b.init_f32("lstm.b", &[1, 8 * h], &rng.vec(8 * h, 0.1))?;
            let y = lstm_forward(&mut b, &x_tnh, &w, &r, &bias, h)?;
            b.op("Transpose", &[&y], vec![attr("perm", [1_i64, 2, 0])])?
        }
    };

    let pooled = masked_mean(&mut b, &pooled_in, &mask, &lengths)?;
    let out_scale = (1.0 / h as f32).sqrt() * 2.0;
    let w_out = b.init_f32("head.weight", &[c, h], &rng.vec(c * h, out_scale))?;
    let b_out = b.init_f32("head.bias", &[c], &rng.vec(c, 0.2))?;
    let logits = b.op("Gemm", &[&pooled, &w_out, &b_out], vec![attr("transB", 1_i64)])?;
    b.node("Softmax", &[&logits], &[PROBABILITIES_OUTPUT], vec![attr("axis", 1_i64)])?;
    b.output(PROBABILITIES_OUTPUT, DataType::Float, &[Dim::symbol(BATCH_DIM), Dim::Fixed(c)])?;
    b.to_bytes()
}
