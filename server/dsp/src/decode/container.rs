//! Demuxing and decoding with symphonia, checking every decoded packet as it arrives.

use std::io::{Cursor, ErrorKind as IoErrorKind};

use symphonia::core::codecs::audio::AudioCodecId;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known as codec;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{DecodeLimits, SUPPORTED_HINT, first_non_finite, non_finite_error, opus_error};
use crate::{Audio, Error, ErrorKind, Result};

/// How many packets in a row may fail to decode before we give up. A damaged frame or two in
/// an MP3 is common and worth skipping; a long run means the stream is garbage, and stopping
/// bounds the CPU spent on it.
const MAX_CONSECUTIVE_BAD_PACKETS: usize = 32;

/// Decodes the default audio track of `bytes`, whose container was sniffed as `container`.
/// `expected_frames`, when the caller has validated it against the input size, sizes the
/// output once; otherwise the output grows as packets arrive.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    container: &'static str,
    expected_frames: Option<u64>,
) -> Result<Audio> {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe().probe(
        &Hint::new(),
        mss,
        FormatOptions::default(),
        MetadataOptions::default(),
    );
    let mut reader = match probed {
        Ok(reader) => reader,
        // We only get here when the first bytes carry a known signature, so a failure means
        // the header behind that signature is broken, not that the format is unknown.
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Malformed,
                format!("the {container} header could not be read: {}", describe(&e)),
            ));
        }
    };

    let track = reader.default_track(TrackType::Audio).ok_or_else(|| {
        Error::new(ErrorKind::NoAudio, format!("the {container} file has no audio track"))
    })?;
    let track_id = track.id;
    let header_frames = track.num_frames;
    let Some(params) = track.codec_params.as_ref().and_then(|p| p.audio()).cloned() else {
        return Err(Error::new(
            ErrorKind::NoAudio,
            format!("the {container} file has no audio track"),
        ));
    };
    if params.codec == codec::CODEC_ID_OPUS {
        return Err(opus_error());
    }
    let codecs = symphonia::default::get_codecs();
    if codecs.get_audio_decoder(params.codec).is_none() {
        return Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "{} audio in {container} is not supported; {SUPPORTED_HINT}",
                codec_name(params.codec)
            ),
        ));
    }
    // Header checks: refuse early what the header already shows is out of bounds. Fields the
    // container leaves unset are checked on the first decoded packet instead.
    let header_rate = params.sample_rate;
    if let Some(rate) = header_rate {
        let channels = params.channels.as_ref().map_or(1, |c| c.count().max(1));
        limits.check_shape(channels, rate, &format!("the {container} header"))?;
        if let Some(frames) = header_frames {
            limits.check_frames(frames, rate, &format!("the {container} audio"))?;
        }
    }

    let mut decoder =
        codecs.make_audio_decoder(&params, &AudioDecoderOptions::default()).map_err(|e| {
            Error::new(
                ErrorKind::Malformed,
                format!("the {container} codec parameters are invalid: {}", describe(&e)),
            )
        })?;

    let mut out = Output::new(limits, container, expected_frames);
    let mut scratch: Vec<Vec<f32>> = Vec::new();
    let mut bad_in_a_row = 0usize;
    let mut first_bad: Option<String> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A compressed stream cut short ends with an incomplete packet: keep the audio
            // decoded so far, as players do. (WAV truncation was refused before we got here.)
            Err(SymError::IoError(e)) if e.kind() == IoErrorKind::UnexpectedEof => break,
            // A chained Ogg stream starts a new logical stream; the first one is the clip.
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    format!(
                        "the {container} container is corrupt after {} frames: {}",
                        out.frames,
                        describe(&e)
                    ),
                ));
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                bad_in_a_row = 0;
                if buf.frames() == 0 {
                    continue;
                }
                let rate = buf.spec().rate();
                buf.copy_to_vecs_planar::<f32>(&mut scratch);
                out.push(rate, &scratch)?;
            }
            Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) => {
                bad_in_a_row += 1;
                if first_bad.is_none() {
                    first_bad = Some(describe(&e));
                }
                if bad_in_a_row >= MAX_CONSECUTIVE_BAD_PACKETS {
                    return Err(Error::new(
                        ErrorKind::Malformed,
                        format!(
                            "the {container} stream is corrupt: {bad_in_a_row} packets in a row failed to decode after {} frames ({})",
                            out.frames,
                            describe(&e)
                        ),
                    ));
                }
            }
            Err(SymError::Unsupported(what)) => {
                return Err(Error::new(
                    ErrorKind::UnsupportedFormat,
                    format!(
                        "the {container} stream uses a feature we cannot decode ({what}); {SUPPORTED_HINT}"
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    format!("the {container} stream failed to decode: {}", describe(&e)),
                ));
            }
        }
    }
    out.finish(first_bad)
}

