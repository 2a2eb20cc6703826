/*
 * Bonus lesson 10 (optional): other ways to route, next to lesson 06's top-k.
 *
 *   switch_route           Switch Transformer, top-1: logits (T, E) -> experts (T), weights (T)
 *   expert_choice_route    expert choice: probs (T, E) -> tokens (E, c), gates (E, c)
 *   expert_choice_forward  the MoE layer with expert choice: h (T, C) -> out (T, C)
 *   noisy_topk_route       noisy top-k gating: logits, noise logits, noise (T, E)
 *                          -> experts (T, k), weights (T, k)
 *   noisy_topk_forward     the MoE layer with noisy top-k gating: h (T, C) -> out (T, C)
 *   dense_moe_forward      the dense softmax mixture, every expert on every token
 *   soft_moe_forward       Soft MoE: slots that mix all tokens: h (T, C) -> out (T, C)
 *
 * Top-k: every token picks k experts; the experts' loads vary.
 * Expert choice: every expert picks c tokens; the tokens' numbers of experts vary.
 * Dense and Soft MoE: nothing is picked; every expert sees a weighted mix.
 *
 * The TODOs are the functions above, and softplus; unpicked_tokens, combine_routed and
 * Soft MoE's scratch are ready-made. They call linear_tokens (your lesson 01 or 09),
 * softmax (04), expert_forward_tokens (05), topk (06) and use lesson 07's MoeScratch.
 * Test it: make check LESSON=10   (or `make check` in this directory)
 *
 * PyTorch (Switch):        p = logits.softmax(-1); weight, expert = p.max(-1)
 * PyTorch (expert choice): S = (h @ W_gate.T).softmax(-1); gates, tokens = torch.topk(S.T, c)
 * PyTorch (noisy top-k):   H = logits + noise * F.softplus(noise_logits)
 *                          v, experts = H.topk(k); weights = v.softmax(-1)
 * PyTorch (dense):         out = sum_e logits.softmax(-1)[:, e, None] * expert_e(h)
 * PyTorch (Soft MoE):      L = h @ phi.T; slot_in = L.softmax(0).T @ h
 *                          out = L.softmax(1) @ experts(slot_in)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moekit.h"

void switch_route(int *experts, float *weights, const float *logits, int T, int E) {
    for (int t = 0; t < T; t++) {
        const float *row = logits + (long)t * E;
        /* TODO: experts[t] must be the index of row's largest logit (the lower index on
         * ties) and weights[t] its softmax probability over the E logits, not renormalised
         * (README "Switch: top-1 routing"). Think about: that probability needs only one
         * sum, and the max subtraction of lesson 04 keeps it from overflowing. */
        TODO("experts[t] = argmax, weights[t] = 1 / sum_e exp(row[e] - max)");
    }
}

void expert_choice_route(int *tokens, float *gates, const float *probs, int T, int E,
                         int capacity, float *column) {
    for (int e = 0; e < E; e++) {
        /* TODO: tokens + e * capacity and gates + e * capacity must hold the capacity
         * tokens with the largest probs[t * E + e] and those probabilities (lesson 06's
         * topk, descending).
         * Think about: expert e's scores are a column of probs, E floats apart, and topk
         * wants them contiguous (column is scratch for T floats). */
        TODO("tokens[e], gates[e] = topk of expert e's column of probs");
    }
}

/* Tokens that appear nowhere in tokens (n_picks): they get no expert at all. */
static int unpicked_tokens(const int *tokens, long n_picks, int T) {
    int missing = 0;
    for (int t = 0; t < T; t++) {
        long i = 0;
        while (i < n_picks && tokens[i] != t) i++;
        missing += i == n_picks;
    }
    return missing;
}

void expert_choice_forward(float *out, const float *h, int T, int capacity, const MoeConfig *c,
                           const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts;
    MoeStats *st = &s->stats;
    /* TODO: out (T, C) must be the expert-choice MoE layer of h (README "The math"): router
     * logits and probabilities (softmax over each token's E experts) in st->logits and
     * st->probs, each expert's capacity tokens and gates (expert_choice_route into s->rows
     * and s->slot_weight, viewed as (E, capacity)), then every expert run once on its
     * tokens and its outputs added back, weighted, as in lesson 07. The statistics: st->T,
     * st->expert_count[e] = capacity, st->expert_rows = E * capacity, st->dropped =
     * unpicked_tokens(s->rows, E * capacity, T).
     * Think about: out must start from zero; s->x_in can be the column scratch of the
     * routing and then the gather buffer, in that order.
     * Done: out[t] = sum over the experts that took t of gate * expert(h[t]). */
    TODO("softmax over experts, each expert takes its top-capacity tokens, combine");
}

/* ---- noisy top-k gating (Shazeer et al., 2017, section 2.1) ---------------------------- */

float softplus(float x) {
    /* TODO: return log(1 + exp(x)), finite for every x (README "Noisy top-k: keep k, then
     * the softmax"). Think about: expf(100) is inf in float32, but softplus(100) is 100;
     * log1pf is exact for small arguments. */
    TODO("softplus(x) = log(1 + exp(x)) without overflow");
    return 0.0f;
}

void noisy_topk_route(int *experts, float *weights, const float *logits,
                      const float *noise_logits, const float *noise, int T, int E, int k,
                      float *scratch) {
    for (int t = 0; t < T; t++) {
        /* TODO: experts + t * k and weights + t * k must hold the k largest of token t's
         * noisy logits H[e] = logits + noise * softplus(noise_logits) (eq. 4, in scratch,
         * E floats) and the softmax of those k values only (KeepTopK, eq. 5: the other
         * E - k are -inf, so they get weight 0 and the k weights sum to 1).
         * Think about: lesson 06's topk gives you both the experts and their H values. */
        TODO("H = logits + noise * softplus(noise_logits); top-k of H; softmax over the k");
    }
}

