# fuzz.mk: libFuzzer targets for what the kit reads from the outside world (harness/fuzz/):
# safetensors files, config.json, the moekit command line, a whole model (config +
# weights, loaded and run for two tokens), the grader's tape (what a student's code
# recorded in the sandbox) and tokenizer.json (loaded, then a text encoded and decoded).
# Needs clang and its runtime (Debian: clang,
# libclang-rt-14-dev).
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="safetensors config"]   fuzz each in turn
#   make fuzz-build                                                    just build them
#   make fuzz-regress                                                  replay every seed once
#
# Each target starts from its committed seeds (harness/fuzz/corpus/NAME, written by
# harness/test/malformed/make_corpus.py) and keeps what it finds in build/fuzz/corpus/NAME;
# a crash stops `make fuzz`, its input saved under build/fuzz/artifacts/NAME/. The log of
# each run is build/fuzz/NAME.log (harness/fuzz/run.sh prints its execs, cov and ft).

FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_TARGETS ?= safetensors config args model tape tokenizer
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := -std=c11 -g -O1 -Wall -Wextra -Werror \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -Iharness/include -Iharness/src -Iharness/cli \
                -Iharness/tokenizer
FUZZ_HDRS    := $(wildcard harness/src/*.h harness/cli/*.h harness/include/*.h)
# the model target runs the reference solutions (a student release has none: its lessons),
# lessons 01-10: the model itself (11, the tokenizer, and 12, which needs MPI, are not in it)
FUZZ_TREE    ?= $(if $(wildcard solutions),solutions,lessons)
# each target's sources besides harness/fuzz/fuzz_NAME.c
FUZZ_SRC_safetensors := harness/src/safetensors.c harness/src/json.c
FUZZ_SRC_config      := harness/src/config.c harness/src/json.c
# args.c names the weight types (weights.c), whose f32 product is the lessons' linear()
FUZZ_SRC_args        := harness/cli/args.c harness/src/json.c harness/src/weights.c \
                        harness/src/linear.c $(wildcard $(FUZZ_TREE)/0[19]-*/*.c)
FUZZ_SRC_tape        := harness/test/tape.c harness/src/file.c
FUZZ_SRC_model       := harness/src/model_load.c harness/src/config.c harness/src/safetensors.c \
                        harness/src/file.c harness/src/weights.c harness/src/typed_model.c \
                        harness/src/json.c harness/src/todo.c harness/src/linear.c \
                        $(filter-out $(FUZZ_TREE)/11-% $(FUZZ_TREE)/12-%,$(wildcard $(FUZZ_TREE)/[0-9][0-9]-*/*.c))
FUZZ_SRC_tokenizer   := harness/tokenizer/tokenizer.c harness/src/json.c harness/src/file.c
FUZZ_LIBS_tokenizer  := -lpcre2-8 -lutf8proc
# the lesson files are not the kit's to keep warning-free (a student's, a lesson in the works)
FUZZ_EXTRA_model     := -Wno-error -Wno-unused-parameter -Wno-unused-variable
FUZZ_EXTRA_tape      := -Iharness/test
FUZZ_EXTRA_args      := -Wno-error -Wno-unused-parameter

.PHONY: fuzz fuzz-build fuzz-regress

define FUZZ_RULE
$(FUZZ_DIR)/fuzz_$(1): harness/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_HDRS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_EXTRA_$(1)) $$< $(FUZZ_SRC_$(1)) -o $$@ -lm -lpthread \
	    $(FUZZ_LIBS_$(1))
endef
$(foreach t,safetensors config args model tape tokenizer,$(eval $(call FUZZ_RULE,$(t))))

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

fuzz: fuzz-build
	@sh harness/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	@sh harness/fuzz/run.sh 0 $(FUZZ_TARGETS)
