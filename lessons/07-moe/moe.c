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
 * The scratch helpers and moe_forward, which calls the five steps in order, are
 * ready-made; the TODOs are route_tokens, expert_capacity, group_by_expert, run_experts and
 * add_shared_expert. They call your matmul (01), expert_forward_tokens (05) and route (06).
 * Test it: make check LESSON=07   (or `make check` in this directory)
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
    /* TODO: 1. st->logits (T, E) = h (T, C) . w->gate (E, C)^T, with matmul_tokens;
     *       2. for each token t, route (lesson 06) its row of logits with &c->router into
     *          its rows of st->experts (k), st->weights (k) and st->probs (E).
     * Done: st->experts[t * k + j] and st->weights[t * k + j] are token t's choices. */
    TODO("router logits for all T tokens, then route() each token");
}

/* Rows one expert may take: ceil(capacity_factor * T * k / E); T when there is no limit
 * (a token picks an expert at most once, so no expert ever gets more than T rows). */
static int expert_capacity(const MoeConfig *c, int T) {
    /* TODO: return T when c->capacity_factor <= 0 (no limit), else
     * ceil(capacity_factor * T * k / E), computed in double (k = num_experts_per_tok,
     * E = num_experts). Round up: with 1.25 * 10 * 2 / 4 = 6.25, an expert takes 7 rows. */
    TODO("ceil(capacity_factor * T * k / E), or T without a limit");
    return T;
}

/* Dispatch: the token rows of each expert, in token order, with their routing weights.
 * A (token, slot) assignment to an expert that is already full is dropped: its expert
 * becomes -1 and it contributes nothing (the residual carries the token). */
static void group_by_expert(MoeScratch *s, const MoeConfig *c, int T) {
    MoeStats *st = &s->stats;
    int E = c->router.num_experts, k = c->router.num_experts_per_tok;
    int capacity = expert_capacity(c, T);
    /* TODO: group the (token, slot) assignments by expert, first come first served:
     *   - set st->expert_count[0..E) and st->dropped to 0;
     *   - visit token 0's slots 0..k-1, then token 1's, and so on. For slot = t * k + j with
     *     expert e = st->experts[slot] and n = st->expert_count[e]:
     *       if n == capacity: st->experts[slot] = -1 and st->dropped++ (the slot is dropped);
     *       else: row n of expert e gets the token and its weight,
     *             s->rows[e * s->max_tokens + n] = t,
     *             s->slot_weight[e * s->max_tokens + n] = st->weights[slot],
     *             and st->expert_count[e] = n + 1.
     * Done: expert e's rows are s->rows[e * max_tokens ..] in token order, with
     * expert_count[e] of them; nothing else is dropped. */
    TODO("rows, slot_weight and expert_count per expert; -1 and dropped++ when full");
}

/* Each expert with rows runs once over all of them; the outputs are added back into out
 * at their tokens, times the routing weight. Experts without rows cost nothing. */
static void run_experts(float *out, const float *h, const MoeConfig *c, const MoeWeights *w,
                        MoeScratch *s) {
    int C = c->hidden_size;
    s->stats.expert_rows = 0;
    for (int e = 0; e < c->router.num_experts; e++) {
        /* TODO: expert e has n = s->stats.expert_count[e] rows; skip it when n is 0.
         *   1. gather: row i of s->x_in (C floats) = row s->rows[e * max_tokens + i] of h;
         *   2. one call: expert_forward_tokens (lesson 05) of the n rows of s->x_in with
         *      &w->experts[e] and c->moe_intermediate_size, into s->y_out, s->hidden as
         *      scratch;
         *   3. combine: add s->slot_weight[e * max_tokens + i] * row i of s->y_out to the
         *      row of out of that token;
         *   4. s->stats.expert_rows += n.
         * Done: out[t] = sum over t's kept slots of weight * expert(h[t]), and experts
         * with no rows never ran. */
        TODO("gather expert e's rows, run it once, scatter-add the weighted outputs");
    }
}

static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

/* Qwen2-MoE: out[t] += sigmoid(h[t] . shared_expert_gate) * shared_expert(h[t]). Without a
 * shared_expert_gate the shared expert is added as it is. */
static void add_shared_expert(float *out, const float *h, int T, const MoeConfig *c,
                              const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size;
    if (c->shared_expert_intermediate_size == 0) return; /* Qwen3-MoE: no shared expert */
    /* TODO: 1. s->y_out (T, C) = expert_forward_tokens of all T rows of h through
     *          &w->shared_expert with c->shared_expert_intermediate_size (s->hidden scratch);
     *       2. for each token t: g = sigmoid(h[t] . w->shared_expert_gate), a dot product
     *          of C values (matmul with one output row does it); g = 1 when
     *          w->shared_expert_gate is NULL; then out[t] += g * s->y_out[t].
     * Done: out[t] gains sigmoid(h[t] . shared_expert_gate) * shared_expert(h[t]). */
    TODO("out[t] += sigmoid(h[t] . shared_expert_gate) * shared_expert(h[t])");
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
