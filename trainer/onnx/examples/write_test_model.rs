//! Writes the test classifiers to files, for tools outside Rust (the ONNX checker, Python
//! clients, a server started by hand).
//!
//! `cargo run -p prosodia-onnx --example write_test_model -- DIR` writes `DIR/conv.onnx` and
//! `DIR/conv_lstm.onnx` (8 features, 6 classes, seed 7).

use anyhow::{Context, Result};
use prosodia_onnx::{Arch, TestModelConfig, test_classifier};

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).context("usage: write_test_model DIR")?;
    std::fs::create_dir_all(&dir)?;
    for (arch, name) in [(Arch::Conv, "conv.onnx"), (Arch::ConvLstm, "conv_lstm.onnx")] {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(
            &path,
            test_classifier(&TestModelConfig { arch, ..TestModelConfig::default() })?,
        )?;
        println!("{}", path.display());
    }
    Ok(())
}
