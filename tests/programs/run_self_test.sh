#!/usr/bin/env bash
# run_self_test.sh PROGRAM NAME
# Runs a self-checking program twice without any freeze in between:
#   1. normally: READY, SIGUSR1, expect "PASS NAME" and exit 0;
#   2. with FROST_SELFTEST_SABOTAGE=1 (the program corrupts one piece of its own
#      state before checking): expect "FAIL NAME: ..." and exit 1.
# Every started process is ended by its PID only.
set -u
prog=$1
name=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/frost-selftest.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

# run_once MODE EXPECT_RC EXPECT_WORD
run_once() {
  local mode=$1 want_rc=$2 want_word=$3 out="$work/$1.out"
  : >"$out"
  if [[ $mode == sabotage ]]; then
    FROST_SELFTEST_SABOTAGE=1 "$prog" >"$out" 2>&1 </dev/null &
  else
    FROST_SELFTEST_SABOTAGE= "$prog" >"$out" 2>&1 </dev/null &
  fi
  pid=$!
  local i
  for ((i = 0; i < 200; i++)); do
    grep -q "^READY $pid\$" "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q "^READY $pid\$" "$out"; then
    echo "[$name/$mode] no 'READY $pid' line; output:"; cat "$out"; return 1
  fi
  kill -USR1 "$pid"
  # Wait (bounded) for it to exit; a zombie child still answers kill -0, so look at its state.
  for ((i = 0; i < 600; i++)); do
    local st
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
    [[ $st == Z || $st == gone ]] && break
    sleep 0.05
  done
  if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone) != Z ]] &&
     kill -0 "$pid" 2>/dev/null; then
    echo "[$name/$mode] did not exit after SIGUSR1; output:"; cat "$out"
    kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=; return 1
  fi
  wait "$pid"; local rc=$?
  pid=
  if [[ $rc -ne $want_rc ]] || ! grep -q "^$want_word $name\\b" "$out"; then
    echo "[$name/$mode] expected '$want_word $name' and exit $want_rc, got exit $rc; output:"
    cat "$out"; return 1
  fi
  echo "[$name/$mode] ok: $(grep -E "^(PASS|FAIL) " "$out")"
}

run_once normal 0 PASS || exit 1
run_once sabotage 1 FAIL || exit 1
exit 0
