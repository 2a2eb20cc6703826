/* Lesson 03 tests: rope on each token of x at positions pos0, pos0 + 1, ... */
#include <string.h>

#include "check.h"
#include "moekit.h"

static TestStatus test_rope(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), H = fx_int(ctx, "n_heads"), D = fx_int(ctx, "head_dim");
    int pos0 = fx_int(ctx, "pos0");
    float theta = fx_float(ctx, "rope_theta");
    long per_token = (long)H * D;
    const float *x = fx_tensor(ctx, "x", T * per_token, NULL);
    float *y = out_buffer(ctx, T * per_token);
    memcpy(y, x, sizeof(float) * T * per_token);
    student_begin(ctx);
    for (int t = 0; t < T; t++) rope(y + t * per_token, H, D, pos0 + t, theta);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, T * per_token);
    Layout l = {3, {"token", "head", "dim"}, {T, H, D}};
    return expect_close(ctx, "y", y, &l, 1e-5f, 1e-4f, "rope");
}

static const TestDef TESTS[] = {
    {"rope", "", test_rope},
    {0},
};

const LessonDef LESSON_03 = {"03", "rope", "rope.c", "", TESTS};
