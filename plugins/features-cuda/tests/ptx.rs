//! Every kernel file compiles to PTX with NVRTC and defines every entry point the host loads.
//! Needs no GPU: NVRTC is a plain library (`scripts/install-nvrtc.sh` installs the pinned
//! one; scripts/test.sh puts it on LD_LIBRARY_PATH). Skips with the reason when it is absent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prosodia_features_cuda::kernels::{self, FILES};

fn nvrtc_or_skip() -> bool {
    if kernels::nvrtc_present() {
        return true;
    }
    eprintln!(
        "SKIPPED: libnvrtc.so.12 is not on the loader's search path; run \
         `export LD_LIBRARY_PATH=\"$(bash scripts/install-nvrtc.sh)\"` (scripts/test.sh does)"
    );
    false
}

#[test]
fn every_kernel_compiles_to_ptx_with_its_entries() {
    if !nvrtc_or_skip() {
        return;
    }
    let version = kernels::nvrtc_version().expect("NVRTC version");
    eprintln!("NVRTC {}.{}", version.0, version.1);
    // Volta (oldest CUDA 12 keeps), Ampere, Hopper.
    for arch in ["compute_70", "compute_80", "compute_90"] {
        for file in FILES {
            let ptx = kernels::compile_file(file, arch)
                .unwrap_or_else(|e| panic!("{} for {arch}: {e}", file.name))
                .to_src();
            let target = arch.replace("compute_", "sm_");
            assert!(
                ptx.contains(&format!(".target {target}")),
                "{} for {arch}: PTX targets something else",
                file.name
            );
            for entry in file.entries {
                assert!(
                    ptx.contains(&format!(".entry {entry}(")),
                    "{} for {arch}: no kernel entry `{entry}` in the PTX",
                    file.name
                );
            }
        }
    }
}

#[test]
fn compile_errors_are_reported_not_panicked() {
    if !nvrtc_or_skip() {
        return;
    }
    let broken = kernels::KernelFile {
        name: "broken.cu",
        source: "extern \"C\" __global__ void broken(float* x) { x[0] = undefined_name; }",
        entries: &["broken"],
    };
    let err = kernels::compile_file(&broken, "compute_80").unwrap_err();
    assert_eq!(err.kind(), prosodia_features_cuda::ErrorKind::Compile, "{err}");
    assert!(err.message().contains("broken.cu"), "{err}");
}

#[test]
fn the_compile_cache_returns_the_same_ptx() {
    if !nvrtc_or_skip() {
        return;
    }
    let arch = kernels::arch_name(8, 6);
    assert_eq!(arch, "compute_86");
    assert!(std::ptr::eq(arch, kernels::arch_name(8, 6)), "arch names are interned once");
    let first = kernels::compile_all(arch).unwrap();
    let second = kernels::compile_all(arch).unwrap();
    assert_eq!(first.len(), FILES.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.to_src(), b.to_src());
    }
}
