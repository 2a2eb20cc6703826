/* Lesson 03 tests: rope on each token of x at positions pos0, pos0 + 1, ... */
#include <math.h>
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

/* Property: RoPE rotates each pair (x[i], x[i + D/2]) of each head, and a rotation keeps
 * the pair's length, at any position. On a fresh x at fresh positions (up to 2^17). */
static TestStatus test_pair_norm(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), H = fx_int(ctx, "n_heads"), D = fx_int(ctx, "head_dim");
    float theta = fx_float(ctx, "rope_theta");
    long per_token = (long)H * D;
    float *x = test_alloc(ctx, sizeof(float) * (size_t)(T * per_token)), *y = out_buffer(ctx, T * per_token);
    int *pos = test_alloc(ctx, sizeof(int) * (size_t)T);
    random_fill(ctx, x, T * per_token, 2.0f);
    for (int t = 0; t < T; t++) pos[t] = (int)(random_uniform(ctx) * 131072.0);
    memcpy(y, x, sizeof(float) * T * per_token);
    student_begin(ctx);
    for (int t = 0; t < T; t++) rope(y + t * per_token, H, D, pos[t], theta);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, T * per_token);
    judging(ctx);
    long pairs = T * per_token / 2;
    float *got = test_alloc(ctx, sizeof(float) * (size_t)pairs), *want = test_alloc(ctx, sizeof(float) * (size_t)pairs);
    for (long p = 0; p < pairs; p++) {
        long head = p / (D / 2), i = head * D + p % (D / 2);
        got[p] = hypotf(y[i], y[i + D / 2]);
        want[p] = hypotf(x[i], x[i + D / 2]);
    }
    Layout l = {3, {"token", "head", "pair"}, {T, H, D / 2}};
    return expect_property(ctx, "|(x[i], x[i + head_dim/2])| is kept", got, want, &l, 1e-5f, 1e-4f);
}

static const TestDef TESTS[] = {
    {"rope", "", test_rope},
    {PROPERTY "rope keeps each pair's norm", "", test_pair_norm},
    {0},
};

const LessonDef LESSON_03 = {"03", "rope", "rope.c", "", TESTS};
