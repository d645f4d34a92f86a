'use strict';
/**
 * The client: {@link Client} wraps the `prosodia.v1` services loaded from the protos and
 * returns plain objects (camelCase, no protobuf types); every failure is a
 * {@link ProsodiaError}.
 * @module
 */

const fs = require('node:fs');
const { setTimeout: sleep } = require('node:timers/promises');
const grpc = require('@grpc/grpc-js');
const { loadServices } = require('./proto');
const { ProsodiaError, invalidArgument } = require('./errors');
const { readWavS16le } = require('./wav');

/** Where `prosodia-server` listens when started without `--listen`. */
const DEFAULT_TARGET = '127.0.0.1:50051';

/** The server's default message limit; the client sends and accepts messages up to it. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** @type {Record<string, string>} */
const ENCODINGS = { s16le: 'PCM_ENCODING_S16LE', f32le: 'PCM_ENCODING_F32LE' };

/**
 * A path to an audio file, or the file's bytes (any container the server decodes: WAV,
 * FLAC, MP3, Ogg Vorbis, AAC/M4A).
 * @typedef {string | Buffer | Uint8Array | ArrayBuffer} AudioInput
 */

/**
 * Where the server's time went for one request, in milliseconds.
 * @typedef {object} Durations
 * @property {number} decodeMs
 * @property {number} extractMs
 * @property {number} inferenceMs
 * @property {number} queueMs
 * @property {number} totalMs
 */

/**
 * The classification of one piece of audio (`Emotion.Classify`).
 * @typedef {object} Result
 * @property {string} label the most probable label
 * @property {Record<string, number>} scores every label with its probability, in the model's label order
 * @property {string} model the model that answered
 * @property {number} modelVersion its version
 * @property {number} audioSeconds length of the decoded audio before trimming
 * @property {Durations} durations
 */

/**
 * A row-major per-frame feature matrix (`extractFeatures` with `frames: true`).
 * @typedef {object} FrameMatrix
 * @property {string} name
 * @property {number} rows
 * @property {number} cols
 * @property {string[]} columnNames
 * @property {number[]} data `rows * cols` values, row after row
 * @property {number} frameStepSeconds
 * @property {number} firstFrameSeconds
 */

/**
 * The features of one piece of audio (`Emotion.ExtractFeatures`).
 * @typedef {object} Features
 * @property {Record<string, number>} features the 46 named utterance features, in the server's order
 * @property {string} featureConfig
 * @property {number} sampleRate
 * @property {number} audioSeconds
 * @property {Durations} durations
 * @property {Record<string, FrameMatrix>} frames empty unless requested
 */

/**
 * One version of a model and its state (`"READY"`, `"UNLOADED"`, `"LOADING"`, `"FAILED"`).
 * @typedef {object} ModelVersion
 * @property {number} version
 * @property {string} state
 * @property {string} message
 */

/**
 * The repository's contents (`Models.ListModels`).
 * @typedef {object} ModelList
 * @property {{name: string, versions: ModelVersion[]}[]} models sorted by name, versions newest first
 * @property {string} defaultModel the model used when a request names none (empty if none)
 */

/**
 * Details of one model version (`Models.GetModel`).
 * @typedef {object} ModelInfo
 * @property {string} name
 * @property {number} version
 * @property {string} state
 * @property {string[]} labels
 * @property {string} backend
 * @property {string} extractor
 * @property {string} featureConfig
 * @property {number} streamWindowSeconds
 * @property {number} streamHopSeconds
 * @property {string} description
 */

/**
 * An interim stream result: one analysis window (sent when `interim` is on).
 * @typedef {object} WindowResult
 * @property {'window'} kind
 * @property {number} startSeconds
 * @property {number} endSeconds
 * @property {string} label
 * @property {Record<string, number>} scores
 */

/**
 * A final stream result: one utterance, sent when voice activity ends.
 * @typedef {object} UtteranceResult
 * @property {'utterance'} kind
 * @property {number} index zero-based
 * @property {number} startSeconds
 * @property {number} endSeconds
 * @property {string} label
 * @property {Record<string, number>} scores
 */

