#!/usr/bin/env bash
# make bench: keyagent against /sbin/request-key, measured side by side in one
# boot of the release (non-debug) kernel under QEMU, and a report.
#
#   scripts/bench.sh [options]
#
#   --quick             small sizes, a smoke run (minutes); results go to
#                       $KEYAGENT_BUILD/bench/results-quick unless --results
#   --samples N         latency samples per path (default 2000)
#   --rk-samples N      of which through /sbin/request-key (default 2000)
#   --memory N          constructions for the memory check (default 100000)
#   --no-profile        skip the function_graph traces
#   --kdir DIR          a built Rust-enabled 6.12 tree to use instead of
#                       `scripts/kernel.sh release`
#   --results DIR       where the report goes (default bench/results)
#   --timeout SECONDS   limit for the guest run (default 3600)
#
# Writes DIR/latest.md (tables, ratios, targets), DIR/latest.csv and
# DIR/latency.png; the console log is $KEYAGENT_BUILD/bench/bench.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"

samples=2000 rk_samples=2000 pin_samples=1000 memory=100000 quota=8000 tput_ms=2000 rk_tput_ms=6000 tput_reps=5
ovh_rounds=20 profile=1 kdir= results= timeout=3600 quick=
while [ $# -gt 0 ]; do
	case $1 in
	--quick)
		quick=1 samples=200 rk_samples=30 pin_samples=100 memory=5000 quota=6000 tput_ms=1000
		rk_tput_ms=3000 tput_reps=2 ovh_rounds=2
		shift ;;
	--samples) samples=$2; shift 2 ;;
	--rk-samples) rk_samples=$2; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--no-profile) profile=0; shift ;;
	--kdir) kdir=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	*) die "unknown option $1 (see the head of $0)" ;;
	esac
done
out=$KEYAGENT_BUILD/bench
if [ -z "$results" ]; then
	if [ -n "$quick" ]; then results=$out/results-quick; else results=$KEYAGENT_ROOT/bench/results; fi
fi
start=$(now_s)

scripts/setup.sh
# The plot needs matplotlib, from Debian like the rest of the toolchain; so the
# report runs with Debian's interpreter (not whatever python3 is first on PATH).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -c 'import matplotlib' 2>/dev/null; then
	[ "$(id -u)" = 0 ] || die "python3-matplotlib is missing; run as root or: sudo apt-get install python3-matplotlib"
	say "installing python3-matplotlib (for bench/results/latency.png)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || die "apt-get update failed"
	apt-get install -y -q --no-install-recommends python3-matplotlib >/dev/null ||
		die "apt-get install python3-matplotlib failed"
fi

if [ -z "$kdir" ]; then
	kdir=$(scripts/kernel.sh release)
fi
bzimage=$kdir/arch/x86/boot/bzImage
[ -f "$bzimage" ] || die "no kernel image at $bzimage"
grep -q '^CONFIG_SLUB_DEBUG=y' "$kdir/.config" ||
	say "warning: $kdir has no CONFIG_SLUB_DEBUG: no /proc/slabinfo, slab counts missing"

# The module, built for that kernel in a private copy of the sources (the
# checkout's own build is for the debug kernel).
say "building the module for $(basename "$kdir")"
mkdir -p "$out"
rm -rf "$out/module-src"
mkdir -p "$out/module-src"
cp -a Kbuild Makefile rust include "$out/module-src/"
find "$out/module-src" \( -name '*.o' -o -name '.*.cmd' -o -name '*.rmeta' \
	-o -name bindings_generated.rs \) -delete
# Which module this is: the commit, and whether the sources differ from it.
source_id="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- Kbuild rust include 2>/dev/null || source_id="$source_id with uncommitted changes"
source_id="$source_id; sha256 of Kbuild, rust/, include/: $(cd "$out/module-src" &&
	find Kbuild rust include -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)"
make -s -C "$kdir" M="$out/module-src" LLVM=1 modules >"$out/module-build.log" 2>&1 || {
	cat "$out/module-build.log" >&2
	die "module build failed"
}

# The guest's extra files: the benchmark programs, keyagentd, request-key lines.
say "building the benchmark programs and the guest image"
rm -rf "$out/guest"
mkdir -p "$out/guest/bench" "$out/guest/bin" "$out/guest/etc/request-key.d"
make -s -C bench OUTPUT="$out/guest/bench" >&2 || die "benchmark build failed"
install -m 0755 bench/guest-job.sh "$out/guest/bench/job.sh"
install -m 0644 bench/request-key.conf "$out/guest/etc/request-key.d/keyagent-bench.conf"
keyagentd_state=built
if [ -x scripts/build-keyagentd.sh ] && kad=$(scripts/build-keyagentd.sh 2>"$out/keyagentd-build.log"); then
	cp "$kad" "$out/guest/bin/keyagentd"
else
	keyagentd_state="pending (scripts/build-keyagentd.sh failed or is missing, see $out/keyagentd-build.log)"
	say "warning: keyagentd: $keyagentd_state; its rows will say pending"
fi
scripts/mkinitramfs.sh "$out/initramfs.cpio" "$out/module-src/keyagent.ko" "$out/guest"

job=$out/job.sh
cat >"$job" <<EOF
#!/bin/sh
export BENCH_SAMPLES=$samples BENCH_RK_SAMPLES=$rk_samples BENCH_PIN_SAMPLES=$pin_samples
export BENCH_MEMORY=$memory BENCH_QUOTA=$quota
export BENCH_TPUT_MS=$tput_ms BENCH_RK_TPUT_MS=$rk_tput_ms BENCH_TPUT_REPS=$tput_reps
export BENCH_OVH_ROUNDS=$ovh_rounds
export BENCH_PROFILE=$profile
exec /bench/job.sh
EOF

log=$out/bench.log
load_before=$(uptime)
say "host load before: $load_before"
say "running the benchmarks in QEMU (TCG, release kernel, one boot); console log: $log"
# The host is shared: sample its load and the QEMU processes on it (this
# run's included) every 5 s.
hostload=$out/hostload.txt
: >"$hostload"
(
	while :; do
		echo "$(date +%s) $(cut -d' ' -f1-3 /proc/loadavg) $(pgrep -c qemu-system || true)"
		sleep 5
	done >>"$hostload"
) &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
set +e
# Raw samples stay in the log; the terminal gets the summaries.
scripts/vm-run.sh --kernel "$bzimage" --initramfs "$out/initramfs.cpio" --log "$log" \
	--timeout "$timeout" "$job" | grep --line-buffered -v '^BENCH-'
status=${PIPESTATUS[0]}
set -e
kill "$sampler" 2>/dev/null || true
load_after=$(uptime)
say "host load after: $load_after"
[ "$status" -eq 0 ] || die "the guest run failed (status $status); console log: $log"

mkdir -p "$results"
"$py" bench/report.py --log "$log" --out "$results" \
	--load-before "$load_before" --load-after "$load_after" --hostload "$hostload" \
	--host "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
	--qemu "$(qemu-system-x86_64 --version | head -n1)" \
	--kernel "$(basename "$kdir")" --keyagentd "$keyagentd_state" --source "$source_id"
say "report: $results/latest.md, $results/latest.csv, $results/latency.png"
say "bench done in $(elapsed "$start")"
