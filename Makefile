# asyncqueue - one Makefile: make, make run, make test, make bench, make install
#
# Objects go to $(BUILD)/obj, executables to $(BUILD)/bin, plugins to
# $(BUILD)/plugins. `make test` builds a separate sanitizer tree in build/san.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
SAN     ?= 0
DATA    ?= data
LISTEN  ?= 127.0.0.1:8080

DEB_PKGS = build-essential pkg-config libzmq3-dev libczmq-dev libmicrohttpd-dev \
           liblmdb-dev libcurl4-openssl-dev libmsgpack-dev libjansson-dev \
           libsodium-dev libical-dev libjemalloc-dev \
           libsystemd-dev
TEST_PKGS = python3 python3-requests python3-zmq python3-msgpack python3-yaml curl iproute2 clang \
            chromium chromium-driver
BENCH_PKGS = wrk

CC      ?= cc
PKGS     = libzmq libczmq libmicrohttpd lmdb libcurl msgpack jansson libsodium libical \
           libsystemd
CFLAGS_BASE = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -g \
              -D_GNU_SOURCE -fPIC -Iproto -Iproto/runtime -Iproto/client -Iplugins
ifeq ($(SAN),1)
  OPT = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
        -fno-sanitize-recover=undefined
  LDSAN = -fsanitize=address,undefined
  MALLOC =
else ifeq ($(SAN),fuzz)
  # The fuzzing build (make fuzz, tests/fuzz): clang's coverage for
  # libFuzzer in every module, the sanitizers as in SAN=1.
  OPT = -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
        -fno-sanitize-recover=undefined
  LDSAN = -fsanitize=address,undefined
  MALLOC =
else
  OPT = -O2
  LDSAN =
  # jemalloc instead of glibc's malloc: the request path allocates and
  # frees small blocks by the dozen (jansson trees, ZeroMQ frames freed by
  # the other thread); about 15% less CPU per HTTP create (docs/operations.md).
  # Not under the sanitizers, which bring their own allocator.
  MALLOC = -ljemalloc
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(CFLAGS_BASE) -ffunction-sections $(OPT) $(PKG_CFLAGS)
LDFLAGS += $(LDSAN)
LDLIBS  += $(MALLOC) $(PKG_LIBS) -lpthread -ldl -lm

OBJ = $(BUILD)/obj$(if $(filter 1,$(SAN)),-san)
BIN = $(BUILD)/bin
LIB = $(BUILD)/lib

# Each component is a library of its modules; main files are listed apart.
PROTO_SRC   = $(wildcard proto/*.c proto/runtime/*.c) proto/client/aq_client.c
BROKER_SRC  = $(filter-out broker/main.c broker/allinone.c,$(wildcard broker/*.c)) \
              $(wildcard broker/sched/*.c) $(wildcard plugins/*.c)
WORKER_SRC  = $(filter-out workers/main.c,$(wildcard workers/*.c))
GATEWAY_SRC = $(filter-out gateway/main.c,$(wildcard gateway/*.c))
TEST_SRC    = $(wildcard tests/*.c)
RIG_SRC     = $(wildcard tests/rig_*.c)
# Each shipped plugin's selftest, beside it (plugins/<name>/*_test.c): linked
# into aq-selftest, never into the plugin.
PLUGIN_TEST_SRC = $(wildcard plugins/*/*_test.c)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

LIBPROTO   = $(LIB)/libasyncqueue.a
LIBBROKER  = $(LIB)/libaqbroker.a
LIBWORKER  = $(LIB)/libaqworker.a
LIBGATEWAY = $(LIB)/libaqgateway.a

PROGS = $(BIN)/asyncqueue $(BIN)/aq-broker $(BIN)/aq-worker $(BIN)/aq-gateway \
        $(BIN)/aqctl $(BIN)/aq-selftest $(BIN)/aq-target $(BIN)/aq-bench $(BIN)/aq-hello \
        $(BIN)/aq-curl-limit $(BIN)/aq-peer-load $(BIN)/aq-store-fill

.PHONY: all deps check-deps test-deps node-deps run test bench install clean format check-format
all: $(PROGS)

