#!/usr/bin/env bash
# The load benchmark of issue 5: prosodia-server (release, bundled model) against the Python
# grpcio + librosa + onnxruntime server in benches/python_server, same clip, same levels, same
# machine, one after the other; then real-time streams against prosodia-server.
#
#   benches/run-load.sh [OUT_DIR]
#
# Writes OUT_DIR/{rust,python,streams}.json and OUT_DIR/results.md (default OUT_DIR:
# $CARGO_TARGET_DIR/load-results). The load generator runs on the same machine as the server
# it measures, so on a small machine it takes cores from the server: read the numbers with
# the machine in mind (results.md records nproc and the load average).
#
# Environment (all optional):
#   CLIP         the clip to send (default: a 3.3 s RAVDESS fixture from ../shared)
#   LEVELS       closed-loop concurrency levels (default 1,8,32,128)
#   DURATION     measured seconds per level (default 10); WARMUP (default 2)
#   STREAMS      concurrent stream counts to try (default 50,100,200,500)
#   STREAM_SECONDS  measured audio seconds per stream (default 10)
#   WORKERS      prosodia-server --workers and the Python pool size (default: nproc)
#   RUST_PORT, PY_PORT   listen ports (default 50071, 50072)
#   SKIP_PYTHON=1        measure prosodia-server only
#   SERVER_BIN   a prosodia-server binary to measure instead of this checkout's release
#                build (e.g. an older build, to compare before and after a change)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prosodia-target}"
OUT="${1:-$CARGO_TARGET_DIR/load-results}"
CLIP="${CLIP:-$root/../shared/fixtures/ravdess/03-01-01-01-01-01-01.wav}"
LEVELS="${LEVELS:-1,8,32,128}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
STREAMS="${STREAMS:-50,100,200,500}"
STREAM_SECONDS="${STREAM_SECONDS:-10}"
WORKERS="${WORKERS:-$(nproc)}"
RUST_PORT="${RUST_PORT:-50071}"
PY_PORT="${PY_PORT:-50072}"
mkdir -p "$OUT"
log() { echo "run-load: $*" >&2; }

[ -f "$CLIP" ] || { log "the clip $CLIP is missing (set CLIP)"; exit 1; }

