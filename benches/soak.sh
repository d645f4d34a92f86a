#!/usr/bin/env bash
# The soak of issue 7: mixed unary and streaming load on one prosodia-server (release, the
# bundled model) at about 70 % of its measured capacity, for SEGMENTS × SEGMENT seconds
# (default 6 × 300 s = 30 minutes), sampling the server's resident memory every 10 s.
#
#   benches/soak.sh [OUT_DIR]
#
# 1. Capacity: closed-loop Classify at 8 clients for CAPACITY_SECONDS (default 20): C req/s.
# 2. Load, per segment, two generators at once:
#    - open-loop Classify at 0.65 × C req/s (Poisson arrivals, latency from the intended start);
#    - STREAMS real-time StreamClassify streams (default max(1, round(0.05 × C / hop rate))),
#      the other ~5 % of capacity (each stream classifies one 3 s window per second).
# 3. Report (OUT_DIR/results.md): per segment requests, errors by code, p50/p99; stream errors
#    and interim-latency p99; RSS per segment (median of the 10 s samples, and the last one),
#    growth from the first segment's median (warm-up) to the last one's, and the peak.
# Targets from the issue: 0 errors, RSS growth under 5 % after warm-up, p99 of the last
# segment close to the first. The generators share the machine with the server: on a small
# machine they take cores from it, which is part of the measured capacity.
#
# Environment: SEGMENTS (6), SEGMENT seconds (300), CAPACITY_SECONDS (20), LOAD (0.65),
# STREAMS (derived), WORKERS (nproc), PORT (50081), CLIP (a 3.3 s RAVDESS fixture).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prosodia-target}"
OUT="${1:-$CARGO_TARGET_DIR/soak-results}"
SEGMENTS="${SEGMENTS:-6}"
SEGMENT="${SEGMENT:-300}"
CAPACITY_SECONDS="${CAPACITY_SECONDS:-20}"
LOAD="${LOAD:-0.65}"
WORKERS="${WORKERS:-$(nproc)}"
PORT="${PORT:-50081}"
CLIP="${CLIP:-$root/../shared/fixtures/ravdess/03-01-01-01-01-01-01.wav}"
mkdir -p "$OUT"
log() { echo "soak: $*" >&2; }
[ -f "$CLIP" ] || { log "the clip $CLIP is missing (set CLIP)"; exit 1; }

log "building release binaries"
cargo build --release -p prosodia-server -p prosodia-load >&2
server_bin="$CARGO_TARGET_DIR/release/prosodia-server"
load_bin="$CARGO_TARGET_DIR/release/prosodia-load"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$server_bin" --listen "127.0.0.1:$PORT" --workers "$WORKERS" >"$OUT/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 300); do
  (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { log "the server exited; see $OUT/server.log"; exit 1; }
  sleep 0.1
done
addr="http://127.0.0.1:$PORT"
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }

log "measuring capacity (8 clients, ${CAPACITY_SECONDS} s)"
"$load_bin" --addr "$addr" --concurrency 8 --duration "$CAPACITY_SECONDS" --warmup 3 \
  --json "$OUT/capacity.json" "$CLIP" >/dev/null
capacity="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["unary"][0]["throughput_rps"])' "$OUT/capacity.json")"
rate="$(python3 -c "print(round($capacity * $LOAD, 2))")"
streams="${STREAMS:-$(python3 -c "print(max(1, round($capacity * 0.05)))")}"
log "capacity $capacity req/s; unary at $rate req/s and $streams streams"

echo "seconds,rss_kb" >"$OUT/rss.csv"
start=$(date +%s)
( while kill -0 "$server" 2>/dev/null; do
    echo "$(( $(date +%s) - start )),$(rss_kb)" >>"$OUT/rss.csv"; sleep 10
  done ) &
pids+=("$!")

for i in $(seq 1 "$SEGMENTS"); do
  log "segment $i/$SEGMENTS (${SEGMENT} s)"
  "$load_bin" --addr "$addr" --rate "$rate" --concurrency 64 --channels 8 --duration "$SEGMENT" \
    --warmup 0 --json "$OUT/unary-$i.json" "$CLIP" >/dev/null 2>"$OUT/unary-$i.log" &
  unary=$!
  "$load_bin" --addr "$addr" --streams "$streams" --duration "$SEGMENT" --warmup 0 \
    --json "$OUT/streams-$i.json" "$CLIP" >/dev/null 2>"$OUT/streams-$i.log" &
  streamer=$!
  wait "$unary" "$streamer"
  echo "$i,$(rss_kb)" >>"$OUT/rss-segments.csv"
done

python3 - "$OUT" "$capacity" "$rate" "$streams" "$SEGMENT" <<'PY'
import json, sys, os
out, capacity, rate, streams, segment = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows, total_errors = [], 0
seg_rss = [line.strip().split(",") for line in open(os.path.join(out, "rss-segments.csv"))]
# RSS per segment from the 10 s samples: the median is what the server holds in steady state
# (a single sample also catches whatever requests happen to be queued at that instant).
samples = [line.strip().split(",") for line in open(os.path.join(out, "rss.csv"))][1:]
def seg_median(i):
    v = sorted(int(r) for t, r in samples if (i - 1) * segment <= int(t) < i * segment)
    return v[len(v) // 2] if v else 0
for i, rss in seg_rss:
    u = json.load(open(os.path.join(out, f"unary-{i}.json")))["unary"][0]
    s = json.load(open(os.path.join(out, f"streams-{i}.json")))["streams"][0]
    errors = sum(u["errors"].values()) + sum(s["errors"].values())
    total_errors += errors
    rows.append(f"| {i} | {u['requests']} | {u['throughput_rps']:.1f} | {u['latency_ms']['p50']:.1f} | "
                f"{u['latency_ms']['p99']:.1f} | {s['interim_latency_ms']['p99']:.1f} | "
                f"{errors} {dict(u['errors']) or ''}{dict(s['errors']) or ''} | {seg_median(int(i))/1024:.1f} | {int(rss)/1024:.1f} |")
medians = [seg_median(int(i)) for i, _ in seg_rss]
peak = max(int(r) for _, r in samples)
warm, last = medians[0], medians[-1]
growth = 100.0 * (last - warm) / warm
with open(os.path.join(out, "results.md"), "w") as f:
    f.write(f"Capacity (8 clients, closed loop): {capacity:.1f} req/s; load: unary {rate} req/s "
            f"(open loop, Poisson) + {streams} real-time streams; {len(seg_rss)} segments of {segment} s; "
            f"nproc {os.cpu_count()}, load average at the end {os.getloadavg()[0]:.2f}.\n\n")
    f.write("| segment | unary requests | req/s | p50 ms | p99 ms | stream interim p99 ms | errors | RSS MiB median | RSS MiB at end |\n")
    f.write("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n")
    f.write("\n".join(rows) + "\n\n")
    f.write(f"Errors: {total_errors}. Median RSS in segment 1 (warm-up): {warm/1024:.1f} MiB; in the last "
            f"segment: {last/1024:.1f} MiB; growth {growth:+.2f} %; highest sample {peak/1024:.1f} MiB.\n")
print(open(os.path.join(out, "results.md")).read())
PY
