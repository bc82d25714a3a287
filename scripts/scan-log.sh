#!/usr/bin/env bash
# Scan a guest console log for kernel splats. Prints each one with context and
# exits 1 if there is any.
#
#   scripts/scan-log.sh LOG
set -euo pipefail
log=$1

# Kernel messages start with a timestamp; only they are scanned, so that test
# output cannot trigger (or hide) a report. kmemleak's report is printed by the
# guest's init, one "unreferenced object" block per leak.
kernel='^\[ *[0-9]+\.[0-9]+\] '
patterns=(
	'BUG:' 'WARNING:' 'KASAN' 'UBSAN' 'Oops' 'Kernel panic'
	'general protection fault' 'kernel BUG'
	'possible circular locking' 'possible recursive locking'
	'inconsistent lock state' 'suspicious RCU usage' 'lock held when returning'
	'INFO: task .* blocked for more than' 'detected stalls' 'soft lockup' 'hard LOCKUP'
	'kmemleak: .*suspected memory leak' 'refcount_t: ' 'list_add corruption'
	'list_del corruption' 'ODEBUG:'
)
re=$(IFS='|'; echo "${patterns[*]}")
hits=$(grep -naE "$kernel.*($re)" "$log" || true)
leaks=$(grep -nac '^unreferenced object' "$log" || true)
if [ -z "$hits" ] && [ "$leaks" = 0 ]; then
	exit 0
fi
echo "error: kernel splat in the guest log ($log):" >&2
if [ -n "$hits" ]; then
	first=$(echo "$hits" | head -n1 | cut -d: -f1)
	echo "$hits" | head -n 20 | sed 's/^/  /' >&2
	echo "  first report in context:" >&2
	sed -n "${first},$((first + 25))p" "$log" | sed 's/^/    /' >&2
fi
if [ "$leaks" != 0 ]; then
	echo "  kmemleak: $leaks unreferenced object(s):" >&2
	grep -na -A12 '^unreferenced object' "$log" | head -n 40 | sed 's/^/    /' >&2
fi
exit 1
