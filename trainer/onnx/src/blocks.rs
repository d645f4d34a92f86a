//! Reusable pieces of Prosodia's classifier graphs: the padding mask, standardisation,
//! a 1-D convolution over time, a forward LSTM and the masked mean over valid frames.
//!
//! Prosodia batches utterances of unequal length by zero-padding them to `[N, T, F]` and
//! passing their true lengths. A batched run must give each item exactly what a run of that
//! item alone gives, so every block that mixes frames must ignore padding:
//! - after standardisation the padded frames are no longer zero, so [`standardise`] multiplies
//!   them back to zero; a convolution then sees at the edge of an item what ONNX's own zero
//!   padding gives a lone item;
//! - max-pooling pads with −∞, so only non-negative values (after `Relu`) multiplied by the
//!   mask pool like a lone item;
//! - a forward LSTM reads the padding only after the valid frames, so valid outputs are
//!   unaffected; tract runs `sequence_lens` only when all lengths equal T, so a backward
//!   direction cannot be used on padded batches (reverse the items by length instead);
//! - [`masked_mean`] averages over the valid frames only.

use crate::builder::{GraphBuilder, attr};
use crate::error::Error;
use crate::proto::DataType;

/// Builds the `[N, T]` float mask (1 for a valid frame, 0 for padding) of a `[N, T, ...]`
/// batch `x` from its `[N]` int64 `lengths`: `Range(0, T) < lengths[:, None]`.
pub fn frame_mask(b: &mut GraphBuilder, x: &str, lengths: &str) -> Result<String, Error> {
    let shape = b.op("Shape", &[x], vec![])?;
    let one_idx = b.const_i64(&[], &[1])?;
    let t = b.op("Gather", &[&shape, &one_idx], vec![attr("axis", 0_i64)])?;
    let zero = b.const_i64(&[], &[0])?;
    let one = b.const_i64(&[], &[1])?;
    let range = b.op("Range", &[&zero, &t, &one], vec![])?;
    let axes1 = b.const_i64(&[1], &[1])?;
    let len_col = b.op("Unsqueeze", &[lengths, &axes1], vec![])?;
    let valid = b.op("Less", &[&range, &len_col], vec![])?;
    b.op("Cast", &[&valid], vec![attr("to", DataType::Float as i64)])
}

/// Inserts a unit axis into `x` at `axis` (`Unsqueeze` with a constant `axes` input).
pub fn unsqueeze(b: &mut GraphBuilder, x: &str, axis: i64) -> Result<String, Error> {
    let axes = b.const_i64(&[1], &[axis])?;
    b.op("Unsqueeze", &[x, &axes], vec![])
}

/// Standardises `[N, T, F]` features with per-column `mean` and `std` (`(x − mean) / std`),
/// then zeroes the padded frames with the `[N, T]` `mask`.
pub fn standardise(
    b: &mut GraphBuilder,
    x: &str,
    mean: &[f32],
    std: &[f32],
    mask: &str,
) -> Result<String, Error> {
    let f = mean.len();
    let mean = b.const_f32(&[f], mean)?;
    let std = b.const_f32(&[f], std)?;
    let centred = b.op("Sub", &[x, &mean], vec![])?;
    let scaled = b.op("Div", &[&centred, &std], vec![])?;
    let mask3 = unsqueeze(b, mask, 2)?;
    b.op("Mul", &[&scaled, &mask3], vec![])
}

/// A same-length 1-D convolution over time of a channels-first `[N, C, T]` input with an
/// `[H, C, K]` `weight` and `[H]` `bias` (K odd, zero padding K/2 each side): `[N, H, T]`.
pub fn conv1d(
    b: &mut GraphBuilder,
    x: &str,
    weight: &str,
    bias: &str,
    kernel: usize,
) -> Result<String, Error> {
    let pad = (kernel / 2) as i64;
    b.op(
        "Conv",
        &[x, weight, bias],
        vec![
            attr("kernel_shape", [kernel as i64]),
            attr("pads", [pad, pad]),
            attr("strides", [1_i64]),
            attr("dilations", [1_i64]),
        ],
    )
}

/// A unidirectional (forward) ONNX `LSTM` over a time-major `[T, N, C]` input, returning the
/// per-frame hidden states `[T, N, H]`.
///
/// `w` is `[1, 4H, C]`, `r` is `[1, 4H, H]` and `bias` is `[1, 8H]` (input then recurrent
/// biases), with the gates in ONNX order **i, o, f, c** (PyTorch and burn use i, f, g, o:
/// reorder when exporting).
///
/// The zero initial states are passed explicitly, shaped `[1, N, H]` from the input's batch
/// size: tract builds its own zero states only for a fixed batch size, so without them a model
/// with a symbolic batch does not load in tract.
pub fn lstm_forward(
    b: &mut GraphBuilder,
    x: &str,
    w: &str,
    r: &str,
    bias: &str,
    hidden: usize,
) -> Result<String, Error> {
    let shape = b.op("Shape", &[x], vec![])?;
    let batch_ix = b.const_i64(&[1], &[1])?;
    let batch = b.op("Gather", &[&shape, &batch_ix], vec![attr("axis", 0_i64)])?;
    let one = b.const_i64(&[1], &[1])?;
    let h = b.const_i64(&[1], &[hidden as i64])?;
    let state_shape = b.op("Concat", &[&one, &batch, &h], vec![attr("axis", 0_i64)])?;
    let zeros = b.const_f32(&[1, 1, hidden], &vec![0.0; hidden])?;
    let state0 = b.op("Expand", &[&zeros, &state_shape], vec![])?;
    let outs = b.op_multi(
        "LSTM",
        &[x, w, r, bias, "", &state0, &state0],
        1,
        vec![attr("hidden_size", hidden as i64), attr("direction", "forward")],
    )?;
    let axes = b.const_i64(&[1], &[1])?;
    b.op("Squeeze", &[&outs[0], &axes], vec![])
}

/// The mean over valid frames of a channels-first `[N, H, T]` tensor: `Σ_t x·mask / length`,
/// giving `[N, H]`. `mask` is the `[N, T]` frame mask and `lengths` the `[N]` int64 lengths
/// (which must be positive; the backends reject empty items).
pub fn masked_mean(
    b: &mut GraphBuilder,
    x: &str,
    mask: &str,
    lengths: &str,
) -> Result<String, Error> {
    let mask_n1t = unsqueeze(b, mask, 1)?;
    let masked = b.op("Mul", &[x, &mask_n1t], vec![])?;
    let axes = b.const_i64(&[1], &[2])?;
    let sum = b.op("ReduceSum", &[&masked, &axes], vec![attr("keepdims", 0_i64)])?;
    let len_col = unsqueeze(b, lengths, 1)?;
    let len_f = b.op("Cast", &[&len_col], vec![attr("to", DataType::Float as i64)])?;
    b.op("Div", &[&sum, &len_f], vec![])
}
