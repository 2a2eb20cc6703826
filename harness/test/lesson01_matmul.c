/* Lesson 01 tests: matmul (one token at a time) and matmul_tokens (all T at once). */
#include <math.h>

#include "check.h"
#include "moekit.h"

/* float32 sums of n products are off by up to about n * 2^-24 of the sum of |products|:
 * the absolute tolerance follows the largest such sum, so |x| ~ 1000 cases do not fail a
 * correct loop that merely adds in another order. */
static float sum_tolerance(const float *x, const float *w, int T, int in, int out) {
    double worst = 0.0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int i = 0; i < in; i++) s += fabs((double)x[(long)t * in + i] * w[(long)o * in + i]);
            worst = s > worst ? s : worst;
        }
    return 1e-4f + (float)(1e-6 * worst);
}

static TestStatus run_matmul(TestCtx *ctx, int batched) {
    int T = fx_int(ctx, "T"), in = fx_int(ctx, "in_features"), out = fx_int(ctx, "out_features");
    const float *x = fx_tensor(ctx, "x", (long)T * in, NULL);
    const float *w = fx_tensor(ctx, "w", (long)out * in, NULL);
    float *y = out_buffer(ctx, (long)T * out);
    student_begin(ctx);
    if (batched) matmul_tokens(y, x, w, T, in, out);
    else
        for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)T * out);
    Layout l = {2, {"token", "out"}, {T, out}};
    return expect_close(ctx, "y", y, &l, sum_tolerance(x, w, T, in, out), 1e-4f,
                        batched ? "matmul_tokens" : "matmul, one token at a time");
}

static TestStatus test_matmul(TestCtx *ctx) { return run_matmul(ctx, 0); }
static TestStatus test_matmul_tokens(TestCtx *ctx) { return run_matmul(ctx, 1); }

static const TestDef TESTS[] = {
    {"matmul", "", test_matmul},
    {"matmul_tokens", "", test_matmul_tokens},
    {0},
};

const LessonDef LESSON_01 = {"01", "matmul", "matmul.c", "", TESTS};
