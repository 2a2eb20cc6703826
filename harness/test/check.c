/*
 * check.c: reading fixture cases, calling the student, comparing and reporting.
 */
#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "diagnoses.h"
#include "todo.h"

/* ------------------------------------------------------------------------------------
 * the test context: an arena of buffers and a way out on fixture errors
 * ---------------------------------------------------------------------------------- */

static void *ctx_alloc(TestCtx *ctx, size_t bytes) {
    if (ctx->n_allocs == MAX_ALLOCS) fixture_error(ctx, "too many buffers in one test");
    void *p = malloc(bytes ? bytes : 1);
    if (!p) fixture_error(ctx, "out of memory (%zu bytes)", bytes);
    ctx->allocs[ctx->n_allocs++] = p;
    return p;
}

void ctx_free_all(TestCtx *ctx) {
    for (int i = 0; i < ctx->n_allocs; i++) free(ctx->allocs[i]);
    ctx->n_allocs = 0;
}

void fixture_error(TestCtx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("fixture problem in %s, case %s: ", ctx->fixture_path, ctx->case_id);
    vprintf(fmt, ap);
    printf("\n  (this is the kit's fault, not yours: regenerate with `make fixtures`)\n");
    va_end(ap);
    longjmp(ctx->bail, 1);
}

/* ------------------------------------------------------------------------------------
 * reading the case
 * ---------------------------------------------------------------------------------- */

static const StTensor *find_case_tensor(TestCtx *ctx, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "%s/%s", ctx->case_id, name);
    return st_find(ctx->fx, key);
}

static float *tensor_as_f32(TestCtx *ctx, const StTensor *t, const char *name) {
    long n = (long)t->numel;
    float *p = ctx_alloc(ctx, sizeof(float) * (size_t)n);
    if (st_to_f32(t, p) != 0) fixture_error(ctx, "tensor '%s' is not a float tensor", name);
    return p;
}

const float *fx_tensor_opt(TestCtx *ctx, const char *name, long n) {
    const StTensor *t = find_case_tensor(ctx, name);
    if (!t) return NULL;
    if (n >= 0 && (long)t->numel != n)
        fixture_error(ctx, "tensor '%s' has %ld values, the test expects %ld", name,
                      (long)t->numel, n);
    return tensor_as_f32(ctx, t, name);
}

const float *fx_tensor(TestCtx *ctx, const char *name, long n, long *count) {
    const StTensor *t = find_case_tensor(ctx, name);
    if (!t) fixture_error(ctx, "tensor '%s/%s' is missing", ctx->case_id, name);
    if (count) *count = (long)t->numel;
    return fx_tensor_opt(ctx, name, n);
}

const int *fx_ints(TestCtx *ctx, const char *name, long n) {
    const StTensor *t = find_case_tensor(ctx, name);
    if (!t || t->dtype != ST_I32 || (long)t->numel != n)
        fixture_error(ctx, "tensor '%s/%s' must be I32 with %ld values", ctx->case_id, name, n);
    int32_t *p = ctx_alloc(ctx, sizeof(int32_t) * (size_t)(n ? n : 1));
    memcpy(p, t->data, sizeof(int32_t) * (size_t)n); /* little-endian, like the machine */
    return (const int *)p;
}

const SafeTensors *fx_file(TestCtx *ctx) { return ctx->fx; }

const char *fx_prefix(TestCtx *ctx) {
    snprintf(ctx->prefix, sizeof ctx->prefix, "%s/", ctx->case_id);
    return ctx->prefix;
}

int ctx_verbose(const TestCtx *ctx) { return ctx->verbose == REPORT_FULL; }

static const char *case_meta(TestCtx *ctx, const char *param) {
    char key[256];
    snprintf(key, sizeof key, "%s/%s", ctx->case_id, param);
    const char *v = st_meta(ctx->fx, key);
    if (!v) fixture_error(ctx, "parameter '%s' is missing from __metadata__", key);
    return v;
}

const char *fx_meta(TestCtx *ctx, const char *param) { return case_meta(ctx, param); }

int fx_int(TestCtx *ctx, const char *param) {
    const char *s = case_meta(ctx, param);
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < -1000000000L || v > 1000000000L)
        fixture_error(ctx, "parameter '%s' = \"%s\" is not an integer", param, s);
    return (int)v;
}

float fx_float(TestCtx *ctx, const char *param) {
    const char *s = case_meta(ctx, param);
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(v))
        fixture_error(ctx, "parameter '%s' = \"%s\" is not a number", param, s);
    return (float)v;
}

float *out_buffer(TestCtx *ctx, long n) {
    float *p = ctx_alloc(ctx, sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) p[i] = NAN;
    return p;
}

void *test_alloc(TestCtx *ctx, size_t bytes) { return ctx_alloc(ctx, bytes); }

const int *fx_ints_opt(TestCtx *ctx, const char *name, long n) {
    return find_case_tensor(ctx, name) ? fx_ints(ctx, name, n) : NULL;
}

int *out_ints(TestCtx *ctx, long n) {
    int *p = ctx_alloc(ctx, sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) p[i] = UNWRITTEN_INT;
    return p;
}

/* ------------------------------------------------------------------------------------
 * calling the student
 * ---------------------------------------------------------------------------------- */

void student_begin(TestCtx *ctx) {
    (void)ctx;
    todo_reset();
}

int student_todo(TestCtx *ctx) {
    const TodoHit *hit = todo_first();
    if (!hit) return 0;
    if (ctx->verbose == REPORT_FULL)
        printf("%s() is not written yet: TODO at %s:%d\n  %s\n", hit->func, hit->file,
               hit->line, hit->what);
    return 1;
}

TestStatus fail(TestCtx *ctx, const char *fmt, ...) {
    if (ctx->verbose != REPORT_FULL) return TEST_FAIL;
    va_list ap;
    va_start(ap, fmt);
    printf("lesson %s %s, case \"%s\": ", ctx->lesson->id, ctx->lesson->name, ctx->title);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    return TEST_FAIL;
}
