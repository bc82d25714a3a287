#!/usr/bin/env bash
# Install everything keyagent needs on a Debian 12 machine. Idempotent: each
# step is skipped when what it provides is already present.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
	linux-source-6.12 clang lld llvm libclang-dev
	qemu-system-x86 busybox-static keyutils libkeyutils-dev
	flex bison bc libelf-dev libssl-dev cpio kmod xz-utils
	python3
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || die "apt-get update failed; check the network and /etc/apt/sources.list"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

command -v rustup >/dev/null || die "rustup not found; install Rust with rustup (https://rustup.rs)"
sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library" ]; then
	say "adding the rust-src component"
	rustup component add rust-src >/dev/null 2>&1 || die "rustup component add rust-src failed"
fi
for c in rustfmt clippy; do
	rustup component list --installed 2>/dev/null | grep -q "^$c" ||
		rustup component add "$c" >/dev/null 2>&1 || die "rustup component add $c failed"
done

if ! bindgen --version 2>/dev/null | grep -q "bindgen $BINDGEN_VERSION"; then
	say "building bindgen-cli $BINDGEN_VERSION (a few minutes)"
	cargo install bindgen-cli --locked --version "$BINDGEN_VERSION" >/dev/null 2>&1 ||
		die "cargo install bindgen-cli --locked --version $BINDGEN_VERSION failed (needs libclang-dev)"
fi

say "toolchain ready: $(rustc --version | cut -d' ' -f1-2), $(bindgen --version), $(clang --version | head -n1)"
