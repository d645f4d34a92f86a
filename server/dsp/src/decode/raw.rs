//! Headerless PCM: the format comes from the caller (a request field), the bytes from the
//! client. One-shot ([`decode_raw`]) and streaming ([`RawPcmStream`]) share one code path, so
//! chunking can never change the result.

use super::{DecodeLimits, non_finite_error};
use crate::{Audio, Error, ErrorKind, Result};

/// The sample encoding of raw PCM bytes (always interleaved, little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcmEncoding {
    /// Signed 16-bit integers, scaled by 1/32768.
    S16Le,
    /// IEEE 754 single-precision floats, passed through (must be finite).
    F32Le,
}

impl PcmEncoding {
    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            PcmEncoding::S16Le => 2,
            PcmEncoding::F32Le => 4,
        }
    }

    /// A short name for messages (`"s16le"`, `"f32le"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PcmEncoding::S16Le => "s16le",
            PcmEncoding::F32Le => "f32le",
        }
    }
}

/// How to read headerless PCM: the caller states what the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawPcmFormat {
    /// Sample encoding.
    pub encoding: PcmEncoding,
    /// Samples per second, per channel.
    pub sample_rate: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
}

impl RawPcmFormat {
    /// Bytes per frame (one sample for each channel).
    pub fn frame_bytes(&self) -> usize {
        usize::from(self.channels) * self.encoding.bytes_per_sample()
    }

    /// Checks the format against `limits`. The format is a request argument, not file content,
    /// so a bad value is [`ErrorKind::InvalidConfig`].
    fn validate(&self, limits: &DecodeLimits) -> Result<()> {
        limits.validate()?;
        let invalid = |m: String| Err(Error::new(ErrorKind::InvalidConfig, m));
        if self.sample_rate == 0 {
            return invalid("raw PCM sample rate is 0 Hz; it must be above zero".to_owned());
        }
        if self.channels == 0 {
            return invalid("raw PCM has 0 channels; it must have at least one".to_owned());
        }
        if self.sample_rate > limits.max_sample_rate {
            return invalid(format!(
                "raw PCM sample rate {} Hz is above the {} Hz accepted",
                self.sample_rate, limits.max_sample_rate
            ));
        }
        if usize::from(self.channels) > limits.max_channels {
            return invalid(format!(
                "raw PCM has {} channels, more than the {} accepted",
                self.channels, limits.max_channels
            ));
        }
        Ok(())
    }

    fn frame_description(&self) -> String {
        format!(
            "{}-byte frame ({} channel{} × {}-byte {} samples)",
            self.frame_bytes(),
            self.channels,
            if self.channels == 1 { "" } else { "s" },
            self.encoding.bytes_per_sample(),
            self.encoding.as_str()
        )
    }
}

/// Decodes a complete buffer of interleaved little-endian PCM in `format` into planar
/// channels. Refuses a bad format ([`ErrorKind::InvalidConfig`]), empty input
/// ([`ErrorKind::NoAudio`]), a byte count that is not a whole number of frames
/// ([`ErrorKind::Malformed`], naming both numbers), NaN or infinite floats
/// ([`ErrorKind::NonFiniteSamples`], naming the first) and audio over the limits
/// ([`ErrorKind::TooLong`]). Equivalent to feeding the bytes to a [`RawPcmStream`] in any
/// chunking.
pub fn decode_raw(bytes: &[u8], format: &RawPcmFormat, limits: &DecodeLimits) -> Result<Audio> {
    let mut stream = RawPcmStream::new(*format, limits)?;
    limits.check_input_size(bytes.len())?;
    if bytes.is_empty() {
        return Err(Error::new(ErrorKind::NoAudio, "raw PCM input is empty (0 bytes)"));
    }
    let frame = format.frame_bytes();
    if !bytes.len().is_multiple_of(frame) {
        return Err(Error::new(
            ErrorKind::Malformed,
            format!(
                "raw PCM input is {} bytes, not a multiple of the {}",
                bytes.len(),
                format.frame_description()
            ),
        ));
    }
    let frames = bytes.len() / frame;
    limits.check_frames(frames as u64, format.sample_rate, "raw PCM audio")?;
    // Safe to size from: the frame count comes from the bytes present, not a header.
    let mut channels: Vec<Vec<f32>> =
        (0..format.channels).map(|_| Vec::with_capacity(frames)).collect();
    stream.push_planar(bytes, &mut channels)?;
    stream.finish()?;
    Ok(Audio { sample_rate: format.sample_rate, channels })
}

