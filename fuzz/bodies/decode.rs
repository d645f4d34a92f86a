//! Fuzz body: the untrusted-bytes entry points of `prosodia_dsp::decode`.
//!
//! Every input goes to `decode()` (container sniffing, the WAV validator, symphonia), and to
//! `decode_raw()` and a chunked `RawPcmStream` with a format taken from the first bytes. Any
//! panic is a finding: libFuzzer's panic hook aborts before `decode()`'s own catch_unwind can
//! turn it into an error, which is what we want here, since that guard is only a last line of
//! defence. Small limits keep each run fast and make the limit paths reachable.

use prosodia_dsp::decode::{
    DecodeLimits, PcmEncoding, RawPcmFormat, RawPcmStream, decode, decode_raw, sniff_format,
};

/// Runs one input.
pub(crate) fn run(data: &[u8]) {
    let limits = DecodeLimits { max_duration_secs: 30.0, ..DecodeLimits::default() };
    let _ = sniff_format(data);
    if let Ok(audio) = decode(data, &limits) {
        // What decode() promises: a non-empty, rectangular, finite buffer within the limits.
        assert!(audio.sample_rate > 0 && audio.sample_rate <= limits.max_sample_rate);
        assert!(!audio.channels.is_empty() && audio.channels.len() <= limits.max_channels);
        let n = audio.num_frames();
        assert!(n > 0 && audio.channels.iter().all(|c| c.len() == n));
        assert!(audio.duration_secs() <= limits.max_duration_secs);
        assert!(audio.channels.iter().flatten().all(|s| s.is_finite()));
    }

    // Raw PCM: byte 0 picks encoding and channel count, bytes 1..3 the sample rate.
    let [b0, b1, b2, rest @ ..] = data else { return };
    let format = RawPcmFormat {
        encoding: if b0 & 1 == 0 { PcmEncoding::S16Le } else { PcmEncoding::F32Le },
        channels: u16::from(b0 >> 1 & 0x07),
        sample_rate: u32::from(u16::from_le_bytes([*b1, *b2])) * 8,
    };
    let one_shot = decode_raw(rest, &format, &limits);
    // The same bytes in uneven chunks must give the same answer.
    if let Ok(mut stream) = RawPcmStream::new(format, &limits) {
        let mut planar = Vec::new();
        let mut result = Ok(0);
        let mut step = 1 + usize::from(b1 % 7);
        let mut pos = 0;
        while pos < rest.len() && result.is_ok() {
            let end = (pos + step).min(rest.len());
            result = stream.push_planar(&rest[pos..end], &mut planar);
            pos = end;
            step = step * 3 % 11 + 1;
        }
        match (result.and_then(|_| stream.finish()), &one_shot) {
            (Ok(frames), Ok(audio)) => {
                assert_eq!(frames as usize, audio.num_frames());
                assert_eq!(planar, audio.channels);
            }
            // Both refuse; the kinds may differ (a stream sees a NaN before it can know the
            // byte count will end mid-frame).
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "stream and one-shot disagree: {a:?} vs {:?}",
                b.as_ref().map(|a| a.num_frames())
            ),
        }
    }
}
