/*
 * Lesson 04: attention, the part of the block where tokens look at each other.
 *
 *   softmax            x (n) in place                 PyTorch: x.softmax(-1)
 *   attention          one query token over n_pos cached positions
 *                      q (H, D), k/v cache (n_pos, KV, D) -> out (H, D)
 *   attention_prefill  T tokens, causal: token t sees 0..t
 *                      q (T, H, D), k/v (T, KV, D) -> out (T, H, D)
 *   self_attn_forward  the whole Qwen3 attention of T tokens at positions pos0..:
 *                      q/k/v_proj, q_norm/k_norm per head, RoPE, KV cache, o_proj
 *
 * PyTorch (per head, causal, GQA):
 *   scores = q @ k.T / sqrt(D); scores.masked_fill_(future, -inf); out = scores.softmax(-1) @ v
 * Query head h reads kv head h / (H / KV): consecutive query heads share one kv head.
 */
#include <math.h>
#include <stdlib.h>

#include "moekit.h"

/* ------------------------------------------------------------------------------------
 * softmax and the attention core
 * ---------------------------------------------------------------------------------- */

void softmax(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] > max) max = x[i];
    }
    /* exp(x - max) <= 1: no overflow however large x is, and the result is unchanged
     * because the common factor exp(-max) cancels in the division. */
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) {
        x[i] /= sum;
    }
}

void attention(float *out, const float *q, const float *k_cache, const float *v_cache,
               int n_pos, const AttnShape *s, float *att) {
    int H = s->num_attention_heads, KV = s->num_key_value_heads, D = s->head_dim;
    int group = H / KV;
    float scale = 1.0f / sqrtf((float)D);
    for (int h = 0; h < H; h++) {
        const float *qh = q + (size_t)h * D;
        int kvh = h / group;
        for (int j = 0; j < n_pos; j++) {
            const float *kj = k_cache + ((size_t)j * KV + kvh) * D;
            float dot = 0.0f;
            for (int d = 0; d < D; d++) dot += qh[d] * kj[d];
            att[j] = dot * scale;
        }
        softmax(att, n_pos);
        float *oh = out + (size_t)h * D;
        for (int d = 0; d < D; d++) oh[d] = 0.0f;
        for (int j = 0; j < n_pos; j++) {
            const float *vj = v_cache + ((size_t)j * KV + kvh) * D;
            for (int d = 0; d < D; d++) oh[d] += att[j] * vj[d];
        }
    }
}

void attention_prefill(float *out, const float *q, const float *k, const float *v, int T,
                       const AttnShape *s, float *att) {
    size_t q_stride = (size_t)s->num_attention_heads * s->head_dim;
    for (int t = 0; t < T; t++) {
        /* the causal mask: token t only sees the first t + 1 rows of k and v */
        attention(out + t * q_stride, q + t * q_stride, k, v, t + 1, s, att);
    }
}

/* ------------------------------------------------------------------------------------
 * KV cache and scratch (ready-made)
 * ---------------------------------------------------------------------------------- */

int kv_cache_init(KVCache *c, const AttnShape *s, int max_seq) {
    c->max_seq = max_seq;
    c->kv_dim = s->num_key_value_heads * s->head_dim;
    c->key = calloc((size_t)max_seq * c->kv_dim, sizeof(float));
    c->value = calloc((size_t)max_seq * c->kv_dim, sizeof(float));
    if (!c->key || !c->value) {
        kv_cache_free(c);
        return -1;
    }
    return 0;
}

void kv_cache_free(KVCache *c) {
    free(c->key);
    free(c->value);
    c->key = c->value = NULL;
}

int attn_scratch_init(AttnScratch *a, const AttnShape *s, int max_seq, int max_tokens) {
    size_t T = (size_t)max_tokens;
    size_t q_dim = (size_t)s->num_attention_heads * s->head_dim;
    size_t kv_dim = (size_t)s->num_key_value_heads * s->head_dim;
    a->max_seq = max_seq;
    a->max_tokens = max_tokens;
    a->q = malloc(T * q_dim * sizeof(float));
    a->k = malloc(T * kv_dim * sizeof(float));
    a->v = malloc(T * kv_dim * sizeof(float));
    a->o = malloc(T * q_dim * sizeof(float));
    a->att = malloc(T * (size_t)max_seq * sizeof(float));
    if (!a->q || !a->k || !a->v || !a->o || !a->att) {
        attn_scratch_free(a);
        return -1;
    }
    return 0;
}

