/*
 * moekit.h: the functions the lessons implement, one section per lesson.
 *
 * Conventions everywhere in the kit:
 *   - every tensor is float32, row-major, contiguous;
 *   - a weight is [out_features, in_features] like PyTorch nn.Linear, y = x W^T,
 *     written in comments as  x (T, in) . W (out, in) -> y (T, out);
 *   - names follow the Hugging Face Qwen3-MoE keys (q_proj, k_norm, gate_proj ...);
 *   - no function allocates in its hot loop: scratch is passed in or owned by a
 *     struct with an *_init / *_free pair.
 */
#ifndef MOEKIT_H
#define MOEKIT_H

#include <stddef.h>

/* Skeletons call TODO("...") where the student's code goes. The test harness sees the
 * call and reports "not yet implemented" instead of comparing garbage. */
void moekit_todo(const char *func, const char *file, int line, const char *what);
#define TODO(what) moekit_todo(__func__, __FILE__, __LINE__, (what))

/* ------------------------------------------------------------------------------------
 * Lesson 01: matmul (lessons/01-matmul/matmul.c)
 * ---------------------------------------------------------------------------------- */

/* One token: y (out) = W (out, in) . x (in).   PyTorch: y = F.linear(x, W) */
void matmul(float *y, const float *x, const float *w, int in_features, int out_features);

/* T tokens: x (T, in) . W (out, in)^T -> y (T, out).   PyTorch: y = x @ W.T */
void matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                   int out_features);

/* ------------------------------------------------------------------------------------
 * Lesson 02: RMSNorm (lessons/02-rmsnorm/rmsnorm.c)
 * ---------------------------------------------------------------------------------- */

/* out (n) = x / sqrt(mean(x^2) + eps) * weight (n).  out may equal x.
 * PyTorch: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight */
void rmsnorm(float *out, const float *x, const float *weight, int n, float eps);

/* ------------------------------------------------------------------------------------
 * Lesson 03: RoPE (lessons/03-rope/rope.c)
 * ---------------------------------------------------------------------------------- */

/* Rotates, in place, every head of one token at position pos.
 * x (n_heads, head_dim); rotate-half pairing: (x[i], x[i + head_dim/2]). */
void rope(float *x, int n_heads, int head_dim, int pos, float rope_theta);

/* ------------------------------------------------------------------------------------
 * Lesson 04: attention (lessons/04-attention/attention.c)
 * ---------------------------------------------------------------------------------- */

/* In place over n values; must not overflow for large inputs.  PyTorch: x.softmax(-1) */
void softmax(float *x, int n);

typedef struct {
    int num_attention_heads; /* query heads H */
    int num_key_value_heads; /* key/value heads KV; H % KV == 0 (GQA group H/KV) */
    int head_dim;            /* D, need not equal hidden_size / H */
} AttnShape;

/* One query token attends to n_pos cached positions (the causal mask is "only what is
 * cached so far").
 * q (H, D), k_cache and v_cache (n_pos, KV, D), att scratch (n_pos) -> out (H, D).
 * Query head h reads kv head h / (H / KV); scores are scaled by 1/sqrt(D). */
void attention(float *out, const float *q, const float *k_cache, const float *v_cache,
               int n_pos, const AttnShape *s, float *att);

/* T tokens with a causal mask: token t sees positions 0..t.
 * q (T, H, D), k and v (T, KV, D), att scratch (T) -> out (T, H, D). */
void attention_prefill(float *out, const float *q, const float *k, const float *v, int T,
                       const AttnShape *s, float *att);

typedef struct {
    AttnShape shape;
    int hidden_size;
    float rms_norm_eps;
    float rope_theta;
} SelfAttnConfig;

/* One layer's attention weights. Optional tensors are NULL when the model has none:
 * Qwen2-MoE has the biases and no q_norm/k_norm; Qwen3-MoE the other way round. */
typedef struct {
    const float *q_proj, *k_proj, *v_proj; /* (H*D, hidden), (KV*D, hidden), (KV*D, hidden) */
    const float *o_proj;                   /* (hidden, H*D) */
    const float *q_bias, *k_bias, *v_bias; /* (H*D), (KV*D), (KV*D) or NULL */
    const float *q_norm, *k_norm;          /* (D), (D) or NULL */
} SelfAttnWeights;

/* The keys and values of every position seen so far, for one layer. */
typedef struct {
    int max_seq;  /* capacity in positions */
    int kv_dim;   /* KV * D */
    float *key;   /* (max_seq, KV, D) */
    float *value; /* (max_seq, KV, D) */
} KVCache;

/* Scratch for one token of self-attention. */
typedef struct {
    float *q;   /* (H, D) */
    float *k;   /* (KV, D) */
    float *v;   /* (KV, D) */
    float *o;   /* (H, D), attention output before o_proj */
    float *att; /* (max_seq) scores */
} AttnScratch;

int kv_cache_init(KVCache *c, const AttnShape *s, int max_seq); /* 0 ok, -1 out of memory */
void kv_cache_free(KVCache *c);
int attn_scratch_init(AttnScratch *a, const AttnShape *s, int max_seq);
void attn_scratch_free(AttnScratch *a);

/* Self-attention for one token at position pos (decode step); h (hidden) is the already
 * normalised input (after input_layernorm). Writes k, v of this token into the cache at
 * row pos and reads rows 0..pos.  -> out (hidden), the o_proj output (not yet added to x). */
void self_attn_forward(float *out, const float *h, int pos, const SelfAttnConfig *c,
                       const SelfAttnWeights *w, KVCache *cache, AttnScratch *s);

#endif /* MOEKIT_H */
