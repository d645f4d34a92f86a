//! Decoding untrusted audio bytes into an [`Audio`] buffer.
//!
//! Everything here assumes the bytes come from someone who may be careless or hostile, so the
//! design is layered: first a cheap sniff of the leading bytes names the container (formats
//! we refuse, such as Opus, are refused by name before any decoder runs, and text or random
//! bytes never reach a decoder); for WAV, a small validating pass over the RIFF chunks checks
//! every `fmt ` field and the data size against the bytes actually present, so a lying header
//! is refused with a message that names both numbers and the duration limit is enforced before
//! a single sample is decoded; then symphonia demuxes and decodes the default audio track
//! while we check each decoded packet (sample rate and channel count stay constant, samples
//! are finite, the running length stays under [`DecodeLimits::max_duration_secs`], so memory
//! stays bounded even for a compression bomb whose header lies about its length). Nothing is
//! allocated from a header field that has not been checked against the input size or a limit.
//! Symphonia is a large body of parsing code we do not control, so the whole decode runs under
//! [`std::panic::catch_unwind`] as a last line of defence and a panic becomes a
//! [`ErrorKind::Malformed`] error. Raw PCM (no container) has its own path, [`decode_raw`],
//! and a streaming variant, [`RawPcmStream`], that the server can feed chunk by chunk.
//!
//! Integer samples are scaled the way libsndfile (and so librosa) does: `s16 / 32768`,
//! `s24 / 2^23`, `s32 / 2^31`, `(u8 - 128) / 128`; float samples pass through unchanged.
//! MP3 and Vorbis encoder delay and padding are trimmed (symphonia's gapless mode), so a lossy
//! file decodes to the length of the audio that was encoded.

mod container;
mod raw;
mod sniff;
mod wav;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{Audio, Error, ErrorKind, Result};

pub use raw::{PcmEncoding, RawPcmFormat, RawPcmStream, decode_raw};
pub use sniff::sniff_format;

/// What clients are told to send instead when their input is refused.
pub(crate) const SUPPORTED_HINT: &str =
    "send WAV, AIFF, FLAC, MP3, Ogg Vorbis or AAC/M4A, or raw PCM";

/// Bounds on what [`decode`] and [`decode_raw`] accept, so one request cannot exhaust memory
/// or CPU. The defaults suit speech clips of up to ten minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeLimits {
    /// Longest audio accepted, in seconds (default 600).
    pub max_duration_secs: f64,
    /// Most channels accepted (default 16).
    pub max_channels: usize,
    /// Highest sample rate accepted, in Hz (default 384,000).
    pub max_sample_rate: u32,
    /// Largest input accepted, in bytes (default 256 MiB).
    pub max_input_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_duration_secs: 600.0,
            max_channels: 16,
            max_sample_rate: 384_000,
            max_input_bytes: 256 * 1024 * 1024,
        }
    }
}

