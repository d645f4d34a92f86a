//! Compiles `prosodia/v1/*.proto` without protoc: protox parses the files into a
//! `FileDescriptorSet`, tonic-prost-build generates messages, clients and servers from it, and
//! the encoded set is written next to the code for the reflection service.

use std::path::PathBuf;

use prost::Message;

const PROTOS: [&str; 3] =
    ["prosodia/v1/audio.proto", "prosodia/v1/emotion.proto", "prosodia/v1/models.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_source_info(true).include_imports(true);
    for p in PROTOS {
        compiler.open_file(p)?;
    }
    let fds = compiler.file_descriptor_set();
    std::fs::write(out.join("prosodia_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
