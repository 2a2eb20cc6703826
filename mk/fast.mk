# mk/fast.mk: how the kit is compiled for speed (lesson 09), included by the Makefile.
#
#   NATIVE=1 (default)  -march=native: the compiler may use every instruction this CPU has
#                       (AVX-512 or AVX2+FMA on x86-64, NEON on arm64); lesson 09 picks its
#                       vector code from what the target offers.
#   NATIVE=0            no -march flag: the compiler's default target (plain x86-64 has no
#                       AVX, so lesson 09 compiles its scalar fallback). Objects are not
#                       rebuilt when only flags change: `make clean` first.
#   ARCH_FLAGS="..."    instead of -march=native, e.g. ARCH_FLAGS="-mavx2 -mfma".
#   OPENMP=auto|1|0     threads for lesson 09 and the token loops of lessons 04, 05, 07
#                       and 08 (-fopenmp). auto (default): on when $(CC)
#                       can build an OpenMP program (gcc: libgomp; clang: libomp-14-dev),
#                       checked once per build directory.
#
# Which kernel the model's products run on is no build option: the program chooses it
# (linear_use, harness/src/linear.c; the CLI's --matmul), and the build is the same.

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
# Without OpenMP, -fopenmp-simd: `#pragma omp parallel for` in the lessons is then ignored
# quietly (one thread), instead of warning under -Wall -Werror.
OMP_FLAGS := $(if $(filter 1,$(strip $(OPENMP))),-fopenmp,-fopenmp-simd)

CFLAGS  += $(ARCH_FLAGS) $(OMP_FLAGS)
LDFLAGS += $(OMP_FLAGS)

# Lesson 09 at -O3: gcc unrolls the register tile completely only there (clang at -O2 too).
$(BUILD)/%/09-fast-matmul/fast_matmul.o: CFLAGS += -O3

# The model's other loops (lessons 02-08, 10) at -O3, where gcc vectorizes loops, and with
# permission to reorder float sums. Float addition is not associative, so without it the
# compiler must add the terms of a dot product (attention's q . k, rmsnorm's sum of
# squares) one at a time, in source order; -fassociative-math lets it keep 16 partial sums
# in one vector register instead (it needs -fno-signed-zeros -fno-trapping-math). Results
# move in the last bits, well inside every test's tolerance; inf and NaN behave as before.
# Lesson 01 keeps plain -O2: it is the baseline lesson 09 is measured against, and lesson
# 09 does the same reordering by hand.
LESSON_OPT_FLAGS := -O3 -fassociative-math -fno-signed-zeros -fno-trapping-math
$(filter-out %/01-matmul/matmul.o %/09-fast-matmul/fast_matmul.o,$(LESSON_OBJ)): \
    CFLAGS += $(LESSON_OPT_FLAGS)

.PHONY: print-arch-flags print-build-flags
print-arch-flags:
	@echo $(ARCH_FLAGS)

print-build-flags:
	@echo "CC=$(CC) ARCH_FLAGS=$(ARCH_FLAGS) OPENMP=$(OPENMP) CFLAGS=$(CFLAGS)"