/// The growing output, with the per-packet checks.
struct Output<'a> {
    limits: &'a DecodeLimits,
    container: &'static str,
    expected_frames: Option<u64>,
    sample_rate: u32,
    max_frames: u64,
    frames: u64,
    channels: Vec<Vec<f32>>,
}

impl<'a> Output<'a> {
    fn new(
        limits: &'a DecodeLimits,
        container: &'static str,
        expected_frames: Option<u64>,
    ) -> Self {
        Self {
            limits,
            container,
            expected_frames,
            sample_rate: 0,
            max_frames: 0,
            frames: 0,
            channels: Vec::new(),
        }
    }

    fn push(&mut self, rate: u32, planes: &[Vec<f32>]) -> Result<()> {
        let container = self.container;
        let n = planes.first().map_or(0, Vec::len);
        if self.channels.is_empty() {
            self.limits.check_shape(planes.len(), rate, &format!("the {container} stream"))?;
            self.sample_rate = rate;
            self.max_frames = self.limits.max_frames(rate);
            // Only a frame count validated against the input size may size an allocation.
            let reserve = self.expected_frames.map_or(0, |f| f.min(self.max_frames)) as usize;
            self.channels = (0..planes.len()).map(|_| Vec::with_capacity(reserve)).collect();
        } else if rate != self.sample_rate || planes.len() != self.channels.len() {
            return Err(Error::new(
                ErrorKind::Malformed,
                format!(
                    "the {container} stream changes from {} channels at {} Hz to {} channels at {rate} Hz after {} frames; a clip must keep one format",
                    self.channels.len(),
                    self.sample_rate,
                    planes.len(),
                    self.frames
                ),
            ));
        }
        if planes.iter().any(|p| p.len() != n) {
            return Err(Error::new(
                ErrorKind::Malformed,
                format!("the {container} decoder returned channels of unequal length"),
            ));
        }
        let total = self.frames + n as u64;
        if total > self.max_frames {
            // Stop here rather than after the whole stream: a small file can expand to hours.
            return Err(Error::new(
                ErrorKind::TooLong,
                format!(
                    "the {container} audio runs past the limit of {} s (stopped decoding at {total} frames at {rate} Hz)",
                    self.limits.max_duration_secs
                ),
            ));
        }
        if let Some((f, c, v)) = first_non_finite(planes) {
            return Err(non_finite_error(self.frames + f as u64, c, planes.len(), v));
        }
        for (dst, src) in self.channels.iter_mut().zip(planes) {
            dst.extend_from_slice(src);
        }
        self.frames = total;
        Ok(())
    }

    fn finish(self, first_bad: Option<String>) -> Result<Audio> {
        if self.frames == 0 {
            let why =
                first_bad.map_or_else(String::new, |e| format!(" (every packet failed: {e})"));
            let kind = if why.is_empty() { ErrorKind::NoAudio } else { ErrorKind::Malformed };
            return Err(Error::new(
                kind,
                format!("the {} stream decoded to no samples{why}", self.container),
            ));
        }
        Ok(Audio { sample_rate: self.sample_rate, channels: self.channels })
    }
}

/// Symphonia's error in words, without its Debug noise.
fn describe(e: &SymError) -> String {
    match e {
        SymError::IoError(io) if io.kind() == IoErrorKind::UnexpectedEof => {
            "unexpected end of data".to_owned()
        }
        other => other.to_string(),
    }
}

/// A readable name for codecs symphonia recognises in a container but we do not decode.
fn codec_name(id: AudioCodecId) -> String {
    let name = match id {
        codec::CODEC_ID_OPUS => "Opus",
        codec::CODEC_ID_SPEEX => "Speex",
        codec::CODEC_ID_AC3 => "AC-3",
        codec::CODEC_ID_EAC3 => "E-AC-3",
        codec::CODEC_ID_ALAC => "ALAC",
        codec::CODEC_ID_MP1 => "MPEG Layer I",
        codec::CODEC_ID_MP2 => "MPEG Layer II",
        codec::CODEC_ID_WMA => "WMA",
        codec::CODEC_ID_ADPCM_MS | codec::CODEC_ID_ADPCM_IMA_WAV | codec::CODEC_ID_ADPCM_IMA_QT => {
            "ADPCM"
        }
        _ => return format!("codec {id}"),
    };
    name.to_owned()
}
