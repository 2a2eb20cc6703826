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

/* h (T, C) = rmsnorm of every row of x (T, C). The rows are independent: with OpenMP
 * (lesson 09) the threads can share them, but a row is cheap (18 ns at C = 160) and a
 * fork-join costs 20-25 us: 2 threads took 1.26x the time of one even for 2048 rows (37
 * us) on 2 busy cores. So only past 2^19 values (about 60 us at that rate). */
static void norm_rows(float *h, const float *x, const float *weight, int T, int C, float eps) {
#pragma omp parallel for if ((long)T * C >= (1L << 19))
    for (int t = 0; t < T; t++) rmsnorm(h + (size_t)t * C, x + (size_t)t * C, weight, C, eps);
}

void attn_block(Model *m, int layer, float *x, int T, int pos0) {
    const LayerWeights *L = &m->weights.layers[layer];
    RunState *s = &m->state;
    int C = m->config.hidden_size;
    norm_rows(s->h, x, L->input_layernorm, T, C, m->config.rms_norm_eps);
    /* all T tokens at once: they write cache rows pos0.. and token t reads rows 0..pos0+t */
    self_attn_forward(s->y, s->h, T, pos0, &m->attn_config, &L->self_attn, &s->cache[layer],
                      &s->attn_scratch);
    add_rows(x, s->y, (long)T * C);
}

void mlp_block(Model *m, int layer, float *x, int T) {
    const LayerWeights *L = &m->weights.layers[layer];
    const ModelConfig *c = &m->config;
    RunState *s = &m->state;
    int C = c->hidden_size;
    norm_rows(s->h, x, L->post_attention_layernorm, T, C, c->rms_norm_eps);
    if (L->is_sparse)
        moe_forward(s->y, s->h, T, &m->moe_config[layer], &L->moe, &s->moe_scratch[layer]);
    else
        expert_forward_tokens(s->y, s->h, &L->mlp, T, C, c->intermediate_size, s->mlp_scratch);
    add_rows(x, s->y, (long)T * C);
}

/* ------------------------------------------------------------------------------------
 * the whole forward pass
 * ---------------------------------------------------------------------------------- */

void model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits) {
    const ModelConfig *c = &m->config;
    const ModelWeights *w = &m->weights;
    int C = c->hidden_size, V = c->vocab_size;
    for (int t = 0; t < T; t++)
        memcpy(x + (size_t)t * C, w->embed_tokens + (size_t)ids[t] * C, sizeof(float) * C);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        attn_block(m, l, x, T, pos0);
        mlp_block(m, l, x, T);
    }
    norm_rows(m->state.h, x, w->norm, T, C, c->rms_norm_eps);
    linear_tokens(logits, m->state.h, w->lm_head, T, C, V);
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
    float cutoff = V > 1 ? (1.0f - top_p) / (V - 1) : 0.0f;
    int n = 0;
    for (int i = 0; i < V; i++)
        if (probs[i] >= cutoff) buf[n++] = (ProbId){probs[i], i};
    if (n == 0) return argmax(probs, V); /* top_p < 1/V on a flat distribution */
    qsort(buf, (size_t)n, sizeof *buf, by_prob_desc);
    float mass = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        mass += buf[i].p;
        if (mass >= top_p) {
            last = i;
            break;
        }
    }
    float r = coin * mass, acc = 0.0f;
    for (int i = 0; i <= last; i++) {
        acc += buf[i].p;
        if (r < acc) return buf[i].id;
    }
    return buf[last].id;
}

/* probs_scratch holds (V) probabilities and then (V) ProbId pairs: 3 * V floats. */
int sample(const float *logits, int V, Sampler *s, float *probs_scratch) {
    if (s->temperature <= 0.0f) return argmax(logits, V);
    float *probs = probs_scratch;
    for (int i = 0; i < V; i++) probs[i] = logits[i] / s->temperature;
    softmax(probs, V);
    float top_p = s->top_p > 0.0f && s->top_p < 1.0f ? s->top_p : 1.0f;
    return sample_top_p(probs, V, top_p, random_unit(&s->rng_state), (ProbId *)(probs + V));
}
