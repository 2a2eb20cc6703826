/* Lesson 02 tests: rmsnorm on every row of x, and in place (out == x). */
#include <string.h>

#include "check.h"
#include "moekit.h"

static TestStatus run_rmsnorm(TestCtx *ctx, int in_place) {
    int T = fx_int(ctx, "T"), n = fx_int(ctx, "n");
    float eps = fx_float(ctx, "eps");
    const float *x = fx_tensor(ctx, "x", (long)T * n, NULL);
    const float *weight = fx_tensor(ctx, "weight", n, NULL);
    float *y = out_buffer(ctx, (long)T * n);
    if (in_place) memcpy(y, x, sizeof(float) * T * n);
    student_begin(ctx);
    for (int t = 0; t < T; t++) {
        const float *src = in_place ? y + (long)t * n : x + (long)t * n;
        rmsnorm(y + (long)t * n, src, weight, n, eps);
    }
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)T * n);
    Layout l = {2, {"token", "dim"}, {T, n}};
    return expect_close(ctx, "y", y, &l, 1e-5f, 1e-5f,
                        in_place ? "rmsnorm in place (out == x)" : "rmsnorm");
}

static TestStatus test_rmsnorm(TestCtx *ctx) { return run_rmsnorm(ctx, 0); }
static TestStatus test_rmsnorm_in_place(TestCtx *ctx) { return run_rmsnorm(ctx, 1); }

static const TestDef TESTS[] = {
    {"rmsnorm", "", test_rmsnorm},
    {"rmsnorm in place", "", test_rmsnorm_in_place},
    {0},
};

const LessonDef LESSON_02 = {"02", "rmsnorm", "rmsnorm.c", "", TESTS};
