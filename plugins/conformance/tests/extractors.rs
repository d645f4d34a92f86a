//! The conformance suite against every feature-extractor plugin we ship: the built-in CPU
//! extractor, the same code loaded from its cdylib, and the C example plugin. Plus the C
//! plugin's numbers against the Rust reference implementation of the same features.

use std::sync::Arc;

use anyhow::Context as _;
use prosodia_features_cpu::CpuExtractor;
use prosodia_plugin_conformance::{build, check_extractor, test_signal};
use prosodia_plugin_host::{Builtin, Origin, PluginHost};

fn c_plugin(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    Ok(build::build_c_plugin(&build::c_energy_zcr_source(), &dir.join("libc_energy_zcr.so"), &[])?)
}

fn run(host: &PluginHost, name: &str, config: &str) -> anyhow::Result<()> {
    match check_extractor(host, name, config) {
        Ok(report) => {
            assert!(report.passed.len() >= 9, "too few checks ran: {report:?}");
            eprintln!("{name}: passed {:?}, skipped {:?}", report.passed, report.skipped);
            Ok(())
        }
        Err(failures) => anyhow::bail!("{failures}"),
    }
}

#[test]
fn builtin_cpu_extractor_conforms() -> anyhow::Result<()> {
    let host = PluginHost::builder().builtin(Builtin::extractor::<CpuExtractor>()).build()?;
    assert_eq!(host.info("cpu")?.origin, Origin::Builtin);
    // The speech preset keeps the test quick; the utterance output is the vector layout.
    run(
        &host,
        "cpu",
        "[preprocess]\nresample_hz = 16000\n[stft]\nn_fft = 512\nwin_length = 400\nhop_length = 160",
    )?;
    run(&host, "cpu", "output = \"utterance\"\n[preprocess]\nresample_hz = 16000")
}

#[test]
fn dynamic_cpu_extractor_conforms_and_replaces_the_builtin() -> anyhow::Result<()> {
    let lib = build::rust_plugin_library("prosodia_features_cpu_plugin")?;
    let dir = tempfile::tempdir()?;
    std::fs::copy(&lib, dir.path().join("libprosodia_features_cpu_plugin.so"))?;
    let host = PluginHost::builder()
        .builtin(Builtin::extractor::<CpuExtractor>())
        .plugin_dir(dir.path())
        .build()?;
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    let info = host.info("cpu")?;
    assert!(
        matches!(info.origin, Origin::Library(_)),
        "the library must replace the built-in: {info:?}"
    );
    run(
        &host,
        "cpu",
        "[preprocess]\nresample_hz = 16000\n[stft]\nn_fft = 512\nwin_length = 400\nhop_length = 160",
    )?;

    // Built-in and dynamic give identical numbers.
    let builtin = PluginHost::builder().builtin(Builtin::extractor::<CpuExtractor>()).build()?;
    let x = test_signal(48_000, 1.0, 7);
    let a = builtin.extractor("cpu", "")?.extract(&[&x], 48_000)?;
    let b = host.extractor("cpu", "")?.extract(&[&x], 48_000)?;
    assert_eq!(a, b);
    Ok(())
}

#[test]
fn c_plugin_conforms() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = c_plugin(dir.path())?;
    let host = PluginHost::builder().build()?;
    let info = host.load_library(&path)?;
    assert_eq!((info.name.as_str(), info.version.as_str()), ("c_energy_zcr", "1.0.0"));
    run(&host, "c_energy_zcr", "")?;
    run(&host, "c_energy_zcr", "frame_length = 400\nhop_length = 160\nsample_rate = 16000")
}

#[test]
fn c_plugin_matches_rust_framing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let host = PluginHost::builder().build()?;
    host.load_library(c_plugin(dir.path())?)?;
    for (frame, hop, rate) in
        [(2048usize, 512usize, 48_000u32), (400, 160, 16_000), (512, 128, 22_050)]
    {
        let extractor = Arc::new(host.extractor(
            "c_energy_zcr",
            &format!("frame_length = {frame}\nhop_length = {hop}\nsample_rate = {rate}"),
        )?);
        // Include short inputs (shorter than one frame) and exact silence with sign flips.
        let mut inputs =
            vec![test_signal(rate, 3.0, 1), test_signal(rate, 0.01, 2), vec![0.0; 777]];
        inputs.push((0..5000).map(|i| if i % 3 == 0 { -0.25 } else { 0.5 }).collect());
        for x in &inputs {
            let out = extractor.extract(&[x], rate).context("C extract")?;
            let rms = prosodia_dsp::framing::rms(x, frame, hop);
            let zcr = prosodia_dsp::framing::zero_crossing_rate(x, frame, hop);
            assert_eq!(out[0].rows, rms.len(), "frame count for {} samples", x.len());
            assert!(!rms.is_empty());
            for (t, (r, z)) in rms.iter().zip(&zcr).enumerate() {
                let row = &out[0].data[t * 2..t * 2 + 2];
                assert!((row[0] - r).abs() <= 1e-6, "rms frame {t}: C {} vs Rust {r}", row[0]);
                assert!((row[1] - z).abs() <= 1e-6, "zcr frame {t}: C {} vs Rust {z}", row[1]);
            }
        }
    }
    Ok(())
}

/// The suite must catch broken plugins, not just pass good ones: a plugin whose batch results
/// depend on position, and one that leaks its handles, each fail exactly the matching check.
#[test]
fn suite_catches_faulty_plugins() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (define, check) in [
        ("FAULT_BATCH_STATE", "batch equals one by one"),
        ("FAULT_LEAK", "destroy frees everything"),
    ] {
        let path = build::build_c_plugin(
            &build::c_energy_zcr_source(),
            &dir.path().join(format!("{define}.so")),
            &[define],
        )?;
        let host = PluginHost::builder().build()?;
        host.load_library(&path)?;
        let failures = match check_extractor(&host, "c_energy_zcr", "") {
            Ok(report) => anyhow::bail!("{define}: the suite passed a faulty plugin: {report:?}"),
            Err(f) => f,
        };
        let failed: Vec<&str> = failures.failures.iter().map(|(c, _)| *c).collect();
        assert_eq!(failed, vec![check], "{define}: {failures}");
    }
    Ok(())
}
