//! The hand-written C header must describe exactly the Rust ABI: this test compiles a C
//! program against `include/prosodia_plugin.h` that prints the size, alignment and every
//! field offset of each struct plus every constant, and compares the lines with the same
//! table computed from the Rust definitions. Any drift (a reordered field, a new field on
//! one side only, a changed constant) fails with the differing lines.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use prosodia_plugin_api::abi::*;

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
#include "prosodia_plugin.h"
#define S(T) printf("size %s %zu\nalign %s %zu\n", #T, sizeof(T), #T, (size_t)_Alignof(T));
#define O(T, f) printf("offset %s.%s %zu\n", #T, #f, offsetof(T, f));
#define C(name) printf("const %s %lld\n", #name, (long long)(name));
int main(void) {
    S(ProsodiaStr) O(ProsodiaStr, ptr) O(ProsodiaStr, len)
    S(ProsodiaF32Slice) O(ProsodiaF32Slice, ptr) O(ProsodiaF32Slice, len)
    S(ProsodiaMatrix) O(ProsodiaMatrix, data) O(ProsodiaMatrix, rows) O(ProsodiaMatrix, cols)
    S(ProsodiaExtractorInfo) O(ProsodiaExtractorInfo, sample_rate) O(ProsodiaExtractorInfo, layout)
        O(ProsodiaExtractorInfo, width) O(ProsodiaExtractorInfo, column_names)
    S(ProsodiaFeatureOutput) O(ProsodiaFeatureOutput, items) O(ProsodiaFeatureOutput, count)
        O(ProsodiaFeatureOutput, owner)
    S(ProsodiaExtractorVTable) O(ProsodiaExtractorVTable, struct_size) O(ProsodiaExtractorVTable, create)
        O(ProsodiaExtractorVTable, destroy) O(ProsodiaExtractorVTable, info) O(ProsodiaExtractorVTable, extract)
        O(ProsodiaExtractorVTable, release_output)
    S(ProsodiaTensorInfo) O(ProsodiaTensorInfo, name) O(ProsodiaTensorInfo, dtype) O(ProsodiaTensorInfo, rank)
        O(ProsodiaTensorInfo, dims)
    S(ProsodiaBackendInfo) O(ProsodiaBackendInfo, inputs) O(ProsodiaBackendInfo, n_inputs)
        O(ProsodiaBackendInfo, outputs) O(ProsodiaBackendInfo, n_outputs) O(ProsodiaBackendInfo, num_classes)
    S(ProsodiaBatch) O(ProsodiaBatch, data) O(ProsodiaBatch, n) O(ProsodiaBatch, t) O(ProsodiaBatch, f)
        O(ProsodiaBatch, lengths)
    S(ProsodiaBackendVTable) O(ProsodiaBackendVTable, struct_size) O(ProsodiaBackendVTable, load)
        O(ProsodiaBackendVTable, destroy) O(ProsodiaBackendVTable, info) O(ProsodiaBackendVTable, run)
    S(ProsodiaPluginDescriptor) O(ProsodiaPluginDescriptor, abi_major) O(ProsodiaPluginDescriptor, abi_minor)
        O(ProsodiaPluginDescriptor, kind) O(ProsodiaPluginDescriptor, reserved) O(ProsodiaPluginDescriptor, name)
        O(ProsodiaPluginDescriptor, version) O(ProsodiaPluginDescriptor, last_error)
        O(ProsodiaPluginDescriptor, live_objects) O(ProsodiaPluginDescriptor, extractor)
        O(ProsodiaPluginDescriptor, backend)
    C(PROSODIA_ABI_MAJOR) C(PROSODIA_ABI_MINOR) C(PROSODIA_OK) C(PROSODIA_ERR_INVALID_ARGUMENT)
    C(PROSODIA_ERR_INVALID_INPUT) C(PROSODIA_ERR_UNSUPPORTED) C(PROSODIA_ERR_INTERNAL) C(PROSODIA_ERR_PANIC)
    C(PROSODIA_KIND_FEATURE_EXTRACTOR) C(PROSODIA_KIND_MODEL_BACKEND) C(PROSODIA_LAYOUT_FRAMES)
    C(PROSODIA_LAYOUT_VECTOR) C(PROSODIA_DTYPE_F32) C(PROSODIA_DTYPE_I64) C(PROSODIA_DTYPE_I32)
    C(PROSODIA_DIM_DYNAMIC)
    printf("entry %s\n", PROSODIA_ENTRY_SYMBOL);
    return 0;
}
"#;