/**
 * The last message of a stream, after the client has sent all its audio.
 * @typedef {object} StreamSummary
 * @property {'summary'} kind
 * @property {number} audioSeconds
 * @property {number} utterances
 * @property {string} label duration-weighted most probable label; empty if no utterance was found
 * @property {Record<string, number>} scores
 * @property {string} model
 * @property {number} modelVersion
 */

/** @typedef {WindowResult | UtteranceResult | StreamSummary} StreamEvent */

/**
 * Options of {@link Client#stream}.
 * @typedef {object} StreamOptions
 * @property {number} [rate] samples per second of raw PCM (required unless `encoding` is `'encoded'`)
 * @property {'s16le' | 'f32le' | 'encoded'} [encoding] default `'s16le'`
 * @property {number} [channels] interleaved channels of raw PCM, default 1
 * @property {string} [model] empty: the server's default model
 * @property {number} [modelVersion] 0: the newest loaded version
 * @property {number} [window] analysis window in seconds; 0: the model's default
 * @property {number} [hop] distance between windows in seconds; 0: the model's default
 * @property {boolean} [interim] send a WindowResult per window (default true)
 */

/**
 * A connection to a Prosodia server.
 *
 * ```js
 * const client = new Client('127.0.0.1:50051');
 * const result = await client.classify('speech.wav');
 * console.log(result.label, result.scores[result.label]);
 * client.close();
 * ```
 */
class Client {
  /**
   * @param {string} [target] `host:port` of the server (default `127.0.0.1:50051`)
   * @param {object} [options]
   * @param {number} [options.timeout] deadline of every call in seconds (of a stream: of the
   *   whole stream); unset leaves it to the server's own limits
   * @param {grpc.ChannelCredentials} [options.credentials] TLS credentials; plaintext without
   * @param {string} [options.protoDir] the folder holding `prosodia/v1/*.proto`, if not the default
   */
  constructor(target = DEFAULT_TARGET, options = {}) {
    const services = loadServices(options.protoDir);
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    /** @type {any} */
    this._emotion = new services.Emotion(target, credentials, {
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    });
    // One connection for every service.
    const shared = { channelOverride: this._emotion.getChannel() };
    /** @type {any} */
    this._models = new services.Models(target, credentials, shared);
    /** @type {any} */
    this._health = new services.Health(target, credentials, shared);
    /** The server's address. */
    this.target = target;
    /** The default deadline of every call, in seconds (undefined: none). */
    this.timeout = options.timeout;
  }

  /** Closes the connection; calls still running fail with CANCELLED or UNAVAILABLE. */
  close() {
    this._emotion.close();
  }

  /**
   * Classifies one complete audio file.
   * @param {AudioInput} audio a path, or the file's bytes
   * @param {{model?: string, modelVersion?: number}} [options] empty `model`: the server's
   *   default; `modelVersion` 0: the newest loaded version
   * @returns {Promise<Result>}
   */
  async classify(audio, options = {}) {
    const request = {
      model: options.model ?? '',
      modelVersion: options.modelVersion ?? 0,
      audio: { encoded: await readAudio(audio) },
    };
    const resp = await this._unary(this._emotion, 'Classify', request);
    return {
      label: resp.label,
      scores: scores(resp.scores),
      model: resp.model,
      modelVersion: resp.modelVersion,
      audioSeconds: resp.audioDurationSeconds,
      durations: durations(resp.timings),
    };
  }

  /**
   * The 46 utterance features of one audio file (and the frame matrices with `frames`).
   * Without `preset` or `model` the server uses the `seed` configuration.
   * @param {AudioInput} audio a path, or the file's bytes
   * @param {{preset?: string, model?: string, modelVersion?: number, frames?: boolean}} [options]
   * @returns {Promise<Features>}
   */
  async extractFeatures(audio, options = {}) {
    const request = {
      audio: { encoded: await readAudio(audio) },
      model: options.model ?? '',
      modelVersion: options.modelVersion ?? 0,
      preset: options.preset ?? '',
      includeFrames: options.frames ?? false,
    };
    const resp = await this._unary(this._emotion, 'ExtractFeatures', request);
    /** @type {Record<string, FrameMatrix>} */
    const frames = {};
    for (const m of resp.frames) {
      frames[m.name] = {
        name: m.name,
        rows: m.rows,
        cols: m.cols,
        columnNames: m.columnNames,
        data: m.data,
        frameStepSeconds: m.frameStepSeconds,
        firstFrameSeconds: m.firstFrameSeconds,
      };
    }
    return {
      features: Object.fromEntries(resp.features.map((/** @type {any} */ f) => [f.name, f.value])),
      featureConfig: resp.featureConfig,
      sampleRate: resp.sampleRate,
      audioSeconds: resp.audioDurationSeconds,
      durations: durations(resp.timings),
      frames,
    };
  }

