// The Prosodia page: pick a file or record the microphone, send it to the server's Classify
// over gRPC-Web (with an emotion timeline), and show the answer with the waveform and
// mel-spectrogram the browser computes from the same audio.

import { drawMel, drawMessage, drawTimeline, drawWaveform, colour } from "./charts";
import { encodeWav, melSpectrogram, mixdown } from "./dsp";
import { GrpcError, unary } from "./grpcweb";
import { type ClassifyResponse, decodeClassifyResponse, encodeClassifyRequest } from "./proto";

/** The rate the browser decodes to for the charts (the server decodes the file itself). */
const DISPLAY_RATE = 16000;
/** Longest recording, in seconds. */
const MAX_RECORDING_SECONDS = 60;
/** The server's limit on timeline windows (TimelineOptions in emotion.proto). */
const MAX_WINDOWS = 1000;

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  file: el<HTMLInputElement>("file"),
  record: el<HTMLButtonElement>("record"),
  window: el<HTMLInputElement>("window-seconds"),
  hop: el<HTMLInputElement>("hop-seconds"),
  status: el<HTMLElement>("status"),
  error: el<HTMLElement>("error"),
  result: el<HTMLElement>("result"),
  label: el<HTMLElement>("label"),
  details: el<HTMLElement>("details"),
  scores: el<HTMLElement>("scores"),
  playback: el<HTMLAudioElement>("playback"),
  waveform: el<HTMLCanvasElement>("waveform"),
  mel: el<HTMLCanvasElement>("mel"),
  timeline: el<HTMLCanvasElement>("timeline"),
  legend: el<HTMLElement>("legend"),
};

type State = "idle" | "busy" | "done" | "error";

function setStatus(state: State, text: string): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  document.body.dataset.state = state;
}

function showError(message: string): void {
  ui.error.textContent = message;
  ui.error.hidden = false;
  ui.result.hidden = true;
  setStatus("error", "The server refused the input.");
}

/** Decoded audio for the charts, or null when the browser cannot decode the format. */
async function decodeForDisplay(bytes: Uint8Array): Promise<Float32Array | null> {
  try {
    const ctx = new OfflineAudioContext(1, 1, DISPLAY_RATE);
    // decodeAudioData takes ownership of its buffer: give it a copy.
    const buffer = await ctx.decodeAudioData(bytes.slice().buffer);
    return mixdown(buffer);
  } catch {
    return null;
  }
}

/** Window and hop from the form, the hop widened so long audio stays under the window limit. */
function windowing(duration: number | null): { windowSeconds: number; hopSeconds: number } {
  const windowSeconds = Math.max(0.1, Number(ui.window.value) || 1);
  let hopSeconds = Math.min(windowSeconds, Math.max(0.01, Number(ui.hop.value) || 0.25));
  if (duration !== null && duration / hopSeconds > MAX_WINDOWS * 0.9) {
    hopSeconds = Math.ceil((duration / (MAX_WINDOWS * 0.9)) * 1000) / 1000;
  }
  return { windowSeconds: Math.max(windowSeconds, hopSeconds), hopSeconds };
}

let generation = 0;

/** Classifies `bytes` and shows the result; a newer call supersedes an older one. */
async function analyse(bytes: Uint8Array, name: string): Promise<void> {
  const mine = ++generation;
  ui.error.hidden = true;
  ui.error.textContent = "";
  setStatus("busy", `Analysing ${name} …`);
  const samples = await decodeForDisplay(bytes);
  const duration = samples ? samples.length / DISPLAY_RATE : null;
  let resp: ClassifyResponse;
  try {
    const request = encodeClassifyRequest({ model: "", audio: bytes, timeline: windowing(duration) });
    resp = decodeClassifyResponse(await unary("/prosodia.v1.Emotion/Classify", request));
  } catch (e) {
    if (mine !== generation) return;
    showError(e instanceof GrpcError ? e.message : `Error: ${(e as Error).message}`);
    return;
  }
  if (mine !== generation) return;
  render(resp, samples, name);
  setStatus("done", `Classified ${name}.`);
  URL.revokeObjectURL(ui.playback.src);
  ui.playback.src = URL.createObjectURL(new Blob([bytes.slice().buffer]));
}

