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
    {"noisy_softmax_over_all", "10-routing",
     "noisy top-k weights read off a softmax over all E noisy logits, not over the k kept.",
     "KeepTopK sets the other E - k noisy logits to -inf first: weights = softmax of the k "
     "kept values of H, so they sum to 1.",
     "Noisy top-k: keep k, then the softmax"},
    {"softplus_overflow", "10-routing",
     "softplus computed as log(1 + exp(x)): exp() overflowed to inf.",
     "softplus(x) = max(x, 0) + log1p(exp(-|x|)): exp never sees a positive number.",
     "Noisy top-k: keep k, then the softmax"},
    {"dense_logits_as_weights", "10-routing",
     "the dense mixture weighted by the raw router logits: the softmax is missing.",
     "Each expert's weight is softmax(h . gate^T)[e] over the E experts: positive, summing to 1.",
     "The dense mixture: every expert, softmax weights"},
    {"soft_dispatch_over_slots", "10-routing",
     "Soft MoE's dispatch weights normalised over the slots (each token's row) instead of "
     "over the tokens (each slot's column).",
     "Dispatch: softmax over the tokens (dim 0), so each slot is an average of tokens; combine: "
     "softmax over the slots (dim 1), so each token is an average of slot outputs.",
     "Soft MoE: slots that average tokens"},
    {"ep_arrival_order", "12-expert-parallel",
     "the returned rows were added to the tokens in the order they came back (grouped by "
     "the rank that ran them), as if that were token order.",
     "Returned row i is the (token, slot) packed at position i: add it into token "
     "send_slot[i] / k.",
     "The return exchange and the combine"},
    {"ep_weights_twice", "12-expert-parallel",
     "the routing weight applied twice: weight^2 * expert(h).",
     "The owner returns weight * expert(row) already: the combine only adds the rows up.",
     "The return exchange and the combine"},
    {"ep_capacity_local_T", "12-expert-parallel",
     "the capacity computed from this rank's own tokens instead of the tokens of all ranks.",
     "capacity = ceil(capacity_factor * T_total * k / E), T_total summed over the ranks "
     "(MPI_Allreduce): an owner sees rows from every rank.",
     "Capacity on a rank"},
    {"ep_counts_as_displs", "12-expert-parallel",
     "the displacements are the counts (displs[r] = counts[r]).",
     "displs[r] is where rank r's rows start: the sum of counts[0 .. r-1] (0 for rank 0).",
     "Counts and displacements"},
    {"no_residual", "08-model", "the block's output replaced x instead of being added to it.",
     "Each block is a residual branch: x = x + self_attn(input_layernorm(x)) in attn_block, "
     "x = x + mlp(post_attention_layernorm(x)) in mlp_block.",
     "The residual stream"},
    {"no_final_norm", "08-model", "lm_head applied without the final norm (model.norm).",
     "After the last layer: h = rmsnorm(x) * model.norm.weight, then logits = h . lm_head^T.",
     "The final norm"},
    {"byte_map_off_by_one", "11-tokenizer",
     "the unprintable bytes numbered from 257: byte 0 got 257, not 256.",
     "The first unprintable byte (0) gets 256, the next 257 ...: 256 + how many came before it.",
     "The byte map"},
    {"byte_map_soft_hyphen", "11-tokenizer",
     "the soft hyphen 0xAD kept as itself: 0xA1..0xFF taken as one printable range.",
     "0xAD is not printable (GPT-2's ranges are 0xA1..0xAC and 0xAE..0xFF): it gets 256 + 67 "
     "= 323.",
     "The byte map"},
    {"merge_first_found", "11-tokenizer",
     "the first pair that has a merge was merged, not the pair of lowest rank.",
     "Look at every adjacent pair, merge the one whose merge has the lowest rank (the leftmost "
     "on a tie), then look again.",
     "Merges by rank"},
    {"specials_split_by_bpe", "11-tokenizer",
     "added tokens were encoded by BPE as plain text: \"<|im_end|>\" became pieces, not its id.",
     "Split out the added tokens first (bpe_split_added): their spans give their ids, and only "
     "the text between them is pre-tokenized and merged.",
     "Added tokens first"},
    {"decode_no_byte_map", "11-tokenizer",
     "the tokens' strings were copied as they are, without the inverse byte map: a space came "
     "out as the two bytes of 'Ġ' (U+0120).",
     "Each character of a token stands for one byte: out gets the byte b with cp[b] == the "
     "character.",
     "Decode"},
    {"bf16_truncate", "13-quantization",
     "bf16 by truncation: the low 16 bits dropped, not rounded (and a NaN with only low "
     "payload bits becomes inf).",
     "Round to nearest even: add 0x7FFF plus bit 16 of x's bits, then shift; test for NaN "
     "first and keep it a NaN.",
     "bf16"},
    {"q8_0_truncate", "13-quantization",
     "q truncated toward zero: (int8_t)(x * id) instead of rounded to nearest.",
     "Round x / d to nearest, halves away from zero (roundf, lroundf), as "
     "quantize_row_q8_0_ref does: truncation doubles the worst error, to a whole d.",
     "q8_0"},
    {"q8_0_scale_128", "13-quantization",
     "a scale max|x| / 128: the largest x needs q = 128, which an int8 cannot hold.",
     "d = max|x| / 127: the levels are -127 .. 127, symmetric; -128 is never used.",
     "q8_0"},
    {"q4_0_nibbles_interleaved", "13-quantization",
     "nibbles of elements 2j and 2j + 1 packed in byte j, not j and j + 16.",
     "Byte j holds element j in its low nibble and element j + 16 in its high nibble "
     "(llama.cpp's block_q4_0): qs[j] = q[j] | q[j + 16] << 4.",
     "q4_0"},
    {"q4_0_no_offset", "13-quantization",
     "levels without the + 8: q = (int)(x / d + 0.5), so negative levels wrap into the byte.",
     "A nibble holds 0 .. 15: store x / d + 8 (as (int)(x / d + 8.5), capped at 15), and "
     "dequantize subtracts the 8 again.",
     "q4_0"},
};

const Diagnosis *diagnosis_find(const char *mistake) {
    for (size_t i = 0; i < sizeof CATALOGUE / sizeof CATALOGUE[0]; i++)
        if (strcmp(CATALOGUE[i].mistake, mistake) == 0) return &CATALOGUE[i];
    return NULL;
}

const Diagnosis *diagnosis_at(int i) {
    return i >= 0 && (size_t)i < sizeof CATALOGUE / sizeof CATALOGUE[0] ? &CATALOGUE[i] : NULL;
}
