/*
 * typed_model.c: the forward pass over typed matrices (typed_model.h). The same steps as
 * lessons 04, 05, 07 and 08 (see those files for the PyTorch equivalents); only the
 * products differ: every one is tensor_matmul() on a typed weight.
 */
#include "typed_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const int typed_available = 1; /* typed_model.h */

/* ------------------------------------------------------------------------------------
 * run state
 * ---------------------------------------------------------------------------------- */

static int max_int(int a, int b) { return a > b ? a : b; }

int typed_run_init(TypedRun *r, const Model *m) {
    const ModelConfig *c = &m->config;
    int in = max_int(max_int(c->hidden_size, c->num_attention_heads * c->head_dim),
                     max_int(c->intermediate_size, max_int(c->moe_intermediate_size,
                                                           c->shared_expert_intermediate_size)));
    r->xq_bytes = tensor_matmul_scratch(m->max_tokens, in);
    r->xq = malloc(r->xq_bytes ? r->xq_bytes : 1);
    return r->xq ? 0 : -1;
}

void typed_run_free(TypedRun *r) {
    free(r->xq);
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
    AttnScratch *s = &m->attn_scratch;
    KVCache *cache = &m->cache[l];
    int qd = c->shape.num_attention_heads * c->shape.head_dim;
    int kvd = c->shape.num_key_value_heads * c->shape.head_dim;
    tensor_matmul(s->q, m->h, T, &w->q_proj, r->xq);
    tensor_matmul(s->k, m->h, T, &w->k_proj, r->xq);
    tensor_matmul(s->v, m->h, T, &w->v_proj, r->xq);
    for (int t = 0; t < T; t++)
        prepare_token(s->q + (size_t)t * qd, s->k + (size_t)t * kvd, s->v + (size_t)t * kvd,
                      pos0 + t, c, &m->layers[l].self_attn, cache);
#pragma omp parallel for schedule(static, 1) if ((long)T * (pos0 + T) * qd >= (1L << 21))
    for (int t = 0; t < T; t++)
        attention(s->o + (size_t)t * qd, s->q + (size_t)t * qd, cache->key, cache->value,
                  pos0 + t + 1, &c->shape, s->att + (size_t)t * s->max_seq);
    tensor_matmul(out, s->o, T, &w->o_proj, r->xq);
}

/* ------------------------------------------------------------------------------------
 * SwiGLU and the MoE layer (lessons 05 and 07)
 * ---------------------------------------------------------------------------------- */

/* x (T, C) -> out (T, C); scratch (2 * T * I) */
static void expert(float *out, const float *x, const TypedExpert *w, int T, float *scratch,
                   TypedRun *r) {
    long n = (long)T * w->gate_proj.rows;
    float *gate = scratch, *up = scratch + n;
    tensor_matmul(gate, x, T, &w->gate_proj, r->xq);
    tensor_matmul(up, x, T, &w->up_proj, r->xq);
    for (long i = 0; i < n; i++) gate[i] = silu(gate[i]) * up[i];
    tensor_matmul(out, gate, T, &w->down_proj, r->xq);
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
    matmul_tokens(st->logits, h, w->gate, T, c->hidden_size, E);
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

static void moe(Model *m, int l, const TypedLayer *tl, TypedRun *r, float *out, int T) {
    const MoeConfig *c = &m->moe_config[l];
    const MoeWeights *w = &m->layers[l].moe;
    MoeScratch *s = &m->moe_scratch[l];
    int C = c->hidden_size;
    memset(out, 0, sizeof(float) * (size_t)T * C);
    s->stats.T = T;
    route_and_group(m->h, T, c, w, s);
    s->stats.expert_rows = 0;
    for (int e = 0; e < c->router.num_experts; e++) {
        int n = s->stats.expert_count[e];
        const int *rows = s->rows + (long)e * s->max_tokens;
        const float *weight = s->slot_weight + (long)e * s->max_tokens;
        if (n == 0) continue;
        for (int i = 0; i < n; i++)
            memcpy(s->x_in + (long)i * C, m->h + (long)rows[i] * C, sizeof(float) * C);
        expert(s->y_out, s->x_in, &tl->experts[e], n, s->hidden, r);
        for (int i = 0; i < n; i++)
            for (int d = 0; d < C; d++)
                out[(long)rows[i] * C + d] += weight[i] * s->y_out[(long)i * C + d];
        s->stats.expert_rows += n;
    }
    if (c->shared_expert_intermediate_size == 0) return;
    expert(s->y_out, m->h, &tl->shared_expert, T, s->hidden, r);
    for (int t = 0; t < T; t++) {
        float g = 1.0f;
        if (w->shared_expert_gate) {
            matmul(&g, m->h + (long)t * C, w->shared_expert_gate, C, 1);
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
        const LayerWeights *L = &m->layers[l];
        const TypedLayer *tl = &w->layers[l];
        norm_rows(m->h, x, L->input_layernorm, T, C, eps);
        self_attn(m, l, &tl->self_attn, r, m->y, T, pos0);
        add_rows(x, m->y, (long)T * C);
        norm_rows(m->h, x, L->post_attention_layernorm, T, C, eps);
        if (L->is_sparse)
            moe(m, l, tl, r, m->y, T);
        else
            expert(m->y, m->h, &tl->mlp, T, m->mlp_scratch, r);
        add_rows(x, m->y, (long)T * C);
    }
    int first = last_only ? T - 1 : 0; /* the rows the LM head runs for */
    norm_rows(m->h, x + (size_t)first * C, m->norm, T - first, C, eps);
    tensor_matmul(logits + (size_t)first * c->vocab_size, m->h, T - first, &w->lm_head, r->xq);
}
