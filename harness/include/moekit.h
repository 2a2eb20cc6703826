/*
 * moekit.h: the functions the lessons implement, one section per lesson. What the model
 * computes, step by step, and the files it reads: docs/spec.md.
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
#include <stdint.h>

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
 * The model's products (ready-made: harness/src/linear.c)
 *
 * Lessons 04-08 compute every nn.Linear with linear() and linear_tokens(), which take the
 * arguments of matmul() and matmul_tokens() above and run them on one kernel for the whole
 * model: lesson 01's loop, or lesson 09's fast_matmul once the program chooses it
 * (`moekit --matmul fast`, the default once lesson 09 is written).
 * ---------------------------------------------------------------------------------- */

typedef enum {
    KERNEL_MATMUL,     /* lesson 01: matmul, matmul_tokens (the default) */
    KERNEL_FAST_MATMUL /* lesson 09: fast_matmul, fast_matmul_tokens */
} MatmulKernel;

void linear_use(MatmulKernel k);  /* from now on, every linear() runs on k */
MatmulKernel linear_kernel(void); /* the kernel in use */
const char *linear_describe(void); /* "lesson 09 fast_matmul (avx512, 2 threads)" */
void linear(float *y, const float *x, const float *w, int in_features, int out_features);
void linear_tokens(float *y, const float *x, const float *w, int T, int in_features,
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

/* Scratch for up to max_tokens tokens of self-attention, so nothing in the forward pass
 * allocates. Every token has its own row of scores, so tokens can run on different threads. */
typedef struct {
    float *q;   /* (max_tokens, H, D) */
    float *k;   /* (max_tokens, KV, D) */
    float *v;   /* (max_tokens, KV, D) */
    float *o;   /* (max_tokens, H, D), attention output before o_proj */
    float *att; /* (max_tokens, max_seq) scores, one row per token */
    int max_seq, max_tokens;
} AttnScratch;

int kv_cache_init(KVCache *c, const AttnShape *s, int max_seq); /* 0 ok, -1 out of memory */
void kv_cache_free(KVCache *c);
int attn_scratch_init(AttnScratch *a, const AttnShape *s, int max_seq, int max_tokens);
void attn_scratch_free(AttnScratch *a);

/* Self-attention of T tokens at positions pos0 .. pos0+T-1; h (T, hidden) is the already
 * normalised input (after input_layernorm). Writes k, v of the T tokens into cache rows
 * pos0 .. pos0+T-1; token t reads rows 0 .. pos0+t.  -> out (T, hidden), the o_proj output
 * (not yet added to x). T = 1 is a decode step; pos0 = 0 with the whole prompt, the
 * prefill. T <= s->max_tokens, pos0 + T <= cache->max_seq. */
void self_attn_forward(float *out, const float *h, int T, int pos0, const SelfAttnConfig *c,
                       const SelfAttnWeights *w, KVCache *cache, AttnScratch *s);

/* ------------------------------------------------------------------------------------
 * Lesson 05: SwiGLU expert (lessons/05-expert/expert.c)
 * ---------------------------------------------------------------------------------- */

/* silu(z) = z * sigmoid(z) = z / (1 + exp(-z)).   PyTorch: F.silu(z) */
float silu(float z);

/* One SwiGLU feed-forward: an MoE expert, the shared expert, or a dense MLP layer. */
typedef struct {
    const float *gate_proj; /* (I, C) */
    const float *up_proj;   /* (I, C) */
    const float *down_proj; /* (C, I) */
} ExpertWeights;

/* One token: out (C) = down_proj(silu(gate_proj(x)) * up_proj(x)); x (C), scratch (2 * I).
 * PyTorch: self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)) */
void expert_forward(float *out, const float *x, const ExpertWeights *w, int hidden_size,
                    int intermediate_size, float *scratch);

/* T tokens, x (T, C) -> out (T, C); scratch (2 * T * I). */
void expert_forward_tokens(float *out, const float *x, const ExpertWeights *w, int T,
                           int hidden_size, int intermediate_size, float *scratch);

/* ------------------------------------------------------------------------------------
 * Lesson 06: router (lessons/06-router/router.c)
 * ---------------------------------------------------------------------------------- */

typedef struct {
    int num_experts;         /* E */
    int num_experts_per_tok; /* k, 1 <= k <= E */
    int norm_topk_prob;      /* 1: the k weights are divided by their sum */
    const unsigned char *disabled; /* (E) 1 = never choose this expert, or NULL */
} RouterConfig;

/* The k largest of p (n), by partial selection (not a full sort): idx (k) and val (k) in
 * descending order of value; equal values keep the lower index first. */
void topk(int *idx, float *val, const float *p, int n, int k);

/* One token's routing: probs (E) = softmax(logits (E)) over all E experts, in float32;
 * experts (k) = the top-k by probability (skipping disabled ones), weights (k) their
 * probabilities, divided by their sum when norm_topk_prob.
 * PyTorch: p = logits.softmax(-1); w, e = torch.topk(p, k); if norm: w /= w.sum() */
void route(int *experts, float *weights, float *probs, const float *logits,
           const RouterConfig *c);

/* Switch / Hugging Face load-balancing loss over N routed tokens:
 * E * sum_e (c_e / N) * P_e, c_e = number of (token, slot) assignments to expert e,
 * P_e = mean over tokens of probs[., e]. probs (N, E), experts (N, k).
 * A perfectly balanced router scores k (c_e / N = k / E, P_e = 1 / E). */
float load_balancing_loss(const float *probs, const int *experts, int N, int E, int k);

/* log(sum_i exp(x_i)) of x (n), as max + log(sum_i exp(x_i - max)): no overflow. Also
 * the CLI's perplexity: -ln softmax(x)[j] = logsumexp(x, n) - x[j]. */
float logsumexp(const float *x, int n);

/* Router z-loss: mean over the N tokens of logsumexp(logits[t])^2. logits (N, E). */
float router_z_loss(const float *logits, int N, int E);

/* ------------------------------------------------------------------------------------
 * Lesson 07: MoE layer (lessons/07-moe/moe.c)
 * ---------------------------------------------------------------------------------- */

typedef struct {
    int hidden_size;                     /* C */
    int moe_intermediate_size;           /* I of each routed expert */
    int shared_expert_intermediate_size; /* Qwen2-MoE shared expert, 0 = none */
    RouterConfig router;
    float capacity_factor; /* 0 = unlimited; else each expert takes at most
                            * ceil(capacity_factor * T * k / E) rows, first come (token
                            * order) first served; the rest are dropped */
} MoeConfig;

typedef struct {
    const float *gate;                /* router, mlp.gate.weight (E, C) */
    ExpertWeights *experts;           /* (E) mlp.experts.{e}.* */
    ExpertWeights shared_expert;      /* Qwen2-MoE mlp.shared_expert.*, all NULL if none */
    const float *shared_expert_gate;  /* (C) mlp.shared_expert_gate.weight, or NULL */
} MoeWeights;

/* What the last moe_forward call did: the routing plots and the tests read this. */
typedef struct {
    int T;               /* tokens routed */
    int *experts;        /* (T, k) chosen experts, -1 where capacity dropped the slot */
    float *weights;      /* (T, k) their routing weights */
    float *logits;       /* (T, E) router logits */
    float *probs;        /* (T, E) router probabilities */
    int *expert_count;   /* (E) rows each expert computed */
    int dropped;         /* (token, slot) assignments dropped by the capacity limit */
    long expert_rows;    /* rows computed by routed experts; T * k without drops */
} MoeStats;

/* Scratch for up to max_tokens tokens, and the stats of the last call. */
typedef struct {
    MoeStats stats;
    int *rows;          /* (E, max_tokens) token rows of each expert, grouped by expert */
    float *slot_weight; /* (E, max_tokens) the routing weight of each of those rows */
    float *x_in;        /* (max_tokens, C) the rows of one expert, gathered */
    float *y_out;       /* (max_tokens, C) that expert's output rows */
    float *hidden;      /* (2 * max_tokens * max(I, shared I)) expert scratch */
    int max_tokens;
} MoeScratch;

int moe_scratch_init(MoeScratch *s, const MoeConfig *c, int max_tokens); /* 0 or -1 */
void moe_scratch_free(MoeScratch *s);

/* The sparse MLP of T tokens: route each token, group the token rows by expert, run each
 * used expert once over its rows, add the weighted outputs back per token, plus the
 * shared expert times sigmoid(h . shared_expert_gate) when present.
 * h (T, C) already normalised (post_attention_layernorm) -> out (T, C), not yet added to
 * the residual. Fills s->stats. */
void moe_forward(float *out, const float *h, int T, const MoeConfig *c, const MoeWeights *w,
                 MoeScratch *s);

/* ------------------------------------------------------------------------------------
 * Lesson 08: the full model (lessons/08-model/model.c)
 * ---------------------------------------------------------------------------------- */

typedef enum { ARCH_QWEN3_MOE, ARCH_QWEN2_MOE } ModelArch;

/* config.json, in Hugging Face names. */
typedef struct {
    ModelArch arch;
    int vocab_size, hidden_size, num_hidden_layers;
    int num_attention_heads, num_key_value_heads, head_dim;
    int intermediate_size;               /* dense MLP layers */
    int moe_intermediate_size;           /* each routed expert */
    int shared_expert_intermediate_size; /* Qwen2-MoE, else 0 */
    int num_experts, num_experts_per_tok, norm_topk_prob, decoder_sparse_step;
    int tie_word_embeddings, max_position_embeddings;
    float rms_norm_eps, rope_theta;
    unsigned char *mlp_only_layers; /* (num_hidden_layers) 1 = dense even if it would be sparse */
} ModelConfig;

typedef struct {
    const float *input_layernorm;          /* (C) */
    const float *post_attention_layernorm; /* (C) */
    SelfAttnWeights self_attn;
    int is_sparse;   /* docs/spec.md's rule: not in mlp_only_layers, E > 0, (l+1) % step == 0 */
    MoeWeights moe;  /* when is_sparse */
    ExpertWeights mlp; /* when dense (intermediate_size) */
} LayerWeights;

/* The checkpoint's tensors, read-only once loaded (llama2.c's TransformerWeights). */
typedef struct {
    const float *embed_tokens; /* (V, C) */
    LayerWeights *layers;      /* (L) */
    const float *norm;         /* (C) model.norm.weight */
    const float *lm_head;      /* (V, C); == embed_tokens when tie_word_embeddings */
} ModelWeights;

/* What a forward pass writes: the KV caches and the scratch (llama2.c's RunState). Sized
 * for max_tokens tokens per call and max_seq positions in all. */
typedef struct {
    KVCache *cache;          /* (L), max_seq positions each */
    AttnScratch attn_scratch;
    MoeScratch *moe_scratch; /* (L) per layer, so each keeps the stats of its last call */
    float *h;                /* (max_tokens, C) normalised input of a block */
    float *y;                /* (max_tokens, C) a block's output */
    float *mlp_scratch;      /* (2 * max_tokens * max(intermediate sizes)) */
    int max_seq, max_tokens;
} RunState;

/* A loaded model: its configs, its weights and its run state, each apart. The harness's
 * loader fills it (model_load_dir); lesson 08 writes the forward pass over it. */
typedef struct {
    ModelConfig config;
    SelfAttnConfig attn_config; /* lesson 04's view of config */
    MoeConfig *moe_config;      /* (L) per layer (--disable-expert is per layer); sparse only */
    ModelWeights weights;
    RunState state;
    void *owner; /* the loader's memory (mapped files, converted tensors) */
} Model;

/* x (T, C) += self-attention of input_layernorm(x), tokens at positions pos0 .. pos0+T-1. */
void attn_block(Model *m, int layer, float *x, int T, int pos0);
/* x (T, C) += MLP of post_attention_layernorm(x): the MoE layer or the dense SwiGLU. */
void mlp_block(Model *m, int layer, float *x, int T);
/* T tokens through the whole model: ids (T) at positions pos0.. -> logits (T, V).
 * x (T, C) is the residual stream scratch. T <= m->state.max_tokens. */
void model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits);

