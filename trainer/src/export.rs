//! ONNX export of a trained CNN–LSTM (`model.onnx`), written with `prosodia-onnx`.
//!
//! The graph follows Prosodia's model contract: inputs `features` `[N, T, F]` float32 and
//! `lengths` `[N]` int64 (N and T symbolic), output `probabilities` `[N, 6]` float32 in the
//! label order of `model.toml`. It computes exactly what [`CnnLstm::forward`] computes in
//! inference mode, so the server needs nothing but the feature extractor in front of it:
//!
//! 1. `MIN_FRAMES - 1` zero frames are appended, so inputs shorter than [`MIN_FRAMES`]
//!    reach it (the frames past each clip's length are masked and never read);
//! 2. the training standardisation `(x − mean) / std` is folded into the first convolution:
//!    its weights are divided by `std`, and an extra input channel carrying the frame mask
//!    (1 for a real frame, 0 for padding) gets the weights `−Σ_c W[o, c, j]·mean[c] / std[c]`,
//!    so a real frame sees exactly the standardised features and a padded one sees zeros, as
//!    the trainer pads after standardising. The frames are multiplied by that mask first, so
//!    whatever a caller leaves in the padding is ignored;
//! 3. each convolution block is `Conv` (no padding) → `Relu` → `MaxPool` 2; its batch norm,
//!    a per-channel scale `a` and shift `b`, is folded into the layer that reads it (the next
//!    convolution, the first LSTM's input weights, the second dense layer):
//!    `W·(a⊙x + b) + β = (W⊙a)·x + (β + W·b)`. The convolutions pad nothing, so this holds at
//!    every output position, and the graph has no per-channel `Mul`/`Add` left. That matters
//!    for speed, not only size: tract runs a `[N, C, T]` tensor times a `[1, C, 1]` constant
//!    element by element (its vectorised paths need the broadcast axes at the end), which was
//!    a fifth of the model's time;
//! 4. the two LSTMs are ONNX `LSTM` nodes (gates i, o, f, c, as stored); without
//!    `sequence_lens` (tract honours it only when every length equals T): a forward LSTM's
//!    outputs at a clip's real steps do not depend on the padding after them, so the final
//!    state is read at each clip's last real step (`Equal` one-hot, `Mul`, `ReduceSum`), the
//!    step the masked LSTM of training stops at;
//! 5. the dense head as `Gemm`s (the batch norm after the first folded into the second),
//!    then `Softmax`.
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

/// A convolution's bias, zeros when it has none.
fn conv_bias(conv: &burn::nn::conv::Conv1d, out: usize) -> Result<Vec<f32>> {
    match &conv.bias {
        Some(b) => param(b),
        None => Ok(vec![0.0; out]),
    }
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

/// A per-channel affine `a⊙x + b` on the input of a convolution with weights `[out, inp, k]`
/// and `bias` `[out]`, moved into them: `W'[o, c, j] = W[o, c, j]·a[c]` and
/// `β'[o] = β[o] + Σ_{c, j} W[o, c, j]·b[c]` (sums in f64). Exact in real arithmetic for an
/// unpadded convolution.
fn fold_into_conv(w: &mut [f32], bias: &mut [f32], inp: usize, k: usize, a: &[f32], b: &[f32]) {
    for (o, filter) in w.chunks_exact_mut(inp * k).enumerate() {
        let mut shift = f64::from(bias[o]);
        for (c, taps) in filter.chunks_exact_mut(k).enumerate() {
            for tap in taps {
                shift += f64::from(*tap) * f64::from(b[c]);
                *tap *= a[c];
            }
        }
        bias[o] = shift as f32;
    }
}

/// The same for a layer computing `x·W + β` with `W` stored `[inp, out]` (a dense layer, or an
/// LSTM's input weights with `out = 4·hidden`): `W'[c, g] = W[c, g]·a[c]`,
/// `β'[g] = β[g] + Σ_c W[c, g]·b[c]`.
fn fold_into_rows(w: &mut [f32], bias: &mut [f32], a: &[f32], b: &[f32]) {
    let out = bias.len();
    let mut shift: Vec<f64> = bias.iter().map(|&v| f64::from(v)).collect();
    for (c, row) in w.chunks_exact_mut(out).enumerate() {
        for (g, v) in row.iter_mut().enumerate() {
            shift[g] += f64::from(*v) * f64::from(b[c]);
            *v *= a[c];
        }
    }
    for (dst, s) in bias.iter_mut().zip(shift) {
        *dst = s as f32;
    }
}

/// First-convolution weights `[out, inp + 1, k]` that standardise their input: channels
/// `0..inp` are `W / std`, and channel `inp`, fed the frame mask, holds
/// `−Σ_c W[o, c, j]·mean[c] / std[c]` (see the module docs, step 2).
fn standardising_conv(w: &[f32], inp: usize, k: usize, mean: &[f32], std: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len() / inp * (inp + 1));
    for filter in w.chunks_exact(inp * k) {
        let mut offset = vec![0f64; k];
        for (c, taps) in filter.chunks_exact(k).enumerate() {
            for (j, &tap) in taps.iter().enumerate() {
                out.push(tap / std[c]);
                offset[j] -= f64::from(tap) * f64::from(mean[c]) / f64::from(std[c]);
            }
        }
        out.extend(offset.into_iter().map(|v| v as f32));
    }
    out
}

