/* Lesson 04 tests: softmax, attention (one query over a cache), attention_prefill,
 * and self_attn_forward: the whole prompt in one call, one token per call, and a prompt
 * followed by more tokens, all through the KV cache and all equal to PyTorch's prefill. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "moekit.h"

static TestStatus test_softmax(TestCtx *ctx) {
    int rows = fx_int(ctx, "rows"), n = fx_int(ctx, "n");
    const float *x = fx_tensor(ctx, "x", (long)rows * n, NULL);
    float *y = out_buffer(ctx, (long)rows * n);
    memcpy(y, x, sizeof(float) * rows * n);
    student_begin(ctx);
    for (int r = 0; r < rows; r++) softmax(y + (long)r * n, n);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)rows * n);
    Layout l = {2, {"row", "col"}, {rows, n}};
    return expect_close(ctx, "y", y, &l, 1e-6f, 1e-5f, "softmax");
}

/* Property: softmax rows are probabilities: each in [0, 1], each row summing to 1, on
 * fresh rows (the case's shapes) with logits up to +-30. */
static TestStatus test_softmax_sums(TestCtx *ctx) {
    int rows = fx_int(ctx, "rows"), n = fx_int(ctx, "n");
    float *y = out_buffer(ctx, (long)rows * n);
    random_fill(ctx, y, (long)rows * n, 30.0f);
    student_begin(ctx);
    for (int r = 0; r < rows; r++) softmax(y + (long)r * n, n);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, (long)rows * n);
    judging(ctx);
    float *sum = test_alloc(ctx, sizeof(float) * (size_t)rows), *one = test_alloc(ctx, sizeof(float) * (size_t)rows);
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            float p = y[(long)r * n + i];
            s += p >= 0.0f && p <= 1.0f ? p : NAN; /* outside [0, 1]: no probability */
        }
        sum[r] = (float)s, one[r] = 1.0f;
    }
    Layout l = {1, {"row"}, {rows}};
    return expect_property(ctx, "each row sums to 1, each value in [0, 1]", sum, one, &l, 1e-5f, 0.0f);
}

typedef struct {
    AttnShape s;
    int T;
    const float *q, *k, *v;
    Layout out_layout;
} PrefillCase;

static PrefillCase read_prefill(TestCtx *ctx) {
    PrefillCase c;
    c.T = fx_int(ctx, "T");
    c.s.num_attention_heads = fx_int(ctx, "num_attention_heads");
    c.s.num_key_value_heads = fx_int(ctx, "num_key_value_heads");
    c.s.head_dim = fx_int(ctx, "head_dim");
    long H = c.s.num_attention_heads, KV = c.s.num_key_value_heads, D = c.s.head_dim;
    c.q = fx_tensor(ctx, "q", c.T * H * D, NULL);
    c.k = fx_tensor(ctx, "k", c.T * KV * D, NULL);
    c.v = fx_tensor(ctx, "v", c.T * KV * D, NULL);
    c.out_layout = (Layout){3, {"token", "head", "dim"}, {c.T, H, D}};
    return c;
}

/* attention() alone: token t is a decode step over a cache holding positions 0..t. */
static TestStatus test_attention(TestCtx *ctx) {
    PrefillCase c = read_prefill(ctx);
    long q_stride = (long)c.s.num_attention_heads * c.s.head_dim;
    long kv_stride = (long)c.s.num_key_value_heads * c.s.head_dim;
    float *out = out_buffer(ctx, c.T * q_stride);
    student_begin(ctx);
    for (int t = 0; t < c.T; t++) {
        /* a cache of exactly t + 1 rows, so reading past them is an ASan error */
        float *k_cache = out_buffer(ctx, (t + 1) * kv_stride);
        float *v_cache = out_buffer(ctx, (t + 1) * kv_stride);
        memcpy(k_cache, c.k, sizeof(float) * (t + 1) * kv_stride);
        memcpy(v_cache, c.v, sizeof(float) * (t + 1) * kv_stride);
        attention(out + t * q_stride, c.q + t * q_stride, k_cache, v_cache, t + 1, &c.s,
                  out_buffer(ctx, t + 1));
    }
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, c.T * q_stride);
    return expect_close(ctx, "out", out, &c.out_layout, 1e-5f, 1e-4f,
                        "attention, query t over cache rows 0..t");
}

static TestStatus test_attention_prefill(TestCtx *ctx) {
    PrefillCase c = read_prefill(ctx);
    float *out = out_buffer(ctx, c.T * (long)c.s.num_attention_heads * c.s.head_dim);
    float *att = out_buffer(ctx, c.T);
    student_begin(ctx);
    attention_prefill(out, c.q, c.k, c.v, c.T, &c.s, att);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "out", out, c.T * (long)c.s.num_attention_heads * c.s.head_dim);
    return expect_close(ctx, "out", out, &c.out_layout, 1e-5f, 1e-4f, "attention_prefill");
}

/* ------------------------------------------------------------------------------------
 * self_attn_forward: the same T tokens fed in chunks, compared with PyTorch's prefill
 * ---------------------------------------------------------------------------------- */

