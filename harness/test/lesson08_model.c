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

static void free_model(void *m) { model_free(m); }

/* The fixture's model, freed when the test ends (test_cleanup). */
static Case *open_case(TestCtx *ctx, int max_tokens) {
    Case *k = test_alloc(ctx, sizeof *k);
    char err[512];
    ModelConfig c;
    memset(k, 0, sizeof *k);
    const char *text = fx_meta(ctx, "config");
    if (config_parse(&c, text, strlen(text), "fixture config", err, sizeof err) != 0 ||
        model_build(&k->m, &c, fx_file(ctx), fx_prefix(ctx),
                    &(ModelOptions){.max_tokens = max_tokens}, err, sizeof err) != 0) {
        fail(ctx, "cannot build the fixture's model: %s", err);
        return k;
    }
    test_cleanup(ctx, free_model, &k->m);
    k->T = fx_int(ctx, "T");
    k->C = k->m.config.hidden_size;
    k->V = k->m.config.vocab_size;
    k->ids = fx_ints(ctx, "ids", k->T);
    k->ok = 1;
    return k;
}

static float *copy_of(TestCtx *ctx, const char *name, long n) {
    float *p = out_buffer(ctx, n);
    memcpy(p, fx_tensor(ctx, name, n, NULL), sizeof(float) * (size_t)n);
    return p;
}

/* ------------------------------------------------------------------------------------
 * layer by layer: each block on the fixture's own input
 * ---------------------------------------------------------------------------------- */

/* What one layer's blocks gave: x after attn_block, after mlp_block, and the routing of a
 * sparse layer (NULL for a dense one). */
typedef struct {
    float *after_attn, *out, *router_logits;
    int *experts;
} LayerOut;

static float *run_attn(TestCtx *ctx, Case *k, int l, const char *tag) {
    char name[64];
    snprintf(name, sizeof name, "layer%d.in", l);
    float *x = copy_of(ctx, name, (long)k->T * k->C);
    attn_block(&k->m, l, x, k->T, 0);
    snprintf(name, sizeof name, "%slayer%d.after_attn", tag, l);
    observe(ctx, name, x, (long)k->T * k->C);
    return x;
}

static void run_mlp(TestCtx *ctx, Case *k, int l, const char *tag, LayerOut *o) {
    char name[64];
    int E = k->m.config.num_experts, K = k->m.moe_config[l].router.num_experts_per_tok;
    snprintf(name, sizeof name, "layer%d.after_attn", l);
    o->out = copy_of(ctx, name, (long)k->T * k->C);
    mlp_block(&k->m, l, o->out, k->T);
    snprintf(name, sizeof name, "%slayer%d.out", tag, l);
    observe(ctx, name, o->out, (long)k->T * k->C);
    if (!k->m.weights.layers[l].is_sparse) return;
    const MoeStats *st = &k->m.state.moe_scratch[l].stats;
    o->router_logits = out_buffer(ctx, (long)k->T * E);
    o->experts = out_ints(ctx, (long)k->T * K);
    memcpy(o->router_logits, st->logits, sizeof(float) * (size_t)k->T * E);
    memcpy(o->experts, st->experts, sizeof(int) * (size_t)k->T * K);
    snprintf(name, sizeof name, "%slayer%d.router_logits", tag, l);
    observe(ctx, name, o->router_logits, (long)k->T * E);
    snprintf(name, sizeof name, "%slayer%d.experts", tag, l);
    observe_ints(ctx, name, o->experts, (long)k->T * K);
}

static TestStatus check_attn(TestCtx *ctx, Case *k, int l, const float *x, int quiet) {
    char want[64], what[96];
    snprintf(want, sizeof want, "layer%d.after_attn", l);
    snprintf(what, sizeof what, "attn_block, layer %d (x + self_attn(input_layernorm(x)))", l);
    Layout lay = {2, {"token", "hidden"}, {k->T, k->C}};
    return quiet ? matches(ctx, want, x, &lay, 1e-4f, 1e-3f)
                 : expect_close(ctx, want, x, &lay, 1e-4f, 1e-3f, what);
}

