//! `prosodia features --shard I/N`: the shards of a folder are disjoint and together give
//! exactly the unsharded output, row for row; a shard with no files (more shards than files)
//! succeeds with an empty result; malformed shard specs are refused by name.

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
