#!/usr/bin/env bash
# Installs the Node client's dependencies (@grpc/grpc-js, @grpc/proto-loader, exactly as
# clients/node/package-lock.json pins them) into clients/node/node_modules, for
# server/app/tests/node_client.rs. Only this install talks to the npm registry; the tests
# and the client never download anything.
#
# Prints shell assignments on stdout, so that
#
#     eval "$(scripts/install-node-clients.sh)"
#
# exports PROSODIA_NODE (the node binary) and PROSODIA_NODE_DIR (the client package, with
# its dependencies installed). Everything else goes to stderr. Re-running is cheap: the
# install is skipped while node_modules matches the lock file, and npm's download cache is
# kept in ~/.cache so a re-install after a clean needs no network for cached packages.
#
# Environment:
#   NODE           the node binary (default: node on PATH)
#   NPM            the npm binary (default: npm on PATH)
#   PROSODIA_NPM_CACHE  npm's cache folder (default: $HOME/.cache/prosodia-npm)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-node-clients: $*" >&2; }

NODE="${NODE:-node}"
NPM="${NPM:-npm}"
CACHE="${PROSODIA_NPM_CACHE:-$HOME/.cache/prosodia-npm}"
dir="$PWD/clients/node"

node_bin="$(command -v "$NODE" || true)"
if [ -z "$node_bin" ]; then
  log "no node binary ($NODE); install Node.js 18.15 or newer"
  exit 1
fi
if ! "$node_bin" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 15) ? 0 : 1)'; then
  log "$("$node_bin" --version) is too old: the client and its tests need Node.js 18.15 or newer"
  exit 1
fi
if ! command -v "$NPM" >/dev/null; then
  log "no npm binary ($NPM)"
  exit 1
fi

# npm writes node_modules/.package-lock.json after a successful install; it equals the lock
# file's package list, so a stamp of the lock file decides whether to reinstall.
stamp_file="$dir/node_modules/.prosodia-lock.sha256"
stamp="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp_file" 2>/dev/null || true)" != "$stamp" ] \
  || [ ! -f "$dir/node_modules/@grpc/grpc-js/package.json" ] \
  || [ ! -f "$dir/node_modules/@grpc/proto-loader/package.json" ]; then
  log "npm ci in clients/node"
  # --ignore-scripts: none of the dependencies needs an install script to work.
  (cd "$dir" && "$NPM" ci --ignore-scripts --no-audit --no-fund --prefer-offline --cache "$CACHE" >&2)
  echo "$stamp" >"$stamp_file"
fi

log "node: $node_bin ($("$node_bin" --version)); client: $dir"
printf 'export PROSODIA_NODE=%q\n' "$node_bin"
printf 'export PROSODIA_NODE_DIR=%q\n' "$dir"
