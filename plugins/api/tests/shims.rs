//! The generated `extern "C"` shims, called through their raw function pointers exactly as a
//! host would: results, error codes with read-back messages, contained panics, argument
//! validation and live-object counting. Everything runs in one test so the process-wide live
//! counter is not disturbed by parallel tests.

#![allow(unsafe_code)]

use prosodia_plugin_api::abi::{
    self, FeatureOutput, RawBackend, RawBatch, RawExtractor, RawF32Slice, RawStr,
};
use prosodia_plugin_api::*;

struct Mean {
    spec: ExtractorSpec,
    panic_on_extract: bool,
}

impl FeatureExtractor for Mean {
    fn spec(&self) -> &ExtractorSpec {
        &self.spec
    }
    fn extract(&self, batch: &[&[f32]], _rate: u32) -> Result<Vec<FeatureMatrix>, PluginError> {
        if self.panic_on_extract {
            panic!("deliberate test panic");
        }
        batch
            .iter()
            .map(|u| FeatureMatrix::new(1, 1, vec![u.iter().sum::<f32>() / u.len() as f32]))
            .collect()
    }
}

impl ExtractorPlugin for Mean {
    const NAME: &'static str = "mean";
    const VERSION: &'static str = "0.0.1";
    fn create(config_toml: &str) -> Result<Self, PluginError> {
        let panic_on_extract = match config_toml.trim() {
            "" => false,
            "panic = true" => true,
            other => {
                return Err(PluginError::invalid_argument(format!(
                    "unknown configuration {other:?}"
                )));
            }
        };
        Ok(Mean {
            spec: ExtractorSpec {
                sample_rate: 16_000,
                layout: OutputLayout::Vector,
                columns: vec!["mean".into()],
            },
            panic_on_extract,
        })
    }
}

struct Softmax(BackendSpec);

