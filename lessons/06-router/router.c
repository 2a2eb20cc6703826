/*
 * Lesson 06: the router, which decides for every token which k of the E experts run.
 *
 *   topk                 the k largest of p (n), by partial selection    torch.topk(p, k)
 *   route                one token: logits (E) -> probs (E), experts (k), weights (k)
 *   load_balancing_loss  E * sum_e (c_e / N) * P_e over N routed tokens (training)
 *   logsumexp            log(sum exp(x)) of n values, without overflow
 *   router_z_loss        mean over tokens of logsumexp(logits)^2 (training)
 *
 * The TODOs are the five functions below; softmax is yours from lesson 04.
 * Test it: make check LESSON=06   (or `make check` in this directory)
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
        /* TODO: insert p[i] into the sorted list idx/val (descending), keeping at most k:
         *   - when the list is full (have == k) and p[i] is not larger than val[k - 1],
         *     skip it: most values stop here, which is what makes this cheap;
         *   - otherwise open a slot (the next free one, or slot k - 1, whose value falls
         *     out), move the smaller values one place down, and write i and p[i] there.
         * Equal values: the earlier index stays ahead (compare with >, never >=).
         * Done: idx[0..k) are the indices of the k largest p, val[j] == p[idx[j]]. */
        TODO("keep idx/val = the k largest of p[0..i], descending");
    }
}

void route(int *experts, float *weights, float *probs, const float *logits,
           const RouterConfig *c) {
    int E = c->num_experts, k = c->num_experts_per_tok;
    /* TODO, in three steps:
     *   1. choose: probs[e] = logits[e], or -INFINITY where c->disabled && c->disabled[e];
     *      then topk(experts, weights, probs, E, k). (softmax is increasing, so the k
     *      largest logits are the k largest probabilities);
     *   2. probs = softmax (lesson 04) of all E logits, disabled experts included;
     *   3. weights[j] = probs[experts[j]], then, only if c->norm_topk_prob, divide all k
     *      of them by their sum.
     * Done: probs sums to 1 over all E; experts are the k most probable enabled experts;
     * weights[j] is expert experts[j]'s probability (renormalised when asked). */
    TODO("probs = softmax(logits); experts = top-k; weights = their probs (renormalised?)");
}

float load_balancing_loss(const float *probs, const int *experts, int N, int E, int k) {
    /* TODO: for every expert e:
     *   c_e = how many of the N * k entries of experts equal e;
     *   P_e = the mean over the N tokens of probs[t * E + e];
     * and return E * sum_e (c_e / N) * P_e. Divide c_e by N, the tokens, not by N * k.
     * Done: a perfectly balanced router (c_e = N k / E, P_e = 1 / E) scores exactly k. */
    TODO("E * sum_e (c_e / N) * P_e");
    return 0.0f;
}

/* log(sum_i exp(x_i)), computed as max + log(sum_i exp(x_i - max)): no overflow. */
float logsumexp(const float *x, int n) {
    /* TODO: find max, sum expf(x[i] - max), return max + logf(sum). Without the max,
     * expf(100) is already inf in float32. */
    TODO("max + log(sum(exp(x - max)))");
    return 0.0f;
}

float router_z_loss(const float *logits, int N, int E) {
    /* TODO: the mean over the N tokens of z * z, with z = logsumexp of the token's E
     * logits (row t starts at logits + t * E). */
    TODO("mean over tokens of logsumexp(logits[t])^2");
    return 0.0f;
}