/* Lesson 07's combine without a capacity limit (ready-made): every expert runs once on the
 * tokens that chose it. st->experts and st->weights (T, k) -> out (T, C), expert_count. */
static void combine_routed(float *out, const float *h, int T, int k, const MoeConfig *c,
                           const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts;
    MoeStats *st = &s->stats;
    memset(out, 0, sizeof(float) * (size_t)T * C);
    for (int e = 0; e < E; e++) {
        int n = 0; /* gather expert e's rows into s->x_in */
        for (long i = 0; i < (long)T * k; i++) {
            if (st->experts[i] != e) continue;
            s->rows[n] = (int)(i / k);
            s->slot_weight[n] = st->weights[i];
            memcpy(s->x_in + (long)n * C, h + (i / k) * C, sizeof(float) * C);
            n++;
        }
        st->expert_count[e] = n;
        if (n == 0) continue;
        expert_forward_tokens(s->y_out, s->x_in, &w->experts[e], n, C,
                              c->moe_intermediate_size, s->hidden);
        for (int i = 0; i < n; i++)
            for (int d = 0; d < C; d++)
                out[(long)s->rows[i] * C + d] += s->slot_weight[i] * s->y_out[(long)i * C + d];
    }
}

void noisy_topk_forward(float *out, const float *h, const float *w_noise, const float *noise,
                        int T, const MoeConfig *c, const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts, k = c->router.num_experts_per_tok;
    MoeStats *st = &s->stats;
    /* TODO: out (T, C) must be the MoE layer with noisy top-k gating: the clean logits
     * h . gate^T into st->logits, the noise logits h . w_noise^T into st->probs (free
     * scratch of the same shape here), noisy_topk_route into st->experts and st->weights,
     * then the ready-made combine_routed. Stats: st->T, st->expert_rows = T * k,
     * st->dropped = 0 (combine_routed fills expert_count).
     * Think about: the route needs E floats of scratch that nothing else uses while it
     * runs; s->slot_weight has E * max_tokens. */
    TODO("clean and noise logits, noisy_topk_route, combine_routed");
}

/* ---- the dense softmax mixture -------------------------------------------------------- */

void dense_moe_forward(float *out, const float *h, int T, const MoeConfig *c,
                       const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts;
    MoeStats *st = &s->stats;
    /* TODO: out[t] = sum over all E experts of softmax(h[t] . gate^T)[e] * expert_e(h[t])
     * (README "The dense mixture: every expert, softmax weights"). The logits and the
     * softmax over each token's E experts in st->logits and st->probs; every expert run
     * once on all T tokens (expert_forward_tokens into s->y_out); the weighted sum into
     * out, which must start from zero. Stats: st->T, st->expert_count[e] = T,
     * st->expert_rows = E * T, st->dropped = 0. */
    TODO("softmax over the experts, every expert on every token, weighted sum");
}

/* ---- Soft MoE (Puigcerver et al., 2023, section 2.1) ---------------------------------- */

/* Ready-made: the scratch of soft_moe_forward. */
static float *floats(size_t n) { return malloc(sizeof(float) * (n ? n : 1)); }

int soft_moe_scratch_init(SoftMoeScratch *s, const MoeConfig *c, int max_tokens,
                          int slots_per_expert) {
    size_t T = (size_t)max_tokens, S = (size_t)c->router.num_experts * slots_per_expert;
    size_t C = (size_t)c->hidden_size, I = (size_t)c->moe_intermediate_size;
    memset(s, 0, sizeof *s);
    s->max_tokens = max_tokens;
    s->slots_per_expert = slots_per_expert;
    s->logits = floats(T * S);
    s->dispatch = floats(S * T);
    s->combine = floats(T * S);
    s->slot_in = floats(S * C);
    s->slot_out = floats(S * C);
    s->hidden = floats(2 * (size_t)slots_per_expert * I);
    if (!s->logits || !s->dispatch || !s->combine || !s->slot_in || !s->slot_out || !s->hidden) {
        soft_moe_scratch_free(s);
        return -1;
    }
    return 0;
}

void soft_moe_scratch_free(SoftMoeScratch *s) {
    free(s->logits);
    free(s->dispatch);
    free(s->combine);
    free(s->slot_in);
    free(s->slot_out);
    free(s->hidden);
    memset(s, 0, sizeof *s);
}

void soft_moe_forward(float *out, const float *h, const float *phi, int T, const MoeConfig *c,
                      const MoeWeights *w, SoftMoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts, p = s->slots_per_expert, S = E * p;
    /* TODO: out (T, C) = Soft MoE of h (README "Soft MoE: slots that average tokens"):
     *   logits = h . phi^T (T, S) into s->logits;
     *   dispatch: the softmax of each COLUMN of logits (over the T tokens), kept transposed
     *     in s->dispatch (S, T); slot_in[j] = sum_t dispatch[j][t] * h[t]   (S, C);
     *   expert e runs on its p slots, rows e*p .. e*p+p-1 of slot_in -> slot_out;
     *   combine: the softmax of each ROW of logits (over the S slots) in s->combine;
     *     out[t] = sum_j combine[t][j] * slot_out[j].
     * Think about: two short static helpers (dispatch, combine) keep this readable. */
    TODO("dispatch = softmax over tokens, experts on their slots, combine = softmax over slots");
}
