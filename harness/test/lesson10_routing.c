/* Bonus lesson 10 tests: switch_route, expert_choice_route (each expert's tokens as a
 * set, then the gates per token) and expert_choice_forward (the output, then its stats);
 * noisy_topk_route (each token's experts as a set, then the weights), noisy_topk_forward,
 * dense_moe_forward and soft_moe_forward (the output, then the stats they keep). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "moekit.h"
#include "routing_check.h"

static TestStatus test_switch_route(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), E = fx_int(ctx, "num_experts");
    const float *logits = fx_tensor(ctx, "logits", (long)T * E, NULL);
    int *experts = out_ints(ctx, T);
    float *weights = out_buffer(ctx, T);
    student_begin(ctx);
    switch_route(experts, weights, logits, T, E);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "experts", experts, T);
    observe(ctx, "weights", weights, T);
    const int *want = want_ints(ctx, "experts", T);
    ChoiceShape shape = {"token", "expert", T, 1, E, 0};
    TestStatus st = expect_same_choice(ctx, &shape, experts, want, NULL, NULL,
                                       "switch_route, the chosen expert");
    if (st != TEST_PASS) return st;
    Layout l = {1, {"token"}, {T}};
    return expect_close(ctx, "weights", weights, &l, 1e-6f, 1e-5f, "switch_route, weights");
}

static TestStatus test_expert_choice_route(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), E = fx_int(ctx, "num_experts"), cap = fx_int(ctx, "capacity");
    const float *probs = fx_tensor(ctx, "probs", (long)T * E, NULL);
    int *tokens = out_ints(ctx, (long)E * cap);
    float *gates = out_buffer(ctx, (long)E * cap), *column = out_buffer(ctx, T);
    student_begin(ctx);
    expert_choice_route(tokens, gates, probs, T, E, cap, column);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "tokens", tokens, (long)E * cap);
    observe(ctx, "gates", gates, (long)E * cap);
    const int *want = want_ints(ctx, "tokens", (long)E * cap);
    float *score = out_buffer(ctx, (long)E * T); /* probs transposed: expert e's column */
    for (int t = 0; t < T; t++)
        for (int e = 0; e < E; e++) score[(long)e * T + t] = probs[(long)t * E + e];
    ChoiceShape shape = {"expert", "token", E, cap, T, 0};
    int *match = out_ints(ctx, (long)E * cap);
    TestStatus st = expect_same_choice(ctx, &shape, tokens, want, score, match,
                                       "expert_choice_route, the tokens each expert took");
    if (st != TEST_PASS) return st;
    float *aligned = out_buffer(ctx, (long)E * cap);
    align_to_expected(aligned, gates, match, E, cap);
    Layout l = {2, {"expert", "pick"}, {E, cap}};
    return expect_close(ctx, "gates", aligned, &l, 0.0f, 0.0f,
                        "expert_choice_route, gates = probs of the tokens taken");
}

static TestStatus test_expert_choice_forward(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), C = fx_int(ctx, "hidden_size"), E = fx_int(ctx, "num_experts");
    int I = fx_int(ctx, "moe_intermediate_size"), cap = fx_int(ctx, "capacity");
    MoeConfig c = {C, I, 0, {E, 1, 0, NULL}, 0.0f};
    MoeWeights w = fx_moe_weights(ctx, E, C, I, 0);
    const float *h = fx_tensor(ctx, "h", (long)T * C, NULL);
    float *out = out_buffer(ctx, (long)T * C);
    MoeScratch s;
    if (moe_scratch_init(&s, &c, T) != 0) return fail(ctx, "out of memory in moe_scratch_init");
    s.stats.dropped = UNWRITTEN_INT;
    s.stats.expert_rows = UNWRITTEN_INT;
    student_begin(ctx);
    expert_choice_forward(out, h, T, cap, &c, &w, &s);
    int counts[2] = {s.stats.dropped, s.stats.expert_rows > 1000000000L || s.stats.expert_rows < -1000000000L
                                          ? -1 : (int)s.stats.expert_rows};
    moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)T * C);
    observe_ints(ctx, "stats.counts", counts, 2);
    int dropped = counts[0];
    long rows = counts[1];
    const int *want_dropped = want_ints(ctx, "dropped", 1);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    TestStatus st = expect_close(ctx, "out", out, &l, 1e-5f, 1e-4f, "expert_choice_forward");
    if (st != TEST_PASS) return st;
    if (rows != (long)E * cap)
        return fail(ctx, "stats.expert_rows = %ld, expected E * capacity = %d * %d", rows, E, cap);
    if (dropped != want_dropped[0])
        return fail(ctx, "stats.dropped = %d, expected %d tokens that no expert took", dropped,
                    want_dropped[0]);
    return TEST_PASS;
}

