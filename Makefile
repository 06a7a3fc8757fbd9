# mom: plain GNU make.  make, make check, make sanitize, make fault, make install PREFIX=...

PREFIX   ?= /usr/local
CC       ?= cc
BUILD    ?= build
BINDIR   := bin
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wno-unused-parameter
CFLAGS   ?=
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -MMD -MP -Isrc/libmom $(XCFLAGS)
LDFLAGS  += $(XLDFLAGS)
LIBS     := -lraft -lnng -ljwt -lcrypto -ljansson -lpthread -lm
# Only the programs that use them.
CURL_LIBS := -lcurl
AUTH_LIBS := -largon2 -lcurl

PROGRAMS := mom-broker mom-pub mom-sub mom-admin mom-auth
BINS     := $(PROGRAMS:%=$(BINDIR)/%)

LIB_SRC  := $(wildcard src/libmom/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A    := $(BUILD)/libmom.a

# The broker's modules without main.c, for the unit tests: one folder per
# layer (src/mom-broker/*/), included by folder ("state/fsm.h").
BROKER_SRC := $(wildcard src/mom-broker/*/*.c)
BROKER_OBJ := $(BROKER_SRC:%.c=$(BUILD)/%.o)
BROKER_INC := -Isrc/mom-broker
$(BUILD)/src/mom-broker/%.o: CFLAGS += $(BROKER_INC)

UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

MANS     := $(wildcard man/*.[1-8])

.PHONY: cluster all tools examples check unit unit-build valgrind e2e manlint layers funclen fuzz fuzz-check sanitize fault install clean deps run bench bench-link bench-cluster soak chaos

all: $(BINS) tools examples

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BINDIR)/mom-broker: $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/mom-broker/*.c)) $(BROKER_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

define prog_rule
$(BINDIR)/$(1): $$(patsubst %.c,$(BUILD)/%.o,$$(wildcard src/$(1)/*.c)) $(LIB_A)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS) $(2)
endef
$(eval $(call prog_rule,mom-pub,))
$(eval $(call prog_rule,mom-sub,))
$(eval $(call prog_rule,mom-admin,$$(CURL_LIBS)))
$(eval $(call prog_rule,mom-auth,$$(AUTH_LIBS)))

# Test-only tools (tests/tools/*.c), e.g. a JWT forger for the attack suite.
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
tools: $(TOOL_BIN)
$(BUILD)/tools/%: tests/tools/%.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# Example programs (examples/*/): libc only, not installed.
EXAMPLES := $(BUILD)/examples/mom-calc
examples: $(EXAMPLES)
$(BUILD)/examples/mom-calc: examples/calculator/calc.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm

# A test of a program's own module names its sources in UNIT_EXTRA_<test>
# (with -Isrc it includes "mom-pub/options.h"); they are linked before the library.
UNIT_EXTRA_pub_options := src/mom-pub/options.c
UNIT_EXTRA_sub_options := src/mom-sub/options.c
UNIT_EXTRA_admin_options := src/mom-admin/options.c
UNIT_EXTRA_auth_options := src/mom-auth/options.c
UNIT_EXTRA_broker_options := src/mom-broker/options.c
unit_extra = $(patsubst %.c,$(BUILD)/%.o,$(UNIT_EXTRA_$(1)))
$(foreach t,$(UNIT_SRC:tests/unit/%_test.c=%),$(eval $(BUILD)/tests/$(t)_test: $(call unit_extra,$(t))))
$(BUILD)/tests/%_test: tests/unit/%_test.c $(BROKER_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BROKER_INC) -Isrc $(LDFLAGS) -o $@ $< $(call unit_extra,$*) \
		$(BROKER_OBJ) $(LIB_A) $(LIBS) -lcriterion

# fault_test runs store.c and rio.c as the fault build compiles them.
FAULT_TEST_OBJ := $(patsubst %.c,$(BUILD)/fault-test/%.o,src/mom-broker/storage/store.c \
	src/mom-broker/storage/rio.c src/mom-broker/storage/guard.c)
$(BUILD)/fault-test/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BROKER_INC) -DMOM_FAULT_INJECTION -c -o $@ $<
$(BUILD)/tests/fault_test: tests/unit/fault_test.c $(FAULT_TEST_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DMOM_FAULT_INJECTION $(BROKER_INC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcriterion

# link_test runs link.c as the fault build compiles it (MOM_FAULT_LINK).
LINK_TEST_OBJ := $(patsubst %.c,$(BUILD)/fault-test/%.o,src/mom-broker/replica/link.c \
	src/mom-broker/replica/frame.c)
$(BUILD)/tests/link_test: tests/unit/link_test.c $(LINK_TEST_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DMOM_FAULT_INJECTION $(BROKER_INC) $(LDFLAGS) -o $@ \
		$(filter %.c %.o %.a,$^) $(LIBS) -lcriterion

# cluster_test runs libraft's raft_fixture with the figure-8 guard as the
# fault build compiles it, so that MOM_FAULT_NO_GUARD can switch it off.
$(BUILD)/tests/cluster_test: tests/unit/cluster_test.c \
	$(BUILD)/fault-test/src/mom-broker/storage/guard.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DMOM_FAULT_INJECTION $(BROKER_INC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcriterion

# fault: the fault-injection build (store.h, rio.h: MOM_FAULT_*), every
# program and tool compiled with -DMOM_FAULT_INJECTION into build-fault/,
# the programs in build-fault/bin/.  Never installed; bin/ is not touched.
FAULT_BUILD := build-fault
fault:
	$(MAKE) BUILD=$(FAULT_BUILD) BINDIR=$(FAULT_BUILD)/bin \
		XCFLAGS="$(XCFLAGS) -DMOM_FAULT_INJECTION" all

# deps: install every build and test dependency that is missing (Debian).
# prometheus: for promtool (use-ops.bats checks /metrics); Debian ships it in
# the server's package, whose service a systemd host then starts on :9090.
DEPS := build-essential pkg-config libnng-dev libjansson-dev libcriterion-dev libraft-dev \
	libjwt-dev libssl-dev libargon2-dev libcurl4-openssl-dev openssl \
	bats bats-assert bats-support mandoc clang libclang-rt-14-dev curl valgrind jq python3 \
	prometheus iproute2
deps:
	@missing=""; for p in $(DEPS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# run: the quick start.  A broker in the foreground with ./mom-data.
run: deps all
	@echo "mom-broker on tcp://127.0.0.1:7420; in another terminal try:"
	@echo "  bin/mom-pub --create -q demo -m 'hello, mom'"
	@echo "  bin/mom-sub -q demo -C 1"
	@echo "(Ctrl-C stops the broker)"
	@exec bin/mom-broker -D ./mom-data

# Three nodes on loopback in the foreground (dist/cluster/local.sh).
cluster: deps all
	@exec sh dist/cluster/local.sh

unit-build: $(UNIT_BIN)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs=1; done

# The unit tests under valgrind: no leak, no invalid access.
VALGRIND := valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
	--error-exitcode=1 --trace-children=yes --suppressions=tests/unit/valgrind.supp
# criterion's forked test processes do not pass valgrind's exit status on:
# each process logs on its own, and any logged line is a failure.
valgrind: $(UNIT_BIN)
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
		$(VALGRIND) --log-file="$$d/vg.%p.log" $$t --jobs=1 >/dev/null; \
		for l in "$$d"/vg.*.log; do [ -s "$$l" ] || continue; cat "$$l"; exit 1; done; \
		rm -f "$$d"/vg.*.log; done

e2e: all
	bats tests/e2e

manlint:
	mandoc -T lint -W warning $(MANS)

# The broker's layer rule (README, Layout): includes point one way.
layers:
	@sh tests/layers.sh

# Functions over 120 lines (the aim: none outside tables and tests).
funclen:
	@sh tests/funclen.sh

# The fault-injection build is for durability.bats's power-loss and full-disk tests.
check: deps layers all fault
	@sh tests/run-all.sh

# ASan + UBSan build of everything, then the whole suite against it.
sanitize:
	$(MAKE) clean
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	MOM_VALGRIND=0 $(MAKE) check OPT="-O1 -g -fno-omit-frame-pointer" \
		XCFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		XLDFLAGS="-fsanitize=address,undefined"; rc=$$?; \
	$(MAKE) clean >/dev/null; exit $$rc

FUZZ_SRC := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
fuzz: $(FUZZ_BIN)
# UBSan findings must stop the run (by default they are printed and ignored).
# A target that needs broker modules names them in FUZZ_EXTRA_<target>.
FUZZ_EXTRA_http_fuzz := src/mom-broker/net/rest.c
$(BUILD)/fuzz/http_fuzz: $(FUZZ_EXTRA_http_fuzz) $(wildcard src/mom-broker/net/*.h)
FUZZ_EXTRA_store_fuzz := src/mom-broker/storage/store.c
$(BUILD)/fuzz/store_fuzz: $(FUZZ_EXTRA_store_fuzz) $(wildcard src/mom-broker/storage/*.h)
FUZZ_EXTRA_snap_fuzz := $(wildcard src/mom-broker/state/*.c)
$(BUILD)/fuzz/snap_fuzz: $(FUZZ_EXTRA_snap_fuzz) $(wildcard src/mom-broker/state/*.h)
FUZZ_EXTRA_frame_fuzz := src/mom-broker/replica/frame.c
$(BUILD)/fuzz/frame_fuzz: $(FUZZ_EXTRA_frame_fuzz) src/mom-broker/replica/frame.h
FUZZ_EXTRA_raftmsg_fuzz := src/mom-broker/replica/raftmsg.c
$(BUILD)/fuzz/raftmsg_fuzz: $(FUZZ_EXTRA_raftmsg_fuzz) src/mom-broker/replica/raftmsg.h
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard src/libmom/*.h)
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc/libmom $(BROKER_INC) \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o $@ $< $(LIB_SRC) $(FUZZ_EXTRA_$*) $(LIBS)
# Each target runs over its corpus (tests/fuzz/corpus/NAME/) plus 20000 new inputs.
fuzz-check: fuzz
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
		mkdir -p $(BUILD)/fuzz/work-$$n; \
		$$f -runs=20000 -max_len=8192 $(BUILD)/fuzz/work-$$n tests/fuzz/corpus/$$n; done

# fuzz-long: each target for FUZZ_CPU_SECONDS of CPU (default 600); not in check.
fuzz-long: fuzz
	tests/fuzz/long.sh

bench: all $(BUILD)/bench/linkbench
	bench/run

# The cluster transport alone (bench/README.md, "Cluster links"): link.c as
# the fault build compiles it, for the drop runs.
$(BUILD)/bench/linkbench: bench/linkbench.c $(LINK_TEST_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DMOM_FAULT_INJECTION $(BROKER_INC) $(LDFLAGS) -o $@ \
		$(filter %.c %.o %.a,$^) $(LIBS)
bench-link: $(BUILD)/bench/linkbench
	$(BUILD)/bench/linkbench

# chaos: the cluster's chaos run for CHAOS_SECONDS (default 600; make check
# runs 120 s of it and its negative control): tests/chaos/README.md.
chaos: all fault
	CHAOS_SECONDS=$${CHAOS_SECONDS:-600} tests/chaos/chaos.sh

# A three-node cluster against one node and mosquitto (bench/README.md, "Cluster").
bench-cluster: all
	bench/cluster

# soak: an hour (SOAK_SECONDS) of mixed load with the broker killed every few
# minutes; not part of check (tests/soak/README.md).
soak: all
	tests/soak/soak.sh

# install: the programs (mom-broker in sbin/: a daemon), man pages, the
# systemd unit (its paths filled in), the file it reads (only when there is
# none) and bash completions, under DESTDIR$(PREFIX) (the file under
# SYSCONFDIR: /etc for PREFIX=/usr); each directory can be moved on its own.
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(BINDIR)/mom-broker $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(filter-out $(BINDIR)/mom-broker,$(BINS)) $(DESTDIR)$(PREFIX)/bin
	for m in $(MANS); do s=$${m##*.}; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		dist/systemd/mom-broker.service.in >$(DESTDIR)$(UNITDIR)/mom-broker.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mom-broker.service
	@# The unit reads it: an example of comments, never over one that exists.
	install -d $(DESTDIR)$(SYSCONFDIR)/mom
	[ -e $(DESTDIR)$(SYSCONFDIR)/mom/mom-broker.conf ] || \
		install -m 0644 dist/mom-broker.conf $(DESTDIR)$(SYSCONFDIR)/mom/mom-broker.conf
	for p in $(PROGRAMS); do \
		install -m 0644 dist/completion/mom.bash $(DESTDIR)$(BASHCOMPDIR)/$$p; done

clean:
	rm -rf $(BUILD) bin $(FAULT_BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
