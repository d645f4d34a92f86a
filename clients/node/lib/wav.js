'use strict';
/**
 * A small WAV reader for streaming files as raw PCM: integer PCM (8, 16, 24, 32 bits, plain
 * or WAVE_FORMAT_EXTENSIBLE) converted to signed 16-bit little-endian samples, the format
 * the Python client's `read_wav_s16le` produces. Anything else is refused with a
 * {@link ProsodiaError} naming the problem; send such files whole with `classify` or with
 * `stream(..., {encoding: 'encoded'})`, which the server decodes itself.
 * @module
 */

const fs = require('node:fs');
const { invalidArgument } = require('./errors');

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/**
 * @typedef {object} Pcm16
 * @property {Buffer} pcm interleaved signed 16-bit little-endian samples
 * @property {number} rate samples per second, per channel
 * @property {number} channels interleaved channels per frame
 */

/**
 * Reads an integer-PCM WAV file (a path or its bytes) as s16le samples.
 *
 * 8-bit (unsigned) samples are re-centred and widened; 24- and 32-bit samples keep their top
 * 16 bits. A trailing partial frame is dropped.
 * @param {string | Buffer | Uint8Array} source a path, or the file's bytes
 * @returns {Pcm16}
 * @throws {import('./errors').ProsodiaError} INVALID_ARGUMENT for a file this reader cannot read
 */
function readWavS16le(source) {
  let bytes;
  const name = typeof source === 'string' ? source : '<bytes>';
  if (typeof source === 'string') {
    try {
      bytes = fs.readFileSync(source);
    } catch (e) {
      throw invalidArgument(`cannot read ${source}: ${/** @type {Error} */ (e).message}`);
    }
  } else {
    bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  }
  const fail = (/** @type {string} */ why) =>
    invalidArgument(`${name}: not an integer-PCM WAV file this reader handles (${why})`);

  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') {
    throw fail('no RIFF/WAVE header');
  }
  /** @type {{format: number, channels: number, rate: number, bits: number} | undefined} */
  let fmt;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > bytes.length) throw fail('truncated fmt chunk');
      let format = bytes.readUInt16LE(body);
      if (format === WAVE_FORMAT_EXTENSIBLE) {
        // The sub-format GUID starts with the real format code.
        if (size < 40) throw fail('truncated WAVE_FORMAT_EXTENSIBLE fmt chunk');
        format = bytes.readUInt16LE(body + 24);
      }
      fmt = {
        format,
        channels: bytes.readUInt16LE(body + 2),
        rate: bytes.readUInt32LE(body + 4),
        bits: bytes.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw fail('data chunk before fmt chunk');
      if (fmt.format !== WAVE_FORMAT_PCM) throw fail(`format code ${fmt.format}, not integer PCM`);
      if (fmt.channels < 1 || fmt.rate < 1 || ![8, 16, 24, 32].includes(fmt.bits)) {
        throw fail(`${fmt.channels} channels, ${fmt.rate} Hz, ${fmt.bits}-bit`);
      }
      // A lying size (larger than the file) reads what is there, as a truncated file.
      const end = Math.min(body + size, bytes.length);
      const width = fmt.bits / 8;
      const frames = Math.floor((end - body) / (width * fmt.channels));
      const n = frames * fmt.channels;
      const pcm = Buffer.alloc(2 * n);
      for (let i = 0; i < n; i++) {
        const at = body + i * width;
        if (width === 1) {
          pcm.writeInt16LE((bytes[at] - 128) << 8, 2 * i);
        } else {
          // Little-endian: the top two bytes of each sample are its last two.
          pcm[2 * i] = bytes[at + width - 2];
          pcm[2 * i + 1] = bytes[at + width - 1];
        }
      }
      return { pcm, rate: fmt.rate, channels: fmt.channels };
    }
    // Chunks are padded to an even size.
    offset = body + size + (size % 2);
  }
  throw fail(fmt ? 'no data chunk' : 'no fmt chunk');
}

module.exports = { readWavS16le };
