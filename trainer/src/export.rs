//! ONNX export of a trained CNN–LSTM (`model.onnx`), written with `prosodia-onnx`.
//!
//! The graph follows Prosodia's model contract: inputs `features` `[N, T, F]` float32 and
//! `lengths` `[N]` int64 (N and T symbolic), output `probabilities` `[N, 6]` float32 in the
//! label order of `model.toml`. It computes exactly what [`CnnLstm::forward`] computes in
//! inference mode, so the server needs nothing but the feature extractor in front of it:
//!
//! 1. `MIN_FRAMES - 1` zero frames are appended, so inputs shorter than [`MIN_FRAMES`]
//!    reach it (the frames past each clip's length are masked and never read);
//! 2. the training standardisation is folded in as the first nodes (`Sub`, `Div`), and padded
//!    frames are set back to zero, as the trainer pads after standardising;
//! 3. each convolution block is `Conv` (no padding) → `Relu` → `MaxPool` 2 → batch norm folded
//!    into one `Mul` and one `Add` per channel;
//! 4. the two LSTMs are ONNX `LSTM` nodes (gates i, o, f, c, as stored); without
//!    `sequence_lens` (tract honours it only when every length equals T): a forward LSTM's
//!    outputs at a clip's real steps do not depend on the padding after them, so the final
//!    state is read at each clip's last real step (`Equal` one-hot, `Mul`, `ReduceSum`), the
//!    step the masked LSTM of training stops at;
//! 5. the dense head as `Gemm`s with batch norm folded, then `Softmax`.
//!
//! The per-clip length after the convolutions is computed in the graph with the same integer
//! arithmetic as [`reduced_length`](crate::model::cnn_lstm::reduced_length).

use std::path::Path;

use burn::module::Param;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use prosodia_onnx::{DataType, Dim, GraphBuilder, attr};

use crate::artifact::{ModelMeta, files};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::labels::Emotion;
use crate::model::CnnLstm;
use crate::model::cnn_lstm::{KERNELS, MIN_FRAMES};
use crate::model::lstm::MaskedLstm;
use crate::train::Net;

/// Name of the feature input.
pub const FEATURES_INPUT: &str = "features";
/// Name of the length input.
pub const LENGTHS_INPUT: &str = "lengths";
/// Name of the output.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

fn onnx_err(e: prosodia_onnx::Error) -> Error {
    Error::new(ErrorKind::Export, format!("building the ONNX graph: {e}"))
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::new(ErrorKind::Export, format!("reading weights: {e:?}")))
}

fn param<const D: usize>(p: &Param<Tensor<D>>) -> Result<Vec<f32>> {
    values(p.val())
}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// Batch norm (inference) as per-channel scale and shift.
fn bn_affine(bn: &BatchNorm) -> Result<(Vec<f32>, Vec<f32>)> {
    let gamma = param(&bn.gamma)?;
    let beta = param(&bn.beta)?;
    let mean = values(bn.running_mean.value())?;
    let var = values(bn.running_var.value())?;
    let scale: Vec<f32> =
        gamma.iter().zip(&var).map(|(g, v)| g / (v + bn.epsilon as f32).sqrt()).collect();
    let shift = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    Ok((scale, shift))
}

struct Exporter {
    b: GraphBuilder,
}

impl Exporter {
    fn op(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<prosodia_onnx::proto::AttributeProto>,
    ) -> Result<String> {
        self.b.op(op, inputs, attrs).map_err(onnx_err)
    }

    fn f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Result<String> {
        self.b.init_f32(name, dims, data).map_err(onnx_err)
    }

    fn i64(&mut self, dims: &[usize], data: &[i64]) -> Result<String> {
        self.b.const_i64(dims, data).map_err(onnx_err)
    }

    /// Per-channel affine on `[N, C, T]` (`channel_axis_last = false`) or `[N, C]`.
    fn affine(
        &mut self,
        x: &str,
        name: &str,
        scale: &[f32],
        shift: &[f32],
        three_d: bool,
    ) -> Result<String> {
        let c = scale.len();
        let dims: Vec<usize> = if three_d { vec![c, 1] } else { vec![c] };
        let s = self.f32(&format!("{name}.scale"), &dims, scale)?;
        let t = self.f32(&format!("{name}.shift"), &dims, shift)?;
        let y = self.op("Mul", &[x, &s], vec![])?;
        self.op("Add", &[&y, &t], vec![])
    }