void attn_scratch_free(AttnScratch *a) {
    free(a->q);
    free(a->k);
    free(a->v);
    free(a->o);
    free(a->att);
    a->q = a->k = a->v = a->o = a->att = NULL;
}

/* ------------------------------------------------------------------------------------
 * self-attention of T tokens
 * ---------------------------------------------------------------------------------- */

static void add_bias(float *y, const float *b, int n) {
    if (!b) return;
    for (int i = 0; i < n; i++) y[i] += b[i];
}

/* Qwen3's QK-norm: RMSNorm over head_dim of every head, one shared weight (D). */
static void norm_heads(float *x, const float *weight, int n_heads, int D, float eps) {
    if (!weight) return;
    for (int h = 0; h < n_heads; h++) rmsnorm(x + (size_t)h * D, x + (size_t)h * D, weight, D, eps);
}

/* Everything that acts on one token alone, for token q (H, D), k, v (KV, D) at position
 * pos: biases, QK-norm, RoPE, then k and v into cache row pos. */
static void prepare_token(float *q, float *k, float *v, int pos, const SelfAttnConfig *c,
                          const SelfAttnWeights *w, KVCache *cache) {
    int H = c->shape.num_attention_heads, KV = c->shape.num_key_value_heads;
    int D = c->shape.head_dim;
    add_bias(q, w->q_bias, H * D);
    add_bias(k, w->k_bias, KV * D);
    add_bias(v, w->v_bias, KV * D);
    norm_heads(q, w->q_norm, H, D, c->rms_norm_eps);
    norm_heads(k, w->k_norm, KV, D, c->rms_norm_eps);
    rope(q, H, D, pos, c->rope_theta);
    rope(k, KV, D, pos, c->rope_theta);
    float *k_row = cache->key + (size_t)pos * cache->kv_dim;
    float *v_row = cache->value + (size_t)pos * cache->kv_dim;
    for (int i = 0; i < KV * D; i++) {
        k_row[i] = k[i];
        v_row[i] = v[i];
    }
}

void self_attn_forward(float *out, const float *h, int T, int pos0, const SelfAttnConfig *c,
                       const SelfAttnWeights *w, KVCache *cache, AttnScratch *s) {
    const AttnShape *sh = &c->shape;
    int C = c->hidden_size;
    int qd = sh->num_attention_heads * sh->head_dim, kvd = sh->num_key_value_heads * sh->head_dim;
    /* the projections of all T tokens: one product each, every weight row read once */
    linear_tokens(s->q, h, w->q_proj, T, C, qd);
    linear_tokens(s->k, h, w->k_proj, T, C, kvd);
    linear_tokens(s->v, h, w->v_proj, T, C, kvd);
    /* Tokens are independent in each loop below, so a long prefill can share the cores
     * (lesson 09). Two loops, not one: every key is in the cache before any token attends,
     * whichever thread wrote it. A fork-join costs 20-25 us (sleeping threads, lesson 09),
     * so each loop forks only when it is long. 2-thread / 1-thread time, demo shape, 2
     * cores with other builds running (load 2; at load 3 two threads lost at every size):
     * RoPE of a token's 6 heads (most of prepare_token) 1.03-1.15 for 256-512 tokens, 0.72
     * for 1024 (1.2 ms); attention 1.12 for 64 tokens, 0.67 for 128 (T * (pos0 + T) * qd =
     * 2^21, 0.35 ms). A decoded token (T = 1) never forks. */
#pragma omp parallel for if (T >= 1024)
    for (int t = 0; t < T; t++)
        prepare_token(s->q + (size_t)t * qd, s->k + (size_t)t * kvd, s->v + (size_t)t * kvd,
                      pos0 + t, c, w, cache);
    /* token t does pos0 + t + 1 positions of work: dealt out in turn, threads stay even */
#pragma omp parallel for schedule(static, 1) if ((long)T * (pos0 + T) * qd >= (1L << 21))
    for (int t = 0; t < T; t++)
        attention(s->o + (size_t)t * qd, s->q + (size_t)t * qd, cache->key, cache->value,
                  pos0 + t + 1, sh, s->att + (size_t)t * s->max_seq);
    linear_tokens(out, s->o, w->o_proj, T, qd, C);
}
