/*
 * check.c: reading fixture cases, calling the student, comparing and reporting.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "diagnoses.h"
#include "tape.h"
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

void test_cleanup(TestCtx *ctx, void (*fn)(void *), void *arg) {
    if (ctx->n_cleanups == (int)(sizeof ctx->cleanups / sizeof *ctx->cleanups))
        fixture_error(ctx, "too many cleanups in one test");
    ctx->cleanups[ctx->n_cleanups].fn = fn;
    ctx->cleanups[ctx->n_cleanups++].arg = arg;
}

void ctx_free_all(TestCtx *ctx) {
    while (ctx->n_cleanups > 0) {
        ctx->n_cleanups--;
        ctx->cleanups[ctx->n_cleanups].fn(ctx->cleanups[ctx->n_cleanups].arg);
    }
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
    longjmp(ctx->bail, BAIL_FIXTURE);
}

/* ------------------------------------------------------------------------------------
 * reading the case
 * ---------------------------------------------------------------------------------- */

/* ROLE_STRIP: every name a test reads, as an input or as an expected value */
void nameset_add(NameSet *s, const char *name) {
    if (!s || nameset_has(s, name) || s->n == MAX_NAMES) return;
    s->names[s->n++] = strdup(name);
}

int nameset_has(const NameSet *s, const char *name) {
    for (int i = 0; s && i < s->n; i++)
        if (s->names[i] && !strcmp(s->names[i], name)) return 1;
    return 0;
}

void nameset_free(NameSet *s) {
    for (int i = 0; i < s->n; i++) free(s->names[i]);
    s->n = 0;
}

static const StTensor *find_case_tensor(TestCtx *ctx, const char *name) {
    if (ctx->role == ROLE_STRIP) nameset_add(ctx->inputs, name);
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

int ctx_sandboxed(const TestCtx *ctx) { return ctx->role == ROLE_RUN || ctx->role == ROLE_STRIP; }

int ctx_diagnose(const TestCtx *ctx, TestStatus s) {
    return (s == TEST_FAIL && ctx->verbose == REPORT_FULL) || ctx->role == ROLE_STRIP;
}

/* The sandbox runs every diagnosis's calls too: the judge may need their outputs. */
int ctx_verbose(const TestCtx *ctx) {
    return ctx->verbose == REPORT_FULL || ctx->role == ROLE_RUN || ctx->role == ROLE_STRIP;
}

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

/* Under the judge, the TODO hit comes from the tape: "func\tfile\tline\twhat". */
static int recorded_todo(TestCtx *ctx) {
    const char *hit = ctx->recorded ? ctx->recorded->todo : NULL;
    if (hit && ctx->verbose == REPORT_FULL) {
        printf("a TODO() is still there: ");
        for (int fields = 0; *hit; hit++)
            if (*hit != '\t') putchar(*hit);
            else printf("%s", ++fields == 1 ? "() at " : fields == 2 ? ":" : "\n  ");
        putchar('\n');
    }
    return hit != NULL;
}

int student_todo(TestCtx *ctx) {
    if (ctx->role == ROLE_JUDGE) return recorded_todo(ctx);
    const TodoHit *hit = todo_first();
    if (!hit) return 0;
    if (ctx->role == ROLE_RUN) tape_todo(ctx->tape, hit->func, hit->file, hit->line, hit->what);
    else if (ctx->verbose == REPORT_FULL)
        printf("%s() is not written yet: TODO at %s:%d\n  %s\n", hit->func, hit->file,
               hit->line, hit->what);
    return 1;
}

/* ------------------------------------------------------------------------------------
 * what the student's code produced (check.h): observe and want_*
 * ---------------------------------------------------------------------------------- */

/* Under the judge: the recorded output, or NULL (and a note) when it is missing or has
 * another size or type. */
static const void *recorded_output(TestCtx *ctx, const char *key, char type, long n) {
    const TapeOutput *o = tape_find_output(ctx->recorded, key);
    if (o && o->type == type && o->n == n) return o->data;
    if (ctx->verbose == REPORT_FULL) {
        if (o) printf("note: your code's %s was recorded with %ld values, not %ld\n", key, o->n, n);
        else printf("note: no %s was recorded from your code (it stopped before it?)\n", key);
    }
    return NULL;
}

void observe(TestCtx *ctx, const char *key, float *buf, long n) {
    if (ctx->role == ROLE_RUN) tape_output(ctx->tape, key, 'F', buf, n);
    if (ctx->role != ROLE_JUDGE) return;
    const void *data = recorded_output(ctx, key, 'F', n);
    if (data) memcpy(buf, data, sizeof(float) * (size_t)n);
    else
        for (long i = 0; i < n; i++) buf[i] = NAN;
}

void observe_ints(TestCtx *ctx, const char *key, int *buf, long n) {
    if (ctx->role == ROLE_RUN) tape_output(ctx->tape, key, 'I', buf, n);
    if (ctx->role != ROLE_JUDGE) return;
    const void *data = recorded_output(ctx, key, 'I', n);
    if (data) memcpy(buf, data, sizeof(int) * (size_t)n);
    else
        for (long i = 0; i < n; i++) buf[i] = UNWRITTEN_INT;
}

/* In the sandbox, the first expected value ends the run: what follows is the judge's. */
static void before_expected(TestCtx *ctx, const char *name) {
    judging(ctx);
    if (ctx->role == ROLE_STRIP) nameset_add(ctx->expected, name);
}

const float *want_tensor(TestCtx *ctx, const char *name, long n) {
    before_expected(ctx, name);
    Role role = ctx->role;
    ctx->role = ROLE_CHECK; /* not an input read */
    const float *p = fx_tensor(ctx, name, n, NULL);
    ctx->role = role;
    return p;
}

const int *want_ints(TestCtx *ctx, const char *name, long n) {
    before_expected(ctx, name);
    Role role = ctx->role;
    ctx->role = ROLE_CHECK;
    const int *p = fx_ints(ctx, name, n);
    ctx->role = role;
    return p;
}

/* ------------------------------------------------------------------------------------
 * property checks (check.h): the test's own generator
 * ---------------------------------------------------------------------------------- */

/* splitmix64: small, and the same numbers on every machine (rand() is not) */
static unsigned long long next_u64(TestCtx *ctx) {
    unsigned long long z = (ctx->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double random_uniform(TestCtx *ctx) { return (double)(next_u64(ctx) >> 11) * 0x1.0p-53; }

void random_fill(TestCtx *ctx, float *x, long n, float scale) {
    for (long i = 0; i < n; i++) x[i] = (float)((2.0 * random_uniform(ctx) - 1.0) * scale);
}

unsigned long ctx_seed(const TestCtx *ctx) { return ctx->seed; }

void judging(TestCtx *ctx) {
    if (ctx->role == ROLE_RUN) longjmp(ctx->bail, BAIL_RECORDED);
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
