# e7 top-level entry points. `make demo` runs e7 in a throwaway VM; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
KMOD := crates/e7-kmod

.PHONY: all test demo check fmt-check clippy unit kernel-target kmod vmtest bench clean

all:
	$(CARGO) build --workspace --release
	$(MAKE) -C $(KMOD)

## test: everything CI runs (format, lints, unit/property tests, kernel-target build, module build, VM tests)
test: fmt-check clippy unit kernel-target kmod vmtest
	@echo "e7: ALL TESTS PASSED"

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

## kernel-target: the no_std crates must build for a kernel target
kernel-target:
	RUSTC_BOOTSTRAP=1 $(CARGO) build -p e7-core -p e7-proto --target x86_64-unknown-none -Zbuild-std=core
	crates/e7-core/nopanic/check.sh

kmod:
	$(MAKE) -C $(KMOD)
	$(MAKE) -C $(KMOD) test lint

## vmtest: the VM suite on every row of the kernel matrix (6.1, 6.12, 6.12-rt, sid; vmtest/krow.sh)
vmtest:
	$(MAKE) -C vmtest matrix

## demo: boot a throwaway VM with the module loaded and the e7 console attached (KROW=6.12|6.12-rt|sid:
## on that kernel row instead of Debian 12's 6.1)
demo:
	./scripts/deps.sh
	$(MAKE) -C vmtest demo

bench:
	$(CARGO) bench -p e7-benches

clean:
	$(CARGO) clean
	-$(MAKE) -C $(KMOD) clean