    fn conv_block(
        &mut self,
        x: &str,
        name: &str,
        conv: &burn::nn::conv::Conv1d,
        bn: &BatchNorm,
    ) -> Result<String> {
        let [out, inp, k] = conv.weight.dims();
        let w = self.f32(&format!("{name}.weight"), &[out, inp, k], &param(&conv.weight)?)?;
        let bias = match &conv.bias {
            Some(b) => param(b)?,
            None => vec![0.0; out],
        };
        let bias = self.f32(&format!("{name}.bias"), &[out], &bias)?;
        let y = self.op(
            "Conv",
            &[x, &w, &bias],
            vec![
                attr("kernel_shape", [k as i64]),
                attr("pads", [0_i64, 0]),
                attr("strides", [1_i64]),
            ],
        )?;
        let y = self.op("Relu", &[&y], vec![])?;
        let y = self.op(
            "MaxPool",
            &[&y],
            vec![attr("kernel_shape", [2_i64]), attr("strides", [2_i64])],
        )?;
        let (scale, shift) = bn_affine(bn)?;
        self.affine(&y, &format!("{name}.bn"), &scale, &shift, true)
    }

    /// ONNX LSTM over time-major `[T, N, C]`; returns `[T, N, H]`.
    fn lstm(&mut self, x: &str, name: &str, l: &MaskedLstm) -> Result<String> {
        let h = l.hidden;
        let [d_in, _] = l.w_input.dims();
        let w = transpose(&param(&l.w_input)?, d_in, 4 * h);
        let r = transpose(&param(&l.w_hidden)?, h, 4 * h);
        let mut bias = param(&l.bias)?;
        bias.extend(std::iter::repeat_n(0.0, 4 * h));
        let w = self.f32(&format!("{name}.W"), &[1, 4 * h, d_in], &w)?;
        let r = self.f32(&format!("{name}.R"), &[1, 4 * h, h], &r)?;
        let bias = self.f32(&format!("{name}.B"), &[1, 8 * h], &bias)?;
        prosodia_onnx::blocks::lstm_forward(&mut self.b, x, &w, &r, &bias, h).map_err(onnx_err)
    }

    fn dense(&mut self, x: &str, name: &str, l: &Linear) -> Result<String> {
        let [i, o] = l.weight.dims();
        let w = self.f32(&format!("{name}.weight"), &[i, o], &param(&l.weight)?)?;
        let bias = match &l.bias {
            Some(b) => param(b)?,
            None => vec![0.0; o],
        };
        let bias = self.f32(&format!("{name}.bias"), &[o], &bias)?;
        self.op("Gemm", &[x, &w, &bias], vec![])
    }
}

