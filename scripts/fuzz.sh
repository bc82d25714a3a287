#!/usr/bin/env bash
# make fuzz: build, boot the debug kernel and run the fuzzer
# (tests/keyagent_fuzz_test.c) in the guest for a while.
#
#   scripts/fuzz.sh [--seed N] [--duration SECONDS] [--workers N] [--agents N]
#                   [--no-reload] [--trace]
#
# --seed replays a run: the same seed gives every process the same sequence
# of operations. --duration defaults to 1800 (30 minutes). --trace saves every
# operation of every process and prints the traces' tail at the end. The run
# fails on any kernel splat (the VM runner scans the console log), on a
# request blocked past request_timeout + 60 s, on keys left under
# construction, on pending counts left on agent keys, or when the module
# does not unload at the end. The console log is $KEYAGENT_BUILD/fuzz.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

seed= duration=1800 args=() trace=
while [ $# -gt 0 ]; do
	case $1 in
	--seed) seed=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--workers) args+=(-w "$2"); shift 2 ;;
	--agents) args+=(-a "$2"); shift 2 ;;
	--no-reload) args+=(-r); shift ;;
	--trace) trace=1; shift ;;
	*) die "usage: fuzz.sh [--seed N] [--duration SECONDS] [--workers N] [--agents N] [--no-reload] [--trace]" ;;
	esac
done
case $duration in ''|*[!0-9]*) die "--duration takes a number of seconds" ;; esac
case $seed in *[!0-9]*) die "--seed takes a number" ;; esac
[ -z "$seed" ] || args+=(-s "$seed")
args+=(-d "$duration")

start=$(now_s)
scripts/setup.sh
build_debug_guest

log=$KEYAGENT_BUILD/fuzz.log
job=$(mktemp)
trap 'rm -f "$job"' EXIT
{
	echo '#!/bin/sh'
	echo 'insmod /lib/keyagent/keyagent.ko || exit 1'
	if [ -n "$trace" ]; then
		echo 'mkdir -p /tmp/trace'
		echo "/tests/keyagent_fuzz_test ${args[*]} -T /tmp/trace"
		echo 'status=$?'
		echo 'for f in /tmp/trace/*.log; do echo "== $f"; tail -n 20 "$f"; done'
		echo 'exit $status'
	else
		echo "exec /tests/keyagent_fuzz_test ${args[*]}"
	fi
} >"$job"
# The guest boots in ~15 s; the final checks, the unload and the kmemleak
# scan take a few minutes at most after a long run.
timeout=$((duration + 600))
say "fuzzing for ${duration}s in QEMU (TCG, debug kernel); console log: $log"
set +e
scripts/vm-run.sh --timeout "$timeout" --log "$log" "$job"
status=$?
set -e

seed_line=$(grep -a '^# seed ' "$log" | head -n 1 || true)
stats=$(grep -a '^# after ' "$log" | tail -n 1 | sed 's/^# after [0-9]* s: //' || true)
totals=$(grep -a '^# Totals: ' "$log" | tail -n 1 || true)
used=${seed_line#\# seed }
used=${used%%,*}
echo "# make fuzz took $(elapsed "$start")"
if [ "$status" -eq 0 ]; then
	echo "fuzz: PASS, seed ${used:-?}, ${duration}s: ${stats:-no statistics}"
else
	echo "fuzz: FAIL (exit $status), seed ${used:-?}, ${duration}s: ${stats:-no statistics}"
	[ -z "$totals" ] || echo "  $totals"
	echo "  replay: make fuzz SEED=${used:-?} DURATION=$duration   (console log: $log)"
fi
exit "$status"
