#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that `prosodia-backend-ort` loads at run time,
# from the `onnxruntime` Python wheel (a registry package, so no separate download), and
# prints the library's absolute path on stdout, so that
#
#     export ORT_DYLIB_PATH="$(scripts/install-onnxruntime.sh)"
#
# works. Everything else goes to stderr. Re-running is cheap: an installed, matching version
# is reused.
#
# Environment:
#   PROSODIA_VENV         the virtual environment to create or use
#                         (default: $HOME/.cache/prosodia-venv)
#   PROSODIA_ORT_VERSION  the onnxruntime version (default: the pinned one below)
#   PYTHON                the interpreter that creates the venv (default: python3)
#
# The library must provide the ONNX Runtime C API version the `ort` crate is built for: the
# workspace enables no `api-NN` feature of ort 2.0.0-rc.15, so that is API 17 and any ONNX
# Runtime >= 1.17 loads. The pin is 1.31.1, the release ort rc.15 targets (ort 2.0.0-rc.15
# is "a safe Rust wrapper for ONNX Runtime 1.31").
set -euo pipefail

ORT_VERSION="${PROSODIA_ORT_VERSION:-1.31.1}"
VENV="${PROSODIA_VENV:-$HOME/.cache/prosodia-venv}"
PYTHON="${PYTHON:-python3}"

log() { echo "install-onnxruntime: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi

installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("onnxruntime"))' 2>/dev/null || true)"
if [ "$installed" != "$ORT_VERSION" ]; then
  log "installing onnxruntime==$ORT_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "onnxruntime==$ORT_VERSION" >&2
else
  log "onnxruntime $ORT_VERSION already installed in $VENV"
fi

capi="$("$VENV/bin/python" -c 'import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
lib=""
for candidate in "$capi"/libonnxruntime.so.* "$capi"/libonnxruntime.*.dylib "$capi"/libonnxruntime.so; do
  if [ -f "$candidate" ]; then
    lib="$candidate"
    break
  fi
done
if [ -z "$lib" ]; then
  log "no libonnxruntime shared library found in $capi"
  exit 1
fi

log "ONNX Runtime library: $lib"
echo "$lib"
