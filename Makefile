# Teatree's front door. Every target installs what it needs first (scripts/bootstrap is
# quick when everything is present), then configures and builds with CMake + Ninja.
#
#   make demo     build, check every dependency, run teatree serve on the sales example
#   make test     build and run every test (C++ with CTest, Python with pytest, the
#                 Kubernetes tests against a real API server), then each fuzz target for a
#                 few seconds from its seed corpus (preset fuzz)
#   make kubernetes-testenv  install the Kubernetes test environment (kube-apiserver built
#                 once from the Go module proxy, etcd, kubectl) without starting it
#   make test-asan  the tests that start serve, managers and nats-server, on a build with
#                 AddressSanitizer and UndefinedBehaviorSanitizer (CI runs it after make test)
#   make fuzz     build the libFuzzer targets (clang, ASan + UBSan) and run each for
#                 FUZZ_SECONDS (default 60); see docs/security.md
#   make install PREFIX=DIR  build, then lay out DIR/bin/teatree, DIR/lib and
#                 DIR/libexec/teatree (stripped; movable: see docs/deploy.md)
#   make image    build, then write build/teatree-image.tar: an OCI image made from scratch
#                 with umoci (docs/deploy.md)
#   make bench    build and run the benchmarks in bench/
#   make format   reformat the C++ sources with clang-format
#   make lint     clang-format check and clang-tidy on the C++ sources
#   make clean    remove the build directory

export TEATREE_CACHE ?= $(HOME)/.cache/teatree
PRESET ?= release
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
FUZZ_DIR = build-fuzz
FUZZ_SECONDS ?= 60
SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null || find src bench -name '*.cc' -o -name '*.h')

.PHONY: all bootstrap configure build fuzz-build demo test test-asan fuzz bench install image format \
	kubernetes-testenv \
	format-check lint clean

all: build

bootstrap:
	@scripts/bootstrap

# Once configured, Ninja re-runs CMake by itself whenever a CMakeLists.txt changes.
$(BUILD_DIR)/build.ninja:
	@cmake --preset $(PRESET) -DTEATREE_CACHE=$(TEATREE_CACHE) >$(BUILD_DIR).configure.log 2>&1 \
	  || (cat $(BUILD_DIR).configure.log; exit 1)

configure: bootstrap $(BUILD_DIR)/build.ninja

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The fuzz targets: clang with AddressSanitizer and UndefinedBehaviorSanitizer, only the
# modules they need, in their own build directory.
$(FUZZ_DIR)/build.ninja:
	@cmake --preset fuzz -DTEATREE_CACHE=$(TEATREE_CACHE) >$(FUZZ_DIR).configure.log 2>&1 \
	  || (cat $(FUZZ_DIR).configure.log; exit 1)

fuzz-build: bootstrap $(FUZZ_DIR)/build.ninja
	@cmake --build $(FUZZ_DIR) -j $(JOBS)

PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD_DIR) --prefix $(PREFIX) --strip

image: build
	@scripts/image $(BUILD_DIR) $(BUILD_DIR)/teatree-image.tar

DEMO_DATA = $(BUILD_DIR)/demo-data
TEATREE = $(BUILD_DIR)/bin/teatree

demo: build
	@echo "== teatree doctor: every dependency, proven by use"
	@$(TEATREE) doctor
	@echo
	@scripts/demo $(TEATREE) $(DEMO_DATA)

# The first run builds kube-apiserver (about 10 minutes); later runs find it in the cache.
kubernetes-testenv: bootstrap
	@scripts/kubernetes-testenv --install-only

test: build kubernetes-testenv
	@ctest --test-dir $(BUILD_DIR) -j $(JOBS) --output-on-failure --timeout 900
	@$(MAKE) --no-print-directory fuzz-build
	@ctest --test-dir $(FUZZ_DIR) -j $(JOBS) --output-on-failure

fuzz: fuzz-build
	@scripts/fuzz $(FUZZ_DIR) $(FUZZ_SECONDS)

# Memory errors and undefined behaviour in the processes users run fail the run: the
# integration tests and the serve test, against a sanitized teatree binary. Leak checks are
# off: the third-party libraries' (nats.c, Arrow, DuckDB) process-lifetime allocations would
# drown ours.
ASAN_DIR = build-asan
ASAN_TARGETS = teatree apply_crash_test queue_test queue_crash_test read_path_test
# The kill -9 tests whose timing assumes an optimised build (the Arrow engine's 10,000
# requests, a manager killed 20 times mid-batch) run on the release build only.
ASAN_TESTS = ^(cli[.]serve|Engines/StagingTest[.].*/duckdb|Engines/ApplyCrashTest[.].*/duckdb|QueueTest[.]|ReadPathTest[.]|QueueCrashTest[.](KillNineOfNatsServer|ARequestThatKills))
test-asan: bootstrap
	@test -f $(ASAN_DIR)/build.ninja || cmake --preset asan -DTEATREE_CACHE=$(TEATREE_CACHE) \
	  >$(ASAN_DIR).configure.log 2>&1 || (cat $(ASAN_DIR).configure.log; exit 1)
	@cmake --build $(ASAN_DIR) -j $(JOBS) --target $(ASAN_TARGETS)
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_DIR) -j $(JOBS) --output-on-failure --timeout 1200 \
	  -R '$(ASAN_TESTS)'

bench: build
	@for b in $(BUILD_DIR)/bench/*; do echo "== $$b"; "$$b" || exit 1; done

format: bootstrap
	@clang-format -i $(SOURCES)

format-check: bootstrap
	@clang-format --dry-run -Werror $(SOURCES)

lint: format-check configure
	@run-clang-tidy -quiet -p $(BUILD_DIR) -j $(JOBS) '$(CURDIR)/(src|bench)/.*\.cc$$' >$(BUILD_DIR).lint.log 2>&1 \
	  || (grep -E 'warning:|error:' $(BUILD_DIR).lint.log; exit 1)
	@echo "lint: clean"

clean:
	@rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log $(BUILD_DIR).lint.log \
	  $(FUZZ_DIR) $(FUZZ_DIR).configure.log $(ASAN_DIR) $(ASAN_DIR).configure.log