/// Incremental raw PCM decoding for audio that arrives in pieces (a gRPC stream, a socket).
///
/// Chunks may have any byte length: a frame split across chunks is carried over. Each push
/// applies the same checks as [`decode_raw`] (finite samples, length limit) and either
/// appends all of the chunk's whole frames to the output or, on error, nothing; after an
/// error the stream refuses every further push with the same error. Call
/// [`finish`](Self::finish) at the end to catch a trailing partial frame or an empty stream.
#[derive(Debug, Clone)]
pub struct RawPcmStream {
    format: RawPcmFormat,
    max_frames: u64,
    max_duration_secs: f64,
    max_input_bytes: usize,
    /// Bytes of an incomplete frame, always fewer than one frame.
    carry: Vec<u8>,
    /// One frame of decoded samples, reused.
    frame: Vec<f32>,
    frames: u64,
    bytes_seen: u64,
    failed: Option<Error>,
}

impl RawPcmStream {
    /// Starts a stream of `format`, refusing a format outside `limits`.
    pub fn new(format: RawPcmFormat, limits: &DecodeLimits) -> Result<Self> {
        format.validate(limits)?;
        Ok(Self {
            format,
            max_frames: limits.max_frames(format.sample_rate),
            max_duration_secs: limits.max_duration_secs,
            max_input_bytes: limits.max_input_bytes,
            carry: Vec::with_capacity(format.frame_bytes()),
            frame: vec![0.0; usize::from(format.channels)],
            frames: 0,
            bytes_seen: 0,
            failed: None,
        })
    }

    /// The stream's format.
    pub fn format(&self) -> &RawPcmFormat {
        &self.format
    }

    /// Whole frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Seconds decoded so far.
    pub fn duration_secs(&self) -> f64 {
        self.frames as f64 / f64::from(self.format.sample_rate)
    }

    /// Bytes of an incomplete frame waiting for the next chunk.
    pub fn pending_bytes(&self) -> usize {
        self.carry.len()
    }

    /// Decodes `chunk`, appending each channel's samples to `out` (resized to the channel
    /// count if it is not already). Returns the number of frames appended.
    pub fn push_planar(&mut self, chunk: &[u8], out: &mut Vec<Vec<f32>>) -> Result<usize> {
        let channels = usize::from(self.format.channels);
        if out.len() != channels {
            out.resize_with(channels, Vec::new);
        }
        let before: Vec<usize> = out.iter().map(Vec::len).collect();
        let result = self.push_with(chunk, &mut Planar(out));
        if result.is_err() {
            // All or nothing: drop what this chunk appended before the error.
            for (dst, len) in out.iter_mut().zip(before) {
                dst.truncate(len);
            }
        }
        result
    }

    /// Decodes `chunk`, appending the mean of the channels of each frame to `out` (the
    /// mixdown librosa uses). Returns the number of frames appended.
    pub fn push_mono(&mut self, chunk: &[u8], out: &mut Vec<f32>) -> Result<usize> {
        let before = out.len();
        let result = self.push_with(chunk, &mut Mono(out));
        if result.is_err() {
            out.truncate(before);
        }
        result
    }

