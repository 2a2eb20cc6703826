/* Lesson 08 tests: attn_block and mlp_block layer by layer from the fixture's
 * intermediates, the whole model_forward (prefill, and one token at a time through the KV
 * cache), with the first diverging layer named on failure, and sample(). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "model_load.h"
#include "moekit.h"

/* ------------------------------------------------------------------------------------
 * a model from the fixture
 * ---------------------------------------------------------------------------------- */

typedef struct {
    Model m;
    int T, C, V;
    const int *ids;
    int ok;
} Case;

static Case open_case(TestCtx *ctx, int max_tokens) {
    Case k;
    char err[512];
    ModelConfig c;
    memset(&k, 0, sizeof k);
    const char *text = fx_meta(ctx, "config");
    if (config_parse(&c, text, strlen(text), "fixture config", err, sizeof err) != 0 ||
        model_build(&k.m, &c, fx_file(ctx), fx_prefix(ctx),
                    &(ModelOptions){.max_tokens = max_tokens}, err, sizeof err) != 0) {
        fail(ctx, "cannot build the fixture's model: %s", err);
        return k;
    }
    k.T = fx_int(ctx, "T");
    k.C = k.m.config.hidden_size;
    k.V = k.m.config.vocab_size;
    k.ids = fx_ints(ctx, "ids", k.T);
    k.ok = 1;
    return k;
}

static float *copy_of(TestCtx *ctx, const char *name, long n) {
    float *p = out_buffer(ctx, n);
    memcpy(p, fx_tensor(ctx, name, n, NULL), sizeof(float) * (size_t)n);
    return p;
}

/* ------------------------------------------------------------------------------------
 * layer by layer
 * ---------------------------------------------------------------------------------- */

static TestStatus check_attn(TestCtx *ctx, Case *k, int l, int quiet) {
    char in[64], want[64], what[96];
    snprintf(in, sizeof in, "layer%d.in", l);
    snprintf(want, sizeof want, "layer%d.after_attn", l);
    snprintf(what, sizeof what, "attn_block, layer %d (x + self_attn(input_layernorm(x)))", l);
    float *x = copy_of(ctx, in, (long)k->T * k->C);
    attn_block(&k->m, l, x, k->T, 0);
    Layout lay = {2, {"token", "hidden"}, {k->T, k->C}};
    return quiet ? matches(ctx, want, x, &lay, 1e-4f, 1e-3f)
                 : expect_close(ctx, want, x, &lay, 1e-4f, 1e-3f, what);
}

/* The chosen experts of a sparse layer, compared as sets per token. */
static TestStatus check_routing(TestCtx *ctx, Case *k, int l) {
    const MoeStats *st = &k->m.moe_scratch[l].stats;
    int E = k->m.config.num_experts, K = k->m.moe_config[l].router.num_experts_per_tok;
    char name[64];
    snprintf(name, sizeof name, "layer%d.router_logits", l);
    Layout lay = {2, {"token", "expert"}, {k->T, E}};
    TestStatus s = expect_close(ctx, name, st->logits, &lay, 1e-4f, 1e-3f, "router logits");
    if (s != TEST_PASS) return s;
    snprintf(name, sizeof name, "layer%d.experts", l);
    const int *want = fx_ints(ctx, name, (long)k->T * K);
    for (int t = 0; t < k->T; t++)
        for (int j = 0; j < K; j++) {
            int found = 0;
            for (int i = 0; i < K; i++) found |= st->experts[t * K + i] == want[t * K + j];
            if (!found)
                return fail(ctx, "layer %d, token %d: expert %d should be among the %d chosen "
                                 "(mlp_block must route with moe_forward)", l, t, want[t * K + j], K);
        }
    return TEST_PASS;
}

static TestStatus check_mlp(TestCtx *ctx, Case *k, int l, int quiet) {
    char in[64], want[64], what[96];
    snprintf(in, sizeof in, "layer%d.after_attn", l);
    snprintf(want, sizeof want, "layer%d.out", l);
    snprintf(what, sizeof what, "mlp_block, layer %d (%s)", l,
             k->m.layers[l].is_sparse ? "sparse: MoE" : "dense SwiGLU");
    float *x = copy_of(ctx, in, (long)k->T * k->C);
    mlp_block(&k->m, l, x, k->T);
    Layout lay = {2, {"token", "hidden"}, {k->T, k->C}};
    TestStatus s = quiet ? matches(ctx, want, x, &lay, 1e-4f, 1e-3f)
                         : expect_close(ctx, want, x, &lay, 1e-4f, 1e-3f, what);
    if (s == TEST_PASS && !quiet && k->m.layers[l].is_sparse) s = check_routing(ctx, k, l);
    return s;
}

