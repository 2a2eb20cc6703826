# moekit: build a Qwen3-style Mixture-of-Experts transformer in C, one lesson at a time.
# `make help` lists the targets.

# ---- what to build from ------------------------------------------------------------
SRC      ?= lessons          # lesson sources: lessons (yours) or solutions
FIXTURES ?= data/fixtures    # golden fixtures the tests compare against
LESSON   ?=                  # one lesson only: 03, rope or 03-rope
SANITIZE ?=                  # 1: AddressSanitizer + UndefinedBehaviorSanitizer
WERROR   ?=                  # 1: warnings are errors (the kit's own test sets it)
TIMEOUT  ?= 10               # seconds per test
PYTHON   ?= /usr/bin/python3 # Debian's interpreter, the one with python3-torch
SEED     ?= 1234             # make fixtures: the fixtures' seed; make check SEED=n: the property checks' (default: fresh)
FULL     ?=                  # 1: make check prints every lesson in full and the max error on a pass
OUT      ?= data/fixtures    # where make fixtures writes
MODEL    ?= data/model       # the model make run uses
PROMPT   ?= The secret of a happy life is
TEXT     ?= data/corpus      # what make plot runs the model over (a file or heldout-*.txt dir)
PLOTS    ?= build/plots      # where make plot writes (DOCS=1 also refreshes docs/img)
N        ?= 227              # bytes make run generates (+ the prompt's 29: the demo's 256 positions)

SEED_FROM := $(origin SEED)
SRC      := $(strip $(SRC))
FIXTURES := $(strip $(FIXTURES))
LESSON   := $(strip $(LESSON))
SANITIZE := $(strip $(SANITIZE))
WERROR   := $(strip $(WERROR))
PYTHON   := $(strip $(PYTHON))
SEED     := $(strip $(SEED))
MODEL    := $(strip $(MODEL))
N        := $(strip $(N))
TEXT     := $(strip $(TEXT))
PLOTS    := $(strip $(PLOTS))
OUT      := $(strip $(OUT))
TIMEOUT  := $(strip $(TIMEOUT))

# ---- flags -----------------------------------------------------------------------------
# One build directory per compiler and sanitizer setting, so switching never mixes objects.
FLAVOR   := $(notdir $(CC))$(if $(SANITIZE),-san)
BUILD    := build/$(FLAVOR)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS   := -std=c11 -O2 -g -Wall -Wextra $(if $(WERROR),-Werror) $(if $(SANITIZE),$(SANFLAGS)) \
            -Iharness/include -Iharness/src -Iharness/test -Iharness/tokenizer -MMD -MP
LDFLAGS  := $(if $(SANITIZE),$(SANFLAGS))
LDLIBS   := -lm
# The tokenizer (the CLI only): NFC from libutf8proc, the split regex from PCRE2.
TOK_LIBS := -lpcre2-8 -lutf8proc
# A skeleton leaves parameters unused until the student writes the body.
LESSON_CFLAGS := -Wno-unused-parameter -Wno-unused-variable -Wno-unused-but-set-variable \
                 -Wno-unused-function

# ---- sources -----------------------------------------------------------------------------
HARNESS_SRC := $(wildcard harness/src/*.c)
CHECK_SRC   := $(filter-out harness/test/selftest_%.c harness/test/model_test.c \
                   harness/test/weights_test.c,$(wildcard harness/test/*.c))
CLI_SRC     := $(wildcard harness/cli/*.c)
TOK_SRC     := $(wildcard harness/tokenizer/*.c)
# lesson 12 needs MPI: only check-mpi and moekit-mpi build it (mk/mpi.mk)
LESSON_SRC  := $(filter-out $(SRC)/12-%,$(wildcard $(SRC)/[0-9][0-9]-*/*.c))
TREE_ID     := $(subst /,_,$(SRC))

HARNESS_OBJ := $(HARNESS_SRC:%.c=$(BUILD)/%.o)
CHECK_OBJ   := $(CHECK_SRC:%.c=$(BUILD)/%.o)
LESSON_OBJ  := $(LESSON_SRC:$(SRC)/%.c=$(BUILD)/tree-$(TREE_ID)/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/%.o)
TOK_OBJ     := $(TOK_SRC:%.c=$(BUILD)/%.o)
CHECK_BIN   := $(BUILD)/tree-$(TREE_ID)/check
CLI_BIN     := $(BUILD)/tree-$(TREE_ID)/moekit
MODEL_TEST  := $(BUILD)/tree-$(TREE_ID)/model_test
WEIGHTS_TEST := $(BUILD)/tree-$(TREE_ID)/weights_test
# `make` and `make run` use the solutions (the demo works on a fresh clone); name
# SRC=lessons on the command line to build the CLI from your own lesson files.
RUN_SRC     := $(if $(filter command line,$(origin SRC)),$(SRC),$(if $(wildcard solutions),solutions,lessons))

# SEED is make fixtures' (1234 unless given); make check passes it on only when it is given,
# and otherwise the property checks draw with a fresh seed, which the run prints.
CHECK_SEED  = $(if $(filter command line environment,$(SEED_FROM)),--seed $(SEED))
CHECK_ARGS = --tree $(SRC) --fixtures $(FIXTURES) --timeout $(TIMEOUT) $(if $(LESSON),--lesson $(LESSON)) \
             $(if $(strip $(FULL)),--full) $(CHECK_SEED)

.PHONY: all cli cli-build run plot check check-solutions check-build print-check-bin print-cli-bin \
        model-test-build print-model-test weights-test-build print-weights-test test selftest selftest-relations fixtures clean help
