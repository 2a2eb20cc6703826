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

/* Property: matmul is linear. On fresh x1, x2 (the case's shapes and W) and a, b with
 * a + b >= 1.5: y(a x1 + b x2) = a y(x1) + b y(x2), so an added constant (a bias) or any
 * term that is not a product with x shows. */
static TestStatus test_linear(TestCtx *ctx) {
    int in = fx_int(ctx, "in_features"), out = fx_int(ctx, "out_features");
    const float *w = fx_tensor(ctx, "w", (long)out * in, NULL);
    float *x = test_alloc(ctx, sizeof(float) * 3 * (size_t)in), *y = out_buffer(ctx, 3L * out);
    float a = (float)(1.0 + random_uniform(ctx)), b = (float)(0.5 + random_uniform(ctx));
    random_fill(ctx, x, 2L * in, 1.0f);
    for (int i = 0; i < in; i++) x[2 * in + i] = a * x[i] + b * x[in + i];
    student_begin(ctx);
    for (int r = 0; r < 3; r++) matmul(y + (long)r * out, x + (long)r * in, w, in, out);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, 3L * out);
    judging(ctx);
    float *want = test_alloc(ctx, sizeof(float) * (size_t)out);
    for (int o = 0; o < out; o++) want[o] = a * y[o] + b * y[out + o];
    Layout l = {1, {"out"}, {out}};
    /* three float sums of in products each, as in sum_tolerance */
    return expect_property(ctx, "matmul(a x1 + b x2) = a matmul(x1) + b matmul(x2)", y + 2L * out,
                           want, &l, 4.0f * sum_tolerance(x + 2L * in, w, 1, in, out), 1e-4f);
}

static const TestDef TESTS[] = {
    {"matmul", "", test_matmul},
    {"matmul_tokens", "", test_matmul_tokens},
    {PROPERTY "matmul is linear", "", test_linear},
    {0},
};

const LessonDef LESSON_01 = {"01", "matmul", "matmul.c", "", TESTS};