  /**
   * Every model in the server's repository, with its versions and their states (the Python
   * client's `models()`).
   * @returns {Promise<ModelList>}
   */
  async listModels() {
    const resp = await this._unary(this._models, 'ListModels', {});
    return {
      models: resp.models.map((/** @type {any} */ m) => ({
        name: m.name,
        versions: m.versions.map((/** @type {any} */ v) => ({
          version: v.version,
          state: modelState(v.state),
          message: v.message,
        })),
      })),
      defaultModel: resp.defaultModel,
    };
  }

  /**
   * Details of one model version, e.g. its labels.
   * @param {string} name
   * @param {number} [version] 0: the newest
   * @returns {Promise<ModelInfo>}
   */
  async modelInfo(name, version = 0) {
    const info = await this._unary(this._models, 'GetModel', { name, version });
    return {
      name: info.name,
      version: info.version,
      state: modelState(info.status?.state),
      labels: info.labels,
      backend: info.backend,
      extractor: info.extractor,
      featureConfig: info.featureConfig?.name ?? '',
      streamWindowSeconds: info.streamWindowSeconds,
      streamHopSeconds: info.streamHopSeconds,
      description: info.description,
    };
  }

  /**
   * The server's standard health check (`grpc.health.v1.Health/Check`).
   * @param {string} [service] empty: the whole server; or e.g. `"prosodia.v1.Emotion"`
   * @returns {Promise<string>} `"SERVING"`, `"NOT_SERVING"`, ...
   */
  async health(service = '') {
    const resp = await this._unary(this._health, 'Check', { service });
    return resp.status;
  }

  /**
   * Classifies audio as it arrives (`Emotion.StreamClassify`).
   *
   * `chunks` (an async or sync iterable of `Buffer`/`Uint8Array`) are consecutive pieces of
   * audio of any size: headerless PCM in `encoding` (`'s16le'` or `'f32le'`, interleaved
   * `channels`, `rate` samples per second), or with `encoding: 'encoded'` the bytes of an
   * audio file (the server then reads rate and channels from the file, and answers after the
   * last chunk).
   *
   * Returns an async iterator yielding, as the server sends them, {@link WindowResult}s
   * (interim, one per window, when `interim` is on), {@link UtteranceResult}s (final, one
   * per utterance) and lastly one {@link StreamSummary}. The call starts when iteration
   * does; chunks are sent while results are read, so `chunks` may be a live source.
   * Leaving the loop early cancels the call. Bad options throw a {@link ProsodiaError} at
   * once, server errors while iterating; an error thrown by `chunks` itself is rethrown
   * as is.
   * @param {AsyncIterable<Uint8Array> | Iterable<Uint8Array>} chunks
   * @param {StreamOptions} [options]
   * @returns {AsyncGenerator<StreamEvent, void, undefined>}
   */
  stream(chunks, options = {}) {
    const encoding = options.encoding ?? 's16le';
    /** @type {Record<string, any>} */
    const config = {
      model: options.model ?? '',
      modelVersion: options.modelVersion ?? 0,
      windowSeconds: options.window ?? 0,
      hopSeconds: options.hop ?? 0,
      interimResults: options.interim ?? true,
    };
    if (encoding === 'encoded') {
      config.encoded = {};
    } else if (Object.hasOwn(ENCODINGS, encoding)) {
      const rate = options.rate ?? 0;
      if (!(Number.isInteger(rate) && rate > 0)) {
        throw invalidArgument(`raw ${encoding} audio needs its sample rate (rate: a positive integer, got ${rate})`);
      }
      const channels = options.channels ?? 1;
      if (!(Number.isInteger(channels) && channels > 0)) {
        throw invalidArgument(`channels must be a positive integer, got ${channels}`);
      }
      config.raw = { encoding: ENCODINGS[encoding], sampleRate: rate, channels };
    } else {
      throw invalidArgument(`unknown encoding ${JSON.stringify(encoding)}: expected 's16le', 'f32le' or 'encoded'`);
    }
    if (chunks == null || (typeof chunks[Symbol.asyncIterator] !== 'function' && typeof chunks[Symbol.iterator] !== 'function')) {
      throw invalidArgument('chunks must be an iterable or async iterable of byte chunks');
    }
    return this._streamEvents(config, chunks);
  }

