//! Decoding untrusted bytes: every shared fixture, raw PCM one-shot and streamed, the limits,
//! hand-made lying WAV headers, and regressions found by fuzzing (`fuzz/`).

use std::path::Path;

use prosodia_dsp::decode::{
    DecodeLimits, PcmEncoding, RawPcmFormat, RawPcmStream, decode, decode_raw, sniff_format,
};
use prosodia_dsp::{Audio, Error, ErrorKind};
use prosodia_tests::{fixture, fixtures_in, load_pcm16_mono, read, references};

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

fn decode_file(path: &Path) -> Result<Audio, Error> {
    decode(&read(path), &limits())
}

fn decode_ok(path: &Path) -> Audio {
    match decode_file(path) {
        Ok(a) => a,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Asserts `result` is an error of `kind` whose message contains every one of `needles`.
fn assert_refused<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Error>,
    kind: ErrorKind,
    needles: &[&str],
) {
    match result {
        Ok(v) => panic!("{what}: expected {kind:?}, decoded {v:?}"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{what}: wrong kind, message: {}", e.message());
            for n in needles {
                assert!(
                    e.message().contains(n),
                    "{what}: message {:?} should mention {n:?}",
                    e.message()
                );
            }
            // A caught panic would also be an error; it must never be how we refuse.
            assert!(!e.message().contains("decoder failed on this input"), "{what}: panicked: {e}");
        }
    }
}

fn mono(audio: &Audio) -> Vec<f32> {
    let n = audio.num_frames();
    let c = audio.channels.len() as f32;
    (0..n).map(|i| audio.channels.iter().map(|ch| ch[i]).sum::<f32>() / c).collect()
}

// ---------------------------------------------------------------------------------------------
// shared/fixtures/bad

#[test]
fn every_bad_fixture_is_refused_with_a_typed_error_that_names_the_problem() {
    let expected: &[(&str, ErrorKind, &[&str])] = &[
        ("empty.wav", ErrorKind::NoAudio, &["empty", "0 bytes"]),
        (
            "huge_claim.wav",
            ErrorKind::Malformed,
            &["data chunk claims 2147483632 bytes", "only 1024"],
        ),
        ("nan_inf_f32.wav", ErrorKind::NonFiniteSamples, &["sample 0", "NaN"]),
        ("random_bytes.wav", ErrorKind::UnsupportedFormat, &["unrecognised audio format"]),
        ("text.wav", ErrorKind::UnsupportedFormat, &["text, not audio"]),
        ("truncated_data.wav", ErrorKind::Malformed, &["393994", "only 25904", "truncated"]),
        (
            "truncated_header.wav",
            ErrorKind::Malformed,
            &["truncated", "'fmt ' chunk claims 16 bytes"],
        ),
        ("zero_channels.wav", ErrorKind::Malformed, &["zero channels"]),
    ];
    let files = fixtures_in("bad");
    assert!(files.len() >= 10, "missing shared/fixtures/bad");
    for path in &files {
        let file = name(path);
        if matches!(file, "silence_3s.wav" | "tiny_5ms.wav") {
            continue; // valid audio, refused later by the analysis layer: see below
        }
        let Some((_, kind, needles)) = expected.iter().find(|(n, _, _)| *n == file) else {
            panic!("new bad fixture {file}: add its expected refusal here");
        };
        assert_refused(file, decode_file(path), *kind, needles);
    }
}

#[test]
fn silence_and_tiny_clips_are_valid_audio_that_decodes_exactly() {
    for (file, frames) in [("bad/silence_3s.wav", 48_000), ("bad/tiny_5ms.wav", 80)] {
        let path = fixture(file);
        let audio = decode_ok(&path);
        assert_eq!(audio.sample_rate, 16_000, "{file}");
        assert_eq!(audio.channels.len(), 1, "{file}");
        assert_eq!(audio.num_frames(), frames, "{file}");
        let (expected, _) = load_pcm16_mono(&path);
        assert_eq!(audio.channels[0], expected, "{file}: samples differ from the raw int16/32768");
    }
    let silence = decode_ok(&fixture("bad/silence_3s.wav"));
    let peak = silence.channels[0].iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak < 1e-3, "silence peaks at {peak}");
    let tiny = decode_ok(&fixture("bad/tiny_5ms.wav"));
    assert!(tiny.channels[0].iter().any(|s| s.abs() > 0.01), "tiny clip should not be silent");
}

