# Seadragon: an nginx dynamic module that queues requests in front of Ollama.
#
#   make          build build/ngx_seadragon_module.so against Debian's nginx
#   make deps     install the Debian packages that are missing (as root)
#   make test     build, then run every suite in t/ with prove
#   make matrix   build and test against every nginx version (see below)
#   make run      start the gateway on 127.0.0.1:8080 (make stop ends it)
#   make check-memory   the nginx suites under valgrind
#   make soak     a bounded soak (SOAK_SECONDS, default 300, at most 540)
#   make fuzz     the libFuzzer harnesses of t/fuzz/, FUZZ_TIME seconds each
#   make install  into Debian's nginx layout (DESTDIR, PREFIX, ...); uninstall
#   make bench    the benchmarks against HAProxy and plain nginx (BENCHMARKS.md)
#   make bench-body     only the body check's time per MB (prints it)
#   make bench-dispatch the scheduler's microseconds per dispatch (prints)
#   make deb      build/libnginx-mod-http-seadragon_VERSION_ARCH.deb and
#                 build/seadragon-common_VERSION_ARCH.deb, with debhelper

SHELL := /bin/bash

# the project's version, as the Debian packages carry it
VERSION := 0.5.0

NGINX_SRC ?= /usr/share/nginx/src
# not NGINX: nginx takes a variable of that name for inherited sockets
NGINX_BINARY ?= /usr/sbin/nginx
BUILD     ?= $(CURDIR)/build
MODULE    := $(BUILD)/ngx_seadragon_module.so

# the feature set: Debian's (nginx-dev's conf_flags, in its tree or, for a
# plain upstream tree such as nginx.org's tarball, Debian 12's), plus
# NGINX_EXTRA_FLAGS (the matrix adds --with-http_v3_module where it exists)
NGINX_CONF_FLAGS  ?= $(firstword $(wildcard $(NGINX_SRC)/conf_flags) \
                       /usr/share/nginx/src/conf_flags)
NGINX_EXTRA_FLAGS ?=
PROVE     ?= prove
PROVE_ARGS ?= -j2

# Debian's own flags for nginx 1.22.1, with every warning an error
CC_OPT := -g -O2 -fPIC -fstack-protector-strong -Wformat \
          -Werror=format-security -D_FORTIFY_SOURCE=2 \
          -Wall -Wextra -Werror
LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC

SOURCES := config $(wildcard ngx_seadragon_module/*.c ngx_seadragon_module/*.h)

BUILD_PACKAGES := gcc make nginx nginx-dev libssl-dev libpcre2-dev zlib1g-dev \
                  liblmdb-dev lmdb-utils libyajl-dev libargon2-dev
TEST_PACKAGES  := libtest-base-perl libtext-diff-perl libwww-perl \
                  liblist-moreutils-perl libtest-longstring-perl \
                  libipc-run3-perl python3 curl openssl nodejs prometheus \
                  chromium
FUZZ_PACKAGES  := clang libclang-rt-14-dev
BENCH_PACKAGES := python3 haproxy wrk
DEB_PACKAGES   := debhelper dpkg-dev

# the harnesses of t/fuzz/ (fuzz_NAME.c), what each is linked with, and how
# long `make fuzz` runs each
FUZZERS        := json net store
FUZZ_TIME      ?= 60
FUZZ_CC        ?= clang
FUZZ_DIR       := $(BUILD)/fuzz
FUZZ_CFLAGS    := -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror \
                  -I ngx_seadragon_module -I t/fuzz
FUZZ_SANITIZE  := address,undefined -fno-sanitize-recover=all
CODEC_SRCS     := ngx_seadragon_module/ngx_http_seadragon_store_codec.c \
                  ngx_seadragon_module/ngx_http_seadragon_store_usage.c \
                  ngx_seadragon_module/ngx_http_seadragon_store_users.c
FUZZ_json_SRCS  := ngx_seadragon_module/ngx_http_seadragon_json.c
FUZZ_json_LIBS  := -lyajl
FUZZ_net_SRCS   := $(CODEC_SRCS)
FUZZ_net_LIBS   := -llmdb -lcrypto -largon2
FUZZ_store_SRCS := $(CODEC_SRCS)
FUZZ_store_LIBS := -llmdb -lcrypto -largon2

# make install: where (see scripts/seadragon-install); every path is
# without DESTDIR, a staging root
DESTDIR                 ?=
PREFIX                  ?= /usr
NGINX_MODULES_DIR       ?= $(PREFIX)/lib/nginx/modules
NGINX_MODULES_AVAILABLE ?= $(PREFIX)/share/nginx/modules-available
NGINX_CONF_DIR          ?= /etc/nginx
SBINDIR                 ?= $(PREFIX)/sbin
DATADIR                 ?= $(PREFIX)/share/seadragon
STORE_DIR               ?= /var/lib/seadragon/store
INSTALL_ENV := DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' \
               NGINX_MODULES_DIR='$(NGINX_MODULES_DIR)' \
               NGINX_MODULES_AVAILABLE='$(NGINX_MODULES_AVAILABLE)' \
               NGINX_CONF_DIR='$(NGINX_CONF_DIR)' SBINDIR='$(SBINDIR)' \
               DATADIR='$(DATADIR)' STORE_DIR='$(STORE_DIR)' BUILD='$(BUILD)'

.PHONY: all deps deps-build deps-fuzz test unit check-memory fuzz \
        fuzz-build fuzz-replay install uninstall soak bench bench-body \
        bench-dispatch run stop \
        clean matrix nginx-binary deb

all: $(MODULE) $(BUILD)/seadragon-store

deps: deps-build
	@scripts/install-deps $(TEST_PACKAGES)
	@# Debian's nodejs comes without npm; NodeSource's has its own
	@command -v npm >/dev/null || scripts/install-deps npm

deps-build:
	@scripts/install-deps $(BUILD_PACKAGES)

# what configure was run with: a change of tree or flags configures again
CONFIGURE_ARGS := $(NGINX_SRC) $(NGINX_CONF_FLAGS) $(NGINX_EXTRA_FLAGS) $(CC_OPT)
$(shell mkdir -p $(BUILD) && echo '$(CONFIGURE_ARGS)' \
          | cmp -s - $(BUILD)/configure.args \
          || echo '$(CONFIGURE_ARGS)' > $(BUILD)/configure.args)

# nginx-dev's configure writes a Makefile into the tree it runs in, so it
# runs in a copy of that tree inside build/
$(BUILD)/objs/Makefile: config $(BUILD)/configure.args
	@test -x $(NGINX_SRC)/configure || scripts/install-deps $(BUILD_PACKAGES)
	rm -rf $(BUILD)/nginx-src $(BUILD)/objs
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(BUILD)/nginx-src
	source $(NGINX_CONF_FLAGS) \
	  && cd $(BUILD)/nginx-src \
	  && ./configure "$${NGX_CONF_FLAGS[@]}" $(NGINX_EXTRA_FLAGS) \
	       --with-cc-opt="$(CC_OPT)" --with-ld-opt="$(LD_OPT)" \
	       --add-dynamic-module=$(CURDIR) --builddir=$(BUILD)/objs \
	       > $(BUILD)/configure.log 2>&1 \
	  || { tail -n 30 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(BUILD)/objs/Makefile $(SOURCES)
	$(MAKE) -s -f $(BUILD)/objs/Makefile -C $(BUILD)/nginx-src modules
	@# a new inode: an nginx running the old module keeps its mapping intact
	cp $(BUILD)/objs/ngx_seadragon_module.so $@.tmp && mv -f $@.tmp $@

# the operators' tool for the store, on the module's own store codec
$(BUILD)/seadragon-store: scripts/seadragon-store.c $(CODEC_SRCS) \
                          ngx_seadragon_module/ngx_http_seadragon_store_codec.h
	@mkdir -p $(BUILD)
	$(CC) $(CC_OPT) -o $@ -I ngx_seadragon_module scripts/seadragon-store.c \
	  $(CODEC_SRCS) -llmdb -lcrypto -largon2

# the unit tests' and the benchmark's include path: nginx's headers
UNIT_INCS := -I $(BUILD)/nginx-src/src/core -I $(BUILD)/nginx-src/src/event \
  -I $(BUILD)/nginx-src/src/event/modules -I $(BUILD)/nginx-src/src/os/unix \
  -I $(BUILD)/nginx-src/src/http -I $(BUILD)/nginx-src/src/http/modules \
  -I $(BUILD)/nginx-src/src/http/v2 -I $(BUILD)/nginx-src/src/event/quic \
  -I $(BUILD)/nginx-src/src/http/v3 -I $(BUILD)/objs -I ngx_seadragon_module
# the module's header and the two it includes
MODULE_H := ngx_seadragon_module/ngx_http_seadragon_module.h \
            ngx_seadragon_module/ngx_http_seadragon_zone.h \
            ngx_seadragon_module/ngx_http_seadragon_auth.h

QUEUE_SRCS := ngx_seadragon_module/ngx_http_seadragon_queue.c \
              ngx_seadragon_module/ngx_http_seadragon_queue_fair.c \
              ngx_seadragon_module/ngx_http_seadragon_queue_tenant.c

# the queue's data structure on its own, against nginx's headers
$(BUILD)/queue-test: t/unit/queue_test.c $(QUEUE_SRCS) \
                     $(MODULE_H) \
                     $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/queue_test.c $(QUEUE_SRCS)

# fair shares, affinity and model slots, on a real red-black tree
$(BUILD)/fair-test: t/unit/fair_test.c t/unit/rbtree.c $(QUEUE_SRCS) \
                    $(MODULE_H) \
                    $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/fair_test.c t/unit/rbtree.c $(QUEUE_SRCS)

# the scheduler's cost per dispatch (timings, not part of make test)
$(BUILD)/queue-bench: t/unit/queue_bench.c t/unit/rbtree.c $(QUEUE_SRCS) \
                      $(MODULE_H) \
                      $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/queue_bench.c t/unit/rbtree.c $(QUEUE_SRCS)

bench-dispatch: $(BUILD)/queue-bench
	$(BUILD)/queue-bench

# a key's limits: the window arithmetic and the zone's tree of keys
$(BUILD)/limit-test: t/unit/limit_test.c \
                     ngx_seadragon_module/ngx_http_seadragon_limit_window.c \
                     $(MODULE_H) \
                     $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/limit_test.c \
	  ngx_seadragon_module/ngx_http_seadragon_limit_window.c

# the zone's view of the resident models
$(BUILD)/resident-test: t/unit/resident_test.c \
                        ngx_seadragon_module/ngx_http_seadragon_resident.c \
                        $(MODULE_H) \
                        $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/resident_test.c \
	  ngx_seadragon_module/ngx_http_seadragon_resident.c

# the queue's history, a sample a second, for the admin page's chart
$(BUILD)/history-test: t/unit/history_test.c \
                       ngx_seadragon_module/ngx_http_seadragon_history.c \
                       $(MODULE_H) \
                       $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/history_test.c \
	  ngx_seadragon_module/ngx_http_seadragon_history.c

# the logins' tokens: HS256 JWTs made and checked (OpenSSL's HMAC, yajl)
$(BUILD)/jwt-test: t/unit/jwt_test.c \
                   ngx_seadragon_module/ngx_http_seadragon_jwt.c \
                   $(MODULE_H) \
                   $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter $(UNIT_INCS) \
	  -o $@ t/unit/jwt_test.c \
	  ngx_seadragon_module/ngx_http_seadragon_jwt.c -lyajl -lcrypto

# the store's users, JWT secrets and password hashes, through the codec
$(BUILD)/users-test: t/unit/users_test.c $(CODEC_SRCS) \
                     ngx_seadragon_module/ngx_http_seadragon_store_codec.h
	@mkdir -p $(BUILD)
	$(CC) $(CC_OPT) -I ngx_seadragon_module -o $@ t/unit/users_test.c \
	  $(CODEC_SRCS) -llmdb -lcrypto -largon2

unit: $(BUILD)/queue-test $(BUILD)/fair-test $(BUILD)/limit-test \
      $(BUILD)/resident-test $(BUILD)/history-test $(BUILD)/jwt-test \
      $(BUILD)/users-test

# Each harness twice: with libFuzzer (clang) for `make fuzz`, and with gcc
# and a replay driver for t/019-fuzz-regressions.t; both under ASan+UBSan.
define FUZZ_RULES
$(FUZZ_DIR)/fuzz-$(1): t/fuzz/fuzz_$(1).c t/fuzz/fuzz.h $(FUZZ_$(1)_SRCS) \
                       $(wildcard ngx_seadragon_module/*.h)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SANITIZE) -o $$@ \
	  t/fuzz/fuzz_$(1).c $(FUZZ_$(1)_SRCS) $(FUZZ_$(1)_LIBS)

$(FUZZ_DIR)/replay-$(1): t/fuzz/fuzz_$(1).c t/fuzz/replay.c t/fuzz/fuzz.h \
                         $(FUZZ_$(1)_SRCS) $(wildcard ngx_seadragon_module/*.h)
	@mkdir -p $(FUZZ_DIR)
	$(CC) $(FUZZ_CFLAGS) -fsanitize=$(FUZZ_SANITIZE) -o $$@ \
	  t/fuzz/fuzz_$(1).c t/fuzz/replay.c $(FUZZ_$(1)_SRCS) $(FUZZ_$(1)_LIBS)
endef

$(foreach f,$(FUZZERS),$(eval $(call FUZZ_RULES,$(f))))

deps-fuzz:
	@scripts/install-deps $(BUILD_PACKAGES) $(FUZZ_PACKAGES)

fuzz-build: deps-fuzz $(FUZZERS:%=$(FUZZ_DIR)/fuzz-%)

fuzz-replay: $(FUZZERS:%=$(FUZZ_DIR)/replay-%)

# every harness for FUZZ_TIME seconds, one after the other
fuzz: fuzz-build
	t/fuzz/run $(FUZZ_DIR) $(FUZZ_TIME) $(FUZZERS)

# nginx itself, from a full source tree (NGINX_SRC with .c files), built
# with the module's configuration so that the two fit: the matrix's binary
$(BUILD)/objs/nginx: $(BUILD)/objs/Makefile
	@test -f $(NGINX_SRC)/src/core/nginx.c \
	  || { echo "$(NGINX_SRC) has no nginx.c: headers only"; exit 1; }
	$(MAKE) -s -f $(BUILD)/objs/Makefile -C $(BUILD)/nginx-src binary

nginx-binary: $(BUILD)/objs/nginx

# Variables given on make's command line are exported to every recipe's
# environment, where a make of another tree would take them as its own:
# make run in a fresh clone (t/033) would build into this BUILD
unexport BUILD NGINX_SRC NGINX_BINARY NGINX_CONF_FLAGS NGINX_EXTRA_FLAGS

# the suites run the nginx in NGINX_BINARY with the module built in BUILD;
# a suite that runs make itself is given these, and no MAKEFLAGS: make run
# in a fresh clone (t/033) must not build into this BUILD
TEST_ENV := MAKEFLAGS= MAKELEVEL= \
            TEST_NGINX_BINARY='$(NGINX_BINARY)' TEST_NGINX_LOAD_MODULES='$(MODULE)' \
            SEADRAGON_BUILD='$(BUILD)' SEADRAGON_NGINX_SRC='$(NGINX_SRC)' \
            SEADRAGON_NGINX_EXTRA_FLAGS='$(NGINX_EXTRA_FLAGS)'

test: deps all unit fuzz-replay $(BUILD)/seadragon-store
	$(TEST_ENV) $(PROVE) $(PROVE_ARGS) -I t/lib t/

# every nginx version: Debian's, the other trees in NGINX_SOURCES (default:
# Debian 13's source and sid's nginx-dev, fetched into build/versions)
matrix: deps
	@scripts/nginx-matrix

# every nginx suite with nginx under valgrind's memcheck: any report fails
check-memory: deps all
	@scripts/install-deps valgrind
	$(TEST_ENV) TEST_NGINX_USE_VALGRIND=1 $(PROVE) -I t/lib $(filter-out t/000-harness.t \
	  t/001-queue.t t/040-limit-unit.t t/047-fair-unit.t t/048-resident-unit.t t/046-history-unit.t t/052-jwt-unit.t t/053-users-unit.t t/009-standin.t t/011-store-tool.t t/051-users-tool.t t/019-fuzz-regressions.t \
	  t/025-soak.t t/026-ollama-setup.t t/033-make-run-private.t, \
	  $(wildcard t/0*.t))

SOAK_SECONDS ?= 300

# loopback only, stops by itself; prints its figures, fails on a lost request
soak: deps all
	scripts/seadragon-soak --seconds $(SOAK_SECONDS) --nginx $(NGINX_BINARY) \
	  --build $(BUILD) --json $(BUILD)/soak.json

# Debian's packages, built as Debian builds its own libnginx-mod-* (about
# 30 s): scripts/debian/ is the packaging
deb: deps-build
	@scripts/install-deps $(DEB_PACKAGES)
	scripts/seadragon-deb $(VERSION) $(BUILD)

install: all
	@$(INSTALL_ENV) scripts/seadragon-install install

uninstall:
	@$(INSTALL_ENV) scripts/seadragon-install uninstall

# timings, never part of `make test`: about 7 minutes, writes BENCHMARKS.md
bench: all
	@scripts/install-deps $(BENCH_PACKAGES)
	python3 scripts/bench/seadragon-bench.py --build $(BUILD) --output BENCHMARKS.md

# figure 7 alone (the body check's time per MB), in seconds; writes nothing
bench-body: all
	python3 scripts/bench/seadragon-bench.py --build $(BUILD) --only 7

run: deps all
	@NGINX_BINARY=$(NGINX_BINARY) scripts/seadragon-run start

stop:
	@NGINX_BINARY=$(NGINX_BINARY) scripts/seadragon-run stop

clean:
	rm -rf $(BUILD) t/servroot
