//! The device side: probing for a driver and GPU, loading the compiled kernels, and running
//! one batch with one host-to-device and one device-to-host copy.
//!
//! cudarc marks kernel launches, uninitialised allocations and pinned host memory `unsafe`;
//! this is the only module that allows unsafe code. Every launch passes buffers sized from
//! the same [`Layout`] the kernels index by, and every uninitialised buffer is written in full
//! by the kernel that produces it before anything reads it.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::panic::catch_unwind;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, CudaView, DriverError, LaunchConfig,
    PinnedHostSlice, PushKernelArg,
};
use prosodia_dsp::config::FrameFeature;

use crate::error::{Error, ErrorKind};
use crate::kernels;
use crate::plan::{FftKind, Layout, OnsetPlan, Plan, SparseMel};

/// Threads per block; the reduction kernels assume exactly this (`REDUCE_THREADS`).
const THREADS: u32 = 256;

fn device(e: DriverError) -> Error {
    Error::new(ErrorKind::Device, format!("{e}"))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Whether the CUDA driver library (`libcuda.so`) can be opened.
pub(crate) fn driver_present() -> bool {
    // SAFETY: only tries to open the library by its candidate names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Opens a context on GPU `ordinal`, or says clearly why not. Checks for the driver library
/// before touching cudarc's context API, which panics when the library is missing, and runs
/// the rest under `catch_unwind` as well.
pub(crate) fn open(ordinal: usize) -> Result<Arc<CudaContext>, Error> {
    let unavailable = |m: String| Error::new(ErrorKind::Unavailable, m);
    if !driver_present() {
        return Err(unavailable(
            "no CUDA driver: the NVIDIA driver library (libcuda.so.1) is not installed or not on \
             the loader's search path, so the `cuda` extractor cannot run on this machine; use \
             the `cpu` extractor"
                .into(),
        ));
    }
    let count = catch_unwind(CudaContext::device_count)
        .map_err(|p| unavailable(format!("initialising CUDA panicked: {}", panic_message(&*p))))?
        .map_err(|e| unavailable(format!("the CUDA driver is present but unusable: {e}")))?;
    let count = usize::try_from(count).unwrap_or(0);
    if ordinal >= count {
        return Err(unavailable(format!(
            "no CUDA device {ordinal}: the driver reports {count} GPU(s)"
        )));
    }
    catch_unwind(|| CudaContext::new(ordinal))
        .map_err(|p| {
            unavailable(format!("creating a CUDA context panicked: {}", panic_message(&*p)))
        })?
        .map_err(|e| unavailable(format!("cannot create a context on CUDA device {ordinal}: {e}")))
}

/// Constant tables uploaded once per extractor.
struct Constants {
    window: CudaSlice<f32>,
    tw_cos: CudaSlice<f32>,
    tw_sin: CudaSlice<f32>,
    mel_spans: CudaSlice<u32>,
    mel_weights: CudaSlice<f32>,
    onset_window: Option<CudaSlice<f32>>,
    onset_mel: Option<(CudaSlice<u32>, CudaSlice<f32>)>,
    dct: CudaSlice<f32>,
    delta1: CudaSlice<f32>,
    delta2: Option<CudaSlice<f32>>,
}

/// One extractor's device state: context, stream, kernels, constants and pinned staging
/// buffers. Used behind a mutex: one batch at a time per instance, in stream order.
pub(crate) struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: HashMap<&'static str, CudaFunction>,
    consts: Constants,
    pinned_in: Option<PinnedHostSlice<u32>>,
    pinned_out: Option<PinnedHostSlice<f32>>,
    arch: &'static str,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("ordinal", &self.ctx.ordinal())
            .field("arch", &self.arch)
            .finish()
    }
}

/// What one batch produced: the frame matrices of every utterance back to back
/// (`frames × width`), then per utterance and column the (mean, std) of the un-normalised
/// features.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchOutput {
    /// `total_frames × width` values.
    pub(crate) frames: Vec<f32>,
    /// `utterances × width × 2` values.
    pub(crate) stats: Vec<f32>,
}

