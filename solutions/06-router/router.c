/*
 * Lesson 06: the router, which decides for every token which k of the E experts run.
 *
 *   topk                 the k largest of p (n), by partial selection    torch.topk(p, k)
 *   route                one token: logits (E) -> probs (E), experts (k), weights (k)
 *   load_balancing_loss  E * sum_e (c_e / N) * P_e over N routed tokens (training)
 *   logsumexp            log(sum exp(x)) of n values, without overflow
 *   router_z_loss        mean over tokens of logsumexp(logits)^2 (training)
 *
 * PyTorch (Qwen3MoeSparseMoeBlock.forward; router_logits = self.gate(h), (T, E)):
 *   routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
 *   routing_weights, selected_experts = torch.topk(routing_weights, top_k, dim=-1)
 *   if self.norm_topk_prob:
 *       routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
 */
#include <math.h>

#include "moekit.h"

void topk(int *idx, float *val, const float *p, int n, int k) {
    int have = 0; /* idx/val hold the `have` largest seen so far, in descending order */
    for (int i = 0; i < n; i++) {
        /* most values lose to the current k-th at once; a tie loses too, so that the
         * earlier index stays ahead */
        if (have == k && !(p[i] > val[k - 1])) continue;
        int j = have < k ? have++ : k - 1; /* the free slot, or the k-th falls out */
        while (j > 0 && p[i] > val[j - 1]) {
            idx[j] = idx[j - 1];
            val[j] = val[j - 1];
            j--;
        }
        idx[j] = i;
        val[j] = p[i];
    }
}

void route(int *experts, float *weights, float *probs, const float *logits,
           const RouterConfig *c) {
    int E = c->num_experts, k = c->num_experts_per_tok;
    /* 1. choose: softmax is increasing, so the k largest logits are the k largest
     *    probabilities; a disabled expert gets -inf and is never among them */
    for (int e = 0; e < E; e++) probs[e] = c->disabled && c->disabled[e] ? -INFINITY : logits[e];
    topk(experts, weights, probs, E, k);
    /* 2. the probabilities over all E experts, in float32 */
    for (int e = 0; e < E; e++) probs[e] = logits[e];
    softmax(probs, E);
    /* 3. the weights: the chosen experts' probabilities, renormalised if asked */
    float sum = 0.0f;
    for (int j = 0; j < k; j++) {
        weights[j] = probs[experts[j]];
        sum += weights[j];
    }
    if (c->norm_topk_prob)
        for (int j = 0; j < k; j++) weights[j] /= sum;
}

float load_balancing_loss(const float *probs, const int *experts, int N, int E, int k) {
    float loss = 0.0f;
    for (int e = 0; e < E; e++) {
        int count = 0;      /* c_e: (token, slot) assignments to expert e */
        float p_sum = 0.0f; /* N * P_e */
        for (int t = 0; t < N; t++) {
            p_sum += probs[(long)t * E + e];
            for (int j = 0; j < k; j++) count += experts[(long)t * k + j] == e;
        }
        loss += ((float)count / N) * (p_sum / N);
    }
    return E * loss;
}

/* log(sum_i exp(x_i)), computed as max + log(sum_i exp(x_i - max)): no overflow. */
float logsumexp(const float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += expf(x[i] - max);
    return max + logf(sum);
}

float router_z_loss(const float *logits, int N, int E) {
    float total = 0.0f;
    for (int t = 0; t < N; t++) {
        float z = logsumexp(logits + (long)t * E, E);
        total += z * z;
    }
    return total / N;
}