/* The chosen experts of a sparse layer, compared as sets per token. */
static TestStatus check_routing(TestCtx *ctx, Case *k, int l, const LayerOut *o) {
    int E = k->m.config.num_experts, K = k->m.moe_config[l].router.num_experts_per_tok;
    char name[64];
    snprintf(name, sizeof name, "layer%d.router_logits", l);
    Layout lay = {2, {"token", "expert"}, {k->T, E}};
    TestStatus s = expect_close(ctx, name, o->router_logits, &lay, 1e-4f, 1e-3f, "router logits");
    if (s != TEST_PASS) return s;
    snprintf(name, sizeof name, "layer%d.experts", l);
    const int *want = want_ints(ctx, name, (long)k->T * K);
    for (int t = 0; t < k->T; t++)
        for (int j = 0; j < K; j++) {
            int found = 0;
            for (int i = 0; i < K; i++) found |= o->experts[t * K + i] == want[t * K + j];
            if (!found)
                return fail(ctx, "layer %d, token %d: expert %d should be among the %d chosen "
                                 "(mlp_block must route with moe_forward)", l, t, want[t * K + j], K);
        }
    return TEST_PASS;
}

static TestStatus check_mlp(TestCtx *ctx, Case *k, int l, const LayerOut *o, int quiet) {
    char want[64], what[96];
    snprintf(want, sizeof want, "layer%d.out", l);
    snprintf(what, sizeof what, "mlp_block, layer %d (%s)", l,
             k->m.weights.layers[l].is_sparse ? "sparse: MoE" : "dense SwiGLU");
    Layout lay = {2, {"token", "hidden"}, {k->T, k->C}};
    TestStatus s = quiet ? matches(ctx, want, o->out, &lay, 1e-4f, 1e-3f)
                         : expect_close(ctx, want, o->out, &lay, 1e-4f, 1e-3f, what);
    if (s == TEST_PASS && !quiet && k->m.weights.layers[l].is_sparse)
        s = check_routing(ctx, k, l, o);
    return s;
}

static TestStatus test_attn_block(TestCtx *ctx) {
    Case *k = open_case(ctx, 64);
    if (!k->ok) return TEST_FAIL;
    int L = k->m.config.num_hidden_layers;
    float **x = test_alloc(ctx, sizeof *x * (size_t)L);
    student_begin(ctx);
    for (int l = 0; l < L; l++) x[l] = run_attn(ctx, k, l, "");
    if (student_todo(ctx)) return TEST_TODO;
    TestStatus s = TEST_PASS;
    for (int l = 0; l < L && s == TEST_PASS; l++) s = check_attn(ctx, k, l, x[l], 0);
    return s;
}

static TestStatus test_mlp_block(TestCtx *ctx) {
    Case *k = open_case(ctx, 64);
    if (!k->ok) return TEST_FAIL;
    int L = k->m.config.num_hidden_layers;
    LayerOut *o = test_alloc(ctx, sizeof *o * (size_t)L);
    memset(o, 0, sizeof *o * (size_t)L);
    student_begin(ctx);
    for (int l = 0; l < L; l++) run_mlp(ctx, k, l, "", &o[l]);
    if (student_todo(ctx)) return TEST_TODO;
    TestStatus s = TEST_PASS;
    for (int l = 0; l < L && s == TEST_PASS; l++) s = check_mlp(ctx, k, l, &o[l], 0);
    return s;
}

/* ------------------------------------------------------------------------------------
 * the whole model, and where it first goes wrong
 * ---------------------------------------------------------------------------------- */

/* What the diagnosis of a wrong logits tensor runs: a fresh model's prefill (for a decode
 * that fails), and each block from the fixture's own input. */
typedef struct {
    float *prefill_logits; /* NULL unless decode */
    float **after_attn;
    LayerOut *layers;
    int n_layers;
    int tied;
} Diagnosis;

