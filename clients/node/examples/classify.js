#!/usr/bin/env node
'use strict';
// Classify audio files with a Prosodia server and print the scores.
//
//     node examples/classify.js [--addr HOST:PORT] [--model NAME] FILE...
//
// Needs the package's dependencies (npm ci in clients/node) and a running server. Exits 1 if
// any file was refused.

const { parseArgs } = require('node:util');
const prosodia = require('..');

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      addr: { type: 'string', default: prosodia.DEFAULT_TARGET },
      model: { type: 'string', default: '' },
    },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    console.error('usage: node examples/classify.js [--addr HOST:PORT] [--model NAME] FILE...');
    return 2;
  }
  const client = new prosodia.Client(values.addr, { timeout: 60 });
  let failed = 0;
  try {
    for (const file of positionals) {
      try {
        const result = await client.classify(file, { model: values.model });
        const ranked = Object.entries(result.scores).sort((a, b) => b[1] - a[1]);
        const scores = ranked.map(([label, p]) => `${label} ${p.toFixed(2)}`).join('  ');
        console.log(
          `${file}: ${result.label}  (${scores})  [${result.model} v${result.modelVersion}, ` +
            `${result.audioSeconds.toFixed(1)} s audio, ${result.durations.totalMs.toFixed(0)} ms]`,
        );
      } catch (e) {
        if (!(e instanceof prosodia.ProsodiaError)) throw e;
        // e.codeName is the gRPC status (e.g. INVALID_ARGUMENT), e.details the server's explanation.
        console.error(`${file}: ${e.codeName}: ${e.details}`);
        failed += 1;
      }
    }
  } finally {
    client.close();
  }
  return failed ? 1 : 0;
}

main().then((code) => {
  process.exitCode = code;
});
