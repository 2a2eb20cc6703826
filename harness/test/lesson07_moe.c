/* Lesson 07 tests: moe_forward's output, then its statistics and its cost: the chosen
 * experts per token (-1 where the capacity limit dropped a slot), the rows per expert, the
 * number dropped, and that only the tokens' own experts ran (idle experts get NaN weights,
 * so running one shows in the output). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "moekit.h"
#include "routing_check.h"

typedef struct {
    int T;
    MoeConfig c;
    MoeWeights w;
    const float *h;
} MoeCase;

static MoeCase read_moe(TestCtx *ctx) {
    MoeCase m;
    m.T = fx_int(ctx, "T");
    m.c.hidden_size = fx_int(ctx, "hidden_size");
    m.c.moe_intermediate_size = fx_int(ctx, "moe_intermediate_size");
    m.c.shared_expert_intermediate_size = fx_int(ctx, "shared_expert_intermediate_size");
    m.c.router = (RouterConfig){fx_int(ctx, "num_experts"), fx_int(ctx, "num_experts_per_tok"),
                                fx_int(ctx, "norm_topk_prob"), NULL};
    m.c.capacity_factor = fx_float(ctx, "capacity_factor");
    m.w = fx_moe_weights(ctx, m.c.router.num_experts, m.c.hidden_size,
                         m.c.moe_intermediate_size, m.c.shared_expert_intermediate_size);
    m.h = fx_tensor(ctx, "h", (long)m.T * m.c.hidden_size, NULL);
    return m;
}

static TestStatus test_moe_forward(TestCtx *ctx) {
    MoeCase m = read_moe(ctx);
    int T = m.T, C = m.c.hidden_size;
    float *out = out_buffer(ctx, (long)T * C);
    MoeScratch s;
    if (moe_scratch_init(&s, &m.c, T) != 0) return fail(ctx, "out of memory in moe_scratch_init");
    /* moe_twice_*: then other tokens h2 through the same scratch, as every layer's scratch
     * serves one call per forward pass: nothing the first call left there may count */
    const float *h2 = fx_tensor_opt(ctx, "h2", (long)T * C);
    float *out2 = out_buffer(ctx, (long)T * C);
    student_begin(ctx);
    moe_forward(out, m.h, T, &m.c, &m.w, &s);
    if (h2) moe_forward(out2, h2, T, &m.c, &m.w, &s);
    moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, (long)T * C);
    if (h2) observe(ctx, "out2", out2, (long)T * C);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    TestStatus st = expect_close(ctx, "out", out, &l, 1e-5f, 1e-4f, "moe_forward");
    if (st == TEST_PASS && h2)
        st = expect_close(ctx, "out2", out2, &l, 1e-5f, 1e-4f,
                          "moe_forward called again on the same scratch, with other tokens");
    return st;
}

/* What moe_forward left in s->stats, copied out before the scratch is freed. */
typedef struct {
    int T, dropped;
    long expert_rows;
    int *experts, *expert_count;
    float *weights;
} StatsCopy;

static StatsCopy copy_stats(TestCtx *ctx, const MoeStats *st, int T, int k, int E) {
    StatsCopy c = {st->T, st->dropped, st->expert_rows, out_ints(ctx, (long)T * k),
                   out_ints(ctx, E), out_buffer(ctx, (long)T * k)};
    for (long i = 0; i < (long)T * k; i++) {
        c.experts[i] = st->experts[i];
        c.weights[i] = st->weights[i];
    }
    for (int e = 0; e < E; e++) c.expert_count[e] = st->expert_count[e];
    return c;
}

/* The copy, as the judge sees it (check.h, "run first, judge after"). */
static void observe_stats(TestCtx *ctx, StatsCopy *c, int T, int k, int E) {
    int counts[3] = {c->T, c->dropped,
                     c->expert_rows > 1000000000L || c->expert_rows < -1000000000L
                         ? -1000000000 : (int)c->expert_rows};
    observe_ints(ctx, "stats.counts", counts, 3);
    c->T = counts[0], c->dropped = counts[1], c->expert_rows = counts[2];
    observe_ints(ctx, "stats.experts", c->experts, (long)T * k);
    observe_ints(ctx, "stats.expert_count", c->expert_count, E);
    observe(ctx, "stats.weights", c->weights, (long)T * k);
}

/* Experts that no token chose (expected count 0) get NaN weights: running one anyway puts
 * NaN into out, even where its weight is 0. Returns how many. */
static int poison_idle_experts(TestCtx *ctx, MoeCase *m, const int *want_count) {
    long n = (long)m->c.moe_intermediate_size * m->c.hidden_size;
    float *nan = out_buffer(ctx, n);
    int idle = 0;
    for (int e = 0; e < m->c.router.num_experts; e++)
        if (want_count[e] == 0) m->w.experts[e] = (ExpertWeights){nan, nan, nan}, idle++;
    return idle;
}

static TestStatus check_cost(TestCtx *ctx, const StatsCopy *got, const float *out, long n_out,
                             int T, int k, int E, int idle) {
    for (long i = 0; i < n_out; i++)
        if (isnan(out[i]))
            return fail(ctx, "out holds NaN: an expert that no token chose was run (this "
                        "test gives the %d idle expert(s) NaN weights). Run only the experts "
                        "whose expert_count is not 0: the cost follows the tokens routed.", idle);
    long sum = 0;
    for (int e = 0; e < E; e++) sum += got->expert_count[e];
    long routed = (long)T * k - got->dropped;
    if (got->expert_rows != sum || got->expert_rows != routed)
        return fail(ctx, "stats.expert_rows = %ld, expected %ld: T * k = %d * %d assignments, "
                    "%d dropped, and the sum of expert_count is %ld. Each expert runs once, "
                    "over its own rows only (E = %d does not enter the cost).",
                    got->expert_rows, routed, T, k, got->dropped, sum, E);
    return TEST_PASS;
}