static Diagnosis run_diagnosis(TestCtx *ctx, int decode) {
    Diagnosis d = {0};
    Case *k = open_case(ctx, 64);
    if (!k->ok) return d;
    if (decode) {
        float *x = out_buffer(ctx, (long)k->T * k->C);
        d.prefill_logits = out_buffer(ctx, (long)k->T * k->V);
        model_forward(&k->m, k->ids, k->T, 0, x, d.prefill_logits);
        observe(ctx, "diag.prefill.logits", d.prefill_logits, (long)k->T * k->V);
    }
    d.n_layers = k->m.config.num_hidden_layers;
    d.tied = k->m.config.tie_word_embeddings;
    d.after_attn = test_alloc(ctx, sizeof *d.after_attn * (size_t)d.n_layers);
    d.layers = test_alloc(ctx, sizeof *d.layers * (size_t)d.n_layers);
    memset(d.layers, 0, sizeof *d.layers * (size_t)d.n_layers);
    for (int l = 0; l < d.n_layers; l++) {
        d.after_attn[l] = run_attn(ctx, k, l, "diag.");
        run_mlp(ctx, k, l, "diag.", &d.layers[l]);
    }
    return d;
}

/* After a wrong logits tensor: name the first block whose output differs, so the student
 * knows where to look. */
static void print_diagnosis(TestCtx *ctx, const Diagnosis *d, int decode) {
    Case *k = open_case(ctx, 64);
    if (!k->ok || !d->after_attn) return;
    Layout lay = {2, {"token", "vocab"}, {k->T, k->V}};
    if (decode && matches(ctx, "logits", d->prefill_logits, &lay, 1e-4f, 1e-3f) == TEST_PASS) {
        printf("  the prefill (all T tokens in one call) matches, one token at a time does not:\n"
               "  check the positions (token t of a call is at pos0 + t) and that every layer\n"
               "  keeps its own KV cache (m->state.cache[layer]).\n");
        return;
    }
    for (int l = 0; l < d->n_layers; l++) {
        const char *where = NULL;
        if (check_attn(ctx, k, l, d->after_attn[l], 1) != TEST_PASS) where = "attn_block (lesson 04 inside it)";
        else if (check_mlp(ctx, k, l, &d->layers[l], 1) != TEST_PASS)
            where = k->m.weights.layers[l].is_sparse ? "mlp_block, the MoE layer (lesson 07 inside it)"
                                             : "mlp_block, the dense MLP (lesson 05 inside it)";
        if (where) {
            printf("  first divergence: layer %d, %s; the layers before it match.\n", l, where);
            return;
        }
    }
    printf("  every layer matches on its own: look at the embedding lookup, the final norm "
           "(model.norm) and lm_head%s.\n", d->tied ? " (tied: embed_tokens)" : "");
}

/* The logits, observed; in the sandbox the diagnosis runs before the verdict (check.h). */
static TestStatus compare_logits(TestCtx *ctx, Case *k, float *logits, const char *what,
                                 int decode) {
    observe(ctx, "logits", logits, (long)k->T * k->V);
    Diagnosis d = {0};
    if (ctx_sandboxed(ctx)) d = run_diagnosis(ctx, decode);
    Layout lay = {2, {"token", "vocab"}, {k->T, k->V}};
    TestStatus s = expect_close(ctx, "logits", logits, &lay, 1e-4f, 1e-3f, what);
    if (!ctx_diagnose(ctx, s)) return s;
    d = run_diagnosis(ctx, decode);
    print_diagnosis(ctx, &d, decode);
    return s;
}

static TestStatus test_model_forward(TestCtx *ctx) {
    Case *k = open_case(ctx, 64);
    if (!k->ok) return TEST_FAIL;
    float *x = out_buffer(ctx, (long)k->T * k->C), *logits = out_buffer(ctx, (long)k->T * k->V);
    student_begin(ctx);
    model_forward(&k->m, k->ids, k->T, 0, x, logits);
    if (student_todo(ctx)) return TEST_TODO;
    return compare_logits(ctx, k, logits, "model_forward (prefill)", 0);
}