function render(resp: ClassifyResponse, samples: Float32Array | null, name: string): void {
  ui.result.hidden = false;
  ui.label.textContent = resp.label;
  const best = resp.scores.find((s) => s.label === resp.label)?.probability ?? 0;
  ui.details.textContent =
    `${name}: ${resp.audioDurationSeconds.toFixed(2)} s, ${(100 * best).toFixed(0)} % ${resp.label}; ` +
    `model ${resp.model} v${resp.modelVersion}; server ${resp.timings.totalMs.toFixed(0)} ms`;
  const labels = resp.scores.map((s) => s.label);
  ui.scores.replaceChildren(
    ...resp.scores.map((s, i) => {
      const row = document.createElement("li");
      row.dataset.label = s.label;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = s.label;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = `${(100 * s.probability).toFixed(1)}%`;
      fill.style.background = colour(s.label, i);
      bar.append(fill);
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = `${(100 * s.probability).toFixed(1)} %`;
      row.append(name, bar, pct);
      if (s.label === resp.label) row.classList.add("best");
      return row;
    }),
  );
  ui.legend.replaceChildren(
    ...labels.map((l, i) => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = colour(l, i);
      item.append(swatch, l);
      return item;
    }),
  );
  if (samples && samples.length > 0) {
    drawWaveform(ui.waveform, samples, DISPLAY_RATE);
    drawMel(ui.mel, melSpectrogram(samples, DISPLAY_RATE));
  } else {
    const why = "the browser cannot decode this format; the server could";
    drawMessage(ui.waveform, why);
    drawMessage(ui.mel, why);
  }
  drawTimeline(ui.timeline, resp.timeline, labels, resp.audioDurationSeconds);
}

ui.file.addEventListener("change", async () => {
  const file = ui.file.files?.[0];
  if (!file) return;
  await analyse(new Uint8Array(await file.arrayBuffer()), file.name);
});

/** A running microphone recording. */
interface Recording {
  ctx: AudioContext;
  stream: MediaStream;
  chunks: Float32Array[];
  started: number;
  timer: number;
}

let recording: Recording | null = null;

async function startRecording(): Promise<void> {
  if (!navigator.mediaDevices?.getUserMedia) {
    showError("Recording needs a secure page (https:// or http://localhost) and a browser with microphone access.");
    return;
  }
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    showError(`Cannot use the microphone: ${(e as Error).message}`);
    return;
  }
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule("recorder-worklet.js");
  const source = ctx.createMediaStreamSource(stream);
  const tap = new AudioWorkletNode(ctx, "prosodia-recorder");
  const chunks: Float32Array[] = [];
  tap.port.onmessage = (m: MessageEvent<Float32Array>) => chunks.push(m.data);
  // A silent path to the output keeps the graph (and so the tap) running.
  const mute = ctx.createGain();
  mute.gain.value = 0;
  source.connect(tap).connect(mute).connect(ctx.destination);
  const started = performance.now();
  const timer = window.setInterval(() => {
    const secs = (performance.now() - started) / 1000;
    ui.record.textContent = `Stop and classify (${secs.toFixed(1)} s)`;
    if (secs >= MAX_RECORDING_SECONDS) void stopRecording();
  }, 100);
  recording = { ctx, stream, chunks, started, timer };
  ui.record.classList.add("recording");
  ui.error.hidden = true;
  ui.error.textContent = "";
  setStatus("busy", "Recording from the microphone …");
}

async function stopRecording(): Promise<void> {
  const r = recording;
  if (!r) return;
  recording = null;
  window.clearInterval(r.timer);
  r.stream.getTracks().forEach((t) => t.stop());
  const rate = r.ctx.sampleRate;
  await r.ctx.close();
  ui.record.textContent = "Record";
  ui.record.classList.remove("recording");
  const total = r.chunks.reduce((n, c) => n + c.length, 0);
  const samples = new Float32Array(total);
  let at = 0;
  for (const c of r.chunks) {
    samples.set(c, at);
    at += c.length;
  }
  await analyse(encodeWav(samples, rate), "the recording");
}

ui.record.addEventListener("click", () => void (recording ? stopRecording() : startRecording()));

setStatus("idle", "Choose an audio file or record from the microphone.");
drawMessage(ui.waveform, "waveform");
drawMessage(ui.mel, "mel-spectrogram");
drawMessage(ui.timeline, "emotion timeline");
