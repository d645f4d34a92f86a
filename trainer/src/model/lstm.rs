//! A masked LSTM layer, written out so that padded batches give the same result as unpadded
//! clips and so its weights map one-to-one onto ONNX's `LSTM` operator.
//!
//! burn's own `Lstm` runs every step on every row of the batch; a clip shorter than the
//! batch's longest would then keep updating its state on padding. Here each step is gated by a
//! per-row mask: past a row's length its hidden and cell states are carried unchanged, so the
//! final state is the state at the clip's last real frame — exactly what ONNX `LSTM` returns as
//! `Y_h` when given `sequence_lens`. The input projection of all steps is one matrix product;
//! the loop does only the recurrent product. Gates are packed in ONNX's order
//! (input, output, forget, cell), weights stored as `[d_in, 4·hidden]` and
//! `[hidden, 4·hidden]` (transpose them for ONNX's `W`/`R`).

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// One masked LSTM layer (batch first).
#[derive(Module, Debug)]
pub struct MaskedLstm {
    /// Input weights `[d_in, 4·hidden]`, gates i, o, f, c.
    pub w_input: Param<Tensor<2>>,
    /// Recurrent weights `[hidden, 4·hidden]`, gates i, o, f, c.
    pub w_hidden: Param<Tensor<2>>,
    /// Bias `[4·hidden]` (one bias; ONNX's `Rb` is zero).
    pub bias: Param<Tensor<1>>,
    /// Hidden size.
    pub hidden: usize,
}

impl MaskedLstm {
    /// Glorot-uniform weights and a forget-gate bias of 1 (Keras's defaults).
    pub fn new(d_in: usize, hidden: usize, device: &Device) -> Self {
        let init = Initializer::XavierUniform { gain: 1.0 };
        let w_input = init.init_with([d_in, 4 * hidden], Some(d_in), Some(4 * hidden), device);
        let w_hidden = init.init_with([hidden, 4 * hidden], Some(hidden), Some(4 * hidden), device);
        let mut b = vec![0f32; 4 * hidden];
        b[2 * hidden..3 * hidden].fill(1.0);
        let bias = Param::from_tensor(Tensor::from_data(TensorData::new(b, [4 * hidden]), device));
        Self { w_input, w_hidden, bias, hidden }
    }

    /// Runs over `x` `[N, T, d_in]`; `mask` `[N, T]` is 1 on real steps and 0 on padding (real
    /// steps first). Returns every step's output `[N, T, hidden]` (0 on padding) and the final
    /// hidden state `[N, hidden]`.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
        let [n, t, d_in] = x.dims();
        let h4 = 4 * self.hidden;
        let device = x.device();
        let projected = x
            .reshape([n * t, d_in])
            .matmul(self.w_input.val())
            .add(self.bias.val().unsqueeze_dim::<2>(0))
            .reshape([n, t, h4]);
        let w_hidden = self.w_hidden.val();
        let hd = self.hidden;
        let mut h = Tensor::<2>::zeros([n, hd], &device);
        let mut c = Tensor::<2>::zeros([n, hd], &device);
        let mut outputs = Vec::with_capacity(t);
        for step in 0..t {
            let gates = projected.clone().narrow(1, step, 1).reshape([n, h4])
                + h.clone().matmul(w_hidden.clone());
            let i = sigmoid(gates.clone().narrow(1, 0, hd));
            let o = sigmoid(gates.clone().narrow(1, hd, hd));
            let f = sigmoid(gates.clone().narrow(1, 2 * hd, hd));
            let g = gates.narrow(1, 3 * hd, hd).tanh();
            let c_new = f * c.clone() + i * g;
            let h_new = o * c_new.clone().tanh();
            let m = mask.clone().narrow(1, step, 1); // [N, 1], broadcast over hidden
            c = c.clone() + (c_new - c).mul(m.clone());
            h = h.clone() + (h_new.clone() - h).mul(m.clone());
            outputs.push(h_new.mul(m));
        }
        (Tensor::stack(outputs, 1), h)
    }
}
