#!/usr/bin/env bash
# Installs what the web page's browser test (server/app/tests/web.rs, which runs
# clients/web/tests/e2e.mjs) needs: the page's npm packages as clients/web/package-lock.json
# pins them (playwright-core drives the browser; esbuild and typescript rebuild the page) and
# Debian's `chromium` when it is missing (apt-get, only as root; otherwise it is skipped with
# a message and the test skips). Only this install talks to the registries; the test and the
# page never download anything, and playwright-core uses the system Chromium, never a browser
# build of its own.
#
# Prints shell assignments on stdout, so that
#
#     eval "$(scripts/install-web-test.sh)"
#
# exports PROSODIA_NODE (the node binary), PROSODIA_WEB_DIR (clients/web, with its packages)
# and PROSODIA_CHROMIUM (the browser) when it is there. Everything else goes to stderr.
# Re-running is cheap: npm ci is skipped while node_modules matches the lock file.
#
# Environment:
#   NODE                the node binary (default: node on PATH)
#   NPM                 the npm binary (default: npm on PATH)
#   CHROMIUM            the browser (default: chromium or chromium-browser on PATH)
#   PROSODIA_NPM_CACHE  npm's cache folder (default: $HOME/.cache/prosodia-npm)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-web-test: $*" >&2; }

NODE="${NODE:-node}"
NPM="${NPM:-npm}"
CACHE="${PROSODIA_NPM_CACHE:-$HOME/.cache/prosodia-npm}"
dir="$PWD/clients/web"

node_bin="$(command -v "$NODE" || true)"
if [ -z "$node_bin" ]; then
  log "no node binary ($NODE); install Node.js 18 or newer"
  exit 1
fi
if ! "$node_bin" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  log "$("$node_bin" --version) is too old: playwright-core needs Node.js 18 or newer"
  exit 1
fi
if ! command -v "$NPM" >/dev/null; then
  log "no npm binary ($NPM)"
  exit 1
fi

stamp_file="$dir/node_modules/.prosodia-lock.sha256"
stamp="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp_file" 2>/dev/null || true)" != "$stamp" ] \
  || [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  log "npm ci in clients/web"
  # --ignore-scripts: no package needs its install script (esbuild finds its platform
  # package without it; playwright-core downloads nothing at install time).
  (cd "$dir" && "$NPM" ci --ignore-scripts --no-audit --no-fund --prefer-offline --cache "$CACHE" >&2)
  echo "$stamp" >"$stamp_file"
fi

find_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then
    command -v "$CHROMIUM" || true
  else
    command -v chromium || command -v chromium-browser || true
  fi
}
chromium_bin="$(find_chromium)"
if [ -z "$chromium_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium with apt-get"
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >&2; then
      chromium_bin="$(find_chromium)"
    else
      log "apt-get could not install chromium; the browser test will skip"
    fi
  else
    log "no chromium on PATH and not root (or no apt-get): install Debian's chromium; the browser test will skip"
  fi
fi

log "node: $node_bin ($("$node_bin" --version)); page: $dir; chromium: ${chromium_bin:-none}"
printf 'export PROSODIA_NODE=%q\n' "$node_bin"
printf 'export PROSODIA_WEB_DIR=%q\n' "$dir"
if [ -n "$chromium_bin" ]; then
  printf 'export PROSODIA_CHROMIUM=%q\n' "$chromium_bin"
fi
