#!/usr/bin/env bash
# make stress: build, boot the debug kernel and run the stress test
# (tests/keyagent_stress_test.c) in the guest: 100,000 constructions through
# 4 agents killed and restarted at random, with the module unloaded and
# reloaded every few seconds.
#
#   scripts/stress.sh [--duration SECONDS] [--constructions N] [--seed N]
#
# With --duration the run lasts that long instead, however many constructions
# it makes. It fails on any kernel splat or kmemleak report (the VM runner
# scans the console log), on a request that fails with an undocumented error
# or blocks for 5 minutes, when the module does not unload at
# the end, or when /proc/key-users does not return to its baseline. The
# console log is $KEYAGENT_BUILD/stress.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

duration=0 constructions=100000 seed=
while [ $# -gt 0 ]; do
	case $1 in
	--duration) duration=$2; constructions=0; shift 2 ;;
	--constructions) constructions=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	*) die "usage: stress.sh [--duration SECONDS] [--constructions N] [--seed N]" ;;
	esac
done
case $duration$constructions in *[!0-9]*) die "--duration and --constructions take numbers" ;; esac
[ "$duration" -gt 0 ] || [ "$constructions" -gt 0 ] || die "nothing to do"
args=(-n "$constructions" -d "$duration")
[ -z "$seed" ] || args+=(-s "$seed")

start=$(now_s)
scripts/setup.sh
build_debug_guest

log=$KEYAGENT_BUILD/stress.log
job=$(mktemp)
trap 'rm -f "$job"' EXIT
printf '#!/bin/sh\ninsmod /lib/keyagent/keyagent.ko || exit 1\nexec /tests/keyagent_stress_test %s\n' \
	"${args[*]}" >"$job"
# About 150 constructions a second in the debug guest; generous margins.
if [ "$duration" -gt 0 ]; then
	timeout=$((duration + 900))
	say "stressing for ${duration}s in QEMU (TCG, debug kernel); console log: $log"
else
	timeout=$((constructions / 30 + 900))
	say "$constructions constructions in QEMU (TCG, debug kernel); console log: $log"
fi
set +e
scripts/vm-run.sh --timeout "$timeout" --log "$log" "$job"
status=$?
set -e

result=$(grep -aE '^ok 1 |^not ok 1 ' "$log" | tail -n 1 | sed -E 's/^(not )?ok 1 //' || true)
totals=$(grep -a '^# Totals: ' "$log" | tail -n 1 || true)
echo "# make stress took $(elapsed "$start")"
if [ "$status" -eq 0 ]; then
	echo "stress: PASS: ${result:-?}"
else
	echo "stress: FAIL (exit $status): ${result:-the run did not finish}"
	[ -z "$totals" ] || echo "  $totals"
	echo "  console log: $log"
fi
exit "$status"