// ---------------------------------------------------------------------------------------------
// shared/fixtures/formats

/// The FLAC, MP3, Ogg, Opus and M4A files are RAVDESS 03-01-05-02-01-01-01 (angry, 4.104 s).
const ANGRY_SOURCE: &str = "ravdess/03-01-05-02-01-01-01.wav";
const ANGRY_FRAMES: usize = 196_997;
/// The WAV variants are TESS OAF_back_happy (2.001 s).
const HAPPY_SOURCE: &str = "tess/OAF_back_happy.wav";

/// Best normalised cross-correlation of `a` against `b` over lags in `-max_lag..=max_lag`
/// (lossy encoders may shift the signal by their priming delay).
fn best_correlation(a: &[f32], b: &[f32], max_lag: isize) -> (f64, isize) {
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &x) in a.iter().enumerate() {
            let j = i as isize + lag;
            if j < 0 || j as usize >= b.len() {
                continue;
            }
            let y = b[j as usize];
            ab += f64::from(x) * f64::from(y);
            aa += f64::from(x) * f64::from(x);
            bb += f64::from(y) * f64::from(y);
        }
        let r = ab / (aa.sqrt() * bb.sqrt()).max(1e-12);
        if r > best.0 {
            best = (r, lag);
        }
    }
    best
}

#[test]
fn every_format_fixture_decodes_or_is_refused_by_name() {
    let files = fixtures_in("formats");
    assert!(files.len() >= 10, "missing shared/fixtures/formats");
    for path in &files {
        let file = name(path);
        if file.ends_with(".opus") {
            assert_refused(
                file,
                decode_file(path),
                ErrorKind::UnsupportedFormat,
                &[
                    "Opus is not supported; send WAV, AIFF, FLAC, MP3, Ogg Vorbis or AAC/M4A, or raw PCM",
                ],
            );
            continue;
        }
        let audio = decode_ok(path);
        // (rate, channels, frames as ffprobe/soundfile count them)
        let (rate, channels, frames) = match file {
            "angry_48k.flac" | "angry_48k.mp3" | "angry_48k.ogg" | "angry_48k.m4a" => {
                (48_000, 1, ANGRY_FRAMES)
            }
            "happy_8k.wav" => (8_000, 1, 16_008),
            "happy_stereo_44k.wav" => (44_100, 2, 88_242),
            "happy_f32.wav" | "happy_s24.wav" | "happy_u8.wav" => (24_414, 1, 48_851),
            other => panic!("new format fixture {other}: add its expected shape here"),
        };
        assert_eq!(audio.sample_rate, rate, "{file}");
        assert_eq!(audio.channels.len(), channels, "{file}");
        let lossy = matches!(file, "angry_48k.mp3" | "angry_48k.ogg" | "angry_48k.m4a");
        if lossy {
            let diff = (audio.duration_secs() - frames as f64 / f64::from(rate)).abs();
            assert!(
                diff < 0.05,
                "{file}: duration off by {diff:.4} s ({} frames)",
                audio.num_frames()
            );
        } else {
            assert_eq!(audio.num_frames(), frames, "{file}");
        }
        assert!(
            audio.channels.iter().flatten().all(|s| s.is_finite() && s.abs() <= 1.0 + 1e-6),
            "{file}"
        );
    }
}

#[test]
fn lossless_variants_equal_their_source_sample_for_sample() {
    let (angry, _) = load_pcm16_mono(&fixture(ANGRY_SOURCE));
    let flac = decode_ok(&fixture("formats/angry_48k.flac"));
    assert_eq!(flac.channels[0], angry, "FLAC should equal the RAVDESS WAV exactly");

    let (happy, _) = load_pcm16_mono(&fixture(HAPPY_SOURCE));
    // 24-bit is the 16-bit source shifted left 8 bits and float stores s16/32768 exactly.
    for file in ["formats/happy_s24.wav", "formats/happy_f32.wav"] {
        assert_eq!(decode_ok(&fixture(file)).channels[0], happy, "{file}");
    }
    // Unsigned 8-bit decodes as (byte - 128) / 128, exactly (the data chunk starts at 44)...
    let bytes = read(&fixture("formats/happy_u8.wav"));
    let u8s = decode_ok(&fixture("formats/happy_u8.wav"));
    let expected: Vec<f32> =
        bytes[44..44 + 48_851].iter().map(|&b| (f32::from(b) - 128.0) / 128.0).collect();
    assert_eq!(u8s.channels[0], expected);
    // ...and stays within two 8-bit steps of the 16-bit source (the encoder dithered).
    let worst =
        u8s.channels[0].iter().zip(&happy).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 2.0 / 128.0, "u8 differs from the source by up to {worst}");
}