typedef struct {
    float temperature; /* <= 0: greedy (argmax) */
    float top_p;       /* nucleus: sample among the most probable tokens of mass >= top_p */
    unsigned long long rng_state; /* xorshift64*, seeded by the user; never 0 */
} Sampler;

/* The next token from logits (V). Greedy when temperature <= 0; ties go to the lower id.
 * probs_scratch: 3 * V floats. */
int sample(const float *logits, int V, Sampler *s, float *probs_scratch);

/* ------------------------------------------------------------------------------------
 * Lesson 09: fast matmul (lessons/09-fast-matmul/fast_matmul.c)
 *
 * The products of lesson 01, fast: every function here computes
 *   y (T, out) = x (T, in) . W (out, in)^T
 * and must agree with lesson 01's loop within float rounding, for any sizes.
 * ---------------------------------------------------------------------------------- */

/* Step 1: rows of W outermost, so each row is read once for all T tokens (plain C). */
void matmul_loop_order(float *y, const float *x, const float *w, int T, int in_features,
                       int out_features);
/* Step 2: sum of a[i] * b[i], i < n, with SIMD intrinsics; n need not be a multiple of
 * the vector width. */
float dot_simd(const float *a, const float *b, int n);
/* Step 2: step 1 with dot_simd for every (row, token) pair. */
void matmul_simd(float *y, const float *x, const float *w, int T, int in_features,
                 int out_features);
