/* Lesson 01 tests: matmul (one token at a time) and matmul_tokens (all T at once). */
#include "check.h"
#include "moekit.h"

static TestStatus test_matmul(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), in = fx_int(ctx, "in_features"), out = fx_int(ctx, "out_features");
    const float *x = fx_tensor(ctx, "x", (long)T * in, NULL);
    const float *w = fx_tensor(ctx, "w", (long)out * in, NULL);
    float *y = out_buffer(ctx, (long)T * out);
    student_begin(ctx);
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
    if (student_todo(ctx)) return TEST_TODO;
    Layout l = {2, {"token", "out"}, {T, out}};
    return expect_close(ctx, "y", y, &l, 1e-4f, 1e-4f, "matmul, one token at a time");
}

static TestStatus test_matmul_tokens(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), in = fx_int(ctx, "in_features"), out = fx_int(ctx, "out_features");
    const float *x = fx_tensor(ctx, "x", (long)T * in, NULL);
    const float *w = fx_tensor(ctx, "w", (long)out * in, NULL);
    float *y = out_buffer(ctx, (long)T * out);
    student_begin(ctx);
    matmul_tokens(y, x, w, T, in, out);
    if (student_todo(ctx)) return TEST_TODO;
    Layout l = {2, {"token", "out"}, {T, out}};
    return expect_close(ctx, "y", y, &l, 1e-4f, 1e-4f, "matmul_tokens");
}

static const TestDef TESTS[] = {
    {"matmul", "", test_matmul},
    {"matmul_tokens", "", test_matmul_tokens},
    {0},
};

const LessonDef LESSON_01 = {"01", "matmul", "matmul.c", "", TESTS};
