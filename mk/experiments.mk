# The routing lab: experiments on the router and the experts, each a script
# harness/experiments/NAME.sh that writes a Markdown report (README.md) with tables and
# gnuplot PNGs to build/experiments/NAME/.
#   make experiment               the experiments' names, one per line
#   make experiment NAME=top-k    one experiment (SIZE=smoke: a tiny run; DOCS=1: copy the
#                                 report and its PNGs to docs/experiments/NAME/; STEPS=n:
#                                 the training experiments' steps per run)
#   make experiments              all of them

EXPERIMENTS := $(sort $(basename $(notdir $(filter-out harness/experiments/common.sh,$(wildcard harness/experiments/*.sh)))))
NAME        ?=
SIZE        ?= full
EXP_OUT     ?= build/experiments   # where the experiments write (one folder each)
EXP_OUT     := $(strip $(EXP_OUT))
NAME        := $(strip $(NAME))

.PHONY: experiment experiments

experiment:
ifeq ($(NAME),)
	@printf '%s\n' $(EXPERIMENTS)
else
	@$(if $(filter $(NAME),$(EXPERIMENTS)),,echo "make experiment: NAME=$(NAME) is not an experiment; one of: $(EXPERIMENTS)" >&2; exit 2)
	@$(MAKE) -s --no-print-directory cli-build SRC=$(RUN_SRC)
	@$(if $(REPORT_ONLY),,rm -rf $(EXP_OUT)/$(NAME))
	@MOEKIT=$$($(MAKE) -s --no-print-directory print-cli-bin SRC=$(RUN_SRC)) \
	    OUT=$(EXP_OUT)/$(NAME) SIZE=$(SIZE) MODEL=$(MODEL) PYTHON=$(PYTHON) $(if $(STEPS),STEPS=$(STEPS)) \
	    RUN_COMMAND="make experiment NAME=$(NAME)$(if $(filter-out full,$(SIZE)), SIZE=$(SIZE))$(if $(STEPS), STEPS=$(STEPS))" \
	    sh harness/experiments/$(NAME).sh
	@$(if $(DOCS),rm -rf docs/experiments/$(NAME) && mkdir -p docs/experiments/$(NAME) && \
	    cp $(EXP_OUT)/$(NAME)/README.md $(EXP_OUT)/$(NAME)/*.png docs/experiments/$(NAME)/ && \
	    echo "copied to docs/experiments/$(NAME)")
endif

experiments:
	@for n in $(EXPERIMENTS); do $(MAKE) --no-print-directory experiment NAME=$$n || exit 1; done
