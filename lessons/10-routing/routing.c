/*
 * Bonus lesson 10 (optional): two other ways to route, next to lesson 06's top-k.
 *
 *   switch_route           Switch Transformer, top-1: logits (T, E) -> experts (T), weights (T)
 *   expert_choice_route    expert choice: probs (T, E) -> tokens (E, c), gates (E, c)
 *   expert_choice_forward  the MoE layer with expert choice: h (T, C) -> out (T, C)
 *
 * Top-k: every token picks k experts; the experts' loads vary.
 * Expert choice: every expert picks c tokens; the tokens' numbers of experts vary.
 *
 * The TODOs are the three functions above; unpicked_tokens is ready-made. They call your
 * matmul_tokens (01), softmax (04), expert_forward_tokens (05), topk (06) and use lesson
 * 07's MoeScratch. Test it: make check LESSON=10   (or `make check` in this directory)
 *
 * PyTorch (Switch):        p = logits.softmax(-1); weight, expert = p.max(-1)
 * PyTorch (expert choice): S = (h @ W_gate.T).softmax(-1); gates, tokens = torch.topk(S.T, c)
 */
#include <math.h>
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
