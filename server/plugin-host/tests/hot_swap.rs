//! Hot swap under load: a C plugin is built as version 1.0.0, serves a stream of concurrent
//! calls from several threads, is rebuilt in place as 2.0.0 and reloaded while the calls
//! continue. Every call must succeed with the right numbers, each thread must switch from
//! 1.0.0 to 2.0.0 exactly once (never back), and the old library must be unloaded after.
//! Then broken rebuilds are reloaded and refused while 2.0.0 keeps serving.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prosodia_plugin_host::{HostErrorKind, PluginHost};

const THREADS: usize = 6;
const CALLS_BEFORE: usize = 25;
const CALLS_AFTER: usize = 25;
const CONFIG: &str = "frame_length = 400\nhop_length = 160\nsample_rate = 16000";

/// Waits for `done` while the workers run; the deadline only turns a hang into a failure.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn swap_under_concurrent_calls_loses_no_call() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("libc_energy_zcr.so");
    let source = common::energy_zcr_source();
    common::build_c(&source, &path, &["PLUGIN_VERSION=\"1.0.0\""])?;
    let host = PluginHost::builder().plugin_dir(dir.path()).build()?;
    assert_eq!(host.info("c_energy_zcr")?.version, "1.0.0");
    let handle = Arc::new(host.extractor("c_energy_zcr", CONFIG)?);
    let x = Arc::new(common::tone(16_000, 1.0));
    let expected = Arc::new(handle.extract(&[&x], 16_000)?);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let calls_v1: Arc<Vec<AtomicUsize>> =
        Arc::new((0..THREADS).map(|_| AtomicUsize::new(0)).collect());
    let calls_v2: Arc<Vec<AtomicUsize>> =
        Arc::new((0..THREADS).map(|_| AtomicUsize::new(0)).collect());
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (handle, x, expected, stop, failures, v1, v2) = (
                Arc::clone(&handle),
                Arc::clone(&x),
                Arc::clone(&expected),
                Arc::clone(&stop),
                Arc::clone(&failures),
                Arc::clone(&calls_v1),
                Arc::clone(&calls_v2),
            );
            std::thread::spawn(move || {
                let mut seen_v2 = false;
                while !stop.load(Ordering::SeqCst) {
                    let fail = |msg: String| failures.lock().map(|mut f| f.push(msg)).ok();
                    match handle.extract_served(&[&x], 16_000) {
                        Err(e) => {
                            fail(format!("thread {t}: {e}"));
                        }
                        Ok(served) => {
                            if served.value != *expected {
                                fail(format!(
                                    "thread {t}: wrong numbers from {}",
                                    served.plugin.version
                                ));
                            }
                            match served.plugin.version.as_str() {
                                "1.0.0" if seen_v2 => {
                                    fail(format!("thread {t}: 1.0.0 answered after 2.0.0"));
                                }
                                "1.0.0" => {
                                    v1[t].fetch_add(1, Ordering::SeqCst);
                                }
                                "2.0.0" => {
                                    seen_v2 = true;
                                    v2[t].fetch_add(1, Ordering::SeqCst);
                                }
                                other => {
                                    fail(format!("thread {t}: unexpected version {other}"));
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();

    wait_until("calls on 1.0.0", || {
        calls_v1.iter().all(|c| c.load(Ordering::SeqCst) >= CALLS_BEFORE)
    });
    // Rebuild in place with a visible change, then swap while the workers keep calling.
    common::build_c(&source, &path, &["PLUGIN_VERSION=\"2.0.0\""])?;
    let info = host.reload("c_energy_zcr")?;
    assert_eq!(info.version, "2.0.0");
    wait_until("calls on 2.0.0", || {
        calls_v2.iter().all(|c| c.load(Ordering::SeqCst) >= CALLS_AFTER)
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    }

    let failures = failures.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    assert!(
        failures.is_empty(),
        "{} failed calls, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let total: usize =
        calls_v1.iter().chain(calls_v2.iter()).map(|c| c.load(Ordering::SeqCst)).sum();
    eprintln!("{total} calls across the swap, 0 failed");
    assert_eq!(handle.plugin().version, "2.0.0");
    assert_eq!(host.info("c_energy_zcr")?.version, "2.0.0");
    // The old generation is gone: its handle was destroyed and its library unloaded.
    assert_eq!(host.resident_libraries(), 1);
    assert_eq!(host.live_objects("c_energy_zcr")?, Some(1));
    Ok(())
}

#[test]
fn failed_reloads_leave_the_old_version_serving() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("libc_energy_zcr.so");
    let source = common::energy_zcr_source();
    common::build_c(&source, &path, &["PLUGIN_VERSION=\"1.0.0\""])?;
    let host = PluginHost::builder().plugin_dir(dir.path()).build()?;
    let handle = host.extractor("c_energy_zcr", "")?;
    let x = common::tone(48_000, 0.5);
    let before = handle.extract(&[&x], 48_000)?;

    for (defines, kind) in [
        (vec!["PLUGIN_VERSION=\"9.0.0\"", "FAULT_NAN"], HostErrorKind::SmokeTest),
        (vec!["PLUGIN_VERSION=\"9.0.0\"", "FAULT_ABI_MAJOR=2u"], HostErrorKind::AbiVersion),
        (vec!["PLUGIN_VERSION=\"9.0.0\"", "FAULT_NO_ENTRY"], HostErrorKind::NoEntrySymbol),
    ] {
        common::build_c(&source, &path, &defines)?;
        let err = host
            .reload("c_energy_zcr")
            .err()
            .ok_or_else(|| anyhow::anyhow!("{defines:?} was accepted"))?;
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.message().contains("old version keeps serving"), "{err}");
        assert_eq!(host.info("c_energy_zcr")?.version, "1.0.0");
        let served = handle.extract_served(&[&x], 48_000)?;
        assert_eq!((served.plugin.version.as_str(), &served.value), ("1.0.0", &before));
    }
    assert_eq!(host.resident_libraries(), 1);
    Ok(())
}

#[test]
fn builtins_are_not_reloadable() -> anyhow::Result<()> {
    let host = PluginHost::builder()
        .builtin(prosodia_plugin_host::Builtin::extractor::<prosodia_features_cpu::CpuExtractor>())
        .build()?;
    let err = host.reload("cpu").err().ok_or_else(|| anyhow::anyhow!("reloaded a built-in"))?;
    assert_eq!(err.kind(), HostErrorKind::NotReloadable, "{err}");
    Ok(())
}
