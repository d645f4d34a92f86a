#!/usr/bin/env bash
# Rebuilds the page's checked-in assets in clients/web/dist from src/, index.html and
# style.css: installs the pinned tools from package-lock.json (npm ci), type-checks with tsc,
# bundles with esbuild. Commit dist/ afterwards; the server embeds it at compile time.
#
#     bash clients/web/build.sh [OUT_DIR]
#
# Environment: NPM (default npm), PROSODIA_NPM_CACHE (default $HOME/.cache/prosodia-npm).
set -euo pipefail
cd "$(dirname "$0")"
NPM="${NPM:-npm}"
CACHE="${PROSODIA_NPM_CACHE:-$HOME/.cache/prosodia-npm}"
if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/tsc ]; then
  "$NPM" ci --ignore-scripts --no-audit --no-fund --prefer-offline --cache "$CACHE" >&2
fi
node_modules/.bin/tsc --noEmit -p .
node build.mjs "$@"