    /// Ends the stream: returns the total frames, or an error if the bytes did not end on a
    /// frame boundary, no frame arrived, or an earlier push failed.
    pub fn finish(self) -> Result<u64> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if !self.carry.is_empty() {
            return Err(Error::new(
                ErrorKind::Malformed,
                format!(
                    "raw PCM stream ended mid-frame: its {} bytes are not a multiple of the {}; {} stray byte{} at the end",
                    self.bytes_seen,
                    self.format.frame_description(),
                    self.carry.len(),
                    if self.carry.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        if self.frames == 0 {
            return Err(Error::new(ErrorKind::NoAudio, "raw PCM stream is empty (0 bytes)"));
        }
        Ok(self.frames)
    }

    /// The shared decoding loop: checks the chunk, then hands its whole frames to `sink`.
    fn push_with(&mut self, chunk: &[u8], sink: &mut dyn Sink) -> Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.push_checked(chunk, sink);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn push_checked(&mut self, chunk: &[u8], sink: &mut dyn Sink) -> Result<usize> {
        let fb = self.format.frame_bytes();
        let seen = self.bytes_seen.saturating_add(chunk.len() as u64);
        if seen > self.max_input_bytes as u64 {
            return Err(Error::new(
                ErrorKind::TooLong,
                format!(
                    "raw PCM stream is {seen} bytes, over the limit of {} bytes",
                    self.max_input_bytes
                ),
            ));
        }
        let new_frames = ((self.carry.len() + chunk.len()) / fb) as u64;
        let total = self.frames + new_frames;
        if total > self.max_frames {
            return Err(Error::new(
                ErrorKind::TooLong,
                format!(
                    "raw PCM audio runs past the limit of {} s ({total} frames at {} Hz)",
                    self.max_duration_secs, self.format.sample_rate
                ),
            ));
        }
        // Validate before emitting anything, so a failing chunk appends nothing even for
        // callers that do not roll back.
        let (head, rest) = if self.carry.is_empty() {
            (None, chunk)
        } else {
            let need = (fb - self.carry.len()).min(chunk.len());
            (Some(&chunk[..need]), &chunk[need..])
        };
        let whole = rest.len() / fb * fb;
        if self.format.encoding == PcmEncoding::F32Le {
            let mut joined = Vec::new();
            if let Some(head) = head.filter(|h| self.carry.len() + h.len() == fb) {
                joined.extend_from_slice(&self.carry);
                joined.extend_from_slice(head);
            }
            let frames = joined.chunks_exact(fb).chain(rest[..whole].chunks_exact(fb));
            for (i, frame) in frames.enumerate() {
                for (c, b) in frame.chunks_exact(4).enumerate() {
                    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if !v.is_finite() {
                        let channels = usize::from(self.format.channels);
                        return Err(non_finite_error(self.frames + i as u64, c, channels, v));
                    }
                }
            }
        }

        // Checks passed: emit.
        let mut emitted = 0usize;
        if let Some(head) = head {
            self.carry.extend_from_slice(head);
            if self.carry.len() < fb {
                self.bytes_seen = seen;
                return Ok(0);
            }
            let carry = std::mem::take(&mut self.carry);
            self.decode_frame(&carry, sink);
            self.carry = carry;
            self.carry.clear();
            emitted += 1;
        }
        sink.frames(self.format.encoding, usize::from(self.format.channels), &rest[..whole]);
        emitted += whole / fb;
        self.carry.extend_from_slice(&rest[whole..]);
        self.frames += emitted as u64;
        self.bytes_seen = seen;
        Ok(emitted)
    }

    fn decode_frame(&mut self, bytes: &[u8], sink: &mut dyn Sink) {
        let size = self.format.encoding.bytes_per_sample();
        for (dst, b) in self.frame.iter_mut().zip(bytes.chunks_exact(size)) {
            *dst = self.format.encoding.sample(b);
        }
        sink.frame(&self.frame);
    }
}

impl PcmEncoding {
    /// One sample from its little-endian bytes (exactly `bytes_per_sample` of them).
    fn sample(self, b: &[u8]) -> f32 {
        match (self, b) {
            (PcmEncoding::S16Le, &[b0, b1]) => s16_sample([b0, b1]),
            (PcmEncoding::F32Le, &[b0, b1, b2, b3]) => f32_sample([b0, b1, b2, b3]),
            _ => 0.0,
        }
    }
}

/// Where decoded frames go. Whole runs of frames arrive as bytes, so each sink converts them
/// in one tight loop per channel (this is the hot path of every raw and WAV decode); only a
/// frame that was split across chunks arrives decoded.
trait Sink {
    /// One decoded frame, a sample per channel.
    fn frame(&mut self, frame: &[f32]);
    /// Whole interleaved frames, already validated.
    fn frames(&mut self, encoding: PcmEncoding, channels: usize, bytes: &[u8]);
}

/// Appends to one buffer per channel.
struct Planar<'a>(&'a mut Vec<Vec<f32>>);

impl Sink for Planar<'_> {
    fn frame(&mut self, frame: &[f32]) {
        for (dst, &s) in self.0.iter_mut().zip(frame) {
            dst.push(s);
        }
    }

    fn frames(&mut self, encoding: PcmEncoding, channels: usize, bytes: &[u8]) {
        match encoding {
            PcmEncoding::S16Le => deinterleave(self.0, channels, bytes.as_chunks().0, s16_sample),
            PcmEncoding::F32Le => deinterleave(self.0, channels, bytes.as_chunks().0, f32_sample),
        }
    }
}

/// Appends the mean of each frame's channels.
struct Mono<'a>(&'a mut Vec<f32>);

