#!/usr/bin/env bash
# make lint: rustfmt with the kernel tree's .rustfmt.toml, and a CLIPPY=1
# build of the module that must print no warning.
#
#   scripts/lint.sh [KDIR]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"
kdir=${1:-$(scripts/kernel.sh debug)}
ksrc=$(scripts/kernel.sh --src)

say "rustfmt --check (config: $ksrc/.rustfmt.toml)"
mapfile -t files < <(find rust -name '*.rs' ! -name 'bindings_generated.rs' | sort)
rustfmt --check --config-path "$ksrc/.rustfmt.toml" --edition 2021 "${files[@]}"

say "CLIPPY=1 module build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Rebuild the Rust object so that clippy sees it.
rm -f rust/keyagent.o
make -C "$kdir" M="$KEYAGENT_ROOT" LLVM=1 CLIPPY=1 W=1 modules >"$log" 2>&1 || {
	cat "$log"
	die "CLIPPY=1 build failed"
}
if grep -E '^(warning|error)' "$log"; then
	grep -A12 -E '^(warning|error)' "$log" | head -n 80
	die "clippy or the compiler warned (see above)"
fi

if [ -f keyagentd/Cargo.toml ]; then
	say "keyagentd: cargo fmt --check, cargo clippy"
	(cd keyagentd && cargo fmt --check && cargo clippy --locked --quiet -- -D warnings)
fi
say "lint clean"