static TestStatus test_moe_stats(TestCtx *ctx) {
    MoeCase m = read_moe(ctx);
    int T = m.T, C = m.c.hidden_size;
    int E = m.c.router.num_experts, k = m.c.router.num_experts_per_tok;
    /* which experts no token chose is an input of this test (the sandbox has it): it
     * gives away no output the test would accept alone */
    const int *want_count = fx_ints(ctx, "expert_count", E);
    int idle = poison_idle_experts(ctx, &m, want_count);
    float *out = out_buffer(ctx, (long)T * C);
    for (long i = 0; i < (long)T * C; i++) out[i] = 0.0f; /* only idle experts make NaN here */
    MoeScratch s;
    if (moe_scratch_init(&s, &m.c, T) != 0) return fail(ctx, "out of memory in moe_scratch_init");
    s.stats.T = s.stats.dropped = UNWRITTEN_INT;
    s.stats.expert_rows = UNWRITTEN_INT;
    for (int e = 0; e < E; e++) s.stats.expert_count[e] = UNWRITTEN_INT;
    student_begin(ctx);
    moe_forward(out, m.h, T, &m.c, &m.w, &s);
    StatsCopy got = copy_stats(ctx, &s.stats, T, k, E);
    moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe_stats(ctx, &got, T, k, E);
    observe(ctx, "out", out, (long)T * C);
    const int *want_experts = want_ints(ctx, "experts", (long)T * k);
    const int *want_dropped = want_ints(ctx, "dropped", 1);

    if (got.T != T) return fail(ctx, "stats.T = %d, expected %d (the tokens routed)", got.T, T);
    ChoiceShape shape = {"token", "expert", T, k, E, 1};
    int *match = out_ints(ctx, (long)T * k);
    TestStatus st = expect_same_choice(ctx, &shape, got.experts, want_experts, NULL, match,
                                       "stats.experts");
    if (st == TEST_PASS)
        st = expect_equal_ints(ctx, "stats.expert_count", got.expert_count, want_count, E,
                               "rows per expert");
    if (st == TEST_PASS && got.dropped != want_dropped[0])
        st = fail(ctx, "stats.dropped = %d, expected %d (capacity_factor %g: each expert takes "
                  "at most ceil(capacity_factor * T * k / E) rows, first come first served)",
                  got.dropped, want_dropped[0], m.c.capacity_factor);
    if (st == TEST_PASS) st = check_cost(ctx, &got, out, (long)T * C, T, k, E, idle);
    if (st != TEST_PASS) return st;
    /* the weights of the kept slots, per expert (a dropped slot's weight is not compared) */
    const float *want_weights = want_tensor(ctx, "weights", (long)T * k);
    float *aligned = out_buffer(ctx, (long)T * k);
    align_to_expected(aligned, got.weights, match, T, k);
    for (long i = 0; i < (long)T * k; i++)
        if (want_experts[i] < 0) aligned[i] = want_weights[i];
    Layout l = {2, {"token", "slot"}, {T, k}};
    return expect_close(ctx, "weights", aligned, &l, 1e-6f, 1e-5f, "stats.weights");
}

/* Property: an expert's number is only a name. Renumbering the experts, and the router's
 * rows (the logits' columns) with them, leaves the output as it was: on fresh tokens h,
 * with the case's weights and a fresh permutation. */
static TestStatus test_permutation(TestCtx *ctx) {
    MoeCase m = read_moe(ctx);
    int T = m.T, C = m.c.hidden_size, E = m.c.router.num_experts;
    float *h = test_alloc(ctx, sizeof(float) * (size_t)T * C), *gate = test_alloc(ctx, sizeof(float) * (size_t)E * C);
    float *out = out_buffer(ctx, 2L * T * C);
    int *perm = test_alloc(ctx, sizeof(int) * (size_t)E);
    random_fill(ctx, h, (long)T * C, 1.0f);
    for (int e = 0; e < E; e++) perm[e] = e;
    for (int e = E - 1; e > 0; e--) { /* Fisher-Yates */
        int j = (int)(random_uniform(ctx) * (e + 1)), tmp = perm[e];
        perm[e] = perm[j], perm[j] = tmp;
    }
    MoeWeights pw = m.w; /* expert e of pw is expert perm[e] of m.w */
    pw.experts = test_alloc(ctx, sizeof(ExpertWeights) * (size_t)E);
    pw.gate = gate;
    for (int e = 0; e < E; e++) {
        pw.experts[e] = m.w.experts[perm[e]];
        memcpy(gate + (long)e * C, m.w.gate + (long)perm[e] * C, sizeof(float) * (size_t)C);
    }
    MoeScratch s;
    if (moe_scratch_init(&s, &m.c, T) != 0) return fail(ctx, "out of memory in moe_scratch_init");
    student_begin(ctx);
    moe_forward(out, h, T, &m.c, &m.w, &s);
    moe_forward(out + (long)T * C, h, T, &m.c, &pw, &s);
    moe_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, 2L * T * C);
    judging(ctx);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    return expect_property(ctx, "moe_forward with the experts renumbered equals moe_forward",
                           out + (long)T * C, out, &l, 1e-5f, 1e-4f);
}

static const TestDef TESTS[] = {
    {"moe_forward", "moe_", test_moe_forward},
    {PROPERTY "moe_forward ignores the experts' numbering", "moe_e8_k2", test_permutation},
    {"moe_forward stats", "moe_", test_moe_stats},
    {0},
};

const LessonDef LESSON_07 = {"07", "moe", "moe.c", "01040506", TESTS};
