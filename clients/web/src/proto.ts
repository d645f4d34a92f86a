// A hand-written protobuf encoder/decoder for the few prosodia.v1 messages the page uses
// (proto/prosodia/v1/emotion.proto and audio.proto), so the page needs no code generator.
// Unknown fields are skipped, as protobuf requires, so a newer server still works.

/** Wire types of the protobuf encoding. */
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

class Writer {
  private bytes: number[] = [];

  varint(value: number): this {
    let v = value;
    while (v > 0x7f) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  bytesField(field: number, data: Uint8Array): this {
    this.tag(field, LEN).varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  stringField(field: number, s: string): this {
    return s === "" ? this : this.bytesField(field, new TextEncoder().encode(s));
  }

  doubleField(field: number, v: number): this {
    if (v === 0) return this;
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.tag(field, FIXED64);
    for (const x of b) this.bytes.push(x);
    return this;
  }

  uintField(field: number, v: number): this {
    return v === 0 ? this : this.tag(field, VARINT).varint(v);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error("truncated protobuf varint");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    throw new Error("protobuf varint longer than 10 bytes");
  }

  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new Error("truncated protobuf field");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(): Uint8Array {
    return this.take(this.varint());
  }

  string(): string {
    return new TextDecoder().decode(this.bytes());
  }

  double(): number {
    const b = this.take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
  }

  float(): number {
    const b = this.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }

  skip(wire: number): void {
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
  fields(field: (num: number, wire: number, r: Reader) => boolean): void {
    while (!this.done) {
      const key = this.varint();
      const num = Math.floor(key / 8);
      const wire = key % 8;
      if (!field(num, wire, this)) this.skip(wire);
    }
  }
}

/** Timeline windows, as in TimelineOptions. */
export interface TimelineOptions {
  windowSeconds: number;
  hopSeconds: number;
}

/** A ClassifyRequest with encoded audio (a complete file). */
export interface ClassifyRequest {
  model: string;
  audio: Uint8Array;
  timeline?: TimelineOptions;
}

/** One label and its probability. */
export interface ClassScore {
  label: string;
  probability: number;
}

/** One window of the emotion timeline. */
export interface WindowResult {
  startSeconds: number;
  endSeconds: number;
  label: string;
  scores: ClassScore[];
}

/** Where the server's time went, in ms. */
export interface Timings {
  decodeMs: number;
  extractMs: number;
  inferenceMs: number;
  queueMs: number;
  totalMs: number;
}

/** A ClassifyResponse. */
export interface ClassifyResponse {
  label: string;
  scores: ClassScore[];
  model: string;
  modelVersion: number;
  audioDurationSeconds: number;
  timings: Timings;
  timeline: WindowResult[];
}

export function encodeClassifyRequest(req: ClassifyRequest): Uint8Array {
  const w = new Writer().stringField(1, req.model);
  // Audio { bytes encoded = 1 }, always present: an empty file must reach the server, which
  // answers with its own message.
  w.bytesField(2, new Writer().bytesField(1, req.audio).finish());
  if (req.timeline) {
    // Written even when empty: the presence of the message asks for a timeline.
    const t = new Writer()
      .doubleField(1, req.timeline.windowSeconds)
      .doubleField(2, req.timeline.hopSeconds)
      .finish();
    w.bytesField(4, t);
  }
  return w.finish();
}

function decodeScore(buf: Uint8Array): ClassScore {
  const s: ClassScore = { label: "", probability: 0 };
  new Reader(buf).fields((num, wire, r) => {
    if (num === 1 && wire === LEN) s.label = r.string();
    else if (num === 2 && wire === FIXED32) s.probability = r.float();
    else return false;
    return true;
  });
  return s;
}

function decodeWindow(buf: Uint8Array): WindowResult {
  const w: WindowResult = { startSeconds: 0, endSeconds: 0, label: "", scores: [] };
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

function decodeTimings(buf: Uint8Array): Timings {
  const t: Timings = { decodeMs: 0, extractMs: 0, inferenceMs: 0, queueMs: 0, totalMs: 0 };
  const keys: (keyof Timings)[] = ["decodeMs", "extractMs", "inferenceMs", "queueMs", "totalMs"];
  new Reader(buf).fields((num, wire, r) => {
    const key = keys[num - 1];
    if (key === undefined || wire !== FIXED64) return false;
    t[key] = r.double();
    return true;
  });
  return t;
}

export function decodeClassifyResponse(buf: Uint8Array): ClassifyResponse {
  const out: ClassifyResponse = {
    label: "",
    scores: [],
    model: "",
    modelVersion: 0,
    audioDurationSeconds: 0,
    timings: decodeTimings(new Uint8Array()),
    timeline: [],
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
