# Seadragon: an nginx dynamic module that queues requests in front of Ollama.
#
#   make          build build/ngx_seadragon_module.so against Debian's nginx
#   make deps     install the Debian packages that are missing (as root)
#   make test     build, then run every suite in t/ with prove
#   make run      start the gateway on 127.0.0.1:8080 (make stop ends it)
#   make check-memory   the nginx suites under valgrind
#   make bench    the benchmarks against HAProxy and plain nginx (BENCHMARKS.md)

SHELL := /bin/bash

NGINX_SRC ?= /usr/share/nginx/src
NGINX     ?= /usr/sbin/nginx
BUILD     ?= $(CURDIR)/build
MODULE    := $(BUILD)/ngx_seadragon_module.so
PROVE     ?= prove
PROVE_ARGS ?= -j2

# Debian's own flags for nginx 1.22.1, with every warning an error
CC_OPT := -g -O2 -fPIC -fstack-protector-strong -Wformat \
          -Werror=format-security -D_FORTIFY_SOURCE=2 \
          -Wall -Wextra -Werror
LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC

SOURCES := config $(wildcard ngx_seadragon_module/*.c ngx_seadragon_module/*.h)

BUILD_PACKAGES := gcc make nginx nginx-dev libssl-dev libpcre2-dev zlib1g-dev \
                  liblmdb-dev lmdb-utils libyajl-dev
TEST_PACKAGES  := libtest-base-perl libtext-diff-perl libwww-perl \
                  liblist-moreutils-perl libtest-longstring-perl \
                  libipc-run3-perl python3 curl prometheus chromium
BENCH_PACKAGES := python3 haproxy wrk

.PHONY: all deps deps-build test unit check-memory bench run stop clean

all: $(MODULE) $(BUILD)/seadragon-store

deps: deps-build
	@scripts/install-deps $(TEST_PACKAGES)

deps-build:
	@scripts/install-deps $(BUILD_PACKAGES)

# nginx-dev's configure writes a Makefile into the tree it runs in, so it
# runs in a copy of that tree inside build/
$(BUILD)/objs/Makefile: config
	@test -x $(NGINX_SRC)/configure || scripts/install-deps $(BUILD_PACKAGES)
	rm -rf $(BUILD)/nginx-src $(BUILD)/objs
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(BUILD)/nginx-src
	source $(NGINX_SRC)/conf_flags \
	  && cd $(BUILD)/nginx-src \
	  && ./configure "$${NGX_CONF_FLAGS[@]}" \
	       --with-cc-opt="$(CC_OPT)" --with-ld-opt="$(LD_OPT)" \
	       --add-dynamic-module=$(CURDIR) --builddir=$(BUILD)/objs \
	       > $(BUILD)/configure.log 2>&1 \
	  || { tail -n 30 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(BUILD)/objs/Makefile $(SOURCES)
	$(MAKE) -s -f $(BUILD)/objs/Makefile -C $(BUILD)/nginx-src modules
	@# a new inode: an nginx running the old module keeps its mapping intact
	cp $(BUILD)/objs/ngx_seadragon_module.so $@.tmp && mv -f $@.tmp $@

# the operators' tool for the store, on the module's own store codec
$(BUILD)/seadragon-store: scripts/seadragon-store.c \
                          ngx_seadragon_module/ngx_http_seadragon_store_codec.c \
                          ngx_seadragon_module/ngx_http_seadragon_store_codec.h
	@mkdir -p $(BUILD)
	$(CC) $(CC_OPT) -o $@ -I ngx_seadragon_module scripts/seadragon-store.c \
	  ngx_seadragon_module/ngx_http_seadragon_store_codec.c -llmdb -lcrypto

# the queue's data structure on its own, against nginx's headers
$(BUILD)/queue-test: t/unit/queue_test.c \
                     ngx_seadragon_module/ngx_http_seadragon_queue.c \
                     ngx_seadragon_module/ngx_http_seadragon_module.h \
                     $(BUILD)/objs/Makefile
	$(CC) $(CC_OPT) -Wno-unused-parameter \
	  -I $(BUILD)/nginx-src/src/core -I $(BUILD)/nginx-src/src/event \
	  -I $(BUILD)/nginx-src/src/event/modules -I $(BUILD)/nginx-src/src/os/unix \
	  -I $(BUILD)/nginx-src/src/http -I $(BUILD)/nginx-src/src/http/modules \
	  -I $(BUILD)/nginx-src/src/http/v2 -I $(BUILD)/objs \
	  -I ngx_seadragon_module \
	  -o $@ t/unit/queue_test.c ngx_seadragon_module/ngx_http_seadragon_queue.c

unit: $(BUILD)/queue-test

test: deps all unit $(BUILD)/seadragon-store
	$(PROVE) $(PROVE_ARGS) -I t/lib t/

# every nginx suite with nginx under valgrind's memcheck: any report fails
check-memory: deps all
	@scripts/install-deps valgrind
	TEST_NGINX_USE_VALGRIND=1 $(PROVE) -I t/lib $(filter-out t/000-harness.t \
	  t/001-queue.t t/009-standin.t t/011-store-tool.t, $(wildcard t/0*.t))

# timings, never part of `make test`: about 4 minutes, writes BENCHMARKS.md
bench: all
	@scripts/install-deps $(BENCH_PACKAGES)
	python3 scripts/bench/seadragon-bench.py --build $(BUILD) --output BENCHMARKS.md

run: deps all
	@scripts/seadragon-run start

stop:
	@scripts/seadragon-run stop

clean:
	rm -rf $(BUILD) t/servroot