struct Launcher<'a> {
    stream: &'a Arc<CudaStream>,
    functions: &'a HashMap<&'static str, CudaFunction>,
}

impl Launcher<'_> {
    fn function(&self, name: &str) -> Result<&CudaFunction, Error> {
        self.functions
            .get(name)
            .ok_or_else(|| Error::new(ErrorKind::Compile, format!("kernel {name} was not loaded")))
    }
}

fn grid_for(n: usize) -> Result<LaunchConfig, Error> {
    let blocks = u32::try_from(n.div_ceil(THREADS as usize)).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, format!("{n} elements exceed one kernel launch"))
    })?;
    Ok(LaunchConfig {
        grid_dim: (blocks.max(1), 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    })
}

fn per_block(blocks: usize, shared_mem_bytes: u32) -> Result<LaunchConfig, Error> {
    let blocks = u32::try_from(blocks).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, format!("{blocks} blocks exceed one kernel launch"))
    })?;
    Ok(LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes })
}

fn u32_of(n: usize) -> Result<u32, Error> {
    u32::try_from(n)
        .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{n} exceeds 32 bits")))
}

impl Gpu {
    /// Compiles (or takes from the cache) the kernels for the GPU behind `ctx`, loads them and
    /// uploads `plan`'s constant tables.
    pub(crate) fn new(ctx: Arc<CudaContext>, plan: &Plan) -> Result<Self, Error> {
        let (major, minor) = ctx.compute_capability().map_err(device)?;
        let arch = kernels::arch_name(major, minor);
        let ptx = kernels::compile_all(arch)?;
        let mut functions = HashMap::new();
        for (file, ptx) in kernels::FILES.iter().zip(ptx) {
            let module = ctx.load_module(ptx).map_err(device)?;
            for &entry in file.entries {
                functions.insert(entry, module.load_function(entry).map_err(device)?);
            }
        }
        let stream = ctx.new_stream().map_err(device)?;
        let up = |v: &[f32]| stream.clone_htod(v).map_err(device);
        let up_mel = |m: &SparseMel| -> Result<(CudaSlice<u32>, CudaSlice<f32>), Error> {
            Ok((stream.clone_htod(&m.spans).map_err(device)?, up(&m.weights)?))
        };
        let (mel_spans, mel_weights) = up_mel(&plan.mel)?;
        let (onset_window, onset_mel) = match &plan.onset {
            OnsetPlan::SharedLogmel => (None, None),
            OnsetPlan::SharedPower { mel } => (None, Some(up_mel(mel)?)),
            OnsetPlan::OwnStft { window, mel } => {
                (Some(up(window)?), mel.as_ref().map(up_mel).transpose()?)
            }
        };
        let consts = Constants {
            window: up(&plan.window)?,
            tw_cos: up(&plan.tw_cos)?,
            tw_sin: up(&plan.tw_sin)?,
            mel_spans,
            mel_weights,
            onset_window,
            onset_mel,
            dct: up(&plan.dct)?,
            delta1: up(&plan.delta1)?,
            delta2: plan.delta2.as_deref().map(up).transpose()?,
        };
        stream.synchronize().map_err(device)?;
        Ok(Self { ctx, stream, functions, consts, pinned_in: None, pinned_out: None, arch })
    }