#[test]
fn lossy_variants_match_the_flac_in_length_and_waveform() {
    let flac = decode_ok(&fixture("formats/angry_48k.flac")).channels.remove(0);
    for file in ["formats/angry_48k.mp3", "formats/angry_48k.ogg", "formats/angry_48k.m4a"] {
        let lossy = decode_ok(&fixture(file)).channels.remove(0);
        let diff_ms = (lossy.len() as f64 - flac.len() as f64).abs() / 48.0;
        assert!(diff_ms < 50.0, "{file}: {diff_ms:.1} ms longer/shorter than the FLAC");
        let (r, lag) = best_correlation(&flac, &lossy, 2048);
        assert!(r > 0.95, "{file}: correlates only {r:.4} with the FLAC (best lag {lag})");
        // MP3 and Vorbis encoder delay is trimmed (gapless); AAC in MP4 keeps its priming
        // because symphonia does not apply MP4 edit lists, so it lags by about 1024 samples.
        if file.ends_with(".mp3") || file.ends_with(".ogg") {
            assert!(lag.abs() <= 64, "{file}: encoder delay not trimmed (lag {lag})");
        }
    }
}

#[test]
fn decoded_samples_match_librosa_references() {
    for (path, reference) in references() {
        let audio = decode_ok(&path);
        let file = &reference.file;
        assert_eq!(audio.sample_rate, reference.sample_rate, "{file}");
        assert_eq!(audio.num_frames(), reference.num_samples, "{file}");
        let sum: f64 = mono(&audio).iter().map(|&s| f64::from(s)).sum();
        assert!(
            (sum - reference.sum_of_samples).abs() < 1e-3,
            "{file}: sum {sum} vs librosa {}",
            reference.sum_of_samples
        );
    }
}

#[test]
fn sniff_names_every_fixture_container() {
    let cases = [
        ("formats/angry_48k.flac", Some("FLAC")),
        ("formats/angry_48k.mp3", Some("MP3")),
        ("formats/angry_48k.ogg", Some("Ogg Vorbis")),
        ("formats/angry_48k.opus", Some("Ogg Opus")),
        ("formats/angry_48k.m4a", Some("MP4/M4A")),
        ("formats/happy_s24.wav", Some("WAV")),
        ("bad/text.wav", None),
        ("bad/random_bytes.wav", None),
        ("bad/empty.wav", None),
    ];
    for (file, expected) in cases {
        assert_eq!(sniff_format(&read(&fixture(file))), expected, "{file}");
    }
}

// ---------------------------------------------------------------------------------------------
// Limits

#[test]
fn a_clip_over_max_duration_is_refused_as_too_long() {
    let short = DecodeLimits { max_duration_secs: 2.0, ..DecodeLimits::default() };
    for file in [
        ANGRY_SOURCE,
        "formats/angry_48k.flac",
        "formats/angry_48k.mp3",
        "formats/angry_48k.ogg",
        "formats/angry_48k.m4a",
    ] {
        assert_refused(
            file,
            decode(&read(&fixture(file)), &short),
            ErrorKind::TooLong,
            &["limit of 2 s"],
        );
    }
    // Exactly at the limit is fine.
    let exact = DecodeLimits {
        max_duration_secs: ANGRY_FRAMES as f64 / 48_000.0,
        ..DecodeLimits::default()
    };
    assert!(decode(&read(&fixture(ANGRY_SOURCE)), &exact).is_ok());
}

