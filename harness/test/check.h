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
 * the model, the rest (09 fast matmul, 10 routing, 11 tokenizer, 12 expert parallel,
 * 13 quantization) are optional. */
extern const LessonDef *const LESSONS[];
extern const int CORE_LESSONS;
/* NULL, or why lesson L cannot run here (lesson 12 without MPI): the runner prints it and
 * runs none of its tests. Called before the lesson's first test, with its fixture file
 * (NULL when no test will run) and the runner's role (check_internal.h): lesson 12 waits
 * there for its MPI job, which runs every case once for all its tests (not under the
 * judge, which reads the tape, nor when the grader strips the fixture). */
const char *lesson_unavailable(const LessonDef *L, const char *fixture, int role);
/* When make check begins, for each lesson it will run: lesson 12 starts its MPI job in
 * the background (mpirun takes seconds to start), beside the other lessons' tests. */
void lesson_start(const LessonDef *L, const char *fixture);

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
/* fn(arg) when the test ends, however it ends (a model_free, a scratch_free): so a test
 * that stops at a failure, or in the grader's sandbox at its first expected value, leaks
 * nothing. */
void test_cleanup(TestCtx *ctx, void (*fn)(void *), void *arg);
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

/* ------------------------------------------------------------------------------------
 * what the student's code produced: run first, judge after
 *
 * Under `make grade` the student's code never sees an expected value, and never gives
 * its own verdict. Each test runs twice:
 *   1. in a sandbox, with the student's code and a fixture file that holds only the
 *      case's inputs: every observe() writes what the student's functions produced to a
 *      tape, and the test stops at the first expected value it reads;
 *   2. in the grader's own process, with the kit's solutions in place of the student's
 *      code: each observe() puts the student's recorded values back into the buffer, and
 *      the rest of the test compares them with the expected ones as usual.
 * So a test is written in two halves: call the student's code, observe() every output
 * and free what it allocated; then read expected values (want_*, expect_close,
 * matches) and judge. Under `make check` observe() does nothing and want_* read the
 * fixture, so the same test gives the same verdict in both.
 * ---------------------------------------------------------------------------------- */

/* buf[0 .. n) was written by the student's code. key names it, unique within the test
 * ("y", "layer0.out"); under the judge an output that never reached the tape reads as
 * NaN (UNWRITTEN_INT for ints), "wrote nothing". */
void observe(TestCtx *ctx, const char *key, float *buf, long n);
void observe_ints(TestCtx *ctx, const char *key, int *buf, long n);

/* 1 in the grader's sandbox (and when the grader notes what a test reads), where a
 * diagnosis that calls the student's code again must do so before the test reads its
 * first expected value: the judge may need what it produced. */
int ctx_sandboxed(const TestCtx *ctx);
/* 1 when the test should print its diagnosis after the verdict s: a failure that is
 * shown in full (and always when the grader notes what a diagnosis reads). */
int ctx_diagnose(const TestCtx *ctx, TestStatus s);

/* An expected value of the case (like fx_tensor / fx_ints, but never given to the
 * student's code: the sandbox's fixture does not hold it). */
const float *want_tensor(TestCtx *ctx, const char *name, long n);
const int *want_ints(TestCtx *ctx, const char *name, long n);

/* ------------------------------------------------------------------------------------
 * property checks: fresh random inputs, a relation the outputs must satisfy
 *
 * Beside the fixtures, a few tests draw their inputs at random (the shapes come from a
 * fixture case) and check a property of the student's outputs (softmax rows sum to 1,
 * RoPE keeps each pair's norm, ...) instead of comparing with stored values. Their names
 * start with "property: ". The draws come from the run's seed, which `make check` prints
 * and `make check SEED=n` replays; the grader passes the same seed to both halves. The
 * same two halves as above: call the student's code on the draws and observe() every
 * output, then judging() (the sandbox stops there), then check the property on what was
 * observed (or against the kit's own functions: under the judge they are the solutions).
 * ---------------------------------------------------------------------------------- */

#define PROPERTY "property: "
/* x[0 .. n) uniform in [-scale, scale), the next draws of this test's generator */
void random_fill(TestCtx *ctx, float *x, long n, float scale);
/* uniform in [0, 1) */
double random_uniform(TestCtx *ctx);
/* The run's seed, as make check prints it. */
unsigned long ctx_seed(const TestCtx *ctx);
/* What follows judges the observed outputs: the sandbox (ROLE_RUN) stops here. */
void judging(TestCtx *ctx);
/* got (observed) against want (what the property says it must be, computed after
 * judging()): like expect_close, with the seed that replays the draws in the report. */
TestStatus expect_property(TestCtx *ctx, const char *property, const float *got,
                           const float *want, const Layout *l, float atol, float rtol);

#endif /* MOEKIT_CHECK_H */
