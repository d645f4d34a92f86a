//! Prosodia's gRPC API, `prosodia.v1`, compiled from the `.proto` files beside this crate.
//!
//! The `.proto` files are the source of truth and document every field; this crate only
//! compiles them. The build needs no `protoc`: protox parses the files into a
//! `FileDescriptorSet` and tonic-prost-build generates prost messages plus tonic clients and
//! servers from it. Everything generated lives in [`pb`], together with
//! [`pb::FILE_DESCRIPTOR_SET`], the encoded descriptor set that the server registers with the
//! gRPC reflection service so tools such as grpcurl can call it without the `.proto` files.
//!
//! [`retry`] is the clients' one piece of shared behaviour: retrying unary calls that fail
//! with `UNAVAILABLE` (a replica down, a full queue), with capped exponential backoff.

pub mod retry;

/// The generated code for package `prosodia.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/prosodia.v1.rs"));

    /// The encoded `FileDescriptorSet` of every `prosodia.v1` file (with source comments), for
    /// `tonic_reflection`'s `register_encoded_file_descriptor_set`.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/prosodia_descriptor.bin"));
}
