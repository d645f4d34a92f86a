#!/usr/bin/env bash
# Regenerates the gRPC stubs in prosodia/v1 from ../../proto/prosodia/v1/*.proto with
# grpcio-tools (installed by scripts/install-python-clients.sh). The generated files are
# committed; tests/test_stubs.py fails when they are stale.
#
#     bash clients/python/generate.sh [OUT_DIR]
#
# OUT_DIR (default: clients/python) receives prosodia/v1/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py.
# Environment: PYTHON, the interpreter with grpcio-tools
# (default: $HOME/.cache/prosodia-venv/bin/python).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
PYTHON="${PYTHON:-$HOME/.cache/prosodia-venv/bin/python}"
proto="$here/../../proto"

mkdir -p "$out/prosodia/v1"
# Relative paths, so the generated files name `prosodia/v1/<file>.proto` and import each
# other as `prosodia.v1.<module>`: the `prosodia.v1` package of this client.
cd "$proto"
"$PYTHON" -m grpc_tools.protoc -I . \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  prosodia/v1/*.proto
