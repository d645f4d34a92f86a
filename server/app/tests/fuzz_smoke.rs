//! The fuzz smoke: every cargo-fuzz target's body (`fuzz/bodies/`), run for a few seconds in
//! the ordinary test suite.
//!
//! Coverage-guided fuzzing needs libFuzzer and nightly compiler flags, so it runs by hand
//! (`fuzz/run.sh TARGET SECONDS`). This smoke keeps the targets compiling and their bodies
//! honest in CI: each body gets its seeds (the shared fixtures, the repository's TOML files),
//! every saved regression input in `fuzz/regressions/TARGET/`, then randomly mutated seeds
//! until its time is up (`PROSODIA_FUZZ_SMOKE_SECONDS`, default 3). The mutator is a small
//! deterministic one (bit flips, interesting bytes, cuts, inserts, splices); the seed of its
//! generator is printed so a failure can be replayed with `PROSODIA_FUZZ_SMOKE_SEED`. A
//! panic anywhere (in the test or in a server task, which tokio would otherwise swallow)
//! fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prosodia_tests::shared_dir;

#[path = "../../../fuzz/bodies/configs.rs"]
mod configs;
#[path = "../../../fuzz/bodies/decode.rs"]
mod decode;
#[path = "../../../fuzz/bodies/requests.rs"]
mod requests;

/// libFuzzer's default `-max_len` in `fuzz/run.sh`.
const MAX_LEN: usize = 65_536;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic, on any thread, then reports it as usual.
fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn budget() -> Duration {
    let secs = std::env::var("PROSODIA_FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("PROSODIA_FUZZ_SMOKE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        println!("PROSODIA_FUZZ_SMOKE_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// One to four mutations of a random seed, sometimes spliced with another.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'=', b'"', b'\n'];
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => data.truncate(rng.below(len + 1)),
            3 => {
                let at = rng.below(len + 1);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, extra);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                data.drain(from..to);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(data.len() + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data.truncate(MAX_LEN);
    data
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn read_all(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            let mut bytes = std::fs::read(p).unwrap();
            bytes.truncate(MAX_LEN);
            bytes
        })
        .collect();
    v.sort();
    v
}

/// The shared fixtures, as `fuzz/run.sh` seeds the audio targets.
fn audio_seeds() -> Option<Vec<Vec<u8>>> {
    let dir = shared_dir().join("fixtures");
    if !dir.is_dir() {
        println!("SKIPPED: no shared fixtures at {}", dir.display());
        return None;
    }
    let mut paths = Vec::new();
    files_under(&dir, &mut paths);
    Some(read_all(&paths))
}

/// The repository's model and feature TOML files and the ```toml blocks of the docs.
fn toml_seeds() -> Vec<Vec<u8>> {
    let root = repo();
    let mut paths = Vec::new();
    files_under(&root.join("models"), &mut paths);
    files_under(&root.join("trainer/configs"), &mut paths);
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    let mut seeds = read_all(&paths);
    let mut docs = Vec::new();
    files_under(&root.join("docs"), &mut docs);
    for doc in docs.iter().filter(|p| p.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(doc).unwrap();
        for block in text.split("```toml\n").skip(1) {
            if let Some((body, _)) = block.split_once("```") {
                seeds.push(body.as_bytes().to_vec());
            }
        }
    }
    assert!(seeds.len() >= 5, "expected TOML seeds in models/, trainer/configs/ and docs/");
    seeds
}

/// Saved findings for `target`: each must keep passing.
fn regressions(target: &str) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    files_under(&repo().join("fuzz/regressions").join(target), &mut paths);
    read_all(&paths)
}

/// Seeds, regressions, then mutations until the budget is spent; returns the run count.
fn smoke(target: &str, seeds: Vec<Vec<u8>>, mut run: impl FnMut(&[u8])) -> usize {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    let mut rng = Rng::from_env();
    let mut runs = 0;
    for input in seeds.iter().chain(&regressions(target)) {
        run(input);
        runs += 1;
    }
    let (started, budget) = (Instant::now(), budget());
    while started.elapsed() < budget {
        run(&mutate(&mut rng, &seeds));
        runs += 1;
    }
    let panics = PANICS.load(Ordering::SeqCst) - before;
    println!("{target}: {runs} inputs ({} seeds) in {:.1?}", seeds.len(), started.elapsed());
    assert_eq!(panics, 0, "{target}: {panics} panic(s); replay with the seed printed above");
    runs
}

#[test]
fn decode_body_survives_seeds_regressions_and_mutations() {
    let Some(seeds) = audio_seeds() else { return };
    let runs = smoke("decode", seeds, decode::run);
    assert!(runs > 10);
}

#[test]
fn configs_body_survives_seeds_regressions_and_mutations() {
    let runs = smoke("configs", toml_seeds(), configs::run);
    assert!(runs > 10);
}

#[cfg(feature = "tract")]
#[test]
fn requests_body_survives_seeds_regressions_and_mutations() {
    let Some(seeds) = audio_seeds() else { return };
    // A test's own thread; the harness has its own runtime.
    let harness = requests::Harness::start(repo().join("models"));
    let runs = smoke("requests", seeds, |data| harness.run(data));
    assert!(runs > 10);
}
