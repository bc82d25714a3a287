# SPDX-License-Identifier: GPL-2.0
#
# keyagent: build the module, run it in QEMU.
#
#   make             build keyagent.ko against the dev kernel (KDIR= for another tree)
#   make demo        boot the dev kernel, show an agent answering request_key()
#   make check       all tests in the guest, ending in "N passed, N failed"
#   make lint        rustfmt check and a CLIPPY=1 build, zero warnings
#   make setup       install the toolchain (done by the targets that need it)

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

ifeq ($(KDIR),)
KDIR_DEFAULT := 1
KDIR = $(shell scripts/kernel.sh --dir debug 2>/dev/null)
endif

KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1

.PHONY: all module setup kernel modules_install clean lint rust-analyzer \
	guest check demo bench fuzz stress

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
