// The charts, drawn on canvases: the waveform, the log-mel spectrogram and the emotion
// timeline as stacked areas of the class probabilities.

import type { MelSpectrogram } from "./dsp";
import type { WindowResult } from "./proto";

/** The page background of every chart. */
export const BACKGROUND = "#ffffff";

const CLASS_COLOURS: Record<string, string> = {
  angry: "#d62728",
  disgust: "#8c564b",
  fear: "#9467bd",
  happy: "#ffbf00",
  neutral: "#7f7f7f",
  sad: "#1f77b4",
};
const SPARE = ["#2ca02c", "#17becf", "#e377c2", "#bcbd22"];

/** A stable colour for a label (the six classes have fixed ones). */
export function colour(label: string, index: number): string {
  return CLASS_COLOURS[label] ?? SPARE[index % SPARE.length];
}

/** Sizes the canvas for the device pixel ratio and returns its context and CSS size. */
function setup(canvas: HTMLCanvasElement): { g: CanvasRenderingContext2D; w: number; h: number } {
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const g = canvas.getContext("2d");
  if (!g) throw new Error("no 2D canvas");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.fillStyle = BACKGROUND;
  g.fillRect(0, 0, w, h);
  return { g, w, h };
}

/** A message in place of a chart. */
export function drawMessage(canvas: HTMLCanvasElement, text: string): void {
  canvas.dataset.chart = "message";
  const { g, w, h } = setup(canvas);
  g.fillStyle = "#666";
  g.font = "14px system-ui, sans-serif";
  g.textAlign = "center";
  g.textBaseline = "middle";
  g.fillText(text, w / 2, h / 2);
}

/** The waveform as min/max per pixel column. */
export function drawWaveform(canvas: HTMLCanvasElement, samples: Float32Array, rate: number): void {
  canvas.dataset.chart = "drawn";
  const { g, w, h } = setup(canvas);
  const mid = h / 2;
  g.strokeStyle = "#ddd";
  g.beginPath();
  g.moveTo(0, mid);
  g.lineTo(w, mid);
  g.stroke();
  let peak = 1e-6;
  for (const s of samples) peak = Math.max(peak, Math.abs(s));
  const per = samples.length / w;
  g.fillStyle = "#1f5f99";
  for (let x = 0; x < w; x++) {
    const a = Math.floor(x * per);
    const b = Math.max(a + 1, Math.floor((x + 1) * per));
    let lo = 0;
    let hi = 0;
    for (let i = a; i < b && i < samples.length; i++) {
      lo = Math.min(lo, samples[i]);
      hi = Math.max(hi, samples[i]);
    }
    const y0 = mid - (hi / peak) * (mid - 4);
    const y1 = mid - (lo / peak) * (mid - 4);
    g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
  axisLabel(g, `${(samples.length / rate).toFixed(2)} s`, w, h);
}

function axisLabel(g: CanvasRenderingContext2D, text: string, w: number, h: number): void {
  g.fillStyle = "#444";
  g.font = "11px system-ui, sans-serif";
  g.textAlign = "right";
  g.textBaseline = "bottom";
  g.fillText(text, w - 4, h - 2);
}

/** Five-stop colour map from dark blue (quiet) to yellow (loud). */
const STOPS: [number, number, number][] = [
  [13, 8, 55],
  [84, 15, 109],
  [187, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

function heat(v: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** The log-mel spectrogram, low frequencies at the bottom, -80..0 dB mapped to the colours. */
export function drawMel(canvas: HTMLCanvasElement, mel: MelSpectrogram): void {
  canvas.dataset.chart = "drawn";
  const { g, w, h } = setup(canvas);
  const img = new ImageData(mel.frames, mel.mels);
  for (let t = 0; t < mel.frames; t++) {
    for (let m = 0; m < mel.mels; m++) {
      const [r, gr, b] = heat((mel.data[t * mel.mels + m] + 80) / 80);
      const at = 4 * ((mel.mels - 1 - m) * mel.frames + t);
      img.data[at] = r;
      img.data[at + 1] = gr;
      img.data[at + 2] = b;
      img.data[at + 3] = 255;
    }
  }
  // Scale the frames × mels image to the canvas through an offscreen canvas.
  const off = document.createElement("canvas");
  off.width = mel.frames;
  off.height = mel.mels;
  off.getContext("2d")?.putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(off, 0, 0, w, h);
  axisLabel(g, `${mel.mels} mel bands`, w, h);
}

/**
 * The timeline: for each window (placed at its centre on a time axis of `duration` seconds)
 * the class probabilities stacked bottom to top in `labels` order, as filled areas.
 */
export function drawTimeline(
  canvas: HTMLCanvasElement,
  windows: WindowResult[],
  labels: string[],
  duration: number,
): void {
  if (windows.length === 0) {
    canvas.dataset.windows = "0";
    drawMessage(canvas, "no timeline: the audio is shorter than one window (or all windows were silent)");
    return;
  }
  canvas.dataset.chart = "drawn";
  canvas.dataset.windows = String(windows.length);
  const { g, w, h } = setup(canvas);
  const span = Math.max(duration, windows[windows.length - 1].endSeconds, 1e-6);
  const x = (t: number) => (t / span) * w;
  const y = (p: number) => h - p * h;
  // Each window is a point at its centre; the first and last are held flat out to the start
  // of the first window and the end of the last, so the areas cover the analysed audio.
  const first = windows[0];
  const last = windows[windows.length - 1];
  const points = [
    { t: first.startSeconds, w: first },
    ...windows.map((win) => ({ t: (win.startSeconds + win.endSeconds) / 2, w: win })),
    { t: last.endSeconds, w: last },
  ];
  const prob = (win: WindowResult, label: string) => win.scores.find((s) => s.label === label)?.probability ?? 0;
  let below = points.map(() => 0);
  labels.forEach((label, li) => {
    const above = points.map((p, i) => below[i] + prob(p.w, label));
    g.beginPath();
    points.forEach((p, i) => (i === 0 ? g.moveTo(x(p.t), y(above[i])) : g.lineTo(x(p.t), y(above[i]))));
    for (let i = points.length - 1; i >= 0; i--) g.lineTo(x(points[i].t), y(below[i]));
    g.closePath();
    g.fillStyle = colour(label, li);
    g.fill();
    below = above;
  });
  axisLabel(g, `${windows.length} windows of ${(first.endSeconds - first.startSeconds).toFixed(2)} s`, w, h);
}
