'use strict';
// The WAV reader behind streamFile, offline.
const assert = require('node:assert/strict');
const { test } = require('node:test');
const fs = require('node:fs');
const { readWavS16le, ProsodiaError } = require('..');
const { fixture } = require('./support');

/** A WAV file of `bits`-bit integer PCM holding the given raw sample bytes. */
function wav(bits, channels, rate, data, { extensible = false } = {}) {
  const fmtSize = extensible ? 40 : 16;
  const b = Buffer.alloc(12 + 8 + fmtSize + 8 + data.length);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(b.length - 8, 4);
  b.write('WAVE', 8, 'latin1');
  b.write('fmt ', 12, 'latin1');
  b.writeUInt32LE(fmtSize, 16);
  b.writeUInt16LE(extensible ? 0xfffe : 1, 20);
  b.writeUInt16LE(channels, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE((rate * channels * bits) / 8, 28);
  b.writeUInt16LE((channels * bits) / 8, 32);
  b.writeUInt16LE(bits, 34);
  if (extensible) {
    b.writeUInt16LE(22, 36);
    b.writeUInt16LE(1, 44); // sub-format: PCM
  }
  const at = 20 + fmtSize;
  b.write('data', at, 'latin1');
  b.writeUInt32LE(data.length, at + 4);
  Buffer.from(data).copy(b, at + 8);
  return b;
}

/** A 32-bit float WAV (format code 3), which this reader refuses. */
function floatWav() {
  const b = wav(32, 1, 8000, [0, 0, 0, 0]);
  b.writeUInt16LE(3, 20);
  return b;
}

test('a 16-bit TESS fixture comes back sample for sample', () => {
  const file = fixture('tess/OAF_back_happy.wav');
  const { pcm, rate, channels } = readWavS16le(file);
  assert.equal(rate, 24414);
  assert.equal(channels, 1);
  const bytes = fs.readFileSync(file);
  const data = bytes.indexOf('data', 12, 'latin1');
  const size = bytes.readUInt32LE(data + 4);
  assert.equal(pcm.length, size);
  assert.ok(pcm.equals(bytes.subarray(data + 8, data + 8 + size)));
});

test('8-, 24- and 32-bit samples become 16-bit', () => {
  // 8-bit unsigned: 0 -> -32768, 128 -> 0, 255 -> 32512.
  let r = readWavS16le(wav(8, 1, 8000, [0, 128, 255]));
  assert.deepEqual([...new Int16Array(r.pcm.buffer, r.pcm.byteOffset, 3)], [-32768, 0, 32512]);
  // 24-bit: the top two bytes.
  r = readWavS16le(wav(24, 2, 8000, [0x11, 0x34, 0x12, 0xff, 0xff, 0x80]));
  assert.equal(r.channels, 2);
  assert.deepEqual([...new Int16Array(r.pcm.buffer, r.pcm.byteOffset, 2)], [0x1234, -32513]);
  r = readWavS16le(wav(32, 1, 16000, [0x00, 0x00, 0x34, 0x12], { extensible: true }));
  assert.equal(r.rate, 16000);
  assert.deepEqual([...new Int16Array(r.pcm.buffer, r.pcm.byteOffset, 1)], [0x1234]);
});

test('a partial last frame is dropped', () => {
  const r = readWavS16le(wav(16, 2, 8000, [1, 0, 2, 0, 3]));
  assert.equal(r.pcm.length, 4);
});

test('files it cannot read are INVALID_ARGUMENT with a reason', () => {
  const cases = [
    [fixture('bad/text.wav'), /no RIFF\/WAVE header/],
    [Buffer.from('RIFF\0\0\0\0WAVE'), /no fmt chunk/],
    [wav(16, 1, 8000, []).subarray(0, 30), /truncated fmt chunk/],
    [floatWav(), /format code 3, not integer PCM/],
    [wav(12, 1, 8000, [0, 0]), /12-bit/],
    [wav(16, 0, 8000, [0, 0]), /0 channels/],
    ['/no/such/file.wav', /cannot read \/no\/such\/file\.wav/],
  ];
  for (const [input, why] of cases) {
    assert.throws(() => readWavS16le(input), (e) => {
      assert.ok(e instanceof ProsodiaError);
      assert.equal(e.codeName, 'INVALID_ARGUMENT');
      assert.match(e.details, why);
      return true;
    });
  }
});
