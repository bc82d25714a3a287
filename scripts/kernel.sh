#!/usr/bin/env bash
# Build (or find in the cache) the dev kernel.
#
#   scripts/kernel.sh [debug|release]          build if needed, print the build dir
#   scripts/kernel.sh --dir [debug|release]    print the build dir, build nothing
#   scripts/kernel.sh --src                    print the source dir (unpacked if needed)
#
# The source is Debian's linux-source-6.12, unpacked once under
# $KEYAGENT_CACHE/src. Each kernel is tinyconfig plus committed fragments, built
# with LLVM=1 in $KEYAGENT_CACHE/kernel/<variant>-<key>, where the key hashes
# the source version, the fragments and the toolchain versions: an unchanged
# key never rebuilds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

print_only= src_only=
if [ "${1:-}" = --src ]; then
	src_only=1
	shift
elif [ "${1:-}" = --dir ]; then
	print_only=1
	shift
fi
variant=${1:-debug}
case $variant in
debug) fragments=(scripts/kconfig/base.config tests/config scripts/kconfig/debug.config) ;;
release) fragments=(scripts/kconfig/base.config tests/config) ;;
*) die "unknown kernel variant '$variant' (debug or release)" ;;
esac

tarball=/usr/src/linux-source-6.12.tar.xz
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) ||
	die "linux-source-6.12 is not installed; run scripts/setup.sh"
key=$(
	cd "$KEYAGENT_ROOT"
	{
		echo "$variant $srcver"
		cat "${fragments[@]}"
		rustc --version
		bindgen --version
		clang --version | head -n1
		ld.lld --version
	} | sha256sum | cut -c1-12
)
out=$KEYAGENT_CACHE/kernel/$variant-$key
if [ -z "$print_only" ]; then
	# One build at a time per cache; a second caller waits, then finds it built.
	mkdir -p "$KEYAGENT_CACHE"
	exec 9>"$KEYAGENT_CACHE/.lock"
	flock 9
fi
if [ -n "$print_only" ] || { [ -z "$src_only" ] && [ -f "$out/.keyagent-built" ]; }; then
	echo "$out"
	exit 0
fi

mkdir -p "$KEYAGENT_CACHE/src" "$KEYAGENT_CACHE/kernel"
src=$KEYAGENT_CACHE/src/linux-source-$srcver
if [ ! -f "$src/.keyagent-unpacked" ]; then
	say "unpacking $tarball (linux-source-6.12 $srcver)" >&2
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -xf "$tarball" -C "$src.tmp" --strip-components=1 ||
		die "cannot unpack $tarball"
	touch "$src.tmp/.keyagent-unpacked"
	mv "$src.tmp" "$src"
fi
if [ -n "$src_only" ]; then
	echo "$src"
	exit 0
fi

log=$out.log
rm -rf "$out"
mkdir -p "$out"
: >"$log"
start=$(now_s)
say "building the $variant kernel in $out (log: $log)" >&2

kmake() { make -C "$src" O="$out" LLVM=1 "$@"; }
run_logged "$log" "make tinyconfig" kmake tinyconfig
frags=()
for f in "${fragments[@]}"; do frags+=("$KEYAGENT_ROOT/$f"); done
run_logged "$log" "merge_config.sh" \
	env -C "$out" "$src/scripts/kconfig/merge_config.sh" -m .config "${frags[@]}"
run_logged "$log" "make olddefconfig" kmake olddefconfig

# Every option the fragments ask for must have survived olddefconfig.
lost=$(cat "${frags[@]}" | sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=\(.*\)/\1=\2/p' | while read -r want; do
	grep -qx "$want" "$out/.config" || echo "$want"
done)
[ -z "$lost" ] || die "kernel config dropped: $(echo $lost) (see $out/.config)"
run_logged "$log" "make rustavailable" kmake rustavailable

# Compile steps of the last build of this variant, for a progress figure.
steps_file=$KEYAGENT_CACHE/kernel/$variant.steps
total=$(cat "$steps_file" 2>/dev/null || echo 0)
kmake -j"$(nproc)" >>"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 15
	done_steps=$(grep -cE '^  (CC|RUSTC|AS|LD|AR)' "$log" || true)
	if [ "$total" -gt 0 ]; then
		pct=$((done_steps * 100 / total))
		[ $pct -le 99 ] || pct=99
		fig="~$pct% ($done_steps/$total steps)"
	else
		fig="$done_steps steps"
	fi
	printf '  kernel %s: compiling, %s, %s\n' "$variant" "$(elapsed "$start")" "$fig" >&2
done
if ! wait "$pid"; then
	printf 'error: kernel build failed; last lines of %s:\n' "$log" >&2
	grep -E 'error|Error' "$log" | tail -n 20 >&2 || true
	tail -n 30 "$log" >&2
	exit 1
fi
grep -cE '^  (CC|RUSTC|AS|LD|AR)' "$log" >"$steps_file" || true
echo "$key" >"$out/.keyagent-built"
ln -sfn "$(basename "$out")" "$KEYAGENT_CACHE/kernel/$variant"
# Builds of this variant under other keys are stale now.
for old in "$KEYAGENT_CACHE/kernel/$variant"-*; do
	case $old in "$out"|"$out.log") ;; *) rm -rf "$old" ;; esac
done
say "kernel $variant built in $(elapsed "$start")" >&2
echo "$out"
