'use strict';
// Client.stream against an in-process fake Emotion service, offline: what goes on the wire,
// the order of events, and how errors and early exits end the call.
const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const grpc = require('@grpc/grpc-js');
const prosodia = require('..');
const { loadServices } = require('../lib/proto');

/** What the fake saw of each stream. */
const seen = [];
let server;
let client;

/** Answers a window per audio message, then an utterance and a summary after half-close. */
function streamClassify(call) {
  const record = { config: undefined, bytes: 0, messages: 0, cancelled: false };
  seen.push(record);
  call.on('cancelled', () => {
    record.cancelled = true;
  });
  call.on('data', (req) => {
    if (req.message === 'config') {
      record.config = req.config;
      if (req.config.model === 'fail-at-once') {
        call.emit('error', { code: grpc.status.NOT_FOUND, details: 'no model fail-at-once here' });
      }
      return;
    }
    record.bytes += req.audio.length;
    record.messages += 1;
    if (record.config.model === 'fail-midway' && record.messages === 3) {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'sample 7 is NaN' });
      return;
    }
    const start = record.messages - 1;
    call.write({ window: { startSeconds: start, endSeconds: start + 1, label: 'happy', scores: [{ label: 'happy', probability: 1 }] } });
  });
  call.on('end', () => {
    if (record.config?.model?.startsWith('fail')) return;
    call.write({ utterance: { index: 0, startSeconds: 0, endSeconds: record.messages, label: 'sad', scores: [{ label: 'sad', probability: 1 }] } });
    call.write({ summary: { audioSeconds: record.messages, utterances: 1, label: 'sad', scores: [{ label: 'sad', probability: 1 }], model: 'fake', modelVersion: 3 } });
    call.end();
  });
}

before(async () => {
  const { Emotion } = loadServices();
  server = new grpc.Server();
  server.addService(Emotion.service, { streamClassify, StreamClassify: streamClassify });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  client = new prosodia.Client(`127.0.0.1:${port}`, { timeout: 30 });
});

after(() => {
  client?.close();
  server?.forceShutdown();
});

function* chunks(n, size = 4) {
  for (let i = 0; i < n; i++) yield Buffer.alloc(size, i);
}

async function collect(events) {
  const out = [];
  for await (const e of events) out.push(e);
  return out;
}

test('the config goes first, then every non-empty chunk; events come in order', async () => {
  const source = [...chunks(5), Buffer.alloc(0), new Uint8Array([1, 2])];
  const events = await collect(client.stream(source, { rate: 16000, channels: 2, encoding: 'f32le', window: 2, hop: 0.5, interim: true, model: 'm', modelVersion: 4 }));
  const record = seen.at(-1);
  assert.deepEqual(
    { ...record.config, format: undefined },
    { model: 'm', modelVersion: 4, raw: { encoding: 'PCM_ENCODING_F32LE', sampleRate: 16000, channels: 2 }, windowSeconds: 2, hopSeconds: 0.5, interimResults: true, format: undefined },
  );
  assert.equal(record.messages, 6, 'the empty chunk is not sent');
  assert.equal(record.bytes, 22);
  assert.deepEqual(events.map((e) => e.kind), ['window', 'window', 'window', 'window', 'window', 'window', 'utterance', 'summary']);
  assert.deepEqual(events.filter((e) => e.kind === 'window').map((e) => e.startSeconds), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(events.at(-1), { kind: 'summary', audioSeconds: 6, utterances: 1, label: 'sad', scores: { sad: 1 }, model: 'fake', modelVersion: 3 });
});

test('encoded streams send an EncodedFormat and need no rate', async () => {
  const events = await collect(client.stream(chunks(2), { encoding: 'encoded' }));
  const record = seen.at(-1);
  assert.equal(record.config.format, 'encoded');
  assert.equal(record.config.interimResults, true, 'interim results are on by default');
  assert.equal(events.at(-1).kind, 'summary');
});

test('bad options throw at once, before any call', () => {
  const before = seen.length;
  for (const [options, why] of [
    [{}, /needs its sample rate/],
    [{ rate: 8000, encoding: 'mp3' }, /unknown encoding "mp3"/],
    [{ rate: 8000, channels: 0 }, /channels must be a positive integer/],
  ]) {
    assert.throws(() => client.stream(chunks(1), options), (e) => e instanceof prosodia.ProsodiaError && e.codeName === 'INVALID_ARGUMENT' && why.test(e.details));
  }
  assert.throws(() => client.stream(42, { rate: 8000 }), /iterable/);
  assert.equal(seen.length, before);
});

test('a server error at the start or midway rejects with its code and message', async () => {
  await assert.rejects(collect(client.stream(chunks(3), { rate: 8000, model: 'fail-at-once' })), (e) => {
    assert.ok(e instanceof prosodia.ProsodiaError);
    assert.equal(e.codeName, 'NOT_FOUND');
    assert.equal(e.details, 'no model fail-at-once here');
    return true;
  });
  const got = [];
  await assert.rejects(
    (async () => {
      for await (const e of client.stream(chunks(10), { rate: 8000, model: 'fail-midway' })) got.push(e);
    })(),
    (e) => e.codeName === 'INVALID_ARGUMENT' && e.details === 'sample 7 is NaN',
  );
  assert.equal(got.length, 2, 'the windows before the error arrive');
});

test('an error thrown by the source is rethrown as is and cancels the call', async () => {
  async function* broken() {
    yield Buffer.alloc(4);
    throw new RangeError('microphone unplugged');
  }
  await assert.rejects(collect(client.stream(broken(), { rate: 8000 })), (e) => e instanceof RangeError && e.message === 'microphone unplugged');
  const record = seen.at(-1);
  await waitFor(() => record.cancelled, 'the server sees the cancel');
});

test('leaving the loop early cancels the call and stops the source', async () => {
  let pulled = 0;
  async function* endless() {
    for (;;) {
      pulled += 1;
      yield Buffer.alloc(4);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const source = endless();
  for await (const e of client.stream(source, { rate: 8000 })) {
    assert.equal(e.kind, 'window');
    break;
  }
  const record = seen.at(-1);
  await waitFor(() => record.cancelled, 'the server sees the cancel');
  const after = pulled;
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(pulled <= after + 1, `the source kept being read: ${after} -> ${pulled}`);
});

async function waitFor(predicate, what) {
  for (let i = 0; i < 200; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting: ${what}`);
}
