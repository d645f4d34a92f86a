#!/usr/bin/env bash
# Installs NVRTC (the CUDA run-time compiler library, libnvrtc.so.12) from the
# `nvidia-cuda-nvrtc-cu12` Python wheel into a virtual environment under ~/.cache, and prints
# the directory holding libnvrtc.so.12 on stdout, so that
#
#     export LD_LIBRARY_PATH="$(scripts/install-nvrtc.sh)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
#
# lets `prosodia-features-cuda` compile its kernels to PTX on a machine with no GPU and no
# CUDA toolkit. cudarc's `dynamic-loading` opens the library by file name only
# (libnvrtc.so, libnvrtc.so.12, ...), so the dynamic loader's search path is how it is found;
# libnvrtc then opens its companion libnvrtc-builtins.so.12.x from the same directory.
# Everything else goes to stderr. Re-running is cheap: an installed, matching version is
# reused.
#
# The version is pinned to CUDA 12.8, the `cuda-12080` feature the crate builds cudarc with:
# PTX written by a newer NVRTC carries a newer PTX ISA version, which an older driver refuses.
#
# Environment:
#   PROSODIA_NVRTC_VENV     the virtual environment (default: $HOME/.cache/prosodia-nvrtc-venv)
#   PROSODIA_NVRTC_VERSION  the wheel version (default: the pinned one below)
#   PYTHON                  the interpreter that creates the venv (default: python3)
set -euo pipefail

NVRTC_VERSION="${PROSODIA_NVRTC_VERSION:-12.8.93}"
VENV="${PROSODIA_NVRTC_VENV:-$HOME/.cache/prosodia-nvrtc-venv}"
PYTHON="${PYTHON:-python3}"

log() { echo "install-nvrtc: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi

installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nvidia-cuda-nvrtc-cu12"))' 2>/dev/null || true)"
if [ "$installed" != "$NVRTC_VERSION" ]; then
  log "installing nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION" >&2
else
  log "nvidia-cuda-nvrtc-cu12 $NVRTC_VERSION already installed in $VENV"
fi

# The wheel lays the library out as site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12.
lib="$("$VENV/bin/python" - <<'PY'
import glob, os, sysconfig
root = sysconfig.get_paths()["purelib"]
hits = sorted(glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12")))
print(hits[0] if hits else "")
PY
)"
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
  log "libnvrtc.so.12 not found in the installed wheel"
  exit 1
fi

dir="$(dirname "$lib")"
log "NVRTC library directory: $dir"
echo "$dir"
