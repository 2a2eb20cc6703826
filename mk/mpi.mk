# mk/mpi.mk: lesson 12 (expert parallelism) and the CLI across ranks, with MPI.
#
# Where mpicc is found (Open MPI: apt-get install openmpi-bin libopenmpi-dev), `make check`
# also builds check-mpi next to the check program: lesson 12's code and the worker the
# runner starts once under mpirun for all of lesson 12's cases
# (harness/test/mpi/ep_worker.c). Without it lesson 12 says
# "skipped" with the install line, and everything else builds as before.

MPICC       := $(shell command -v mpicc 2>/dev/null)
# the compiler's flags from Open MPI's wrapper, so CC=clang and SANITIZE=1 still apply
MPI_CFLAGS  := $(if $(MPICC),$(shell $(MPICC) --showme:compile 2>/dev/null))
MPI_LIBS    := $(if $(MPICC),$(shell $(MPICC) --showme:link 2>/dev/null))

EP_SRC      := $(wildcard $(SRC)/12-*/*.c)
EP_OBJ      := $(EP_SRC:$(SRC)/%.c=$(BUILD)/tree-$(TREE_ID)/mpi/%.o)
EP_WORKER   := $(BUILD)/harness/test/mpi/ep_worker.o
CHECK_MPI   := $(BUILD)/tree-$(TREE_ID)/check-mpi

$(BUILD)/tree-$(TREE_ID)/mpi/%.o: $(SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) $(LESSON_CFLAGS) -c $< -o $@

$(EP_WORKER): harness/test/mpi/ep_worker.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@

# the check program's objects without its main, and every lesson's
$(CHECK_MPI): $(EP_WORKER) $(filter-out %/check_main.o,$(CHECK_OBJ)) $(HARNESS_OBJ) $(LESSON_OBJ) $(EP_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(MPI_LIBS)

# Lesson 12 that does not compile must not stop the other lessons' tests (nor the
# grader's build): make says why, check-mpi is removed, and the runner reports lesson 12
# as not built.
.PHONY: check-mpi-build check-mpi-link
check-mpi-build:
	@$(if $(MPICC),$(if $(EP_SRC),$(MAKE) --no-print-directory check-mpi-link || \
	    { rm -f $(CHECK_MPI); echo "make: lesson 12 did not build (above): its tests are skipped" >&2; }))

# (a goal with a recipe: make says nothing when it is up to date)
check-mpi-link: $(CHECK_MPI)
	@:

check check-build: check-mpi-build

# build/moekit-mpi: the CLI (main renamed) with the MoE layers across ranks
# (harness/cli/mpi/moekit_mpi.c wraps model_load_dir, model_forward and moe_forward at
# link time)
CLI_MPI     := $(BUILD)/tree-$(TREE_ID)/moekit-mpi
CLI_MPI_OBJ := $(BUILD)/harness/cli/mpi/moekit_main.o $(BUILD)/harness/cli/mpi/moekit_mpi.o

$(BUILD)/harness/cli/mpi/moekit_main.o: harness/cli/moekit.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Dmain=moekit_main -c $< -o $@

$(BUILD)/harness/cli/mpi/moekit_mpi.o: harness/cli/mpi/moekit_mpi.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(CLI_MPI): $(CLI_MPI_OBJ) $(filter-out %/moekit.o,$(CLI_OBJ)) $(TOK_OBJ) $(HARNESS_OBJ) $(LESSON_OBJ) $(EP_OBJ)
	$(CC) $(LDFLAGS) -Wl,--wrap=model_load_dir -Wl,--wrap=model_forward -Wl,--wrap=moe_forward $^ -o $@ \
	    $(LDLIBS) $(TOK_LIBS) $(MPI_LIBS)

.PHONY: cli-mpi cli-mpi-build print-cli-mpi-bin
cli-mpi:
	@$(if $(MPICC),,echo "moekit-mpi needs MPI: sudo apt-get install -y openmpi-bin libopenmpi-dev" >&2; exit 1)
	@$(MAKE) --no-print-directory cli-mpi-build SRC=$(RUN_SRC)
	@cp $(BUILD)/tree-$(subst /,_,$(RUN_SRC))/moekit-mpi build/moekit-mpi

cli-mpi-build: $(CLI_MPI)

print-cli-mpi-bin:
	@echo $(CLI_MPI)

# make plot-ep [NP=4 MODEL=dir TEXT=file]: each rank's share of every MoE layer's rows
NP      ?= 4
EP_TEXT := $(if $(filter data/corpus,$(TEXT)),data/corpus/heldout-en.txt,$(TEXT))
.PHONY: plot-ep
plot-ep:
	@$(MAKE) -s --no-print-directory cli-mpi
	@sh harness/plot/ep_load.sh build/moekit-mpi $(MODEL) $(EP_TEXT) $(NP) $(PLOTS)
