#!/usr/bin/env bash
# Build the guest's initramfs: busybox, keyctl, /sbin/request-key with Debian's
# stock /etc/request-key.conf and handlers (key.dns_resolver,
# request-key-debug.sh) plus the tests' lines in /etc/request-key.d, the module,
# the tests and the agents.
#
#   scripts/mkinitramfs.sh OUT.cpio MODULE.ko [OVERLAY...]
#
# Each OVERLAY directory is copied over the root (build/guest/tests -> /tests).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$1 module=$2
shift 2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,lib/keyagent,usr/bin,usr/sbin}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# Debian's keyutils, unchanged: the dynamically linked programs with their
# libraries, the stock configuration and debug handler.
for prog in /bin/keyctl /sbin/request-key /sbin/key.dns_resolver; do
	cp "$prog" "$root$prog"
	for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done
mkdir -p "$root/usr/share/keyutils" "$root/etc/request-key.d" "$root/etc/keyutils"
cp /usr/share/keyutils/request-key-debug.sh "$root/usr/share/keyutils/"
if dpkg --verify keyutils 2>/dev/null | grep -q ' /etc/request-key.conf$'; then
	echo "warning: this machine's /etc/request-key.conf differs from keyutils' stock file; the guest gets it as it is" >&2
fi
cp /etc/request-key.conf "$root/etc/request-key.conf"
cp "$KEYAGENT_ROOT/scripts/guest/keyagent-tests.conf" "$root/etc/request-key.d/keyagent-tests.conf"
# key.dns_resolver resolves plain host names with getaddrinfo(): from
# /etc/hosts here (glibc's files and dns modules are part of libc.so.6).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
cp "$KEYAGENT_ROOT/scripts/guest/hosts" "$root/etc/hosts"
printf 'default_ttl = 600\n' >"$root/etc/keyutils/key.dns_resolver.conf"
mkdir -p "$root/etc/keyagent"
cp "$KEYAGENT_ROOT/scripts/guest/request-key-handler" "$root/etc/keyagent/"
cp "$KEYAGENT_ROOT/scripts/guest/init" "$root/init"
chmod +x "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
cp "$module" "$root/lib/keyagent/keyagent.ko"
for dir in "$@"; do
	cp -a "$dir/." "$root/"
done

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc) >"$out.tmp"
mv "$out.tmp" "$out"