impl Sink for Mono<'_> {
    fn frame(&mut self, frame: &[f32]) {
        self.0.push(mean(frame));
    }

    fn frames(&mut self, encoding: PcmEncoding, channels: usize, bytes: &[u8]) {
        match encoding {
            PcmEncoding::S16Le => mix(self.0, channels, bytes.as_chunks().0, s16_sample),
            PcmEncoding::F32Le => mix(self.0, channels, bytes.as_chunks().0, f32_sample),
        }
    }
}

fn s16_sample(b: [u8; 2]) -> f32 {
    f32::from(i16::from_le_bytes(b)) / 32768.0
}

fn f32_sample(b: [u8; 4]) -> f32 {
    f32::from_le_bytes(b)
}

/// Interleaved `samples` into one buffer per channel. One loop per encoding and channel, over
/// fixed-size arrays, so the compiler vectorises the common mono case.
fn deinterleave<const N: usize>(
    out: &mut [Vec<f32>],
    channels: usize,
    samples: &[[u8; N]],
    sample: impl Fn([u8; N]) -> f32,
) {
    if channels == 1 {
        if let Some(dst) = out.first_mut() {
            dst.extend(samples.iter().map(|&b| sample(b)));
        }
        return;
    }
    for (c, dst) in out.iter_mut().enumerate().take(channels) {
        dst.extend(samples.chunks_exact(channels).map(|frame| sample(frame[c])));
    }
}

/// Interleaved `samples` mixed down to their per-frame channel mean.
fn mix<const N: usize>(
    out: &mut Vec<f32>,
    channels: usize,
    samples: &[[u8; N]],
    sample: impl Fn([u8; N]) -> f32,
) {
    if channels == 1 {
        out.extend(samples.iter().map(|&b| sample(b)));
        return;
    }
    let mut frame = vec![0.0f32; channels];
    for whole in samples.chunks_exact(channels) {
        for (dst, &b) in frame.iter_mut().zip(whole) {
            *dst = sample(b);
        }
        out.push(mean(&frame));
    }
}

/// The channel mean of one frame, summed in channel order (as the mixdown does).
fn mean(frame: &[f32]) -> f32 {
    if frame.len() == 1 { frame[0] } else { frame.iter().sum::<f32>() * (1.0 / frame.len() as f32) }
}
