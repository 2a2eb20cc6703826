# mk/fast.mk: how the kit is compiled for speed (lesson 09), included by the Makefile.
#
#   NATIVE=1 (default)  -march=native: the compiler may use every instruction this CPU has
#                       (AVX-512 or AVX2+FMA on x86-64, NEON on arm64); lesson 09 picks its
#                       vector code from what the target offers.
#   NATIVE=0            no -march flag: the compiler's default target (plain x86-64 has no
#                       AVX, so lesson 09 compiles its scalar fallback). Objects are not
#                       rebuilt when only flags change: `make clean` first.
#   ARCH_FLAGS="..."    instead of -march=native, e.g. ARCH_FLAGS="-mavx2 -mfma".
#   OPENMP=auto|1|0     threads for lesson 09 (-fopenmp). auto (default): on when $(CC)
#                       can build an OpenMP program (gcc: libgomp; clang: libomp-14-dev),
#                       checked once per build directory.
#
# The CLI (make run) is linked so that every matmul()/matmul_tokens() call of the model
# goes through harness/bench/use_fast.c, which sends it to lesson 09's kernel once that
# lesson is written (lessons/09-fast-matmul/README.md, "How the model picks up your kernel").

NATIVE     ?= 1
OPENMP     ?= auto
NATIVE     := $(strip $(NATIVE))
ARCH_FLAGS ?= $(if $(filter 1,$(NATIVE)),-march=native)

ifeq ($(strip $(OPENMP)),auto)
OMP_PROBE := $(BUILD)/openmp-probe.txt
ifeq ($(wildcard $(OMP_PROBE)),)
$(shell mkdir -p $(BUILD) && { printf '#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n' | \
    $(CC) -fopenmp -x c - -o $(BUILD)/openmp-probe.bin >/dev/null 2>&1 && echo 1 || echo 0; } \
    >$(OMP_PROBE); rm -f $(BUILD)/openmp-probe.bin)
endif
OPENMP := $(strip $(file <$(OMP_PROBE)))
endif
OMP_FLAGS := $(if $(filter 1,$(strip $(OPENMP))),-fopenmp)

CFLAGS  += $(ARCH_FLAGS) $(OMP_FLAGS)
LDFLAGS += $(OMP_FLAGS)

# Lesson 09 at -O3: gcc unrolls the register tile completely only there (clang at -O2 too).
$(BUILD)/%/09-fast-matmul/fast_matmul.o: CFLAGS += -O3

# The CLI: matmul() and matmul_tokens() of the model go through use_fast.o.
USE_FAST_OBJ := $(BUILD)/harness/bench/use_fast.o
WRAP_MATMUL  := -Wl,--wrap=matmul -Wl,--wrap=matmul_tokens
$(CLI_BIN): $(USE_FAST_OBJ)
$(CLI_BIN): LDFLAGS += $(WRAP_MATMUL)

# The same model test, linked like the CLI (the kit test runs both).
MODEL_TEST_FAST := $(BUILD)/tree-$(TREE_ID)/model_test_fast
$(MODEL_TEST_FAST): $(BUILD)/harness/test/model_test.o $(HARNESS_OBJ) $(LESSON_OBJ) $(USE_FAST_OBJ)
	$(CC) $(LDFLAGS) $(WRAP_MATMUL) $^ -o $@ $(LDLIBS)

# The lesson checks, linked like the CLI: lessons 04-08 then run on lesson 09's kernel.
CHECK_FAST := $(BUILD)/tree-$(TREE_ID)/check_fast
$(CHECK_FAST): $(CHECK_OBJ) $(HARNESS_OBJ) $(LESSON_OBJ) $(USE_FAST_OBJ)
	$(CC) $(LDFLAGS) $(WRAP_MATMUL) $^ -o $@ $(LDLIBS)

.PHONY: fast-test-build print-fast-test print-build-flags
fast-test-build: $(MODEL_TEST_FAST) $(CHECK_FAST)

print-fast-test:
	@echo $(MODEL_TEST_FAST) $(CHECK_FAST)

print-build-flags:
	@echo "CC=$(CC) ARCH_FLAGS=$(ARCH_FLAGS) OPENMP=$(OPENMP) CFLAGS=$(CFLAGS)"
