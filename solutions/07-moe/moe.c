/*
 * Lesson 07: the MoE layer, the sparse MLP of a Qwen3-MoE block. Every token runs through
 * k of the E experts, chosen by the router (lesson 06), and gets their outputs mixed with
 * the routing weights; Qwen2-MoE adds a shared expert that every token runs through.
 *
 *   moe_forward   h (T, C) -> out (T, C), plus the routing statistics in s->stats
 *
 *   logits = h . gate^T (T, E); experts, weights (T, k) = route(logits[t]) for each token
 *   out[t] = sum_j weights[t][j] * expert_{experts[t][j]}(h[t])
 *          + sigmoid(h[t] . shared_expert_gate) * shared_expert(h[t])       (Qwen2-MoE)
 *
 * Computed expert by expert, not token by token: the rows that chose expert e are
 * gathered, run through it in one expert_forward_tokens call, and added back weighted.
 *
 * PyTorch (Qwen3MoeSparseMoeBlock.forward, after the router):
 *   expert_mask = F.one_hot(selected_experts, num_classes=self.num_experts).permute(2, 1, 0)
 *   for expert_idx in expert_hit:
 *       idx, top_x = torch.where(expert_mask[expert_idx].squeeze(0))
 *       current_hidden_states = expert_layer(hidden_states[None, top_x].reshape(-1, C))
 *       current_hidden_states = current_hidden_states * routing_weights[top_x, idx, None]
 *       final_hidden_states.index_add_(0, top_x, current_hidden_states)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moekit.h"

/* ------------------------------------------------------------------------------------
 * scratch (ready-made)
 * ---------------------------------------------------------------------------------- */

static void *alloc(size_t n, size_t size) { return malloc(n ? n * size : 1); }

int moe_scratch_init(MoeScratch *s, const MoeConfig *c, int max_tokens) {
    size_t T = (size_t)max_tokens, E = (size_t)c->router.num_experts;
    size_t k = (size_t)c->router.num_experts_per_tok, C = (size_t)c->hidden_size;
    int I = c->moe_intermediate_size > c->shared_expert_intermediate_size
                ? c->moe_intermediate_size
                : c->shared_expert_intermediate_size;
    memset(s, 0, sizeof *s);
    s->max_tokens = max_tokens;
    s->stats.experts = alloc(T * k, sizeof(int));
    s->stats.weights = alloc(T * k, sizeof(float));
    s->stats.logits = alloc(T * E, sizeof(float));
    s->stats.probs = alloc(T * E, sizeof(float));
    s->stats.expert_count = calloc(E ? E : 1, sizeof(int));
    s->rows = alloc(E * T, sizeof(int));
    s->slot_weight = alloc(E * T, sizeof(float));
    s->x_in = alloc(T * C, sizeof(float));
    s->y_out = alloc(T * C, sizeof(float));
    s->hidden = alloc(2 * T * (size_t)I, sizeof(float));
    if (!s->stats.experts || !s->stats.weights || !s->stats.logits || !s->stats.probs ||
        !s->stats.expert_count || !s->rows || !s->slot_weight || !s->x_in || !s->y_out ||
        !s->hidden) {
        moe_scratch_free(s);
        return -1;
    }
    return 0;
}