/* Step 3: register tiles of several rows x several tokens (one thread). */
void matmul_tiled(float *y, const float *x, const float *w, int T, int in_features,
                  int out_features);
/* Step 4: the GEMM the model runs: tiles, cache blocks, threads over output rows. */
void fast_matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                        int out_features);
/* Step 5: one token (decode): y (out) = W (out, in) . x (in), threads over rows. */
void fast_matmul(float *y, const float *x, const float *w, int in_features, int out_features);

/* bf16 ("brain float"): the top 16 bits of a float32, so the same range with 8 bits of
 * precision instead of 24. Half the bytes: checkpoints ship in it. */
typedef uint16_t bf16;
/* Ready-made: float -> bf16, rounded to nearest, ties to even (PyTorch's .bfloat16()). */
void bf16_from_float(bf16 *dst, const float *src, long n);
/* Step 6: step 5 with W (out, in) in bf16, widened to float in the kernel: half the
 * bytes to read per token, where decode is limited by memory. */
void fast_matmul_bf16(float *y, const float *x, const bf16 *w, int in_features,
                      int out_features);

/* Ready-made: the instruction set compiled in ("avx512", "avx2", "neon", "scalar"), its
 * floats per vector, and the threads a parallel region gets (1 without OpenMP). */
const char *fast_matmul_isa(void);
int fast_matmul_lanes(void);
int fast_matmul_max_threads(void);

