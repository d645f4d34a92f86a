//! A validating pass over a WAV file's RIFF chunks, run before symphonia.
//!
//! Symphonia reads WAV correctly, but when a header lies it reports a generic error (or, for a
//! data chunk longer than the file, quietly decodes what is there). This pass reads only the
//! chunk headers and the `fmt ` fields, checks each against the bytes actually present and the
//! limits, and refuses with a message naming the numbers involved.

use super::{DecodeLimits, PcmEncoding};
use crate::{Error, ErrorKind, Result};

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_ALAW: u16 = 0x0006;
const WAVE_FORMAT_MULAW: u16 = 0x0007;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// What the validated header says, with the data size already checked against the file.
#[derive(Debug, Clone)]
pub(crate) struct WavInfo {
    /// Samples per second.
    pub(crate) sample_rate: u32,
    /// Whole frames in the data chunk (a trailing partial frame is ignored, as decoders do).
    pub(crate) frames: u64,
    /// Interleaved channels.
    pub(crate) channels: u16,
    /// The bytes of those whole frames within the file.
    pub(crate) data: std::ops::Range<usize>,
    /// The samples' encoding when it is one that raw PCM decoding reads directly (16-bit
    /// integer or 32-bit float PCM); `None` for the encodings left to symphonia.
    pub(crate) pcm: Option<PcmEncoding>,
}

fn malformed(message: String) -> Error {
    Error::new(ErrorKind::Malformed, message)
}

fn u16_at(bytes: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(off..off + 4)?.try_into().ok()?))
}

/// A chunk id for messages: printable ASCII as is, anything else escaped, so a hostile id
/// cannot inject control characters into logs.
fn chunk_name(id: &[u8]) -> String {
    id.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect()
}

/// Checks the RIFF/WAVE structure of `bytes` (which start with `RIFF....WAVE`) and returns
/// the sample rate and frame count, or an error naming what is wrong.
pub(crate) fn validate(bytes: &[u8], limits: &DecodeLimits) -> Result<WavInfo> {
    if bytes.len() < 12 {
        return Err(malformed(format!(
            "WAV header is truncated: the file is {} bytes, a RIFF/WAVE header needs at least 12",
            bytes.len()
        )));
    }
    let mut fmt: Option<Fmt> = None;
    let mut pos = 12usize;
    loop {
        let remaining = bytes.len() - pos;
        if remaining < 8 {
            let what = if fmt.is_some() { "data" } else { "fmt " };
            return Err(malformed(if remaining == 0 {
                format!(
                    "WAV header is truncated: the file ends after {} bytes without a '{what}' chunk",
                    bytes.len()
                )
            } else {
                format!(
                    "WAV header is truncated: a chunk header at byte {pos} needs 8 bytes but only {remaining} are present"
                )
            }));
        }
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4).unwrap_or(0);
        let body = pos + 8;
        let available = bytes.len() - body;
        match id {
            b"fmt " => {
                if fmt.is_some() {
                    return Err(malformed("WAV file has two 'fmt ' chunks".to_owned()));
                }
                if size as usize > available {
                    return Err(malformed(format!(
                        "WAV header is truncated: the 'fmt ' chunk claims {size} bytes but only {available} are present"
                    )));
                }
                let parsed = Fmt::parse(&bytes[body..body + size as usize])?;
                parsed.check(limits)?;
                fmt = Some(parsed);
            }
            b"data" => {
                let Some(fmt) = fmt else {
                    return Err(malformed(
                        "WAV 'data' chunk comes before the 'fmt ' chunk".to_owned(),
                    ));
                };
                // ffmpeg writing to a pipe cannot seek back to fill in sizes and leaves
                // 0xFFFFFFFF: "until the end of the file". Symphonia reads those the same way.
                let data_len = if size == u32::MAX {
                    available
                } else if size as usize > available {
                    return Err(malformed(format!(
                        "WAV data chunk claims {size} bytes but only {available} are present: the file is truncated or its header lies"
                    )));
                } else {
                    size as usize
                };
                let block = usize::from(fmt.block_align);
                let frames = (data_len / block) as u64;
                if frames == 0 {
                    return Err(Error::new(
                        ErrorKind::NoAudio,
                        if data_len == 0 {
                            "WAV data chunk is empty".to_owned()
                        } else {
                            format!(
                                "WAV data chunk holds {data_len} bytes, less than one {block}-byte frame"
                            )
                        },
                    ));
                }
                limits.check_frames(frames, fmt.sample_rate, "WAV audio")?;
                let pcm = match (fmt.tag, fmt.bits) {
                    (WAVE_FORMAT_PCM, 16) => Some(PcmEncoding::S16Le),
                    (WAVE_FORMAT_IEEE_FLOAT, 32) => Some(PcmEncoding::F32Le),
                    _ => None,
                };
                // frames * block <= data_len <= available: the range lies within the file.
                let data = body..body + frames as usize * block;
                return Ok(WavInfo {
                    sample_rate: fmt.sample_rate,
                    frames,
                    channels: fmt.channels,
                    data,
                    pcm,
                });
            }
            _ => {
                if size as usize > available {
                    return Err(malformed(format!(
                        "WAV header is truncated: the '{}' chunk at byte {pos} claims {size} bytes but only {available} are present",
                        chunk_name(id)
                    )));
                }
            }
        }
        // Chunks are padded to an even size (the pad byte may be missing at the very end).
        // Cannot overflow: size <= available was checked above.
        pos = (body + size as usize + (size as usize & 1)).min(bytes.len());
    }
}

