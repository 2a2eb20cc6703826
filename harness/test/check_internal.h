/* check_internal.h: the test context, shared by the runner and check.c/compare.c only. */
#ifndef MOEKIT_CHECK_INTERNAL_H
#define MOEKIT_CHECK_INTERNAL_H

#include <setjmp.h>
#include <stdio.h>

#include "check.h"

#define MAX_ALLOCS 4096

enum { REPORT_NONE, REPORT_DIAGNOSIS, REPORT_FULL };

/* Who runs a test (see "what the student's code produced" in check.h):
 *   ROLE_CHECK  make check: the student's code, the whole fixture, the verdict here;
 *   ROLE_RUN    the grader's sandbox: the student's code, the inputs only; records what
 *               the student's functions produced on the tape and stops at the first
 *               expected value the test reads;
 *   ROLE_JUDGE  the grader's own process: the kit's solutions, the whole fixture; reads
 *               the student's outputs back from the tape and gives the verdict;
 *   ROLE_STRIP  the grader, before the sandbox: the solutions, the whole fixture; notes
 *               which tensors each test reads as expected values, so they can be left out
 *               of the sandbox's fixture. */
typedef enum { ROLE_CHECK, ROLE_RUN, ROLE_JUDGE, ROLE_STRIP } Role;

/* longjmp values on ctx->bail */
enum { BAIL_FIXTURE = 1, BAIL_RECORDED = 2 };

#define MAX_NAMES 512

typedef struct {
    int n;
    char *names[MAX_NAMES];
} NameSet;

struct TapeSection; /* tape.h */

struct TestCtx {
    const LessonDef *lesson;
    const SafeTensors *fx;
    const char *fixture_path;
    const char *case_id;
    const char *title; /* <case>/title, or the id */
    int verbose;       /* REPORT_FULL: the whole story of a failure; REPORT_DIAGNOSIS: only
                        * the named mistake, if any (a later failure of a lesson whose first
                        * failure had none); REPORT_NONE: the status line only */
    jmp_buf bail;      /* fixture_error jumps here: TEST_ERROR */
    char prefix[128];  /* fx_prefix's "<case>/" */
    void *allocs[MAX_ALLOCS];
    int n_allocs;
    struct {
        void (*fn)(void *);
        void *arg;
    } cleanups[16];
    int n_cleanups;
    Role role;
    FILE *tape;                          /* ROLE_RUN: where observe() writes */
    const struct TapeSection *recorded;  /* ROLE_JUDGE: this test's record, or NULL */
    NameSet *inputs, *expected;          /* ROLE_STRIP: names read each way */
    int full;                            /* make check FULL=1: the max error even on a pass */
    unsigned long seed;                  /* the run's seed for the property checks */
    unsigned long long rng;              /* this test's generator: the seed, test and case */
};

void fixture_error(TestCtx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void ctx_free_all(TestCtx *ctx);
void nameset_add(NameSet *s, const char *name);
int nameset_has(const NameSet *s, const char *name);
void nameset_free(NameSet *s);

#endif
