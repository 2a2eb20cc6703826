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
 * add_shared_expert. They call linear (your lesson 01 or 09), expert_forward_tokens (05)
 * and route (06).
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
    /* TODO: fill st->logits (T, E) = h . w->gate^T for all T tokens with one product, and
     * token t's routing (lesson 06's route, with &c->router) into its rows of st->experts
     * (k), st->weights (k) and st->probs (E).
     * Done: st->experts[t * k + j] and st->weights[t * k + j] are token t's slot j. */
    TODO("router logits for all T tokens, then route() each token");
}

/* Rows one expert may take: ceil(capacity_factor * T * k / E); T when there is no limit
 * (a token picks an expert at most once, so no expert ever gets more than T rows). */
static int expert_capacity(const MoeConfig *c, int T) {
    /* TODO: return the most rows one expert may take: T when c->capacity_factor <= 0 (no
     * limit), else ceil(capacity_factor * T * k / E) (k = num_experts_per_tok, E =
     * num_experts).
     * Think about: the kit's convention rounds up (README "Capacity factor: dropping
     * tokens" says who rounds which way); float or integer arithmetic for the product. */
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
    /* TODO: the dispatch. Afterwards, for every expert e, its st->expert_count[e] rows are
     * listed from s->rows[e * s->max_tokens] on (the token of each row) and from
     * s->slot_weight[e * s->max_tokens] on (the routing weight of that same (token, slot)),
     * in the order they claimed the expert; an assignment to an expert that already holds
     * `capacity` rows is dropped instead (its st->experts entry becomes -1 and st->dropped
     * counts it).
     * Think about: the kit's convention claims capacity token by token, token 0's slots
     * first (README "Capacity factor: dropping tokens"); which weight belongs to which row
     * (README "Dispatch: group the rows by expert"); that the counts and st->dropped are
     * left over from the previous call until you reset them. */
    TODO("rows, slot_weight and expert_count per expert; -1 and dropped++ when full");
}

/* Each expert with rows runs once over all of them; the outputs are added back into out
 * at their tokens, times the routing weight. Experts without rows cost nothing. */
static void run_experts(float *out, const float *h, const MoeConfig *c, const MoeWeights *w,
                        MoeScratch *s) {
    int C = c->hidden_size;
    s->stats.expert_rows = 0;
    for (int e = 0; e < c->router.num_experts; e++) {
        /* TODO: expert e runs once, on all of its rows, or not at all when it has none.
         * Afterwards out[t] has gained weight * expert_e(h[t]) for each of its rows, and
         * s->stats.expert_rows has grown by their number.
         * Think about: expert_forward_tokens (lesson 05, with &w->experts[e] and
         * c->moe_intermediate_size) wants its input rows contiguous, so they must be
         * gathered (s->x_in), and its output rows (s->y_out) scattered back, each to its
         * own token and with its own weight; s->hidden is the expert's scratch.
         * Done: out[t] = sum over t's kept slots of weight * expert(h[t]); an expert with
         * no rows never ran. */
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
    /* TODO: out[t] must gain g_t * shared_expert(h[t]) for every token, with g_t =
     * sigmoid(h[t] . w->shared_expert_gate) (g_t = 1 when the gate is NULL) and the shared
     * expert run once over all T rows (lesson 05, &w->shared_expert,
     * c->shared_expert_intermediate_size, scratch s->hidden, output s->y_out).
     * Think about: the gate is one number per token, a dot product of C values (which
     * lesson 01 call computes one dot product?), squashed by the sigmoid (README "The
     * shared expert"). */
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
