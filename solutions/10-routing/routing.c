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
 * PyTorch (Switch):        p = logits.softmax(-1); weight, expert = p.max(-1)
 * PyTorch (expert choice): S = (h @ W_gate.T).softmax(-1); gates, tokens = torch.topk(S.T, c)
 */
#include <math.h>
#include <string.h>

#include "moekit.h"

void switch_route(int *experts, float *weights, const float *logits, int T, int E) {
    for (int t = 0; t < T; t++) {
        const float *row = logits + (long)t * E;
        int best = 0;
        for (int e = 1; e < E; e++)
            if (row[e] > row[best]) best = e;
        /* p_best = exp(0) / sum_e exp(row[e] - row[best]): no need to normalise all E */
        float sum = 0.0f;
        for (int e = 0; e < E; e++) sum += expf(row[e] - row[best]);
        experts[t] = best;
        weights[t] = 1.0f / sum;
    }
}

void expert_choice_route(int *tokens, float *gates, const float *probs, int T, int E,
                         int capacity, float *column) {
    for (int e = 0; e < E; e++) {
        for (int t = 0; t < T; t++) column[t] = probs[(long)t * E + e]; /* expert e's column */
        topk(tokens + (long)e * capacity, gates + (long)e * capacity, column, T, capacity);
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
    matmul_tokens(st->logits, h, w->gate, T, C, E);
    memcpy(st->probs, st->logits, sizeof(float) * (size_t)T * E);
    for (int t = 0; t < T; t++) softmax(st->probs + (long)t * E, E); /* over the experts */
    /* s->rows and s->slot_weight, viewed as (E, capacity): who each expert took, and how much */
    expert_choice_route(s->rows, s->slot_weight, st->probs, T, E, capacity, s->x_in);
    memset(out, 0, sizeof(float) * (size_t)T * C);
    for (int e = 0; e < E; e++) {
        const int *rows = s->rows + (long)e * capacity;
        const float *gate = s->slot_weight + (long)e * capacity;
        for (int i = 0; i < capacity; i++)
            memcpy(s->x_in + (long)i * C, h + (long)rows[i] * C, sizeof(float) * C);
        expert_forward_tokens(s->y_out, s->x_in, &w->experts[e], capacity, C,
                              c->moe_intermediate_size, s->hidden);
        for (int i = 0; i < capacity; i++) {
            float *o = out + (long)rows[i] * C;
            const float *y = s->y_out + (long)i * C;
            for (int d = 0; d < C; d++) o[d] += gate[i] * y[d];
        }
        st->expert_count[e] = capacity;
    }
    st->T = T;
    st->expert_rows = (long)E * capacity;
    st->dropped = unpicked_tokens(s->rows, (long)E * capacity, T);
}
