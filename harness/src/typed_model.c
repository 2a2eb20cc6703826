/*
 * typed_model.c: the forward pass over typed matrices (typed_model.h). The same steps as
 * lessons 04, 05, 07 and 08 (see those files for the PyTorch equivalents); only the
 * products differ: every one is tensor_matmul() on a typed weight.
 */
#include "typed_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

const int typed_available = 1; /* typed_model.h */

/* ------------------------------------------------------------------------------------
 * run state
 * ---------------------------------------------------------------------------------- */

static int max_int(int a, int b) { return a > b ? a : b; }

int typed_run_init(TypedRun *r, const Model *m) {
    const ModelConfig *c = &m->config;
    int I = max_int(c->intermediate_size,
                    max_int(c->moe_intermediate_size, c->shared_expert_intermediate_size));
    int in = max_int(max_int(c->hidden_size, c->num_attention_heads * c->head_dim), I);
    memset(r, 0, sizeof *r);
    r->threads = 1;
#ifdef _OPENMP
    r->threads = max_int(1, omp_get_max_threads());
#endif
    r->xq_bytes = tensor_matmul_scratch(m->state.max_tokens, in);
    r->hidden_len = 2 * (size_t)m->state.max_tokens * (size_t)max_int(I, 1);
    /* an expert takes at most max_tokens rows: a batch holds at least one */
    r->max_rows = m->state.max_tokens * max_int(c->num_experts_per_tok, 1);
    size_t rows_len = (size_t)r->max_rows * (size_t)c->hidden_size;
    r->xq = malloc((size_t)r->threads * (r->xq_bytes ? r->xq_bytes : 1));
    r->hidden = malloc(sizeof(float) * (size_t)r->threads * r->hidden_len);
    r->rows_in = malloc(sizeof(float) * (rows_len ? rows_len : 1));
    r->rows_out = malloc(sizeof(float) * (rows_len ? rows_len : 1));
    r->first = malloc(sizeof(int) * (size_t)(max_int(c->num_experts, 0) + 1));
    if (r->xq && r->hidden && r->rows_in && r->rows_out && r->first) return 0;
    typed_run_free(r);
    return -1;
}

