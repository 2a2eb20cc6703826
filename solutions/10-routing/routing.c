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
    linear_tokens(st->logits, h, w->gate, T, C, E);
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

/* ---- noisy top-k gating (Shazeer et al., 2017, section 2.1) ---------------------------- */

float softplus(float x) {
    /* log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)): exp never sees a positive number */
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

void noisy_topk_route(int *experts, float *weights, const float *logits,
                      const float *noise_logits, const float *noise, int T, int E, int k,
                      float *scratch) {
    for (int t = 0; t < T; t++) {
        long row = (long)t * E;
        for (int e = 0; e < E; e++) /* H, eq. 4: the noise's scale is learned per expert */
            scratch[e] = logits[row + e] + noise[row + e] * softplus(noise_logits[row + e]);
        topk(experts + (long)t * k, weights + (long)t * k, scratch, E, k);
        /* KeepTopK (eq. 5) sends the other E - k to -inf: the softmax is over the k kept */
        softmax(weights + (long)t * k, k);
    }
}

/* Lesson 07's combine without a capacity limit: every expert runs once on the tokens
 * that chose it. st->experts and st->weights (T, k) -> out (T, C), st->expert_count. */
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
    linear_tokens(st->logits, h, w->gate, T, C, E); /* x W_g */
    linear_tokens(st->probs, h, w_noise, T, C, E);  /* x W_noise: probs is free scratch here */
    /* s->slot_weight holds E * max_tokens >= E floats, and combine_routed refills it later */
    noisy_topk_route(st->experts, st->weights, st->logits, st->probs, noise, T, E, k,
                     s->slot_weight);
    combine_routed(out, h, T, k, c, w, s);
    st->T = T;
    st->expert_rows = (long)T * k;
    st->dropped = 0;
}

/* ---- the dense softmax mixture -------------------------------------------------------- */

void dense_moe_forward(float *out, const float *h, int T, const MoeConfig *c,
                       const MoeWeights *w, MoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts;
    MoeStats *st = &s->stats;
    linear_tokens(st->logits, h, w->gate, T, C, E);
    memcpy(st->probs, st->logits, sizeof(float) * (size_t)T * E);
    for (int t = 0; t < T; t++) softmax(st->probs + (long)t * E, E); /* over the experts */
    memset(out, 0, sizeof(float) * (size_t)T * C);
    for (int e = 0; e < E; e++) { /* every expert on all T tokens: E times the compute */
        expert_forward_tokens(s->y_out, h, &w->experts[e], T, C, c->moe_intermediate_size,
                              s->hidden);
        for (int t = 0; t < T; t++)
            for (int d = 0; d < C; d++)
                out[(long)t * C + d] += st->probs[(long)t * E + e] * s->y_out[(long)t * C + d];
        st->expert_count[e] = T;
    }
    st->T = T;
    st->expert_rows = (long)E * T;
    st->dropped = 0;
}

/* ---- Soft MoE (Puigcerver et al., 2023, section 2.1) ---------------------------------- */

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

/* slot_in (S, C) = D^T h, D the softmax of logits (T, S) over the tokens: each slot is a
 * weighted average of all T tokens. PyTorch: D = logits.softmax(0); slot_in = D.T @ h */
static void soft_dispatch(float *slot_in, float *dispatch, const float *logits, const float *h,
                          int T, int S, int C) {
    for (int j = 0; j < S; j++) {
        float *d = dispatch + (long)j * T; /* slot j's column of logits, made contiguous */
        for (int t = 0; t < T; t++) d[t] = logits[(long)t * S + j];
        softmax(d, T);
        float *x = slot_in + (long)j * C;
        memset(x, 0, sizeof(float) * C);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++) x[i] += d[t] * h[(long)t * C + i];
    }
}

/* out (T, C) = Cw slot_out, Cw the softmax of logits (T, S) over the slots: each token a
 * weighted average of all S slot outputs. PyTorch: out = logits.softmax(1) @ slot_out */
static void soft_combine(float *out, float *combine, const float *logits,
                         const float *slot_out, int T, int S, int C) {
    memcpy(combine, logits, sizeof(float) * (size_t)T * S);
    for (int t = 0; t < T; t++) {
        float *cw = combine + (long)t * S, *o = out + (long)t * C;
        softmax(cw, S);
        memset(o, 0, sizeof(float) * C);
        for (int j = 0; j < S; j++)
            for (int i = 0; i < C; i++) o[i] += cw[j] * slot_out[(long)j * C + i];
    }
}

void soft_moe_forward(float *out, const float *h, const float *phi, int T, const MoeConfig *c,
                      const MoeWeights *w, SoftMoeScratch *s) {
    int C = c->hidden_size, E = c->router.num_experts, p = s->slots_per_expert, S = E * p;
    linear_tokens(s->logits, h, phi, T, C, S);
    soft_dispatch(s->slot_in, s->dispatch, s->logits, h, T, S, C);
    for (int e = 0; e < E; e++) /* expert e's p slots are rows e*p .. e*p+p-1 */
        expert_forward_tokens(s->slot_out + (long)e * p * C, s->slot_in + (long)e * p * C,
                              &w->experts[e], p, C, c->moe_intermediate_size, s->hidden);
    soft_combine(out, s->combine, s->logits, s->slot_out, T, S, C);
}
