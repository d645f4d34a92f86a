'use strict';
// The client against a real server at PROSODIA_ADDR (skipped, with the reason, without one).
//
// server/app/tests/node_client.rs runs these against the real server with an in-test model;
// by hand: start `prosodia-server --models DIR`, then
//
//     PROSODIA_ADDR=127.0.0.1:50051 node --test
//
// PROSODIA_EXPECT_LABEL, when set, is the label the default model must give the TESS fixture.

const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const prosodia = require('..');
const { PACKAGE_ROOT, fixture, serverAddr, sharedDir, wavSeconds } = require('./support');

const TESS = 'tess/OAF_back_happy.wav';
const addr = serverAddr();
const skip = addr ? false : 'PROSODIA_ADDR is not set: no server to test against';
if (skip) console.log(`SKIP server tests: ${skip}`);

/** Asserts that `promise` rejects with a ProsodiaError of `codeName`; returns the error. */
async function rejectsWith(promise, codeName) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof prosodia.ProsodiaError, `expected a ProsodiaError, got ${error}`);
  assert.equal(error.codeName, codeName, error.message);
  assert.equal(error.code, prosodia.status[codeName]);
  return error;
}

/** Collects every event of a stream. */
async function collect(events) {
  const out = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('against the server', { skip }, () => {
  /** @type {import('..').Client} */
  let client;
  before(() => {
    client = new prosodia.Client(addr, { timeout: 120 });
  });
  after(() => client?.close());

  async function defaultModel() {
    const listing = await client.listModels();
    assert.ok(listing.defaultModel, 'the server under test has no default model');
    return listing.defaultModel;
  }

  test('health reports SERVING for the server and the Emotion service', async () => {
    assert.equal(await client.health(), 'SERVING');
    assert.equal(await client.health('prosodia.v1.Emotion'), 'SERVING');
  });

  test('listModels lists the repository with its default', async () => {
    const listing = await client.listModels();
    const names = listing.models.map((m) => m.name);
    assert.ok(names.length > 0);
    assert.deepEqual(names, [...names].sort());
    assert.ok(names.includes(listing.defaultModel), `${listing.defaultModel} not in ${names}`);
    const known = new Set(['UNLOADED', 'LOADING', 'READY', 'FAILED']);
    for (const m of listing.models) {
      const versions = m.versions.map((v) => v.version);
      assert.ok(versions.length > 0, m.name);
      assert.deepEqual(versions, [...versions].sort((a, b) => b - a), m.name);
      for (const v of m.versions) assert.ok(known.has(v.state), `${m.name} v${v.version}: ${v.state}`);
    }
    const def = listing.models.find((m) => m.name === listing.defaultModel);
    assert.ok(def.versions.some((v) => v.state === 'READY'));
  });

  test('classify a TESS fixture, by path and by bytes', async () => {
    const file = fixture(TESS);
    const result = await client.classify(file);
    const model = await defaultModel();
    const info = await client.modelInfo(model);
    assert.equal(result.model, model);
    assert.equal(result.modelVersion, info.version);
    assert.deepEqual(Object.keys(result.scores), info.labels, 'scores follow the model labels');
    const best = Object.entries(result.scores).reduce((a, b) => (b[1] > a[1] ? b : a));
    assert.equal(result.label, best[0]);
    const total = Object.values(result.scores).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-4, `scores sum to ${total}`);
    assert.ok(Object.values(result.scores).every((p) => p >= 0 && p <= 1));
    assert.ok(Math.abs(result.audioSeconds - wavSeconds(file)) < 1e-3, `${result.audioSeconds} s`);
    const d = result.durations;
    assert.ok(d.totalMs > 0);
    assert.ok(d.totalMs >= d.decodeMs + d.extractMs + d.inferenceMs);
    if (process.env.PROSODIA_EXPECT_LABEL) assert.equal(result.label, process.env.PROSODIA_EXPECT_LABEL);

    const same = await client.classify(fs.readFileSync(file), { model, modelVersion: info.version });
    assert.deepEqual([same.label, same.scores], [result.label, result.scores]);
  });

  test('every bad fixture is refused with INVALID_ARGUMENT and a message', async () => {
    const dir = path.join(sharedDir(), 'fixtures', 'bad');
    const bad = fs.readdirSync(dir).sort();
    assert.ok(bad.length > 0, 'no bad fixtures found');
    for (const name of bad) {
      const error = await rejectsWith(client.classify(path.join(dir, name)), 'INVALID_ARGUMENT');
      assert.ok(error.details.length > 10, `${name}: the message names the problem: ${error.details}`);
    }
    const error = await rejectsWith(client.classify(Buffer.from('hello, not audio')), 'INVALID_ARGUMENT');
    assert.ok(error.details.length > 10, error.details);
  });

  test('an unknown model is NOT_FOUND, naming it', async () => {
    const error = await rejectsWith(client.classify(fixture(TESS), { model: 'no-such-model' }), 'NOT_FOUND');
    assert.match(error.details, /no-such-model/);
    await rejectsWith(client.modelInfo('no-such-model'), 'NOT_FOUND');
  });

  test('extractFeatures gives 46 named finite features', async () => {
    const feats = await client.extractFeatures(fixture(TESS), { frames: true });
    const names = Object.keys(feats.features);
    assert.equal(names.length, 46);
    assert.ok(Object.values(feats.features).every(Number.isFinite));
    assert.equal(feats.featureConfig, 'seed');
    const m = feats.frames.model_input;
    assert.ok(m && m.rows > 10, 'a model_input matrix with frames');
    assert.equal(m.data.length, m.rows * m.cols);
    assert.equal(m.columnNames.length, m.cols);
  });

  test('stream a TESS fixture as raw PCM chunks', async () => {
    const file = fixture(TESS);
    const { pcm, rate, channels } = prosodia.readWavS16le(file);
    // 100 ms chunks, sent as an async iterable.
    const step = Math.floor(rate / 10) * 2 * channels;
    async function* chunks() {
      for (let at = 0; at < pcm.length; at += step) yield pcm.subarray(at, at + step);
    }
    const events = await collect(client.stream(chunks(), { rate, channels, encoding: 's16le', window: 0.5, hop: 0.25 }));
    const model = await defaultModel();
    const labels = (await client.modelInfo(model)).labels;

    const windows = events.filter((e) => e.kind === 'window');
    const utterances = events.filter((e) => e.kind === 'utterance');
    const summary = events.at(-1);
    assert.equal(summary?.kind, 'summary', 'the summary comes last');
    assert.equal(events.filter((e) => e.kind === 'summary').length, 1);
    assert.equal(summary.model, model);
    assert.ok(Math.abs(summary.audioSeconds - wavSeconds(file)) < 1e-2, `${summary.audioSeconds} s`);
    assert.equal(summary.utterances, utterances.length);
    assert.deepEqual(utterances.map((u) => u.index), utterances.map((_, i) => i));

    assert.ok(windows.length >= 2, `${windows.length} interim results for ${summary.audioSeconds} s`);
    for (let i = 1; i < windows.length; i++) {
      assert.ok(windows[i].startSeconds > windows[i - 1].startSeconds, `window ${i} starts after window ${i - 1}`);
    }
    // Window k starts at k·H input samples, H = round(0.25 · rate) (silent windows are skipped).
    const hopSamples = Math.round(0.25 * rate);
    for (const w of windows) {
      const k = (w.startSeconds * rate) / hopSamples;
      assert.ok(Math.abs(k - Math.round(k)) < 1e-6, `window at ${w.startSeconds} s is not on the hop grid`);
    }
    for (const r of [...windows, ...utterances]) {
      assert.ok(r.startSeconds < r.endSeconds);
      assert.ok(r.endSeconds <= summary.audioSeconds + 1e-6);
      assert.deepEqual(Object.keys(r.scores), labels);
      const best = Object.entries(r.scores).reduce((a, b) => (b[1] > a[1] ? b : a));
      assert.equal(r.label, best[0]);
    }
    if (summary.utterances) assert.ok(labels.includes(summary.label));
    else assert.equal(summary.label, '');
    // Each window is 0.5 s long (at the input rate).
    for (const w of windows) assert.ok(Math.abs(w.endSeconds - w.startSeconds - 0.5) < 1e-3, `${w.startSeconds}..${w.endSeconds}`);

    // Without interim results only utterances and the summary come back.
    const quiet = await collect(client.streamFile(file, { chunkMs: 100, interim: false }));
    assert.ok(!quiet.some((e) => e.kind === 'window'));
    assert.equal(quiet.at(-1)?.kind, 'summary');
  });

  test('a stream with a bad window is refused with INVALID_ARGUMENT', async () => {
    const { pcm, rate } = prosodia.readWavS16le(fixture(TESS));
    const events = client.stream([pcm], { rate, window: 0.5, hop: 1.0 });
    const error = await rejectsWith(collect(events), 'INVALID_ARGUMENT');
    assert.ok(error.details.length > 10, error.details);
  });

  test('the example prints one line per file and fails for a bad one', async () => {
    const good = fixture(TESS);
    const bad = fixture('bad/text.wav');
    const run = await new Promise((resolve) => {
      execFile(process.execPath, [path.join(PACKAGE_ROOT, 'examples', 'classify.js'), '--addr', addr, good, bad],
        { timeout: 120_000 }, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
    });
    assert.equal(run.code, 1, `a failed file makes the exit status 1\n${run.stderr}`);
    const expected = (await client.classify(good)).label;
    assert.match(run.stdout, new RegExp(`^${good.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${expected} `, 'm'));
    assert.match(run.stderr, /text\.wav: INVALID_ARGUMENT: /);
  });
});