/// A layer's input affine (the batch norm before it) as `(scale, shift)`.
type Affine = (Vec<f32>, Vec<f32>);

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

    /// One convolution block, `Conv` → `Relu` → `MaxPool` 2, on `[N, C, T]`. `weight` and
    /// `bias` are the convolution's, already adjusted by the caller; returns the output before
    /// the block's batch norm, and that batch norm for the next layer to fold in.
    fn conv_block(
        &mut self,
        x: &str,
        name: &str,
        weight: &[f32],
        dims: [usize; 3],
        bias: &[f32],
        bn: &BatchNorm,
    ) -> Result<(String, Affine)> {
        let [out, inp, k] = dims;
        let w = self.f32(&format!("{name}.weight"), &[out, inp, k], weight)?;
        let bias = self.f32(&format!("{name}.bias"), &[out], bias)?;
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
        Ok((y, bn_affine(bn)?))
    }

    /// A convolution block whose input still needs `input_bn`, folded into its weights.
    fn folded_conv_block(
        &mut self,
        x: &str,
        name: &str,
        conv: &burn::nn::conv::Conv1d,
        bn: &BatchNorm,
        input_bn: &Affine,
    ) -> Result<(String, Affine)> {
        let [out, inp, k] = conv.weight.dims();
        let mut w = param(&conv.weight)?;
        let mut bias = conv_bias(conv, out)?;
        fold_into_conv(&mut w, &mut bias, inp, k, &input_bn.0, &input_bn.1);
        self.conv_block(x, name, &w, [out, inp, k], &bias, bn)
    }

    /// ONNX LSTM over time-major `[T, N, C]`; returns `[T, N, H]`.
    /// `input_bn`, when given, is folded into the input weights.
    fn lstm(
        &mut self,
        x: &str,
        name: &str,
        l: &MaskedLstm,
        input_bn: Option<&Affine>,
    ) -> Result<String> {
        let h = l.hidden;
        let [d_in, _] = l.w_input.dims();
        let mut w_input = param(&l.w_input)?;
        let mut bias = param(&l.bias)?;
        if let Some((a, b)) = input_bn {
            fold_into_rows(&mut w_input, &mut bias, a, b);
        }
        let w = transpose(&w_input, d_in, 4 * h);
        let r = transpose(&param(&l.w_hidden)?, h, 4 * h);
        bias.extend(std::iter::repeat_n(0.0, 4 * h));
        let w = self.f32(&format!("{name}.W"), &[1, 4 * h, d_in], &w)?;
        let r = self.f32(&format!("{name}.R"), &[1, 4 * h, h], &r)?;
        let bias = self.f32(&format!("{name}.B"), &[1, 8 * h], &bias)?;
        prosodia_onnx::blocks::lstm_forward(&mut self.b, x, &w, &r, &bias, h).map_err(onnx_err)
    }

    /// `input_bn`, when given, is folded into the weights.
    fn dense(
        &mut self,
        x: &str,
        name: &str,
        l: &Linear,
        input_bn: Option<&Affine>,
    ) -> Result<String> {
        let [i, o] = l.weight.dims();
        let mut weight = param(&l.weight)?;
        let mut bias = match &l.bias {
            Some(b) => param(b)?,
            None => vec![0.0; o],
        };
        if let Some((a, b)) = input_bn {
            fold_into_rows(&mut weight, &mut bias, a, b);
        }
        let w = self.f32(&format!("{name}.weight"), &[i, o], &weight)?;
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

    // 2. Frame mask = Range(0, T) < lengths[:, None]; the frames get a last column of ones
    //    and are multiplied by the mask, which zeroes padding and turns that column into
    //    the mask channel the first convolution standardises with (module docs, step 2).
    let shape = e.op("Shape", &[&x], vec![])?;
    let one_s = e.i64(&[], &[1])?;
    let tp = e.op("Gather", &[&shape, &one_s], vec![attr("axis", 0_i64)])?; // scalar
    let zero_s = e.i64(&[], &[0])?;
    let range = e.op("Range", &[&zero_s, &tp, &one_s], vec![])?;
    let len_col = e.op("Unsqueeze", &[&lengths, &one], vec![])?;
    let valid = e.op("Less", &[&range, &len_col], vec![])?;
    let mask = e.op("Cast", &[&valid], vec![attr("to", DataType::Float as i64)])?;
    let two = e.i64(&[1], &[2])?;
    let mask3 = e.op("Unsqueeze", &[&mask, &two], vec![])?;
    let pads = e.i64(&[6], &[0, 0, 0, 0, 0, 1])?;
    let one_f = e.f32("mask.fill", &[], &[1.0])?;
    let x = e.op("Pad", &[&x, &pads, &one_f], vec![attr("mode", "constant")])?;
    let xs = e.op("Mul", &[&x, &mask3], vec![])?;

    // 3. Convolution blocks on [N, F + 1, T], each batch norm folded into the next layer.
    let y = e.op("Transpose", &[&xs], vec![attr("perm", [0_i64, 2, 1])])?;
    let [out1, inp1, k1] = m.conv1.weight.dims();
    let w1 = standardising_conv(&param(&m.conv1.weight)?, inp1, k1, mean, std);
    let b1 = conv_bias(&m.conv1, out1)?;
    let (y, bn1) = e.conv_block(&y, "conv1", &w1, [out1, inp1 + 1, k1], &b1, &m.bn1)?;
    let (y, bn2) = e.folded_conv_block(&y, "conv2", &m.conv2, &m.bn2, &bn1)?;
    let (y, bn3) = e.folded_conv_block(&y, "conv3", &m.conv3, &m.bn3, &bn2)?;

    // 4. LSTMs, time-major.
    let y = e.op("Transpose", &[&y], vec![attr("perm", [2_i64, 0, 1])])?;
    let y = e.lstm(&y, "lstm1", &m.lstm1, Some(&bn3))?;
    let y = e.lstm(&y, "lstm2", &m.lstm2, None)?; // [T', N, 64]
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
    let y = e.dense(&y, "fc1", &m.fc1, None)?;
    let y = e.op("Relu", &[&y], vec![])?;
    let bn4 = bn_affine(&m.bn4)?;
    let y = e.dense(&y, "fc2", &m.fc2, Some(&bn4))?;
    let y = e.op("Relu", &[&y], vec![])?;
    let logits = e.dense(&y, "out", &m.out, None)?;
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

/// Rewrites `model.onnx` in the model directory `dir` (written by `prosodia-train train`) from
/// its saved weights and standardisation, with this version's exporter. For picking up an
/// exporter change without retraining; the weights are untouched.
pub fn reexport(dir: &Path) -> Result<()> {
    let saved = crate::artifact::load(dir)?;
    write_onnx(dir, &saved.meta, &saved.net)
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    /// Valid 1-D convolution of `x` `[inp, t]` with `w` `[out, inp, k]`.
    fn conv(w: &[f32], bias: &[f32], x: &[f32], inp: usize, k: usize, t: usize) -> Vec<f64> {
        let out = bias.len();
        let mut y = vec![0f64; out * (t - k + 1)];
        for o in 0..out {
            for s in 0..=t - k {
                let mut acc = f64::from(bias[o]);
                for c in 0..inp {
                    for j in 0..k {
                        acc += f64::from(w[(o * inp + c) * k + j]) * f64::from(x[c * t + s + j]);
                    }
                }
                y[o * (t - k + 1) + s] = acc;
            }
        }
        y
    }

    fn ramp(n: usize, step: f32) -> Vec<f32> {
        (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) * step).collect()
    }

    fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-5 * (1.0 + x.abs()), "element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn an_input_affine_folded_into_a_convolution_gives_the_same_outputs() {
        let (out, inp, k, t) = (3, 4, 3, 9);
        let w = ramp(out * inp * k, 0.1);
        let bias = vec![0.5, -0.25, 0.0];
        let x = ramp(inp * t, 0.3);
        let (a, b) = (vec![1.5, -0.5, 2.0, 0.25], vec![0.1, -2.0, 0.0, 3.0]);
        let affine: Vec<f32> =
            x.iter().enumerate().map(|(i, &v)| a[i / t] * v + b[i / t]).collect();
        let want = conv(&w, &bias, &affine, inp, k, t);
        let (mut w2, mut bias2) = (w.clone(), bias.clone());
        fold_into_conv(&mut w2, &mut bias2, inp, k, &a, &b);
        assert_close(&conv(&w2, &bias2, &x, inp, k, t), &want);
    }

    #[test]
    fn an_input_affine_folded_into_a_dense_layer_gives_the_same_outputs() {
        let (inp, out) = (3, 2);
        let w = ramp(inp * out, 0.2); // [inp, out]
        let bias = vec![1.0, -1.0];
        let x = [0.5f32, -1.5, 2.0];
        let (a, b) = ([2.0f32, 0.5, -1.0], [0.25f32, 1.0, -0.5]);
        let dense = |w: &[f32], bias: &[f32], x: &[f32]| -> Vec<f64> {
            (0..out)
                .map(|g| {
                    let dot: f64 =
                        (0..inp).map(|c| f64::from(w[c * out + g]) * f64::from(x[c])).sum();
                    f64::from(bias[g]) + dot
                })
                .collect()
        };
        let affine: Vec<f32> = (0..inp).map(|c| a[c] * x[c] + b[c]).collect();
        let (mut w2, mut bias2) = (w.clone(), bias.clone());
        fold_into_rows(&mut w2, &mut bias2, &a, &b);
        assert_close(&dense(&w2, &bias2, &x), &dense(&w, &bias, &affine));
    }

    #[test]
    fn the_standardising_convolution_sees_standardised_frames_and_zero_padding() {
        let (out, inp, k, t, valid) = (2, 3, 3, 8, 6);
        let w = ramp(out * inp * k, 0.15);
        let bias = vec![0.3, -0.7];
        let (mean, std) = (vec![10.0f32, -4.0, 0.5], vec![2.0f32, 0.5, 4.0]);
        // Raw frames, garbage in the padding; the graph multiplies frames and the ones column
        // by the mask, which is what `masked` builds here ([inp + 1, t], channels first).
        let x = ramp(inp * t, 1.7);
        let mask: Vec<f32> = (0..t).map(|s| if s < valid { 1.0 } else { 0.0 }).collect();
        let mut masked: Vec<f32> = x.iter().enumerate().map(|(i, &v)| v * mask[i % t]).collect();
        masked.extend(&mask);
        let got = conv(&standardising_conv(&w, inp, k, &mean, &std), &bias, &masked, inp + 1, k, t);
        // What the trainer computes: standardise, then zero the padded frames.
        let standardised: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| mask[i % t] * (v - mean[i / t]) / std[i / t])
            .collect();
        assert_close(&got, &conv(&w, &bias, &standardised, inp, k, t));
    }
}