    /// The NVRTC architecture the kernels were compiled for.
    pub(crate) fn arch(&self) -> &'static str {
        self.arch
    }

    /// The GPU's name.
    pub(crate) fn device_name(&self) -> String {
        self.ctx.name().unwrap_or_else(|e| format!("unknown ({e})"))
    }

    // Staging buffers grow by a quarter beyond the request, so batches of slowly rising size
    // do not re-pin memory every call (pinning is far slower than a copy).
    fn pinned_u32(&mut self, len: usize) -> Result<&mut PinnedHostSlice<u32>, Error> {
        if self.pinned_in.as_ref().is_none_or(|p| p.len() < len) {
            self.pinned_in = None;
            // SAFETY: the buffer is written in full up to `len` before it is read.
            let p = unsafe { self.ctx.alloc_pinned::<u32>(len + len / 4) }.map_err(device)?;
            self.pinned_in = Some(p);
        }
        self.pinned_in.as_mut().ok_or_else(|| Error::new(ErrorKind::Device, "pinned buffer"))
    }

    fn pinned_f32(&mut self, len: usize) -> Result<&mut PinnedHostSlice<f32>, Error> {
        if self.pinned_out.as_ref().is_none_or(|p| p.len() < len) {
            self.pinned_out = None;
            // SAFETY: the first `len` values are overwritten by the device copy before use.
            let p = unsafe { self.ctx.alloc_pinned::<f32>(len + len / 4) }.map_err(device)?;
            self.pinned_out = Some(p);
        }
        self.pinned_out.as_mut().ok_or_else(|| Error::new(ErrorKind::Device, "pinned buffer"))
    }

    /// Runs one batch (already checked and laid out by `layout`).
    pub(crate) fn run(
        &mut self,
        plan: &Plan,
        layout: &Layout,
        batch: &[&[f32]],
    ) -> Result<BatchOutput, Error> {
        let n_utt = layout.len();
        let (frames, samples, width) = (layout.frames(), layout.samples(), plan.width);
        let ns = n_utt + 1;
        // Packed upload: sample offsets, frame offsets, then the samples' bits.
        let in_len = 2 * ns + samples;
        {
            let pinned = self.pinned_u32(in_len)?;
            let host = pinned.as_mut_slice().map_err(device)?;
            host[..ns].copy_from_slice(&layout.sample_off);
            host[ns..2 * ns].copy_from_slice(&layout.frame_off);
            let mut at = 2 * ns;
            for u in batch {
                for (d, s) in host[at..at + u.len()].iter_mut().zip(u.iter()) {
                    *d = s.to_bits();
                }
                at += u.len();
            }
        }
        let stream = self.stream.clone();
        // SAFETY: filled in full by the copy just below.
        let mut d_in = unsafe { stream.alloc::<u32>(in_len) }.map_err(device)?;
        {
            let pinned = self
                .pinned_in
                .as_ref()
                .ok_or_else(|| Error::new(ErrorKind::Device, "pinned buffer"))?;
            let host = pinned.as_slice().map_err(device)?;
            stream.memcpy_htod(&host[..in_len], &mut d_in).map_err(device)?;
        }
        let out_len = frames * width + n_utt * width * 2;
        let mut d_out = stream.alloc_zeros::<f32>(out_len).map_err(device)?;
        {
            let launcher = Launcher { stream: &stream, functions: &self.functions };
            let so = d_in.slice(0..ns);
            let fo = d_in.slice(ns..2 * ns);
            let x = d_in.slice(2 * ns..in_len);
            pipeline(&launcher, &self.consts, plan, layout, &so, &fo, &x, &mut d_out)?;
        }
        let pinned = self.pinned_f32(out_len)?;
        {
            let host = pinned.as_mut_slice().map_err(device)?;
            stream.memcpy_dtoh(&d_out, &mut host[..out_len]).map_err(device)?;
        }
        stream.synchronize().map_err(device)?;
        let host = pinned.as_slice().map_err(device)?;
        Ok(BatchOutput {
            frames: host[..frames * width].to_vec(),
            stats: host[frames * width..out_len].to_vec(),
        })
    }
}

