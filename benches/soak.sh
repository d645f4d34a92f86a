#!/usr/bin/env bash
# The soak of issue 7: mixed unary and streaming load on one prosodia-server (release, the
# bundled model) at about 70 % of its measured capacity, for SEGMENTS × SEGMENT seconds
# (default 6 × 300 s = 30 minutes) after a warm-up, sampling the server's resident memory
# every 10 s.
#
#   benches/soak.sh [OUT_DIR]
#
# 1. Capacity: closed-loop Classify at 8 clients for CAPACITY_SECONDS (default 20): C req/s,
#    and the server's CPU use at capacity, X cores (on a small machine the generator takes the
#    rest).
# 2. Stream cost: STREAMS real-time StreamClassify streams alone (default round(0.05 × C)) for
#    CAPACITY_SECONDS: the server's CPU use S. The unary rate is then set so that streams plus
#    unary calls ask for LOAD × X: rate = C × (LOAD − S / X). A stream costs several unary calls
#    (a 3 s window a second, its utterances, 50 chunks a second), so the split is measured, not
#    guessed.
# 3. Warm-up (WARMUP_SECONDS, default 120): the same load, with the streams replaced halfway, so
#    every path the soak exercises (a stream's start, its end, its replacement) has run and the
#    allocator holds its working set before anything is measured. Then SEGMENTS segments of
#    open-loop Classify at that rate (Poisson arrivals, latency from the intended start) beside
#    the streams (new streams every segment).
# 4. Report (OUT_DIR/results.md): per segment requests, errors by code, p50/p99; stream errors
#    and interim-latency p99; RSS per segment (median of the 10 s samples, and the last one),
#    growth from the first measured segment's median to the last one's, and the peak; the
#    warm-up's errors and RSS are reported on their own line; the server's CPU use and the
#    machine's busy share per segment show the load actually reached.
# Targets from the issue: 0 errors, RSS growth under 5 % after warm-up, p99 of the last
# segment close to the first. The generators share the machine with the server: on a small
# machine they take cores from it, which is part of the measured capacity.
#
# Environment: SEGMENTS (6), SEGMENT seconds (300), WARMUP_SECONDS (120; 0 skips it),
# CAPACITY_SECONDS (20), LOAD (0.70),
# STREAMS (derived), WORKERS (nproc), PORT (50081), CLIP (a 3.3 s RAVDESS fixture).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prosodia-target}"
OUT="${1:-$CARGO_TARGET_DIR/soak-results}"
SEGMENTS="${SEGMENTS:-6}"
SEGMENT="${SEGMENT:-300}"
WARMUP_SECONDS="${WARMUP_SECONDS:-120}"
CAPACITY_SECONDS="${CAPACITY_SECONDS:-20}"
LOAD="${LOAD:-0.70}"
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
# The server's CPU time (user + system, clock ticks), and the whole machine's busy and total
# ticks: how loaded the soak really is, whatever the capacity estimate said.
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
machine_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 "," t; exit}' /proc/stat; }

# Server cores in use while a command runs (its output is discarded).
cores_during() {
  local t0 w0 t1 w1
  t0=$(server_ticks); w0=$(date +%s%N)
  "$@" >/dev/null 2>&1
  t1=$(server_ticks); w1=$(date +%s%N)
  python3 -c "import os; print(round(($t1 - $t0) / os.sysconf('SC_CLK_TCK') / (($w1 - $w0) / 1e9), 3))"
}

log "measuring capacity (8 clients, ${CAPACITY_SECONDS} s)"
at_capacity=$(cores_during "$load_bin" --addr "$addr" --concurrency 8 --duration "$CAPACITY_SECONDS" \
  --warmup 3 --json "$OUT/capacity.json" "$CLIP")