/// The ONNX bytes of a CNN–LSTM with its standardisation folded in.
pub fn cnn_lstm_onnx(m: &CnnLstm, mean: &[f32], std: &[f32], meta: &ModelMeta) -> Result<Vec<u8>> {
    let f = mean.len();
    let mut e = Exporter { b: GraphBuilder::new("prosodia_cnn_lstm") };
    e.b.producer("prosodia-train", env!("CARGO_PKG_VERSION"));
    e.b.doc("Prosodia CNN-LSTM speech-emotion classifier (see model.toml)");
    e.b.metadata("prosodia.labels", &meta.labels.join(","));
    e.b.metadata("prosodia.model", &format!("{}/{}", meta.name, meta.version));
    let x =
        e.b.input(
            FEATURES_INPUT,
            DataType::Float,
            &[Dim::symbol("batch"), Dim::symbol("time"), Dim::Fixed(f)],
        )
        .map_err(onnx_err)?;
    let lengths =
        e.b.input(LENGTHS_INPUT, DataType::Int64, &[Dim::symbol("batch")]).map_err(onnx_err)?;

    // 1. Append MIN_FRAMES - 1 zero frames, so even a one-frame clip reaches MIN_FRAMES
    //    (tract cannot pad by a data-dependent amount; frames past a clip's length are
    //    masked and never read, so the extra frames change nothing else).
    let shape = e.op("Shape", &[&x], vec![])?;
    let zero1 = e.i64(&[1], &[0])?;
    let n = e.op("Gather", &[&shape, &zero1], vec![attr("axis", 0_i64)])?; // [1]
    let tail_tf = e.i64(&[2], &[MIN_FRAMES as i64 - 1, f as i64])?;
    let tail_shape = e.op("Concat", &[&n, &tail_tf], vec![attr("axis", 0_i64)])?;
    let zeros = e.f32("pad.zeros", &[1, 1, f], &vec![0.0; f])?;
    let tail = e.op("Expand", &[&zeros, &tail_shape], vec![])?;
    let x = e.op("Concat", &[&x, &tail], vec![attr("axis", 1_i64)])?;
    let one = e.i64(&[1], &[1])?;
    let min = e.i64(&[1], &[MIN_FRAMES as i64])?;

    // 2. Standardise, then zero the padded frames: mask = Range(0, T) < lengths[:, None].
    let mean = e.f32("standardize.mean", &[f], mean)?;
    let std = e.f32("standardize.std", &[f], std)?;
    let xs = e.op("Sub", &[&x, &mean], vec![])?;
    let xs = e.op("Div", &[&xs, &std], vec![])?;
    let shape = e.op("Shape", &[&xs], vec![])?;
    let one_s = e.i64(&[], &[1])?;
    let tp = e.op("Gather", &[&shape, &one_s], vec![attr("axis", 0_i64)])?; // scalar
    let zero_s = e.i64(&[], &[0])?;
    let range = e.op("Range", &[&zero_s, &tp, &one_s], vec![])?;
    let len_col = e.op("Unsqueeze", &[&lengths, &one], vec![])?;
    let valid = e.op("Less", &[&range, &len_col], vec![])?;
    let mask = e.op("Cast", &[&valid], vec![attr("to", DataType::Float as i64)])?;
    let two = e.i64(&[1], &[2])?;
    let mask3 = e.op("Unsqueeze", &[&mask, &two], vec![])?;
    let xs = e.op("Mul", &[&xs, &mask3], vec![])?;

    // 3. Convolution blocks on [N, F, T].
    let y = e.op("Transpose", &[&xs], vec![attr("perm", [0_i64, 2, 1])])?;
    let y = e.conv_block(&y, "conv1", &m.conv1, &m.bn1)?;
    let y = e.conv_block(&y, "conv2", &m.conv2, &m.bn2)?;
    let y = e.conv_block(&y, "conv3", &m.conv3, &m.bn3)?;

    // 4. LSTMs, time-major.
    let y = e.op("Transpose", &[&y], vec![attr("perm", [2_i64, 0, 1])])?;
    let y = e.lstm(&y, "lstm1", &m.lstm1)?;
    let y = e.lstm(&y, "lstm2", &m.lstm2)?; // [T', N, 64]
    // Last real step per clip: l = max(len, MIN_FRAMES), then (l - (k - 1)) / 2 per conv.
    let mut l = e.op("Max", &[&lengths, &min], vec![])?;
    let two_i = e.i64(&[1], &[2])?;
    for k in KERNELS {
        let km1 = e.i64(&[1], &[k as i64 - 1])?;
        let d = e.op("Sub", &[&l, &km1], vec![])?;
        l = e.op("Div", &[&d, &two_i], vec![])?;
    }
    let last = e.op("Sub", &[&l, &one], vec![])?; // [N]
    let shape = e.op("Shape", &[&y], vec![])?;
    let t3 = e.op("Gather", &[&shape, &zero_s], vec![attr("axis", 0_i64)])?;
    let steps = e.op("Range", &[&zero_s, &t3, &one_s], vec![])?; // [T']
    let steps_col = e.op("Unsqueeze", &[&steps, &one], vec![])?; // [T', 1]
    let pick = e.op("Equal", &[&steps_col, &last], vec![])?; // [T', N]
    let pick = e.op("Cast", &[&pick], vec![attr("to", DataType::Float as i64)])?;
    let pick = e.op("Unsqueeze", &[&pick, &two], vec![])?; // [T', N, 1]
    let y = e.op("Mul", &[&y, &pick], vec![])?;
    let zero_axis = e.i64(&[1], &[0])?;
    let y = e.op("ReduceSum", &[&y, &zero_axis], vec![attr("keepdims", 0_i64)])?; // [N, 64]

    // 5. Dense head.
    let y = e.dense(&y, "fc1", &m.fc1)?;
    let y = e.op("Relu", &[&y], vec![])?;
    let (scale, shift) = bn_affine(&m.bn4)?;
    let y = e.affine(&y, "fc1.bn", &scale, &shift, false)?;
    let y = e.dense(&y, "fc2", &m.fc2)?;
    let y = e.op("Relu", &[&y], vec![])?;
    let logits = e.dense(&y, "out", &m.out)?;
    e.b.node("Softmax", &[&logits], &[PROBABILITIES_OUTPUT], vec![attr("axis", 1_i64)])
        .map_err(onnx_err)?;
    e.b.output(
        PROBABILITIES_OUTPUT,
        DataType::Float,
        &[Dim::symbol("batch"), Dim::Fixed(Emotion::COUNT)],
    )
    .map_err(onnx_err)?;
    e.b.to_bytes().map_err(onnx_err)
}

/// Writes `model.onnx` for `net` into `dir` (CNN–LSTM only; the MLP baseline reads utterance
/// features, which the serving contract does not carry).
pub fn write_onnx(dir: &Path, meta: &ModelMeta, net: &Net) -> Result<()> {
    let Net::CnnLstm(m) = net else {
        return Err(Error::new(
            ErrorKind::Export,
            "ONNX export is for the CNN-LSTM; train the MLP with --no-onnx",
        ));
    };
    let bytes = cnn_lstm_onnx(m, &meta.standardization.mean, &meta.standardization.std, meta)?;
    std::fs::create_dir_all(dir).at(dir)?;
    let path = dir.join(files::ONNX);
    std::fs::write(&path, bytes).at(&path)
}
