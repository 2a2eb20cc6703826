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
        /* TODO: out_h (the D values at out + h * D) must equal the sum over j < n_pos of
         * softmax_j(q_h . k_j / sqrt(D)) * v_j, with q_h at q + h * D and key j of kv head
         * g at k_cache + (j * KV + g) * D (value j likewise in v_cache); att holds the
         * n_pos scores.
         * Think about: which kv head query head h reads (consecutive query heads share one:
         * README "Grouped-query attention: which kv head"); the scale (README "Why
         * 1/sqrt(head_dim)"); that out_h is a sum, so it must start from zero. */
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
    /* TODO: do everything that acts on this one token alone, in Qwen3MoeAttention.forward's
     * order: the q/k/v biases (Qwen2-MoE; add_bias ignores NULL), QK-norm of every q and k
     * head, RoPE at pos on q and k, then k and v become row pos of the KV cache.
     * Think about: H heads in q but KV in k and v; v is never normed nor rotated; why the
     * order of norm and RoPE shows in the output (README "QK-norm"); where row pos starts
     * in cache->key and cache->value (cache->kv_dim floats per row). */
    TODO("biases, QK-norm, RoPE, then the k/v row into the cache");
}

void self_attn_forward(float *out, const float *h, int T, int pos0, const SelfAttnConfig *c,
                       const SelfAttnWeights *w, KVCache *cache, AttnScratch *s) {
    const AttnShape *sh = &c->shape;
    int C = c->hidden_size;
    int qd = sh->num_attention_heads * sh->head_dim, kvd = sh->num_key_value_heads * sh->head_dim;
    /* TODO: out (T, C) must be the attention layer of the T rows of h at positions pos0 ..
     * pos0 + T - 1 (README "T tokens through the layer: self_attn_forward"): the q, k and v
     * projections of all T tokens at once, each token prepared (prepare_token writes its
     * cache row), each token attending to the cache rows up to its own position, then
     * o_proj.
     * Think about: the in and out size of every projection (H * D need not be C); how many
     * cache rows token t may see (README "The causal mask"); which scratch rows belong to
     * token t (s->q, s->k, s->v, s->o, and s->att + t * s->max_seq). Preparing every token
     * before any attends is right, and lets lesson 09 split each loop among threads. */
    TODO("q/k/v_proj of all T tokens, prepare each token, attention per token, o_proj");
}
