//! Sample-rate conversion on top of rubato 5.
//!
//! Two resamplers cover the two ways audio arrives:
//!
//! * [`Resampler`] converts a whole clip already in memory. It uses rubato's synchronous FFT
//!   resampler (`Fft` with [`FixedSync::Both`]), whose anti-aliasing filter is a windowed sinc
//!   as long as one FFT block (thousands of taps), so the pass band reaches close to Nyquist
//!   and the stop band is far below 16-bit noise. Planning that filter and its FFTs costs
//!   much more than running it on a short clip, so the planned resampler is kept and reused.
//! * [`StreamResampler`] converts a live stream pushed in chunks of any size, using rubato's
//!   asynchronous sinc resampler ([`Async::new_sinc`]) with a 256-tap Blackman-Harris² filter.
//!
//! Both compensate their filter delay so that an event at time `t` in the input appears at
//! time `t` in the output, and both produce `round(len * to / from)` samples in total, so the
//! frame grid that follows lines up with the original recording.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, Resampler as RubatoResampler,
    SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use crate::error::{Error, ErrorKind, Result};

/// Input-side FFT block size the whole-clip resampler aims for. Bigger blocks move the
/// anti-aliasing cutoff closer to Nyquist at a logarithmic cost per sample; 2048 gives a
/// cutoff above 0.98 × Nyquist for common rate pairs.
const FFT_TARGET_BLOCK: usize = 2048;

/// Length of the streaming resampler's sinc filter, in input samples (a multiple of 8, as
/// rubato requires; rubato's documented high-quality setting).
const STREAM_SINC_LEN: usize = 256;

/// Sub-sample positions tabulated for the streaming sinc filter.
const STREAM_OVERSAMPLING: usize = 256;

/// Input frames handed to the streaming resampler per call.
const STREAM_CHUNK: usize = 1024;

/// Largest number of leading zeros the stream resampler adds to make its delay a whole
/// number of output samples (see [`StreamResampler::new`]).
const STREAM_MAX_ALIGN_ZEROS: usize = 1024;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `round(len * to / from)` in exact integer arithmetic (ties away from zero), the output
/// length every resampler here produces.
pub fn resampled_len(len: usize, from_hz: u32, to_hz: u32) -> usize {
    if from_hz == 0 {
        return 0;
    }
    let num = len as u128 * u128::from(to_hz);
    let den = u128::from(from_hz);
    ((2 * num + den) / (2 * den)) as usize
}

fn check_rates(from_hz: u32, to_hz: u32) -> Result<()> {
    if from_hz == 0 || to_hz == 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "cannot resample from {from_hz} Hz to {to_hz} Hz: sample rates must be positive"
            ),
        ));
    }
    Ok(())
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
}

