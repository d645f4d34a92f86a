//! The feature-extractor contract.

use std::fmt;

use prosodia_plugin_api::{ErrorCode, ExtractorSpec, FeatureMatrix, OutputLayout};
use prosodia_plugin_host::{ExtractorHandle, HostError, HostErrorKind, PluginHost};

/// Threads in the concurrency check.
const THREADS: usize = 8;
/// Calls per thread in the concurrency check.
const CALLS_PER_THREAD: usize = 6;
/// Handles opened at once in the lifecycle check.
const HANDLES: usize = 5;

/// What passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Names of the checks that ran and passed.
    pub passed: Vec<&'static str>,
    /// Checks that could not apply, with the reason (e.g. no live-object count).
    pub skipped: Vec<(&'static str, String)>,
}

/// Every failed check, with what was expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Failures {
    /// The plugin under test.
    pub plugin: String,
    /// `(check, explanation)` pairs.
    pub failures: Vec<(&'static str, String)>,
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plugin {:?} failed {} conformance check(s):",
            self.plugin,
            self.failures.len()
        )?;
        for (check, why) in &self.failures {
            writeln!(f, "  {check}: {why}")?;
        }
        Ok(())
    }
}

/// A deterministic speech-like test signal: a gliding harmonic tone with an amplitude
/// envelope plus a little noise, `secs` long at `sample_rate`, different for each `seed`.
pub fn test_signal(sample_rate: u32, secs: f32, seed: u32) -> Vec<f32> {
    let n = (sample_rate as f32 * secs) as usize;
    let sr = sample_rate as f32;
    let mut state = 0x9E37_79B9u32 ^ seed.wrapping_mul(0x85EB_CA6B);
    let f0 = 110.0 + 20.0 * seed as f32;
    let mut phase = 0.0f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / sr;
            let f = f0 * (1.0 + 0.1 * (2.0 * std::f32::consts::PI * 3.0 * t).sin());
            phase += 2.0 * std::f32::consts::PI * f / sr;
            let voiced: f32 = (1..=5).map(|h| (phase * h as f32).sin() / h as f32).sum();
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32) - 0.5;
            let envelope = (std::f32::consts::PI * i as f32 / n as f32).sin();
            0.4 * envelope * voiced + 0.02 * noise
        })
        .collect()
}

struct Checker {
    report: Report,
    failures: Vec<(&'static str, String)>,
}

impl Checker {
    fn check(&mut self, name: &'static str, result: Result<(), String>) {
        match result {
            Ok(()) => self.report.passed.push(name),
            Err(why) => self.failures.push((name, why)),
        }
    }
}

fn shape_ok(spec: &ExtractorSpec, m: &FeatureMatrix) -> Result<(), String> {
    if m.cols != spec.width() {
        return Err(format!("{} columns, declared {}", m.cols, spec.width()));
    }
    if m.rows * m.cols != m.data.len() {
        return Err(format!("{}×{} matrix holds {} values", m.rows, m.cols, m.data.len()));
    }
    match spec.layout {
        OutputLayout::Vector if m.rows != 1 => Err(format!("vector layout with {} rows", m.rows)),
        OutputLayout::Frames if m.rows == 0 => Err("frame layout with no frames".into()),
        _ => Ok(()),
    }
}

fn same(a: &[FeatureMatrix], b: &[FeatureMatrix]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} results vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if (x.rows, x.cols) != (y.rows, y.cols) {
            return Err(format!("utterance {i}: {}×{} vs {}×{}", x.rows, x.cols, y.rows, y.cols));
        }
        for (j, (p, q)) in x.data.iter().zip(&y.data).enumerate() {
            let tol = 1e-6 * p.abs().max(q.abs()).max(1.0);
            if (p - q).abs() > tol {
                return Err(format!("utterance {i}, value {j}: {p} vs {q}"));
            }
        }
    }
    Ok(())
}

fn expect_input_error(
    result: Result<Vec<FeatureMatrix>, HostError>,
    what: &str,
) -> Result<(), String> {
    match result {
        Ok(_) => Err(format!("{what} was accepted; it must be an error")),
        Err(e)
            if e.kind() == HostErrorKind::Plugin
                && e.plugin_code() == Some(ErrorCode::InvalidInput) =>
        {
            Ok(())
        }
        Err(e) => {
            Err(format!("{what} gave {e} (kind {:?}); expected an invalid-input error", e.kind()))
        }
    }
}