/* ------------------------------------------------------------------------------------
 * Bonus lesson 10 (optional): routing variants (lessons/10-routing/routing.c)
 * ---------------------------------------------------------------------------------- */

/* Switch Transformer routing (top-1) of T tokens: experts (T) = the argmax of each row of
 * logits (T, E), the lower index on ties; weights (T) = its softmax probability,
 * 1 / sum_e exp(logits[t][e] - max), not renormalised. */
void switch_route(int *experts, float *weights, const float *logits, int T, int E);

/* Expert-choice routing (Zhou et al., 2022): probs (T, E) are each token's softmax over the
 * experts; every expert e takes the `capacity` tokens with the largest probs[., e]:
 * tokens (E, capacity) in descending order of probability (the lower token first on ties),
 * gates (E, capacity) those probabilities. column: scratch (T). 1 <= capacity <= T. */
void expert_choice_route(int *tokens, float *gates, const float *probs, int T, int E,
                         int capacity, float *column);

/* The MoE layer routed by expert choice: probs = softmax over experts of h . gate^T, then
 * out[t] = sum over the experts e that took token t of gate * expert_e(h[t]); a token no
 * expert took gets 0 (the residual carries it). Uses c->hidden_size,
 * c->moe_intermediate_size and c->router.num_experts (no top-k, no capacity_factor, no
 * shared expert) and s from moe_scratch_init (max_tokens >= T). Fills s->stats: T, logits,
 * probs, expert_count (capacity each), expert_rows (E * capacity) and dropped (the tokens
 * no expert took); stats.experts and stats.weights are not used. */
