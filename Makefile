# SPDX-License-Identifier: GPL-2.0
#
# keyagent: build the module, run it in QEMU.
#
#   make             build keyagent.ko against the dev kernel (KDIR= for another tree)
#   make demo        boot the dev kernel, show an agent answering request_key()
#   make check       all tests in the guest, ending in "N passed, N failed"
#   make lint        rustfmt check and a CLIPPY=1 build, zero warnings
#   make setup       install the toolchain (done by the targets that need it)
#   make install     install keyagentd, its man page, systemd unit and examples
#                    (PREFIX=/usr/local, SYSCONFDIR=/etc, DESTDIR= for staging)

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

ifeq ($(KDIR),)
KDIR_DEFAULT := 1
KDIR = $(shell scripts/kernel.sh --dir debug 2>/dev/null)
endif

KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1

.PHONY: all module setup kernel modules_install clean lint rust-analyzer \
	guest check demo bench fuzz stress install

all: module

setup:
	@scripts/setup.sh

kernel: setup
ifeq ($(KDIR_DEFAULT),1)
	@scripts/kernel.sh debug >/dev/null
endif

module: kernel
	@$(KMAKE) modules

modules_install: module
	@$(KMAKE) modules_install

rust-analyzer: kernel
	@scripts/rust-analyzer.sh "$(KDIR)"

clean:
	@if [ -n "$(KDIR)" ] && [ -d "$(KDIR)" ]; then $(KMAKE) clean; fi
	@rm -rf build rust/sys/bindings_generated.rs
	@$(MAKE) -s -C tests clean

lint: kernel
	@scripts/lint.sh "$(KDIR)"

guest: kernel
	@scripts/build-guest.sh >/dev/null

check:
	@scripts/check.sh $(TESTS)

demo:
	@scripts/demo.sh

bench:
	@scripts/bench.sh

fuzz:
	@scripts/fuzz.sh $(if $(SEED),--seed $(SEED)) $(if $(DURATION),--duration $(DURATION))

stress:
	@scripts/stress.sh $(if $(DURATION),--duration $(DURATION))

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR = $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR = $(PREFIX)/share/doc/keyagentd

install:
	@bin=$$(scripts/build-keyagentd.sh) && \
	install -D -m 0755 "$$bin" $(DESTDIR)$(SBINDIR)/keyagentd && \
	install -D -m 0644 keyagentd/dist/keyagentd.8 $(DESTDIR)$(PREFIX)/share/man/man8/keyagentd.8 && \
	install -d $(DESTDIR)$(UNITDIR) && \
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		keyagentd/dist/keyagentd.service.in >$(DESTDIR)$(UNITDIR)/keyagentd.service && \
	chmod 0644 $(DESTDIR)$(UNITDIR)/keyagentd.service && \
	install -D -m 0644 keyagentd/dist/request-key.d-example.conf $(DESTDIR)$(DOCDIR)/examples/request-key.d-example.conf && \
	install -D -m 0755 keyagentd/dist/container-entrypoint.sh $(DESTDIR)$(DOCDIR)/examples/container-entrypoint.sh && \
	install -D -m 0644 keyagentd/dist/keyagentd.default $(DESTDIR)$(DOCDIR)/examples/keyagentd.default && \
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/default/keyagentd ]; then \
		install -D -m 0644 keyagentd/dist/keyagentd.default $(DESTDIR)$(SYSCONFDIR)/default/keyagentd; fi && \
	echo "installed keyagentd in $(DESTDIR)$(SBINDIR), keyagentd(8), $(DESTDIR)$(UNITDIR)/keyagentd.service, $(DESTDIR)$(SYSCONFDIR)/default/keyagentd and $(DESTDIR)$(DOCDIR)/examples"