#[test]
fn channel_rate_and_size_limits_are_enforced() {
    let bytes = read(&fixture("formats/happy_stereo_44k.wav"));
    let mono_only = DecodeLimits { max_channels: 1, ..DecodeLimits::default() };
    assert_refused(
        "stereo",
        decode(&bytes, &mono_only),
        ErrorKind::UnsupportedFormat,
        &["2 channels"],
    );
    let low_rate = DecodeLimits { max_sample_rate: 16_000, ..DecodeLimits::default() };
    assert_refused("44.1k", decode(&bytes, &low_rate), ErrorKind::UnsupportedFormat, &["44100 Hz"]);
    let small = DecodeLimits { max_input_bytes: 1000, ..DecodeLimits::default() };
    assert_refused("size", decode(&bytes, &small), ErrorKind::TooLong, &["353012 bytes"]);
    let nonsense = DecodeLimits { max_duration_secs: f64::NAN, ..DecodeLimits::default() };
    assert_refused(
        "NaN limit",
        decode(&bytes, &nonsense),
        ErrorKind::InvalidConfig,
        &["max_duration_secs"],
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-made WAV headers

/// A canonical WAV: `fmt ` (16 bytes) then `data` holding `data`, with the data size field
/// set to `claimed` (normally `data.len()`).
fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8], claimed: u32) -> Vec<u8> {
    let block = channels * (bits / 8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&claimed.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn s16_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn f32_bytes(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[test]
fn s32_wav_decodes_with_full_scale_scaling() {
    let samples: Vec<i32> = vec![0, i32::MAX, i32::MIN, 1 << 30, -(1 << 30), 12_345_678];
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let audio = match decode(&wav(1, 2, 16_000, 32, &data, data.len() as u32), &limits()) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(audio.channels.len(), 2);
    assert_eq!(audio.num_frames(), 3);
    let expect = |i: usize| (f64::from(samples[i]) / 2_147_483_648.0) as f32;
    for f in 0..3 {
        for c in 0..2 {
            assert!(
                (audio.channels[c][f] - expect(f * 2 + c)).abs() < 1e-7,
                "frame {f} channel {c}"
            );
        }
    }
}

#[test]
fn lying_or_odd_wav_headers_are_refused_precisely() {
    let pcm = s16_bytes(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let ok = wav(1, 1, 16_000, 16, &pcm, pcm.len() as u32);
    assert!(decode(&ok, &limits()).is_ok());

    assert_refused(
        "zero rate",
        decode(&wav(1, 1, 0, 16, &pcm, 16), &limits()),
        ErrorKind::Malformed,
        &["0 Hz"],
    );
    assert_refused(
        "claims more",
        decode(&wav(1, 1, 16_000, 16, &pcm, 4000), &limits()),
        ErrorKind::Malformed,
        &["claims 4000 bytes", "only 16"],
    );
    assert_refused(
        "empty data",
        decode(&wav(1, 1, 16_000, 16, &[], 0), &limits()),
        ErrorKind::NoAudio,
        &["empty"],
    );
    assert_refused(
        "ADPCM",
        decode(&wav(2, 1, 16_000, 16, &pcm, 16), &limits()),
        ErrorKind::UnsupportedFormat,
        &["MS ADPCM", "0x0002"],
    );
    assert_refused(
        "12-bit",
        decode(&wav(1, 1, 16_000, 12, &pcm, 16), &limits()),
        ErrorKind::UnsupportedFormat,
        &["12-bit"],
    );

    let mut bad_align = ok.clone();
    bad_align[32..34].copy_from_slice(&7u16.to_le_bytes());
    assert_refused(
        "block align",
        decode(&bad_align, &limits()),
        ErrorKind::Malformed,
        &["block align is 7"],
    );

    // A chunk whose size runs past the end, before the data chunk.
    let mut junk = ok[..12].to_vec();
    junk.extend_from_slice(b"LIST");
    junk.extend_from_slice(&1_000_000u32.to_le_bytes());
    junk.extend_from_slice(&ok[12..]);
    assert_refused(
        "LIST",
        decode(&junk, &limits()),
        ErrorKind::Malformed,
        &["'LIST' chunk", "1000000"],
    );

    // Data before fmt.
    let mut swapped = ok[..12].to_vec();
    swapped.extend_from_slice(&ok[36..]);
    swapped.extend_from_slice(&ok[12..36]);
    assert_refused(
        "order",
        decode(&swapped, &limits()),
        ErrorKind::Malformed,
        &["before the 'fmt ' chunk"],
    );

    // Too many channels for the limit, refused from the header.
    let wide = wav(1, 40, 16_000, 16, &s16_bytes(&[0; 80]), 160);
    assert_refused(
        "40 channels",
        decode(&wide, &limits()),
        ErrorKind::UnsupportedFormat,
        &["40 channels"],
    );

    // A header claiming hours, in a file that holds them: refused before decoding.
    let hour = DecodeLimits { max_duration_secs: 0.0001, ..DecodeLimits::default() };
    assert_refused(
        "short limit",
        decode(&ok, &hour),
        ErrorKind::TooLong,
        &["8 frames at 16000 Hz"],
    );
}

#[test]
fn streamed_wav_with_unknown_data_size_decodes_to_the_end() {
    // ffmpeg writing WAV to a pipe leaves 0xFFFFFFFF in the size fields.
    let pcm = s16_bytes(&[100, -100, 200, -200, 300]);
    let mut bytes = wav(1, 1, 8_000, 16, &pcm, u32::MAX);
    bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let audio = match decode(&bytes, &limits()) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let expected: Vec<f32> =
        [100, -100, 200, -200, 300].iter().map(|&s| f32::from(s as i16) / 32768.0).collect();
    assert_eq!(audio.channels[0], expected);
}

#[test]
fn the_first_non_finite_sample_is_named_in_interleaved_order() {
    let mut samples = vec![0.25f32; 20];
    samples[9] = f32::NEG_INFINITY; // frame 4, channel 1
    samples[12] = f32::NAN; // later
    let data = f32_bytes(&samples);
    assert_refused(
        "inf",
        decode(&wav(3, 2, 16_000, 32, &data, data.len() as u32), &limits()),
        ErrorKind::NonFiniteSamples,
        &["sample 9 (frame 4, channel 1)", "-inf"],
    );
}

#[test]
fn truncations_and_corruptions_of_every_format_never_panic() {
    // Cut each fixture at many points and flip bytes: any outcome but a panic is fine
    // (assert_refused-style check: no caught panic either).
    for path in fixtures_in("formats") {
        let bytes = read(&path);
        let file = name(&path);
        for cut in
            (0..bytes.len()).step_by(bytes.len() / 37 + 1).chain([1, 4, 11, 12, 40, 44, 45, 100])
        {
            if let Err(e) = decode(&bytes[..cut.min(bytes.len())], &limits()) {
                assert!(!e.message().contains("decoder failed"), "{file} cut at {cut}: {e}");
            }
        }
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20 {
            let mut damaged = bytes.clone();
            for _ in 0..16 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % damaged.len() as u64) as usize;
                damaged[i] = (state >> 32) as u8;
            }
            if let Err(e) = decode(&damaged, &limits()) {
                assert!(!e.message().contains("decoder failed"), "{file} damaged: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw PCM

fn fmt(encoding: PcmEncoding, sample_rate: u32, channels: u16) -> RawPcmFormat {
    RawPcmFormat { encoding, sample_rate, channels }
}

#[test]
fn raw_s16_and_f32_round_trip() {
    let ints: Vec<i16> = (0..600).map(|i| ((i * 7919) % 65_536 - 32_768) as i16).collect();
    let audio = match decode_raw(&s16_bytes(&ints), &fmt(PcmEncoding::S16Le, 16_000, 2), &limits())
    {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(audio.sample_rate, 16_000);
    assert_eq!(audio.channels.len(), 2);
    assert_eq!(audio.num_frames(), 300);
    for (i, s) in ints.iter().enumerate() {
        assert_eq!(audio.channels[i % 2][i / 2], f32::from(*s) / 32768.0);
    }

    let floats: Vec<f32> = (0..300).map(|i| (i as f32 * 0.01).sin() * 1.5).collect();
    let audio =
        match decode_raw(&f32_bytes(&floats), &fmt(PcmEncoding::F32Le, 22_050, 3), &limits()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
    assert_eq!(audio.num_frames(), 100);
    for (i, s) in floats.iter().enumerate() {
        assert_eq!(audio.channels[i % 3][i / 3], *s);
    }
}

#[test]
fn raw_pcm_refusals_name_the_numbers() {
    let l = limits();
    assert_refused(
        "odd bytes",
        decode_raw(&[0u8; 1001], &fmt(PcmEncoding::S16Le, 16_000, 2), &l),
        ErrorKind::Malformed,
        &["1001 bytes", "4-byte frame", "2 channels"],
    );
    assert_refused(
        "odd f32",
        decode_raw(&[0u8; 6], &fmt(PcmEncoding::F32Le, 16_000, 1), &l),
        ErrorKind::Malformed,
        &["6 bytes", "4-byte frame"],
    );
    assert_refused(
        "zero rate",
        decode_raw(&[0u8; 4], &fmt(PcmEncoding::S16Le, 0, 1), &l),
        ErrorKind::InvalidConfig,
        &["0 Hz"],
    );
    assert_refused(
        "zero channels",
        decode_raw(&[0u8; 4], &fmt(PcmEncoding::S16Le, 16_000, 0), &l),
        ErrorKind::InvalidConfig,
        &["0 channels"],
    );
    assert_refused(
        "empty",
        decode_raw(&[], &fmt(PcmEncoding::S16Le, 16_000, 1), &l),
        ErrorKind::NoAudio,
        &["empty"],
    );
    let nan = f32_bytes(&[0.0, 0.5, 0.1, f32::NAN, 0.2, f32::INFINITY]);
    assert_refused(
        "NaN",
        decode_raw(&nan, &fmt(PcmEncoding::F32Le, 16_000, 2), &l),
        ErrorKind::NonFiniteSamples,
        &["sample 3 (frame 1, channel 1)", "NaN"],
    );
    let short = DecodeLimits { max_duration_secs: 0.01, ..DecodeLimits::default() };
    assert_refused(
        "too long",
        decode_raw(&[0u8; 400], &fmt(PcmEncoding::S16Le, 16_000, 1), &short),
        ErrorKind::TooLong,
        &["200 frames at 16000 Hz"],
    );
}

/// A deterministic xorshift stream of chunk sizes, so failures reproduce.
fn chunk_sizes(seed: u64, max: usize) -> impl Iterator<Item = usize> {
    let mut state = seed | 1;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        1 + (state % max as u64) as usize
    })
}

#[test]
fn streaming_at_random_chunk_sizes_equals_the_one_shot_decode() {
    let floats: Vec<f32> = (0..3001).map(|i| ((i as f32) * 0.013).sin()).collect();
    let ints: Vec<i16> = (0..3000).map(|i| (((i * 31) % 2000) as i16 - 1000) * 13).collect();
    let cases = [
        (f32_bytes(&floats[..3000]), fmt(PcmEncoding::F32Le, 48_000, 3)),
        (f32_bytes(&floats), fmt(PcmEncoding::F32Le, 16_000, 1)),
        (s16_bytes(&ints), fmt(PcmEncoding::S16Le, 16_000, 2)),
        (s16_bytes(&ints), fmt(PcmEncoding::S16Le, 8_000, 5)),
    ];
    for (seed, (bytes, format)) in cases.iter().enumerate() {
        let one_shot = match decode_raw(bytes, format, &limits()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        for (round, max_chunk) in [1usize, 3, 7, 64, 1000].into_iter().enumerate() {
            let mut planar = Vec::new();
            let mut mixed = Vec::new();
            let mut a = match RawPcmStream::new(*format, &limits()) {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            };
            let mut b = a.clone();
            let mut pos = 0;
            let mut sizes = chunk_sizes((seed * 10 + round) as u64 + 1, max_chunk);
            while pos < bytes.len() {
                let end = (pos + sizes.next().unwrap_or(1)).min(bytes.len());
                let n = a.push_planar(&bytes[pos..end], &mut planar).map_err(|e| e.to_string());
                let m = b.push_mono(&bytes[pos..end], &mut mixed).map_err(|e| e.to_string());
                assert_eq!(n, m);
                pos = end;
            }
            assert_eq!(a.pending_bytes(), 0);
            assert_eq!(a.finish().ok(), Some(one_shot.num_frames() as u64));
            assert_eq!(b.finish().ok(), Some(one_shot.num_frames() as u64));
            assert_eq!(planar, one_shot.channels, "planar, max chunk {max_chunk}");
            let expected_mono = mono(&one_shot);
            assert_eq!(mixed.len(), expected_mono.len());
            for (x, y) in mixed.iter().zip(&expected_mono) {
                assert!((x - y).abs() < 1e-6, "mono, max chunk {max_chunk}");
            }
        }
    }
}

#[test]
fn a_failing_stream_chunk_appends_nothing_and_the_error_sticks() {
    let format = fmt(PcmEncoding::F32Le, 16_000, 2);
    let mut stream = match RawPcmStream::new(format, &limits()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut out = Vec::new();
    let good = f32_bytes(&[0.1, 0.2, 0.3]);
    assert_eq!(stream.push_planar(&good, &mut out).ok(), Some(1)); // 1 frame + 4 bytes carried
    assert_eq!(stream.pending_bytes(), 4);
    let bad = f32_bytes(&[0.4, 0.5, f32::NAN]);
    assert_refused(
        "stream NaN",
        stream.push_planar(&bad, &mut out),
        ErrorKind::NonFiniteSamples,
        &["sample 5"],
    );
    assert_eq!(out, vec![vec![0.1], vec![0.2]], "the failing chunk must not append");
    assert_refused(
        "sticky",
        stream.push_planar(&good, &mut out),
        ErrorKind::NonFiniteSamples,
        &["sample 5"],
    );
    assert_refused("finish", stream.finish(), ErrorKind::NonFiniteSamples, &["sample 5"]);

    let mut partial = match RawPcmStream::new(format, &limits()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(partial.push_planar(&good, &mut Vec::new()).is_ok());
    assert_refused(
        "partial",
        partial.finish(),
        ErrorKind::Malformed,
        &["12 bytes", "8-byte frame", "4 stray bytes"],
    );

    let empty = match RawPcmStream::new(format, &limits()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_refused("empty stream", empty.finish(), ErrorKind::NoAudio, &["empty"]);

    let short = DecodeLimits { max_duration_secs: 0.001, ..DecodeLimits::default() };
    let mut long = match RawPcmStream::new(format, &short) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let chunk = f32_bytes(&[0.0; 20]); // 10 frames per push, limit 16
    assert!(long.push_planar(&chunk, &mut Vec::new()).is_ok());
    assert_refused(
        "stream too long",
        long.push_planar(&chunk, &mut Vec::new()),
        ErrorKind::TooLong,
        &["20 frames"],
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzzing regressions (fuzz/fuzz_targets/decode.rs, run with fuzz/run.sh): each finding goes
// here as a named test with its (minimised) input inline. The first 301-second run (5,289
// executions seeded from shared/fixtures, 765 new corpus units) found no panic, no
// disagreement between streamed and one-shot raw PCM, and no broken output invariant.

/// Regression: two TESS clips (`YAF_germ_angry.wav`, `YAF_neat_fear.wav`) are AIFF-C files
/// with a `.wav` name; the corpus benchmark found them refused. AIFF is decoded now.
#[test]
fn aiff_named_wav_decodes() {
    // A 16-bit big-endian mono AIFF at 22,050 Hz holding a ramp.
    let samples: Vec<i16> = (0..2205).map(|i| (i * 10) as i16).collect();
    let mut comm = Vec::new();
    comm.extend_from_slice(&1u16.to_be_bytes()); // channels
    comm.extend_from_slice(&(samples.len() as u32).to_be_bytes());
    comm.extend_from_slice(&16u16.to_be_bytes());
    // 22050 as an 80-bit IEEE extended float: exponent 16383 + 14, mantissa 22050 << 49.
    comm.extend_from_slice(&(16383u16 + 14).to_be_bytes());
    comm.extend_from_slice(&(22050u64 << 49).to_be_bytes());
    let mut ssnd = vec![0u8; 8]; // offset, block size
    for s in &samples {
        ssnd.extend_from_slice(&s.to_be_bytes());
    }
    let mut body = b"AIFF".to_vec();
    for (id, chunk) in [(b"COMM", &comm), (b"SSND", &ssnd)] {
        body.extend_from_slice(id);
        body.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        body.extend_from_slice(chunk);
    }
    let mut file = b"FORM".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_be_bytes());
    file.extend_from_slice(&body);
    let audio = decode(&file, &DecodeLimits::default()).expect("AIFF decodes");
    assert_eq!(audio.sample_rate, 22050);
    assert_eq!(audio.channels.len(), 1);
    assert_eq!(audio.num_frames(), samples.len());
    for (i, (&got, &want)) in audio.channels[0].iter().zip(&samples).enumerate() {
        assert!((got - f32::from(want) / 32768.0).abs() < 1e-6, "sample {i}: {got} vs {want}");
    }
}
