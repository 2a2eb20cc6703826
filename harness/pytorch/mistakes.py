"""Known-wrong variants of the reference: what a classic mistake outputs.

The exporter stores each as `<case>/<output>~<mistake>` so that the C harness can name the
mistake when a student's output matches it. Every function here has the signature of the
reference function it corrupts and changes one thing, reusing reference.py for the rest.
The function names are the mistake names used in the fixture keys.
"""

import math

import torch

import reference as ref

# ------------------------------------------------------------------------------------
# Lesson 01: matmul
# ------------------------------------------------------------------------------------


def w_transposed(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """W (out, in) read as if stored [in, out]: x (T, in) @ w.reshape(in, out) -> (T, out)."""
    out_features, in_features = w.shape
    return ref.linear(x, w.reshape(in_features, out_features).t())


# ------------------------------------------------------------------------------------
# Lesson 02: RMSNorm
# ------------------------------------------------------------------------------------


def eps_outside_sqrt(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / (sqrt(mean(x^2)) + eps) * weight; only visible when mean(x^2) is near eps."""
    rms = x.pow(2).mean(-1, keepdim=True).sqrt()
    return x / (rms + eps) * weight


def no_weight(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalises but forgets to multiply by the weight."""
    return ref.rmsnorm(x, torch.ones_like(weight), eps)


# ------------------------------------------------------------------------------------
# Lesson 03: RoPE
# ------------------------------------------------------------------------------------


def rope_interleaved(x: torch.Tensor, pos0: int, theta: float) -> torch.Tensor:
    """GPT-J pairing (x[2i], x[2i+1]) instead of rotate-half (x[i], x[i+D/2]).

    Gathers the even and odd elements into two halves, rotates with the reference and
    scatters back: the same frequencies applied to the wrong pairs.
    """
    D = x.shape[-1]
    order = torch.cat([torch.arange(0, D, 2), torch.arange(1, D, 2)])
    y = torch.empty_like(x)
    y[..., order] = ref.rope(x[..., order], pos0, theta)
    return y


def rope_freq_exponent(x: torch.Tensor, pos0: int, theta: float) -> torch.Tensor:
    """Frequencies f_i = theta^(-i/D): the 2 of theta^(-2i/D) forgotten."""
    D = x.shape[-1]
    i = torch.arange(D // 2, dtype=torch.float64)
    return ref.rope(x, pos0, theta, inv_freq=theta ** (-i / D))


# ------------------------------------------------------------------------------------
# Lesson 04: attention
# ------------------------------------------------------------------------------------


def softmax_overflow(x: torch.Tensor) -> torch.Tensor:
    """exp(x) / sum(exp(x)) without subtracting the max: inf/inf = NaN for large x.

    Not stored as a variant (NaN matches nothing); the exporter plugs it into
    ref.attention(softmax=...) in float32 to check that a case marked
    `~nonfinite = softmax_overflow` really overflows.
    """
    e = x.exp()
    return e / e.sum(dim=-1, keepdim=True)


def no_scale(q, k, v):
    """Causal attention without the 1/sqrt(D) score scale.  Shapes as ref.causal_attention."""
    return ref.attention(q, k, v, ref.causal_mask(q.shape[0]), scale=1.0)


def gqa_modulo(q, k, v):
    """Query head h reads kv head h % KV instead of h // (H / KV)."""
    kv_heads = torch.arange(q.shape[1]) % k.shape[1]
    return ref.attention(q, k, v, ref.causal_mask(q.shape[0]), kv_heads=kv_heads)


def mask_excludes_self(q, k, v):
    """Token t sees 0..t-1 only. Token 0 sees nothing: its row is NaN (kept as NaN)."""
    T = q.shape[0]
    return ref.attention(q, k, v, torch.ones(T, T, dtype=torch.bool).tril(-1))


def no_causal_mask(q, k, v):
    """Every token sees every position, the future included."""
    T = q.shape[0]
    return ref.attention(q, k, v, torch.ones(T, T, dtype=torch.bool))


def qk_norm_missing(h, w: dict, cfg: ref.AttnConfig):
    """Qwen3 self-attention that skips q_norm / k_norm.  Shapes as ref.self_attention."""
    without = {name: t for name, t in w.items() if name not in ("q_norm.weight", "k_norm.weight")}
    return ref.self_attention(h, without, cfg)


def qk_norm_after_rope(h, w: dict, cfg: ref.AttnConfig):
    """Applies q_norm / k_norm after RoPE instead of before (they do not commute: the
    per-element norm weight breaks the rotation's pairs)."""
    q, k, v = ref.qkv_proj(h, w, cfg)
    q, k = ref.rope_qk(q, k, cfg)
    q, k = ref.qk_norm(q, k, w, cfg)
    return ref.attend_and_project(q, k, v, w, cfg)


def sees_whole_call(h, w: dict, cfg: ref.AttnConfig):
    """self_attn_forward where every token of a call attends to all the rows the call
    writes (0 .. pos0 + T - 1) instead of 0 .. pos0 + t: a prefill sees the future."""
    q, k, v = ref.qkv_proj(h, w, cfg)
    q, k = ref.qk_norm(q, k, w, cfg)
    q, k = ref.rope_qk(q, k, cfg)
    o = no_causal_mask(q, k, v)  # (T, H, D)
    return ref.linear(o.reshape(q.shape[0], -1), w["o_proj.weight"])


# ------------------------------------------------------------------------------------
# Lesson 05: the SwiGLU expert
# ------------------------------------------------------------------------------------


def silu_is_sigmoid(z: torch.Tensor) -> torch.Tensor:
    """silu written as sigmoid(z): the factor z forgotten. Also plugged into
    ref.expert(act=...) for the expert cases."""
    return torch.sigmoid(z)


def silu_up_swapped(x, gate_proj, up_proj, down_proj):
    """silu applied to up_proj(x) instead of gate_proj(x): down(silu(up(x)) * gate(x)).
    Shapes as ref.expert."""
    return ref.expert(x, up_proj, gate_proj, down_proj)


# ------------------------------------------------------------------------------------
# Lesson 06: the router
# ------------------------------------------------------------------------------------


def softmax_over_topk(logits, k, norm_topk_prob, disabled=None):
    """The k weights as a softmax over the k selected logits only. That equals the
    renormalised probabilities, so it is only wrong when norm_topk_prob is off.
    -> weights (T, k), in the reference's expert order."""
    _, experts, _ = ref.route(logits, k, norm_topk_prob, disabled)
    return ref.softmax(logits.gather(1, experts))


def no_renormalisation(logits, k, norm_topk_prob, disabled=None):
    """norm_topk_prob ignored: the k probabilities are never divided by their sum."""
    return ref.route(logits, k, False, disabled)[2]


def lb_loss_per_assignment(probs, experts, num_experts):
    """c_e divided by the N * k assignments instead of the N tokens: the loss / k
    (balanced routing then scores 1, not k)."""
    return ref.load_balancing_loss(probs, experts, num_experts) / experts.shape[1]


def logsumexp_overflow(logits):
    """log(sum(exp(x))) without taking the max out: inf for logits above ~88 in float32.
    Not stored as a variant; the exporter checks that a case marked
    `z_loss~nonfinite = logsumexp_overflow` really overflows this way."""
    return logits.exp().sum(-1).log().pow(2).mean()


# ------------------------------------------------------------------------------------
# Lesson 07: the MoE layer
# ------------------------------------------------------------------------------------


def weights_wrong_slot(h, w: dict, cfg: ref.MoeConfig):
    """The routing weights paired with the wrong slots: the expert in slot j is weighted by
    weights[t, k-1-j] (for k = 2: the two weights swapped). Shapes as ref.moe_layer."""
    return ref.moe_forward(h, w, cfg, combine_weights=lambda wt: wt.flip(-1)).out


def capacity_slot_major(h, w: dict, cfg: ref.MoeConfig):
    """Capacity claimed slot by slot (slot 0 of every token, then slot 1 ...) instead of
    token by token: later tokens' first choices push out earlier tokens' second ones."""
    T, k = h.shape[0], cfg.num_experts_per_tok
    order = [(t, j) for j in range(k) for t in range(T)]
    return ref.moe_forward(h, w, cfg, order=order).out


def capacity_floor(h, w: dict, cfg: ref.MoeConfig):
    """Capacity rounded down, floor(capacity_factor * T * k / E), instead of up."""
    return ref.moe_forward(h, w, cfg,
                           capacity=ref.expert_capacity(h.shape[0], cfg, math.floor)).out


def shared_gate_no_sigmoid(h, w: dict, cfg: ref.MoeConfig):
    """The shared expert scaled by the raw h . shared_expert_gate, without the sigmoid."""
    return ref.moe_forward(h, w, cfg, gate_act=lambda z: z).out


# ------------------------------------------------------------------------------------
# Bonus lesson 10: routing variants
# ------------------------------------------------------------------------------------


def switch_weight_one(logits):
    """Top-1 weight renormalised over the one chosen expert: always 1 (the router then
    gets no gradient). -> weights (T)."""
    return torch.ones(logits.shape[0], dtype=logits.dtype)


def ec_softmax_over_tokens(h, w: dict, capacity: int):
    """Expert choice with the softmax taken over the tokens (each expert's column sums
    to 1) instead of over the experts. -> out (T, C)."""
    return ref.expert_choice_moe(h, w, capacity, scores=lambda s: ref.softmax(s.t()).t())[0]


def noisy_softmax_over_all(logits, noise_logits, noise, k: int):
    """Noisy top-k with the softmax over all E noisy logits, then the k chosen read off it
    (lesson 06's habit) instead of KeepTopK's -inf for the others: the k weights no longer
    sum to 1. -> weights (T, k)."""
    return ref.noisy_topk_route(logits, noise_logits, noise, k, keep_topk=False)[1]


def softplus_overflow(logits, noise_logits, noise, k: int):
    """Noisy top-k with softplus as log(1 + exp(x)) in float32: exp() overflows to inf for
    x > 88, and H, then the weights, become inf or NaN. -> weights (T, k).

    Not stored as a variant (NaN matches nothing); the exporter runs it to check that a
    case marked `weights~nonfinite = softplus_overflow` really overflows this way.
    """
    x = noise_logits.float()
    H = logits.float() + noise.float() * torch.log(1 + torch.exp(x))
    return ref.softmax(H.topk(k, dim=-1).values)


def dense_logits_as_weights(h, w: dict):
    """The dense mixture weighted by the raw router logits, the softmax forgotten.
    -> out (T, C)."""
    return ref.dense_moe(h, w, weights=lambda logits: logits)


def soft_dispatch_over_slots(h, phi, w: dict, slots_per_expert: int):
    """Soft MoE with the dispatch weights normalised over the slots (each token's row, like
    the combine) instead of over the tokens (each slot's column). -> out (T, C)."""
    return ref.soft_moe(h, phi, w, slots_per_expert, dispatch_dim=1)


# ------------------------------------------------------------------------------------
# Lesson 12: expert parallelism
# ------------------------------------------------------------------------------------


def ep_arrival_order(h, w: dict, cfg: ref.MoeConfig, P: int):
    """The returned rows added to the rank's tokens in the order they came back (grouped
    by the rank that computed them) as if it were token order. Shapes as ref.moe_layer."""
    return ref.ep_moe_forward(h, w, cfg, P, arrival_order=True).out


def ep_weights_twice(h, w: dict, cfg: ref.MoeConfig, P: int):
    """The owner returns rows already times their routing weight, and the combine
    multiplies by it again: weight^2 * expert(h)."""
    return ref.ep_moe_forward(h, w, cfg, P, weights_twice=True).out


def ep_capacity_local_T(h, w: dict, cfg: ref.MoeConfig, P: int):
    """Capacity from the owner's own token count instead of the T tokens of all ranks:
    ceil(capacity_factor * T_rank * k / E), so more rows are dropped as P grows."""
    return ref.ep_moe_forward(h, w, cfg, P, local_capacity=True).out


def ep_counts_as_displs(counts):
    """The displacements set to the counts (displs[i] = counts[i]) instead of their
    exclusive prefix sums. counts (P, P) -> (P, P)."""
    return counts.clone()


# ------------------------------------------------------------------------------------
# Lesson 13: quantization (bits and bytes, as reference.py's lesson 13 functions)
# ------------------------------------------------------------------------------------


def bf16_truncate(x_bits):
    """float32 -> bf16 by dropping the low 16 bits (rounding toward zero): x_bits >> 16.
    NaN (undefined) where x is a NaN: the mistake is the same with or without a NaN check."""
    out = ((x_bits >> 16) & 0xFFFF).double()
    out[torch.isnan(ref.float_of_bits(x_bits))] = math.nan
    return out


def q8_0_truncate(x):
    """q8_0 with q = (int)(x / d), truncated toward zero instead of rounded."""
    return ref.q8_0_quantize(x, rounding=torch.trunc)


def q8_0_scale_128(x):
    """q8_0 with d = max|x| / 128: the largest positive x gets q = 128, which wraps to -128
    in an int8."""
    return ref.q8_0_quantize(x, divisor=128.0)


def q4_0_nibbles_interleaved(x):
    """q4_0 with elements 2j and 2j + 1 in byte j (low, high) instead of j and j + 16."""
    return ref.q4_0_quantize(x, interleaved=True)


def q4_0_no_offset(x):
    """q4_0 without the + 8: q = min(15, (int)(x / d + 0.5)), negative levels wrapping into
    the byte."""
    return ref.q4_0_quantize(x, offset=0.5)


# The mistakes each lesson diagnoses (the exporter checks every one is stored somewhere).
BY_LESSON = {
    "01-matmul": [w_transposed],
    "02-rmsnorm": [eps_outside_sqrt, no_weight],
    "03-rope": [rope_interleaved, rope_freq_exponent],
    "04-attention": [no_scale, gqa_modulo, mask_excludes_self, no_causal_mask,
                     qk_norm_missing, qk_norm_after_rope, sees_whole_call],
    "05-expert": [silu_is_sigmoid, silu_up_swapped],
    "06-router": [softmax_over_topk, no_renormalisation, lb_loss_per_assignment],
    "07-moe": [weights_wrong_slot, capacity_slot_major, capacity_floor,
               shared_gate_no_sigmoid],
    "09-fast-matmul": [w_transposed],
    "10-routing": [switch_weight_one, ec_softmax_over_tokens, noisy_softmax_over_all,
                   dense_logits_as_weights, soft_dispatch_over_slots],
    "12-expert-parallel": [ep_arrival_order, ep_weights_twice, ep_capacity_local_T,
                           ep_counts_as_displs],
    "13-quantization": [bf16_truncate, q8_0_truncate, q8_0_scale_128, q4_0_nibbles_interleaved,
                        q4_0_no_offset],
}
