/*
 * Lesson 08: the full model. Everything from lessons 01-07 becomes a language model:
 *
 *   ids (T) -> embed_tokens -> [ decoder layer ] x L -> norm -> lm_head -> logits (T, V)
 *
 *   decoder layer (pre-norm, two residual branches):
 *     x = x + self_attn(input_layernorm(x))           attn_block
 *     x = x + mlp(post_attention_layernorm(x))        mlp_block  (MoE or dense SwiGLU)
 *
 * PyTorch (Hugging Face Qwen3MoeDecoderLayer.forward):
 *     residual = x; x = self.input_layernorm(x); x = self.self_attn(x, ...); x = residual + x
 *     residual = x; x = self.post_attention_layernorm(x); x = self.mlp(x); x = residual + x
 *
 * Then sampling turns logits into the next token: greedy, or temperature + top-p.
 * Test it: make check LESSON=08   (or `make check` in this directory)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moekit.h"

/* ------------------------------------------------------------------------------------
 * the decoder layer
 * ---------------------------------------------------------------------------------- */

static void add_rows(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] += y[i];
}

void attn_block(Model *m, int layer, float *x, int T, int pos0) {
    const LayerWeights *L = &m->layers[layer];
    int C = m->config.hidden_size;
    /* TODO: 1. every row t of x (C values) through rmsnorm (lesson 02) with
     *          L->input_layernorm into row t of m->h;
     *       2. self_attn_forward (lesson 04) of all T rows of m->h at positions pos0 ..,
     *          into m->y, with m->attn_config, L->self_attn, the layer's KV cache
     *          &m->cache[layer] and &m->attn_scratch. */
    TODO("h = input_layernorm(x); y = self_attn(h) at positions pos0 ..");
    /* the residual: x += y, all T rows */
    add_rows(x, m->y, (long)T * C);
}

void mlp_block(Model *m, int layer, float *x, int T) {
    const LayerWeights *L = &m->layers[layer];
    const ModelConfig *c = &m->config;
    int C = c->hidden_size;
    /* TODO: 1. every row of x through rmsnorm with L->post_attention_layernorm into m->h;
     *       2. all T rows at once into m->y: when L->is_sparse, moe_forward (lesson 07) with
     *          &m->moe_config[layer], &L->moe and &m->moe_scratch[layer]; otherwise the dense
     *          SwiGLU, expert_forward_tokens (lesson 05) with &L->mlp, c->intermediate_size
     *          and m->mlp_scratch;
     *       3. the residual: x += m->y (add_rows). */
    TODO("x += mlp(post_attention_layernorm(x)), MoE or dense");
}

/* ------------------------------------------------------------------------------------
 * the whole forward pass
 * ---------------------------------------------------------------------------------- */

void model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits) {
    const ModelConfig *c = &m->config;
    int C = c->hidden_size, V = c->vocab_size;
    /* TODO: 1. the embedding: row t of x is row ids[t] of m->embed_tokens (C values);
     *       2. every layer l: attn_block, then mlp_block, on all T rows;
     *       3. every row of x through rmsnorm with m->norm into m->h, then logits (T, V)
     *          = m->h (T, C) . m->lm_head (V, C)^T, one matmul_tokens (lesson 01). */
    TODO("embed, the decoder layers, model.norm, lm_head");
}

/* ------------------------------------------------------------------------------------
 * sampling
 * ---------------------------------------------------------------------------------- */

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* xorshift64*: a uniform float in [0, 1) from 24 random bits. The same generator and
 * shifts as random_u32 / random_f32 in Andrej Karpathy's llama2.c (run.c, MIT licence). */
static float random_unit(unsigned long long *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (float)((*state * 0x2545F4914F6CDD1DULL) >> 40) / 16777216.0f;
}

typedef struct {
    float p;
    int id;
} ProbId;

static int by_prob_desc(const void *a, const void *b) {
    const ProbId *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

/* Nucleus sampling: the smallest set of most probable tokens whose mass reaches top_p,
 * then a draw within it. Tokens below (1 - top_p) / (V - 1) can never be in that set,
 * so they are dropped before the sort (V may be 151k). The algorithm (cutoff, sort,
 * truncate, draw r = coin * mass) follows sample_topp in llama2.c's run.c (MIT licence);
 * here the sort breaks ties by id and the nucleus stops where the mass reaches top_p. */
static int sample_top_p(const float *probs, int V, float top_p, float coin, ProbId *buf) {
    /* TODO: 1. copy the candidates (probs[i] >= cutoff, cutoff = (1 - top_p) / (V - 1)) into
     *          buf as {p, id} and qsort them with by_prob_desc (none may pass the cutoff
     *          when top_p < 1/V: return argmax(probs, V) then);
     *       2. the nucleus is buf[0..last]: the shortest prefix whose mass reaches top_p;
     *       3. draw: r = coin * (that mass); return the first id whose running sum of p
     *          passes r (the last one of the nucleus if rounding leaves r unreached). */
    TODO("nucleus (top-p) selection and the draw");
    return 0;
}

/* probs_scratch holds (V) probabilities and then (V) ProbId pairs: 3 * V floats. */
int sample(const float *logits, int V, Sampler *s, float *probs_scratch) {
    /* TODO: temperature <= 0: return argmax(logits, V). Otherwise: probs_scratch[i] =
     * logits[i] / temperature, softmax it (lesson 04), and return
     * sample_top_p(probs, V, top_p, random_unit(&s->rng_state), (ProbId *)(probs + V)),
     * with top_p = 1 when s->top_p is not in (0, 1). */
    TODO("greedy or temperature + top-p sampling");
    return 0;
}
