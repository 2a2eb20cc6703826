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
SEED     ?= 1234             # fixture seed (make fixtures)
OUT      ?= data/fixtures    # where make fixtures writes

SRC      := $(strip $(SRC))
FIXTURES := $(strip $(FIXTURES))
LESSON   := $(strip $(LESSON))
SANITIZE := $(strip $(SANITIZE))
WERROR   := $(strip $(WERROR))
PYTHON   := $(strip $(PYTHON))
SEED     := $(strip $(SEED))
OUT      := $(strip $(OUT))
TIMEOUT  := $(strip $(TIMEOUT))

# ---- flags -----------------------------------------------------------------------------
# One build directory per compiler and sanitizer setting, so switching never mixes objects.
FLAVOR   := $(notdir $(CC))$(if $(SANITIZE),-san)
BUILD    := build/$(FLAVOR)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS   := -std=c11 -O2 -g -Wall -Wextra $(if $(WERROR),-Werror) $(if $(SANITIZE),$(SANFLAGS)) \
            -Iharness/include -Iharness/src -Iharness/test -MMD -MP
LDFLAGS  := $(if $(SANITIZE),$(SANFLAGS))
LDLIBS   := -lm
# A skeleton leaves parameters unused until the student writes the body.
LESSON_CFLAGS := -Wno-unused-parameter -Wno-unused-variable -Wno-unused-but-set-variable \
                 -Wno-unused-function

# ---- sources -----------------------------------------------------------------------------
HARNESS_SRC := $(wildcard harness/src/*.c)
CHECK_SRC   := $(filter-out harness/test/selftest_%.c,$(wildcard harness/test/*.c))
LESSON_SRC  := $(wildcard $(SRC)/[0-9][0-9]-*/*.c)
TREE_ID     := $(subst /,_,$(SRC))

HARNESS_OBJ := $(HARNESS_SRC:%.c=$(BUILD)/%.o)
CHECK_OBJ   := $(CHECK_SRC:%.c=$(BUILD)/%.o)
LESSON_OBJ  := $(LESSON_SRC:$(SRC)/%.c=$(BUILD)/tree-$(TREE_ID)/%.o)
CHECK_BIN   := $(BUILD)/tree-$(TREE_ID)/check

CHECK_ARGS = --tree $(SRC) --fixtures $(FIXTURES) --timeout $(TIMEOUT) $(if $(LESSON),--lesson $(LESSON))

.PHONY: all check check-solutions check-build print-check-bin test selftest fixtures clean help
.DEFAULT_GOAL := all

all: $(CHECK_BIN)
	@$(MAKE) --no-print-directory check-build SRC=solutions

# ---- compiling -------------------------------------------------------------------------------
$(BUILD)/harness/%.o: harness/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/tree-$(TREE_ID)/%.o: $(SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LESSON_CFLAGS) -c $< -o $@

$(CHECK_BIN): $(CHECK_OBJ) $(HARNESS_OBJ) $(LESSON_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/selftest_%: $(BUILD)/harness/test/selftest_%.o $(HARNESS_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

check-build: $(CHECK_BIN)

print-check-bin:
	@echo $(CHECK_BIN)

# ---- the student's and the kit's checks ----------------------------------------------------
check: $(CHECK_BIN)
	@$(CHECK_BIN) $(CHECK_ARGS)

check-solutions:
	@$(MAKE) --no-print-directory check SRC=solutions

selftest: $(BUILD)/selftest_safetensors
	@$(BUILD)/selftest_safetensors

# The kit's own test: harness self-tests, solutions pass, skeletons fail cleanly,
# every catalogued mistake is caught with its diagnosis.
test:
	@CC="$(CC)" SANITIZE="$(SANITIZE)" FIXTURES="$(FIXTURES)" MAKE="$(MAKE)" \
	    sh harness/test/kit_test.sh

fixtures:
	$(PYTHON) harness/pytorch/export_fixtures.py --seed $(SEED) --out $(OUT)

clean:
	rm -rf build

help:
	@echo "students:     make check [LESSON=03]   test your lessons/ (one lesson: LESSON=03 or rope)"
	@echo "              make check FIXTURES=dir  test against another fixture set"
	@echo "kit:          make check-solutions     the same tests on solutions/"
	@echo "              make test [SANITIZE=1]   the kit's own test (what CI runs)"
	@echo "              make fixtures [SEED=n OUT=dir]  regenerate fixtures (needs python3-torch)"
	@echo "              make clean"

-include $(shell find build -name '*.d' 2>/dev/null)
