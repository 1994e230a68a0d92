# The two set-up commands are `make demo` and `make check`; the rest are helpers.
BUILD      ?= build
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30

.PHONY: deps build demo check test fuzz fuzz-long crash-long bench clean

deps:
	@./scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/frost-demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# libFuzzer needs clang; the fuzz build is separate so the main build keeps gcc.
$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFROST_FUZZ=ON

fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_store_raw fuzz_store_parse fuzz_image_decode
	./scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=1800

check: test
	@if command -v clang++ >/dev/null; then $(MAKE) --no-print-directory fuzz; \
	 else echo "check: clang not found, fuzz targets skipped"; fi

# Long modes of the crash and corruption tests (minutes to hours).
crash-long: build
	FROST_LONG_TESTS=1 ./$(BUILD)/frost_store_tests --gtest_filter='Crash*:Corruption*'

bench: build
	./$(BUILD)/store_bench
	./$(BUILD)/freeze_bench
	./$(BUILD)/persist_bench

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
