//! Libraries the host must refuse, each with an error that says what is wrong: another ABI
//! major, a newer ABI minor, no entry symbol, not a library at all, NaN output on the smoke
//! call, and world-writable files or directories. Refusing one library never affects others.

mod common;

use prosodia_plugin_host::{HostErrorKind, PluginHost};

fn build(
    dir: &std::path::Path,
    name: &str,
    defines: &[&str],
) -> anyhow::Result<std::path::PathBuf> {
    common::build_c(&common::energy_zcr_source(), &dir.join(format!("lib{name}.so")), defines)
}

#[test]
fn wrong_abi_major_is_refused_naming_both_versions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = build(dir.path(), "major2", &["FAULT_ABI_MAJOR=2u"])?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::AbiVersion, "{err}");
    assert!(err.message().contains("ABI 2.0") && err.message().contains("ABI 1.0"), "{err}");
    Ok(())
}

#[test]
fn newer_abi_minor_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = build(dir.path(), "minor7", &["FAULT_ABI_MINOR=7u"])?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::AbiVersion, "{err}");
    assert!(err.message().contains("ABI 1.7"), "{err}");
    Ok(())
}

#[test]
fn library_without_entry_symbol_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = build(dir.path(), "noentry", &["FAULT_NO_ENTRY"])?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::NoEntrySymbol, "{err}");
    assert!(err.message().contains("prosodia_plugin_v1"), "{err}");
    Ok(())
}

#[test]
fn a_file_that_is_not_a_library_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("libjunk.so");
    std::fs::write(&path, b"definitely not ELF")?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::Load, "{err}");
    Ok(())
}

#[test]
fn nan_output_fails_the_smoke_call() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = build(dir.path(), "nan", &["FAULT_NAN"])?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::SmokeTest, "{err}");
    assert!(err.message().contains("NaN"), "{err}");
    Ok(())
}

#[test]
fn output_wider_than_declared_fails_the_smoke_call() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = build(dir.path(), "wide", &["FAULT_WIDTH"])?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::SmokeTest, "{err}");
    assert!(err.message().contains("3 columns, declared 2"), "{err}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn world_writable_files_and_directories_are_refused() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = build(dir.path(), "ok", &[])?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    let err = PluginHost::builder()
        .build()?
        .load_library(&path)
        .err()
        .ok_or_else(|| anyhow::anyhow!("loaded"))?;
    assert_eq!(err.kind(), HostErrorKind::InsecurePermissions, "{err}");
    assert!(err.message().contains("world-writable"), "{err}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    PluginHost::builder().build()?.load_library(&path)?;

    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    let err = PluginHost::builder()
        .plugin_dir(dir.path())
        .build()
        .err()
        .ok_or_else(|| anyhow::anyhow!("built"))?;
    assert_eq!(err.kind(), HostErrorKind::InsecurePermissions, "{err}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// A directory scan loads the good library and reports the bad ones without failing.
#[test]
fn scan_skips_bad_libraries_and_reports_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    build(dir.path(), "good", &[])?;
    build(dir.path(), "major2", &["FAULT_ABI_MAJOR=2u"])?;
    build(dir.path(), "noentry", &["FAULT_NO_ENTRY"])?;
    // Same plugin name twice: the second (in path order) is a duplicate.
    build(dir.path(), "zz_duplicate", &[])?;
    let host = PluginHost::builder().plugin_dir(dir.path()).build()?;
    assert_eq!(host.plugins().len(), 1);
    assert_eq!(host.info("c_energy_zcr")?.version, "1.0.0");
    let mut kinds: Vec<HostErrorKind> = host.load_errors().iter().map(|(_, e)| e.kind()).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        vec![HostErrorKind::AbiVersion, HostErrorKind::DuplicateName, HostErrorKind::NoEntrySymbol]
    );
    let x = common::tone(48_000, 0.5);
    assert_eq!(host.extractor("c_energy_zcr", "")?.extract(&[&x], 48_000)?.len(), 1);
    Ok(())
}

#[test]
fn unknown_names_and_wrong_kinds_are_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let host = PluginHost::builder().build()?;
    host.load_library(build(dir.path(), "ok", &[])?)?;
    let err = host.extractor("nope", "").err().ok_or_else(|| anyhow::anyhow!("found"))?;
    assert_eq!(err.kind(), HostErrorKind::NotFound);
    assert!(err.message().contains("c_energy_zcr"), "lists what is registered: {err}");
    let err = host
        .backend("c_energy_zcr", std::path::Path::new("m"), "")
        .err()
        .ok_or_else(|| anyhow::anyhow!("ok"))?;
    assert_eq!(err.kind(), HostErrorKind::WrongKind);
    let err = host
        .extractor("c_energy_zcr", "bogus = 1")
        .err()
        .ok_or_else(|| anyhow::anyhow!("created"))?;
    assert_eq!(err.kind(), HostErrorKind::Plugin);
    assert!(
        err.message().contains("unknown configuration key \"bogus\""),
        "the plugin's message comes back: {err}"
    );
    Ok(())
}
