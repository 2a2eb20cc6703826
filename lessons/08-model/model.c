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
 *
 * Which kernel runs: every product of the model, here and in lessons 04-07, is linear()
 * (one token) or linear_tokens() (T tokens), and linear.c sends it to one kernel chosen
 * by the program before the first call (linear_use): lesson 01's matmul, or lesson 09's
 * fast_matmul. `moekit --matmul naive|fast` picks it; `make check` tests on lesson 01's.
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
    const LayerWeights *L = &m->weights.layers[layer];
    RunState *s = &m->state;
    int C = m->config.hidden_size;
    /* TODO: after this block (before the residual add below), row t of s->y must be
     * self_attn of input_layernorm(x[t]) for all T rows at positions pos0 .., computed with
     * this layer's weights (L->input_layernorm, L->self_attn), its own KV cache
     * (&s->cache[layer]), m->attn_config and &s->attn_scratch.
     * Think about: the norm is per row (C values) into the scratch rows of s->h; the
     * attention is one call for all T rows (lesson 04). */
    TODO("h = input_layernorm(x); y = self_attn(h) at positions pos0 ..");
    /* the residual: x += y, all T rows */
    add_rows(x, s->y, (long)T * C);
}

void mlp_block(Model *m, int layer, float *x, int T) {
    const LayerWeights *L = &m->weights.layers[layer];
    const ModelConfig *c = &m->config;
    int C = c->hidden_size;
    /* TODO: x must gain mlp(post_attention_layernorm(x)) on all T rows, where mlp is the
     * MoE layer (lesson 07, with this layer's config, weights and scratch) when
     * L->is_sparse, and otherwise the dense SwiGLU (lesson 05, &L->mlp,
     * c->intermediate_size, m->state.mlp_scratch).
     * Think about: which scratch buffers hold the normalised rows and the MLP's output; one
     * call for all T rows, not one per token; the residual add (README "The residual
     * stream"). */
    TODO("x += mlp(post_attention_layernorm(x)), MoE or dense");
}

/* ------------------------------------------------------------------------------------
 * the whole forward pass
 * ---------------------------------------------------------------------------------- */

void model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits) {
    const ModelConfig *c = &m->config;
    int C = c->hidden_size, V = c->vocab_size;
    /* TODO: logits (T, V) must be the model's scores for the T ids at positions pos0 ..:
     * the embedding rows, every layer (attention block, then MLP block), the final norm
     * (m->weights.norm) and lm_head (README "The math").
     * Think about: the embedding is a lookup of row ids[t], not a product; every block
     * works on all T rows at once; what a tied model needs (README "Tied embeddings"); one
     * product for the head, not one per token. */
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
    /* TODO: return an id drawn from the nucleus: the smallest set of most probable ids
     * whose mass reaches top_p, each drawn with its probability renormalised over the set,
     * using coin (uniform in [0, 1)) as the only randomness. README "Sampling" gives the
     * four steps (filter, sort, nucleus, draw) and why the filter is safe.
     * Think about: ids below the cutoff may leave no candidate at all when top_p < 1/V
     * (then return the argmax); ties in the sort (by_prob_desc breaks them by id); float
     * rounding that never quite reaches top_p or the drawn point: what is returned then? */
    TODO("nucleus (top-p) selection and the draw");
    return 0;
}

/* probs_scratch holds (V) probabilities and then (V) ProbId pairs: 3 * V floats. */
int sample(const float *logits, int V, Sampler *s, float *probs_scratch) {
    /* TODO: return the next id: the argmax when s->temperature <= 0, otherwise a draw from
     * the softmax of logits / temperature (lesson 04) through sample_top_p, with top_p = 1
     * when s->top_p is not in (0, 1), the coin from random_unit(&s->rng_state), and the
     * scratch after the V probabilities as sample_top_p's buffer. */
    TODO("greedy or temperature + top-p sampling");
    return 0;
}
