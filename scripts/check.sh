#!/usr/bin/env bash
# make check: build what is stale, boot the debug kernel, run every test in
# the guest, and end with "N passed, N failed[, N skipped]".
#
#   scripts/check.sh [TEST...]     (default: all tests)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

start=$(now_s)
passed=0 failed=0 skipped=0

# add_totals FILE: adds the "# Totals:" line of a KTAP output to the counts.
add_totals() {
	local t
	t=$(grep -a '^# Totals: ' "$1" | tail -n 1)
	if [ -z "$t" ]; then
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + $(echo "$t" | sed -E 's/.*Totals: pass:([0-9]+).*/\1/')))
	failed=$((failed + $(echo "$t" | sed -E 's/.* fail:([0-9]+).*/\1/')))
	skipped=$((skipped + $(echo "$t" | sed -E 's/.*skip:([0-9]+).*/\1/')))
}

say "host tests"
mkdir -p "$KEYAGENT_BUILD"
for t in tests/host/*_test.sh; do
	"$t" >"$KEYAGENT_BUILD/host-test.out" 2>&1 || true
	cat "$KEYAGENT_BUILD/host-test.out"
	add_totals "$KEYAGENT_BUILD/host-test.out"
done

scripts/setup.sh

say "keyagentd unit tests (cargo test)"
scripts/build-keyagentd.sh >/dev/null
if (cd keyagentd && cargo test --locked --quiet --target x86_64-unknown-linux-gnu) >"$KEYAGENT_BUILD/cargo-test.out" 2>&1; then :; fi
grep -E '^test result:|FAILED|panicked' "$KEYAGENT_BUILD/cargo-test.out" || true
if grep -q '^test result:' "$KEYAGENT_BUILD/cargo-test.out"; then
	while read -r p f; do
		passed=$((passed + p)) failed=$((failed + f))
	done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$KEYAGENT_BUILD/cargo-test.out")
else
	echo "error: cargo test did not run (see $KEYAGENT_BUILD/cargo-test.out)" >&2
	failed=$((failed + 1))
fi

build_debug_guest

log=$KEYAGENT_BUILD/check.log
job=$(mktemp)
trap 'rm -f "$job"' EXIT
printf '#!/bin/sh\nexec /tests/run_tests.sh %s\n' "$*" >"$job"
say "running the tests in QEMU (TCG, debug kernel); console log: $log"
# The whole guest run: 8 to 10 minutes on a shared 2-core host, 20 with
# both its cores kept busy as well. 50 minutes keeps a fresh CI machine (a
# 13-minute kernel build first) well inside its 90.
set +e
scripts/vm-run.sh --timeout "${KEYAGENT_CHECK_TIMEOUT:-3000}" --log "$log" "$job"
status=$?
set -e

summary=$(grep -a '^# keyagent-summary: ' "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
	read -r p f s < <(echo "$summary" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/')
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
else
	echo "error: the test run did not finish (see $log)" >&2
	failed=$((failed + 1))
fi
# The kernel log scan counts as one more check.
if scripts/scan-log.sh "$log" 2>/dev/null; then
	passed=$((passed + 1))
else
	echo "not ok: kernel log has a splat (details above)"
	failed=$((failed + 1))
fi
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "# make check took $(elapsed "$start")"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
