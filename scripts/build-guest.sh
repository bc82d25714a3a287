#!/usr/bin/env bash
# Build everything the guest runs (module, tests, agents) and its initramfs.
#
#   scripts/build-guest.sh        prints the initramfs path
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

kdir=$(scripts/kernel.sh debug)
ksrc=$(scripts/kernel.sh --src)
make -s -C "$kdir" M="$KEYAGENT_ROOT" LLVM=1 modules >build.log 2>&1 || {
	cat build.log >&2
	die "module build failed"
}
rm -f build.log
make -s -C tests KSFT_DIR="$ksrc/tools/testing/selftests" OUTPUT="$KEYAGENT_ROOT/build/guest/tests" >&2 ||
	die "test build failed"
mkdir -p build/guest/bin
ln -sf /tests/keyagent-test-agent build/guest/bin/keyagent-test-agent
scripts/mkinitramfs.sh build/initramfs.cpio keyagent.ko build/guest
echo "$KEYAGENT_ROOT/build/initramfs.cpio"
