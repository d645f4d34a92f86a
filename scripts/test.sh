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

# ONNX Runtime for the ORT backend's tests, from the onnxruntime wheel (its tests skip with a
# printed reason when the library is absent; PROSODIA_SKIP_ORT=1 skips the install).
if [ -z "${ORT_DYLIB_PATH:-}" ] && [ "${PROSODIA_SKIP_ORT:-0}" != 1 ]; then
  if ORT_DYLIB_PATH="$(bash scripts/install-onnxruntime.sh)"; then
    export ORT_DYLIB_PATH
  else
    echo "test.sh: could not install onnxruntime; ORT tests will skip" >&2
  fi
fi

# The Python client, its interpreter and grpcurl for server/app/tests/clients.rs (which skip
# with a printed reason when absent; PROSODIA_SKIP_PYTHON=1 skips the install).
if [ "${PROSODIA_SKIP_PYTHON:-0}" != 1 ]; then
  if py_env="$(bash scripts/install-python-clients.sh)"; then
    eval "$py_env"
  else
    echo "test.sh: could not install the Python client; its tests will skip" >&2
  fi
fi

# The Node client's dependencies and node itself for server/app/tests/node_client.rs (which
# skips with a printed reason when absent; PROSODIA_SKIP_NODE=1 skips the install).
if [ "${PROSODIA_SKIP_NODE:-0}" != 1 ]; then
  if node_env="$(bash scripts/install-node-clients.sh)"; then
    eval "$node_env"
  else
    echo "test.sh: could not install the Node client; its tests will skip" >&2
  fi
fi

# The web page's browser test (server/app/tests/web.rs): playwright-core and the page's build
# tools from clients/web/package-lock.json, and Debian's chromium if missing (the test skips
# with a printed reason when absent; PROSODIA_SKIP_WEB=1 skips the install).
if [ "${PROSODIA_SKIP_WEB:-0}" != 1 ]; then
  if web_env="$(bash scripts/install-web-test.sh)"; then
    eval "$web_env"
  else
    echo "test.sh: could not install the web test's tools; the browser test will skip" >&2
  fi
fi

# nginx for server/app/tests/scale_out.rs (replicas behind nginx, deploy/scale-out.sh):
# Debian's package when it is missing, with apt-get and only as root (the tests skip with a
# printed reason when it is absent; PROSODIA_SKIP_NGINX=1 skips the install).
if [ "${PROSODIA_SKIP_NGINX:-0}" != 1 ] && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing Debian's nginx with apt-get" >&2
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx) >&2; then
      echo "test.sh: could not install nginx; the scale-out tests will skip" >&2
    fi
  else
    echo "test.sh: nginx is missing and this is not root with apt-get; the scale-out tests will skip" >&2
  fi
fi

# NVRTC for the CUDA extractor's kernel-compilation tests, from the nvidia-cuda-nvrtc-cu12
# wheel (no GPU needed; the tests skip with a printed reason when it is absent;
# PROSODIA_SKIP_NVRTC=1 skips the install). cudarc opens libnvrtc by name, so its directory
# goes on the loader's search path.
if [ "${PROSODIA_SKIP_NVRTC:-0}" != 1 ]; then
  if nvrtc_dir="$(bash scripts/install-nvrtc.sh)"; then
    export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    echo "test.sh: could not install NVRTC; the CUDA kernel-compilation tests will skip" >&2
  fi
fi

# kubernetes-validate for server/app/tests/kubernetes.rs (the deploy/kubernetes/ manifests;
# it skips with a printed reason when absent; PROSODIA_SKIP_K8S=1 skips the install).
if [ "${PROSODIA_SKIP_K8S:-0}" != 1 ]; then
  if k8s_env="$(bash scripts/install-kubernetes-validate.sh)"; then
    eval "$k8s_env"
  else
    echo "test.sh: could not install kubernetes-validate; the manifest test will skip" >&2
  fi
fi

# Tests that panic on purpose (plugin containment) and failing tests print backtraces that
# push the failure messages out of a CI log's tail; PROSODIA_TEST_BACKTRACE=1 brings them back.
export RUST_BACKTRACE="${PROSODIA_TEST_BACKTRACE:-0}"

cargo test --workspace --locked "$@"

# The documentation's shell commands, run against a real server as the docs write them
# (scripts/doc-commands.py: blocks marked `sh norun` are skipped; the release server build is
# the one cached in CARGO_TARGET_DIR). The client installs above are reused: their variables
# are exported. PROSODIA_SKIP_DOCS=1 skips it, and so does a run given test filters or flags.
if [ "${PROSODIA_SKIP_DOCS:-0}" != 1 ] && [ "$#" = 0 ]; then
  if command -v python3 >/dev/null; then
    python3 scripts/doc-commands.py
  else
    echo "test.sh: SKIPPED the documentation's commands: python3 is not installed" >&2
  fi
fi