/// The same table from the Rust side.
fn rust_table() -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    macro_rules! s {
        ($c:literal, $ty:ty; $($field:ident),*) => {
            t.insert(format!("size {}", $c), size_of::<$ty>().to_string());
            t.insert(format!("align {}", $c), align_of::<$ty>().to_string());
            $( t.insert(format!("offset {}.{}", $c, stringify!($field)), offset_of!($ty, $field).to_string()); )*
        };
    }
    s!("ProsodiaStr", RawStr; ptr, len);
    s!("ProsodiaF32Slice", RawF32Slice; ptr, len);
    s!("ProsodiaMatrix", RawMatrix; data, rows, cols);
    s!("ProsodiaExtractorInfo", ExtractorInfo; sample_rate, layout, width, column_names);
    s!("ProsodiaFeatureOutput", FeatureOutput; items, count, owner);
    s!("ProsodiaExtractorVTable", ExtractorVTable; struct_size, create, destroy, info, extract, release_output);
    s!("ProsodiaTensorInfo", TensorInfo; name, dtype, rank, dims);
    s!("ProsodiaBackendInfo", BackendInfo; inputs, n_inputs, outputs, n_outputs, num_classes);
    s!("ProsodiaBatch", RawBatch; data, n, t, f, lengths);
    s!("ProsodiaBackendVTable", BackendVTable; struct_size, load, destroy, info, run);
    s!("ProsodiaPluginDescriptor", PluginDescriptor;
        abi_major, abi_minor, kind, reserved, name, version, last_error, live_objects, extractor, backend);
    use prosodia_plugin_api::ErrorCode as E;
    let consts: [(&str, i64); 16] = [
        ("PROSODIA_ABI_MAJOR", ABI_MAJOR.into()),
        ("PROSODIA_ABI_MINOR", ABI_MINOR.into()),
        ("PROSODIA_OK", STATUS_OK.into()),
        ("PROSODIA_ERR_INVALID_ARGUMENT", E::InvalidArgument.as_raw().into()),
        ("PROSODIA_ERR_INVALID_INPUT", E::InvalidInput.as_raw().into()),
        ("PROSODIA_ERR_UNSUPPORTED", E::Unsupported.as_raw().into()),
        ("PROSODIA_ERR_INTERNAL", E::Internal.as_raw().into()),
        ("PROSODIA_ERR_PANIC", E::Panic.as_raw().into()),
        ("PROSODIA_KIND_FEATURE_EXTRACTOR", KIND_FEATURE_EXTRACTOR.into()),
        ("PROSODIA_KIND_MODEL_BACKEND", KIND_MODEL_BACKEND.into()),
        ("PROSODIA_LAYOUT_FRAMES", LAYOUT_FRAMES.into()),
        ("PROSODIA_LAYOUT_VECTOR", LAYOUT_VECTOR.into()),
        ("PROSODIA_DTYPE_F32", DTYPE_F32.into()),
        ("PROSODIA_DTYPE_I64", DTYPE_I64.into()),
        ("PROSODIA_DTYPE_I32", DTYPE_I32.into()),
        ("PROSODIA_DIM_DYNAMIC", DIM_DYNAMIC),
    ];
    for (name, value) in consts {
        t.insert(format!("const {name}"), value.to_string());
    }
    t.insert("entry".into(), ENTRY_SYMBOL.to_string());
    t
}

#[test]
fn c_header_matches_rust_abi() -> anyhow::Result<()> {
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&src, C_PROGRAM)?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()?;
    anyhow::ensure!(status.success(), "{cc} failed to compile the layout program: {status}");
    let out = Command::new(&exe).output()?;
    anyhow::ensure!(out.status.success(), "layout program failed");
    let mut c_table = BTreeMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let (key, value) =
            line.rsplit_once(' ').ok_or_else(|| anyhow::anyhow!("bad line {line:?}"))?;
        c_table.insert(key.to_string(), value.to_string());
    }
    let rust = rust_table();
    let mismatches: Vec<String> = rust
        .keys()
        .chain(c_table.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| rust.get(*k) != c_table.get(*k))
        .map(|k| format!("{k}: rust {:?} vs C {:?}", rust.get(k), c_table.get(k)))
        .collect();
    assert!(mismatches.is_empty(), "header and Rust ABI differ:\n{}", mismatches.join("\n"));
    // Guard against a vacuous comparison.
    assert!(c_table.len() > 60, "only {} entries compared", c_table.len());
    Ok(())
}

/// A C++ compiler must accept the header as well (the `extern "C"` guard).
#[test]
fn header_compiles_as_cpp_when_available() -> anyhow::Result<()> {
    let Ok(status) = Command::new("c++").arg("--version").output() else { return Ok(()) };
    if !status.status.success() {
        return Ok(());
    }
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("x.cpp");
    std::fs::write(
        &src,
        "#include \"prosodia_plugin.h\"\nint main() { return sizeof(ProsodiaPluginDescriptor) == 0; }\n",
    )?;
    let ok = Command::new("c++")
        .args(["-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(dir.path().join("x"))
        .status()?;
    assert!(ok.success(), "C++ compile of the header failed");
    Ok(())
}
