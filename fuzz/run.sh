#!/usr/bin/env bash
# Fuzz one target for N seconds, seeding its corpus first.
#   fuzz/run.sh [TARGET] [SECONDS] [extra libFuzzer args...]     (defaults: decode 60)
# Targets: decode (containers and raw PCM), configs (feature configuration, model.toml,
# server configuration), requests (the gRPC handlers of an in-process server).
# Seeds: the shared fixtures for decode and requests; the repository's TOML files and the
# docs' ```toml blocks for configs; every target also replays fuzz/regressions/TARGET/.
# cargo-fuzz needs nightly compiler features: uses a nightly toolchain when one is installed,
# else RUSTC_BOOTSTRAP=1 on stable. cargo-fuzz itself: `cargo install cargo-fuzz --locked`
# (a copy under ~/.cache/prosodia-cargo-bin/bin is used when it is not on PATH).
# FUZZ_SANITIZER (default none): the code under test is safe Rust, where AddressSanitizer
# finds nothing the panics and assertions do not, and costs a second build and ~2x speed;
# set FUZZ_SANITIZER=address to use it anyway. Findings land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:-decode}"
seconds="${2:-60}"
shift $(( $# > 2 ? 2 : $# ))
fixtures="${PROSODIA_SHARED:-../../shared}/fixtures"
export PATH="$PATH:$HOME/.cache/prosodia-cargo-bin/bin"

corpus="corpus/$target"
mkdir -p "$corpus"
seed() { cp -n "$1" "$corpus/seed-$(sha1sum "$1" | cut -c1-16)" 2>/dev/null || true; }
case "$target" in
    configs)
        find ../models ../trainer/configs -name '*.toml' | while read -r f; do seed "$f"; done
        tmp="$(mktemp -d)"
        awk -v dir="$tmp" '/^```toml$/ {n++; on=1; next} /^```/ {on=0} on {print > (dir "/block" n)}' ../docs/*.md
        for f in "$tmp"/*; do [ -f "$f" ] && seed "$f"; done
        rm -rf "$tmp"
        ;;
    *)
        if [ -d "$fixtures" ]; then
            # Content-addressed names, so reseeding does not duplicate.
            find "$fixtures" -type f | while read -r f; do seed "$f"; done
        fi
        ;;
esac
if [ -d "regressions/$target" ]; then
    find "regressions/$target" -type f | while read -r f; do seed "$f"; done
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo_cmd=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    cargo_cmd=(cargo fuzz)
fi
# -max_len: fixtures are up to ~350 KB; 64 KB prefixes keep every parser reachable at many
# times the executions per second.
# -rss_limit_mb: an input that needs more than this is itself a finding.
exec "${cargo_cmd[@]}" run --sanitizer "${FUZZ_SANITIZER:-none}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 "$@"