/// The launches for one batch, in stream order.
#[allow(clippy::too_many_arguments)]
fn pipeline(
    l: &Launcher<'_>,
    c: &Constants,
    plan: &Plan,
    layout: &Layout,
    so: &CudaView<'_, u32>,
    fo: &CudaView<'_, u32>,
    x: &CudaView<'_, u32>,
    d_out: &mut CudaSlice<f32>,
) -> Result<(), Error> {
    let stream = l.stream;
    let n_utt = u32_of(layout.len())?;
    let t = layout.frames();
    let t32 = u32_of(t)?;
    let (n_fft, hop, n_bins) = (u32_of(plan.n_fft)?, u32_of(plan.hop)?, u32_of(plan.n_bins)?);
    let (n_mels, n_mfcc) = (u32_of(plan.n_mels)?, u32_of(plan.n_mfcc)?);
    let width = plan.width;
    let alloc = |n: usize| -> Result<CudaSlice<f32>, Error> {
        // SAFETY: every caller's kernel writes all `n` values before any read.
        unsafe { stream.alloc::<f32>(n.max(1)) }.map_err(device)
    };

    // Power spectrum of the main STFT.
    let stft = |window: &CudaSlice<f32>, power: &mut CudaSlice<f32>| -> Result<(), Error> {
        match plan.fft {
            FftKind::Radix2 { log2n } => {
                let f = l.function("stft_power_radix2")?;
                let cfg = per_block(t, 2 * n_fft * 4)?;
                let mut b = stream.launch_builder(f);
                b.arg(x).arg(so).arg(fo).arg(&n_utt).arg(window).arg(&c.tw_cos).arg(&c.tw_sin);
                b.arg(&n_fft).arg(&log2n).arg(&hop).arg(power);
                // SAFETY: argument order and types match the kernel; grid = one block per frame.
                unsafe { b.launch(cfg) }.map_err(device)?;
            }
            FftKind::Dft => {
                let f = l.function("stft_power_dft")?;
                let cfg = per_block(t, n_fft * 4)?;
                let mut b = stream.launch_builder(f);
                b.arg(x).arg(so).arg(fo).arg(&n_utt).arg(window).arg(&c.tw_cos).arg(&c.tw_sin);
                b.arg(&n_fft).arg(&hop).arg(power);
                // SAFETY: as above.
                unsafe { b.launch(cfg) }.map_err(device)?;
            }
        }
        Ok(())
    };
    // Log-mel in dB with the per-utterance top_db floor.
    let umax = &mut alloc(layout.len())?;
    let mut logmel_db = |power: &CudaSlice<f32>,
                         spans: &CudaSlice<u32>,
                         weights: &CudaSlice<f32>,
                         out: &mut CudaSlice<f32>|
     -> Result<(), Error> {
        let amin = prosodia_dsp::spectral::DEFAULT_AMIN;
        let top_db = prosodia_dsp::spectral::DEFAULT_TOP_DB;
        let mut b = stream.launch_builder(l.function("mel_db")?);
        b.arg(power).arg(&t32).arg(&n_bins).arg(spans).arg(weights).arg(&n_mels).arg(&amin);
        b.arg(&mut *out);
        // SAFETY: one thread per (frame, band), bounds-checked in the kernel.
        unsafe { b.launch(grid_for(t * plan.n_mels)?) }.map_err(device)?;
        let mut b = stream.launch_builder(l.function("utt_max")?);
        b.arg(&*out).arg(&n_mels).arg(fo).arg(&mut *umax);
        // SAFETY: one block per utterance.
        unsafe { b.launch(per_block(layout.len(), 0)?) }.map_err(device)?;
        let mut b = stream.launch_builder(l.function("db_floor")?);
        b.arg(&mut *out).arg(&t32).arg(&n_mels).arg(fo).arg(&n_utt).arg(&*umax).arg(&top_db);
        // SAFETY: one thread per value, bounds-checked.
        unsafe { b.launch(grid_for(t * plan.n_mels)?) }.map_err(device)?;
        Ok(())
    };

    let mut power = alloc(t * plan.n_bins)?;
    stft(&c.window, &mut power)?;
    let mut logmel = alloc(t * plan.n_mels)?;
    logmel_db(&power, &c.mel_spans, &c.mel_weights, &mut logmel)?;

    use FrameFeature as F;
    let mut mfcc = None;
    if plan.needs(&[F::Mfcc, F::MfccDelta, F::MfccDelta2]) {
        let mut m = alloc(t * plan.n_mfcc)?;
        let mut b = stream.launch_builder(l.function("dct_mfcc")?);
        b.arg(&logmel).arg(&t32).arg(&n_mels).arg(&c.dct).arg(&n_mfcc).arg(&mut m);
        // SAFETY: one thread per (frame, coefficient), bounds-checked.
        unsafe { b.launch(grid_for(t * plan.n_mfcc)?) }.map_err(device)?;
        mfcc = Some(m);
    }
    let delta = |weights: &CudaSlice<f32>, src: &CudaSlice<f32>| -> Result<CudaSlice<f32>, Error> {
        let mut d = alloc(t * plan.n_mfcc)?;
        let w = u32_of(plan.delta_width)?;
        let mut b = stream.launch_builder(l.function("delta")?);
        b.arg(src).arg(&t32).arg(&n_mfcc).arg(fo).arg(&n_utt).arg(weights).arg(&w).arg(&mut d);
        // SAFETY: one thread per value; every utterance has ≥ width frames (Layout::new).
        unsafe { b.launch(grid_for(t * plan.n_mfcc)?) }.map_err(device)?;
        Ok(d)
    };
    let (mut rms, mut zcr) = (None, None);
    if plan.needs(&[F::Rms, F::Zcr]) {
        let (mut r, mut z) = (alloc(t)?, alloc(t)?);
        let mut b = stream.launch_builder(l.function("rms_zcr")?);
        b.arg(x).arg(so).arg(fo).arg(&n_utt).arg(&n_fft).arg(&hop).arg(&mut r).arg(&mut z);
        // SAFETY: one block per frame.
        unsafe { b.launch(per_block(t, 0)?) }.map_err(device)?;
        (rms, zcr) = (Some(r), Some(z));
    }
    let (mut centroid, mut rolloff) = (None, None);
    if plan.needs(&[F::SpectralCentroid, F::SpectralRolloff]) {
        let (mut ce, mut ro) = (alloc(t)?, alloc(t)?);
        let mut b = stream.launch_builder(l.function("centroid_rolloff")?);
        b.arg(&power).arg(&n_bins).arg(&plan.bin_hz).arg(&plan.rolloff_percent);
        b.arg(&mut ce).arg(&mut ro);
        // SAFETY: one block per frame.
        unsafe { b.launch(per_block(t, 0)?) }.map_err(device)?;
        (centroid, rolloff) = (Some(ce), Some(ro));
    }
    let mut onset = None;
    if plan.needs(&[F::OnsetStrength]) {
        // The centroid and rolloff are done with the main power spectrum: reuse its buffer.
        let own: Option<CudaSlice<f32>> = match (&c.onset_window, &c.onset_mel) {
            (None, None) => None,
            (window, mel) => {
                if let Some(w) = window {
                    stft(w, &mut power)?;
                }
                let (spans, weights) = match mel {
                    Some((s, w)) => (s, w),
                    None => (&c.mel_spans, &c.mel_weights),
                };
                let mut lm = alloc(t * plan.n_mels)?;
                logmel_db(&power, spans, weights, &mut lm)?;
                Some(lm)
            }
        };
        let source = own.as_ref().unwrap_or(&logmel);
        let shift = u32_of(plan.onset_shift)?;
        let mut o = alloc(t)?;
        let mut b = stream.launch_builder(l.function("onset_flux")?);
        b.arg(source).arg(&t32).arg(&n_mels).arg(fo).arg(&n_utt).arg(&shift).arg(&mut o);
        // SAFETY: one thread per frame, bounds-checked.
        unsafe { b.launch(grid_for(t)?) }.map_err(device)?;
        onset = Some(o);
    }
    drop(power);

    let missing = |what: &str| Error::new(ErrorKind::Device, format!("{what} was not computed"));
    let mut frames_out = d_out.slice_mut(0..t * width);
    let mut d1 = None;
    let mut d2 = None;
    for block in &plan.blocks {
        let (src, cols): (&CudaSlice<f32>, usize) = match block.feature {
            F::LogmelDb => (&logmel, plan.n_mels),
            F::Mfcc => (mfcc.as_ref().ok_or_else(|| missing("mfcc"))?, plan.n_mfcc),
            F::MfccDelta => {
                let m = mfcc.as_ref().ok_or_else(|| missing("mfcc"))?;
                (&*d1.insert(delta(&c.delta1, m)?), plan.n_mfcc)
            }
            F::MfccDelta2 => {
                let m = mfcc.as_ref().ok_or_else(|| missing("mfcc"))?;
                let w = c.delta2.as_ref().ok_or_else(|| missing("delta2 weights"))?;
                (&*d2.insert(delta(w, m)?), plan.n_mfcc)
            }
            F::Rms => (rms.as_ref().ok_or_else(|| missing("rms"))?, 1),
            F::Zcr => (zcr.as_ref().ok_or_else(|| missing("zcr"))?, 1),
            F::SpectralCentroid => (centroid.as_ref().ok_or_else(|| missing("centroid"))?, 1),
            F::SpectralRolloff => (rolloff.as_ref().ok_or_else(|| missing("rolloff"))?, 1),
            F::OnsetStrength => (onset.as_ref().ok_or_else(|| missing("onset"))?, 1),
        };
        copy_view(l, src, t, cols, width, block.col, &mut frames_out)?;
    }

    // Per-utterance column statistics of the raw features, then the optional normalisation.
    let w32 = u32_of(width)?;
    // SAFETY: column_stats writes every (mean, variance) pair.
    let mut mean_var =
        unsafe { stream.alloc::<f64>((layout.len() * width * 2).max(1)) }.map_err(device)?;
    {
        let (frames_view, mut stats_view) = d_out.split_at_mut(t * width);
        let frames_view = frames_view.as_view();
        let mut b = stream.launch_builder(l.function("column_stats")?);
        b.arg(&frames_view).arg(&w32).arg(fo).arg(&mut mean_var).arg(&mut stats_view);
        let cfg = LaunchConfig {
            grid_dim: (n_utt, w32, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: one block per (utterance, column); mean_var and stats hold n_utt·width pairs.
        unsafe { b.launch(cfg) }.map_err(device)?;
    }
    if plan.norm_mode != 0 {
        let mut frames_view = d_out.slice_mut(0..t * width);
        let mut b = stream.launch_builder(l.function("normalize_columns")?);
        b.arg(&mut frames_view).arg(&t32).arg(&w32).arg(fo).arg(&n_utt).arg(&mean_var);
        b.arg(&plan.norm_mode);
        // SAFETY: one thread per value, bounds-checked.
        unsafe { b.launch(grid_for(t * width)?) }.map_err(device)?;
    }
    Ok(())
}

fn copy_view(
    l: &Launcher<'_>,
    src: &CudaSlice<f32>,
    t: usize,
    cols: usize,
    width: usize,
    col: usize,
    dst: &mut cudarc::driver::CudaViewMut<'_, f32>,
) -> Result<(), Error> {
    let (t32, cols32, w32, col32) = (u32_of(t)?, u32_of(cols)?, u32_of(width)?, u32_of(col)?);
    let mut b = l.stream.launch_builder(l.function("copy_columns")?);
    b.arg(src).arg(&t32).arg(&cols32).arg(dst).arg(&w32).arg(&col32);
    // SAFETY: one thread per source value; the destination view is frames × width.
    unsafe { b.launch(grid_for(t * cols)?) }.map_err(device)?;
    Ok(())
}