typedef TestStatus (*LayerCheck)(TestCtx *, Case *, int, int);

static TestStatus per_layer(TestCtx *ctx, LayerCheck check) {
    Case k = open_case(ctx, 64);
    if (!k.ok) return TEST_FAIL;
    TestStatus s = TEST_PASS;
    student_begin(ctx);
    for (int l = 0; l < k.m.config.num_hidden_layers && s == TEST_PASS; l++) {
        s = check(ctx, &k, l, 0);
        if (student_todo(ctx)) s = TEST_TODO;
    }
    model_free(&k.m);
    return s;
}

static TestStatus test_attn_block(TestCtx *ctx) { return per_layer(ctx, check_attn); }
static TestStatus test_mlp_block(TestCtx *ctx) { return per_layer(ctx, check_mlp); }

/* ------------------------------------------------------------------------------------
 * the whole model
 * ---------------------------------------------------------------------------------- */

/* After a wrong logits tensor: replay each block from the fixture's own input and name the
 * first one whose output differs, so the student knows where to look. */
static void first_divergence(TestCtx *ctx, const Case *k0) {
    Case k = open_case(ctx, 64);
    if (!k.ok) return;
    const char *where = NULL;
    int layer = -1;
    for (int l = 0; l < k.m.config.num_hidden_layers && !where; l++) {
        if (check_attn(ctx, &k, l, 1) != TEST_PASS) where = "attn_block (lesson 04 inside it)";
        else if (check_mlp(ctx, &k, l, 1) != TEST_PASS)
            where = k.m.layers[l].is_sparse ? "mlp_block, the MoE layer (lesson 07 inside it)"
                                            : "mlp_block, the dense MLP (lesson 05 inside it)";
        layer = l;
    }
    if (where) printf("  first divergence: layer %d, %s; the layers before it match.\n", layer, where);
    else printf("  every layer matches on its own: look at the embedding lookup, the final norm "
                "(model.norm) and lm_head%s.\n", k0->m.config.tie_word_embeddings ? " (tied: embed_tokens)" : "");
    model_free(&k.m);
}

/* 1 when a fresh model's prefill gives the expected logits. */
static int prefill_matches(TestCtx *ctx) {
    Case k = open_case(ctx, 64);
    if (!k.ok) return 0;
    float *x = out_buffer(ctx, (long)k.T * k.C), *logits = out_buffer(ctx, (long)k.T * k.V);
    model_forward(&k.m, k.ids, k.T, 0, x, logits);
    Layout lay = {2, {"token", "vocab"}, {k.T, k.V}};
    int ok = matches(ctx, "logits", logits, &lay, 1e-4f, 1e-3f) == TEST_PASS;
    model_free(&k.m);
    return ok;
}

static TestStatus compare_logits(TestCtx *ctx, Case *k, const float *logits, const char *what,
                                 int decode) {
    Layout lay = {2, {"token", "vocab"}, {k->T, k->V}};
    TestStatus s = expect_close(ctx, "logits", logits, &lay, 1e-4f, 1e-3f, what);
    if (s != TEST_FAIL || !ctx_verbose(ctx)) return s;
    if (decode && prefill_matches(ctx))
        printf("  the prefill (all T tokens in one call) matches, one token at a time does not:\n"
               "  check the positions (token t of a call is at pos0 + t) and that every layer\n"
               "  keeps its own KV cache (m->cache[layer]).\n");
    else
        first_divergence(ctx, k);
    return s;
}

static TestStatus test_model_forward(TestCtx *ctx) {
    Case k = open_case(ctx, 64);
    if (!k.ok) return TEST_FAIL;
    float *x = out_buffer(ctx, (long)k.T * k.C), *logits = out_buffer(ctx, (long)k.T * k.V);
    student_begin(ctx);
    model_forward(&k.m, k.ids, k.T, 0, x, logits);
    TestStatus s = student_todo(ctx) ? TEST_TODO
                                     : compare_logits(ctx, &k, logits, "model_forward (prefill)", 0);
    model_free(&k.m);
    return s;
}