# Plain `make` on a machine without the -dev packages stops before the
# first compile with one line naming the command that installs them,
# rather than with a compiler error about a missing header. Each word of
# BUILD_DEPS is pkg-config-name=debian-package; DEPS_EXTRA adds more (the
# tests name one that does not exist).
BUILD_DEPS = libzmq=libzmq3-dev libczmq=libczmq-dev libmicrohttpd=libmicrohttpd-dev \
             lmdb=liblmdb-dev libcurl=libcurl4-openssl-dev msgpack=libmsgpack-dev \
             jansson=libjansson-dev libsodium=libsodium-dev libical=libical-dev \
             libsystemd=libsystemd-dev $(if $(filter 1,$(SAN)),,jemalloc=libjemalloc-dev)
DEPS_EXTRA ?=
MISSING_DEPS = $(shell \
  command -v $(firstword $(CC)) >/dev/null 2>&1 || echo build-essential; \
  command -v pkg-config >/dev/null 2>&1 || echo pkg-config; \
  for dep in $(BUILD_DEPS) $(DEPS_EXTRA); do \
    pkg-config --exists $${dep%%=*} 2>/dev/null || echo $$dep | cut -d= -f2; \
  done)
check-deps:
	$(if $(strip $(MISSING_DEPS)),$(error missing packages: $(strip $(MISSING_DEPS)); \
	  'make deps' installs them (apt-get), then run make again))
	@:

$(OBJ)/%.o: %.c $(wildcard */*.h */*/*.h) | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBPROTO): $(call objs,$(PROTO_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBBROKER): $(call objs,$(BROKER_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBWORKER): $(call objs,$(WORKER_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBGATEWAY): $(call objs,$(GATEWAY_SRC)) $(OBJ)/gateway/ui_assets.o
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

# The web console (gateway/ui/, docs/console.md): its files become byte
# arrays in a generated C file, written by a small C program built for the
# build machine (no xxd, no python); gateway/ui.c serves them at /ui/.
UI_FILES = $(sort $(wildcard gateway/ui/*.html gateway/ui/*.js gateway/ui/*.css gateway/ui/*.svg))
UI_EMBED = $(BUILD)/tools/ui-embed
$(UI_EMBED): tools/ui_embed.c
	@mkdir -p $(dir $@); $(CC) $(CFLAGS_BASE) -O1 -o $@ $<
$(BUILD)/gen/ui_assets.c: $(UI_EMBED) $(UI_FILES)
	@mkdir -p $(dir $@); $(UI_EMBED) $(UI_FILES) > $@.tmp && mv $@.tmp $@
$(OBJ)/gateway/ui_assets.o: $(BUILD)/gen/ui_assets.c gateway/ui.h | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Igateway -c $< -o $@

ALL_LIBS = $(LIBBROKER) $(LIBGATEWAY) $(LIBWORKER) $(LIBPROTO)

# A module's selftest is its last function, in the library, and may call the
# test rigs (tests/rig_*.c: an HTTP server, a fake broker) that only
# aq-selftest links. Each function has its own section (-ffunction-sections
# above) and the programs drop the sections nothing reaches: the selftests go,
# and their calls into the rigs with them.
$(PROGS): private LDFLAGS += -Wl,--gc-sections

$(BIN)/asyncqueue: $(OBJ)/broker/allinone.o $(ALL_LIBS)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-broker: $(OBJ)/broker/main.o $(LIBBROKER) $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-worker: $(OBJ)/workers/main.o $(LIBWORKER) $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-gateway: $(OBJ)/gateway/main.o $(LIBGATEWAY) $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aqctl: $(OBJ)/proto/client/aqctl.o $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-selftest: $(OBJ)/tests/selftest.o $(call objs,$(RIG_SRC) $(PLUGIN_TEST_SRC)) $(ALL_LIBS)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-target: $(OBJ)/tests/target.o $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-bench: $(OBJ)/tests/bench.o $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-hello: $(OBJ)/tests/hello.o $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-curl-limit: $(OBJ)/tests/curllimit.o
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-peer-load: $(OBJ)/tests/peerload.o
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/aq-store-fill: $(OBJ)/tests/storefill.o $(LIBBROKER) $(LIBPROTO)
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Plugins: plugins/*.c (the loader, its calls, the host table) are in libaqbroker.a
# (BROKER_SRC). Each folder plugins/<name>/ builds $(BUILD)/plugins/<name>.so
# from its .c files but its selftest (*_test.c, PLUGIN_TEST_SRC), and each
# tests/plugins/<name>.c builds $(BUILD)/plugins-test/<name>.so (plugins the loader's selftest refuses,
# and crashy and hangy, which crash or hang their provider host),
# with aq_plugin.h as their only project header and linked only with
# PLUGIN_LIBS_<name>; -z defs refuses a plugin that calls into the host.
PLUGINS       = $(patsubst plugins/%/,$(BUILD)/plugins/%.so,$(sort $(dir $(wildcard plugins/*/*.c))))
TEST_PLUGINS  = $(patsubst tests/plugins/%.c,$(BUILD)/plugins-test/%.so,$(wildcard tests/plugins/*.c))
PLUGIN_SRC    = $(filter-out $(PLUGIN_TEST_SRC),$(wildcard plugins/*/*.c))
PLUGIN_OBJS   = $(addprefix $(OBJ)/,$(subst .c,.po,$(PLUGIN_SRC) $(wildcard tests/plugins/*.c)))
PLUGIN_CFLAGS = $(filter-out -Iproto -Iproto/runtime -Iproto/client,$(CFLAGS_BASE)) $(OPT) -fvisibility=hidden
PLUGIN_LIBS_vault-sodium = $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

all: $(PLUGINS) $(TEST_PLUGINS)
$(BIN)/aq-selftest: | $(PLUGINS) $(TEST_PLUGINS)
$(PLUGIN_OBJS): $(OBJ)/%.po: %.c plugins/aq_plugin.h $(wildcard plugins/*/*.h) | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -c $< -o $@
.SECONDEXPANSION:
$(BUILD)/plugins/%.so: $$(addprefix $(OBJ)/,$$(subst .c,.po,$$(filter-out $(PLUGIN_TEST_SRC),$$(wildcard plugins/$$*/*.c))))
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -shared -Wl,-z,defs -o $@ $^ $(PLUGIN_LIBS_$*)
$(BUILD)/plugins-test/%.so: $(OBJ)/tests/plugins/%.po
	@mkdir -p $(dir $@); $(CC) $(LDFLAGS) -shared -Wl,-z,defs -o $@ $^
# tests/clockshift.c: an LD_PRELOAD shim that moves the wall clock of a
# process under test (tests/test_upgrade.py); built without sanitizers, so
# it preloads beside their runtime, and never installed.
CLOCKSHIFT = $(LIB)/aq-clockshift.so
all: $(CLOCKSHIFT)
$(CLOCKSHIFT): tests/clockshift.c
	@mkdir -p $(dir $@); $(CC) $(CFLAGS_BASE) -O2 -shared -o $@ $< -ldl
.PHONY: install-plugins
install: install-plugins
install-plugins: $(PLUGINS)
	install -d $(DESTDIR)$(PREFIX)/lib/asyncqueue/plugins $(DESTDIR)$(PREFIX)/include
	install -m 755 $(PLUGINS) $(DESTDIR)$(PREFIX)/lib/asyncqueue/plugins
	install -m 644 plugins/aq_plugin.h $(DESTDIR)$(PREFIX)/include

# Debian packages: install only what is missing (no-op when all present).
define ensure_pkgs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
endef

deps:
	$(call ensure_pkgs,$(DEB_PKGS))
test-deps: deps
	$(call ensure_pkgs,$(TEST_PKGS))
	@command -v node >/dev/null || $(MAKE) --no-print-directory node-deps

# The API tests run the seed's JavaScript example, lint the OpenAPI document
# with @redocly/cli and check real responses against it with ajv (tests/node,
# installed by the tests from its lockfile with npm ci): Node.js 20.
node-deps:
	$(call ensure_pkgs,nodejs npm)

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(DATA)
	$(BIN)/asyncqueue --data $(DATA) --listen $(LISTEN)

# The test build: sanitizers on, in its own tree, from scratch.
test: test-deps check-format
	rm -rf build/san
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/san all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	AQ_BUILD=build/san /usr/bin/python3 tests/run.py

# The peers asyncqueue is measured against (tests/bench.py, phase peers):
# beanstalkd and redis-server from Debian, BullMQ from npm (tests/peers and its
# lockfile), each installed only when missing; one that cannot be is skipped.
bench: test-deps
	$(call ensure_pkgs,$(BENCH_PKGS))
	-$(call ensure_pkgs,beanstalkd)
	-$(call ensure_pkgs,redis-server)
	-@[ -d tests/peers/node_modules/bullmq ] || ! command -v npm >/dev/null || \
	  npm ci --prefix tests/peers --no-audit --no-fund --loglevel=error
	@$(MAKE) --no-print-directory all
	AQ_BUILD=$(BUILD) /usr/bin/python3 tests/bench.py

# systemd units, the user they run as, and commented example configs
# (dist/): the units get the paths of this install; a config already there
# is the operator's and is kept.
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
UNITS       = $(wildcard dist/systemd/*.service)
CONFIGS     = $(wildcard dist/config/*.conf)
.PHONY: install-systemd
install: install-systemd
install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/asyncqueue
	for unit in $(UNITS); do \
	  sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	      -e '/@HARDENING@/{' -e 'r dist/systemd/hardening.inc' -e 'd' -e '}' \
	      $$unit > $(DESTDIR)$(UNITDIR)/$${unit##*/} && \
	  chmod 644 $(DESTDIR)$(UNITDIR)/$${unit##*/} || exit 1; \
	done
	install -m 644 dist/systemd/asyncqueue.sysusers $(DESTDIR)$(SYSUSERSDIR)/asyncqueue.conf
	for conf in $(CONFIGS); do \
	  [ -e $(DESTDIR)$(SYSCONFDIR)/asyncqueue/$${conf##*/} ] || \
	  install -m 644 $$conf $(DESTDIR)$(SYSCONFDIR)/asyncqueue || exit 1; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	           $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/asyncqueue/plugins
	install -m 755 $(BIN)/asyncqueue $(BIN)/aq-broker $(BIN)/aq-worker \
	           $(BIN)/aq-gateway $(BIN)/aqctl $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBPROTO) $(DESTDIR)$(PREFIX)/lib
	install -m 644 proto/aq_proto.h proto/aq_codec.h proto/aq_msg.h proto/aq_curve.h \
	           proto/client/aq_client.h $(DESTDIR)$(PREFIX)/include

clean:
	rm -rf build

# Fuzzing (docs/fuzzing.md): each tests/fuzz/NAME.c is a libFuzzer harness
# for one parser of untrusted input, built with clang into $(FUZZ_BUILD)/bin/
# fuzz-NAME against the libraries (only the objects it reaches are linked),
# and run by tests/fuzz/run.sh on tests/fuzz/corpus/NAME for FUZZ_SECONDS
# each. FUZZ=NAME,NAME runs only those. The url harness loads the fal
# and bodies harnesses load the plugins from a plain build in $(FUZZ_BUILD)/plain.
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 30
FUZZ_CC      ?= clang
FUZZ         ?=
FUZZ_NAMES    = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))
FUZZ_BINS     = $(patsubst %,$(BIN)/fuzz-%,$(FUZZ_NAMES))
# -iquote: broker/limits.h must not hide <limits.h>
FUZZ_CFLAGS   = -iquote broker -iquote broker/sched -iquote gateway -iquote workers

.PHONY: fuzz fuzz-build fuzz-bins fuzz-plugins
fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ=$(FUZZ) tests/fuzz/run.sh
fuzz-build: deps
	$(call ensure_pkgs,clang)
	@$(MAKE) --no-print-directory SAN=fuzz CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) fuzz-bins
	@$(MAKE) --no-print-directory SAN=0 BUILD=$(FUZZ_BUILD)/plain fuzz-plugins
fuzz-bins: $(FUZZ_BINS)
fuzz-plugins: $(PLUGINS)

.PRECIOUS: $(OBJ)/tests/fuzz/%.o
$(OBJ)/tests/fuzz/%.o: private CFLAGS += $(FUZZ_CFLAGS)
# A harness that needs a test rig as well names it here: FUZZ_RIGS_NAME
# (gateway/json.o, whose selftest calls rig_jansson, needs that one).
FUZZ_RIGS_gateway = $(OBJ)/tests/rig_jansson.o
FUZZ_RIGS_bodies  = $(OBJ)/tests/rig_core.o $(OBJ)/tests/rig_jansson.o
$(BIN)/fuzz-%: $(OBJ)/tests/fuzz/%.o $$(FUZZ_RIGS_$$*) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined -Wl,--gc-sections -o $@ $^ $(LDLIBS)

FORMATTED = $(wildcard */*.c */*.h */*/*.c */*/*.h)
format:
	clang-format -i $(FORMATTED)
check-format:
	@if command -v clang-format >/dev/null; then \
	  clang-format --dry-run --Werror $(FORMATTED) && echo "clang-format: clean"; \
	else echo "clang-format not installed: format not checked"; fi
