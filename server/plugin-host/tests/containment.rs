//! Faults inside plugins fail the request, never the process: a Rust plugin that panics (in
//! `extract` or in `create`), returns NaN, or returns an error, loaded from its cdylib; and a
//! built-in plugin that panics. After each fault the same plugin keeps serving good handles.

mod common;

use prosodia_plugin_api::{
    ErrorCode, ExtractorPlugin, ExtractorSpec, FeatureExtractor, FeatureMatrix, OutputLayout,
    PluginError,
};
use prosodia_plugin_host::{Builtin, HostErrorKind, PluginHost};

fn host_with_test_plugin() -> anyhow::Result<(tempfile::TempDir, PluginHost)> {
    let dir = tempfile::tempdir()?;
    let lib = common::rust_cdylib("prosodia_test_plugin")?;
    std::fs::copy(lib, dir.path().join("librust_test.so"))?;
    let host = PluginHost::builder().plugin_dir(dir.path()).build()?;
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    Ok((dir, host))
}

#[test]
fn panic_in_a_dynamic_rust_plugin_fails_only_that_request() -> anyhow::Result<()> {
    let (_dir, host) = host_with_test_plugin()?;
    let x = common::tone(16_000, 0.2);
    let good = host.extractor("rust_test", "")?;
    let bad = host.extractor("rust_test", "mode = \"panic\"")?;
    for _ in 0..3 {
        let err = bad
            .extract(&[&x], 16_000)
            .err()
            .ok_or_else(|| anyhow::anyhow!("a panic returned Ok"))?;
        assert_eq!(err.kind(), HostErrorKind::Plugin, "{err}");
        assert_eq!(err.plugin_code(), Some(ErrorCode::Panic), "{err}");
        assert!(err.message().contains("deliberate panic in extract"), "{err}");
        // The plugin and the process are fine.
        let out = good.extract(&[&x], 16_000)?;
        assert!(
            (out[0].data[1] - 0.5 / 2f32.sqrt()).abs() < 1e-3,
            "rms of a 0.5 tone: {:?}",
            out[0].data
        );
    }
    let err = host
        .extractor("rust_test", "mode = \"panic_on_create\"")
        .err()
        .ok_or_else(|| anyhow::anyhow!("ok"))?;
    assert_eq!(err.plugin_code(), Some(ErrorCode::Panic), "{err}");
    assert!(err.message().contains("deliberate panic in create"), "{err}");
    Ok(())
}

#[test]
fn nan_and_errors_from_a_dynamic_plugin_become_errors() -> anyhow::Result<()> {
    let (_dir, host) = host_with_test_plugin()?;
    let x = common::tone(16_000, 0.2);
    let nan = host.extractor("rust_test", "mode = \"nan\"")?;
    let err =
        nan.extract(&[&x, &x], 16_000).err().ok_or_else(|| anyhow::anyhow!("NaN was accepted"))?;
    assert_eq!(err.kind(), HostErrorKind::NonFiniteOutput, "{err}");
    assert!(err.message().contains("column \"rms\""), "names where the NaN is: {err}");
    let failing = host.extractor("rust_test", "mode = \"error\"")?;
    let err = failing.extract(&[&x], 16_000).err().ok_or_else(|| anyhow::anyhow!("ok"))?;
    assert_eq!((err.kind(), err.plugin_code()), (HostErrorKind::Plugin, Some(ErrorCode::Internal)));
    assert!(err.message().contains("deliberate error"), "{err}");
    // Live-object accounting crosses the boundary: two handles open, nothing else.
    assert_eq!(host.live_objects("rust_test")?, Some(2));
    drop((nan, failing));
    assert_eq!(host.live_objects("rust_test")?, Some(0));
    Ok(())
}

struct Panicky(ExtractorSpec);

impl FeatureExtractor for Panicky {
    fn spec(&self) -> &ExtractorSpec {
        &self.0
    }
    fn extract(&self, _batch: &[&[f32]], _rate: u32) -> Result<Vec<FeatureMatrix>, PluginError> {
        panic!("built-in panic");
    }
}

impl ExtractorPlugin for Panicky {
    const NAME: &'static str = "panicky";
    const VERSION: &'static str = "0.0.0";
    fn create(_config: &str) -> Result<Self, PluginError> {
        Ok(Panicky(ExtractorSpec {
            sample_rate: 0,
            layout: OutputLayout::Vector,
            columns: vec!["x".into()],
        }))
    }
}

#[test]
fn panic_in_a_builtin_plugin_is_contained() -> anyhow::Result<()> {
    let host = PluginHost::builder().builtin(Builtin::extractor::<Panicky>()).build()?;
    let handle = host.extractor("panicky", "")?;
    let err = handle.extract(&[&[0.1, 0.2]], 16_000).err().ok_or_else(|| anyhow::anyhow!("ok"))?;
    assert_eq!(err.kind(), HostErrorKind::Panicked, "{err}");
    assert!(err.message().contains("built-in panic"), "{err}");
    Ok(())
}