impl DecodeLimits {
    /// Checks that the limits themselves make sense (a NaN duration would let everything
    /// through, a zero channel limit would refuse everything with a confusing message).
    pub fn validate(&self) -> Result<()> {
        if !(self.max_duration_secs.is_finite() && self.max_duration_secs > 0.0) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "max_duration_secs must be a positive number, got {}",
                    self.max_duration_secs
                ),
            ));
        }
        if self.max_channels == 0 || self.max_sample_rate == 0 || self.max_input_bytes == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "max_channels, max_sample_rate and max_input_bytes must all be above zero",
            ));
        }
        Ok(())
    }

    /// The most frames (samples per channel) allowed at `sample_rate`.
    pub fn max_frames(&self, sample_rate: u32) -> u64 {
        // `as` saturates for floats, and validate() has ruled out NaN and negatives.
        (self.max_duration_secs * f64::from(sample_rate)).floor() as u64
    }

    /// Refuses an input larger than `max_input_bytes` before anything looks inside it.
    pub(crate) fn check_input_size(&self, len: usize) -> Result<()> {
        if len > self.max_input_bytes {
            return Err(Error::new(
                ErrorKind::TooLong,
                format!("input is {len} bytes, over the limit of {} bytes", self.max_input_bytes),
            ));
        }
        Ok(())
    }

    /// Refuses a stream whose known length `frames` at `sample_rate` is over the limit.
    pub(crate) fn check_frames(&self, frames: u64, sample_rate: u32, what: &str) -> Result<()> {
        if frames > self.max_frames(sample_rate) {
            return Err(Error::new(
                ErrorKind::TooLong,
                format!(
                    "{what} is {:.1} s long ({frames} frames at {sample_rate} Hz), over the limit of {} s",
                    frames as f64 / f64::from(sample_rate.max(1)),
                    self.max_duration_secs
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a channel count or sample rate that is zero (a broken header) or above the
    /// limits (a valid file we choose not to take).
    pub(crate) fn check_shape(&self, channels: usize, sample_rate: u32, what: &str) -> Result<()> {
        if channels == 0 {
            return Err(Error::new(ErrorKind::Malformed, format!("{what} declares zero channels")));
        }
        if sample_rate == 0 {
            return Err(Error::new(
                ErrorKind::Malformed,
                format!("{what} declares a sample rate of 0 Hz"),
            ));
        }
        if channels > self.max_channels {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{what} has {channels} channels, more than the {} accepted",
                    self.max_channels
                ),
            ));
        }
        if sample_rate > self.max_sample_rate {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{what} has a sample rate of {sample_rate} Hz, above the {} Hz accepted",
                    self.max_sample_rate
                ),
            ));
        }
        Ok(())
    }
}

/// Decodes a complete audio file held in `bytes` into planar f32 channels at the file's own
/// sample rate.
///
/// The container is recognised from the bytes themselves (no file name needed): WAV (u8, s16,
/// s24, s32, f32/f64, A-law, µ-law), FLAC, MP3, Ogg Vorbis, AAC in MP4/M4A or ADTS. All of the
/// default audio track is decoded. Refusals are typed: [`ErrorKind::UnsupportedFormat`] for
/// Opus (named), other containers, text and unrecognised bytes; [`ErrorKind::Malformed`] for
/// truncated or lying headers, zero channels or sample rate and streams that fail to decode;
/// [`ErrorKind::NoAudio`] for empty input or a stream with no samples;
/// [`ErrorKind::NonFiniteSamples`] for NaN or infinity (naming the first bad sample);
/// [`ErrorKind::TooLong`] for input over `limits`. Never panics.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Audio> {
    // Last line of defence: symphonia is a lot of parsing code we do not own. A panic there
    // must cost one request, not the server. (Our own code is written not to panic either.)
    match catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, limits))) {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            let name = sniff_format(bytes).unwrap_or("audio");
            Err(Error::new(
                ErrorKind::Malformed,
                format!(
                    "the {name} decoder failed on this input ({detail}); the file is probably corrupt"
                ),
            ))
        }
    }
}

