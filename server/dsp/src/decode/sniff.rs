//! Naming a container from its first bytes, without decoding anything.

/// Names the container (and for Ogg, the codec) that `bytes` start with, for messages and
/// logs: `"WAV"`, `"FLAC"`, `"MP3"`, `"Ogg Vorbis"`, `"Ogg Opus"`, `"MP4/M4A"`, `"AAC (ADTS)"`,
/// and a few we recognise only to refuse by name (`"WebM/Matroska"`, `"CAF"`,
/// `"RF64"`, ...). Returns `None` when the bytes match no known signature (text, noise,
/// headerless PCM). A name here does not mean the file is valid, only what it claims to be.
pub fn sniff_format(bytes: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| bytes.get(off..off + magic.len()) == Some(magic);
    if at(0, b"RIFF") {
        return Some(if at(8, b"WAVE") { "WAV" } else { "RIFF (not WAVE)" });
    }
    if at(0, b"RF64") || at(0, b"BW64") {
        return Some("RF64");
    }
    if at(0, b"fLaC") {
        return Some("FLAC");
    }
    if at(0, b"OggS") {
        return Some(ogg_codec(bytes));
    }
    if at(4, b"ftyp") {
        return Some("MP4/M4A");
    }
    if at(0, b"ID3") {
        return Some(after_id3(bytes));
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("WebM/Matroska");
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Some("AIFF");
    }
    if at(0, b"caff") {
        return Some("CAF");
    }
    if at(0, b"#!AMR") {
        return Some("AMR");
    }
    if at(0, b".snd") {
        return Some("Sun AU");
    }
    if at(0, b"wvpk") {
        return Some("WavPack");
    }
    if at(0, b"MAC ") {
        return Some("Monkey's Audio");
    }
    mpeg_sync(bytes)
}

/// Whether [`decode`](super::decode) hands a sniffed container to a decoder (the rest are
/// refused by name).
pub(crate) fn is_decodable(name: &str) -> bool {
    matches!(
        name,
        "WAV" | "AIFF" | "FLAC" | "Ogg Vorbis" | "Ogg FLAC" | "MP4/M4A" | "MP3" | "AAC (ADTS)"
    )
}

/// The codec in an Ogg stream, read from the identification packet in the first page.
fn ogg_codec(bytes: &[u8]) -> &'static str {
    // The first page holds only the identification header; its payload starts after the
    // 27-byte page header and the segment table. Search a small window instead of parsing,
    // so a broken page header still gets a name.
    let head = &bytes[..bytes.len().min(512)];
    let has = |magic: &[u8]| head.windows(magic.len()).any(|w| w == magic);
    if has(b"OpusHead") {
        "Ogg Opus"
    } else if has(b"\x01vorbis") {
        "Ogg Vorbis"
    } else if has(b"\x7fFLAC") {
        "Ogg FLAC"
    } else if has(b"Speex   ") {
        "Ogg Speex"
    } else if has(b"\x80theora") {
        "Ogg Theora"
    } else {
        "Ogg (unknown codec)"
    }
}

/// What follows an ID3v2 tag: usually MPEG audio, sometimes FLAC or ADTS AAC.
fn after_id3(bytes: &[u8]) -> &'static str {
    // The tag size is four 7-bit "syncsafe" bytes at offset 6, excluding the 10-byte header
    // (and a 10-byte footer when flag bit 4 is set).
    let Some(size) = bytes.get(6..10) else { return "MP3" };
    let len = size.iter().fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
    let footer = bytes.get(5).is_some_and(|f| f & 0x10 != 0);
    let end = 10 + len + if footer { 10 } else { 0 };
    match bytes.get(end..) {
        Some(rest) if rest.starts_with(b"fLaC") => "FLAC",
        Some(rest) => match mpeg_sync(rest) {
            Some(name) => name,
            None => "MP3",
        },
        None => "MP3",
    }
}

/// An MPEG audio or ADTS frame header at the start of `bytes`.
fn mpeg_sync(bytes: &[u8]) -> Option<&'static str> {
    let &[b0, b1, b2, ..] = bytes else { return None };
    if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b1 >> 3) & 0x03;
    let layer = (b1 >> 1) & 0x03;
    if layer == 0 {
        // Layer bits 00 with the 12-bit sync is how ADTS marks itself.
        return (b1 & 0xF0 == 0xF0).then_some("AAC (ADTS)");
    }
    let bitrate = b2 >> 4;
    let rate = (b2 >> 2) & 0x03;
    if version == 0x01 || bitrate == 0x0F || rate == 0x03 {
        return None;
    }
    // Layer I/II decoders are not compiled in, but naming them lets the message be exact.
    match layer {
        0x01 => Some("MP3"),
        0x02 => Some("MPEG Layer II"),
        _ => Some("MPEG Layer I"),
    }
}

/// Whether `bytes` look like text: UTF-8 without control characters other than whitespace.
/// Used only for bytes that match no container, to give a more useful refusal (a JSON error
/// body or a base64 string sent by mistake).
pub(crate) fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A multi-byte character cut by the 4096-byte window is still text.
        Err(e) if e.error_len().is_none() => match std::str::from_utf8(&head[..e.valid_up_to()]) {
            Ok(t) => t,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    !text.is_empty() && text.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}
