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
        /* TODO: best = the index of the largest logit of row (the lower index on ties);
         * experts[t] = best; weights[t] = its softmax probability, which needs only one
         * sum: p_best = exp(0) / sum_e exp(row[e] - row[best]). Do not renormalise it: over
         * one expert that would make every weight 1. */
        TODO("experts[t] = argmax, weights[t] = 1 / sum_e exp(row[e] - max)");
    }
}

void expert_choice_route(int *tokens, float *gates, const float *probs, int T, int E,
                         int capacity, float *column) {
    for (int e = 0; e < E; e++) {
        /* TODO: copy expert e's column, probs[t * E + e] for t < T, into column; then topk
         * (lesson 06) of it with k = capacity into tokens + e * capacity and
         * gates + e * capacity.
         * Done: expert e's capacity tokens are those with the largest probs[., e]. */
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
    /* TODO:
     *   1. st->logits (T, E) = h . w->gate^T; st->probs = a copy with softmax (lesson 04)
     *      over each token's E values (over the experts, as in top-k routing);
     *   2. expert_choice_route into s->rows and s->slot_weight, both viewed as
     *      (E, capacity), with s->x_in as the column scratch;
     *   3. out = 0; for each expert e: gather its capacity rows of h into s->x_in, run
     *      expert_forward_tokens (&w->experts[e], c->moe_intermediate_size) into s->y_out,
     *      add gate * row back into out at each token; st->expert_count[e] = capacity;
     *   4. st->T = T, st->expert_rows = E * capacity,
     *      st->dropped = unpicked_tokens(s->rows, E * capacity, T).
     * Done: out[t] = sum over the experts that took t of gate * expert(h[t]). */
    TODO("softmax over experts, each expert takes its top-capacity tokens, combine");
}
