//! The tract backend on the test classifiers of `prosodia-onnx`: padding never leaks,
//! probabilities are normalised, and bad models and batches are errors, not panics.

use anyhow::Result;
use prosodia_backend_tract::{DType, ErrorKind, TractBackend};
use prosodia_onnx::testmodel::Rng;
use prosodia_onnx::{Arch, DataType, Dim, GraphBuilder, TestModelConfig, attr, test_classifier};

const F: usize = 8;

fn model(arch: Arch) -> Result<TractBackend> {
    let bytes = test_classifier(&TestModelConfig { arch, ..TestModelConfig::default() })?;
    Ok(TractBackend::from_bytes(&bytes)?)
}

/// Items of unequal lengths, each `len × F` values.
fn items(lengths: &[usize], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    lengths.iter().map(|&l| rng.vec(l * F, 2.0).iter().map(|v| v + 0.3).collect()).collect()
}

/// Zero-pads items to the longest one: `(features, t, lengths)`.
fn pad(items: &[Vec<f32>]) -> (Vec<f32>, usize, Vec<i64>) {
    let t = items.iter().map(|i| i.len() / F).max().unwrap_or(0);
    let mut out = vec![0.0; items.len() * t * F];
    for (k, item) in items.iter().enumerate() {
        out[k * t * F..k * t * F + item.len()].copy_from_slice(item);
    }
    (out, t, items.iter().map(|i| (i.len() / F) as i64).collect())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check_batched_equals_unbatched(arch: Arch) -> Result<()> {
    let backend = model(arch)?;
    assert_eq!(backend.num_classes(), 6);
    assert_eq!(backend.feature_width(), F);
    let lengths = [5, 17, 1, 9, 17, 2];
    let items = items(&lengths, 11);
    let (features, t, lens) = pad(&items);
    let batched = backend.run(&features, items.len(), t, F, &lens)?;
    assert_eq!(batched.len(), items.len() * 6);
    for (k, item) in items.iter().enumerate() {
        let alone = backend.run(item, 1, item.len() / F, F, &[lens[k]])?;
        let row = &batched[k * 6..k * 6 + 6];
        let diff = max_abs_diff(row, &alone);
        assert!(diff < 1e-5, "{arch:?} item {k}: batched {row:?} vs alone {alone:?} (diff {diff})");
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{arch:?} item {k}: row sums to {sum}");
        assert!(row.iter().all(|p| *p > 0.0 && *p < 1.0), "{arch:?} item {k}: {row:?}");
    }
    // The classifier is not constant: different items get different probabilities.
    assert!(max_abs_diff(&batched[0..6], &batched[6..12]) > 1e-3, "{batched:?}");
    Ok(())
}

#[test]
fn conv_batched_equals_unbatched() -> Result<()> {
    check_batched_equals_unbatched(Arch::Conv)
}

#[test]
fn lstm_batched_equals_unbatched() -> Result<()> {
    check_batched_equals_unbatched(Arch::ConvLstm)
}

#[test]
fn a_reused_model_answers_as_a_fresh_one_does() -> Result<()> {
    // Nothing from one call (an LSTM's hidden state, a resolved shape) may reach the next:
    // each answer must be bit-identical to that of a model loaded just for it, whatever ran
    // before and whatever the batch's shape. (Reusing tract's run states between calls would
    // break this: an LSTM scan keeps the batch size it resolved, and the next batch of
    // another size fails with "Clashing resolution".)
    for arch in [Arch::ConvLstm, Arch::Conv] {
        let reused = model(arch)?;
        let batches: [&[usize]; 6] = [&[17], &[3, 9], &[17], &[1], &[12, 12, 5], &[17]];
        for lengths in batches {
            let (features, t, lens) = pad(&items(lengths, lengths[0] as u64));
            let fresh = model(arch)?.run(&features, lengths.len(), t, F, &lens)?;
            let again = reused.run(&features, lengths.len(), t, F, &lens)?;
            assert_eq!(again, fresh, "{arch:?} lengths {lengths:?}");
        }
    }
    Ok(())
}

#[test]
fn padding_content_is_ignored() -> Result<()> {
    let backend = model(Arch::ConvLstm)?;
    let items = items(&[4, 10], 3);
    let (mut features, t, lens) = pad(&items);
    let clean = backend.run(&features, 2, t, F, &lens)?;
    // Garbage in item 0's padding must not change anything.
    for v in &mut features[4 * F..t * F] {
        *v = 1e3;
    }
    let dirty = backend.run(&features, 2, t, F, &lens)?;
    assert!(max_abs_diff(&clean, &dirty) < 1e-5, "{clean:?} vs {dirty:?}");
    Ok(())
}

#[test]
fn declares_inputs_and_outputs() -> Result<()> {
    let backend = model(Arch::Conv)?;
    let inputs = backend.inputs();
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0].name, "features");
    assert_eq!(inputs[0].dtype, DType::F32);
    assert_eq!(inputs[0].shape, vec![-1, -1, F as i64]);
    assert_eq!(inputs[1].name, "lengths");
    assert_eq!(inputs[1].dtype, DType::I64);
    assert_eq!(inputs[1].shape, vec![-1]);
    let outputs = backend.outputs();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].name, "probabilities");
    assert_eq!(outputs[0].shape, vec![-1, 6]);
    Ok(())
}

