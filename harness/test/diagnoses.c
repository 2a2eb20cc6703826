/*
 * diagnoses.c: the catalogue of classic mistakes the harness can name.
 *
 * A fixture carries, next to each expected output, the output PyTorch computes with
 * the mistake made on purpose (`<case>/<output>~<mistake>`, harness/pytorch/mistakes.py).
 * When a student's output matches one of those, the report prints the entry below.
 */
#include <string.h>

#include "diagnoses.h"

static const Diagnosis CATALOGUE[] = {
    {"w_transposed", "01-matmul", "W read as [in, out] (w[i * out + o]).",
     "nn.Linear stores W as [out_features, in_features]: row o starts at w[o * in].",
     "Which way W is stored"},
    {"eps_outside_sqrt", "02-rmsnorm", "eps added outside the square root: x / (sqrt(mean(x^2)) + eps).",
     "eps goes inside: x / sqrt(mean(x^2) + eps).", "Where eps goes"},
    {"no_weight", "02-rmsnorm", "the result is not multiplied by weight.",
     "RMSNorm ends with * weight[i], one learned gain per channel.", "The weight"},
    {"rope_interleaved", "03-rope", "interleaved pairing (x[2i], x[2i+1]).",
     "Qwen3 rotates x[i] with x[i + head_dim/2] (rotate-half).", "Which pairs rotate"},
    {"rope_freq_exponent", "03-rope", "frequencies theta^(-i/head_dim).",
     "Pair i turns at f_i = theta^(-2i/head_dim): the exponent has a 2.", "The frequencies"},
    {"softmax_overflow", "04-attention", "softmax without subtracting the max: exp() overflowed to inf.",
     "Compute exp(x[i] - max(x)): the same result, and every exp is <= 1.",
     "Softmax that does not overflow"},
    {"no_scale", "04-attention", "scores not scaled by 1/sqrt(head_dim).",
     "score = q . k / sqrt(head_dim), before the softmax.", "Why 1/sqrt(head_dim)"},
    {"gqa_modulo", "04-attention", "query head h reads kv head h % n_kv.",
     "Heads are grouped: query head h reads kv head h / (n_heads / n_kv).",
     "Grouped-query attention: which kv head"},
    {"mask_excludes_self", "04-attention", "token t attends to 0..t-1, not to itself.",
     "The causal mask keeps positions 0..t: t + 1 of them.", "The causal mask"},
    {"no_causal_mask", "04-attention", "no causal mask: every token sees all T tokens.",
     "Token t may only see positions 0..t (the future is not known at decode time).",
     "The causal mask"},
    {"qk_norm_missing", "04-attention", "q_norm/k_norm not applied.",
     "Qwen3 RMS-normalises every q and k head over head_dim, with q_norm/k_norm weights.",
     "QK-norm"},
    {"qk_norm_after_rope", "04-attention", "q_norm/k_norm applied after RoPE.",
     "Normalise each head first, then rotate it: norm, then RoPE.", "QK-norm"},
    {"sees_whole_call", "04-attention",
     "every token of one self_attn_forward call attends to all the rows the call wrote "
     "(pos0 + T of them): in a prefill, tokens see the future.",
     "Token t of a call is at position pos0 + t and attends to cache rows 0 .. pos0 + t: "
     "n_pos = pos0 + t + 1.", "The causal mask"},
    {"silu_is_sigmoid", "05-expert", "silu computed as sigmoid(z): the factor z is missing.",
     "silu(z) = z * sigmoid(z) = z / (1 + exp(-z)).", "SiLU is not the sigmoid"},
    {"silu_up_swapped", "05-expert",
     "silu applied to up_proj(x) instead of gate_proj(x): silu(up) * gate.",
     "The activation goes on the gate: down_proj(silu(gate_proj(x)) * up_proj(x)).",
     "Which projection gets the SiLU"},
    {"softmax_over_topk", "06-router",
     "the weights are a softmax over the k chosen logits, not the probabilities over all E.",
     "probs = softmax over all E experts; weights[j] = probs[experts[j]]. Only "
     "norm_topk_prob divides them by their sum.",
     "Softmax over all E, then choose"},
    {"no_renormalisation", "06-router",
     "norm_topk_prob is on, but the k weights are not divided by their sum.",
     "When c->norm_topk_prob: weights[j] /= (weights[0] + ... + weights[k-1]).",
     "norm_topk_prob: renormalising the k weights"},
    {"lb_loss_per_assignment", "06-router",
     "c_e divided by the N * k assignments instead of the N tokens: the loss is k times too small.",
     "E * sum_e (c_e / N) * P_e: a balanced router scores k, not 1.",
     "The load-balancing loss"},
    {"logsumexp_overflow", "06-router",
     "logsumexp without subtracting the max: exp() overflowed to inf.",
     "logsumexp(x) = max + log(sum exp(x - max)): every exp is <= 1.", "The router z-loss"},
    {"weights_wrong_slot", "07-moe",
     "the routing weights are paired with the wrong slots: expert experts[t][j] got "
     "weights[t][k-1-j].",
     "Slot j's weight belongs to slot j's expert: keep st->weights[t * k + j] with "
     "st->experts[t * k + j] when grouping.",
     "Dispatch: group the rows by expert"},
    {"capacity_slot_major", "07-moe",
     "capacity claimed slot by slot (slot 0 of every token, then slot 1) instead of token "
     "by token.",
     "First come, first served in token order: token 0's slots 0..k-1, then token 1's ...",
     "Capacity factor: dropping tokens"},
    {"capacity_floor", "07-moe", "capacity rounded down: floor(capacity_factor * T * k / E).",
     "Round up: capacity = ceil(capacity_factor * T * k / E).",
     "Capacity factor: dropping tokens"},
    {"shared_gate_no_sigmoid", "07-moe",
     "the shared expert gate without the sigmoid: (h . shared_expert_gate) * shared_expert(h).",
     "The gate is sigmoid(h . shared_expert_gate), a number between 0 and 1.",
     "The shared expert"},
    {"switch_weight_one", "10-routing",
     "the top-1 weight renormalised to 1 (p / p) instead of the expert's probability.",
     "weights[t] = the chosen expert's softmax probability; with one expert, never renormalise.",
     "Switch: top-1 routing"},
    {"ec_softmax_over_tokens", "10-routing",
     "expert choice with the softmax over the tokens instead of over the experts.",
     "probs = softmax over each token's E logits, as in top-k routing; the experts then pick "
     "from the columns.",
     "Expert choice: the experts pick"},
    {"no_residual", "08-model", "the block's output replaced x instead of being added to it.",
     "Each block is a residual branch: x = x + self_attn(input_layernorm(x)) in attn_block, "
     "x = x + mlp(post_attention_layernorm(x)) in mlp_block.",
     "The residual stream"},
    {"no_final_norm", "08-model", "lm_head applied without the final norm (model.norm).",
     "After the last layer: h = rmsnorm(x) * model.norm.weight, then logits = h . lm_head^T.",
     "The final norm"},
};

const Diagnosis *diagnosis_find(const char *mistake) {
    for (size_t i = 0; i < sizeof CATALOGUE / sizeof CATALOGUE[0]; i++)
        if (strcmp(CATALOGUE[i].mistake, mistake) == 0) return &CATALOGUE[i];
    return NULL;
}

const Diagnosis *diagnosis_at(int i) {
    return i >= 0 && (size_t)i < sizeof CATALOGUE / sizeof CATALOGUE[0] ? &CATALOGUE[i] : NULL;
}
