#!/usr/bin/env bash
# Build everything the guest runs (module, tests, keyagentd) and its initramfs.
#
#   scripts/build-guest.sh        prints the initramfs path
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

kdir=$(scripts/kernel.sh debug)
ksrc=$(scripts/kernel.sh --src)
out=$KEYAGENT_BUILD
mkdir -p "$out/guest/bin"

# The module builds in the source tree: one build at a time.
exec 8>"$KEYAGENT_ROOT/.module-build.lock"
flock 8
make -s -C "$kdir" M="$KEYAGENT_ROOT" LLVM=1 modules >"$out/module-build.log" 2>&1 || {
	cat "$out/module-build.log" >&2
	die "module build failed"
}
cp keyagent.ko "$out/keyagent.ko"
# The test-only module that makes the kernel's own key requests on demand.
make -s -C tests/kmod KDIR="$kdir" >"$out/test-module-build.log" 2>&1 || {
	cat "$out/test-module-build.log" >&2
	die "test module build failed"
}
mkdir -p "$out/guest/lib/keyagent"
cp tests/kmod/keyagent_test_caller.ko "$out/guest/lib/keyagent/"
flock -u 8

make -s -C tests KSFT_DIR="$ksrc/tools/testing/selftests" OUTPUT="$out/guest/tests" >&2 ||
	die "test build failed"
ln -sf /tests/keyagent-test-agent "$out/guest/bin/keyagent-test-agent"
cp "$(scripts/build-keyagentd.sh)" "$out/guest/bin/keyagentd"
scripts/mkinitramfs.sh "$out/initramfs.cpio" "$out/keyagent.ko" "$out/guest"
echo "$out/initramfs.cpio"