void moe_scratch_free(MoeScratch *s) {
    free(s->stats.experts);
    free(s->stats.weights);
    free(s->stats.logits);
    free(s->stats.probs);
    free(s->stats.expert_count);
    free(s->rows);
    free(s->slot_weight);
    free(s->x_in);
    free(s->y_out);
    free(s->hidden);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------------------
 * route, group, run, combine
 * ---------------------------------------------------------------------------------- */

/* Router logits (T, E) = h (T, C) . gate (E, C)^T, then one route() per token. */
static void route_tokens(const float *h, int T, const MoeConfig *c, const MoeWeights *w,
                         MoeStats *st) {
    int E = c->router.num_experts, k = c->router.num_experts_per_tok;
    linear_tokens(st->logits, h, w->gate, T, c->hidden_size, E);
    for (int t = 0; t < T; t++)
        route(st->experts + (long)t * k, st->weights + (long)t * k, st->probs + (long)t * E,
              st->logits + (long)t * E, &c->router);
}

/* Rows one expert may take: ceil(capacity_factor * T * k / E); T when there is no limit
 * (a token picks an expert at most once, so no expert ever gets more than T rows). */
static int expert_capacity(const MoeConfig *c, int T) {
    if (c->capacity_factor <= 0.0f) return T;
    double rows = (double)c->capacity_factor * T * c->router.num_experts_per_tok /
                  c->router.num_experts;
    return (int)ceil(rows);
}

/* Dispatch: the token rows of each expert, in token order, with their routing weights.
 * A (token, slot) assignment to an expert that is already full is dropped: its expert
 * becomes -1 and it contributes nothing (the residual carries the token). */
static void group_by_expert(MoeScratch *s, const MoeConfig *c, int T) {
    MoeStats *st = &s->stats;
    int E = c->router.num_experts, k = c->router.num_experts_per_tok;
    int capacity = expert_capacity(c, T);
    for (int e = 0; e < E; e++) st->expert_count[e] = 0;
    st->dropped = 0;
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < k; j++) { /* first come, first served */
            int slot = t * k + j, e = st->experts[slot];
            int n = st->expert_count[e];
            if (n == capacity) {
                st->experts[slot] = -1;
                st->dropped++;
                continue;
            }
            s->rows[(long)e * s->max_tokens + n] = t;
            s->slot_weight[(long)e * s->max_tokens + n] = st->weights[slot];
            st->expert_count[e] = n + 1;
        }
    }
}

/* Each expert with rows runs once over all of them; the outputs are added back into out
 * at their tokens, times the routing weight. Experts without rows cost nothing. */
static void run_experts(float *out, const float *h, const MoeConfig *c, const MoeWeights *w,
                        MoeScratch *s) {
    int C = c->hidden_size;
    s->stats.expert_rows = 0;
    for (int e = 0; e < c->router.num_experts; e++) {
        int n = s->stats.expert_count[e];
        if (n == 0) continue;
        const int *rows = s->rows + (long)e * s->max_tokens;
        const float *weight = s->slot_weight + (long)e * s->max_tokens;
        for (int i = 0; i < n; i++) /* gather */
            memcpy(s->x_in + (long)i * C, h + (long)rows[i] * C, sizeof(float) * C);
        expert_forward_tokens(s->y_out, s->x_in, &w->experts[e], n, C,
                              c->moe_intermediate_size, s->hidden);
        for (int i = 0; i < n; i++) { /* combine: scatter-add, weighted */
            float *o = out + (long)rows[i] * C;
            const float *y = s->y_out + (long)i * C;
            for (int d = 0; d < C; d++) o[d] += weight[i] * y[d];
        }
        s->stats.expert_rows += n;
    }
}

static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

/* Qwen2-MoE: out[t] += sigmoid(h[t] . shared_expert_gate) * shared_expert(h[t]). Without a
 * shared_expert_gate the shared expert is added as it is. */
static void add_shared_expert(float *out, const float *h, int T, const MoeConfig *c,
                              const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size;
    if (c->shared_expert_intermediate_size == 0) return;
    expert_forward_tokens(s->y_out, h, &w->shared_expert, T, C,
                          c->shared_expert_intermediate_size, s->hidden);
    for (int t = 0; t < T; t++) {
        float g = 1.0f;
        if (w->shared_expert_gate) {
            linear(&g, h + (long)t * C, w->shared_expert_gate, C, 1);
            g = sigmoid(g);
        }
        for (int d = 0; d < C; d++) out[(long)t * C + d] += g * s->y_out[(long)t * C + d];
    }
}

void moe_forward(float *out, const float *h, int T, const MoeConfig *c, const MoeWeights *w,
                 MoeScratch *s) {
    memset(out, 0, sizeof(float) * (size_t)T * c->hidden_size);
    s->stats.T = T;
    route_tokens(h, T, c, w, &s->stats);
    group_by_expert(s, c, T);
    run_experts(out, h, c, w, s);
    add_shared_expert(out, h, T, c, w, s);
}
