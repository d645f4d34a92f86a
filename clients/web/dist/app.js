"use strict";
(() => {
  // src/charts.ts
  var BACKGROUND = "#ffffff";
  var CLASS_COLOURS = {
    angry: "#d62728",
    disgust: "#8c564b",
    fear: "#9467bd",
    happy: "#ffbf00",
    neutral: "#7f7f7f",
    sad: "#1f77b4"
  };
  var SPARE = ["#2ca02c", "#17becf", "#e377c2", "#bcbd22"];
  function colour(label, index) {
    return CLASS_COLOURS[label] ?? SPARE[index % SPARE.length];
  }
  function setup(canvas) {
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
  function drawMessage(canvas, text) {
    canvas.dataset.chart = "message";
    const { g, w, h } = setup(canvas);
    g.fillStyle = "#666";
    g.font = "14px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(text, w / 2, h / 2);
  }
  function drawWaveform(canvas, samples, rate) {
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
      const y0 = mid - hi / peak * (mid - 4);
      const y1 = mid - lo / peak * (mid - 4);
      g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
    }
    axisLabel(g, `${(samples.length / rate).toFixed(2)} s`, w, h);
  }
  function axisLabel(g, text, w, h) {
    g.fillStyle = "#444";
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "right";
    g.textBaseline = "bottom";
    g.fillText(text, w - 4, h - 2);
  }
  var STOPS = [
    [13, 8, 55],
    [84, 15, 109],
    [187, 55, 84],
    [249, 142, 9],
    [252, 255, 164]
  ];
  function heat(v) {
    const x = Math.max(0, Math.min(1, v)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(x));
    const f = x - i;
    const [a, b] = [STOPS[i], STOPS[i + 1]];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  }
  function drawMel(canvas, mel) {
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
    const off = document.createElement("canvas");
    off.width = mel.frames;
    off.height = mel.mels;
    off.getContext("2d")?.putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true;
    g.drawImage(off, 0, 0, w, h);
    axisLabel(g, `${mel.mels} mel bands`, w, h);
  }
  function drawTimeline(canvas, windows, labels, duration) {
    if (windows.length === 0) {
      canvas.dataset.windows = "0";
      drawMessage(canvas, "no timeline: the audio is shorter than one window (or all windows were silent)");
      return;
    }
    canvas.dataset.chart = "drawn";
    canvas.dataset.windows = String(windows.length);
    const { g, w, h } = setup(canvas);
    const span = Math.max(duration, windows[windows.length - 1].endSeconds, 1e-6);
    const x = (t) => t / span * w;
    const y = (p) => h - p * h;
    const first = windows[0];
    const last = windows[windows.length - 1];
    const points = [
      { t: first.startSeconds, w: first },
      ...windows.map((win) => ({ t: (win.startSeconds + win.endSeconds) / 2, w: win })),
      { t: last.endSeconds, w: last }
    ];
    const prob = (win, label) => win.scores.find((s) => s.label === label)?.probability ?? 0;
    let below = points.map(() => 0);
    labels.forEach((label, li) => {
      const above = points.map((p, i) => below[i] + prob(p.w, label));
      g.beginPath();
      points.forEach((p, i) => i === 0 ? g.moveTo(x(p.t), y(above[i])) : g.lineTo(x(p.t), y(above[i])));
      for (let i = points.length - 1; i >= 0; i--) g.lineTo(x(points[i].t), y(below[i]));
      g.closePath();
      g.fillStyle = colour(label, li);
      g.fill();
      below = above;
    });
    axisLabel(g, `${windows.length} windows of ${(first.endSeconds - first.startSeconds).toFixed(2)} s`, w, h);
  }

  // src/dsp.ts
  function mixdown(buffer) {
    const out = new Float32Array(buffer.length);
    for (let c = 0; c < buffer.numberOfChannels; c++) {
      const ch = buffer.getChannelData(c);
      for (let i = 0; i < out.length; i++) out[i] += ch[i] / buffer.numberOfChannels;
    }
    return out;
  }
  function fft(re, im) {
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
      const ang = -2 * Math.PI / len;
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
  var hzToMel = (hz) => 2595 * Math.log10(1 + hz / 700);
  var melToHz = (mel) => 700 * (10 ** (mel / 2595) - 1);
  function melFilters(rate, nFft, mels) {
    const bins = nFft / 2 + 1;
    const top = hzToMel(rate / 2);
    const edges = Array.from({ length: mels + 2 }, (_, i) => melToHz(top * i / (mels + 1)));
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
  function melSpectrogram(samples, rate, nFft = 1024, hop = 256, mels = 64) {
    const frames = Math.max(1, Math.floor(samples.length / hop) + 1);
    const filters = melFilters(rate, nFft, mels);
    const window2 = Float64Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos(2 * Math.PI * i / nFft));
    const data = new Float32Array(frames * mels);
    const re = new Float64Array(nFft);
    const im = new Float64Array(nFft);
    const power = new Float64Array(nFft / 2 + 1);
    let max = 1e-10;
    for (let t = 0; t < frames; t++) {
      const start = t * hop - nFft / 2;
      for (let i = 0; i < nFft; i++) {
        const s = samples[start + i];
        re[i] = s === void 0 ? 0 : s * window2[i];
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
  function encodeWav(samples, rate) {
    const out = new Uint8Array(44 + samples.length * 2);
    const v = new DataView(out.buffer);
    const text = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
    text(0, "RIFF");
    v.setUint32(4, 36 + samples.length * 2, true);
    text(8, "WAVE");
    text(12, "fmt ");
    v.setUint32(16, 16, true);
    v.setUint16(20, 1, true);
    v.setUint16(22, 1, true);
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

  // src/grpcweb.ts
  var CODE_NAMES = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED"
  ];
  var UNKNOWN = 2;
  var UNAVAILABLE = 14;
  var GrpcError = class extends Error {
    constructor(code, detail) {
      super(`${CODE_NAMES[code] ?? `code ${code}`}: ${detail}`);
      this.code = code;
      this.detail = detail;
      this.name = "GrpcError";
    }
    code;
    detail;
    get codeName() {
      return CODE_NAMES[this.code] ?? `code ${this.code}`;
    }
  };
  var DATA_FRAME = 0;
  var TRAILERS_FRAME = 128;
  function frame(message) {
    const out = new Uint8Array(5 + message.length);
    const view = new DataView(out.buffer);
    view.setUint8(0, DATA_FRAME);
    view.setUint32(1, message.length, false);
    out.set(message, 5);
    return out;
  }
  function decodeMessage(raw) {
    if (!raw) return "";
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  function parseTrailers(bytes) {
    const out = /* @__PURE__ */ new Map();
    for (const line of new TextDecoder().decode(bytes).split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i > 0) out.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    return out;
  }
  function parseFrames(body) {
    const messages = [];
    let trailers = null;
    let pos = 0;
    while (pos < body.length) {
      if (pos + 5 > body.length) throw new GrpcError(UNKNOWN, "truncated gRPC-Web frame header");
      const view = new DataView(body.buffer, body.byteOffset + pos, 5);
      const flag = view.getUint8(0);
      const len = view.getUint32(1, false);
      const start = pos + 5;
      if (start + len > body.length) throw new GrpcError(UNKNOWN, "truncated gRPC-Web frame");
      const payload = body.subarray(start, start + len);
      if (flag & TRAILERS_FRAME) trailers = parseTrailers(payload);
      else if (flag === DATA_FRAME) messages.push(payload);
      else throw new GrpcError(UNKNOWN, `unsupported gRPC-Web frame flag 0x${flag.toString(16)}`);
      pos = start + len;
    }
    return { messages, trailers };
  }
  function statusFrom(code, message) {
    if (code === null || code === void 0) return null;
    const n = Number.parseInt(code, 10);
    if (n === 0) return null;
    return new GrpcError(Number.isFinite(n) ? n : UNKNOWN, decodeMessage(message) || "(no message)");
  }
  async function unary(path, request, signal) {
    let resp;
    try {
      resp = await fetch(path, {
        method: "POST",
        headers: {
          "content-type": "application/grpc-web+proto",
          accept: "application/grpc-web+proto",
          "x-grpc-web": "1"
        },
        body: frame(request),
        signal
      });
    } catch (e) {
      throw new GrpcError(UNAVAILABLE, `cannot reach the server: ${e.message}`);
    }
    const early = statusFrom(resp.headers.get("grpc-status"), resp.headers.get("grpc-message"));
    if (early) throw early;
    if (!resp.ok) throw new GrpcError(UNKNOWN, `HTTP ${resp.status} ${resp.statusText}`.trim());
    const { messages, trailers } = parseFrames(new Uint8Array(await resp.arrayBuffer()));
    const status = trailers ?? /* @__PURE__ */ new Map();
    const failed = statusFrom(status.get("grpc-status") ?? resp.headers.get("grpc-status"), status.get("grpc-message"));
    if (failed) throw failed;
    if (!status.has("grpc-status") && !resp.headers.has("grpc-status")) {
      throw new GrpcError(UNKNOWN, "the response ended without a gRPC status");
    }
    if (messages.length !== 1) {
      throw new GrpcError(UNKNOWN, `expected one response message, got ${messages.length}`);
    }
    return messages[0];
  }

  // src/proto.ts
  var VARINT = 0;
  var FIXED64 = 1;
  var LEN = 2;
  var FIXED32 = 5;
  var Writer = class {
    bytes = [];
    varint(value) {
      let v = value;
      while (v > 127) {
        this.bytes.push(v % 128 | 128);
        v = Math.floor(v / 128);
      }
      this.bytes.push(v);
      return this;
    }
    tag(field, wire) {
      return this.varint(field * 8 + wire);
    }
    bytesField(field, data) {
      this.tag(field, LEN).varint(data.length);
      for (const b of data) this.bytes.push(b);
      return this;
    }
    stringField(field, s) {
      return s === "" ? this : this.bytesField(field, new TextEncoder().encode(s));
    }
    doubleField(field, v) {
      if (v === 0) return this;
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, true);
      this.tag(field, FIXED64);
      for (const x of b) this.bytes.push(x);
      return this;
    }
    uintField(field, v) {
      return v === 0 ? this : this.tag(field, VARINT).varint(v);
    }
    finish() {
      return Uint8Array.from(this.bytes);
    }
  };
  var Reader = class {
    constructor(buf) {
      this.buf = buf;
    }
    buf;
    pos = 0;
    get done() {
      return this.pos >= this.buf.length;
    }
    varint() {
      let result = 0;
      let scale = 1;
      for (let i = 0; i < 10; i++) {
        if (this.pos >= this.buf.length) throw new Error("truncated protobuf varint");
        const b = this.buf[this.pos++];
        result += (b & 127) * scale;
        if (b < 128) return result;
        scale *= 128;
      }
      throw new Error("protobuf varint longer than 10 bytes");
    }
    take(n) {
      if (this.pos + n > this.buf.length) throw new Error("truncated protobuf field");
      const out = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      return out;
    }
    bytes() {
      return this.take(this.varint());
    }
    string() {
      return new TextDecoder().decode(this.bytes());
    }
    double() {
      const b = this.take(8);
      return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
    }
    float() {
      const b = this.take(4);
      return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
    }
    skip(wire) {
      switch (wire) {
        case VARINT:
          this.varint();
          break;
        case FIXED64:
          this.take(8);
          break;
        case LEN:
          this.bytes();
          break;
        case FIXED32:
          this.take(4);
          break;
        default:
          throw new Error(`unsupported protobuf wire type ${wire}`);
      }
    }
    /** Calls `field` for every field of the message; it returns false for fields it skips. */
    fields(field) {
      while (!this.done) {
        const key = this.varint();
        const num = Math.floor(key / 8);
        const wire = key % 8;
        if (!field(num, wire, this)) this.skip(wire);
      }
    }
  };
  function encodeClassifyRequest(req) {
    const w = new Writer().stringField(1, req.model);
    w.bytesField(2, new Writer().bytesField(1, req.audio).finish());
    if (req.timeline) {
      const t = new Writer().doubleField(1, req.timeline.windowSeconds).doubleField(2, req.timeline.hopSeconds).finish();
      w.bytesField(4, t);
    }
    return w.finish();
  }
  function decodeScore(buf) {
    const s = { label: "", probability: 0 };
    new Reader(buf).fields((num, wire, r) => {
      if (num === 1 && wire === LEN) s.label = r.string();
      else if (num === 2 && wire === FIXED32) s.probability = r.float();
      else return false;
      return true;
    });
    return s;
  }
  function decodeWindow(buf) {
    const w = { startSeconds: 0, endSeconds: 0, label: "", scores: [] };
    new Reader(buf).fields((num, wire, r) => {
      if (num === 1 && wire === FIXED64) w.startSeconds = r.double();
      else if (num === 2 && wire === FIXED64) w.endSeconds = r.double();
      else if (num === 3 && wire === LEN) w.label = r.string();
      else if (num === 4 && wire === LEN) w.scores.push(decodeScore(r.bytes()));
      else return false;
      return true;
    });
    return w;
  }
  function decodeTimings(buf) {
    const t = { decodeMs: 0, extractMs: 0, inferenceMs: 0, queueMs: 0, totalMs: 0 };
    const keys = ["decodeMs", "extractMs", "inferenceMs", "queueMs", "totalMs"];
    new Reader(buf).fields((num, wire, r) => {
      const key = keys[num - 1];
      if (key === void 0 || wire !== FIXED64) return false;
      t[key] = r.double();
      return true;
    });
    return t;
  }
  function decodeClassifyResponse(buf) {
    const out = {
      label: "",
      scores: [],
      model: "",
      modelVersion: 0,
      audioDurationSeconds: 0,
      timings: decodeTimings(new Uint8Array()),
      timeline: []
    };
    new Reader(buf).fields((num, wire, r) => {
      if (num === 1 && wire === LEN) out.label = r.string();
      else if (num === 2 && wire === LEN) out.scores.push(decodeScore(r.bytes()));
      else if (num === 3 && wire === LEN) out.model = r.string();
      else if (num === 4 && wire === VARINT) out.modelVersion = r.varint();
      else if (num === 5 && wire === FIXED64) out.audioDurationSeconds = r.double();
      else if (num === 6 && wire === LEN) out.timings = decodeTimings(r.bytes());
      else if (num === 7 && wire === LEN) out.timeline.push(decodeWindow(r.bytes()));
      else return false;
      return true;
    });
    return out;
  }

  // src/main.ts
  var DISPLAY_RATE = 16e3;
  var MAX_RECORDING_SECONDS = 60;
  var MAX_WINDOWS = 1e3;
  function el(id) {
    const found = document.getElementById(id);
    if (!found) throw new Error(`the page has no #${id}`);
    return found;
  }
  var ui = {
    file: el("file"),
    record: el("record"),
    window: el("window-seconds"),
    hop: el("hop-seconds"),
    status: el("status"),
    error: el("error"),
    result: el("result"),
    label: el("label"),
    details: el("details"),
    scores: el("scores"),
    playback: el("playback"),
    waveform: el("waveform"),
    mel: el("mel"),
    timeline: el("timeline"),
    legend: el("legend")
  };
  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
    document.body.dataset.state = state;
  }
  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
    ui.result.hidden = true;
    setStatus("error", "The server refused the input.");
  }
  async function decodeForDisplay(bytes) {
    try {
      const ctx = new OfflineAudioContext(1, 1, DISPLAY_RATE);
      const buffer = await ctx.decodeAudioData(bytes.slice().buffer);
      return mixdown(buffer);
    } catch {
      return null;
    }
  }
  function windowing(duration) {
    const windowSeconds = Math.max(0.1, Number(ui.window.value) || 1);
    let hopSeconds = Math.min(windowSeconds, Math.max(0.01, Number(ui.hop.value) || 0.25));
    if (duration !== null && duration / hopSeconds > MAX_WINDOWS * 0.9) {
      hopSeconds = Math.ceil(duration / (MAX_WINDOWS * 0.9) * 1e3) / 1e3;
    }
    return { windowSeconds: Math.max(windowSeconds, hopSeconds), hopSeconds };
  }
  var generation = 0;
  async function analyse(bytes, name) {
    const mine = ++generation;
    ui.error.hidden = true;
    ui.error.textContent = "";
    setStatus("busy", `Analysing ${name} \u2026`);
    const samples = await decodeForDisplay(bytes);
    const duration = samples ? samples.length / DISPLAY_RATE : null;
    let resp;
    try {
      const request = encodeClassifyRequest({ model: "", audio: bytes, timeline: windowing(duration) });
      resp = decodeClassifyResponse(await unary("/prosodia.v1.Emotion/Classify", request));
    } catch (e) {
      if (mine !== generation) return;
      showError(e instanceof GrpcError ? e.message : `Error: ${e.message}`);
      return;
    }
    if (mine !== generation) return;
    render(resp, samples, name);
    setStatus("done", `Classified ${name}.`);
    URL.revokeObjectURL(ui.playback.src);
    ui.playback.src = URL.createObjectURL(new Blob([bytes.slice().buffer]));
  }
  function render(resp, samples, name) {
    ui.result.hidden = false;
    ui.label.textContent = resp.label;
    const best = resp.scores.find((s) => s.label === resp.label)?.probability ?? 0;
    ui.details.textContent = `${name}: ${resp.audioDurationSeconds.toFixed(2)} s, ${(100 * best).toFixed(0)} % ${resp.label}; model ${resp.model} v${resp.modelVersion}; server ${resp.timings.totalMs.toFixed(0)} ms`;
    const labels = resp.scores.map((s) => s.label);
    ui.scores.replaceChildren(
      ...resp.scores.map((s, i) => {
        const row = document.createElement("li");
        row.dataset.label = s.label;
        const name2 = document.createElement("span");
        name2.className = "name";
        name2.textContent = s.label;
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
        row.append(name2, bar, pct);
        if (s.label === resp.label) row.classList.add("best");
        return row;
      })
    );
    ui.legend.replaceChildren(
      ...labels.map((l, i) => {
        const item = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = colour(l, i);
        item.append(swatch, l);
        return item;
      })
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
  var recording = null;
  async function startRecording() {
    if (!navigator.mediaDevices?.getUserMedia) {
      showError("Recording needs a secure page (https:// or http://localhost) and a browser with microphone access.");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false }
      });
    } catch (e) {
      showError(`Cannot use the microphone: ${e.message}`);
      return;
    }
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule("recorder-worklet.js");
    const source = ctx.createMediaStreamSource(stream);
    const tap = new AudioWorkletNode(ctx, "prosodia-recorder");
    const chunks = [];
    tap.port.onmessage = (m) => chunks.push(m.data);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(tap).connect(mute).connect(ctx.destination);
    const started = performance.now();
    const timer = window.setInterval(() => {
      const secs = (performance.now() - started) / 1e3;
      ui.record.textContent = `Stop and classify (${secs.toFixed(1)} s)`;
      if (secs >= MAX_RECORDING_SECONDS) void stopRecording();
    }, 100);
    recording = { ctx, stream, chunks, started, timer };
    ui.record.classList.add("recording");
    ui.error.hidden = true;
    ui.error.textContent = "";
    setStatus("busy", "Recording from the microphone \u2026");
  }
  async function stopRecording() {
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
})();