/* Decode: T calls of one token each through the KV cache must equal the prefill. */
static TestStatus test_decode(TestCtx *ctx) {
    Case k = open_case(ctx, 1);
    if (!k.ok) return TEST_FAIL;
    float *x = out_buffer(ctx, k.C), *logits = out_buffer(ctx, (long)k.T * k.V);
    student_begin(ctx);
    for (int t = 0; t < k.T; t++) model_forward(&k.m, k.ids + t, 1, t, x, logits + (long)t * k.V);
    TestStatus s = student_todo(ctx) ? TEST_TODO
                   : compare_logits(ctx, &k, logits, "model_forward one token at a time (decode)", 1);
    model_free(&k.m);
    return s;
}

/* ------------------------------------------------------------------------------------
 * sampling
 * ---------------------------------------------------------------------------------- */

static TestStatus test_greedy(TestCtx *ctx) {
    int V = fx_int(ctx, "V");
    const float *logits = fx_tensor(ctx, "logits", V, NULL);
    int want = fx_ints(ctx, "argmax", 1)[0];
    Sampler s = {0.0f, 1.0f, 1};
    student_begin(ctx);
    int got = sample(logits, V, &s, out_buffer(ctx, 3L * V));
    if (student_todo(ctx)) return TEST_TODO;
    if (got != want)
        return fail(ctx, "sample with temperature 0 returned %d, the argmax is %d "
                         "(logit %.4f vs %.4f)", got, want, logits[got >= 0 && got < V ? got : want],
                    logits[want]);
    return TEST_PASS;
}

/* 4000 draws: all inside the nucleus, and each id about as often as its renormalised
 * probability says (within 4 standard deviations). */
static TestStatus test_sampling(TestCtx *ctx) {
    enum { DRAWS = 4000 };
    int V = fx_int(ctx, "V");
    const float *logits = fx_tensor(ctx, "logits", V, NULL);
    const float *probs = fx_tensor(ctx, "probs", V, NULL), *nucleus = fx_tensor(ctx, "nucleus", V, NULL);
    Sampler s = {fx_float(ctx, "temperature"), fx_float(ctx, "top_p"), 0x2545F4914F6CDD1DULL};
    float *count = out_buffer(ctx, V), *scratch = out_buffer(ctx, 3L * V);
    double mass = 0.0;
    for (int i = 0; i < V; i++) count[i] = 0.0f, mass += nucleus[i] * probs[i];
    student_begin(ctx);
    for (int d = 0; d < DRAWS; d++) {
        int id = sample(logits, V, &s, scratch);
        if (student_todo(ctx)) return TEST_TODO;
        if (id < 0 || id >= V) return fail(ctx, "draw %d returned %d, not an id 0..%d", d, id, V - 1);
        if (nucleus[id] == 0.0f)
            return fail(ctx, "draw %d returned id %d (probability %.4f), outside the top-p %.2f "
                             "nucleus", d, id, probs[id], fx_float(ctx, "top_p"));
        count[id] += 1.0f;
    }
    for (int i = 0; i < V; i++) {
        double p = nucleus[i] * probs[i] / mass, sd = sqrt(DRAWS * p * (1 - p)) + 1.0;
        if (fabs(count[i] - DRAWS * p) > 4 * sd)
            return fail(ctx, "id %d was drawn %d times in %d, expected about %.0f "
                             "(probability %.4f after top-p)", i, (int)count[i], DRAWS, DRAWS * p, p);
    }
    return TEST_PASS;
}

static const TestDef TESTS[] = {
    {"attn_block", "model_", test_attn_block},
    {"mlp_block", "model_", test_mlp_block},
    {"model_forward", "model_", test_model_forward},
    {"model_forward (decode)", "model_", test_decode},
    {"sample (greedy)", "sample_", test_greedy},
    {"sample (temperature, top-p)", "sample_", test_sampling},
    {0},
};

const LessonDef LESSON_08 = {"08", "model", "model.c", "01020304050607", TESTS};