static SelfAttnWeights read_weights(TestCtx *ctx, const SelfAttnConfig *c) {
    long H = c->shape.num_attention_heads, KV = c->shape.num_key_value_heads;
    long D = c->shape.head_dim, C = c->hidden_size;
    int bias = fx_int(ctx, "bias"), qk_norm = fx_int(ctx, "qk_norm");
    SelfAttnWeights w = {0};
    w.q_proj = fx_tensor(ctx, "q_proj.weight", H * D * C, NULL);
    w.k_proj = fx_tensor(ctx, "k_proj.weight", KV * D * C, NULL);
    w.v_proj = fx_tensor(ctx, "v_proj.weight", KV * D * C, NULL);
    w.o_proj = fx_tensor(ctx, "o_proj.weight", C * H * D, NULL);
    if (bias) {
        w.q_bias = fx_tensor(ctx, "q_proj.bias", H * D, NULL);
        w.k_bias = fx_tensor(ctx, "k_proj.bias", KV * D, NULL);
        w.v_bias = fx_tensor(ctx, "v_proj.bias", KV * D, NULL);
    }
    if (qk_norm) {
        w.q_norm = fx_tensor(ctx, "q_norm.weight", D, NULL);
        w.k_norm = fx_tensor(ctx, "k_norm.weight", D, NULL);
    }
    return w;
}

/* Feeds tokens 0..T-1 in calls of chunk[0], chunk[1], ... tokens, into a fresh cache of
 * exactly T rows poisoned with NaN, so a row read before it is written shows. */
static void run_chunks(TestCtx *ctx, float *out, const float *h, int T, const int *chunk,
                       const SelfAttnConfig *c, const SelfAttnWeights *w, AttnScratch *s) {
    int C = c->hidden_size;
    long kv_dim = (long)c->shape.num_key_value_heads * c->shape.head_dim;
    KVCache cache = {T, (int)kv_dim, out_buffer(ctx, T * kv_dim), out_buffer(ctx, T * kv_dim)};
    for (long i = 0; i < T * kv_dim; i++) cache.key[i] = cache.value[i] = NAN;
    for (int pos0 = 0, i = 0; pos0 < T; pos0 += chunk[i++])
        self_attn_forward(out + (long)pos0 * C, h + (long)pos0 * C, chunk[i], pos0, c, w,
                          &cache, s);
}

static void free_attn_scratch(void *s) { attn_scratch_free(s); }

static int has_nan(const float *x, long n) {
    for (long i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

static TestStatus test_self_attn(TestCtx *ctx) {
    SelfAttnConfig c;
    int T = fx_int(ctx, "T");
    c.hidden_size = fx_int(ctx, "hidden_size");
    c.shape.num_attention_heads = fx_int(ctx, "num_attention_heads");
    c.shape.num_key_value_heads = fx_int(ctx, "num_key_value_heads");
    c.shape.head_dim = fx_int(ctx, "head_dim");
    c.rms_norm_eps = fx_float(ctx, "rms_norm_eps");
    c.rope_theta = fx_float(ctx, "rope_theta");
    SelfAttnWeights w = read_weights(ctx, &c);
    const float *h = fx_tensor(ctx, "h", (long)T * c.hidden_size, NULL);
    AttnScratch *s = test_alloc(ctx, sizeof *s);
    if (attn_scratch_init(s, &c.shape, T, T)) return fail(ctx, "out of memory in attn_scratch_init");
    test_cleanup(ctx, free_attn_scratch, s);
    /* the whole prompt at once (prefill), one token per call (decode), then a prompt of
     * about half followed by the rest in one call */
    int prefill[1] = {T}, split[2] = {(T + 1) / 2, T - (T + 1) / 2};
    int *decode = test_alloc(ctx, sizeof(int) * (size_t)T);
    for (int t = 0; t < T; t++) decode[t] = 1;
    const int *chunks[3] = {prefill, decode, split};
    int n_schedules = T >= 3 ? 3 : T; /* with T <= 2 the split is the decode */
    long n = (long)T * c.hidden_size;
    float *out[3];
    for (int k = 0; k < n_schedules; k++) {
        char key[16];
        out[k] = out_buffer(ctx, n);
        student_begin(ctx);
        run_chunks(ctx, out[k], h, T, chunks[k], &c, &w, s);
        if (student_todo(ctx)) return TEST_TODO;
        snprintf(key, sizeof key, "out.%d", k);
        observe(ctx, key, out[k], n);
    }
    char what[3][96];
    snprintf(what[0], sizeof what[0], "self_attn_forward, all %d tokens in one call (prefill)", T);
    snprintf(what[1], sizeof what[1], "self_attn_forward, one token per call (decode)");
    snprintf(what[2], sizeof what[2], "self_attn_forward, %d tokens in one call, then %d more",
             split[0], split[1]);
    Layout l = {2, {"token", "hidden"}, {T, c.hidden_size}};
    TestStatus st = TEST_PASS;
    for (int k = 0; k < n_schedules && st == TEST_PASS; k++) {
        char label[400];
        snprintf(label, sizeof label, "%s%s", what[k],
                 has_nan(out[k], n) ? "; NaN: a cache row was read before any token wrote it "
                                      "(is token t at position pos0 + t?)"
                                    : "");
        st = expect_close(ctx, "out", out[k], &l, 1e-4f, 1e-3f, label);
    }
    return st;
}

static const TestDef TESTS[] = {
    {"softmax", "softmax_", test_softmax},
    {PROPERTY "softmax rows sum to 1", "softmax_", test_softmax_sums},
    {"attention", "prefill_", test_attention},
    {"attention_prefill", "prefill_", test_attention_prefill},
    {"self_attn_forward", "selfattn_", test_self_attn},
    {0},
};

const LessonDef LESSON_04 = {"04", "attention", "attention.c", "010203", TESTS};