void typed_run_free(TypedRun *r) {
    free(r->xq);
    free(r->hidden);
    free(r->rows_in);
    free(r->rows_out);
    free(r->first);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------------------------
 * attention (lesson 04's self_attn_forward)
 * ---------------------------------------------------------------------------------- */

static void add_bias(float *y, const float *b, int n) {
    for (int i = 0; b && i < n; i++) y[i] += b[i];
}

static void norm_heads(float *x, const float *weight, int n_heads, int D, float eps) {
    for (int h = 0; weight && h < n_heads; h++)
        rmsnorm(x + (size_t)h * D, x + (size_t)h * D, weight, D, eps);
}

/* biases, QK-norm, RoPE of one token at pos; its k, v into cache row pos */
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
    memcpy(cache->key + (size_t)pos * cache->kv_dim, k, sizeof(float) * (size_t)KV * D);
    memcpy(cache->value + (size_t)pos * cache->kv_dim, v, sizeof(float) * (size_t)KV * D);
}

static void self_attn(Model *m, int l, const TypedAttn *w, TypedRun *r, float *out, int T,
                      int pos0) {
    const SelfAttnConfig *c = &m->attn_config;
    AttnScratch *s = &m->state.attn_scratch;
    KVCache *cache = &m->state.cache[l];
    int qd = c->shape.num_attention_heads * c->shape.head_dim;
    int kvd = c->shape.num_key_value_heads * c->shape.head_dim;
    tensor_matmul(s->q, m->state.h, T, &w->q_proj, r->xq);
    tensor_matmul(s->k, m->state.h, T, &w->k_proj, r->xq);
    tensor_matmul(s->v, m->state.h, T, &w->v_proj, r->xq);
    for (int t = 0; t < T; t++)
        prepare_token(s->q + (size_t)t * qd, s->k + (size_t)t * kvd, s->v + (size_t)t * kvd,
                      pos0 + t, c, &m->weights.layers[l].self_attn, cache);
#pragma omp parallel for schedule(static, 1) if ((long)T * (pos0 + T) * qd >= (1L << 21))
    for (int t = 0; t < T; t++)
        attention(s->o + (size_t)t * qd, s->q + (size_t)t * qd, cache->key, cache->value,
                  pos0 + t + 1, &c->shape, s->att + (size_t)t * s->max_seq);
    tensor_matmul(out, s->o, T, &w->o_proj, r->xq);
}

/* ------------------------------------------------------------------------------------
 * SwiGLU and the MoE layer (lessons 05 and 07)
 * ---------------------------------------------------------------------------------- */

/* x (T, C) -> out (T, C); scratch (2 * T * I); xq: tensor_matmul's scratch */
static void expert(float *out, const float *x, const TypedExpert *w, int T, float *scratch,
                   void *xq) {
    long n = (long)T * w->gate_proj.rows;
    float *gate = scratch, *up = scratch + n;
    tensor_matmul(gate, x, T, &w->gate_proj, xq);
    tensor_matmul(up, x, T, &w->up_proj, xq);
    for (long i = 0; i < n; i++) gate[i] = silu(gate[i]) * up[i];
    tensor_matmul(out, gate, T, &w->down_proj, xq);
}

/* Router logits with the float32 gate (lesson 01's product), one route() per token, then
 * the rows of each expert in token order, as lesson 07's group_by_expert (the capacity
 * limit included). */
static void route_and_group(const float *h, int T, const MoeConfig *c, const MoeWeights *w,
                            MoeScratch *s) {
    MoeStats *st = &s->stats;
    int E = c->router.num_experts, k = c->router.num_experts_per_tok;
    int cap = c->capacity_factor <= 0.0f
                  ? T : (int)ceil((double)c->capacity_factor * T * k / E);
    linear_tokens(st->logits, h, w->gate, T, c->hidden_size, E);
    for (int t = 0; t < T; t++)
        route(st->experts + (long)t * k, st->weights + (long)t * k, st->probs + (long)t * E,
              st->logits + (long)t * E, &c->router);
    memset(st->expert_count, 0, sizeof(int) * (size_t)E);
    st->dropped = 0;
    for (int slot = 0; slot < T * k; slot++) {
        int e = st->experts[slot], n = st->expert_count[e];
        if (n == cap) {
            st->experts[slot] = -1, st->dropped++;
            continue;
        }
        s->rows[(long)e * s->max_tokens + n] = slot / k;
        s->slot_weight[(long)e * s->max_tokens + n] = st->weights[slot];
        st->expert_count[e] = n + 1;
    }
}

/* Experts e0..e1-1 of a layer on their rows of h (their rows fit in rows_in), on the
 * threads at once: one expert a thread at a time, since in a decode step each of its
 * products is too small to split (TYPED_PARALLEL_MIN_WORK, weights.c). Then their
 * outputs, weighted, into out, in expert order: the sum one thread would make. */
static void expert_batch(const float *h, const TypedLayer *tl, TypedRun *r, const MoeScratch *s,
                         int e0, int e1, int C, float *out) {
    int *first = r->first; /* first[e - e0]: expert e's first packed row */
    first[0] = 0;
    for (int e = e0; e < e1; e++) first[e - e0 + 1] = first[e - e0] + s->stats.expert_count[e];
    for (int e = e0; e < e1; e++)
        for (int i = 0; i < s->stats.expert_count[e]; i++)
            memcpy(r->rows_in + (long)(first[e - e0] + i) * C,
                   h + (long)s->rows[(long)e * s->max_tokens + i] * C, sizeof(float) * C);
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->threads) if (r->threads > 1 && e1 - e0 > 1)
    for (int e = e0; e < e1; e++) {
        int tid = 0, n = first[e - e0 + 1] - first[e - e0];
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        if (n > 0)
            expert(r->rows_out + (long)first[e - e0] * C, r->rows_in + (long)first[e - e0] * C,
                   &tl->experts[e], n, r->hidden + (size_t)tid * r->hidden_len,
                   (char *)r->xq + (size_t)tid * r->xq_bytes);
    }
    for (int e = e0; e < e1; e++)
        for (int i = 0; i < s->stats.expert_count[e]; i++) {
            int t = s->rows[(long)e * s->max_tokens + i];
            float wt = s->slot_weight[(long)e * s->max_tokens + i];
            const float *y = r->rows_out + (long)(first[e - e0] + i) * C;
            for (int d = 0; d < C; d++) out[(long)t * C + d] += wt * y[d];
        }
}

