#!/bin/sh
# Minimal KTAP helpers for the shell tests (busybox sh), after the kernel's
# tools/testing/selftests/kselftest/ktap_helpers.sh.

KTAP_PASS=0
KTAP_FAIL=0
KTAP_SKIP=0
KTAP_N=0

ktap_header() { echo "TAP version 13"; echo "1..$1"; }

ktap_pass() {
	KTAP_N=$((KTAP_N + 1)); KTAP_PASS=$((KTAP_PASS + 1))
	echo "ok $KTAP_N $1"
}

ktap_fail() {
	KTAP_N=$((KTAP_N + 1)); KTAP_FAIL=$((KTAP_FAIL + 1))
	echo "not ok $KTAP_N $1"
}

ktap_skip() {
	KTAP_N=$((KTAP_N + 1)); KTAP_SKIP=$((KTAP_SKIP + 1))
	echo "ok $KTAP_N $1 # SKIP $2"
}

# ktap_check NAME CMD...: pass if CMD succeeds.
ktap_check() {
	name=$1
	shift
	if "$@"; then ktap_pass "$name"; else ktap_fail "$name"; fi
}

ktap_finish() {
	echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL xfail:0 xpass:0 skip:$KTAP_SKIP error:0"
	[ "$KTAP_FAIL" -eq 0 ] || exit 1
	[ "$KTAP_PASS" -gt 0 ] || [ "$KTAP_SKIP" -eq 0 ] || exit 4
	exit 0
}

# How long a shell test waits for something it expects (WAIT_MS in
# keyagent_util.h): an idle guest needs a second or two, loaded hosts far
# more. Waiting only bounds how long a broken test takes to fail.
WAIT_S=60

# wait_until CMD...: runs CMD every 0.1 s until it succeeds (status 0), or
# until WAIT_S seconds have passed (status 1).
wait_until() {
	_wait_deadline=$(($(date +%s) + WAIT_S))
	until "$@"; do
		[ "$(date +%s)" -lt "$_wait_deadline" ] || return 1
		sleep 0.1
	done
}

# rmmod_retrying: rmmod keyagent, retrying while a construction holds the
# module (EAGAIN: the moment the hook takes a construction, README "Hook").
rmmod_retrying() {
	_wait_deadline=$(($(date +%s) + WAIT_S))
	until _rmmod_out=$(rmmod keyagent 2>&1); do
		case $_rmmod_out in
		*"temporarily unavailable"*) [ "$(date +%s)" -lt "$_wait_deadline" ] || break ;;
		*) break ;;
		esac
		sleep 0.1
	done
	[ -z "$_rmmod_out" ] || echo "# $_rmmod_out"
	! grep -q '^keyagent ' /proc/modules
}

# Load the module if it is not loaded.
ensure_module() {
	grep -q '^keyagent ' /proc/modules || insmod /lib/keyagent/keyagent.ko
}
