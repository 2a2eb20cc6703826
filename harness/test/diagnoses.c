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
};

const Diagnosis *diagnosis_find(const char *mistake) {
    for (size_t i = 0; i < sizeof CATALOGUE / sizeof CATALOGUE[0]; i++)
        if (strcmp(CATALOGUE[i].mistake, mistake) == 0) return &CATALOGUE[i];
    return NULL;
}

const Diagnosis *diagnosis_at(int i) {
    return i >= 0 && (size_t)i < sizeof CATALOGUE / sizeof CATALOGUE[0] ? &CATALOGUE[i] : NULL;
}
