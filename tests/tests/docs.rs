//! The documentation stays true to the code.
//!
//! - `docs/api.md` is what `scripts/gen-api-docs.py` makes of the protos today (the generator
//!   needs `python3`; without it these tests skip with a printed reason), every link in it
//!   has its anchor, and the generator reads the parts of proto3 the project uses.
//! - `docs/configuration.md` lists every key of the server's `Config`, of `model.toml`
//!   (`ModelManifest`) and of `features.toml` (`FeatureConfig`) with the default the code
//!   uses, and documents no key the code lacks. The keys come from serialising the types'
//!   defaults, so a new field is caught without this file naming it.
//!
//! The commands the docs show are run by `scripts/doc-commands.py` (from `scripts/test.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prosodia_dsp::FeatureConfig;
use prosodia_dsp::config::{FrameNorm, NoiseReduction};
use prosodia_server::Config;
use prosodia_server::repository::ModelManifest;
use serde_json::Value;

/// Server keys documented before the code that reads them is merged from another branch;
/// empty when every documented key is in `Config`.
const KEYS_FROM_OTHER_BRANCHES: &[&str] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `python3`, or `None` after printing why the test is skipped.
fn python3() -> Option<&'static str> {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => Some("python3"),
        _ => {
            eprintln!("SKIPPED: python3 is not installed; the API reference check needs it");
            None
        }
    }
}

