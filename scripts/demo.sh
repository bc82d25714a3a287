#!/usr/bin/env bash
# make demo: boot the dev kernel in QEMU, load the module, start an agent,
# show a key constructed by it, then one constructed by /sbin/request-key.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

start=$(now_s)
scripts/setup.sh
build_debug_guest
say "booting the debug kernel under QEMU (TCG); console log: $KEYAGENT_BUILD/demo.log"
scripts/vm-run.sh --timeout 600 --log "$KEYAGENT_BUILD/demo.log" scripts/guest/demo.sh
say "demo done in $(elapsed "$start")"
