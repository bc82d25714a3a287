# Shared helpers for keyagent's scripts. Source it; do not run it.

# Where cached build products live (kernel trees, built kernels, the initramfs).
: "${KEYAGENT_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/keyagent}"
export KEYAGENT_CACHE

KEYAGENT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KEYAGENT_ROOT

# Where guest images, test programs and logs go (KEYAGENT_BUILD= moves them,
# e.g. to run two builds side by side).
: "${KEYAGENT_BUILD:=$KEYAGENT_ROOT/build}"
export KEYAGENT_BUILD

# The pinned bindgen; 6.12 needs >= 0.65.1.
BINDGEN_VERSION=0.73.2

# Cargo's bin dir must be on PATH for rustc, cargo and bindgen.
case ":$PATH:" in
*":$HOME/.cargo/bin:"*) ;;
*) PATH="$HOME/.cargo/bin:$PATH" ;;
esac
export PATH

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# now_s: seconds since the epoch.
now_s() { date +%s; }

# elapsed START: "MmSSs" since START.
elapsed() {
	local d=$(( $(now_s) - $1 ))
	printf '%dm%02ds' $((d / 60)) $((d % 60))
}

# run_logged LOG DESC CMD...: run CMD with its output in LOG; on failure print
# the log's tail and exit.
run_logged() {
	local log=$1 desc=$2
	shift 2
	if ! "$@" >>"$log" 2>&1; then
		printf 'error: %s failed; last lines of %s:\n' "$desc" "$log" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}

# The debug kernel (built if stale) and the guest image with the module, the
# tests and keyagentd, for the scripts that boot it.
build_debug_guest() {
	scripts/kernel.sh debug >/dev/null
	say "building the module, tests and guest image"
	scripts/build-guest.sh >/dev/null
}
