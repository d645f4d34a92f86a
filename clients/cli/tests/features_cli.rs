//! `prosodia features` end to end: the real binary on the shared fixtures, including
//! `--shard I/N` (shards are disjoint, together give exactly the unsharded output, an empty
//! shard succeeds, malformed specs are refused by name).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn prosodia(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_prosodia")).args(args).output().expect("run prosodia");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn jsonl_has_46_features_per_file_and_frames_on_request() {
    let dir = shared().join("fixtures/tess");
    let (code, stdout, stderr) = prosodia(&["features", "--frames", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 14);
    for l in &lines {
        let features = l["features"].as_object().unwrap();
        assert_eq!(features.len(), 46, "{}", l["path"]);
        assert_eq!(l["sample_rate"], 48000);
        assert!(features.values().all(|v| v.as_f64().is_some_and(f64::is_finite)));
        let frames = &l["frames"];
        let n = frames["mfcc"].as_array().unwrap().len();
        assert!(n > 10);
        assert_eq!(frames["rms"].as_array().unwrap().len(), n);
        assert_eq!(frames["logmel_db"][0].as_array().unwrap().len(), 128);
        assert!(!frames["f0_hz"].as_array().unwrap().is_empty());
    }
}

#[test]
fn bad_files_get_an_error_line_and_a_failing_exit_code() {
    let bad = shared().join("fixtures/bad");
    let good = shared().join("fixtures/ravdess/03-01-05-02-01-01-01.wav");
    let (code, stdout, _) =
        prosodia(&["features", "--format", "csv", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, 1, "any failed file must make the exit code non-zero");
    let mut rows = stdout.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 1 + 46 + 1);
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 11);
    let failed = rows.iter().filter(|r| !r.ends_with(',')).count();
    assert_eq!(failed, 10, "every bad fixture reports an error:\n{}", rows.join("\n"));
    assert!(rows.iter().any(|r| r.contains("silent")));
    assert!(rows.iter().any(|r| r.contains("zero channels")));
}

#[test]
fn options_change_the_pipeline() {
    let f = shared().join("fixtures/tess/OAF_back_angry.wav");
    let (_, native, _) = prosodia(&[
        "features",
        "--resample",
        "none",
        "--trim-db",
        "none",
        "--normalize",
        "none",
        f.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(native.trim()).unwrap();
    assert_eq!(v["sample_rate"], 24414);
    // Untrimmed, unresampled: the duration is the file's own, 37,574 samples at 24,414 Hz.
    let d = v["features"]["duration_sec"].as_f64().unwrap();
    assert!((d - 37_574.0 / 24_414.0).abs() < 1e-9, "{d}");
    let (code, _, stderr) = prosodia(&["features", "--config", "nope.toml", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nope.toml"), "{stderr}");
}

/// CSV rows by their first column (the path), header excluded.
fn rows(csv: &str) -> BTreeMap<String, String> {
    csv.lines().skip(1).map(|l| (l.split(',').next().unwrap().to_owned(), l.to_owned())).collect()
}

#[test]
fn shards_partition_the_files_and_reproduce_the_whole_run() {
    let dir = shared().join("fixtures/ravdess");
    let dir = dir.to_str().unwrap();
    let base = ["features", "--config", "speech", "--format", "csv"];
    let (code, whole, stderr) = prosodia(&[&base[..], &[dir]].concat());
    assert_eq!(code, 0, "{stderr}");
    let whole = rows(&whole);
    assert!(whole.len() >= 3, "need several files to shard, found {}", whole.len());

    let n = 3;
    let mut union = BTreeMap::new();
    for i in 0..n {
        let spec = format!("{i}/{n}");
        let (code, out, stderr) = prosodia(&[&base[..], &["--shard", &spec, dir]].concat());
        assert_eq!(code, 0, "shard {spec}: {stderr}");
        let part = rows(&out);
        assert!(!part.is_empty(), "shard {spec} is empty");
        for (path, row) in part {
            assert!(union.insert(path.clone(), row).is_none(), "{path} is in two shards");
        }
    }
    assert_eq!(union, whole, "the shards together differ from the unsharded run");
}

#[test]
fn a_shard_beyond_the_files_is_empty_and_succeeds() {
    let file = shared().join("fixtures/tess/OAF_back_angry.wav");
    let file = file.to_str().unwrap();
    let (code, out, stderr) = prosodia(&["features", "--format", "csv", "--shard", "1/2", file]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
    assert!(stderr.contains("shard 1/2 has no files"), "{stderr}");
    let (code, out, _) = prosodia(&["features", "--format", "csv", "--shard", "0/2", file]);
    assert_eq!(code, 0);
    assert_eq!(rows(&out).len(), 1);
}

#[test]
fn malformed_shards_are_refused_by_name() {
    let file = shared().join("fixtures/tess/OAF_back_angry.wav");
    let file = file.to_str().unwrap();
    for spec in ["3/3", "1", "a/2", "0/0", "-1/2"] {
        let (code, _, stderr) = prosodia(&["features", &format!("--shard={spec}"), file]);
        assert_eq!(code, 2, "--shard {spec} was accepted");
        assert!(stderr.contains("--shard"), "--shard {spec}: {stderr}");
    }
}
