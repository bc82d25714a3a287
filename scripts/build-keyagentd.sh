#!/usr/bin/env bash
# Build keyagentd as a static binary and print its path on stdout.
#
#   scripts/build-keyagentd.sh
#
# Uses the musl target (installing it with rustup if missing); if it cannot be
# installed, falls back to a static glibc build. Everything but the final path
# goes to stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null || die "cargo not found; run scripts/setup.sh"
target=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$target" &&
	! rustup target add "$target" >&2 2>&1; then
	echo "warning: cannot install the Rust target $target; building a static glibc binary instead" >&2
	target=x86_64-unknown-linux-gnu
	export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
fi
(cd "$KEYAGENT_ROOT/keyagentd" && cargo build --release --locked --target "$target") >&2 ||
	die "cargo build of keyagentd failed"
binary=$KEYAGENT_ROOT/keyagentd/target/$target/release/keyagentd
[ -x "$binary" ] || die "no binary at $binary after the build"
echo "$binary"