fn decode_unguarded(bytes: &[u8], limits: &DecodeLimits) -> Result<Audio> {
    limits.validate()?;
    if bytes.is_empty() {
        return Err(Error::new(
            ErrorKind::NoAudio,
            format!("input is empty (0 bytes); {SUPPORTED_HINT}"),
        ));
    }
    limits.check_input_size(bytes.len())?;

    match sniff_format(bytes) {
        Some("Ogg Opus") => Err(opus_error()),
        Some(name) if !sniff::is_decodable(name) => Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!("{name} is not supported; {SUPPORTED_HINT}"),
        )),
        Some("WAV") => {
            // Catch lying headers with a precise message before symphonia sees them, and
            // learn the exact frame count so the output is allocated once.
            let info = wav::validate(bytes, limits)?;
            let audio = match info.pcm {
                // The common encodings are plain interleaved samples behind a header that was
                // just checked: read them as raw PCM (same scaling, same checks, no copies
                // through symphonia's buffers). `wav_pcm_reads_as_symphonia_does` holds the
                // two paths to the same samples.
                Some(encoding) => {
                    let format = RawPcmFormat {
                        encoding,
                        sample_rate: info.sample_rate,
                        channels: info.channels,
                    };
                    decode_raw(&bytes[info.data.clone()], &format, limits)?
                }
                None => container::decode(bytes, limits, "WAV", Some(info.frames))?,
            };
            if audio.num_frames() as u64 != info.frames || audio.sample_rate != info.sample_rate {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    format!(
                        "WAV header describes {} frames at {} Hz but the data decoded to {} frames at {} Hz",
                        info.frames,
                        info.sample_rate,
                        audio.num_frames(),
                        audio.sample_rate
                    ),
                ));
            }
            Ok(audio)
        }
        Some(name) => container::decode(bytes, limits, name, None),
        None if sniff::looks_like_text(bytes) => Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "input is {} bytes of text, not audio (if it is base64, decode it first); {SUPPORTED_HINT}",
                bytes.len()
            ),
        )),
        // Every container we decode starts with a recognisable signature; refusing here keeps
        // random bytes away from symphonia's probe, which scans the whole input for a marker
        // and could otherwise "find" an MP3 frame in noise.
        None => Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "unrecognised audio format: the first bytes match no known container; {SUPPORTED_HINT}"
            ),
        )),
    }
}

/// The refusal for Opus, in one place so every path that meets Opus says the same thing.
pub(crate) fn opus_error() -> Error {
    Error::new(ErrorKind::UnsupportedFormat, format!("Opus is not supported; {SUPPORTED_HINT}"))
}

/// Finds the first non-finite sample of planar `channels` in interleaved (file) order,
/// returning its frame, channel and value, so errors can name the first bad sample.
pub(crate) fn first_non_finite<S: AsRef<[f32]>>(channels: &[S]) -> Option<(usize, usize, f32)> {
    let mut best: Option<(usize, usize, f32)> = None;
    for (c, plane) in channels.iter().enumerate() {
        // Only frames before the best so far can win: at the same frame a lower channel comes
        // first in interleaved order, and lower channels were searched first.
        let limit = best.map_or(usize::MAX, |(f, _, _)| f);
        let found = plane.as_ref().iter().take(limit).position(|v| !v.is_finite());
        if let Some(f) = found {
            best = Some((f, c, plane.as_ref()[f]));
        }
    }
    best
}