impl ModelBackend for Softmax {
    fn spec(&self) -> &BackendSpec {
        &self.0
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, PluginError> {
        let mut out = Vec::new();
        for i in 0..batch.n {
            let item = batch.item(i);
            let means: Vec<f32> = (0..batch.f)
                .map(|c| item.chunks(batch.f).map(|r| r[c]).sum::<f32>() / batch.lengths[i] as f32)
                .collect();
            let max = means.iter().cloned().fold(f32::MIN, f32::max);
            let exp: Vec<f32> = means.iter().map(|m| (m - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            out.extend(exp.iter().map(|e| e / sum));
        }
        Ok(out)
    }
}

impl BackendPlugin for Softmax {
    const NAME: &'static str = "softmax";
    const VERSION: &'static str = "0.0.1";
    fn load(_model: &std::path::Path, _config: &str) -> Result<Self, PluginError> {
        let f = 3;
        Ok(Softmax(BackendSpec {
            inputs: vec![TensorSpec {
                name: "features".into(),
                dtype: DType::F32,
                shape: vec![-1, -1, f],
            }],
            outputs: vec![TensorSpec {
                name: "probs".into(),
                dtype: DType::F32,
                shape: vec![-1, f],
            }],
            num_classes: f as usize,
        }))
    }
}

#[allow(clippy::expect_used)]
fn last_error(d: &abi::PluginDescriptor) -> String {
    let f = d.last_error.expect("last_error");
    unsafe { f().as_str() }.expect("utf8").to_string()
}

#[test]
fn shims_round_trip_errors_panics_and_counts() {
    let d = plugin_descriptor!(extractor: Mean);
    assert_eq!(
        (d.abi_major, d.abi_minor, d.kind),
        (abi::ABI_MAJOR, abi::ABI_MINOR, abi::KIND_FEATURE_EXTRACTOR)
    );
    assert_eq!(unsafe { d.name.as_str() }.expect("utf8"), "mean");
    let vt = unsafe { &*d.extractor };
    let live = d.live_objects.expect("live_objects");
    let base = unsafe { live() };

    // Bad configuration: error code plus the plugin's message.
    let mut h: *mut RawExtractor = std::ptr::null_mut();
    let rc = unsafe { vt.create.expect("create")(RawStr::from_static("bogus"), &mut h) };
    assert_eq!(rc, ErrorCode::InvalidArgument.as_raw());
    assert!(last_error(d).contains("unknown configuration"), "{}", last_error(d));
    assert!(h.is_null());

    let rc = unsafe { vt.create.expect("create")(RawStr::EMPTY, &mut h) };
    assert_eq!(rc, 0);
    assert_eq!(unsafe { live() }, base + 1);

    let mut info = std::mem::MaybeUninit::uninit();
    assert_eq!(unsafe { vt.info.expect("info")(h, info.as_mut_ptr()) }, 0);
    let info = unsafe { info.assume_init() };
    assert_eq!((info.sample_rate, info.layout, info.width), (16_000, abi::LAYOUT_VECTOR, 1));
    assert_eq!(unsafe { (*info.column_names).as_str() }.expect("utf8"), "mean");

    let a = [1.0f32, 2.0, 3.0];
    let b = [4.0f32];
    let batch = [RawF32Slice { ptr: a.as_ptr(), len: 3 }, RawF32Slice { ptr: b.as_ptr(), len: 1 }];
    let mut out = FeatureOutput::EMPTY;
    let extract = vt.extract.expect("extract");
    assert_eq!(unsafe { extract(h, batch.as_ptr(), 2, 16_000, &mut out) }, 0);
    assert_eq!(unsafe { live() }, base + 2, "an unreleased output counts as live");
    let items = unsafe { std::slice::from_raw_parts(out.items, out.count) };
    let values: Vec<f32> = items.iter().map(|m| unsafe { *m.data }).collect();
    assert_eq!(values, vec![2.0, 4.0]);
    unsafe { vt.release_output.expect("release")(h, &mut out) };
    assert!(out.owner.is_null());
    assert_eq!(unsafe { live() }, base + 1);

    // Empty batch, empty utterance, wrong rate: InvalidInput, never a crash.
    let mut out = FeatureOutput::EMPTY;
    assert_eq!(
        unsafe { extract(h, std::ptr::null(), 0, 16_000, &mut out) },
        ErrorCode::InvalidInput.as_raw()
    );
    assert!(last_error(d).contains("empty batch"));
    let empty = [RawF32Slice { ptr: std::ptr::null(), len: 0 }];
    assert_eq!(
        unsafe { extract(h, empty.as_ptr(), 1, 16_000, &mut out) },
        ErrorCode::InvalidInput.as_raw()
    );
    assert_eq!(
        unsafe { extract(h, batch.as_ptr(), 2, 8_000, &mut out) },
        ErrorCode::InvalidInput.as_raw()
    );
    assert!(last_error(d).contains("8000 Hz"), "{}", last_error(d));
    unsafe { vt.destroy.expect("destroy")(h) };
    assert_eq!(unsafe { live() }, base);

    // A panic inside the plugin fails the call with PANIC and a message, and the handle stays usable.
    let mut h: *mut RawExtractor = std::ptr::null_mut();
    assert_eq!(
        unsafe { vt.create.expect("create")(RawStr::from_static("panic = true"), &mut h) },
        0
    );
    let rc = unsafe { extract(h, batch.as_ptr(), 2, 16_000, &mut out) };
    assert_eq!(rc, ErrorCode::Panic.as_raw());
    assert!(last_error(d).contains("deliberate test panic"), "{}", last_error(d));
    assert_eq!(
        unsafe { extract(h, batch.as_ptr(), 2, 16_000, &mut out) },
        ErrorCode::Panic.as_raw()
    );
    unsafe { vt.destroy.expect("destroy")(h) };
    assert_eq!(unsafe { live() }, base);

    // The backend table: softmax of per-item means over valid frames only.
    let d = plugin_descriptor!(backend: Softmax);
    assert_eq!(d.kind, abi::KIND_MODEL_BACKEND);
    assert!(d.extractor.is_null());
    let vt = unsafe { &*d.backend };
    let mut h: *mut RawBackend = std::ptr::null_mut();
    assert_eq!(
        unsafe { vt.load.expect("load")(RawStr::from_static("m.onnx"), RawStr::EMPTY, &mut h) },
        0
    );
    // Item 0: frames [1,0,0] and padding that must be ignored; item 1: two frames averaging [0,0,2].
    let data = [1.0f32, 0.0, 0.0, 9.0, 9.0, 9.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0];
    let lengths = [1usize, 2];
    let raw = RawBatch { data: data.as_ptr(), n: 2, t: 2, f: 3, lengths: lengths.as_ptr() };
    let mut probs = [0.0f32; 6];
    let run = vt.run.expect("run");
    assert_eq!(unsafe { run(h, &raw, probs.as_mut_ptr(), probs.len()) }, 0);
    let softmax = |v: [f32; 3]| {
        let e = v.map(f32::exp);
        let s: f32 = e.iter().sum();
        e.map(|x| x / s)
    };
    let expected: Vec<f32> =
        softmax([1.0, 0.0, 0.0]).into_iter().chain(softmax([0.0, 0.0, 2.0])).collect();
    for (p, e) in probs.iter().zip(&expected) {
        assert!((p - e).abs() < 1e-6, "{probs:?} vs {expected:?}");
    }
    // Wrong output size and a length beyond T are refused.
    assert_eq!(unsafe { run(h, &raw, probs.as_mut_ptr(), 5) }, ErrorCode::InvalidArgument.as_raw());
    let bad_lengths = [1usize, 3];
    let bad = RawBatch { lengths: bad_lengths.as_ptr(), ..raw };
    assert_eq!(unsafe { run(h, &bad, probs.as_mut_ptr(), 6) }, ErrorCode::InvalidInput.as_raw());
    assert!(last_error(d).contains("item 1"), "{}", last_error(d));
    unsafe { vt.destroy.expect("destroy")(h) };
    assert_eq!(unsafe { live() }, base);
}