  /**
   * Streams an integer-PCM WAV file as s16le chunks of `chunkMs` milliseconds (see
   * `readWavS16le`). With `realtime` the chunks are paced at the audio's own speed, as a
   * live source would send them. The other options go to {@link Client#stream}.
   * @param {string | Uint8Array} path a path, or the file's bytes
   * @param {Omit<StreamOptions, 'rate' | 'encoding' | 'channels'> & {chunkMs?: number, realtime?: boolean}} [options]
   * @returns {AsyncGenerator<StreamEvent, void, undefined>}
   */
  streamFile(path, options = {}) {
    const { chunkMs = 20, realtime = false, ...rest } = options;
    if (!(chunkMs > 0)) throw invalidArgument(`chunkMs must be positive, got ${chunkMs}`);
    const { pcm, rate, channels } = readWavS16le(path);
    const frameBytes = 2 * channels;
    const perChunk = Math.max(1, Math.floor((rate * chunkMs) / 1000)) * frameBytes;
    async function* chunks() {
      const start = performance.now();
      for (let offset = 0; offset < pcm.length; offset += perChunk) {
        if (realtime) {
          const due = start + ((offset / frameBytes) / rate) * 1000;
          const delay = due - performance.now();
          if (delay > 0) await sleep(delay);
        }
        yield pcm.subarray(offset, offset + perChunk);
      }
    }
    return this.stream(chunks(), { ...rest, rate, channels, encoding: 's16le' });
  }

  /**
   * @param {Record<string, any>} config a StreamConfig
   * @param {AsyncIterable<Uint8Array> | Iterable<Uint8Array>} chunks
   * @returns {AsyncGenerator<StreamEvent, void, undefined>}
   */
  async *_streamEvents(config, chunks) {
    const call = this._emotion.StreamClassify(this._callOptions());
    // Everything the call reports, in order; `wake` resolves when something is added.
    /** @type {({msg: any} | {error: any} | {sourceError: any} | {end: true})[]} */
    const queue = [];
    /** @type {() => void} */
    let wake = () => {};
    let finished = false;
    const push = (/** @type {any} */ item) => {
      queue.push(item);
      wake();
    };
    call.on('data', (/** @type {any} */ msg) => push({ msg }));
    // grpc-js ends the readable side before it emits a failed status as 'error', and 'end'
    // comes a tick later: an error is therefore always queued before the 'end' it causes.
    // The listener also stays for good, so a late error (after a cancel) is never unhandled.
    call.on('error', (/** @type {any} */ error) => push({ error }));
    call.on('end', () => push({ end: true }));
    const settled = new Promise((resolve) => {
      call.on('close', resolve);
      call.on('status', resolve);
    });

    // Send the audio while results are read.
    const pump = (async () => {
      try {
        if (!call.write({ config })) await Promise.race([once(call, 'drain'), settled]);
        for await (const chunk of chunks) {
          if (finished) return;
          const bytes = toBuffer(chunk);
          if (bytes.length === 0) continue;
          if (!call.write({ audio: bytes })) await Promise.race([once(call, 'drain'), settled]);
        }
        if (!finished) call.end();
      } catch (sourceError) {
        if (!finished) {
          push({ sourceError });
          call.cancel();
        }
      }
    })();

    try {
      for (;;) {
        const item = queue.shift();
        if (!item) {
          await new Promise((resolve) => {
            wake = () => resolve(undefined);
          });
          continue;
        }
        if ('sourceError' in item) throw item.sourceError;
        if ('error' in item) throw ProsodiaError.fromGrpc(item.error);
        if ('end' in item) return;
        const event = streamEvent(item.msg);
        // A result kind newer than these protos is skipped, not an error.
        if (event) yield event;
      }
    } finally {
      finished = true;
      call.cancel();
      // The pump is not awaited: a live source may not yield again for a long time. It
      // stops at its next chunk, and a cancelled call fails its pending writes harmlessly.
      void pump;
    }
  }

