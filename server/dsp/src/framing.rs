//! Time-domain frame features on librosa's centred frame grid: RMS and zero-crossing rate.
//!
//! librosa centres frames by padding `frame_length / 2` samples on each side; RMS pads with
//! zeros (`pad_mode="constant"`) while the zero-crossing rate repeats the edge sample. Both
//! keep that here so frame `t` covers the same samples as frame `t` of the STFT.

/// Number of frames librosa produces for `len` samples with centred framing.
pub fn centered_frame_count(len: usize, frame_length: usize, hop_length: usize) -> usize {
    let padded = len + 2 * (frame_length / 2);
    if padded < frame_length || hop_length == 0 {
        0
    } else {
        1 + (padded - frame_length) / hop_length
    }
}

/// Root-mean-square energy per centred frame (`librosa.feature.rms(y=...)`).
pub fn rms(y: &[f32], frame_length: usize, hop_length: usize) -> Vec<f32> {
    let mut out = Vec::new();
    rms_into(y, frame_length, hop_length, &mut out);
    out
}

/// [`rms`] writing into a caller buffer (cleared first).
pub fn rms_into(y: &[f32], frame_length: usize, hop_length: usize, out: &mut Vec<f32>) {
    out.clear();
    let n = centered_frame_count(y.len(), frame_length, hop_length);
    let pad = (frame_length / 2) as isize;
    if hop_length > 0
        && frame_length.is_multiple_of(hop_length)
        && (pad as usize).is_multiple_of(hop_length)
    {
        rms_by_blocks(y, frame_length, hop_length, n, out);
        return;
    }
    // Prefix sums of squares make each frame O(1); f64 keeps the running sum exact enough.
    let mut prefix = Vec::with_capacity(y.len() + 1);
    prefix.push(0.0f64);
    let mut acc = 0.0f64;
    for &v in y {
        acc += f64::from(v) * f64::from(v);
        prefix.push(acc);
    }
    for t in 0..n {
        let start = t as isize * hop_length as isize - pad;
        let end = start + frame_length as isize;
        let a = start.clamp(0, y.len() as isize) as usize;
        let b = end.clamp(0, y.len() as isize) as usize;
        let power = (prefix[b] - prefix[a]).max(0.0) / frame_length as f64;
        out.push(power.sqrt() as f32);
    }
}

/// [`rms_into`] when every frame edge falls on a multiple of the hop (the seed
/// configuration: 2048 / 512): squares are summed per hop-long block in independent lanes,
/// which vectorises, and frames add up whole blocks. Cheaper than a per-sample prefix sum,
/// whose single dependency chain runs one add per sample, and more exact (shorter sums).
fn rms_by_blocks(y: &[f32], frame_length: usize, hop_length: usize, n: usize, out: &mut Vec<f32>) {
    let blocks = y.len().div_ceil(hop_length);
    let mut prefix = Vec::with_capacity(blocks + 1);
    prefix.push(0.0f64);
    let mut total = 0.0f64;
    for block in y.chunks(hop_length) {
        let mut acc = [0.0f64; 8];
        let lanes = block.chunks_exact(8);
        let rest = lanes.remainder();
        for c in lanes {
            for k in 0..8 {
                acc[k] += f64::from(c[k]) * f64::from(c[k]);
            }
        }
        let mut sum = acc.iter().sum::<f64>();
        for &v in rest {
            sum += f64::from(v) * f64::from(v);
        }
        total += sum;
        prefix.push(total);
    }
    let (pad_blocks, frame_blocks) =
        ((frame_length / 2 / hop_length) as isize, frame_length / hop_length);
    for t in 0..n {
        let a = (t as isize - pad_blocks).clamp(0, blocks as isize) as usize;
        let b =
            (t as isize - pad_blocks + frame_blocks as isize).clamp(0, blocks as isize) as usize;
        let power = (prefix[b] - prefix[a]).max(0.0) / frame_length as f64;
        out.push(power.sqrt() as f32);
    }
}

/// Zero-crossing rate per centred frame (`librosa.feature.zero_crossing_rate`): the fraction of
/// sample pairs in the frame whose signs differ, with |x| ≤ 1e-10 counted as zero and zero
/// counted as positive.
pub fn zero_crossing_rate(y: &[f32], frame_length: usize, hop_length: usize) -> Vec<f32> {
    let mut out = Vec::new();
    zero_crossing_rate_into(y, frame_length, hop_length, &mut out);
    out
}

/// [`zero_crossing_rate`] writing into a caller buffer (cleared first).
pub fn zero_crossing_rate_into(
    y: &[f32],
    frame_length: usize,
    hop_length: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    if y.is_empty() {
        return;
    }
    let n = centered_frame_count(y.len(), frame_length, hop_length);
    let pad = frame_length / 2;
    let negative = |i: isize| -> bool {
        // Edge padding: indices outside the signal repeat the first or last sample.
        let idx = i.clamp(0, y.len() as isize - 1) as usize;
        let v = y[idx];
        v.abs() > 1e-10 && v < 0.0
    };
    // crossing[i] = sign(x[i]) != sign(x[i-1]) on the padded signal; prefix-count them.
    let padded_len = y.len() + 2 * pad;
    let mut prefix = Vec::with_capacity(padded_len + 1);
    prefix.push(0u32);
    let mut count = 0u32;
    let mut prev = negative(-(pad as isize));
    for p in 0..padded_len {
        let cur = negative(p as isize - pad as isize);
        if p > 0 && cur != prev {
            count += 1;
        }
        prev = cur;
        prefix.push(count);
    }
    for t in 0..n {
        let start = t * hop_length;
        // Within a frame the first sample has no predecessor, so count pairs (start, start+1..).
        let crossings = prefix[start + frame_length] - prefix[start + 1];
        out.push(crossings as f32 / frame_length as f32);
    }
}
