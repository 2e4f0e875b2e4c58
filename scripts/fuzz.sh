#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds a fuzz target from tests/fuzz with clang, libFuzzer, AddressSanitizer and UBSan in
# build-fuzz/, then fuzzes it for SECONDS (default 60) starting from a copy of its seed corpus, so
# the committed corpus is never rewritten. Crash inputs land in build-fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh manifest_parser_fuzz 60
#   scripts/fuzz.sh control_message_fuzz 300
#
# Extra libFuzzer flags can be given in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2 -workers=2").
set -euo pipefail

usage() {
  echo "usage: $0 {manifest_parser_fuzz|control_message_fuzz} [SECONDS]" >&2
  exit 2
}
[[ $# -ge 1 && $# -le 2 ]] || usage
target="$1"
seconds="${2:-60}"
case "$target" in
  manifest_parser_fuzz | control_message_fuzz) ;;
  *) usage ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || usage

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
jobs="${JOBS:-2}"

# libFuzzer ships with clang's runtime (Debian: libclang-rt-14-dev).
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSOCKMESH_FUZZ=ON
fi
ninja -C "$build" -j "$jobs" "$target"

work="$build/work/$target"
artifacts="$build/artifacts/$target"
rm -rf "$work"
mkdir -p "$work" "$artifacts"
cp "$root/tests/fuzz/corpus/$target/"* "$work/"

# -rss_limit_mb stays well below the machine's memory; -timeout flags inputs slower than 10 s.
# shellcheck disable=SC2086
"$build/tests/fuzz/$target" "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 ${FUZZ_FLAGS:-}
