//! Per-call cost of the plugin boundary: the CPU extractor on a 3 s utterance called
//! directly (`CpuExtractor::extract`), through the host as a built-in (adds the handle and
//! output validation), and through the host from its cdylib (adds the C ABI: argument
//! marshalling, the `wrap` shim, copying the output out and releasing it).
//!
//! `cargo bench -p prosodia-features-cpu --bench boundary`. After the criterion groups it
//! prints the overhead of each path relative to the direct call as the median of paired
//! differences over interleaved rounds, which is less sensitive to drift than comparing
//! separate runs. Target: under 1 %. Results: `docs/plugins.md`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use prosodia_features_cpu::CpuExtractor;
use prosodia_plugin_api::{ExtractorPlugin, FeatureExtractor};
use prosodia_plugin_host::{Builtin, ExtractorHandle, PluginHost};

const RATE: u32 = 48_000;

fn utterance() -> Vec<f32> {
    let n = RATE as usize * 3;
    let mut state = 12345u32;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            0.3 * (2.0 * std::f32::consts::PI * 180.0 * t).sin() * (1.0 + 0.5 * (6.0 * t).sin())
                + 0.1 * (2.0 * std::f32::consts::PI * 360.0 * t).sin()
                + 0.01 * noise
        })
        .collect()
}

/// The plugin library (the `cdylib/` crate, a dev-dependency), next to the bench binary
/// (`target/release/deps`) or one level up.
fn cdylib() -> PathBuf {
    let file = format!(
        "{}prosodia_features_cpu_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{file} not found near {}", exe.display()))
}

struct Paths {
    direct: CpuExtractor,
    builtin: ExtractorHandle,
    dynamic: ExtractorHandle,
    _dir: tempfile::TempDir,
}

fn paths() -> Paths {
    let direct = CpuExtractor::create("").unwrap_or_else(|e| panic!("{e}"));
    let builtin_host = PluginHost::builder().builtin(Builtin::extractor::<CpuExtractor>()).build();
    let builtin =
        builtin_host.and_then(|h| h.extractor("cpu", "")).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(cdylib(), dir.path().join("libprosodia_features_cpu_plugin.so"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dynamic_host =
        PluginHost::builder().plugin_dir(dir.path()).build().unwrap_or_else(|e| panic!("{e}"));
    let dynamic = dynamic_host.extractor("cpu", "").unwrap_or_else(|e| panic!("{e}"));
    Paths { direct, builtin, dynamic, _dir: dir }
}

fn boundary(c: &mut Criterion) {
    let x = utterance();
    let p = paths();
    let mut g = c.benchmark_group("cpu_extractor_3s");
    g.sample_size(30);
    g.bench_function("direct", |b| b.iter(|| black_box(p.direct.extract(&[black_box(&x)], RATE))));
    g.bench_function("host_builtin", |b| {
        b.iter(|| black_box(p.builtin.extract(&[black_box(&x)], RATE)))
    });
    g.bench_function("host_dynamic_abi", |b| {
        b.iter(|| black_box(p.dynamic.extract(&[black_box(&x)], RATE)))
    });
    g.finish();
}

/// Interleaved rounds: each round times the three paths back to back, in a rotating order
/// (so no path always runs first, on cold caches, or after the same neighbour). The overhead
/// of a path is the median over rounds of its time minus the direct call's time in the same
/// round: pairing within a round cancels the machine's drift, which on a shared machine is
/// larger than the effect measured. Run for the 3 s utterance and for a 0.25 s one (where a
/// fixed per-call cost would show most).
fn summary() {
    let p = paths();
    for (secs, rounds) in [(3.0f32, 400usize), (0.25, 3000)] {
        let full = utterance();
        let x = &full[..(RATE as f32 * secs) as usize];
        let out = p.direct.extract(&[x], RATE).unwrap_or_else(|e| panic!("{e}"));
        let (mut d, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        };
        for round in 0..rounds {
            for slot in 0..3 {
                match (round + slot) % 3 {
                    0 => d.push(time(&|| drop(black_box(p.direct.extract(&[x], RATE))))),
                    1 => b.push(time(&|| drop(black_box(p.builtin.extract(&[x], RATE))))),
                    _ => y.push(time(&|| drop(black_box(p.dynamic.extract(&[x], RATE))))),
                }
            }
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let paired = |v: &[f64]| median(v.iter().zip(&d).map(|(t, r)| t - r).collect());
        let direct = median(d.clone());
        println!(
            "\nboundary summary, {secs} s utterance at 48 kHz ({}×{} output), {rounds} rounds:",
            out[0].rows, out[0].cols
        );
        println!("  direct             median {:>9.1} µs", direct * 1e6);
        for (name, v) in [("host, built-in   ", &b), ("host, dynamic ABI", &y)] {
            let extra = paired(v);
            println!(
                "  {name}  median {:>9.1} µs   overhead (median paired difference) {:+.1} µs = {:+.2} %",
                median(v.clone()) * 1e6,
                extra * 1e6,
                100.0 * extra / direct
            );
        }
    }
}

criterion_group!(benches, boundary);

fn main() {
    benches();
    summary();
    Criterion::default().configure_from_args().final_summary();
}