void expert_choice_forward(float *out, const float *h, int T, int capacity, const MoeConfig *c,
                           const MoeWeights *w, MoeScratch *s);

/* log(1 + exp(x)) (F.softplus), without overflow for large x. */
float softplus(float x);

/* Noisy top-k gating (Shazeer et al., 2017, section 2.1, eqs. 3 to 5) of T tokens.
 * logits = x W_g, noise_logits = x W_noise and noise (a standard-normal draw the caller
 * makes; all zeros at evaluation), each (T, E):
 *   H = logits + noise * softplus(noise_logits);  experts (T, k) = the top-k of each row of
 *   H (descending, the lower index on ties);  weights (T, k) = the softmax of those k values
 *   (KeepTopK sets the rest to -inf), so each row sums to 1.  scratch: E floats.
 * PyTorch: H = logits + noise * F.softplus(noise_logits); v, e = H.topk(k); w = v.softmax(-1) */
void noisy_topk_route(int *experts, float *weights, const float *logits,
                      const float *noise_logits, const float *noise, int T, int E, int k,
                      float *scratch);

/* The MoE layer with noisy top-k gating: logits = h . gate^T, noise_logits = h . w_noise^T
 * (w_noise (E, C)), noise (T, E) as above; k = c->router.num_experts_per_tok; then lesson
 * 07's combine, without a capacity limit. Fills s->stats: T, logits (the clean x W_g),
 * probs (here the noise logits x W_noise, not probabilities), experts, weights,
 * expert_count, expert_rows (T * k), dropped (0). */
void noisy_topk_forward(float *out, const float *h, const float *w_noise, const float *noise,
                        int T, const MoeConfig *c, const MoeWeights *w, MoeScratch *s);

/* The dense softmax mixture: every expert on every token,
 * out[t] = sum_e softmax(h[t] . gate^T)[e] * expert_e(h[t]). Fills s->stats: T, logits,
 * probs, expert_count (T each), expert_rows (E * T), dropped (0). */
void dense_moe_forward(float *out, const float *h, int T, const MoeConfig *c,
                       const MoeWeights *w, MoeScratch *s);

/* Scratch of Soft MoE for up to max_tokens tokens and S = E * slots_per_expert slots. */
typedef struct {
    float *logits;   /* (max_tokens, S) h . phi^T */
    float *dispatch; /* (S, max_tokens) D^T: row s = slot s's weights over the tokens */
    float *combine;  /* (max_tokens, S) each token's weights over the slots */
    float *slot_in;  /* (S, C) */
    float *slot_out; /* (S, C) */
    float *hidden;   /* (2 * slots_per_expert * I) expert scratch */
    int max_tokens, slots_per_expert;
} SoftMoeScratch;

int soft_moe_scratch_init(SoftMoeScratch *s, const MoeConfig *c, int max_tokens,
                          int slots_per_expert); /* 0 or -1 */
void soft_moe_scratch_free(SoftMoeScratch *s);

/* Soft MoE (Puigcerver et al., 2023, section 2.1, without its L2 normalisation):
 * h (T, C), phi (S, C) one row per slot (the paper's Phi transposed), S = E * p, slots
 * e*p .. e*p+p-1 are expert e's:  logits = h . phi^T (T, S);  D = softmax over the tokens
 * (each column); slot_in = D^T h (S, C); each expert runs on its p slots; Cw = softmax over
 * the slots (each row); out = Cw . slot_out (T, C). Every token's output depends on every
 * other token of the call: not causal. Uses c->hidden_size, c->moe_intermediate_size,
 * c->router.num_experts; T <= s->max_tokens. */
void soft_moe_forward(float *out, const float *h, const float *phi, int T, const MoeConfig *c,
                      const MoeWeights *w, SoftMoeScratch *s);

#endif /* MOEKIT_H */