capacity="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["unary"][0]["throughput_rps"])' "$OUT/capacity.json")"
streams="${STREAMS:-$(python3 -c "print(max(1, round($capacity * 0.05)))")}"
log "capacity $capacity req/s with the server on $at_capacity cores; measuring $streams streams alone"
for_streams=$(cores_during "$load_bin" --addr "$addr" --streams "$streams" --duration "$CAPACITY_SECONDS" \
  --warmup 0 --json "$OUT/streams-cost.json" "$CLIP")
rate="$(python3 -c "print(round(max(0.0, $capacity * ($LOAD - $for_streams / $at_capacity)), 2))")"
log "$streams streams use $for_streams cores; unary at $rate req/s for $LOAD of capacity in all"
echo "{\"capacity_rps\": $capacity, \"cores_at_capacity\": $at_capacity, \"streams\": $streams, \"cores_for_streams\": $for_streams, \"load\": $LOAD, \"unary_rps\": $rate}" >"$OUT/plan.json"

# One segment of mixed load: open-loop unary calls for $2 seconds beside real-time streams
# that are replaced every $3 seconds; results under the name $1.
run_segment() {
  local name=$1 seconds=$2 stream_life=$3 unary part=0
  "$load_bin" --addr "$addr" --rate "$rate" --concurrency 64 --channels 8 --duration "$seconds" \
    --warmup 0 --json "$OUT/unary-$name.json" "$CLIP" >/dev/null 2>"$OUT/unary-$name.log" &
  unary=$!
  while [ $((part * stream_life)) -lt "$seconds" ]; do
    part=$((part + 1))
    "$load_bin" --addr "$addr" --streams "$streams" --duration "$stream_life" --warmup 0 \
      --json "$OUT/streams-$name-$part.json" "$CLIP" >/dev/null 2>"$OUT/streams-$name-$part.log"
  done
  wait "$unary"
}

# Memory samples are timed from the end of the warm-up: warm-up samples have negative times.
echo "seconds,rss_kb,server_ticks,machine_busy_ticks,machine_ticks" >"$OUT/rss.csv"
: >"$OUT/rss-segments.csv"
start=$(( $(date +%s) + WARMUP_SECONDS ))
( while kill -0 "$server" 2>/dev/null; do
    echo "$(( $(date +%s) - start )),$(rss_kb),$(server_ticks),$(machine_ticks)" >>"$OUT/rss.csv"; sleep 10
  done ) &
pids+=("$!")

if [ "$WARMUP_SECONDS" -gt 0 ]; then
  log "warm-up (${WARMUP_SECONDS} s, streams replaced halfway)"
  run_segment warmup "$WARMUP_SECONDS" $(( (WARMUP_SECONDS + 1) / 2 ))
fi

for i in $(seq 1 "$SEGMENTS"); do
  log "segment $i/$SEGMENTS (${SEGMENT} s)"
  run_segment "$i" "$SEGMENT" "$SEGMENT"
  echo "$i,$(rss_kb)" >>"$OUT/rss-segments.csv"
done

python3 - "$OUT" "$capacity" "$rate" "$streams" "$SEGMENT" <<'PY'
import json, sys, os
out, capacity, rate, streams, segment = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows, p99s, total_errors = [], [], 0
seg_rss = [line.strip().split(",") for line in open(os.path.join(out, "rss-segments.csv"))]
# RSS per segment from the 10 s samples: the median is what the server holds in steady state
# (a single sample also catches whatever requests happen to be queued at that instant).
samples = [[int(v) for v in line.strip().split(",")] for line in open(os.path.join(out, "rss.csv")).readlines()[1:]]
tick = os.sysconf("SC_CLK_TCK")
def in_segment(i):
    return [s for s in samples if (i - 1) * segment <= s[0] < i * segment]
