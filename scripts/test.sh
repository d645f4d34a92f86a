#!/usr/bin/env bash
# The project's test command (the README's second command). Everything the tests need that
# is not a Rust crate is installed here, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prosodia-target}"

if [ ! -d ../shared/fixtures ] && [ -z "${PROSODIA_SHARED:-}" ]; then
  echo "tests need the shared fixtures at ../shared (or PROSODIA_SHARED=DIR)" >&2
  exit 2
fi

cargo test --workspace --locked "$@"