/// The `fmt ` chunk fields that matter.
#[derive(Debug, Clone, Copy)]
struct Fmt {
    /// The format tag, with WAVE_FORMAT_EXTENSIBLE resolved to its sub-format.
    tag: u16,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
    bits: u16,
}

impl Fmt {
    fn parse(body: &[u8]) -> Result<Self> {
        let field = |off| u16_at(body, off);
        let (Some(tag), Some(channels), Some(sample_rate), Some(block_align), Some(bits)) =
            (field(0), field(2), u32_at(body, 4), field(12), field(14))
        else {
            return Err(malformed(format!(
                "WAV 'fmt ' chunk is {} bytes, needs at least 16",
                body.len()
            )));
        };
        let tag = if tag == WAVE_FORMAT_EXTENSIBLE {
            // The real format is the first two bytes of the sub-format GUID at offset 24.
            match field(24) {
                Some(sub) if body.len() >= 40 => sub,
                _ => {
                    return Err(malformed(format!(
                        "WAV 'fmt ' chunk says WAVE_FORMAT_EXTENSIBLE but is {} bytes, needs 40",
                        body.len()
                    )));
                }
            }
        } else {
            tag
        };
        Ok(Self { tag, channels, sample_rate, block_align, bits })
    }

    fn check(&self, limits: &DecodeLimits) -> Result<()> {
        limits.check_shape(usize::from(self.channels), self.sample_rate, "WAV header")?;
        let supported = match self.tag {
            WAVE_FORMAT_PCM => matches!(self.bits, 8 | 16 | 24 | 32),
            WAVE_FORMAT_IEEE_FLOAT => matches!(self.bits, 32 | 64),
            WAVE_FORMAT_ALAW | WAVE_FORMAT_MULAW => self.bits == 8,
            other => {
                return Err(Error::new(
                    ErrorKind::UnsupportedFormat,
                    format!(
                        "WAV encoding {} (format tag 0x{other:04x}) is not supported; WAV must be 8/16/24/32-bit PCM, 32/64-bit float, A-law or µ-law",
                        tag_name(other)
                    ),
                ));
            }
        };
        if !supported {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!("{}-bit {} WAV is not supported", self.bits, tag_name(self.tag)),
            ));
        }
        let expected = u32::from(self.channels) * u32::from(self.bits / 8);
        if u32::from(self.block_align) != expected {
            return Err(malformed(format!(
                "WAV block align is {} bytes but {} channels of {}-bit samples need {expected}",
                self.block_align, self.channels, self.bits
            )));
        }
        Ok(())
    }
}

fn tag_name(tag: u16) -> &'static str {
    match tag {
        WAVE_FORMAT_PCM => "PCM",
        0x0002 => "MS ADPCM",
        WAVE_FORMAT_IEEE_FLOAT => "float",
        WAVE_FORMAT_ALAW => "A-law",
        WAVE_FORMAT_MULAW => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x00FF | 0x1610 => "AAC",
        0x2000 => "AC-3",
        _ => "unknown",
    }
}