static TestStatus test_noisy_topk_route(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), E = fx_int(ctx, "num_experts"), k = fx_int(ctx, "num_experts_per_tok");
    const float *logits = fx_tensor(ctx, "logits", (long)T * E, NULL);
    const float *noise_logits = fx_tensor(ctx, "noise_logits", (long)T * E, NULL);
    const float *noise = fx_tensor(ctx, "noise", (long)T * E, NULL);
    int *experts = out_ints(ctx, (long)T * k);
    float *weights = out_buffer(ctx, (long)T * k), *scratch = out_buffer(ctx, E);
    student_begin(ctx);
    noisy_topk_route(experts, weights, logits, noise_logits, noise, T, E, k, scratch);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "experts", experts, (long)T * k);
    observe(ctx, "weights", weights, (long)T * k);
    Layout l = {2, {"token", "slot"}, {T, k}};
    /* an inf or NaN in H scrambles the choice too: the weights say why, so they go first */
    for (long i = 0; i < (long)T * k; i++)
        if (!isfinite(weights[i]))
            return expect_close(ctx, "weights", weights, &l, 1e-5f, 1e-4f,
                                "noisy_topk_route, weights (not finite)");
    const int *want = want_ints(ctx, "experts", (long)T * k);
    ChoiceShape shape = {"token", "expert", T, k, E, 0};
    int *match = out_ints(ctx, (long)T * k);
    TestStatus st = expect_same_choice(ctx, &shape, experts, want, NULL, match,
                                       "noisy_topk_route, the top-k of H = logits + noise * softplus(noise_logits)");
    if (st != TEST_PASS) return st;
    float *aligned = out_buffer(ctx, (long)T * k);
    align_to_expected(aligned, weights, match, T, k);
    return expect_close(ctx, "weights", aligned, &l, 1e-5f, 1e-4f,
                        "noisy_topk_route, weights = softmax over the k kept");
}

/* stats.expert_rows as an int for the tape, -1 when it is far out of range (unwritten) */
static int rows_of(long rows) { return rows > 1000000000L || rows < -1000000000L ? -1 : (int)rows; }

static TestStatus test_noisy_topk_forward(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), C = fx_int(ctx, "hidden_size"), E = fx_int(ctx, "num_experts");
    int I = fx_int(ctx, "moe_intermediate_size"), k = fx_int(ctx, "num_experts_per_tok");
    MoeConfig c = {C, I, 0, {E, k, 0, NULL}, 0.0f};
    MoeWeights w = fx_moe_weights(ctx, E, C, I, 0);
    const float *w_noise = fx_tensor(ctx, "noise.weight", (long)E * C, NULL);
    const float *h = fx_tensor(ctx, "h", (long)T * C, NULL);
    const float *noise = fx_tensor(ctx, "noise", (long)T * E, NULL);
    float *out = out_buffer(ctx, (long)T * C);
    int *experts = out_ints(ctx, (long)T * k);
    MoeScratch s;
    if (moe_scratch_init(&s, &c, T) != 0) return fail(ctx, "out of memory in moe_scratch_init");
    s.stats.expert_rows = UNWRITTEN_INT;
    student_begin(ctx);
    noisy_topk_forward(out, h, w_noise, noise, T, &c, &w, &s);
    int rows = rows_of(s.stats.expert_rows);
    memcpy(experts, s.stats.experts, sizeof(int) * (size_t)T * k);
    moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)T * C);
    observe_ints(ctx, "stats.experts", experts, (long)T * k);
    observe_ints(ctx, "stats.expert_rows", &rows, 1);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    TestStatus st = expect_close(ctx, "out", out, &l, 1e-5f, 1e-4f, "noisy_topk_forward");
    if (st != TEST_PASS) return st;
    ChoiceShape shape = {"token", "expert", T, k, E, 0};
    st = expect_same_choice(ctx, &shape, experts, want_ints(ctx, "experts", (long)T * k), NULL,
                            NULL, "noisy_topk_forward, stats.experts");
    if (st != TEST_PASS) return st;
    if (rows != T * k)
        return fail(ctx, "stats.expert_rows = %d, expected T * k = %d * %d", rows, T, k);
    return TEST_PASS;
}