/* A layer's routed experts, in batches whose rows fit in rows_in (one batch, unless a
 * --top-k above the config's routes more rows; an expert has at most max_tokens rows). */
static void routed_experts(const float *h, const TypedLayer *tl, TypedRun *r, const MoeScratch *s,
                           int E, int C, float *out) {
    for (int e0 = 0, e1; e0 < E; e0 = e1) {
        int rows = s->stats.expert_count[e0];
        for (e1 = e0 + 1; e1 < E && rows + s->stats.expert_count[e1] <= r->max_rows; e1++)
            rows += s->stats.expert_count[e1];
        expert_batch(h, tl, r, s, e0, e1, C, out);
    }
}

static void moe(Model *m, int l, const TypedLayer *tl, TypedRun *r, float *out, int T) {
    const MoeConfig *c = &m->moe_config[l];
    const MoeWeights *w = &m->weights.layers[l].moe;
    MoeScratch *s = &m->state.moe_scratch[l];
    int C = c->hidden_size, E = c->router.num_experts;
    memset(out, 0, sizeof(float) * (size_t)T * C);
    s->stats.T = T;
    route_and_group(m->state.h, T, c, w, s);
    s->stats.expert_rows = 0;
    for (int e = 0; e < E; e++) s->stats.expert_rows += s->stats.expert_count[e];
    routed_experts(m->state.h, tl, r, s, E, C, out);
    if (c->shared_expert_intermediate_size == 0) return;
    expert(s->y_out, m->state.h, &tl->shared_expert, T, s->hidden, r->xq);
    for (int t = 0; t < T; t++) {
        float g = 1.0f;
        if (w->shared_expert_gate) {
            linear(&g, m->state.h + (long)t * C, w->shared_expert_gate, C, 1);
            g = 1.0f / (1.0f + expf(-g));
        }
        for (int d = 0; d < C; d++) out[(long)t * C + d] += g * s->y_out[(long)t * C + d];
    }
}

/* ------------------------------------------------------------------------------------
 * the model (lesson 08's model_forward)
 * ---------------------------------------------------------------------------------- */

static void norm_rows(float *h, const float *x, const float *weight, int T, int C, float eps) {
    for (int t = 0; t < T; t++) rmsnorm(h + (size_t)t * C, x + (size_t)t * C, weight, C, eps);
}

static void add_rows(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] += y[i];
}

void typed_forward(Model *m, const TypedWeights *w, TypedRun *r, const int *ids, int T,
                   int pos0, float *x, float *logits, int last_only) {
    const ModelConfig *c = &m->config;
    int C = c->hidden_size;
    float eps = c->rms_norm_eps;
    for (int t = 0; t < T; t++) tensor_row(x + (size_t)t * C, &w->embed_tokens, ids[t]);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const LayerWeights *L = &m->weights.layers[l];
        const TypedLayer *tl = &w->layers[l];
        norm_rows(m->state.h, x, L->input_layernorm, T, C, eps);
        self_attn(m, l, &tl->self_attn, r, m->state.y, T, pos0);
        add_rows(x, m->state.y, (long)T * C);
        norm_rows(m->state.h, x, L->post_attention_layernorm, T, C, eps);
        if (L->is_sparse)
            moe(m, l, tl, r, m->state.y, T);
        else
            expert(m->state.y, m->state.h, &tl->mlp, T, m->state.mlp_scratch, r->xq);
        add_rows(x, m->state.y, (long)T * C);
    }
    int first = last_only ? T - 1 : 0; /* the rows the LM head runs for */
    norm_rows(m->state.h, x + (size_t)first * C, m->weights.norm, T - first, C, eps);
    tensor_matmul(logits + (size_t)first * c->vocab_size, m->state.h, T - first, &w->lm_head,
                  r->xq);
}