log "building release binaries"
cargo build --release -p prosodia-server -p prosodia-load >&2
server_bin="${SERVER_BIN:-$CARGO_TARGET_DIR/release/prosodia-server}"
load_bin="$CARGO_TARGET_DIR/release/prosodia-load"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { # port, pid, name
  for _ in $(seq 1 300); do
    if (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { log "$3 exited before listening"; return 1; }
    sleep 0.1
  done
  log "$3 did not listen on $1 within 30 s"; return 1
}

log "starting prosodia-server on 127.0.0.1:$RUST_PORT (workers $WORKERS)"
"$server_bin" --listen "127.0.0.1:$RUST_PORT" --models "$root/models" --workers "$WORKERS" \
  --max-streams 2048 --max-queued 4096 --log warn >"$OUT/rust-server.log" 2>&1 &
pids+=($!)
wait_port "$RUST_PORT" "${pids[-1]}" prosodia-server

run_python=0
if [ "${SKIP_PYTHON:-0}" != 1 ]; then
  if py="$(benches/python_server/setup.sh)"; then
    log "starting the Python server on 127.0.0.1:$PY_PORT (pool $WORKERS)"
    "$py" benches/python_server/server.py --listen "127.0.0.1:$PY_PORT" --workers "$WORKERS" \
      >"$OUT/python-server.log" 2>&1 &
    pids+=($!)
    wait_port "$PY_PORT" "${pids[-1]}" "the Python server" && run_python=1
  else
    log "the Python environment could not be set up; measuring prosodia-server only"
  fi
fi

# Sanity: both servers give the same label on the clip (and answer at all).
label_of() { "$load_bin" --addr "http://127.0.0.1:$1" --duration 0.3 --warmup 0 "$CLIP" 2>/dev/null |
  python3 -c 'import json,sys; u=json.load(sys.stdin)["unary"][0]; assert u["ok"] > 0, u; print(max(u["labels"], key=u["labels"].get))'; }
rust_label="$(label_of "$RUST_PORT")"
log "prosodia-server labels the clip: $rust_label"
if [ "$run_python" = 1 ]; then
  py_label="$(label_of "$PY_PORT")"
  log "the Python server labels the clip: $py_label"
  if [ "$py_label" != "$rust_label" ]; then
    log "LABEL MISMATCH: the two servers do not do the same job on $CLIP"; exit 1
  fi
fi

common=(--levels "$LEVELS" --duration "$DURATION" --warmup "$WARMUP" "$CLIP")
log "prosodia-server, levels $LEVELS"
"$load_bin" --addr "http://127.0.0.1:$RUST_PORT" --label rust --json "$OUT/rust.json" "${common[@]}" >/dev/null
if [ "$run_python" = 1 ]; then
  log "Python server, levels $LEVELS"
  "$load_bin" --addr "http://127.0.0.1:$PY_PORT" --label python --json "$OUT/python.json" "${common[@]}" >/dev/null
  kill "${pids[-1]}" 2>/dev/null || true # free its memory and threads before the streams
fi
log "prosodia-server, real-time streams $STREAMS"
"$load_bin" --addr "http://127.0.0.1:$RUST_PORT" --label rust-streams --json "$OUT/streams.json" \
  --streams "$STREAMS" --warmup 3 --duration "$STREAM_SECONDS" "$CLIP" >/dev/null

python3 - "$OUT" "$CLIP" "$WORKERS" "$rust_label" <<'EOF'
import json, os, sys
out, clip, workers, label = sys.argv[1:5]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
rust, py, streams = load("rust.json"), load("python.json"), load("streams.json")
lines = [f"# Load benchmark", "",
         f"clip `{os.path.basename(clip)}` (label {label}); {os.cpu_count()} cores, load average "
         f"{os.getloadavg()[0]:.2f} at the end; server workers / Python pool {workers}; "
         f"generator on the same machine.", ""]
def row(name, u):
    s = u.get("server_ms") or {}
    split = "/".join(f"{s[k]['p50']:.2f}" for k in ("queue", "decode", "extract", "infer")) if s else "-"
    err = sum(u["errors"].values())
    return (f"| {name} | {u['concurrency']} | {u['requests']} | {err} | {u['throughput_rps']:.1f} | "
            f"{u['latency_ms']['p50']:.2f} | {u['latency_ms']['p99']:.2f} | {u['latency_ms']['max']:.2f} | {split} |")
lines += ["| server | clients | requests | errors | req/s | p50 ms | p99 ms | max ms | server p50 queue/decode/extract/infer ms |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
for name, doc in (("rust", rust), ("python", py)):
    for u in (doc or {}).get("unary", []):
        lines.append(row(name, u))
if rust and py:
    lines += ["", "| clients | rust req/s | python req/s | ratio |", "| ---: | ---: | ---: | ---: |"]
    for r, p in zip(rust["unary"], py["unary"]):
        ratio = r["throughput_rps"] / p["throughput_rps"] if p["throughput_rps"] else float("inf")
        lines.append(f"| {r['concurrency']} | {r['throughput_rps']:.1f} | {p['throughput_rps']:.1f} | {ratio:.1f}x |")
if streams:
    lines += ["", "| streams | held (<100 ms) | errors | interim p50 ms | p99 ms | max ms | windows | late chunks |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in streams["streams"]:
        i = s["interim_latency_ms"]
        lines.append(f"| {s['streams']} | {s['streams_under_threshold']} | {sum(s['errors'].values())} | "
                     f"{i['p50']:.2f} | {i['p99']:.2f} | {i['max']:.2f} | {s['windows_received']}/{s['windows_expected']} | {s['late_chunks']} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
EOF
log "results in $OUT"