/// The [`ErrorKind::NonFiniteSamples`] error for a bad sample at global `frame`, `channel`.
pub(crate) fn non_finite_error(frame: u64, channel: usize, channels: usize, value: f32) -> Error {
    let index = frame.saturating_mul(channels as u64).saturating_add(channel as u64);
    Error::new(
        ErrorKind::NonFiniteSamples,
        format!(
            "sample {index} (frame {frame}, channel {channel}) is {value}; audio samples must be finite"
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A WAV file: `fmt ` with `tag`, `channels`, `bits`, then `extra` chunks and `data`;
    /// `data_size` overrides the data chunk's size field.
    fn wav(tag: u16, channels: u16, bits: u16, data: &[u8], data_size: Option<u32>) -> Vec<u8> {
        let rate = 16_000u32;
        let block = channels * bits / 8;
        let mut out = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        out.extend(16u32.to_le_bytes());
        out.extend(tag.to_le_bytes());
        out.extend(channels.to_le_bytes());
        out.extend(rate.to_le_bytes());
        out.extend((rate * u32::from(block)).to_le_bytes());
        out.extend(block.to_le_bytes());
        out.extend(bits.to_le_bytes());
        out.extend(b"JUNK\x03\0\0\0abc\0"); // an odd-sized chunk and its pad byte
        out.extend(b"data");
        out.extend(data_size.unwrap_or(data.len() as u32).to_le_bytes());
        out.extend(data);
        // A writer that cannot seek (ffmpeg to a pipe) leaves both sizes unknown.
        let riff = if data_size == Some(u32::MAX) { u32::MAX } else { (out.len() - 8) as u32 };
        out[4..8].copy_from_slice(&riff.to_le_bytes());
        out
    }

    /// Both paths on `bytes`: the raw PCM reading `decode` takes, and symphonia's.
    fn both(bytes: &[u8]) -> (Audio, Audio) {
        let limits = DecodeLimits::default();
        let info = wav::validate(bytes, &limits).unwrap();
        assert!(info.pcm.is_some(), "not an encoding the fast path reads");
        let fast = decode(bytes, &limits).unwrap();
        let reference = container::decode(bytes, &limits, "WAV", Some(info.frames)).unwrap();
        (fast, reference)
    }

    fn assert_same(fast: &Audio, reference: &Audio, what: &str) {
        assert_eq!(fast.sample_rate, reference.sample_rate, "{what}: rate");
        assert_eq!(fast.channels.len(), reference.channels.len(), "{what}: channels");
        for (c, (a, b)) in fast.channels.iter().zip(&reference.channels).enumerate() {
            assert_eq!(a.len(), b.len(), "{what}: channel {c} length");
            let first = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(first, None, "{what}: channel {c} differs from symphonia");
        }
    }

    #[test]
    fn wav_pcm_reads_as_symphonia_does() {
        // Every 16-bit value, in a mono and an interleaved stereo file.
        let s16: Vec<u8> = (i16::MIN..=i16::MAX).flat_map(i16::to_le_bytes).collect();
        let (fast, reference) = both(&wav(1, 1, 16, &s16, None));
        assert_eq!(fast.num_frames(), 65_536);
        assert_same(&fast, &reference, "s16 mono");
        let (fast, reference) = both(&wav(1, 2, 16, &s16, None));
        assert_eq!(fast.channels[0][0], -1.0);
        assert_eq!(fast.channels[1][0], f32::from(i16::MIN + 1) / 32768.0);
        assert_same(&fast, &reference, "s16 stereo");
        // A trailing partial frame is dropped, and "size unknown" runs to the end of file.
        let (fast, reference) = both(&wav(1, 2, 16, &s16[..4 * 100 + 3], Some(u32::MAX)));
        assert_eq!(fast.num_frames(), 100);
        assert_same(&fast, &reference, "s16 stereo, unknown size, partial frame");
        // Float samples pass through bit for bit.
        let f32s: Vec<u8> = (0..3000)
            .map(|i| (i as f32 * 0.37).sin() * 1.5 - 0.2)
            .chain([0.0, -0.0, f32::MIN_POSITIVE, 1e-40, f32::MAX])
            .flat_map(f32::to_le_bytes)
            .collect();
        let (fast, reference) = both(&wav(3, 1, 32, &f32s, None));
        assert_same(&fast, &reference, "f32 mono");
        let (fast, reference) = both(&wav(3, 3, 32, &f32s[..4 * 3 * 1000], None));
        assert_same(&fast, &reference, "f32, three channels");

        // The shared fixtures in these encodings, when present.
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
        let mut checked = 0;
        for dir in ["tess", "ravdess", "formats"] {
            let Ok(entries) = std::fs::read_dir(fixtures.join(dir)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                if sniff_format(&bytes) != Some("WAV") {
                    continue;
                }
                let info = wav::validate(&bytes, &DecodeLimits::default()).unwrap();
                if info.pcm.is_some() {
                    let (fast, reference) = both(&bytes);
                    assert_same(&fast, &reference, &path.display().to_string());
                    checked += 1;
                }
            }
        }
        println!("{checked} fixture files decoded the same both ways");
    }

    #[test]
    fn a_non_finite_float_in_a_wav_is_named() {
        let data: Vec<u8> =
            [0.5f32, -0.5, 0.25, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        let error = decode(&wav(3, 2, 32, &data, None), &DecodeLimits::default()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NonFiniteSamples);
        assert!(error.to_string().contains("sample 3 (frame 1, channel 1) is NaN"), "{error}");
    }
}
