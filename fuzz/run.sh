#!/usr/bin/env bash
# Fuzz one target for N seconds, seeding its corpus from the shared fixtures.
#   fuzz/run.sh [TARGET] [SECONDS] [extra libFuzzer args...]     (defaults: decode 60)
# cargo-fuzz needs nightly compiler features: uses a nightly toolchain when one is installed,
# else RUSTC_BOOTSTRAP=1 on stable. Findings land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:-decode}"
seconds="${2:-60}"
shift $(( $# > 2 ? 2 : $# ))
fixtures="${PROSODIA_SHARED:-../../shared}/fixtures"

corpus="corpus/$target"
mkdir -p "$corpus"
if [ -d "$fixtures" ]; then
    # Content-addressed names, so reseeding does not duplicate.
    find "$fixtures" -type f | while read -r f; do
        cp -n "$f" "$corpus/seed-$(sha1sum "$f" | cut -c1-16)" 2>/dev/null || true
    done
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo_cmd=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    cargo_cmd=(cargo fuzz)
fi
# -max_len: fixtures are up to ~350 KB; 64 KB prefixes keep every parser reachable at many
# times the executions per second.
# -rss_limit_mb: a decode that needs more than this for a small input is itself a finding.
exec "${cargo_cmd[@]}" run "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 "$@"
