# mainstack - top-level commands. The build itself is CMake; this wraps it.
#   make          build (warnings are errors)
#   make test     build and run the whole test suite (CTest)
#   make asan     the test suite under AddressSanitizer + UBSan
#   make bench    benchmarks, each beside its baseline, one JSON line per result
#   make demo     the demo
#   make install  install into PREFIX (default /usr/local)
BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build test asan bench demo install bootstrap clean format format-check

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DMS_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

asan: bootstrap
	@cmake -S . -B $(ASAN_BUILD) -DMS_WERROR=ON -DMS_SANITIZE=ON -DMS_BUILD_BENCH=OFF \
		-DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE install

bench: bootstrap
	@cmake -S . -B $(BENCH_BUILD) -DMS_WERROR=ON -DMS_BUILD_TESTS=OFF \
		-DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	@bench/run $(BENCH_BUILD)

demo: build
	@scripts/demo $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD)
