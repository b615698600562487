#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer targets and fuzz one of them.
#
#   tests/fuzz/run.sh [-t TARGET] [-n RUNS] [-j JOBS] [-- extra libFuzzer flags]
#
#   -t TARGET  fuzz_kafka (default) or fuzz_batch
#   -n RUNS    executions (-runs=N), default 1000000
#   -j JOBS    parallel fuzzing processes (-jobs/-workers), default 1
#   env BUILD_DIR  build directory (default /tmp/build-fuzz)
#
# Builds with clang (CC=clang meson setup BUILD_DIR -Dfuzz=true), copies the
# committed seed corpus tests/fuzz/corpus/<name>/ to tests/fuzz/corpus-run/
# TARGET/ (git-ignored, re-made on every run: the committed corpus is never
# written to), runs the target with -max_len=65536 and prints libFuzzer's
# summary.  Crash, leak and timeout inputs land in tests/fuzz/artifacts/
# TARGET/ (crash-*, leak-*, timeout-*: git-ignored).  The exit status is
# libFuzzer's: 0 when the run was clean.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=fuzz_kafka
runs=1000000
jobs=1
while getopts "t:n:j:h" opt; do
    case $opt in
    t) target=$OPTARG ;;
    n) runs=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

case $target in
fuzz_kafka) corpus_name=kafka ;;
fuzz_batch) corpus_name=batch ;;
*) echo "run.sh: unknown target '$target'" >&2; exit 2 ;;
esac

build=${BUILD_DIR:-/tmp/build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$root" -Dfuzz=true >/dev/null
fi
if ! ninja -C "$build" -t targets all 2>/dev/null | grep -q "^tests/fuzz/$target:"; then
    echo "run.sh: $build has no tests/fuzz/$target: not a 'CC=clang meson setup -Dfuzz=true' build" >&2
    exit 2
fi
ninja -C "$build" "tests/fuzz/$target" >/dev/null

work=$here/corpus-run/$target
artifacts=$here/artifacts/$target
rm -rf "$work"
mkdir -p "$work" "$artifacts"
if [ -d "$here/corpus/$corpus_name" ]; then cp -r "$here/corpus/$corpus_name/." "$work/"; fi

# fuzz_kafka's data dirs go under one dir per run (on tmpfs when there is
# one), removed even when the fuzzer is interrupted or crashes.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
FUZZ_DATA_DIR=$(mktemp -d "$shm/souk-fuzz-run.XXXXXX")
export FUZZ_DATA_DIR
trap 'rm -rf "$FUZZ_DATA_DIR"' EXIT

# UBSan findings are fatal (they are recoverable by default); the broker's
# own log lines go to /dev/null (-close_fd_mask=2) while libFuzzer's and the
# sanitizers' reports still reach the terminal.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

args=(-runs="$runs" -max_len=65536 -close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$artifacts/")
if [ "$jobs" -gt 1 ]; then args+=(-jobs="$jobs" -workers="$jobs"); fi
echo "+ $build/tests/fuzz/$target ${args[*]} $* $work" >&2
set +e
"$build/tests/fuzz/$target" "${args[@]}" "$@" "$work"
rc=$?
set -e
echo "run.sh: $target exited with $rc; corpus now $(ls "$work" | wc -l) files in $work" >&2
exit $rc
