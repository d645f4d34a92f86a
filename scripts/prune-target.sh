#!/usr/bin/env bash
# Keeps the shared build directory from filling the disk. CI builds every clone into one
# CARGO_TARGET_DIR so rebuilds stay incremental, but cargo keys a workspace crate's artifacts
# by the clone's path, so each new clone location adds a full set of test binaries, and
# nothing ever removes the old ones. Run before a build: when the directory is over its
# budget, or the disk is short of free space, it drops the incremental caches first (cheap to
# rebuild) and, if that is not enough, the whole build directory.
#
#   PROSODIA_TARGET_BUDGET_GB  largest the build directory may be (default 40)
#   PROSODIA_MIN_FREE_GB       free space the build needs on its disk (default 25)
set -euo pipefail

target="${CARGO_TARGET_DIR:?prune-target.sh needs CARGO_TARGET_DIR}"
budget_gb="${PROSODIA_TARGET_BUDGET_GB:-40}"
min_free_gb="${PROSODIA_MIN_FREE_GB:-25}"

[ -d "$target" ] || exit 0

size_gb() { du -s --block-size=1G "$target" | cut -f1; }
free_gb() { df --output=avail --block-size=1G "$target" | tail -n 1 | tr -d ' '; }
over() { [ "$(size_gb)" -gt "$budget_gb" ] || [ "$(free_gb)" -lt "$min_free_gb" ]; }

echo "prune-target: $target holds $(size_gb) GiB; $(free_gb) GiB free on its disk" \
  "(budget $budget_gb GiB, $min_free_gb GiB free needed)"
over || exit 0

rm -rf "$target"/*/incremental
echo "prune-target: removed the incremental caches: now $(size_gb) GiB, $(free_gb) GiB free"
over || exit 0

# Stale artifacts cannot be told from live ones without cargo's help, so the rest goes.
rm -rf "$target"/debug "$target"/release "$target"/tmp
echo "prune-target: removed the build directory: now $(size_gb) GiB, $(free_gb) GiB free"
if [ "$(free_gb)" -lt "$min_free_gb" ]; then
  echo "prune-target: only $(free_gb) GiB free on the disk even with no build cached;" \
    "the build may run out of space" >&2
fi
