/* Lesson 09 tests: every step of the fast matmul against the naive product (the fixture's y,
 * x @ W.T from the PyTorch reference, correctly rounded; y_bf16 for step 6) on sizes that are not multiples of
 * anything: 1, 3, 17, 31, 257 ... so the vector tails, the edges of the register tiles and
 * the threaded paths all run. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "moekit.h"

typedef struct {
    int T, in, out;
    const float *x, *w;
    Layout layout;
} Case;

static Case read_case(TestCtx *ctx) {
    Case c;
    c.T = fx_int(ctx, "T");
    c.in = fx_int(ctx, "in_features");
    c.out = fx_int(ctx, "out_features");
    c.x = fx_tensor(ctx, "x", (long)c.T * c.in, NULL);
    c.w = fx_tensor(ctx, "w", (long)c.out * c.in, NULL);
    c.layout = (Layout){2, {"token", "out"}, {c.T, c.out}};
    return c;
}

/* The classic slip of a vector loop: it stops at the last multiple of the vector width and
 * forgets the rest. When y matches the product over the first in - in % VL columns only,
 * say so. */
static void diagnose_tail(const Case *c, const float *y) {
    int lanes = fast_matmul_lanes(), kept = c->in - c->in % lanes;
    if (lanes <= 1 || kept == c->in) return;
    for (int t = 0; t < c->T; t++)
        for (int o = 0; o < c->out; o++) {
            double want = 0.0;
            for (int i = 0; i < kept; i++)
                want += (double)c->x[(long)t * c->in + i] * c->w[(long)o * c->in + i];
            float got = y[(long)t * c->out + o];
            if (!(fabs(got - want) <= 1e-4 + 1e-4 * fabs(want))) return;
        }
    printf("  looks like: the tail is missing: only the first %d of %d columns were summed, "
           "the whole vectors of %d lanes.\n"
           "  After the vector loop, the last in %% %d = %d values need vload_tail (or a "
           "scalar loop).\n"
           "  see lessons/09-fast-matmul/README.md, \"Tails\"\n",
           kept, c->in, lanes, lanes, c->in - kept);
}

static TestStatus compare(TestCtx *ctx, const Case *c, const float *y, const char *what) {
    TestStatus st = expect_close(ctx, "y", y, &c->layout, 1e-4f, 1e-4f, what);
    if (ctx_diagnose(ctx, st)) diagnose_tail(c, y);
    return st;
}

typedef void (*Gemm)(float *y, const float *x, const float *w, int T, int in, int out);

static TestStatus run_gemm(TestCtx *ctx, Gemm f, const char *what) {
    Case c = read_case(ctx);
    float *y = out_buffer(ctx, (long)c.T * c.out);
    student_begin(ctx);
    f(y, c.x, c.w, c.T, c.in, c.out);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)c.T * c.out);
    return compare(ctx, &c, y, what);
}

static TestStatus test_loop_order(TestCtx *ctx) {
    return run_gemm(ctx, matmul_loop_order, "matmul_loop_order");
}

static TestStatus test_dot_simd(TestCtx *ctx) {
    Case c = read_case(ctx);
    float *y = out_buffer(ctx, (long)c.T * c.out);
    student_begin(ctx);
    for (int t = 0; t < c.T; t++)
        for (int o = 0; o < c.out; o++)
            y[(long)t * c.out + o] = dot_simd(c.x + (long)t * c.in, c.w + (long)o * c.in, c.in);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)c.T * c.out);
    return compare(ctx, &c, y, "dot_simd(x[t], W[o], in) for every token t and row o");
}

static TestStatus test_simd(TestCtx *ctx) { return run_gemm(ctx, matmul_simd, "matmul_simd"); }

static TestStatus test_tiled(TestCtx *ctx) { return run_gemm(ctx, matmul_tiled, "matmul_tiled"); }

static TestStatus test_fast_tokens(TestCtx *ctx) {
    return run_gemm(ctx, fast_matmul_tokens, "fast_matmul_tokens");
}

static TestStatus test_fast_one_token(TestCtx *ctx) {
    Case c = read_case(ctx);
    float *y = out_buffer(ctx, (long)c.T * c.out);
    student_begin(ctx);
    for (int t = 0; t < c.T; t++)
        fast_matmul(y + (long)t * c.out, c.x + (long)t * c.in, c.w, c.in, c.out);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)c.T * c.out);
    return compare(ctx, &c, y, "fast_matmul, one token at a time");
}

/* W rounded to bf16 here (bf16_from_float is ready-made), so the expected output is the
 * fixture's y_bf16: PyTorch's x @ W.bfloat16().T, not y. */
static TestStatus test_fast_bf16(TestCtx *ctx) {
    Case c = read_case(ctx);
    float *y = out_buffer(ctx, (long)c.T * c.out);
    bf16 *w = test_alloc(ctx, sizeof(bf16) * (size_t)c.out * (size_t)c.in);
    bf16_from_float(w, c.w, (long)c.out * c.in);
    student_begin(ctx);
    for (int t = 0; t < c.T; t++)
        fast_matmul_bf16(y + (long)t * c.out, c.x + (long)t * c.in, w, c.in, c.out);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)c.T * c.out);
    return expect_close(ctx, "y_bf16", y, &c.layout, 1e-4f, 1e-4f,
                        "fast_matmul_bf16, one token at a time, W in bf16");
}

static const TestDef TESTS[] = {
    {"matmul_loop_order", "", test_loop_order},
    {"dot_simd", "", test_dot_simd},
    {"matmul_simd", "", test_simd},
    {"matmul_tiled", "", test_tiled},
    {"fast_matmul_tokens", "", test_fast_tokens},
    {"fast_matmul", "", test_fast_one_token},
    {"fast_matmul_bf16", "", test_fast_bf16},
    {0},
};

const LessonDef LESSON_09 = {"09", "fast-matmul", "fast_matmul.c", "", TESTS};
