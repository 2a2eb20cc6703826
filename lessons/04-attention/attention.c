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
 * The KV cache and scratch helpers are ready-made; the TODOs are the four functions
 * above, norm_heads and prepare_token. Test it: make check LESSON=04 (or `make check` here).
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
    /* TODO: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max), with max the largest x.
     * Subtracting max changes nothing mathematically but keeps every exp() <= 1: without
     * it, a score of 100 already overflows float (exp(89) > FLT_MAX). */
    TODO("stable softmax of x[0..n)");
}

void attention(float *out, const float *q, const float *k_cache, const float *v_cache,
               int n_pos, const AttnShape *s, float *att) {
    int H = s->num_attention_heads, KV = s->num_key_value_heads, D = s->head_dim;
    for (int h = 0; h < H; h++) {
        /* TODO: for query head h (q + h * D):
         *   1. its kv head: h / (H / KV)   (consecutive query heads share one kv head);
         *   2. att[j] = q_h . k_j / sqrt(D) for every cached position j < n_pos, where k_j
         *      is the kv head's D values at k_cache + (j * KV + kv_head) * D;
         *   3. softmax(att, n_pos);
         *   4. out_h (out + h * D) = sum_j att[j] * v_j  (v_j laid out like k_j). */
        TODO("out_h = softmax(q_h . K^T / sqrt(D)) . V for query head h");
    }
}

void attention_prefill(float *out, const float *q, const float *k, const float *v, int T,
                       const AttnShape *s, float *att) {
    /* TODO: token t attends to positions 0..t only (the causal mask). Rows 0..t of k and v
     * are exactly a cache of t + 1 positions, so each token is one call of attention()
     * with its own rows of q and out (H * D floats per token). */
    TODO("out[t] = attention(q[t]) over k, v rows 0..t, for every token t");
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
    if (!weight) return; /* Qwen2-MoE has no q_norm/k_norm */
    /* TODO: rmsnorm (lesson 02) each of the n_heads heads of x in place: head h is the D
     * values at x + h * D, all heads use the same weight. */
    TODO("rmsnorm every head of x over head_dim");
}

/* Everything that acts on one token alone, for token q (H, D), k, v (KV, D) at position
 * pos: biases, QK-norm, RoPE, then k and v into cache row pos. */
static void prepare_token(float *q, float *k, float *v, int pos, const SelfAttnConfig *c,
                          const SelfAttnWeights *w, KVCache *cache) {
    int H = c->shape.num_attention_heads, KV = c->shape.num_key_value_heads;
    int D = c->shape.head_dim;
    /* TODO: in this order (PyTorch: Qwen3MoeAttention.forward):
     *   1. the biases when present: q_bias on q (H * D values), k_bias on k, v_bias on v
     *      (KV * D each); add_bias does nothing for NULL;
     *   2. QK-norm: norm_heads on q (H heads) with w->q_norm and k (KV heads) with w->k_norm;
     *   3. rope (lesson 03) on q and on k at position pos;
     *   4. copy k and v (KV * D values each) into row pos of cache->key and cache->value. */
    TODO("biases, QK-norm, RoPE, then the k/v row into the cache");
}

void self_attn_forward(float *out, const float *h, int T, int pos0, const SelfAttnConfig *c,
                       const SelfAttnWeights *w, KVCache *cache, AttnScratch *s) {
    const AttnShape *sh = &c->shape;
    int C = c->hidden_size;
    int qd = sh->num_attention_heads * sh->head_dim, kvd = sh->num_key_value_heads * sh->head_dim;
    /* TODO: T tokens at positions pos0 .. pos0 + T - 1, in this order:
     *   1. s->q (T, H * D), s->k and s->v (T, KV * D) = h (T, C) projected by q_proj,
     *      k_proj, v_proj: one matmul_tokens (lesson 01) each, so every weight row is read
     *      once for all T tokens;
     *   2. for every token t: prepare_token on its rows of s->q, s->k, s->v (t * qd,
     *      t * kvd) at position pos0 + t;
     *   3. then, for every token t: attention of its query over cache rows 0 .. pos0 + t
     *      into its row of s->o, with its own row of scores s->att + t * s->max_seq;
     *   4. out (T, C) = s->o projected by o_proj (qd in, C out).
     * One loop doing 2 then 3 per token is right too; two loops let each be split among
     * threads (lesson 09), because every key is in the cache before any token attends. */
    TODO("q/k/v_proj of all T tokens, prepare each token, attention per token, o_proj");
}
