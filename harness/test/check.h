/*
 * check.h: what a lesson's tests are written with.
 *
 * A test is one function of a lesson run on one fixture case. It reads the case's
 * inputs and parameters (fx_*), calls the student's function on fresh buffers
 * (out_buffer: NaN-filled, so "wrote nothing" is visible), and compares the result with
 * the golden output (expect_close), which also names known mistakes.
 */
#ifndef MOEKIT_CHECK_H
#define MOEKIT_CHECK_H

#include <stddef.h>

#include "safetensors.h"

typedef enum { TEST_PASS = 0, TEST_FAIL = 1, TEST_TODO = 2, TEST_ERROR = 3 } TestStatus;

typedef struct TestCtx TestCtx;

typedef struct {
    const char *func;   /* the student's function, as shown in reports: "rope" */
    const char *prefix; /* the cases it runs on: those whose id starts with this */
    TestStatus (*run)(TestCtx *ctx);
} TestDef;

typedef struct {
    const char *id;       /* "03" */
    const char *name;     /* "rope" */
    const char *file;     /* "rope.c": the file the student edits */
    const char *requires; /* earlier lessons its tests call into: "010203" */
    const TestDef *tests; /* terminated by {0} */
} LessonDef;

/* The lessons the runner knows, in order (lessons.c); the first CORE_LESSONS of them make
 * the model, the rest (09 fast matmul, 10 routing) are optional. */
extern const LessonDef *const LESSONS[];
extern const int CORE_LESSONS;

/* ------------------------------------------------------------------------------------
 * reading the case
 * ---------------------------------------------------------------------------------- */

/* The tensor <case>/<name> as float32 (converted from F16/BF16), owned by ctx. Aborts the
 * test with TEST_ERROR (a fixture problem, not the student's) when it is missing or its
 * element count is not n (n < 0: any count; *count gets it when count is non-NULL). */
const float *fx_tensor(TestCtx *ctx, const char *name, long n, long *count);
/* The I32 tensor <case>/<name> of n values, owned by ctx. */
const int *fx_ints(TestCtx *ctx, const char *name, long n);
/* The case's metadata <case>/<param> as text (a fixture error when absent). */
const char *fx_meta(TestCtx *ctx, const char *param);
/* The fixture file, and "<case>/", the prefix of the case's tensor names: for tests that
 * hand a whole case to a loader. */
const SafeTensors *fx_file(TestCtx *ctx);
const char *fx_prefix(TestCtx *ctx);
/* Like fx_tensor but NULL when absent. */
const float *fx_tensor_opt(TestCtx *ctx, const char *name, long n);
int fx_int(TestCtx *ctx, const char *param);
float fx_float(TestCtx *ctx, const char *param);
/* A buffer of n floats filled with NaN, owned by ctx. */
float *out_buffer(TestCtx *ctx, long n);
/* bytes of uninitialised memory owned by ctx (structs the test builds, e.g. ExpertWeights). */
void *test_alloc(TestCtx *ctx, size_t bytes);
/* Like fx_ints but NULL when absent. */
const int *fx_ints_opt(TestCtx *ctx, const char *name, long n);
/* A buffer of n ints filled with UNWRITTEN_INT, owned by ctx. */
#define UNWRITTEN_INT (-999999)
int *out_ints(TestCtx *ctx, long n);

/* ------------------------------------------------------------------------------------
 * calling the student and comparing
 * ---------------------------------------------------------------------------------- */

/* Call before and after the student's function: a TODO() hit turns into TEST_TODO. */
void student_begin(TestCtx *ctx);
int student_todo(TestCtx *ctx); /* 1 when the function still has its TODO (reported) */

/* How to name an element: up to 4 dimensions, e.g. {"token", "head", "dim"} with shape
 * {T, H, D}. The product of the shape is the element count. */
typedef struct {
    int ndim;
    const char *names[4];
    long shape[4];
} Layout;

/* Compares got with <case>/<output> elementwise: |got - exp| <= atol + rtol * |exp|.
 * On a mismatch prints the report (counts, max errors, first bad element by name, a few
 * values, and the mistake it looks like) and returns TEST_FAIL. what names the call in
 * the report, e.g. "matmul_tokens" or "token 3 of the decode". */
TestStatus expect_close(TestCtx *ctx, const char *output, const float *got, const Layout *l,
                        float atol, float rtol, const char *what);

/* Like expect_close but silent: TEST_PASS or TEST_FAIL, nothing printed. */
TestStatus matches(TestCtx *ctx, const char *output, const float *got, const Layout *l,
                   float atol, float rtol);
/* 1 when this test prints the full story of its failure (the first of its lesson). */
int ctx_verbose(const TestCtx *ctx);

/* A failure that is not an elementwise mismatch (e.g. a count); printf-style. */
TestStatus fail(TestCtx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* MOEKIT_CHECK_H */