/// A whole-clip resampler planned once for a `(from_hz, to_hz)` pair and reused for any
/// number of clips.
///
/// Uses rubato's FFT resampler with both chunk sizes fixed. The FFT block is chosen as an
/// even multiple of the smallest block the rate pair allows, which makes the filter delay
/// exactly `fft_size_out / 2` output samples, a whole number, so trimming it leaves the
/// output aligned with the input to within a fraction of a sample at every frequency.
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` when the rates are equal: the identity needs no filter.
    inner: Option<Fft<f32>>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from_hz", &self.from_hz)
            .field("to_hz", &self.to_hz)
            .finish()
    }
}

impl Resampler {
    /// Plans a resampler from `from_hz` to `to_hz`. Fails with
    /// [`ErrorKind::InvalidConfig`] when either rate is zero.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self> {
        check_rates(from_hz, to_hz)?;
        if from_hz == to_hz {
            return Ok(Self { from_hz, to_hz, inner: None });
        }
        let g = gcd(u64::from(from_hz), u64::from(to_hz));
        let min_in = (u64::from(from_hz) / g) as usize;
        // rubato's block is `chunks * min_in` input samples; an even number of chunks makes
        // both block sizes even (the two minimal blocks are coprime, so at most one is
        // even), which puts the sinc's centre, and therefore the delay, on a whole output
        // sample.
        let chunks = FFT_TARGET_BLOCK.div_ceil(min_in).max(2).next_multiple_of(2);
        let fft = Fft::<f32>::new_custom(
            from_hz as usize,
            to_hz as usize,
            chunks * min_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .map_err(|e| internal("planning the resampler", e))?;
        Ok(Self { from_hz, to_hz, inner: Some(fft) })
    }

    /// The source rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// The target rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Resamples a whole clip; the result has `round(y.len() * to / from)` samples.
    pub fn process(&mut self, y: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.process_into(y, &mut out)?;
        Ok(out)
    }

    /// [`Resampler::process`] writing into a caller buffer (replaced, capacity reused).
    pub fn process_into(&mut self, y: &[f32], out: &mut Vec<f32>) -> Result<()> {
        out.clear();
        let want = resampled_len(y.len(), self.from_hz, self.to_hz);
        let Some(fft) = self.inner.as_mut() else {
            out.extend_from_slice(y);
            return Ok(());
        };
        if y.is_empty() {
            return Ok(());
        }
        // process_all_into_buffer trims rubato's reported delay (fft_size_out / 2, exact
        // here by construction) and writes ceil(len * ratio) samples; we keep the rounded
        // length so lengths agree with librosa-style `round` everywhere else.
        fft.reset();
        let needed = fft.process_all_needed_output_len(y.len());
        out.resize(needed, 0.0);
        let input = InterleavedSlice::new(y, 1, y.len())
            .map_err(|e| internal("wrapping resampler input", e))?;
        let mut output = InterleavedSlice::new_mut(out.as_mut_slice(), 1, needed)
            .map_err(|e| internal("wrapping resampler output", e))?;
        let (_, produced) = fft
            .process_all_into_buffer(&input, &mut output, y.len(), None)
            .map_err(|e| internal("resampling", e))?;
        out.truncate(produced.min(want));
        // ceil ≥ round, so this only pads if rubato ever returned short; keep the contract.
        out.resize(want, 0.0);
        Ok(())
    }
}

/// Resamples a whole clip from `from_hz` to `to_hz` (plans a [`Resampler`] for one use; keep
/// a [`Resampler`] when converting many clips at the same rates).
pub fn resample(y: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>> {
    Resampler::new(from_hz, to_hz)?.process(y)
}

/// A resampler for live streams: accepts chunks of any size and emits output as soon as
/// rubato has a full input block.
///
/// Output is aligned with the input like [`Resampler`]'s: the filter delay is dropped from the
/// front of the output. rubato's asynchronous sinc resampler has a delay that is generally
/// not a whole number of output samples, so the stream starts with a few zero samples of
/// padding chosen to bring the total delay as close as possible to a whole number of output
/// samples, and then drops exactly that many samples. What is left is a sub-sample offset of
/// at most half of `gcd(from, to) / to` samples plus 1/768 of an input sample (rubato's sinc
/// table granularity): 0.0013 samples for 48 → 16 kHz, 0.003 for 44.1 → 48 kHz, enough to
/// keep the stream within -50 dB of [`Resampler`]'s output below 5 kHz. After [`StreamResampler::finish`]
/// the total output length is `round(total_in * to / from)`, as for a whole clip.
pub struct StreamResampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` when the rates are equal.
    inner: Option<Async<f32>>,
    /// Input waiting for a full rubato block.
    pending: Vec<f32>,
    /// Scratch for one rubato output block.
    scratch: Vec<f32>,
    /// Leading output samples still to drop (the filter delay).
    skip: usize,
    /// Skip count restored on [`StreamResampler::finish`].
    initial_skip: usize,
    /// Zero samples prepended on start and after each finish.
    align_zeros: usize,
    /// Real input samples accepted since the stream started.
    total_in: usize,
    /// Output samples returned since the stream started.
    total_out: usize,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from_hz", &self.from_hz)
            .field("to_hz", &self.to_hz)
            .field("skip", &self.skip)
            .field("align_zeros", &self.align_zeros)
            .field("total_in", &self.total_in)
            .field("total_out", &self.total_out)
            .finish()
    }
}

impl StreamResampler {
    /// A stream resampler from `from_hz` to `to_hz`. Fails with
    /// [`ErrorKind::InvalidConfig`] when either rate is zero.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self> {
        check_rates(from_hz, to_hz)?;
        let mut s = Self {
            from_hz,
            to_hz,
            inner: None,
            pending: Vec::new(),
            scratch: Vec::new(),
            skip: 0,
            initial_skip: 0,
            align_zeros: 0,
            total_in: 0,
            total_out: 0,
        };
        if from_hz == to_hz {
            return Ok(s);
        }
        let ratio = f64::from(to_hz) / f64::from(from_hz);
        let params =
            SincInterpolationParameters::new(STREAM_SINC_LEN, WindowFunction::BlackmanHarris2)
                .oversampling_factor(STREAM_OVERSAMPLING)
                .interpolation(SincInterpolationType::Cubic);
        let inner = Async::<f32>::new_sinc(ratio, 1.0, &params, STREAM_CHUNK, 1, FixedAsync::Input)
            .map_err(|e| internal("planning the stream resampler", e))?;
        s.scratch = vec![0.0; inner.output_frames_max()];
        s.inner = Some(inner);