fn gen_api_docs(python: &str, args: &[&str]) -> Output {
    Command::new(python)
        .arg(root().join("scripts/gen-api-docs.py"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("running scripts/gen-api-docs.py")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn api_reference_matches_the_protos() {
    let Some(python) = python3() else { return };
    let out = gen_api_docs(python, &["--check"]);
    assert!(
        out.status.success(),
        "docs/api.md is stale: run `python3 scripts/gen-api-docs.py` and commit it\n{}",
        text(&out)
    );
}

/// Every `](#id)` link of a generated page and the ids its `<a id="...">` anchors define.
fn links_and_anchors(md: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut links = BTreeSet::new();
    for part in md.split("](#").skip(1) {
        links.insert(part.split(')').next().unwrap_or_default().to_owned());
    }
    let mut anchors = BTreeSet::new();
    for part in md.split("<a id=\"").skip(1) {
        anchors.insert(part.split('"').next().unwrap_or_default().to_owned());
    }
    (links, anchors)
}

#[test]
fn api_reference_links_resolve_and_cover_every_rpc_and_message() {
    let md = read("docs/api.md");
    let (links, anchors) = links_and_anchors(&md);
    let dangling: Vec<_> = links.difference(&anchors).collect();
    assert!(dangling.is_empty(), "links without an anchor in docs/api.md: {dangling:?}");
    // Every message, enum and rpc declared in the protos has its anchor (a cross-check of the
    // generator's parser with a plain scan of the files).
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("proto/prosodia/v1")).expect("proto dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("proto") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("proto");
        let mut service = String::new();
        // Names of the enclosing messages, by brace depth, for nested declarations.
        let mut scope: Vec<Option<String>> = Vec::new();
        for line in src.lines() {
            let code = line.split("//").next().unwrap_or_default().trim();
            let words: Vec<&str> = code.split(|c: char| c.is_whitespace() || c == '(').collect();
            let outer: Vec<&str> = scope.iter().flatten().map(String::as_str).collect();
            let id = match words.as_slice() {
                ["service", name, ..] => {
                    service = (*name).to_owned();
                    Some(format!("prosodia.v1.{name}"))
                }
                ["rpc", name, ..] => Some(format!("prosodia.v1.{service}.{name}")),
                ["message" | "enum", name, ..] => {
                    let mut path = outer.clone();
                    path.push(name);
                    Some(format!("prosodia.v1.{}", path.join(".")))
                }
                _ => None,
            };
            if let Some(id) = &id
                && !anchors.contains(id)
            {
                missing.push(id.clone());
            }
            // Track braces: a message opens a named scope, anything else an anonymous one.
            for c in code.chars() {
                match c {
                    '{' => scope.push(match words.as_slice() {
                        ["message", name, ..] => Some((*name).to_owned()),
                        _ => None,
                    }),
                    '}' => {
                        scope.pop();
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(!anchors.is_empty() && missing.is_empty(), "not in docs/api.md: {missing:?}");
}

const TRICKY_PROTO: &str = r#"// Header of the test file.
syntax = "proto3";

package demo.v1;

import "google/protobuf/timestamp.proto";

option java_package = "x.y";

// Talks.
service Chat {
  // Says one thing.
  rpc Say(Outer) returns (.demo.v1.Outer.Inner);
  // Listens for ever.
  rpc Listen(stream Outer) returns (stream Mood) { option deprecated = true; }
}

/* A block
 * comment. */
message Outer {
  // Nested.
  message Inner {
    // How it feels.
    Mood mood = 1;
    google.protobuf.Timestamp at = 2;
  }
  // A nested enum.
  enum Kind {
    KIND_UNSPECIFIED = 0; // trailing comment
    KIND_LOUD = 1 [deprecated = true];
  }
  reserved 9, 10;
  // Pick one.
  oneof choice {
    // The inner one.
    Inner inner = 3;
    string text = 4;
  }
  repeated Kind kinds = 5;
  map<string, Inner> by_name = 6;
  optional double level = 7 [json_name = "lvl"];
}

// Detached comment, not the enum's.

enum Mood {
  MOOD_UNSPECIFIED = 0;
  MOOD_GOOD = 1;
}
"#;

#[test]
fn api_generator_reads_the_proto3_the_project_uses() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("demo.proto"), TRICKY_PROTO).expect("write proto");
    let out_path = dir.path().join("api.md");
    let (proto_dir, out_file) =
        (dir.path().to_str().expect("utf-8"), out_path.to_str().expect("utf-8"));
    let out = gen_api_docs(python, &["--proto-dir", proto_dir, "--out", out_file]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(&out_path).expect("api.md written");
    for want in [
        "Header of the test file.",
        "### service Chat",
        "`/demo.v1.Chat/Say`, unary. Request: [`Outer`](#demo.v1.Outer). Response: [`Outer.Inner`](#demo.v1.Outer.Inner).",
        "`/demo.v1.Chat/Listen`, bidirectional streaming. Request: stream of [`Outer`](#demo.v1.Outer). Response: stream of [`Mood`](#demo.v1.Mood).",
        "Listens for ever.",
        "A block\ncomment.",
        "<a id=\"demo.v1.Outer.Kind\"></a>",
        "| `KIND_UNSPECIFIED` | 0 | trailing comment |",
        "| `KIND_LOUD` | 1 |  |",
        "| `mood` | [`Mood`](#demo.v1.Mood) | 1 | How it feels. |",
        "| `at` | `google.protobuf.Timestamp` | 2 |  |",
        "| `inner` | [`Outer.Inner`](#demo.v1.Outer.Inner) | 3 | *oneof `choice`.* The inner one. |",
        "| `text` | `string` | 4 | *oneof `choice`.*  |",
        "oneof `choice` (at most one of `inner`, `text`): Pick one.",
        "| `kinds` | repeated [`Outer.Kind`](#demo.v1.Outer.Kind) | 5 |",
        "| `by_name` | map<`string`, [`Outer.Inner`](#demo.v1.Outer.Inner)> | 6 |",
        "| `level` | optional `double` | 7 |",
    ] {
        assert!(md.contains(want), "generated page lacks {want:?}:\n{md}");
    }
    assert!(!md.contains("Detached comment"), "a comment after a blank line was attached:\n{md}");
    let (links, anchors) = links_and_anchors(&md);
    assert!(links.is_subset(&anchors), "dangling links: {:?}", links.difference(&anchors));

    // Deterministic, and --check tells a current page from a stale one.
    let again = gen_api_docs(python, &["--proto-dir", proto_dir, "--out", out_file, "--check"]);
    assert!(again.status.success(), "{}", text(&again));
    std::fs::write(&out_path, md.replace("Listens for ever.", "Listens.")).expect("edit");
    let stale = gen_api_docs(python, &["--proto-dir", proto_dir, "--out", out_file, "--check"]);
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    assert!(
        String::from_utf8_lossy(&stale.stdout).contains("+Listens for ever."),
        "{}",
        text(&stale)
    );

    // A type that exists nowhere is an error, not a dead link.
    let bad = TRICKY_PROTO.replace("Mood mood = 1;", "Missing mood = 1;");
    std::fs::write(dir.path().join("demo.proto"), bad).expect("write proto");
    let out = gen_api_docs(python, &["--proto-dir", proto_dir, "--out", out_file]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Missing"), "{}", text(&out));
}

/// The rows `| `key` | default | meaning |` of the first table under `heading`, key → default
/// cell.
fn table(md: &str, heading: &str) -> BTreeMap<String, String> {
    let mut lines = md.lines().skip_while(|l| l.trim() != heading);
    assert!(lines.next().is_some(), "docs/configuration.md has no `{heading}` section");
    let mut rows = BTreeMap::new();
    let table = lines
        .skip_while(|l| !l.starts_with('|') && !l.starts_with('#'))
        .take_while(|l| l.starts_with('|'));
    for line in table {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() >= 3 && cells[0].starts_with('`') {
            let key = cells[0].trim_matches('`').to_owned();
            assert!(
                rows.insert(key.clone(), cells[1].to_owned()).is_none(),
                "{heading}: `{key}` is listed twice"
            );
        }
    }
    assert!(!rows.is_empty(), "no key table under `{heading}`");
    rows
}

/// Leaf keys of a serialised value, dotted (`preprocess.resample_hz`); arrays are leaves.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), value.clone());
        }
    }
}

/// Whether a documented default cell states `value`.
fn states(cell: &str, value: &Value) -> bool {
    // The value itself comes first; an explanation may follow in parentheses or after `;`.
    let head = cell.split(" (").next().unwrap_or(cell).split(';').next().unwrap_or(cell).trim();
    let plain = head.trim_matches('`');
    match value {
        Value::Null => cell.starts_with("unset"),
        Value::Bool(b) => plain == b.to_string(),
        Value::Number(n) => {
            let want = n.as_f64().expect("finite number");
            plain.parse::<f64>().is_ok_and(|got| (got - want).abs() <= 1e-6 * want.abs().max(1.0))
        }
        Value::String(s) if s.is_empty() => plain == "empty",
        Value::String(s) => plain == s,
        Value::Array(items) if items.is_empty() => plain == "empty",
        Value::Array(items) => {
            // Every item, quoted, in order.
            let mut rest = cell;
            items.iter().all(|item| {
                let quoted = format!("`{}`", item.as_str().unwrap_or_default());
                match rest.find(&quoted) {
                    Some(at) => {
                        rest = &rest[at + quoted.len()..];
                        true
                    }
                    None => false,
                }
            })
        }
        Value::Object(map) => map.is_empty() && plain == "empty",
    }
}

/// Checks `documented` against the keys and defaults of the code; `extra` are keys the
/// documentation may list that the code does not have yet.
fn check_keys(
    what: &str,
    documented: &BTreeMap<String, String>,
    code: &BTreeMap<String, Value>,
    extra: &[&str],
) {
    let mut problems = Vec::new();
    for (key, value) in code {
        match documented.get(key) {
            None => problems.push(format!("`{key}` (default {value}) is not documented")),
            Some(cell) if !states(cell, value) => problems
                .push(format!("`{key}`: documented default `{cell}`, the code's is {value}")),
            Some(_) => {}
        }
    }
    for key in documented.keys() {
        if !code.contains_key(key) && !extra.contains(&key.as_str()) {
            problems.push(format!("`{key}` is documented but the code has no such key"));
        }
    }
    assert!(problems.is_empty(), "docs/configuration.md, {what}:\n  {}", problems.join("\n  "));
}

#[test]
fn configuration_lists_every_server_key_with_its_default() {
    let md = read("docs/configuration.md");
    let documented = table(&md, "## Server keys");
    let mut code = BTreeMap::new();
    flatten("", &serde_json::to_value(Config::default()).expect("Config serialises"), &mut code);
    assert!(code.len() >= 20, "expected the server's keys, got {code:?}");
    check_keys("server keys", &documented, &code, KEYS_FROM_OTHER_BRANCHES);
}

#[test]
fn configuration_lists_every_model_toml_key_with_its_default() {
    let md = read("docs/configuration.md");
    let documented = table(&md, "## model.toml keys");
    let minimal = ModelManifest::from_toml("labels = [\"a\", \"b\"]").expect("minimal model.toml");
    let mut code = BTreeMap::new();
    flatten("", &serde_json::to_value(&minimal).expect("serialises"), &mut code);
    // Required, so it has no default; and a table left out of the output while empty.
    code.remove("labels");
    code.insert("backend_options".to_owned(), Value::Object(Default::default()));
    assert_eq!(documented.get("labels").map(String::as_str), Some("required"));
    check_keys("model.toml keys", &documented, &code, &["labels"]);
}

#[test]
fn configuration_lists_every_features_toml_key_with_its_default() {
    let md = read("docs/configuration.md");
    let documented = table(&md, "## features.toml keys");
    let mut code = BTreeMap::new();
    flatten("", &serde_json::to_value(FeatureConfig::default()).expect("serialises"), &mut code);
    // Off by default, so only their presence shows: the noise-reduction table's own defaults
    // and the normalisation left out of the output while `none`.
    flatten(
        "preprocess.noise_reduction",
        &serde_json::to_value(NoiseReduction::default()).expect("serialises"),
        &mut code,
    );
    code.insert("preprocess.noise_reduction".to_owned(), Value::Null);
    code.insert("frame_norm".to_owned(), serde_json::to_value(FrameNorm::default()).expect("ser"));
    check_keys("features.toml keys", &documented, &code, &[]);
}

#[test]
fn the_default_check_can_fail() {
    // The comparison the tests above rely on, against wrong and right cells.
    assert!(states("`127.0.0.1:50051`", &Value::from("127.0.0.1:50051")));
    assert!(!states("`127.0.0.1:50052`", &Value::from("127.0.0.1:50051")));
    assert!(states("600", &Value::from(600.0)));
    assert!(!states("60", &Value::from(600.0)));
    assert!(states("0 (one per core)", &Value::from(0)));
    assert!(states("0.85", &serde_json::to_value(0.85f32).expect("f32")));
    assert!(states("unset (off)", &Value::Null));
    assert!(!states("0 (off)", &Value::Null));
    assert!(states("false", &Value::Bool(false)));
    assert!(!states("true", &Value::Bool(false)));
    let list = serde_json::json!(["mfcc", "rms"]);
    assert!(states("`mfcc`, `rms`; more", &list));
    assert!(!states("`rms`, `mfcc`", &list));
}
