'use strict';
// `npm pack` runs this before packing (prepack) so the tarball carries the protos in proto/,
// and with --remove after (postpack) so the checkout keeps reading the repository's own.
const fs = require('node:fs');
const path = require('node:path');

const packageRoot = path.resolve(__dirname, '..');
const target = path.join(packageRoot, 'proto');
const source = path.resolve(packageRoot, '..', '..', 'proto', 'prosodia');

if (process.argv.includes('--remove')) {
  fs.rmSync(target, { recursive: true, force: true });
} else {
  if (!fs.existsSync(source)) {
    console.error(`copy-protos: no ${source}; pack from inside the repository`);
    process.exit(1);
  }
  fs.rmSync(target, { recursive: true, force: true });
  fs.cpSync(source, path.join(target, 'prosodia'), {
    recursive: true,
    filter: (src) => fs.statSync(src).isDirectory() || src.endsWith('.proto'),
  });
}