#[test]
fn bad_model_bytes_are_an_error() {
    for bytes in [&b""[..], b"not an onnx model at all", &[0xff; 64]] {
        let err = TractBackend::from_bytes(bytes).err();
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidModel), "{bytes:?}");
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let err = TractBackend::load(std::path::Path::new("/nonexistent/model.onnx")).err();
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::Io));
}

#[test]
fn model_without_lengths_input_is_rejected() -> Result<()> {
    let mut b = GraphBuilder::new("no_lengths");
    let x = b.input(
        "features",
        DataType::Float,
        &[Dim::symbol("batch"), Dim::symbol("time"), Dim::Fixed(F)],
    )?;
    let axes = b.const_i64(&[1], &[1])?;
    let mean = b.op("ReduceMean", &[&x, &axes], vec![attr("keepdims", 0_i64)])?;
    b.node("Softmax", &[&mean], &["probabilities"], vec![attr("axis", 1_i64)])?;
    b.output("probabilities", DataType::Float, &[Dim::symbol("batch"), Dim::Fixed(F)])?;
    let err = TractBackend::from_bytes(&b.to_bytes()?).err();
    let err = err.ok_or_else(|| anyhow::anyhow!("a model without `lengths` was accepted"))?;
    assert_eq!(err.kind(), ErrorKind::InvalidModel);
    assert!(err.message().contains("lengths"), "{err}");
    Ok(())
}

/// features, n, t, f, lengths, and a part of the expected message.
type BadBatch = (Vec<f32>, usize, usize, usize, Vec<i64>, &'static str);

#[test]
fn bad_batches_are_errors_naming_the_problem() -> Result<()> {
    let backend = model(Arch::Conv)?;
    let ok = vec![0.5; 2 * 3 * F];
    let cases: Vec<BadBatch> = vec![
        (vec![0.5; 2 * 3 * 7], 2, 3, 7, vec![3, 3], "expects F = 8, got 7"),
        (ok.clone(), 2, 3, F, vec![3, 0], "length 0"),
        (ok.clone(), 2, 3, F, vec![3, -2], "length -2"),
        (ok.clone(), 2, 3, F, vec![4, 3], "length 4"),
        (ok.clone(), 2, 3, F, vec![3], "1 lengths for a batch of 2"),
        (ok[..40].to_vec(), 2, 3, F, vec![3, 3], "features hold 40 values"),
        (vec![], 0, 3, F, vec![], "empty batch"),
        (vec![], 2, 0, F, vec![1, 1], "empty batch"),
        (
            {
                let mut v = ok.clone();
                v[F + 2] = f32::NAN;
                v
            },
            2,
            3,
            F,
            vec![3, 3],
            "not finite",
        ),
        (ok.clone(), usize::MAX, 3, F, vec![3, 3], "expected n × t × f"),
    ];
    for (features, n, t, f, lengths, needle) in cases {
        let err = backend.run(&features, n, t, f, &lengths).err();
        let err =
            err.ok_or_else(|| anyhow::anyhow!("accepted n={n} t={t} f={f} lengths={lengths:?}"))?;
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(needle), "`{err}` should mention `{needle}`");
    }
    Ok(())
}

#[test]
fn shared_between_threads() -> Result<()> {
    let backend = model(Arch::Conv)?;
    let items = items(&[6, 3, 8], 5);
    let (features, t, lens) = pad(&items);
    let expected = backend.run(&features, 3, t, F, &lens)?;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| backend.run(&features, 3, t, F, &lens))).collect();
        for h in handles {
            let got = h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
            assert_eq!(got, expected);
        }
        Ok(())
    })
}

/// tract 0.23 panics (an `unwrap` on the batch size) when an LSTM without explicit initial
/// states has a symbolic batch; `blocks::lstm_forward` passes them, and a model that does
/// not must give an error, not a panic.
#[test]
fn tract_panic_on_lstm_without_initial_state_is_an_error() -> Result<()> {
    let h = 4;
    let mut b = GraphBuilder::new("lstm_no_state");
    let x = b.input(
        "features",
        DataType::Float,
        &[Dim::symbol("batch"), Dim::symbol("time"), Dim::Fixed(F)],
    )?;
    b.input("lengths", DataType::Int64, &[Dim::symbol("batch")])?;
    let x_tnf = b.op("Transpose", &[&x], vec![attr("perm", [1_i64, 0, 2])])?;
    let w = b.init_f32("w", &[1, 4 * h, F], &vec![0.1; 4 * h * F])?;
    let r = b.init_f32("r", &[1, 4 * h, h], &vec![0.1; 4 * h * h])?;
    let outs = b.op_multi("LSTM", &[&x_tnf, &w, &r], 2, vec![attr("hidden_size", h as i64)])?;
    let axes = b.const_i64(&[1], &[0])?;
    let y_h = b.op("Squeeze", &[&outs[1], &axes], vec![])?;
    b.node("Softmax", &[&y_h], &["probabilities"], vec![attr("axis", 1_i64)])?;
    b.output("probabilities", DataType::Float, &[Dim::symbol("batch"), Dim::Fixed(h)])?;
    match TractBackend::from_bytes(&b.to_bytes()?) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidModel, "{e}"),
        // A later tract that handles this case loads it; then it must run.
        Ok(backend) => assert_eq!(backend.run(&[0.5; 2 * 3 * F], 2, 3, F, &[3, 3])?.len(), 2 * h),
    }
    Ok(())
}
