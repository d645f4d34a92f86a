//! Shared pieces of Prosodia's benchmark binaries (see `src/bin/`): finding corpus files.

use std::path::{Path, PathBuf};

/// All `.wav` files under `roots`, sorted, so every run and baseline sees the same list.
pub fn wav_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = roots
        .iter()
        .flat_map(|r| walkdir::WalkDir::new(r).into_iter().filter_map(Result::ok))
        .filter(|e| e.file_type().is_file() && has_ext(e.path(), "wav"))
        .map(walkdir::DirEntry::into_path)
        .collect();
    files.sort();
    files
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case(ext))
}
