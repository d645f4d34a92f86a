//! The CUDA feature extractor: the CPU extractor's frame features (log-mel, MFCCs and deltas,
//! RMS, zero-crossing rate, spectral centroid, rolloff, onset strength) for a whole batch of
//! utterances at once, in CUDA kernels compiled at run time with NVRTC through cudarc.
//!
//! # Design
//!
//! * **Builds everywhere.** cudarc is built with `dynamic-loading` and a fixed CUDA version
//!   (`cuda-12080`): nothing about CUDA is needed to compile or link, and the driver
//!   (`libcuda.so`) and NVRTC (`libnvrtc.so.12`) are opened when an extractor is created.
//!   A missing driver, GPU or NVRTC makes [`CudaExtractor::new`] fail with
//!   [`ErrorKind::Unavailable`] (the ABI's `UNSUPPORTED` code, as the ONNX Runtime backend
//!   reports a missing runtime) and a message that says which; cudarc's context API panics
//!   without a driver, so the driver library is probed first and the rest runs under
//!   `catch_unwind`.
//! * **Same numbers as the CPU.** [`plan`] computes every table on the host with
//!   `prosodia_dsp`'s own code — the Hann window, the Slaney filterbank (uploaded sparse,
//!   the same spans), the DCT-II basis and the Savitzky–Golay delta weights (read back by
//!   transforming identity matrices) — and makes the same choices (frame counts, the onset
//!   envelope's own STFT or filterbank, the delta-window minimum), so the kernels only have
//!   to reproduce the arithmetic.
//! * **One packed batch.** Utterances are concatenated without padding; frames are numbered
//!   across the batch and each kernel finds its utterance by binary search over the frame
//!   offsets, so centred padding is synthesised rather than read, and `top_db`, deltas,
//!   onset delays and statistics are per utterance. One host-to-device copy (offsets and
//!   samples, staged in pinned memory) and one device-to-host copy (all frame matrices plus
//!   every utterance's column means and standard deviations) per batch.
//! * **Per instance:** a context on the configured device, its own stream, the constant
//!   tables and pinned staging buffers; device buffers come from the stream-ordered
//!   allocator's pool. Calls on one instance are serialised (one stream); the NVRTC output
//!   is cached per GPU architecture for the whole process.
//!
//! The kernels are `kernels/*.cu` (see `docs/cuda.md`). Utterance-level features
//! (`output = "utterance"`) need the CPU's Praat pitch tracker and are refused as
//! unsupported.

mod error;
mod extractor;
mod gpu;
pub mod kernels;
pub mod plan;

pub use error::{Error, ErrorKind};
pub use extractor::{CudaExtractor, DeviceOptions, Extraction, parse_config};

/// Whether the CUDA driver library (`libcuda.so`) can be opened on this machine.
pub fn driver_present() -> bool {
    gpu::driver_present()
}
