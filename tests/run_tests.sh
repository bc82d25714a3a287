#!/bin/sh
# Runs every keyagent selftest in the guest, in KTAP, and ends with
# "# keyagent-summary: P passed, F failed, S skipped" counting test cases.
#
#   run_tests.sh [-t SECONDS] [NAME...]     (default: all tests)
cd "$(dirname "$0")" || exit 1
# Per program, above every test case's own limit from the harness. The
# longest programs (unload, failslab, concurrency) take one to two minutes
# on a lightly loaded host and up to 4.5 minutes with the host's cores busy.
limit=1800
if [ "$1" = -t ]; then limit=$2; shift 2; fi
if [ $# -gt 0 ]; then tests="$*"; else tests=$(ls *_test keyagent_*.sh keyagentd_*.sh 2>/dev/null); fi

passed=0 failed=0 skipped=0 n=0
set -- $tests
echo "TAP version 13"
echo "1..$#"
for t in "$@"; do
	n=$((n + 1))
	grep -q '^keyagent ' /proc/modules || insmod /lib/keyagent/keyagent.ko
	echo "# selftests: keyagent: $t"
	start=$(date +%s)
	timeout "$limit" "./$t" >/tmp/test.out 2>&1
	rc=$?
	sed 's/^/# /' /tmp/test.out
	totals=$(grep -a '^# Totals: ' /tmp/test.out | tail -n 1)
	if [ -n "$totals" ]; then
		p=$(echo "$totals" | sed -n 's/.*Totals: pass:\([0-9]*\).*/\1/p')
		f=$(echo "$totals" | sed -n 's/.* fail:\([0-9]*\).*/\1/p')
		s=$(echo "$totals" | sed -n 's/.*skip:\([0-9]*\).*/\1/p')
		e=$(echo "$totals" | sed -n 's/.*error:\([0-9]*\).*/\1/p')
		f=$((f + e))
	else
		p=0 f=0 s=0
	fi
	# A program that dies or times out without reporting counts as a failure.
	case $rc in
	0|4) ;;
	*) [ "$f" -gt 0 ] || f=1 ;;
	esac
	[ $rc -ne 124 ] || echo "# $t: timed out after ${limit}s"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	secs=$(( $(date +%s) - start ))
	if [ "$f" -gt 0 ]; then
		echo "not ok $n selftests: keyagent: $t # exit=$rc, ${secs}s"
	elif [ $rc -eq 4 ]; then
		echo "ok $n selftests: keyagent: $t # SKIP"
	else
		echo "ok $n selftests: keyagent: $t # ${secs}s"
	fi
done
echo "# keyagent-summary: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
