//! Per-call cost of the plugin boundary: the CPU extractor on a 3 s utterance called
//! directly (`CpuExtractor::extract`), through the host as a built-in (adds the handle and
//! output validation), and through the host from its cdylib (adds the C ABI: argument
//! marshalling, the `wrap` shim, copying the output out and releasing it).
//!
//! `cargo bench -p prosodia-features-cpu --bench boundary`. After the criterion groups it
//! prints the overhead of each path relative to the direct call from interleaved medians,
//! which are less sensitive to drift than comparing separate runs. Target: under 1 %.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Interleaved rounds: each round times the three paths back to back, so machine load hits
/// all three alike. Reports the median and the minimum (the least disturbed run) per path,
/// for the 3 s utterance and for a 0.25 s one (where a fixed per-call cost would show most).
fn summary() {
    let p = paths();
    for (secs, rounds) in [(3.0f32, 200usize), (0.25, 2000)] {
        let full = utterance();
        let x = &full[..(RATE as f32 * secs) as usize];
        let (mut d, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        for _ in 0..rounds {
            d.push(time(&|| drop(black_box(p.direct.extract(&[x], RATE)))));
            b.push(time(&|| drop(black_box(p.builtin.extract(&[x], RATE)))));
            y.push(time(&|| drop(black_box(p.dynamic.extract(&[x], RATE)))));
        }
        let stats =
            |v: &Vec<Duration>| (median(v.clone()), v.iter().copied().min().unwrap_or_default());
        let ((dm, dn), (bm, bn), (ym, yn)) = (stats(&d), stats(&b), stats(&y));
        let pct = |t: Duration, r: Duration| {
            100.0 * (t.as_secs_f64() - r.as_secs_f64()) / r.as_secs_f64()
        };
        let us = |t: Duration, r: Duration| (t.as_secs_f64() - r.as_secs_f64()) * 1e6;
        println!(
            "\nboundary summary, {secs} s utterance at 48 kHz, {rounds} interleaved rounds (median | min):"
        );
        println!("  direct            {dm:>10.3?} | {dn:>10.3?}");
        println!(
            "  host, built-in    {bm:>10.3?} | {bn:>10.3?}   overhead {:+.2} % | {:+.2} %  ({:+.1} µs | {:+.1} µs)",
            pct(bm, dm),
            pct(bn, dn),
            us(bm, dm),
            us(bn, dn)
        );
        println!(
            "  host, dynamic ABI {ym:>10.3?} | {yn:>10.3?}   overhead {:+.2} % | {:+.2} %  ({:+.1} µs | {:+.1} µs)",
            pct(ym, dm),
            pct(yn, dn),
            us(ym, dm),
            us(yn, dn)
        );
    }
}

criterion_group!(benches, boundary);

fn main() {
    benches();
    summary();
    Criterion::default().configure_from_args().final_summary();
}
