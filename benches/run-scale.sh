#!/usr/bin/env bash
# Scale-out throughput (issue 7): prosodia-server behind nginx with 1 and with 2 replicas
# (deploy/scale-out.sh), measured with the load generator (prosodia-load, closed loop, the
# same clip and levels), one configuration after the other in one run; and, for scale, one
# replica without nginx.
#
#   benches/run-scale.sh [OUT_DIR]
#
# Writes OUT_DIR/<config>-r<round>.json and OUT_DIR/results.md (default OUT_DIR:
# $CARGO_TARGET_DIR/scale-results). Every process (replicas, nginx, generator) runs on this
# machine: on a small one they share its cores, so 2 replicas cannot do twice the work of 1
# unless there are cores to spare (results.md records nproc and the load average).
#
# Environment (all optional):
#   CLIP       the clip to send (default: a 1.5 s TESS fixture from ../shared)
#   LEVELS     closed-loop concurrency levels (default 8,32)
#   DURATION   measured seconds per level (default 10); WARMUP (default 2)
#   REPLICAS   replica counts behind nginx (default 1,2)
#   WORKERS    --workers of each replica (default: the server's, one per core)
#   ROUNDS     times to repeat the whole series, alternating (default 1)
#   DIRECT=0   skip the 1-replica-without-nginx baseline
#   PORT, BASE_PORT   nginx's port and the first replica's (default 18480, 50181)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prosodia-target}"
OUT="${1:-$CARGO_TARGET_DIR/scale-results}"
CLIP="${CLIP:-$root/../shared/fixtures/tess/OAF_back_angry.wav}"
LEVELS="${LEVELS:-8,32}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REPLICAS="${REPLICAS:-1,2}"
ROUNDS="${ROUNDS:-1}"
PORT="${PORT:-18480}"
BASE_PORT="${BASE_PORT:-50181}"
mkdir -p "$OUT"
rm -f "$OUT"/*.json
log() { echo "run-scale: $*" >&2; }

[ -f "$CLIP" ] || { log "the clip $CLIP is missing (set CLIP)"; exit 1; }

log "building release binaries"
cargo build --release -p prosodia-server -p prosodia-load >&2
# Private copies: a concurrent build in a shared target directory cannot swap them mid-run.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
cp "$CARGO_TARGET_DIR/release/prosodia-server" "$CARGO_TARGET_DIR/release/prosodia-load" "$bin/"
export PROSODIA_SERVER_BIN="$bin/prosodia-server"

workers=()
[ -z "${WORKERS:-}" ] || workers=(--workers "$WORKERS")
# config name, replicas, address the generator calls
run() {
  local name=$1 n=$2 addr=$3 round=$4
  log "round $round: $name (levels $LEVELS, ${DURATION}s each; load average $(cut -d' ' -f1 /proc/loadavg))"
  deploy/scale-out.sh -n "$n" --port "$PORT" --base-port "$BASE_PORT" "${workers[@]}" -- \
    "$bin/prosodia-load" --addr "http://$addr" --label "$name" --levels "$LEVELS" \
    --duration "$DURATION" --warmup "$WARMUP" --json "$OUT/$name-r$round.json" "$CLIP" \
    >/dev/null
  python3 - "$OUT/$name-r$round.json" <<'EOF'
import json, os, sys
p = sys.argv[1]
d = json.load(open(p))
d["loadavg_end"] = os.getloadavg()[0]
json.dump(d, open(p, "w"), indent=1)
EOF
}

IFS=, read -r -a counts <<<"$REPLICAS"
for round in $(seq 1 "$ROUNDS"); do
  if [ "${DIRECT:-1}" != 0 ]; then run direct-1 1 "127.0.0.1:$BASE_PORT" "$round"; fi
  for n in "${counts[@]}"; do run "nginx-$n" "$n" "127.0.0.1:$PORT" "$round"; done
done

python3 - "$OUT" "$CLIP" "${WORKERS:-default (one per core)}" <<'EOF'
import glob, json, os, re, sys
out, clip, workers = sys.argv[1:4]
runs = []
for p in sorted(glob.glob(os.path.join(out, "*-r*.json"))):
    name, rnd = re.match(r"(.*)-r(\d+)\.json$", os.path.basename(p)).groups()
    runs.append((int(rnd), name, json.load(open(p))))
order = {"direct-1": 0}
runs.sort(key=lambda r: (r[0], order.get(r[1], 1), r[1]))
lines = ["# Scale-out throughput", "",
         f"clip `{os.path.basename(clip)}`; {os.cpu_count()} cores; replica workers: {workers}; "
         "replicas, nginx (1 worker process) and the generator on the same machine.", "",
         "| round | config | clients | requests | errors | req/s | p50 ms | p99 ms | load avg at end |",
         "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
best = {}
for rnd, name, d in runs:
    for u in d["unary"]:
        err = sum(u["errors"].values())
        lines.append(f"| {rnd} | {name} | {u['concurrency']} | {u['requests']} | {err} | "
                     f"{u['throughput_rps']:.1f} | {u['latency_ms']['p50']:.1f} | "
                     f"{u['latency_ms']['p99']:.1f} | {d.get('loadavg_end', 0):.1f} |")
        key = (name, u["concurrency"])
        best.setdefault(key, []).append(u["throughput_rps"])
names = sorted({n for n, _ in best}, key=lambda n: (order.get(n, 1), n))
levels = sorted({c for _, c in best})
lines += ["", "Mean req/s over the rounds:", "",
          "| clients | " + " | ".join(names) + " |",
          "| ---: | " + " | ".join("---:" for _ in names) + " |"]
for c in levels:
    cells = []
    for n in names:
        v = best.get((n, c))
        cells.append(f"{sum(v) / len(v):.1f}" if v else "-")
    lines.append(f"| {c} | " + " | ".join(cells) + " |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
EOF
log "results in $OUT"
