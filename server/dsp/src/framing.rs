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
    if hop_length > 0 && frame_length.is_multiple_of(hop_length) && pad.is_multiple_of(hop_length) {
        zcr_by_blocks(y, frame_length, hop_length, n, out);
        return;
    }
    // Edge padding repeats the first and last samples, so sign changes happen only between
    // samples of the signal itself: at position i (between y[i-1] and y[i]) for i in 1..len.
    // crossings[i] counts those at positions 1..=i. A sample is negative when below -1e-10
    // (|x| <= 1e-10 counts as zero, and zero as positive).
    let mut crossings = Vec::with_capacity(y.len());
    let mut count = 0u32;
    let mut previous = is_negative(y[0]);
    for &v in y {
        let negative = is_negative(v);
        count += u32::from(negative != previous);
        previous = negative;
        crossings.push(count);
    }
    let last = y.len() as isize - 1;
    for t in 0..n {
        // The frame starts at padded index t·hop, i.e. signal index t·hop - pad; its first
        // sample has no predecessor inside the frame, so positions start+1 ..= start+len-1.
        let start = (t * hop_length) as isize - pad as isize;
        let first = (start + 1).max(1);
        let end = (start + frame_length as isize - 1).min(last);
        let inside =
            if end >= first { crossings[end as usize] - crossings[first as usize - 1] } else { 0 };
        out.push(inside as f32 / frame_length as f32);
    }
}

/// A sample below this counts as negative (|x| ≤ 1e-10 is zero, and zero is positive).
fn is_negative(v: f32) -> bool {
    v < -1e-10
}

/// [`zero_crossing_rate_into`] when every frame edge falls on a multiple of the hop (the seed
/// configuration: 2048 / 512), the way [`rms_by_blocks`] does RMS: sign changes are counted per
/// hop-long block of positions with a branch-free comparison of each sample with the one
/// before (which vectorises), and a frame adds up its whole blocks. Position `p` is the change
/// between samples `p - 1` and `p`; a frame starting at `start` (a multiple of the hop) counts
/// the positions `start + 1 ..= start + frame_length - 1`, i.e. its blocks less position
/// `start`. Replaces a per-sample running count whose single dependency chain could not be
/// vectorised and which wrote four bytes per sample.
fn zcr_by_blocks(y: &[f32], frame_length: usize, hop_length: usize, n: usize, out: &mut Vec<f32>) {
    let blocks = y.len().div_ceil(hop_length);
    let mut prefix = Vec::with_capacity(blocks + 1);
    prefix.push(0u32);
    let mut total = 0u32;
    for b in 0..blocks {
        let lo = (b * hop_length).max(1);
        let hi = ((b + 1) * hop_length).min(y.len());
        if lo < hi {
            total += y[lo - 1..hi - 1]
                .iter()
                .zip(&y[lo..hi])
                .map(|(&a, &c)| u32::from(is_negative(a) != is_negative(c)))
                .sum::<u32>();
        }
        prefix.push(total);
    }
    let crossing_at = |p: isize| -> u32 {
        if p >= 1 && (p as usize) < y.len() {
            let p = p as usize;
            u32::from(is_negative(y[p - 1]) != is_negative(y[p]))
        } else {
            0
        }
    };
    let (pad_blocks, frame_blocks) =
        ((frame_length / 2 / hop_length) as isize, (frame_length / hop_length) as isize);
    for t in 0..n {
        let first_block = t as isize - pad_blocks;
        let a = first_block.clamp(0, blocks as isize) as usize;
        let b = (first_block + frame_blocks).clamp(0, blocks as isize) as usize;
        let inside = prefix[b] - prefix[a] - crossing_at(first_block * hop_length as isize);
        out.push(inside as f32 / frame_length as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librosa's definition spelled out: edge-pad, cut frames, count sign changes in each.
    fn zero_crossing_rate_by_definition(y: &[f32], frame: usize, hop: usize) -> Vec<f32> {
        let pad = frame / 2;
        let last = y.len() as isize - 1;
        let padded: Vec<f32> = (0..y.len() + 2 * pad)
            .map(|p| y[(p as isize - pad as isize).clamp(0, last) as usize])
            .collect();
        let negative = |v: f32| v.abs() > 1e-10 && v < 0.0;
        (0..centered_frame_count(y.len(), frame, hop))
            .map(|t| {
                let f = &padded[t * hop..t * hop + frame];
                let changes = f.windows(2).filter(|w| negative(w[0]) != negative(w[1])).count();
                changes as f32 / frame as f32
            })
            .collect()
    }

    #[test]
    fn zero_crossing_rate_follows_the_definition() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [1usize, 2, 3, 100, 511, 512, 513, 2047, 2048, 5000] {
            // Runs of one sign, with exact zeros, tiny values either side of the 1e-10 cut,
            // and -0.0 among them.
            let y: Vec<f32> = (0..len)
                .map(|_| match next() % 8 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => -1e-11,
                    3 => -2e-10,
                    4 | 5 => 0.5,
                    _ => -0.25,
                })
                .collect();
            for (frame, hop) in [(2048, 512), (512, 128), (400, 160), (7, 3), (1, 1), (2, 5)] {
                assert_eq!(
                    zero_crossing_rate(&y, frame, hop),
                    zero_crossing_rate_by_definition(&y, frame, hop),
                    "{len} samples, frame {frame}, hop {hop}"
                );
            }
        }
    }
}