static TestStatus test_dense_moe_forward(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), C = fx_int(ctx, "hidden_size"), E = fx_int(ctx, "num_experts");
    int I = fx_int(ctx, "moe_intermediate_size");
    MoeConfig c = {C, I, 0, {E, 1, 0, NULL}, 0.0f};
    MoeWeights w = fx_moe_weights(ctx, E, C, I, 0);
    const float *h = fx_tensor(ctx, "h", (long)T * C, NULL);
    float *out = out_buffer(ctx, (long)T * C), *probs = out_buffer(ctx, (long)T * E);
    MoeScratch s;
    if (moe_scratch_init(&s, &c, T) != 0) return fail(ctx, "out of memory in moe_scratch_init");
    for (long i = 0; i < (long)T * E; i++) s.stats.probs[i] = NAN;
    s.stats.expert_rows = UNWRITTEN_INT;
    student_begin(ctx);
    dense_moe_forward(out, h, T, &c, &w, &s);
    int rows = rows_of(s.stats.expert_rows);
    memcpy(probs, s.stats.probs, sizeof(float) * (size_t)T * E);
    moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)T * C);
    observe(ctx, "stats.probs", probs, (long)T * E);
    observe_ints(ctx, "stats.expert_rows", &rows, 1);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    TestStatus st = expect_close(ctx, "out", out, &l, 1e-5f, 1e-4f, "dense_moe_forward");
    if (st != TEST_PASS) return st;
    Layout lp = {2, {"token", "expert"}, {T, E}};
    st = expect_close(ctx, "probs", probs, &lp, 1e-6f, 1e-5f,
                      "dense_moe_forward, stats.probs = softmax over the experts");
    if (st != TEST_PASS) return st;
    if (rows != E * T)
        return fail(ctx, "stats.expert_rows = %d, expected E * T = %d * %d", rows, E, T);
    return TEST_PASS;
}

static TestStatus test_soft_moe_forward(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), C = fx_int(ctx, "hidden_size"), E = fx_int(ctx, "num_experts");
    int I = fx_int(ctx, "moe_intermediate_size"), p = fx_int(ctx, "slots_per_expert");
    MoeConfig c = {C, I, 0, {E, 1, 0, NULL}, 0.0f};
    MoeWeights w = fx_moe_weights(ctx, E, C, I, 0);
    const float *h = fx_tensor(ctx, "h", (long)T * C, NULL);
    const float *phi = fx_tensor(ctx, "phi", (long)E * p * C, NULL);
    float *out = out_buffer(ctx, (long)T * C);
    SoftMoeScratch s;
    if (soft_moe_scratch_init(&s, &c, T, p) != 0)
        return fail(ctx, "out of memory in soft_moe_scratch_init");
    student_begin(ctx);
    soft_moe_forward(out, h, phi, T, &c, &w, &s);
    soft_moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)T * C);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    return expect_close(ctx, "out", out, &l, 1e-5f, 1e-4f, "soft_moe_forward");
}

static const TestDef TESTS[] = {
    {"switch_route", "switch_", test_switch_route},
    {"expert_choice_route", "ecroute_", test_expert_choice_route},
    {"expert_choice_forward", "ecmoe_", test_expert_choice_forward},
    {"noisy_topk_route", "noisy_", test_noisy_topk_route},
    {"noisy_topk_forward", "noisymoe_", test_noisy_topk_forward},
    {"dense_moe_forward", "dense_", test_dense_moe_forward},
    {"soft_moe_forward", "soft_", test_soft_moe_forward},
    {0},
};

const LessonDef LESSON_10 = {"10", "routing", "routing.c", "0104050607", TESTS};