.DEFAULT_GOAL := all

all: $(CHECK_BIN)
	@$(if $(CLI_SRC),$(MAKE) --no-print-directory cli SRC=$(RUN_SRC))

# build/moekit: the CLI built from $(RUN_SRC)
cli: $(CLI_BIN)
	@cp $(CLI_BIN) build/moekit

cli-build: $(CLI_BIN)

# ---- compiling -------------------------------------------------------------------------------
$(BUILD)/harness/%.o: harness/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/tree-$(TREE_ID)/%.o: $(SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LESSON_CFLAGS) -c $< -o $@

$(CHECK_BIN): $(CHECK_OBJ) $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(CLI_BIN): $(CLI_OBJ) $(TOK_OBJ) $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(TOK_LIBS)

$(MODEL_TEST): $(BUILD)/harness/test/model_test.o $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# the typed weights: conversions, kernels, the typed model against float32
$(WEIGHTS_TEST): $(BUILD)/harness/test/weights_test.o $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# the self-tests need no lesson code: everything but the model loader, the typed model and
# the model's products
$(BUILD)/selftest_%: $(BUILD)/harness/test/selftest_%.o \
    $(filter-out %/model_load.o %/typed_model.o %/weights.o %/linear.o,$(HARNESS_OBJ))
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

check-build: $(CHECK_BIN)

print-check-bin:
	@echo $(CHECK_BIN)

print-cli-bin:
	@echo $(CLI_BIN)

model-test-build: $(MODEL_TEST)

print-model-test:
	@echo $(MODEL_TEST)

weights-test-build: $(WEIGHTS_TEST)

print-weights-test:
	@echo $(WEIGHTS_TEST)

# ---- the student's and the kit's checks ----------------------------------------------------
check: $(CHECK_BIN)
	@$(CHECK_BIN) $(CHECK_ARGS)

check-solutions:
	@$(MAKE) --no-print-directory check SRC=solutions

selftest: $(BUILD)/selftest_safetensors
	@$(BUILD)/selftest_safetensors

# the relation diagnoses (harness/test/relations.c) on outputs made wrong on purpose
$(BUILD)/selftest_relations: $(BUILD)/harness/test/relations.o
selftest-relations: $(BUILD)/selftest_relations
	@$(BUILD)/selftest_relations

# The kit's own test: harness self-tests, solutions pass, skeletons fail cleanly,
# every catalogued mistake is caught with its diagnosis.
test:
	@CC="$(CC)" SANITIZE="$(SANITIZE)" FIXTURES="$(FIXTURES)" MAKE="$(MAKE)" \
	    sh harness/test/kit_test.sh

fixtures:
	$(PYTHON) harness/pytorch/export_fixtures.py --seed $(SEED) --out $(OUT)
	$(PYTHON) harness/pytorch/export_bpe.py --seed $(SEED) --out $(OUT)
	$(PYTHON) harness/pytorch/export_models.py --seed $(SEED) --fixtures $(OUT) \
	    $(if $(filter data/fixtures,$(OUT)),--models data/models,--models $(OUT)/models)

# Routing load-balance plots of MODEL over TEXT (gnuplot-nox): heatmap, per language,
# balance summary, training curves. DOCS=1 copies them to docs/img.
plot:
	@$(MAKE) -s --no-print-directory cli SRC=$(RUN_SRC)
	@sh harness/plot/plot.sh build/moekit $(MODEL) $(TEXT) $(PLOTS)
	@$(if $(DOCS),mkdir -p docs/img && cp $(PLOTS)/*.png docs/img/ && echo "copied to docs/img")

# The demo: the shipped model continues a prompt (PROMPT="..." for another).
run:
	@$(MAKE) -s --no-print-directory cli SRC=$(RUN_SRC)
	@build/moekit generate --model $(MODEL) --prompt "$(PROMPT)" -n $(N)

clean:
	rm -rf build

help:
	@echo "everyone:     make run [PROMPT=...]     the demo model writes text (SRC=lessons: your model)"
	@echo "              make plot [MODEL=dir TEXT=file|dir]  routing load-balance plots (gnuplot-nox)"
	@echo "              make experiment [NAME=top-k]  the routing lab: list, or run one (make experiments: all)"
	@echo "students:     make check [LESSON=03]   test your lessons/ (one lesson: LESSON=03 or rope)"
	@echo "              make check FIXTURES=dir  test against another fixture set"
	@echo "              make check FULL=1 / SEED=n  every line and max error / replay the property checks"
	@echo "              make reset LESSON=03 [MODE=hard]  a lesson's skeleton back from git (asks first)"
	@echo "              make hard                every lesson in hard mode: signatures and contracts only"
	@echo "              make hint [LESSON=03]    the next hint, one more each time"
	@echo "              make watch               re-run the current lesson's tests on every save"
	@echo "instructors:  make grade SUBMISSION=dir, make grade-all DIR=..., make gradescope, make student-release [MODE=hard]"
	@echo "kit:          make check-solutions     the same tests on solutions/"
	@echo "              make test [SANITIZE=1]   the kit's own test (what CI runs)"
	@echo "              make fixtures [SEED=n OUT=dir]  regenerate fixtures (needs python3-torch)"
	@echo "              make readme              rewrite README.md's sample outputs from a real run"
	@echo "              make fuzz [FUZZ_SECONDS=60]  fuzz the file and command-line parsers (clang)"
	@echo "              make clean"

# Further targets, one file per area (grading, fuzzing, benchmarks ...).
include $(sort $(wildcard mk/*.mk))

-include $(shell find build -name '*.d' -type f 2>/dev/null)
