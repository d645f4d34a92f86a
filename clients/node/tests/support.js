'use strict';
// Helpers shared by the tests: where the fixtures and the server are.
const fs = require('node:fs');
const path = require('node:path');

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const REPO_ROOT = path.resolve(PACKAGE_ROOT, '..', '..');

/** The project's shared/ folder beside the repository (override: PROSODIA_SHARED). */
function sharedDir() {
  return process.env.PROSODIA_SHARED || path.join(REPO_ROOT, '..', 'shared');
}

/** A file under shared/fixtures; throws (failing the test) if it is missing. */
function fixture(rel) {
  const file = path.join(sharedDir(), 'fixtures', rel);
  if (!fs.existsSync(file)) throw new Error(`fixture ${file} is missing (set PROSODIA_SHARED?)`);
  return file;
}

/** The server under test, from PROSODIA_ADDR (host:port), or undefined. */
function serverAddr() {
  return process.env.PROSODIA_ADDR || undefined;
}

/** Seconds of audio in a PCM WAV file, from its header (for checks only). */
function wavSeconds(file) {
  const b = fs.readFileSync(file);
  let rate = 0;
  let blockAlign = 0;
  for (let at = 12; at + 8 <= b.length; ) {
    const id = b.toString('latin1', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      rate = b.readUInt32LE(at + 12);
      blockAlign = b.readUInt16LE(at + 20);
    }
    if (id === 'data') return Math.min(size, b.length - at - 8) / blockAlign / rate;
    at += 8 + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}

module.exports = { PACKAGE_ROOT, REPO_ROOT, sharedDir, fixture, serverAddr, wavSeconds };
