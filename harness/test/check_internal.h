/* check_internal.h: the test context, shared by the runner and check.c/compare.c only. */
#ifndef MOEKIT_CHECK_INTERNAL_H
#define MOEKIT_CHECK_INTERNAL_H

#include <setjmp.h>

#include "check.h"

#define MAX_ALLOCS 4096

enum { REPORT_NONE, REPORT_DIAGNOSIS, REPORT_FULL };

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
};

void fixture_error(TestCtx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void ctx_free_all(TestCtx *ctx);

#endif
