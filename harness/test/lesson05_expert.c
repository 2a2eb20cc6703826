/* Lesson 05 tests: silu, and the SwiGLU expert for one token and for T tokens. */
#include "check.h"
#include "moekit.h"

static TestStatus test_silu(TestCtx *ctx) {
    int n = fx_int(ctx, "n");
    const float *x = fx_tensor(ctx, "x", n, NULL);
    float *y = out_buffer(ctx, n);
    student_begin(ctx);
    for (int i = 0; i < n; i++) y[i] = silu(x[i]);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, n);
    Layout l = {1, {"element"}, {n}};
    return expect_close(ctx, "y", y, &l, 1e-6f, 1e-5f, "silu");
}

typedef struct {
    int T, C, I;
    ExpertWeights w;
    const float *x;
    Layout out_layout;
} ExpertCase;

static ExpertCase read_expert(TestCtx *ctx) {
    ExpertCase c;
    c.T = fx_int(ctx, "T");
    c.C = fx_int(ctx, "hidden_size");
    c.I = fx_int(ctx, "intermediate_size");
    long C = c.C, I = c.I;
    c.w.gate_proj = fx_tensor(ctx, "gate_proj.weight", I * C, NULL);
    c.w.up_proj = fx_tensor(ctx, "up_proj.weight", I * C, NULL);
    c.w.down_proj = fx_tensor(ctx, "down_proj.weight", C * I, NULL);
    c.x = fx_tensor(ctx, "x", c.T * C, NULL);
    c.out_layout = (Layout){2, {"token", "hidden"}, {c.T, C}};
    return c;
}

static TestStatus test_expert_forward(TestCtx *ctx) {
    ExpertCase c = read_expert(ctx);
    float *out = out_buffer(ctx, (long)c.T * c.C);
    float *scratch = out_buffer(ctx, 2L * c.I); /* exactly 2 * I: overruns are ASan errors */
    student_begin(ctx);
    for (int t = 0; t < c.T; t++)
        expert_forward(out + (long)t * c.C, c.x + (long)t * c.C, &c.w, c.C, c.I, scratch);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)c.T * c.C);
    return expect_close(ctx, "out", out, &c.out_layout, 1e-5f, 1e-4f,
                        "expert_forward, one token at a time");
}

static TestStatus test_expert_forward_tokens(TestCtx *ctx) {
    ExpertCase c = read_expert(ctx);
    float *out = out_buffer(ctx, (long)c.T * c.C);
    float *scratch = out_buffer(ctx, 2L * c.T * c.I);
    student_begin(ctx);
    expert_forward_tokens(out, c.x, &c.w, c.T, c.C, c.I, scratch);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)c.T * c.C);
    return expect_close(ctx, "out", out, &c.out_layout, 1e-5f, 1e-4f, "expert_forward_tokens");
}

static const TestDef TESTS[] = {
    {"silu", "silu_", test_silu},
    {"expert_forward", "expert_", test_expert_forward},
    {"expert_forward_tokens", "expert_", test_expert_forward_tokens},
    {0},
};

const LessonDef LESSON_05 = {"05", "expert", "expert.c", "01", TESTS};
