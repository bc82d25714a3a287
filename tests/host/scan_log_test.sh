#!/usr/bin/env bash
# Host-side test of scripts/scan-log.sh: each kind of kernel report fails the
# scan; a clean log, and test output that merely contains the words, do not.
set -u
cd "$(dirname "$0")/../.."
scan=scripts/scan-log.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 n=0

ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n $1"; }

# expect NAME 0|1 LINE...: the scan of a log with LINEs exits with 0 or 1.
expect() {
	local name=$1 want=$2
	shift 2
	printf '%s\n' '[    0.000000] Linux version 6.12' "$@" '[    9.000000] reboot: Restarting system' >"$tmp/log"
	"$scan" "$tmp/log" >/dev/null 2>&1
	if [ $? -eq "$want" ]; then ok "$name"; else not_ok "$name"; fi
}

echo "TAP version 13"
echo "1..14"
expect clean 0 '[    1.000000] keyagent: loaded' 'ok 1 test'
expect test_output_words 0 'WARNING: this is test output' '# BUG: not a kernel line' 'KASAN in a test name'
expect warn 1 '[    2.000000] WARNING: CPU: 0 PID: 1 at security/keys/request_key.c:250 construct_key+0x1/0x2'
expect bug 1 '[    2.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000'
expect kasan 1 '[    2.000000] BUG: KASAN: slab-use-after-free in key_put+0x1/0x2'
expect lockdep_circular 1 '[    2.000000] WARNING: possible circular locking dependency detected'
expect lockdep_state 1 '[    2.000000] WARNING: inconsistent lock state'
expect rcu 1 '[    2.000000] WARNING: suspicious RCU usage'
expect oops 1 '[    2.000000] Oops: general protection fault, probably for non-canonical address'
expect hung_task 1 '[  130.000000] INFO: task keyctl:55 blocked for more than 61 seconds.'
expect kmemleak_kernel 1 '[    2.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)'
expect kmemleak_report 1 'unreferenced object 0xffff888003c1e000 (size 64):'
expect odebug 1 '[    2.000000] ODEBUG: free active (active state 0) object: 00000000 object type: work_struct'
expect refcount 1 '[    2.000000] refcount_t: underflow; use-after-free.'
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ "$fail" -eq 0 ]
