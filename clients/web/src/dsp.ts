// The display's signal processing: mixdown, a log-mel spectrogram (radix-2 FFT, Hann window,
// triangular mel filters on the HTK mel scale) and a 16-bit WAV encoder. The spectrogram is
// for looking at; the server computes the model's own features.

/** A log-mel spectrogram: `frames` rows of `mels` values in dB (at most 0, floored at -80). */
export interface MelSpectrogram {
  frames: number;
  mels: number;
  data: Float32Array;
  hopSeconds: number;
}

/** Averages the channels of `buffer` into one. */
export function mixdown(buffer: AudioBuffer): Float32Array {
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const ch = buffer.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += ch[i] / buffer.numberOfChannels;
  }
  return out;
}

/** In-place iterative radix-2 FFT of (re, im); the length must be a power of two. */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci;
        const ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const nr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = nr;
      }
    }
  }
}

const hzToMel = (hz: number) => 2595 * Math.log10(1 + hz / 700);
const melToHz = (mel: number) => 700 * (10 ** (mel / 2595) - 1);

/** Triangular filters: `mels` rows over `nFft / 2 + 1` bins, from 0 Hz to Nyquist. */
function melFilters(rate: number, nFft: number, mels: number): Float32Array[] {
  const bins = nFft / 2 + 1;
  const top = hzToMel(rate / 2);
  const edges = Array.from({ length: mels + 2 }, (_, i) => melToHz((top * i) / (mels + 1)));
  const binHz = rate / nFft;
  return Array.from({ length: mels }, (_, m) => {
    const [lo, mid, hi] = [edges[m], edges[m + 1], edges[m + 2]];
    const f = new Float32Array(bins);
    for (let b = 0; b < bins; b++) {
      const hz = b * binHz;
      if (hz > lo && hz < hi) f[b] = hz <= mid ? (hz - lo) / (mid - lo) : (hi - hz) / (hi - mid);
    }
    return f;
  });
}

/** The log-mel spectrogram of `samples` at `rate`, with frames centred every `hop` samples. */
export function melSpectrogram(samples: Float32Array, rate: number, nFft = 1024, hop = 256, mels = 64): MelSpectrogram {
  const frames = Math.max(1, Math.floor(samples.length / hop) + 1);
  const filters = melFilters(rate, nFft, mels);
  const window = Float64Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft));
  const data = new Float32Array(frames * mels);
  const re = new Float64Array(nFft);
  const im = new Float64Array(nFft);
  const power = new Float64Array(nFft / 2 + 1);
  let max = 1e-10;
  for (let t = 0; t < frames; t++) {
    const start = t * hop - nFft / 2;
    for (let i = 0; i < nFft; i++) {
      const s = samples[start + i];
      re[i] = s === undefined ? 0 : s * window[i];
      im[i] = 0;
    }
    fft(re, im);
    for (let b = 0; b < power.length; b++) power[b] = re[b] * re[b] + im[b] * im[b];
    for (let m = 0; m < mels; m++) {
      const f = filters[m];
      let acc = 0;
      for (let b = 0; b < power.length; b++) if (f[b] !== 0) acc += f[b] * power[b];
      data[t * mels + m] = acc;
      if (acc > max) max = acc;
    }
  }
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.max(-80, 10 * Math.log10(Math.max(data[i], 1e-10) / max));
  }
  return { frames, mels, data, hopSeconds: hop / rate };
}

/** Mono samples in [-1, 1] as a 16-bit PCM WAV file. */
export function encodeWav(samples: Float32Array, rate: number): Uint8Array {
  const out = new Uint8Array(44 + samples.length * 2);
  const v = new DataView(out.buffer);
  const text = (at: number, s: string) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  text(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + 2 * i, Math.round(s < 0 ? s * 32768 : s * 32767), true);
  }
  return out;
}