/// Runs the whole contract against feature-extractor plugin `name` of `host`, configured with
/// `config_toml`. Returns what passed, or every failure.
pub fn check_extractor(
    host: &PluginHost,
    name: &str,
    config_toml: &str,
) -> Result<Report, Failures> {
    let mut c = Checker { report: Report::default(), failures: Vec::new() };
    let fail_all =
        |why: String| Failures { plugin: name.to_string(), failures: vec![("create", why)] };
    let live_before = host.live_objects(name).map_err(|e| fail_all(e.to_string()))?;
    let handle = host.extractor(name, config_toml).map_err(|e| fail_all(e.to_string()))?;
    let spec = handle.spec().map_err(|e| fail_all(e.to_string()))?;
    let rate = if spec.sample_rate == 0 { 16_000 } else { spec.sample_rate };
    let signals: Vec<Vec<f32>> =
        [(0.5, 1), (1.0, 2), (1.3, 3)].iter().map(|&(s, k)| test_signal(rate, s, k)).collect();
    let batch: Vec<&[f32]> = signals.iter().map(Vec::as_slice).collect();

    c.check("declaration", {
        if spec.width() == 0 {
            Err("declares no columns".into())
        } else if spec.columns.iter().any(String::is_empty) {
            Err("a column has an empty name".into())
        } else {
            Ok(())
        }
    });

    let batched = handle.extract(&batch, rate);
    c.check(
        "shapes match declaration",
        match &batched {
            Ok(out) if out.len() != batch.len() => {
                Err(format!("{} results for {} utterances", out.len(), batch.len()))
            }
            Ok(out) => out.iter().enumerate().try_for_each(|(i, m)| {
                shape_ok(&spec, m).map_err(|e| format!("utterance {i}: {e}"))
            }),
            Err(e) => Err(e.to_string()),
        },
    );
    c.check(
        "outputs finite",
        match &batched {
            Ok(out) => match out.iter().flat_map(|m| &m.data).find(|v| !v.is_finite()) {
                Some(v) => Err(format!("found {v}")),
                None => Ok(()),
            },
            Err(e) => Err(e.to_string()),
        },
    );
    if spec.layout == OutputLayout::Frames {
        c.check(
            "longer input, more frames",
            match &batched {
                Ok(out)
                    if out.len() == 3
                        && !(out[0].rows < out[1].rows && out[1].rows < out[2].rows) =>
                {
                    Err(format!(
                        "frame counts {}, {}, {} for 0.5 s, 1.0 s, 1.3 s",
                        out[0].rows, out[1].rows, out[2].rows
                    ))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
        );
    }

    let one_by_one: Result<Vec<FeatureMatrix>, HostError> =
        batch.iter().map(|u| handle.extract(&[u], rate).map(|mut v| v.remove(0))).collect();
    c.check(
        "batch equals one by one",
        match (&batched, &one_by_one) {
            (Ok(a), Ok(b)) => same(a, b),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        },
    );

    c.check(
        "empty batch is an error",
        expect_input_error(handle.extract(&[], rate), "an empty batch"),
    );
    c.check(
        "empty utterance is an error",
        expect_input_error(handle.extract(&[&[]], rate), "a zero-length utterance"),
    );
    c.check(
        "empty utterance inside a batch is an error",
        expect_input_error(
            handle.extract(&[batch[0], &[]], rate),
            "a batch holding a zero-length utterance",
        ),
    );
    if spec.sample_rate != 0 {
        c.check(
            "wrong sample rate is an error",
            expect_input_error(
                handle.extract(&[batch[0]], spec.sample_rate / 2),
                "audio at half the declared rate",
            ),
        );
    }

    c.check("concurrent calls", concurrent(&handle, &batch, rate, one_by_one.as_ref().ok()));

    drop(handle);
    match live_before {
        Some(before) => {
            let freed = lifecycle(host, name, config_toml, before, &batch, rate);
            c.check("destroy frees everything", freed);
        }
        None => c
            .report
            .skipped
            .push(("destroy frees everything", "the plugin does not report live objects".into())),
    }

    if c.failures.is_empty() {
        Ok(c.report)
    } else {
        Err(Failures { plugin: name.to_string(), failures: c.failures })
    }
}

/// Many threads call one handle at once; every answer must equal the sequential one.
fn concurrent(
    handle: &ExtractorHandle,
    batch: &[&[f32]],
    rate: u32,
    reference: Option<&Vec<FeatureMatrix>>,
) -> Result<(), String> {
    let Some(reference) = reference else {
        return Err("no sequential reference (extraction failed)".into());
    };
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    for k in 0..CALLS_PER_THREAD {
                        // Each thread rotates the batch so different calls overlap differently.
                        let i = (t + k) % batch.len();
                        let out = handle
                            .extract(&[batch[i]], rate)
                            .map_err(|e| format!("thread {t}: {e}"))?;
                        same(&out, std::slice::from_ref(&reference[i]))
                            .map_err(|e| format!("thread {t}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a worker thread panicked".into())))
            .collect()
    });
    results.into_iter().collect()
}

/// Opening handles raises the plugin's live count by one each; dropping them (and every
/// output) brings it back to where it started.
fn lifecycle(
    host: &PluginHost,
    name: &str,
    config: &str,
    before: u64,
    batch: &[&[f32]],
    rate: u32,
) -> Result<(), String> {
    let live = || {
        host.live_objects(name).map_err(|e| e.to_string())?.ok_or("live count vanished".to_string())
    };
    let handles = (0..HANDLES).map(|_| host.extractor(name, config)).collect::<Result<Vec<_>, _>>();
    let handles = handles.map_err(|e| e.to_string())?;
    for h in &handles {
        h.extract(batch, rate).map_err(|e| e.to_string())?;
    }
    let during = live()?;
    if during != before + HANDLES as u64 {
        return Err(format!(
            "{HANDLES} open handles: live count {during}, expected {}",
            before + HANDLES as u64
        ));
    }
    drop(handles);
    let after = live()?;
    if after != before {
        return Err(format!("live count {after} after destroying every handle, {before} before"));
    }
    Ok(())
}
