#!/usr/bin/env bash
# Runs the store's libFuzzer targets: writes seed images, replays every input
# in fuzz/regressions/, then fuzzes each target for an equal share of SECONDS. Fails on any
# crash, leak or timeout, leaving the input under BUILD_DIR/fuzz-work/.
#
#   scripts/run-fuzz.sh BUILD_DIR SECONDS
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
targets=(fuzz_store_raw fuzz_store_parse fuzz_image_decode)
per_target=$(( seconds / ${#targets[@]} > 0 ? seconds / ${#targets[@]} : 1 ))
max_len=$(( 1 << 20 ))
# UBSan only prints by default; make undefined behaviour a crash libFuzzer keeps.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# A failing fuzz run leaves its input as crash-*, leak-*, oom-* or timeout-*
# in the artifacts directory.
report_failure() {
  local target=$1 log=$2 hint=$3
  echo "run-fuzz: $target FAILED; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  echo "run-fuzz: $hint" >&2
}

run_target() {
  local target=$1
  local bin=$build/$target work=$build/fuzz-work/$target
  local seeds=$work/seeds corpus=$work/corpus artifacts=$work/artifacts/
  [ -x "$bin" ] || { echo "run-fuzz: $bin not built" >&2; return 1; }
  mkdir -p "$seeds" "$corpus" "$artifacts"

  FROST_FUZZ_WRITE_SEEDS=$seeds "$bin" -runs=0 >"$work/seeds.log" 2>&1 ||
    { report_failure "$target" "$work/seeds.log" "could not write seed images"; return 1; }

  local regressions=()
  for f in "$root"/fuzz/regressions/*; do [ -f "$f" ] && regressions+=("$f"); done
  if [ ${#regressions[@]} -gt 0 ]; then
    "$bin" -timeout=10 -artifact_prefix="$artifacts" "${regressions[@]}" >"$work/replay.log" 2>&1 ||
      { report_failure "$target" "$work/replay.log" "an input in fuzz/regressions/ fails (see the log above)"; return 1; }
    echo "run-fuzz: $target: replayed ${#regressions[@]} regression inputs"
  fi

  # New inputs go to corpus (kept between runs); seeds are read only.
  "$bin" -dict="$root/fuzz/dict" -max_len=$max_len -timeout=10 -max_total_time="$per_target" \
    -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" "$seeds" >"$work/fuzz.log" 2>&1 ||
    { report_failure "$target" "$work/fuzz.log" "inputs: $(ls "$artifacts" | tr '\n' ' ')
run-fuzz: once the store is fixed, copy them into fuzz/regressions/ so they are replayed"; return 1; }

  local runs rate
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
  echo "run-fuzz: $target: ${runs:-?} executions in ${per_target}s, ${rate:-?} exec/s"
}

status=0
for t in "${targets[@]}"; do
  run_target "$t" || status=1
done
exit $status
