// Builds the page into dist/ (or the folder given as the first argument): the two scripts
// bundled by esbuild, index.html and style.css copied. Output is deterministic, so a rebuild
// of unchanged sources changes nothing that is checked in.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "dist");
await mkdir(out, { recursive: true });
const common = { absWorkingDir: here, bundle: true, format: "iife", target: "es2022", legalComments: "none", logLevel: "warning" };
await build({ ...common, entryPoints: [join(here, "src/main.ts")], outfile: join(out, "app.js") });
await build({ ...common, entryPoints: [join(here, "src/recorder-worklet.ts")], outfile: join(out, "recorder-worklet.js") });
for (const f of ["index.html", "style.css"]) await copyFile(join(here, f), join(out, f));
console.error(`built the page into ${out}`);