def seg_median(i):
    v = sorted(s[1] for s in in_segment(i))
    return v[len(v) // 2] if v else 0
def seg_cpu(i):
    # Server cores in use, and the machine's busy share, between the segment's first and last sample.
    v = in_segment(i)
    if len(v) < 2 or v[-1][0] == v[0][0]:
        return 0.0, 0.0
    a, b = v[0], v[-1]
    return (b[2] - a[2]) / tick / (b[0] - a[0]), (b[3] - a[3]) / max(1, b[4] - a[4])
for i, rss in seg_rss:
    u = json.load(open(os.path.join(out, f"unary-{i}.json")))["unary"][0]
    s = json.load(open(os.path.join(out, f"streams-{i}-1.json")))["streams"][0]
    errors = sum(u["errors"].values()) + sum(s["errors"].values())
    total_errors += errors
    p99s.append(u["latency_ms"]["p99"])
    cores, busy = seg_cpu(int(i))
    rows.append(f"| {i} | {u['requests']} | {u['throughput_rps']:.1f} | {u['latency_ms']['p50']:.1f} | "
                f"{u['latency_ms']['p99']:.1f} | {s['interim_latency_ms']['p99']:.1f} | "
                f"{errors} {dict(u['errors']) or ''}{dict(s['errors']) or ''} | {seg_median(int(i))/1024:.1f} | {int(rss)/1024:.1f} | "
                f"{cores:.2f} | {100 * busy:.0f} % |")
medians = [seg_median(int(i)) for i, _ in seg_rss]
warmup_line = ""
if os.path.exists(os.path.join(out, "unary-warmup.json")):
    wu = json.load(open(os.path.join(out, "unary-warmup.json")))["unary"][0]
    parts = sorted(p for p in os.listdir(out) if p.startswith("streams-warmup-") and p.endswith(".json"))
    ws = [json.load(open(os.path.join(out, p)))["streams"][0] for p in parts]
    werr = sum(wu["errors"].values()) + sum(sum(x["errors"].values()) for x in ws)
    total_errors += werr
    wrss = sorted(s[1] for s in samples if s[0] < 0)
    warmup_line = (f"Warm-up: {wu['requests']} unary requests, p99 {wu['latency_ms']['p99']:.1f} ms, "
                   f"{len(ws)} rounds of streams, {werr} errors; RSS from {wrss[0]/1024:.1f} to {wrss[-1]/1024:.1f} MiB.\n\n"
                   if wrss else "")
peak = max(s[1] for s in samples)
warm, last = medians[0], medians[-1]
growth = 100.0 * (last - warm) / warm
with open(os.path.join(out, "results.md"), "w") as f:
    plan = json.load(open(os.path.join(out, "plan.json")))
    f.write(f"Capacity (8 clients, closed loop): {capacity:.1f} req/s with the server on {plan['cores_at_capacity']:.2f} cores; "
            f"{streams} streams alone: {plan['cores_for_streams']:.2f} cores; target {100 * plan['load']:.0f} % of capacity. "
            f"Load: unary {rate} req/s "
            f"(open loop, Poisson) + {streams} real-time streams; {len(seg_rss)} segments of {segment} s; "
            f"nproc {os.cpu_count()}, load average at the end {os.getloadavg()[0]:.2f}.\n\n")
    f.write(warmup_line)
    f.write("| segment | unary requests | req/s | p50 ms | p99 ms | stream interim p99 ms | errors | RSS MiB median | RSS MiB at end | server CPU cores | machine busy |\n")
    f.write("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n")
    f.write("\n".join(rows) + "\n\n")
    f.write(f"Errors (warm-up included): {total_errors}. Median RSS in segment 1: {warm/1024:.1f} MiB; in the last "
            f"segment: {last/1024:.1f} MiB; growth {growth:+.2f} %; highest sample {peak/1024:.1f} MiB. "
            f"Unary p99 in the first segment {p99s[0]:.1f} ms, in the last {p99s[-1]:.1f} ms "
            f"(ratio {p99s[-1] / p99s[0]:.2f}).\n")
print(open(os.path.join(out, "results.md")).read())
PY