  /**
   * @param {any} stub
   * @param {string} method
   * @param {object} request
   * @returns {Promise<any>}
   */
  _unary(stub, method, request) {
    return new Promise((resolve, reject) => {
      stub[method](request, this._callOptions(), (/** @type {any} */ error, /** @type {any} */ resp) => {
        if (error) reject(ProsodiaError.fromGrpc(error));
        else resolve(resp);
      });
    });
  }

  /** @returns {grpc.CallOptions} */
  _callOptions() {
    return this.timeout === undefined ? {} : { deadline: Date.now() + this.timeout * 1000 };
  }
}

/**
 * @param {import('node:events').EventEmitter} emitter
 * @param {string} event
 * @returns {Promise<void>}
 */
function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

/**
 * @param {unknown} chunk
 * @returns {Buffer}
 */
function toBuffer(chunk) {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return Buffer.from(chunk);
  throw invalidArgument(`an audio chunk must be a Buffer, Uint8Array or ArrayBuffer, got ${typeof chunk}`);
}

/**
 * The bytes of an audio input: a path is read, bytes are passed on.
 * @param {AudioInput} audio
 * @returns {Promise<Buffer>}
 */
async function readAudio(audio) {
  if (typeof audio === 'string') {
    try {
      return await fs.promises.readFile(audio);
    } catch (e) {
      throw invalidArgument(`cannot read ${audio}: ${/** @type {Error} */ (e).message}`);
    }
  }
  if (audio instanceof Uint8Array || audio instanceof ArrayBuffer) return toBuffer(audio);
  throw invalidArgument(`audio must be a path or the file's bytes (Buffer, Uint8Array), got ${typeof audio}`);
}

/**
 * @param {any} msg a StreamClassifyResponse
 * @returns {StreamEvent | undefined}
 */
function streamEvent(msg) {
  switch (msg.result) {
    case 'window': {
      const w = msg.window;
      return { kind: 'window', startSeconds: w.startSeconds, endSeconds: w.endSeconds, label: w.label, scores: scores(w.scores) };
    }
    case 'utterance': {
      const u = msg.utterance;
      return {
        kind: 'utterance',
        index: u.index,
        startSeconds: u.startSeconds,
        endSeconds: u.endSeconds,
        label: u.label,
        scores: scores(u.scores),
      };
    }
    case 'summary': {
      const s = msg.summary;
      return {
        kind: 'summary',
        audioSeconds: s.audioSeconds,
        utterances: s.utterances,
        label: s.label,
        scores: scores(s.scores),
        model: s.model,
        modelVersion: s.modelVersion,
      };
    }
    default:
      return undefined;
  }
}

/**
 * @param {{label: string, probability: number}[]} list
 * @returns {Record<string, number>}
 */
function scores(list) {
  return Object.fromEntries(list.map((s) => [s.label, s.probability]));
}

/**
 * @param {any} t a Timings message (absent: zeros)
 * @returns {Durations}
 */
function durations(t) {
  return {
    decodeMs: t?.decodeMs ?? 0,
    extractMs: t?.extractMs ?? 0,
    inferenceMs: t?.inferenceMs ?? 0,
    queueMs: t?.queueMs ?? 0,
    totalMs: t?.totalMs ?? 0,
  };
}

/**
 * @param {unknown} state a ModelState name (or number, for a state newer than the protos)
 * @returns {string}
 */
function modelState(state) {
  if (typeof state === 'string') return state.replace(/^MODEL_STATE_/, '');
  return `UNKNOWN(${state})`;
}

module.exports = { Client, DEFAULT_TARGET, MAX_MESSAGE_BYTES };
