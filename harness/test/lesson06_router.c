/* Lesson 06 tests: topk (exact order, the tie rule), route (the chosen experts as sets,
 * then the probabilities, then the weights per expert), and the two router losses. */
#include "check.h"
#include "moekit.h"
#include "routing_check.h"

static TestStatus test_topk(TestCtx *ctx) {
    int n = fx_int(ctx, "n"), k = fx_int(ctx, "k");
    const float *p = fx_tensor(ctx, "p", n, NULL);
    int *idx = out_ints(ctx, k);
    float *val = out_buffer(ctx, k);
    student_begin(ctx);
    topk(idx, val, p, n, k);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "idx", idx, k);
    observe(ctx, "val", val, k);
    const int *want = want_ints(ctx, "idx", k);
    for (int j = 0; j < k; j++) {
        int got = idx[j], exp = want[j];
        if (got == exp) continue;
        if (got == UNWRITTEN_INT) return fail(ctx, "topk: idx[%d] was not written", j);
        if (got < 0 || got >= n)
            return fail(ctx, "topk: idx[%d] = %d is outside 0..%d", j, got, n - 1);
        if (p[got] == p[exp])
            return fail(ctx, "topk: idx[%d] = %d, expected %d: p[%d] and p[%d] are equal (%g), "
                        "and equal values keep the lower index first", j, got, exp, got, exp,
                        p[exp]);
        return fail(ctx, "topk: idx[%d] = %d (p = %g), expected %d (p = %g): idx lists the k "
                    "largest values in descending order", j, got, p[got], exp, p[exp]);
    }
    Layout l = {1, {"slot"}, {k}};
    return expect_close(ctx, "val", val, &l, 0.0f, 0.0f, "topk, val = p[idx]");
}

static TestStatus test_route(TestCtx *ctx) {
    int T = fx_int(ctx, "T");
    RouterConfig rc = {fx_int(ctx, "num_experts"), fx_int(ctx, "num_experts_per_tok"),
                       fx_int(ctx, "norm_topk_prob"), NULL};
    int E = rc.num_experts, k = rc.num_experts_per_tok;
    const int *disabled = fx_ints_opt(ctx, "disabled", E);
    if (disabled) {
        unsigned char *mask = test_alloc(ctx, (size_t)E);
        for (int e = 0; e < E; e++) mask[e] = (unsigned char)(disabled[e] != 0);
        rc.disabled = mask;
    }
    const float *logits = fx_tensor(ctx, "logits", (long)T * E, NULL);
    int *experts = out_ints(ctx, (long)T * k);
    float *weights = out_buffer(ctx, (long)T * k), *probs = out_buffer(ctx, (long)T * E);
    student_begin(ctx);
    for (int t = 0; t < T; t++)
        route(experts + (long)t * k, weights + (long)t * k, probs + (long)t * E,
              logits + (long)t * E, &rc);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "experts", experts, (long)T * k);
    observe(ctx, "weights", weights, (long)T * k);
    observe(ctx, "probs", probs, (long)T * E);
    const float *want_probs = want_tensor(ctx, "probs", (long)T * E);
    const int *want_experts = want_ints(ctx, "experts", (long)T * k);

    ChoiceShape shape = {"token", "expert", T, k, E, 0};
    int *match = out_ints(ctx, (long)T * k);
    TestStatus st = expect_same_choice(ctx, &shape, experts, want_experts, want_probs, match,
                                       "route, the chosen experts");
    if (st != TEST_PASS) return st;
    Layout lp = {2, {"token", "expert"}, {T, E}};
    st = expect_close(ctx, "probs", probs, &lp, 1e-6f, 1e-5f, "route, probs (softmax over all E)");
    if (st != TEST_PASS) return st;
    float *aligned = out_buffer(ctx, (long)T * k);
    align_to_expected(aligned, weights, match, T, k);
    Layout lw = {2, {"token", "slot"}, {T, k}};
    return expect_close(ctx, "weights", aligned, &lw, 1e-6f, 1e-5f,
                        "route, the weight of each chosen expert");
}

static TestStatus run_loss(TestCtx *ctx, int z_loss) {
    int N = fx_int(ctx, "N"), E = fx_int(ctx, "num_experts");
    int k = fx_int(ctx, "num_experts_per_tok");
    const float *logits = fx_tensor(ctx, "logits", (long)N * E, NULL);
    const float *probs = fx_tensor(ctx, "probs", (long)N * E, NULL);
    const int *experts = fx_ints(ctx, "experts", (long)N * k);
    float *got = out_buffer(ctx, 1);
    student_begin(ctx);
    got[0] = z_loss ? router_z_loss(logits, N, E) : load_balancing_loss(probs, experts, N, E, k);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "loss", got, 1);
    Layout l = {1, {"value"}, {1}};
    return expect_close(ctx, z_loss ? "z_loss" : "lb_loss", got, &l, 1e-5f, 1e-4f,
                        z_loss ? "router_z_loss" : "load_balancing_loss");
}

static TestStatus test_lb_loss(TestCtx *ctx) { return run_loss(ctx, 0); }
static TestStatus test_z_loss(TestCtx *ctx) { return run_loss(ctx, 1); }

static const TestDef TESTS[] = {
    {"topk", "topk_", test_topk},
    {"route", "route_", test_route},
    {"load_balancing_loss", "loss_", test_lb_loss},
    {"router_z_loss", "loss_", test_z_loss},
    {0},
};

const LessonDef LESSON_06 = {"06", "router", "router.c", "04", TESTS};
