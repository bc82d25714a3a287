#!/usr/bin/env bash
# Boot the dev kernel in QEMU, run a script in the guest, return its status.
#
#   scripts/vm-run.sh [options] JOB
#
#   --kernel BZIMAGE     kernel to boot (default: the cached debug kernel)
#   --initramfs CPIO     base initramfs (default: $KEYAGENT_BUILD/initramfs.cpio)
#   --timeout SECONDS    hard limit for the whole run (default 1800)
#   --log FILE           where the guest console goes (default $KEYAGENT_BUILD/vm.log)
#   --verbose            show kernel messages too, not only the job's output
#   --kvm                use KVM instead of TCG (nested KVM hangs on some hosts)
#
# JOB, a shell script, runs as /job in the guest. Its output appears here;
# the whole console, kernel messages included, is saved to the log. After the
# run the log is scanned for kernel splats (BUG, WARNING, KASAN, lockdep,
# kmemleak, Oops, hung tasks); any of them fails the run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel= initramfs=$KEYAGENT_BUILD/initramfs.cpio timeout=1800
log=$KEYAGENT_BUILD/vm.log verbose= accel=(-accel tcg -cpu max)
while [ $# -gt 1 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--initramfs) initramfs=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--verbose) verbose=1; shift ;;
	--kvm) accel=(-enable-kvm -cpu host); shift ;;
	*) die "unknown option $1" ;;
	esac
done
[ $# -eq 1 ] || die "usage: vm-run.sh [options] JOB"
job=$1
[ -n "$kernel" ] || kernel=$("$KEYAGENT_ROOT/scripts/kernel.sh" --dir debug)/arch/x86/boot/bzImage
[ -f "$kernel" ] || die "no kernel at $kernel; run scripts/kernel.sh"
[ -f "$initramfs" ] || die "no initramfs at $initramfs; run make initramfs"

# The job goes into a second cpio archive, appended to the base one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"
cp "$job" "$work/root/job"
chmod +x "$work/root/job"
(cd "$work/root" && echo job | cpio --quiet -o -H newc) >"$work/job.cpio"
cat "$initramfs" "$work/job.cpio" >"$work/initramfs.cpio"

mkdir -p "$(dirname "$log")"
: >"$log"
# Kernel lines carry a "[    1.234567] " timestamp; the job's output does not.
show() {
	if [ -n "$verbose" ]; then
		cat
	else
		grep --line-buffered -a -v -E 'externally provided fw_cfg|^\[ *[0-9]+\.[0-9]+\]|^KEYAGENT-EXIT|^unreferenced object|^  (comm|hex dump|backtrace)|^    |^$' || true
	fi
}
set +e
timeout --foreground -k 10 "$timeout" \
	qemu-system-x86_64 "${accel[@]}" -smp 2 -m 2048 -nographic -no-reboot -net none \
	-fw_cfg name=etc/sercon-port,string=0 \
	-kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 loglevel=7 rdinit=/init" \
	</dev/null 2>&1 | tr -d '\r' | tee "$log" | show
qemu_status=${PIPESTATUS[0]}
set -e

exit_line=$(grep -a '^KEYAGENT-EXIT ' "$log" | tail -n 1 || true)
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
	echo "error: the guest did not finish within ${timeout}s; console log: $log" >&2
	job_status=124
elif [ -z "$exit_line" ]; then
	echo "error: the guest stopped without reporting the job's status (QEMU exit $qemu_status); console log: $log" >&2
	job_status=125
else
	job_status=${exit_line#KEYAGENT-EXIT }
fi

if ! "$KEYAGENT_ROOT/scripts/scan-log.sh" "$log"; then
	[ "$job_status" -ne 0 ] || job_status=126
fi
exit "$job_status"
