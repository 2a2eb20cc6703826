# mk/bench.mk: `make bench`, lesson 09's kernels and the whole model against lesson 01,
# OpenBLAS and the PyTorch reference (harness/bench/). Prints a table and writes
# build/bench.json; every figure is a ratio of things timed in the same run.
#
#   make bench [MODEL=data/model] [BENCH_ARGS="--reps 7 --prompt 64 --decode 128"]
#   make bench BENCH_ARGS=--quick     a shorter run (3 rounds, no big squares)
#   make bench BENCH_ARGS=--no-torch  without PyTorch
#
# Built from the solutions (like `make run`; SRC=lessons for yours), with the flags of
# mk/fast.mk (-march=native, OpenMP). OpenBLAS (libopenblas-dev) and PyTorch
# (python3-torch) are optional: without them those ratios say "skipped" and why. The bench
# is not a test: it never fails on speed. expert_scaling builds synthetic models past the
# L3 cache in memory: about 1 GB, for a few seconds. default_vs_1t_* start a spinning child
# process (a busy machine) and kill it again.
#
# Then llama.cpp on the same weights (harness/bench/llamacpp.py, docs/bench-llamacpp.md):
# npm installs node-llama-cpp@3.21.1 into build/llamacpp/ (pinned, install scripts off:
# its prebuilt CPU libraries, nothing downloaded or compiled besides), a synthetic
# Qwen3-MoE is written there once with its GGUF conversions (1.6 GB in f32 and 3 GB of
# GGUF; --quick: a few MB), and moekit f32 is timed against llama.cpp f32, f16, bf16 and
# Q8_0 at 1 and 2 threads. Skipped with one line without npm. Fails only when moekit and
# llama.cpp f32 decode different greedy ids: never on speed.
#
#   make bench-llamacpp [LLAMACPP_ARGS="--rounds 5 --prompt 64 --decode 128"]   only that part
#   make bench-llamacpp LLAMACPP_ARGS=--real   Qwen3-30B-A3B's layer shape in bf16, q8_0 and
#       q4_0 at 2 and 4 layers (about 30 GB of files under build/llamacpp/, written once),
#       extrapolated to its 48 layers; build/bench-llamacpp.json

BENCH_ARGS ?=
BENCH_BIN  := $(BUILD)/tree-$(TREE_ID)/bench
BENCH_OBJ  := $(BUILD)/harness/bench/bench.o

# OpenBLAS: the header and the library, checked once per build directory
BLAS_PROBE := $(BUILD)/openblas-probe.txt
ifneq ($(filter bench bench-build,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(BLAS_PROBE)),)
$(shell mkdir -p $(BUILD) && { printf '#include <cblas.h>\nint main(void) { float a = 1, b = 1, c = 0; cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1); return c != 1; }\n' | \
    $(CC) -x c - -o $(BUILD)/openblas-probe.bin -lopenblas >/dev/null 2>&1 && echo 1 || echo 0; } \
    >$(BLAS_PROBE); rm -f $(BUILD)/openblas-probe.bin)
endif
HAVE_OPENBLAS := $(strip $(file <$(BLAS_PROBE)))
endif

$(BENCH_OBJ): CFLAGS += $(if $(filter 1,$(HAVE_OPENBLAS)),-DHAVE_OPENBLAS)

$(BENCH_BIN): $(BENCH_OBJ) $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(if $(filter 1,$(HAVE_OPENBLAS)),-lopenblas)

# llama.cpp on the same weights (harness/bench/llamacpp.py): the kit's side
MOEKIT_GEN := $(BUILD)/tree-$(TREE_ID)/moekit_gen
$(BUILD)/harness/bench/moekit_gen.o: CFLAGS += -Iharness/cli # quantize.h: moekit quantize's writer
$(MOEKIT_GEN): $(BUILD)/harness/bench/moekit_gen.o $(BUILD)/harness/cli/quantize.o \
               $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

.PHONY: bench bench-build print-bench-bin bench-llamacpp bench-llamacpp-run
bench-build: $(BENCH_BIN) $(MOEKIT_GEN)

print-bench-bin:
	@echo $(BENCH_BIN)
	@echo $(MOEKIT_GEN)

bench:
	@$(MAKE) -s --no-print-directory bench-build SRC=$(RUN_SRC)
	@$(MAKE) -s --no-print-directory print-bench-bin SRC=$(RUN_SRC) >build/.bench-bin
	@"$$(head -1 build/.bench-bin)" --model $(MODEL) --python $(PYTHON) --json build/bench.json $(BENCH_ARGS)
	@echo; $(MAKE) -s --no-print-directory tokenizer-bench
	@$(MAKE) -s --no-print-directory bench-llamacpp-run

# only the llama.cpp part (it needs `make bench-build` first; `make bench` runs both)
bench-llamacpp:
	@$(MAKE) -s --no-print-directory bench-build SRC=$(RUN_SRC)
	@$(MAKE) -s --no-print-directory print-bench-bin SRC=$(RUN_SRC) >build/.bench-bin
	@$(MAKE) -s --no-print-directory bench-llamacpp-run

bench-llamacpp-run:
	@$(PYTHON) harness/bench/llamacpp.py --moekit "$$(sed -n 2p build/.bench-bin)" --cc $(CC) \
	    --json build/bench-llamacpp.json $(filter --quick,$(BENCH_ARGS)) $(LLAMACPP_ARGS)
