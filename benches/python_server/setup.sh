#!/usr/bin/env bash
# Creates the virtual environment of the Python comparison server (benches/python_server):
# librosa for features, soundfile for decoding, onnxruntime for the model, grpcio (+ tools,
# to generate stubs at run time) for serving. Prints the venv's interpreter on stdout; the
# rest goes to stderr. Re-running reuses a venv whose pins match.
#
# Environment:
#   PROSODIA_PYBENCH_VENV  where to create it (default: $HOME/.cache/prosodia-pybench-venv)
#   PYTHON                 the interpreter that creates it (default: python3)
set -euo pipefail

# Pins: the registry's versions when this was written (librosa 0.11 is what ../shared's
# reference values were computed with). grpcio/protobuf match scripts/install-python-clients.sh.
PINS=(
  "librosa==0.11.0"
  "soundfile==0.14.0"
  "onnxruntime==1.31.1"
  "grpcio==1.85.1"
  "grpcio-tools==1.85.1"
  "protobuf==7.36.2"
)

VENV="${PROSODIA_PYBENCH_VENV:-$HOME/.cache/prosodia-pybench-venv}"
PYTHON="${PYTHON:-python3}"
log() { echo "python_server/setup.sh: $*" >&2; }

stamp="$VENV/.prosodia-pins"
want="$(printf '%s\n' "${PINS[@]}")"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "reusing $VENV"
else
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}" >&2
  printf '%s\n' "$want" > "$stamp"
fi
echo "$VENV/bin/python"
