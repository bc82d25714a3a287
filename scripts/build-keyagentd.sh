#!/usr/bin/env bash
# Build keyagentd as a static (musl) binary and print its path on stdout.
#
#   scripts/build-keyagentd.sh
#
# Installs the Rust target x86_64-unknown-linux-musl if it is missing, then
# runs `cargo build --release --locked` in keyagentd/. Everything but the final
# path goes to stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

target=x86_64-unknown-linux-musl
command -v cargo >/dev/null || die "cargo not found; run scripts/setup.sh"
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
	rustup target add "$target" >&2 2>&1 ||
		die "cannot install the Rust target $target (rustup target add $target failed)"
fi
(cd "$KEYAGENT_ROOT/keyagentd" && cargo build --release --locked --target "$target") >&2 ||
	die "cargo build of keyagentd failed"
binary=$KEYAGENT_ROOT/keyagentd/target/$target/release/keyagentd
[ -x "$binary" ] || die "no binary at $binary after the build"
echo "$binary"