/* Decode: T calls of one token each through the KV cache must equal the prefill. */
static TestStatus test_decode(TestCtx *ctx) {
    Case *k = open_case(ctx, 1);
    if (!k->ok) return TEST_FAIL;
    float *x = out_buffer(ctx, k->C), *logits = out_buffer(ctx, (long)k->T * k->V);
    student_begin(ctx);
    for (int t = 0; t < k->T; t++) model_forward(&k->m, k->ids + t, 1, t, x, logits + (long)t * k->V);
    if (student_todo(ctx)) return TEST_TODO;
    return compare_logits(ctx, k, logits, "model_forward one token at a time (decode)", 1);
}

/* Property: decode equals prefill. Fresh token ids (1 to 12 of them) through the case's
 * model, once as a prompt and once one token at a time through the KV cache: the same
 * logits, whatever the ids. */
static TestStatus test_decode_prefill(TestCtx *ctx) {
    Case *k = open_case(ctx, 16);
    if (!k->ok) return TEST_FAIL;
    int T = 1 + (int)(random_uniform(ctx) * 12), V = k->V;
    int *ids = test_alloc(ctx, sizeof(int) * (size_t)T);
    for (int t = 0; t < T; t++) ids[t] = (int)(random_uniform(ctx) * V);
    float *x = out_buffer(ctx, (long)T * k->C), *logits = out_buffer(ctx, 2L * T * V);
    student_begin(ctx);
    model_forward(&k->m, ids, T, 0, x, logits);
    for (int t = 0; t < T; t++) model_forward(&k->m, ids + t, 1, t, x, logits + (long)(T + t) * V);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "logits", logits, 2L * T * V);
    judging(ctx);
    Layout l = {2, {"token", "vocab"}, {T, V}};
    return expect_property(ctx, "decode (one token per call) equals prefill", logits + (long)T * V,
                           logits, &l, 1e-4f, 1e-3f);
}

/* ------------------------------------------------------------------------------------
 * sampling
 * ---------------------------------------------------------------------------------- */

static TestStatus test_greedy(TestCtx *ctx) {
    int V = fx_int(ctx, "V");
    const float *logits = fx_tensor(ctx, "logits", V, NULL);
    Sampler s = {0.0f, 1.0f, 1};
    int got[1];
    student_begin(ctx);
    got[0] = sample(logits, V, &s, out_buffer(ctx, 3L * V));
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "id", got, 1);
    int want = want_ints(ctx, "argmax", 1)[0];
    if (got[0] != want)
        return fail(ctx, "sample with temperature 0 returned %d, the argmax is %d "
                         "(logit %.4f vs %.4f)", got[0], want,
                    logits[got[0] >= 0 && got[0] < V ? got[0] : want], logits[want]);
    return TEST_PASS;
}

/* 4000 draws: all inside the nucleus, and each id about as often as its renormalised
 * probability says (within 4 standard deviations). */
static TestStatus test_sampling(TestCtx *ctx) {
    enum { DRAWS = 4000 };
    int V = fx_int(ctx, "V");
    const float *logits = fx_tensor(ctx, "logits", V, NULL);
    Sampler s = {fx_float(ctx, "temperature"), fx_float(ctx, "top_p"), 0x2545F4914F6CDD1DULL};
    float *scratch = out_buffer(ctx, 3L * V);
    int *ids = out_ints(ctx, DRAWS);
    student_begin(ctx);
    for (int d = 0; d < DRAWS; d++) {
        ids[d] = sample(logits, V, &s, scratch);
        if (student_todo(ctx)) return TEST_TODO;
    }
    observe_ints(ctx, "draws", ids, DRAWS);
    const float *probs = want_tensor(ctx, "probs", V), *nucleus = want_tensor(ctx, "nucleus", V);
    float *count = out_buffer(ctx, V);
    double mass = 0.0;
    for (int i = 0; i < V; i++) count[i] = 0.0f, mass += nucleus[i] * probs[i];
    for (int d = 0; d < DRAWS; d++) {
        int id = ids[d];
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
    {PROPERTY "decode equals prefill", "model_", test_decode_prefill},
    {"sample (greedy)", "sample_", test_greedy},
    {"sample (temperature, top-p)", "sample_", test_sampling},
    {0},
};

const LessonDef LESSON_08 = {"08", "model", "model.c", "01020304050607", TESTS};
