# mk/grade.mk: grading a class (instructors) and the student's helpers (hint, watch).
# docs/instructors.md tells how to run a course with these.
#
#   make grade SUBMISSION=dir|file.tar.gz [FIXTURES=dir] [LESSONS="01 02"] [RESULTS=dir]
#   make grade-all DIR=submissions/ [CSV=file]   one CSV row per student
#   make gradescope [FIXTURES=dir]               the Gradescope autograder zip
#   make student-release [MODE=hard]             the kit without solutions/, as a tarball
#   make hint [LESSON=03]                        one more hint each time
#   make watch [LESSON=03]                       re-run the tests on every save
#   make reset LESSON=03|all [MODE=hard] [FORCE=1]  a lesson's skeleton back (asks first)
#   make hard                                    every lesson's hard-mode skeleton (asks first)

# what to grade, and how (TIMEOUT and FIXTURES come from the top Makefile)
SUBMISSION ?=
DIR        ?=
# where a grade goes: build/grade/<student>/ unless RESULTS=dir
RESULTS    ?=
# the points table
POINTS     ?= harness/grade/points.tsv
# grade only these lessons ("01 02 03"); empty: every lesson in the points table
LESSONS    ?=
# lessons graded at the same time
JOBS       ?= 2
# Gradescope visibility of the results: visible, hidden, after_due_date, after_published
VISIBILITY ?= visible
# the name a grade is filed under (default: the submission's file or directory name)
STUDENT    ?=
# after this many tests of a lesson time out, its other tests are not run
MAX_TIMEOUTS ?= 3
# 1: grade without the sandbox (where bubblewrap cannot run; only for code you trust)
UNSAFE     ?=
# the address space a test's process may use in the sandbox, in MiB
SANDBOX_MEMORY_MB ?= 2048
# make grade-all writes the class here
CSV        ?= build/grade/grades.csv
# make student-release writes this tarball
RELEASE    ?= build/release/moekit-student.tar.gz
# the skeletons make student-release and make reset give out: normal (with TODO comments
# that guide) or hard (signatures and contracts only: harness/student/hard.awk)
MODE       ?= normal
# make reset: 1 overwrites a lesson's changes without asking
FORCE      ?=

GRADE_REPORT := $(BUILD)/grade_report
GRADE_ENV = MAKE="$(MAKE)" CC="$(CC)" FIXTURES="$(FIXTURES)" TIMEOUT="$(TIMEOUT)" \
            POINTS="$(POINTS)" LESSONS="$(LESSONS)" JOBS="$(JOBS)" VISIBILITY="$(VISIBILITY)" \
            MAX_TIMEOUTS="$(MAX_TIMEOUTS)" PROPERTY_SEED="$(PROPERTY_SEED)" UNSAFE="$(UNSAFE)" SANDBOX_MEMORY_MB="$(SANDBOX_MEMORY_MB)"
HAVE_GRADER = [ -f harness/grade/grade.sh ] && [ -d solutions ] || { \
    echo "make $@ is for instructors: it grades against solutions/, which a student release"; \
    echo "leaves out. To test your own lessons: make check"; exit 2; }

.PHONY: grade grade-all gradescope student-release hint watch reset hard grade-vars grade-tools \
        grade-flags

$(GRADE_REPORT): $(BUILD)/harness/grade/grade_report.o $(BUILD)/harness/src/json.o \
                 $(BUILD)/harness/src/file.o
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# the grader's system-call filter for a test's process (harness/grade/seccomp_filter.c)
SECCOMP_FILTER := $(BUILD)/seccomp_filter
$(SECCOMP_FILTER): harness/grade/seccomp_filter.c
	$(CC) -std=c11 -O2 -Wall -Wextra $(if $(WERROR),-Werror) $< -o $@ -lseccomp

grade-tools: $(GRADE_REPORT) $(SECCOMP_FILTER)

# How `make check` compiles each lesson file of SRC, one line each: "NN-name/file.c<TAB>flags"
# (without -MMD -MP -Werror). Read from make's own dry run of the lesson objects, so that
# grading uses exactly make check's flags, the per-lesson ones of mk/fast.mk included
# (lesson 12's: check-mpi's, with mpicc's, where there is one; mk/mpi.mk).
grade-flags:
	@$(MAKE) -n -B --no-print-directory $(LESSON_OBJ) $(EP_OBJ) | awk -v cc='$(CC) ' -v src='$(SRC)/' ' \
	    index($$0, cc) != 1 { next } \
	    { n = split(substr($$0, length(cc) + 1), w, " "); f = ""; file = ""; \
	      for (i = 1; i <= n; i++) { \
	          if (w[i] == "-c" && index(w[i + 1], src) == 1) { file = substr(w[i + 1], length(src) + 1); break } \
	          if (w[i] != "-MMD" && w[i] != "-MP" && w[i] != "-Werror") f = f (f == "" ? "" : " ") w[i] }; \
	      if (file != "") print file "\t" f }'

# What harness/grade/grade.sh needs to build one lesson against the solutions' objects
# (run with SRC=solutions, once without and once with SANITIZE=1); the compile flags of
# each lesson file come from grade-flags.
grade-vars:
	@echo "G_CC='$(CC)'"
	@echo "G_LDFLAGS='$(LDFLAGS)'"
	@echo "G_LDLIBS='$(LDLIBS)'"
	@echo "G_BASE_OBJ='$(CHECK_OBJ) $(HARNESS_OBJ)'"
	@echo "G_TREE_OBJ='$(LESSON_OBJ)'"
	@echo "G_CHECK='$(CHECK_BIN)'"
	@echo "G_REPORT='$(GRADE_REPORT)'"
	@echo "G_SECCOMP='$(SECCOMP_FILTER)'"
	@echo "G_MPICC='$(MPICC)'"
	@echo "G_MPI_CFLAGS='$(MPI_CFLAGS)'"
	@echo "G_MPI_LIBS='$(MPI_LIBS)'"
	@echo "G_EP_WORKER='$(EP_WORKER)'"

grade:
	@$(HAVE_GRADER)
	@$(GRADE_ENV) SUBMISSION="$(SUBMISSION)" RESULTS="$(RESULTS)" STUDENT="$(STUDENT)" \
	    sh harness/grade/grade.sh

grade-all:
	@$(HAVE_GRADER)
	@$(GRADE_ENV) DIR="$(DIR)" CSV="$(CSV)" sh harness/grade/grade_all.sh

gradescope:
	@$(HAVE_GRADER)
	@$(GRADE_ENV) sh harness/grade/gradescope.sh

student-release:
	@$(HAVE_GRADER)
	@MAKE="$(MAKE)" RELEASE="$(RELEASE)" MODE="$(strip $(MODE))" sh harness/grade/release.sh

hint:
	@MAKE="$(MAKE)" CC="$(CC)" LESSON="$(LESSON)" sh harness/student/hint.sh

watch:
	@MAKE="$(MAKE)" CC="$(CC)" LESSON="$(LESSON)" SANITIZE="$(SANITIZE)" FIXTURES="$(FIXTURES)" \
	    sh harness/student/watch.sh

reset:
	@LESSON="$(LESSON)" MODE="$(strip $(MODE))" FORCE="$(strip $(FORCE))" sh harness/student/reset.sh

hard:
	@LESSON=all MODE=hard FORCE="$(strip $(FORCE))" sh harness/student/reset.sh
