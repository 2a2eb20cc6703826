/* Lesson 04 tests: softmax, attention (one query over a cache), attention_prefill,
 * and self_attn_forward fed one token at a time through the KV cache. */
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
    Layout l = {2, {"row", "col"}, {rows, n}};
    return expect_close(ctx, "y", y, &l, 1e-6f, 1e-5f, "softmax");
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
    return expect_close(ctx, "out", out, &c.out_layout, 1e-5f, 1e-4f, "attention_prefill");
}

/* ------------------------------------------------------------------------------------
 * self_attn_forward: decode T tokens one by one, compare with PyTorch's causal prefill
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
    float *out = out_buffer(ctx, (long)T * c.hidden_size);
    KVCache cache;
    AttnScratch s;
    if (kv_cache_init(&cache, &c.shape, T) || attn_scratch_init(&s, &c.shape, T))
        return fail(ctx, "out of memory in kv_cache_init/attn_scratch_init");
    student_begin(ctx);
    for (int t = 0; t < T; t++)
        self_attn_forward(out + (long)t * c.hidden_size, h + (long)t * c.hidden_size, t, &c,
                          &w, &cache, &s);
    kv_cache_free(&cache);
    attn_scratch_free(&s);
    if (student_todo(ctx)) return TEST_TODO;
    Layout l = {2, {"token", "hidden"}, {T, c.hidden_size}};
    return expect_close(ctx, "out", out, &l, 1e-4f, 1e-3f,
                        "self_attn_forward, one token at a time (decode == prefill)");
}

static const TestDef TESTS[] = {
    {"softmax", "softmax_", test_softmax},
    {"attention", "prefill_", test_attention},
    {"attention_prefill", "prefill_", test_attention_prefill},
    {"self_attn_forward", "selfattn_", test_self_attn},
    {0},
};

const LessonDef LESSON_04 = {"04", "attention", "attention.c", "010203", TESTS};