        // Where rubato's sinc resampler puts its output: output k is the input evaluated at
        // k / ratio - d input samples, with d = N/2 - 1/ratio - 1/F for a filter of N taps
        // tabulated at F sub-sample positions (the first output is one step past its start
        // index of -(N - 1), and sinc table s peaks at tap N/2 - 1 + (s + 1)/F). rubato
        // reports floor(N·ratio/2), which can be off by a sample and ignores the fraction,
        // so derive it here. z leading zeros make it (d + z)·ratio; pick the z that puts
        // that closest to a whole number, then drop that many output samples.
        let n = STREAM_SINC_LEN.next_multiple_of(8) as f64;
        let d_in = n / 2.0 - 1.0 / ratio - 1.0 / STREAM_OVERSAMPLING as f64;
        let g = gcd(u64::from(from_hz), u64::from(to_hz));
        // (d + z)·ratio mod 1 repeats with period from/g in z.
        let period = ((u64::from(from_hz) / g) as usize).min(STREAM_MAX_ALIGN_ZEROS);
        let z0 = if d_in < 0.0 { (-d_in).ceil() as usize } else { 0 };
        let mut best = (f64::INFINITY, z0);
        for z in z0..z0 + period {
            let d_out = (d_in + z as f64) * ratio;
            let err = (d_out - d_out.round()).abs();
            if err < best.0 - 1e-9 {
                best = (err, z);
            }
        }
        s.align_zeros = best.1;
        s.initial_skip = ((d_in + best.1 as f64) * ratio).round().max(0.0) as usize;
        s.skip = s.initial_skip;
        s.pending.resize(s.align_zeros, 0.0);
        Ok(s)
    }

    /// The source rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// The target rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Feeds `chunk` (any length, including zero) and returns the output that is ready.
    pub fn push(&mut self, chunk: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.push_into(chunk, &mut out)?;
        Ok(out)
    }

    /// [`StreamResampler::push`] appending to a caller buffer (not cleared, so a caller can
    /// collect a whole stream in one vector).
    pub fn push_into(&mut self, chunk: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.total_in += chunk.len();
        if self.inner.is_none() {
            out.extend_from_slice(chunk);
            self.total_out += chunk.len();
            return Ok(());
        }
        self.pending.extend_from_slice(chunk);
        let mut consumed = 0;
        while self.pending.len() - consumed >= STREAM_CHUNK {
            self.run_block(consumed, None, out)?;
            consumed += STREAM_CHUNK;
        }
        // One shift per push rather than per block keeps buffering linear in the input.
        self.pending.drain(..consumed);
        Ok(())
    }

    /// Flushes the filter's tail and returns the last samples, so that the whole stream's
    /// output has `round(total_in * to / from)` samples. The resampler is then ready for a
    /// new, independent stream.
    pub fn finish(&mut self) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.finish_into(&mut out)?;
        Ok(out)
    }

    /// [`StreamResampler::finish`] appending to a caller buffer.
    pub fn finish_into(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let want = resampled_len(self.total_in, self.from_hz, self.to_hz);
        if self.inner.is_some() {
            // The last partial block, then silence until the delayed tail has come out.
            let mut partial = self.pending.len();
            // Every block yields at least one sample, so this bound is never the reason the
            // loop ends; it only rules out spinning forever on a misbehaving resampler.
            let limit = want.saturating_sub(self.total_out) + self.skip + 4;
            for _ in 0..limit {
                if self.total_out >= want {
                    break;
                }
                self.run_block(0, Some(partial), out)?;
                self.pending.clear();
                partial = 0;
            }
            let over = self.total_out.saturating_sub(want);
            out.truncate(out.len().saturating_sub(over));
            if let Some(inner) = self.inner.as_mut() {
                inner.reset();
            }
        } else if self.total_out < want {
            out.resize(out.len() + (want - self.total_out), 0.0);
        }
        self.pending.clear();
        self.pending.resize(self.align_zeros, 0.0);
        self.skip = self.initial_skip;
        self.total_in = 0;
        self.total_out = 0;
        Ok(())
    }

    /// Runs one rubato block from `pending[offset..]` (or a partial/silent block when
    /// `partial` is set) and appends its output, minus any delay still to drop.
    fn run_block(
        &mut self,
        offset: usize,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        // A zero-length slice cannot be wrapped for `partial_len = 0`; give rubato a
        // one-sample dummy that it is told not to read.
        let dummy = [0.0f32];
        let src: &[f32] =
            if self.pending.len() > offset { &self.pending[offset..] } else { &dummy };
        let frames = match partial {
            Some(p) => p.min(src.len()),
            None => STREAM_CHUNK,
        };
        let input = InterleavedSlice::new(src, 1, frames.max(1))
            .map_err(|e| internal("wrapping stream input", e))?;
        let cap = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(self.scratch.as_mut_slice(), 1, cap)
            .map_err(|e| internal("wrapping stream output", e))?;
        let indexing = partial.map(|p| Indexing::new().partial_len(p.min(src.len())));
        let (_, produced) = inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| internal("resampling stream", e))?;
        let produced = produced.min(cap);
        let drop = self.skip.min(produced);
        self.skip -= drop;
        out.extend_from_slice(&self.scratch[drop..produced]);
        self.total_out += produced - drop;
        Ok(())
    }
}
