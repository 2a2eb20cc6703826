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
        /* TODO: after value i, idx[0..have) and val[0..have) must hold the largest values
         * of p[0..i], at most k of them, in descending order, equal values in index order.
         * Think about: how to reject most values with a single comparison once the list is
         * full (that is what makes this cheap: README "Top-k without sorting"); what
         * happens to the smaller entries when a value is inserted; which comparison, > or
         * >=, keeps ties in index order; p may hold -INFINITY.
         * Done: idx[0..k) are the indices of the k largest p, val[j] == p[idx[j]]. */
        TODO("keep idx/val = the k largest of p[0..i], descending");
    }
}

void route(int *experts, float *weights, float *probs, const float *logits,
           const RouterConfig *c) {
    int E = c->num_experts, k = c->num_experts_per_tok;
    /* TODO: route one token, as Qwen3MoeSparseMoeBlock does (README "The math"): choose the
     * k most probable enabled experts, fill probs with the softmax of all E logits, and
     * give each chosen expert its probability as its weight, renormalised over the k when
     * c->norm_topk_prob is set.
     * Think about: why you may choose on the logits (softmax is increasing), so probs can
     * serve as scratch before it holds the probabilities; what a disabled expert's entry
     * must be so that topk never picks it, while it still counts in the softmax (README
     * "Switching experts off"); the order of the three steps.
     * Done: probs sums to 1 over all E; experts are the k most probable enabled experts;
     * weights[j] is expert experts[j]'s probability (renormalised when asked). */
    TODO("probs = softmax(logits); experts = top-k; weights = their probs (renormalised?)");
}

float load_balancing_loss(const float *probs, const int *experts, int N, int E, int k) {
    /* TODO: return L = E * sum_e (c_e / N) * P_e, where c_e counts the (token, slot)
     * entries of experts equal to e and P_e is the mean over the N tokens of probs[t * E +
     * e].
     * Think about: c_e is divided by the N tokens, not by the N * k assignments (README
     * "The load-balancing loss"); no extra memory is needed.
     * Done: a perfectly balanced router (c_e = N k / E, P_e = 1 / E) scores exactly k. */
    TODO("E * sum_e (c_e / N) * P_e");
    return 0.0f;
}

/* log(sum_i exp(x_i)), computed as max + log(sum_i exp(x_i - max)): no overflow. */
float logsumexp(const float *x, int n) {
    /* TODO: return log(sum_i exp(x_i)) for any finite x, including |x| ~ 100, where expf
     * overflows float32: use the identity in the comment above (README "The router
     * z-loss"). */
    TODO("max + log(sum(exp(x - max)))");
    return 0.0f;
}

float router_z_loss(const float *logits, int N, int E) {
    /* TODO: return the mean over the N tokens of z_t^2, z_t = logsumexp of token t's E
     * logits (row t starts at logits + t * E). */
    TODO("mean over tokens of logsumexp(logits[t])^2");
    return 0.0f;
}
